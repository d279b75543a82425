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
            XsError::Timeout => f.write_str("xenstore: no answer in time"),
            XsError::Protocol(why) => write!(f, "xenstore: bad answer: {why}"),
            XsError::NoStore => f.write_str("xenstore: the domain has no xenstore ring"),
        }
    }
}

/// How the client tells xenstored it moved an index, and waits for it to move one: an
/// event channel on Xen, a thread in the host tests.
pub trait Doorbell {
    /// Tell the peer an index moved.
    fn notify(&mut self);
    /// Forget a notification already seen (before the indices are read again).
    fn clear(&mut self);
    /// Block until the peer notifies, or about `max_us` passed.
    fn wait(&mut self, max_us: u64);
}

/// xenstored's event channel.
struct Evtchn(u32);

impl Doorbell for Evtchn {
    fn notify(&mut self) {
        super::evtchn_send(self.0);
    }
    fn clear(&mut self) {
        super::evtchn_clear(self.0);
    }
    fn wait(&mut self, max_us: u64) {
        super::wait_event(self.0, max_us);
    }
}

/// The xenstore connection.
pub struct Xenstore {
    ring: *mut XenstoreDomainInterface,
    bell: alloc::boxed::Box<dyn Doorbell>,
    next_id: u32,
    /// How long one request may take.
    request_ms: u64,
}

/// How long one request may take.
const REQUEST_MS: u64 = 5000;

impl Xenstore {
    /// Connect through the ring Xen's HVM parameters name.
    pub fn open() -> Result<Xenstore, XsError> {
        if let Some((va, port)) = super::pv::store_ring() {
            // SAFETY: PV: start_info's store page, mapped one to one (pv::init), shared
            // with xenstored alone for the life of the domain.
            return Ok(unsafe {
                Xenstore::over(
                    va as usize as *mut XenstoreDomainInterface,
                    alloc::boxed::Box::new(Evtchn(port)),
                    REQUEST_MS,
                )
            });
        }
        let pfn = super::hvm_param(HVM_PARAM_STORE_PFN).map_err(|_| XsError::NoStore)?;
        let port = super::hvm_param(HVM_PARAM_STORE_EVTCHN).map_err(|_| XsError::NoStore)?;
        if pfn == 0 || pfn >= (1 << 20) {
            return Err(XsError::NoStore);
        }
        let ring = (pfn << 12) as usize as *mut XenstoreDomainInterface;
        // SAFETY: the store page Xen names (below 4 GiB, identity mapped by pvh.S) is
        // shared with xenstored alone and lives as long as the domain.
        Ok(unsafe { Xenstore::over(ring, alloc::boxed::Box::new(Evtchn(port as u32)), REQUEST_MS) })
    }

    /// A connection over the ring at `ring`, rung through `bell`, each request given
    /// `request_ms`.
    ///
    /// # Safety
    /// `ring` must stay valid for reads and writes as long as the connection lives, and
    /// be shared with nothing but the peer (which may write it at any time).
    pub unsafe fn over(
        ring: *mut XenstoreDomainInterface,
        bell: alloc::boxed::Box<dyn Doorbell>,
        request_ms: u64,
    ) -> Xenstore {
        Xenstore { ring, bell, next_id: 1, request_ms }
    }

