// SPDX-License-Identifier: MIT OR Apache-2.0
//! The GRUB environment block (`/boot/grub/grubenv`): a 1024-byte file starting with
//! `# GRUB Environment Block\n`, then `name=value\n` lines, then `#` padding to the end.
//! In a value `\` and newline are written with a `\` before them.
//!
//! [`parse`] reads one; [`update`] returns the block with some variables set or deleted, the
//! same size as before, editing it in place the way GRUB's `save_env` and `grub-editenv` do
//! (`grub-core/lib/envblk.c`) so the file's blocks never move. Writing it back to the disk is
//! the caller's business.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// First bytes of every block.
pub const SIGNATURE: &[u8] = b"# GRUB Environment Block\n";
/// The size GRUB creates blocks with.
pub const BLOCK_SIZE: usize = 1024;
/// Largest block [`parse`] accepts (GRUB reads any size; real ones are 1024 bytes).
pub const MAX_BLOCK: usize = 64 * 1024;

/// Why a block could not be read or changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrubEnvError {
    /// No `# GRUB Environment Block` header.
    NoSignature,
    /// Larger than [`MAX_BLOCK`].
    TooLarge(usize),
    /// A line without `=` or a value running past the end: GRUB stops reading there.
    Broken(usize),
    /// The changes do not fit in the block's padding.
    NoSpace { name: String, need: usize, free: usize },
    /// A name GRUB could not read back (empty, or with `=` or a newline).
    BadName(String),
    /// After the edit GRUB would not read this variable back as written (an escape or a
    /// duplicate earlier in the block hides it).
    Hidden(String),
}

impl fmt::Display for GrubEnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrubEnvError::NoSignature => {
                write!(f, "not a GRUB environment block (no `# GRUB Environment Block` header)")
            }
            GrubEnvError::TooLarge(n) => write!(f, "{n} bytes is larger than the {MAX_BLOCK}-byte limit"),
            GrubEnvError::Broken(off) => write!(f, "broken line at byte {off}"),
            GrubEnvError::NoSpace { name, need, free } => {
                write!(f, "setting `{name}` needs {need} more bytes, the block has {free} free")
            }
            GrubEnvError::BadName(n) => write!(f, "`{n}` is not a variable name GRUB can store"),
            GrubEnvError::Hidden(n) => write!(f, "`{n}` would not read back as written (the block is damaged)"),
        }
    }
}

impl core::error::Error for GrubEnvError {}

/// What [`parse`] read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvBlock {
    /// The variables, in file order.
    pub vars: Vec<(String, String)>,
    /// A broken line ends the block as it ends GRUB's reading: the variables before it are
    /// kept, and this says where.
    pub broken: Option<GrubEnvError>,
}

/// The variables of a block.
pub fn parse(block: &[u8]) -> Result<EnvBlock, GrubEnvError> {
    if block.len() > MAX_BLOCK {
        return Err(GrubEnvError::TooLarge(block.len()));
    }
    if !block.starts_with(SIGNATURE) {
        return Err(GrubEnvError::NoSignature);
    }
    let mut vars = Vec::new();
    let end = block.len();
    let mut p = SIGNATURE.len();
    while p < end {
        if block[p] != b'#' {
            let name_start = p;
            while p < end && block[p] != b'=' {
                p += 1;
            }
            if p == end {
                return Ok(EnvBlock { vars, broken: Some(GrubEnvError::Broken(name_start)) });
            }
            let name = String::from_utf8_lossy(&block[name_start..p]).into_owned();
            p += 1;
            let mut value = Vec::new();
            loop {
                match block.get(p) {
                    None => return Ok(EnvBlock { vars, broken: Some(GrubEnvError::Broken(name_start)) }),
                    Some(b'\n') => break,
                    Some(b'\\') => match block.get(p + 1) {
                        Some(&c) => {
                            value.push(c);
                            p += 2;
                        }
                        None => return Ok(EnvBlock { vars, broken: Some(GrubEnvError::Broken(name_start)) }),
                    },
                    Some(&c) => {
                        value.push(c);
                        p += 1;
                    }
                }
            }
            vars.push((name, String::from_utf8_lossy(&value).into_owned()));
        }
        p = next_line(block, p);
    }
    Ok(EnvBlock { vars, broken: None })
}

/// The variables as a map (later lines win, as GRUB's `load_env` sets them in order).
pub fn parse_env(block: &[u8]) -> Result<super::menu::Env, GrubEnvError> {
    Ok(parse(block)?.vars.into_iter().collect())
}

/// `find_next_line`: the byte after the newline ending the line at `p` (escapes skipped).
fn next_line(b: &[u8], mut p: usize) -> usize {
    while p < b.len() {
        match b[p] {
            b'\\' => p += 2,
            b'\n' => break,
            _ => p += 1,
        }
    }
    p + 1
}

fn escaped_len(v: &str) -> usize {
    v.bytes().map(|c| if c == b'\\' || c == b'\n' { 2 } else { 1 }).sum()
}

