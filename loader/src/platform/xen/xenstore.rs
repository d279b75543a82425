// SPDX-License-Identifier: MIT OR Apache-2.0
//! A xenstore client over the shared ring (`public/io/xs_wire.h`, `docs/misc/xenstore.txt`):
//! read, write, directory, rm and transactions, one request at a time, no watches (state
//! changes are polled). Relative paths resolve under `/local/domain/<domid>/`.
//!
//! Errors carry xenstored's own name for the failure (`ENOENT`, `EACCES`, ...).

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};

use crate::abi::xen::*;
use crate::platform::time::Deadline;

/// Why a xenstore request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XsError {
    /// xenstored answered with an error: its errno name (e.g. "ENOENT").
    Error(String),
    /// No answer in time.
    Timeout,
    /// The answer did not make sense.
    Protocol(&'static str),
    /// The domain has no xenstore page.
    NoStore,
}

impl core::fmt::Display for XsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            XsError::Error(e) => write!(f, "xenstore: {e}"),
            XsError::Timeout => f.write_str("xenstore: no answer within 5 s"),
            XsError::Protocol(why) => write!(f, "xenstore: bad answer: {why}"),
            XsError::NoStore => f.write_str("xenstore: the domain has no xenstore ring"),
        }
    }
}

/// The xenstore connection.
pub struct Xenstore {
    ring: *mut XenstoreDomainInterface,
    port: u32,
    next_id: u32,
}

/// How long one request may take.
const REQUEST_MS: u64 = 5000;

impl Xenstore {
    /// Connect through the ring Xen's HVM parameters name.
    pub fn open() -> Result<Xenstore, XsError> {
        let pfn = super::hvm_param(HVM_PARAM_STORE_PFN).map_err(|_| XsError::NoStore)?;
        let port = super::hvm_param(HVM_PARAM_STORE_EVTCHN).map_err(|_| XsError::NoStore)?;
        if pfn == 0 || pfn >= (1 << 20) {
            return Err(XsError::NoStore);
        }
        Ok(Xenstore { ring: (pfn << 12) as usize as *mut XenstoreDomainInterface, port: port as u32, next_id: 1 })
    }

    fn send(&mut self, bytes: &[u8], deadline: &Deadline) -> Result<(), XsError> {
        let r = self.ring;
        let mut rest = bytes;
        while !rest.is_empty() {
            // SAFETY: the xenstore page (HVM param, below 4 GiB, identity mapped) is
            // shared with xenstored: indices volatile, data published by a fence and
            // then the producer index.
            let (cons, prod) = unsafe {
                (core::ptr::read_volatile(&raw const (*r).req_cons), core::ptr::read_volatile(&raw const (*r).req_prod))
            };
            fence(Ordering::Acquire);
            let free = XENSTORE_RING_SIZE.saturating_sub(prod.wrapping_sub(cons)) as usize;
            if free == 0 {
                super::evtchn_send(self.port);
                self.wait(deadline)?;
                continue;
            }
            let n = free.min(rest.len());
            for (i, &b) in rest[..n].iter().enumerate() {
                let at = (prod.wrapping_add(i as u32) & (XENSTORE_RING_SIZE - 1)) as usize;
                // SAFETY: as above; `at` < 1024.
                unsafe { core::ptr::write_volatile(&raw mut (*r).req[at], b) };
            }
            fence(Ordering::Release);
            // SAFETY: as above.
            unsafe { core::ptr::write_volatile(&raw mut (*r).req_prod, prod.wrapping_add(n as u32)) };
            super::evtchn_send(self.port);
            rest = &rest[n..];
        }
        Ok(())
    }

    fn recv(&mut self, out: &mut [u8], deadline: &Deadline) -> Result<(), XsError> {
        let r = self.ring;
        let mut got = 0;
        while got < out.len() {
            super::evtchn_clear(self.port);
            // SAFETY: as in `send`, for the response ring.
            let (cons, prod) = unsafe {
                (core::ptr::read_volatile(&raw const (*r).rsp_cons), core::ptr::read_volatile(&raw const (*r).rsp_prod))
            };
            fence(Ordering::Acquire);
            let avail = prod.wrapping_sub(cons) as usize;
            if avail == 0 {
                self.wait(deadline)?;
                continue;
            }
            let n = avail.min(out.len() - got);
            for (i, b) in out[got..got + n].iter_mut().enumerate() {
                let at = (cons.wrapping_add(i as u32) & (XENSTORE_RING_SIZE - 1)) as usize;
                // SAFETY: as above; `at` < 1024.
                *b = unsafe { core::ptr::read_volatile(&raw const (*r).rsp[at]) };
            }
            fence(Ordering::Release);
            // SAFETY: as above.
            unsafe { core::ptr::write_volatile(&raw mut (*r).rsp_cons, cons.wrapping_add(n as u32)) };
            super::evtchn_send(self.port);
            got += n;
        }
        Ok(())
    }

    fn wait(&self, deadline: &Deadline) -> Result<(), XsError> {
        if deadline.expired() {
            return Err(XsError::Timeout);
        }
        super::wait_event(self.port, deadline.remaining_us().min(20_000));
        Ok(())
    }