    fn send(&mut self, bytes: &[u8], deadline: &Deadline) -> Result<(), XsError> {
        let r = self.ring;
        let mut rest = bytes;
        while !rest.is_empty() {
            // SAFETY: the ring is valid and shared only with the peer (`over`'s contract):
            // indices volatile, data published by a fence and then the producer index.
            let (cons, prod) = unsafe {
                (core::ptr::read_volatile(&raw const (*r).req_cons), core::ptr::read_volatile(&raw const (*r).req_prod))
            };
            // The peer's index is bounded before use (xs_wire.h: prod - cons never exceeds
            // the ring), then the reads are ordered before the data writes.
            let used = check_indexes(cons, prod)?;
            fence(Ordering::Acquire);
            let free = XENSTORE_RING_SIZE as usize - used;
            if free == 0 {
                self.bell.notify();
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
            self.bell.notify();
            rest = &rest[n..];
        }
        Ok(())
    }

    fn recv(&mut self, out: &mut [u8], deadline: &Deadline) -> Result<(), XsError> {
        let r = self.ring;
        let mut got = 0;
        while got < out.len() {
            self.bell.clear();
            // SAFETY: as in `send`, for the response ring.
            let (cons, prod) = unsafe {
                (core::ptr::read_volatile(&raw const (*r).rsp_cons), core::ptr::read_volatile(&raw const (*r).rsp_prod))
            };
            let avail = check_indexes(cons, prod)?;
            // The data is read only after the producer index (Linux's xb_read: virt_rmb).
            fence(Ordering::Acquire);
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
            self.bell.notify();
            got += n;
        }
        Ok(())
    }

    fn wait(&mut self, deadline: &Deadline) -> Result<(), XsError> {
        if deadline.expired() {
            return Err(XsError::Timeout);
        }
        self.bell.wait(deadline.remaining_us().min(20_000));
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
        let deadline = Deadline::after_ms(self.request_ms);
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

/// How many bytes lie between `cons` and `prod` on a xenstore ring, if the indices make
/// sense: xenstored may never be more than a ring ahead (Linux's check_indexes).
fn check_indexes(cons: u32, prod: u32) -> Result<usize, XsError> {
    match prod.wrapping_sub(cons) {
        n if n <= XENSTORE_RING_SIZE => Ok(n as usize),
        _ => Err(XsError::Protocol("ring indexes more than a ring apart (ring corrupt)")),
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
    use std::boxed::Box;
    use std::string::ToString;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    /// The ring as both threads see it: a page shared like the one xenstored maps.
    #[derive(Clone, Copy)]
    struct Ring(*mut XenstoreDomainInterface);
    // SAFETY: the page is leaked (lives for the test), and both sides touch it only with
    // volatile accesses and fences, as two domains would.
    unsafe impl Send for Ring {}

    impl Ring {
        fn new(start: u32) -> Ring {
            let r = Box::leak(Box::new(XenstoreDomainInterface {
                req: [0; 1024],
                rsp: [0; 1024],
                req_cons: start,
                req_prod: start,
                rsp_cons: start,
                rsp_prod: start,
                server_features: 0,
                connection: 0,
                error: 0,
            }));
            Ring(r)
        }
        /// The index at byte offset `at` (one of the `*_CONS`/`*_PROD` below).
        fn idx(self, at: usize) -> *mut u32 {
            self.0.cast::<u8>().wrapping_add(at).cast::<u32>()
        }
        fn get(self, at: usize) -> u32 {
            // SAFETY: an aligned u32 field inside the leaked page.
            unsafe { core::ptr::read_volatile(self.idx(at)) }
        }
        fn set(self, at: usize, v: u32) {
            // SAFETY: as in `get`.
            unsafe { core::ptr::write_volatile(self.idx(at), v) }
        }
    }

    const REQ_CONS: usize = core::mem::offset_of!(XenstoreDomainInterface, req_cons);
    const REQ_PROD: usize = core::mem::offset_of!(XenstoreDomainInterface, req_prod);
    const RSP_CONS: usize = core::mem::offset_of!(XenstoreDomainInterface, rsp_cons);
    const RSP_PROD: usize = core::mem::offset_of!(XenstoreDomainInterface, rsp_prod);

    /// The client's doorbell in a test: the peer polls, so ringing is a no-op and waiting
    /// is letting the peer run.
    struct Yield;
    impl Doorbell for Yield {
        fn notify(&mut self) {}
        fn clear(&mut self) {}
        fn wait(&mut self, _: u64) {
            std::thread::yield_now();
        }
    }

    /// A fake xenstored on another thread: it takes requests `rchunk` bytes at a time and
    /// writes each answer `wchunk` bytes at a time (yielding between chunks, so the client
    /// sees every partial state: a header split anywhere, a payload across the ring's end
    /// and across the u32 index wrap). Before the answer it may send a watch event and an
    /// answer to another request id, which the client must skip. A READ of `p` answers
    /// `value of p` padded to `pad` bytes.
    fn peer(ring: Ring, rchunk: usize, wchunk: usize, noise: bool, pad: usize, stop: Arc<AtomicBool>) {
        let take = |n: usize, stop: &AtomicBool| -> Option<std::vec::Vec<u8>> {
            let mut out = std::vec::Vec::new();
            while out.len() < n {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
                let (cons, prod) = (ring.get(REQ_CONS), ring.get(REQ_PROD));
                fence(Ordering::Acquire);
                let k = (prod.wrapping_sub(cons) as usize).min(n - out.len()).min(rchunk);
                for i in 0..k {
                    // SAFETY: inside the leaked page; masked index.
                    out.push(unsafe { (*ring.0).req[(cons.wrapping_add(i as u32) & 1023) as usize] });
                }
                fence(Ordering::Release);
                ring.set(REQ_CONS, cons.wrapping_add(k as u32));
                std::thread::yield_now();
            }
            Some(out)
        };
        let put = |bytes: &[u8], stop: &AtomicBool| {
            let mut rest = bytes;
            while !rest.is_empty() && !stop.load(Ordering::Relaxed) {
                let (cons, prod) = (ring.get(RSP_CONS), ring.get(RSP_PROD));
                fence(Ordering::Acquire);
                let free = 1024 - prod.wrapping_sub(cons) as usize;
                let k = free.min(rest.len()).min(wchunk);
                for (i, &b) in rest[..k].iter().enumerate() {
                    // SAFETY: as above.
                    unsafe { (*ring.0).rsp[(prod.wrapping_add(i as u32) & 1023) as usize] = b };
                }
                fence(Ordering::Release);
                ring.set(RSP_PROD, prod.wrapping_add(k as u32));
                rest = &rest[k..];
                std::thread::yield_now();
            }
        };
        let msg = |ty: u32, id: u32, payload: &[u8]| {
            let mut m = encode_header(&XsdSockmsg { ty, req_id: id, tx_id: 0, len: payload.len() as u32 }).to_vec();
            m.extend_from_slice(payload);
            m
        };
        loop {
            let Some(h) = take(16, &stop) else { return };
            let h = decode_header(&h.try_into().unwrap());
            let Some(body) = take(h.len as usize, &stop) else { return };
            if noise {
                put(&msg(XS_WATCH_EVENT, 0, b"/some/path\0token\0"), &stop);
                put(&msg(h.ty, h.req_id.wrapping_add(100), b"not yours\0"), &stop);
            }
            let path = cstr(&body);
            let mut v = std::format!("value of {path}").into_bytes();
            v.resize(v.len().max(pad), b'.');
            put(&msg(h.ty, h.req_id, &v), &stop);
        }
    }

    fn client(ring: Ring, ms: u64) -> Xenstore {
        // SAFETY: the leaked page lives for the rest of the test; only the peer shares it.
        unsafe { Xenstore::over(ring.0, Box::new(Yield), ms) }
    }

    /// Every chunking of requests and answers, at ring positions where messages cross the
    /// ring's end and where the u32 indices wrap: each answer arrives whole and in order.
    #[test]
    fn fake_peer_in_every_interleaving() {
        for start in [0u32, 1010, u32::MAX - 6] {
            for (rchunk, wchunk) in [(1, 1), (1, 16), (3, 5), (16, 1), (17, 1024), (1024, 7), (1024, 1024)] {
                for (noise, pad) in [(false, 0), (true, 0), (true, 3000)] {
                    let ring = Ring::new(start);
                    let stop = Arc::new(AtomicBool::new(false));
                    let s2 = stop.clone();
                    let t = std::thread::spawn(move || peer(ring, rchunk, wchunk, noise, pad, s2));
                    let mut xs = client(ring, 10_000);
                    for p in ["device/vbd", "a/much/longer/path/than/the/first/one", "x"] {
                        let mut want = std::format!("value of {p}");
                        while want.len() < pad {
                            want.push('.');
                        }
                        let got = xs.read(p);
                        assert_eq!(
                            got.as_deref(),
                            Ok(want.as_str()),
                            "start {start} chunks {rchunk}/{wchunk} noise {noise} pad {pad}"
                        );
                    }
                    stop.store(true, Ordering::Relaxed);
                    t.join().unwrap();
                }
            }
        }
    }

    /// A peer whose producer index runs more than a ring ahead: a clear error, at once.
    #[test]
    fn corrupt_indices_are_an_error_not_a_hang() {
        let ring = Ring::new(0);
        ring.set(RSP_PROD, 5000);
        let mut xs = client(ring, 10_000);
        match xs.read("device/vbd") {
            Err(XsError::Protocol(why)) => assert!(why.contains("ring corrupt"), "{why}"),
            other => panic!("{other:?}"),
        }
        let ring = Ring::new(0);
        ring.set(REQ_CONS, 3000);
        assert!(matches!(client(ring, 10_000).read("x"), Err(XsError::Protocol(_))));
    }

    /// No peer at all: the request gives up when its time is up.
    #[test]
    fn silent_peer_times_out() {
        let t = std::time::Instant::now();
        assert_eq!(client(Ring::new(0), 100).read("x"), Err(XsError::Timeout));
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(XsError::Timeout.to_string(), "xenstore: no answer in time");
    }

    /// An answer claiming more than XENSTORE_PAYLOAD_MAX is refused before any allocation.
    #[test]
    fn oversized_answer_is_refused() {
        let ring = Ring::new(0);
        let h = encode_header(&XsdSockmsg { ty: XS_READ, req_id: 1, tx_id: 0, len: 1 << 30 });
        for (i, &b) in h.iter().enumerate() {
            // SAFETY: inside the leaked page.
            unsafe { (*ring.0).rsp[i] = b };
        }
        ring.set(RSP_PROD, 16);
        match client(ring, 10_000).read("x") {
            Err(XsError::Protocol(why)) => assert!(why.contains("XENSTORE_PAYLOAD_MAX"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

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
