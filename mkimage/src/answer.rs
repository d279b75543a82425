// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the sandboxed explain child sends its parent: the bytes come from a process that
//! parsed guest data, so [`Answer::decode`] checks them and never trusts them (std only:
//! fuzz/fuzz_targets/explain_answer.rs includes this file by path).

/// What explain prints on stdout, and its error (exit status 1) if any: what the
/// sandboxed child sends back, the same as an unconfined run prints.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub stdout: String,
    pub error: Option<String>,
}

pub const ANSWER_MAGIC: &[u8; 8] = b"RXEXPLN1";

impl Answer {
    /// Magic, the exit status (0 or 1), stdout and the error (u64 LE lengths).
    pub fn encode(&self) -> Vec<u8> {
        let err = self.error.as_deref().unwrap_or("");
        let mut b = Vec::with_capacity(25 + self.stdout.len() + err.len());
        b.extend_from_slice(ANSWER_MAGIC);
        b.push(u8::from(self.error.is_some()));
        for part in [self.stdout.as_bytes(), err.as_bytes()] {
            b.extend_from_slice(&(part.len() as u64).to_le_bytes());
            b.extend_from_slice(part);
        }
        b
    }

    /// The inverse of [`Answer::encode`]; `None` for anything else (the child's bytes
    /// are checked, not trusted).
    pub fn decode(b: &[u8]) -> Option<Answer> {
        let rest = b.strip_prefix(ANSWER_MAGIC)?;
        let (&code, mut rest) = rest.split_first()?;
        let mut part = || -> Option<String> {
            let (len, r) = rest.split_first_chunk::<8>()?;
            let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
            let (s, r) = r.split_at_checked(len)?;
            rest = r;
            String::from_utf8(s.to_vec()).ok()
        };
        let stdout = part()?;
        let err = part()?;
        if !rest.is_empty() {
            return None;
        }
        match code {
            0 if err.is_empty() => Some(Answer { stdout, error: None }),
            1 => Some(Answer { stdout, error: Some(err) }),
            _ => None,
        }
    }
}