/// Length of the (escaped) value starting at `p`, up to its newline; `None` if it runs off.
fn value_len(b: &[u8], p: usize) -> Option<usize> {
    let mut len = 0;
    while p + len < b.len() && b[p + len] != b'\n' {
        len += if b[p + len] == b'\\' { 2 } else { 1 };
    }
    (p + len < b.len()).then_some(len)
}

/// Where the `name=` line starts, scanning lines like GRUB (`limit`: stop before here).
fn find_var(b: &[u8], name: &[u8], limit: usize) -> Option<usize> {
    let mut p = SIGNATURE.len();
    while p + name.len() + 1 < limit {
        if b[p..].starts_with(name) && b.get(p + name.len()) == Some(&b'=') {
            return Some(p);
        }
        p = next_line(b, p);
    }
    None
}

/// `grub_envblk_set`.
fn set(b: &mut [u8], name: &str, value: &str) -> Result<(), GrubEnvError> {
    let pend = b.len();
    let nl = name.len();
    let vl = escaped_len(value);
    // The free space: the `#` run at the end, after the last newline.
    let mut space = pend;
    while space > SIGNATURE.len() && b[space - 1] == b'#' {
        space -= 1;
    }
    if space == 0 || b[space - 1] != b'\n' {
        return Err(GrubEnvError::Broken(space.saturating_sub(1)));
    }
    let free = pend - space;
    let mut p = match find_var(b, name.as_bytes(), space) {
        Some(line) => {
            let p = line + nl + 1;
            let len = value_len(b, p).ok_or(GrubEnvError::Broken(line))?;
            if vl > len && vl - len > free {
                return Err(GrubEnvError::NoSpace { name: name.to_string(), need: vl - len, free });
            }
            if vl < len {
                b.copy_within(p + len..pend, p + vl);
                b[space - (len - vl)..space].fill(b'#');
            } else {
                b.copy_within(p + len..pend - (vl - len), p + vl);
            }
            p
        }
        None => {
            if nl + 1 + vl + 1 > free {
                return Err(GrubEnvError::NoSpace { name: name.to_string(), need: nl + vl + 2, free });
            }
            b[space..space + nl].copy_from_slice(name.as_bytes());
            b[space + nl] = b'=';
            space + nl + 1
        }
    };
    for &c in value.as_bytes() {
        if c == b'\\' || c == b'\n' {
            b[p] = b'\\';
            p += 1;
        }
        b[p] = c;
        p += 1;
    }
    b[p] = b'\n';
    Ok(())
}

/// `grub_envblk_delete`.
fn delete(b: &mut [u8], name: &str) {
    let pend = b.len();
    let Some(p) = find_var(b, name.as_bytes(), pend) else { return };
    let Some(vlen) = value_len(b, p + name.len() + 1) else { return };
    let len = name.len() + 1 + vlen + 1;
    b.copy_within(p + len..pend, p);
    b[pend - len..].fill(b'#');
}

/// The block with `changes` applied in order (`Some`: set, `None`: delete), same size as
/// `block`. Nothing is changed when one does not fit, or when the block has a broken line.
pub fn update(block: &[u8], changes: &[(String, Option<String>)]) -> Result<Vec<u8>, GrubEnvError> {
    if block.len() > MAX_BLOCK {
        return Err(GrubEnvError::TooLarge(block.len()));
    }
    if !block.starts_with(SIGNATURE) {
        return Err(GrubEnvError::NoSignature);
    }
    // GRUB would read a name running on from a line without `=` into the next lines (ours
    // included): do not write into a block it cannot read line by line.
    if let Some(b) = parse(block)?.broken {
        return Err(b);
    }
    let mut p = SIGNATURE.len();
    while p < block.len() {
        if block[p] != b'#' {
            let eq = block[p..].iter().position(|&c| c == b'=' || c == b'\n');
            if eq.is_none_or(|i| block[p + i] == b'\n') {
                return Err(GrubEnvError::Broken(p));
            }
        }
        p = next_line(block, p);
    }
    let mut b = block.to_vec();
    for (name, value) in changes {
        if name.is_empty() || name.contains(['=', '\n']) || name.starts_with('#') {
            return Err(GrubEnvError::BadName(name.clone()));
        }
        match value {
            Some(v) => set(&mut b, name, v)?,
            None => delete(&mut b, name),
        }
    }
    debug_assert_eq!(b.len(), block.len());
    // Read it back as `load_env` will (later lines win): an escape or a duplicate in the old
    // block can hide what GRUB's in-place edit wrote, and then the block is not written.
    let back = parse(&b)?;
    if let Some(e) = back.broken {
        return Err(e);
    }
    let env: super::menu::Env = back.vars.into_iter().collect();
    for (name, value) in changes {
        if env.get(name) != value.as_ref() {
            return Err(GrubEnvError::Hidden(name.clone()));
        }
    }
    Ok(b)
}