    /// One request and its answer's payload. Watch events that arrive in between are
    /// dropped (rxen sets no watches).
    pub fn request(&mut self, ty: u32, tx: u32, parts: &[&[u8]]) -> Result<Vec<u8>, XsError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > XENSTORE_PAYLOAD_MAX as usize {
            return Err(XsError::Protocol("request longer than XENSTORE_PAYLOAD_MAX"));
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let hdr = XsdSockmsg { ty, req_id: id, tx_id: tx, len: len as u32 };
        let deadline = Deadline::after_ms(REQUEST_MS);
        self.send(&encode_header(&hdr), &deadline)?;
        for p in parts {
            self.send(p, &deadline)?;
        }
        loop {
            let mut h = [0u8; 16];
            self.recv(&mut h, &deadline)?;
            let rh = decode_header(&h);
            if rh.len > XENSTORE_PAYLOAD_MAX {
                return Err(XsError::Protocol("answer longer than XENSTORE_PAYLOAD_MAX"));
            }
            let mut payload = alloc::vec![0u8; rh.len as usize];
            self.recv(&mut payload, &deadline)?;
            if rh.ty == XS_WATCH_EVENT || rh.req_id != id {
                continue;
            }
            if rh.ty == XS_ERROR {
                return Err(XsError::Error(cstr(&payload)));
            }
            if rh.ty != ty {
                return Err(XsError::Protocol("answer of another type"));
            }
            return Ok(payload);
        }
    }

    /// The value at `path` (as text).
    pub fn read(&mut self, path: &str) -> Result<String, XsError> {
        self.read_tx(0, path)
    }

    /// [`Xenstore::read`] inside transaction `tx`.
    pub fn read_tx(&mut self, tx: u32, path: &str) -> Result<String, XsError> {
        let v = self.request(XS_READ, tx, &[path.as_bytes(), b"\0"])?;
        Ok(cstr(&v))
    }

    /// The value at `path` as a number.
    pub fn read_u64(&mut self, path: &str) -> Result<u64, XsError> {
        let s = self.read(path)?;
        s.trim().parse().map_err(|_| XsError::Protocol("not a number"))
    }

    /// Set `path` to `value`.
    pub fn write(&mut self, tx: u32, path: &str, value: &str) -> Result<(), XsError> {
        self.request(XS_WRITE, tx, &[path.as_bytes(), b"\0", value.as_bytes()]).map(|_| ())
    }

    /// Remove `path` (and what is below it). Absent is fine.
    pub fn rm(&mut self, tx: u32, path: &str) -> Result<(), XsError> {
        match self.request(XS_RM, tx, &[path.as_bytes(), b"\0"]) {
            Ok(_) => Ok(()),
            Err(XsError::Error(e)) if e == "ENOENT" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The children of `path`.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        let v = self.request(XS_DIRECTORY, 0, &[path.as_bytes(), b"\0"])?;
        Ok(split_nul(&v))
    }

    /// Start a transaction; its id.
    pub fn transaction_start(&mut self) -> Result<u32, XsError> {
        let v = self.request(XS_TRANSACTION_START, 0, &[b"\0"])?;
        cstr(&v).parse().map_err(|_| XsError::Protocol("transaction id is not a number"))
    }

    /// End transaction `tx`, committing when `commit`. `Err(Error("EAGAIN"))` means
    /// someone else changed what it read: run it again.
    pub fn transaction_end(&mut self, tx: u32, commit: bool) -> Result<(), XsError> {
        self.request(XS_TRANSACTION_END, tx, &[if commit { b"T\0" } else { b"F\0" }]).map(|_| ())
    }
}

/// The 16-byte wire header.
pub fn encode_header(h: &XsdSockmsg) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..4].copy_from_slice(&h.ty.to_le_bytes());
    b[4..8].copy_from_slice(&h.req_id.to_le_bytes());
    b[8..12].copy_from_slice(&h.tx_id.to_le_bytes());
    b[12..16].copy_from_slice(&h.len.to_le_bytes());
    b
}

/// Parse the 16-byte wire header.
pub fn decode_header(b: &[u8; 16]) -> XsdSockmsg {
    let w = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    XsdSockmsg { ty: w(0), req_id: w(4), tx_id: w(8), len: w(12) }
}

/// Text up to the first NUL (or all of it), lossily.
fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A DIRECTORY answer: NUL-terminated names.
pub fn split_nul(b: &[u8]) -> Vec<String> {
    b.split(|&c| c == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = XsdSockmsg { ty: XS_WRITE, req_id: 7, tx_id: 3, len: 12 };
        assert_eq!(decode_header(&encode_header(&h)), h);
        assert_eq!(encode_header(&h)[0], 11);
    }

    #[test]
    fn directory_answers_split() {
        assert_eq!(split_nul(b"51712\x0051728\x00"), ["51712", "51728"]);
        assert!(split_nul(b"").is_empty());
        assert_eq!(cstr(b"ENOENT\0"), "ENOENT");
    }
}