/// A fresh block of `size` bytes holding `vars` (what `grub-editenv create` + `set` make).
pub fn create(size: usize, vars: &[(String, String)]) -> Result<Vec<u8>, GrubEnvError> {
    if size < SIGNATURE.len() + 1 {
        return Err(GrubEnvError::NoSpace { name: "#".into(), need: SIGNATURE.len() + 1, free: size });
    }
    let mut b = Vec::with_capacity(size);
    b.extend_from_slice(SIGNATURE);
    b.resize(size, b'#');
    let changes: Vec<(String, Option<String>)> = vars.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
    update(&b, &changes)
}

/// For messages: changes as [`update`] takes them, `name=value` to set, `-name` to unset.
pub fn describe_changes(changes: &[(String, Option<String>)]) -> String {
    let words: Vec<String> = changes
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => format!("-{k}"),
        })
        .collect();
    words.join(" ")
}

/// For messages: `name=value` lines of a parsed block.
pub fn describe(vars: &[(String, String)]) -> String {
    vars.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ext4_rewrites_blocks_of_this_size() {
        assert_eq!(super::BLOCK_SIZE as u64, crate::fs::ext4::IN_PLACE_FILE_SIZE);
    }

    use super::*;

    fn s(v: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        v.iter().map(|(k, v)| (k.to_string(), v.map(String::from))).collect()
    }

    #[test]
    fn round_trip_like_grub_editenv() {
        let b = create(BLOCK_SIZE, &[]).unwrap();
        assert_eq!(b.len(), 1024);
        let b = update(&b, &s(&[("saved_entry", Some("gnulinux-advanced-U>gnulinux-6.1")), ("next_entry", Some(""))]))
            .unwrap();
        assert!(
            b.starts_with(b"# GRUB Environment Block\nsaved_entry=gnulinux-advanced-U>gnulinux-6.1\nnext_entry=\n###")
        );
        // Shrink, grow, delete: the block stays 1024 bytes, padding follows the lines.
        let b = update(&b, &s(&[("saved_entry", Some("0")), ("next_entry", Some("a\\b\nc")), ("x", None)])).unwrap();
        assert_eq!(b.len(), 1024);
        let EnvBlock { vars, broken } = parse(&b).unwrap();
        assert!(broken.is_none());
        assert_eq!(vars, [("saved_entry".into(), "0".into()), ("next_entry".into(), "a\\b\nc".into())]);
        assert!(b.starts_with(b"# GRUB Environment Block\nsaved_entry=0\nnext_entry=a\\\\b\\\nc\n#"));
        let b = update(&b, &s(&[("saved_entry", None)])).unwrap();
        assert_eq!(parse(&b).unwrap().vars, [("next_entry".to_string(), "a\\b\nc".to_string())]);
        assert_eq!(b.len(), 1024);
        assert!(b[b.len() - 100..].iter().all(|&c| c == b'#'));
    }

    #[test]
    fn never_grows() {
        let b = create(64, &[]).unwrap();
        let e = update(&b, &s(&[("k", Some(&"v".repeat(100)))])).unwrap_err();
        assert!(matches!(e, GrubEnvError::NoSpace { .. }), "{e}");
        let b = update(&b, &s(&[("k", Some("12345"))])).unwrap();
        assert!(update(&b, &s(&[("k", Some(&"v".repeat(60)))])).is_err());
        assert_eq!(update(&b, &s(&[("k", Some("1234567890123"))])).unwrap().len(), 64);
    }

    #[test]
    fn broken_and_foreign() {
        assert_eq!(parse(b"hello"), Err(GrubEnvError::NoSignature));
        // As in GRUB, a name runs to the next `=`, across lines.
        let EnvBlock { vars, broken: err } =
            parse(b"# GRUB Environment Block\na=1\n# comment\nnoequals\nb=2\nc\n").unwrap();
        assert_eq!(vars, [("a".to_string(), "1".to_string()), ("noequals\nb".to_string(), "2".to_string())]);
        assert!(matches!(err, Some(GrubEnvError::Broken(_))));
        let EnvBlock { vars, broken: err } = parse(b"# GRUB Environment Block\na=1").unwrap();
        assert!(vars.is_empty() && err.is_some());
        assert!(update(b"# GRUB Environment Block\nab", &s(&[("a", Some("x"))])).is_err());
        // A `\` at the end of a comment line hides the next line from GRUB's reader.
        let mut b = b"# GRUB Environment Block\n#x\\\n".to_vec();
        b.resize(64, b'#');
        assert_eq!(update(&b, &s(&[("a", Some("1"))])), Err(GrubEnvError::Hidden("a".into())));
        // An empty line would make GRUB read the next variable's name as "\nname".
        assert!(update(b"# GRUB Environment Block\n\na=1\n####", &s(&[("b", Some(""))])).is_err());
        assert!(matches!(
            update(&create(1024, &[]).unwrap(), &s(&[("a=b", Some("x"))])),
            Err(GrubEnvError::BadName(_))
        ));
    }
}
