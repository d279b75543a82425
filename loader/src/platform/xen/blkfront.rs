// SPDX-License-Identifier: MIT OR Apache-2.0
//! Xen blkfront: the guest's own disks on Xen (`public/io/blkif.h`, `io/xenbus.h`,
//! `docs/man/xen-vbd-interface.7`).
//!
//! Bring-up follows the xenbus handshake: read the backend's features, grant a shared ring
//! (several pages when it offers `max-ring-page-order`), allocate an event channel, publish
//! them in one transaction with state Initialised, wait for the backend to be Connected,
//! read `sectors`/`sector-size`/`info`, and say Connected.
//!
//! Reads go straight into the caller's buffer when it is sector aligned (always so for
//! kernels and initrds, which land in page-aligned guest memory): each 4 KiB page of it is
//! granted to the backend as one segment. Requests carry 11 segments, or with indirect
//! descriptors up to 256 (1 MiB); as many as the ring and the grant table allow are in
//! flight at once. Unaligned or small reads (metadata into heap buffers) go through a
//! bounce buffer.
//!
//! A request that times out must not leave the backend able to write memory the loader
//! reuses. So on a timeout every grant of every request in flight is ended
//! (`gnttab::end_access`, which fails while the backend still has the page mapped,
//! `GTF_reading`/`GTF_writing`), retried for [`GRACE_MS`]; pages still mapped after that
//! stay out of use for good: the loader's own (bounce, indirect) are leaked, the caller's
//! go into [`mem::QUARANTINE`], which every allocator of guest RAM skips and the kernel's
//! memory map reserves. Their grants are ended at [`BlkFront::release`], once the backend
//! is Closed (it has unmapped everything then). The device is then unusable
//! ([`BlockError::Broken`], [`BlockDevice::unusable`], which searches and configuration
//! lookups ask so as not to choose its volumes from cached metadata): its ring still holds
//! requests the backend may answer late, so slot ids could be confused. Only reads larger than the bounce buffer
//! go straight into the caller's buffer (kernels, initrds: guest RAM from the region
//! allocator); smaller ones, which land in heap memory the allocator cannot quarantine,
//! are bounced. The same holds for a grant still mapped when its response arrives (a
//! backend that answered before unmapping).
//!
//! [`BlkFront::release`] hands the disk back: Closing, Closed (the backend unmaps
//! everything), keys removed, grants revoked, event channel closed, and the frontend put
//! back to Initialising so the kernel's own blkfront connects as on a fresh boot.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::cell::RefCell;
use core::sync::atomic::{Ordering, fence};

use super::xenstore::{Xenstore, XsError};
use super::{evtchn_alloc_unbound, evtchn_clear, evtchn_close, evtchn_send, gnttab, wait_event};
use crate::abi::xen::*;
use crate::block::{BlockDevice, BlockError, check_request};
use crate::mem;
use crate::platform::time::Deadline;

const PAGE: usize = 4096;
/// Largest ring we ask for: 4 pages = 128 slots.
const MAX_RING_ORDER: u32 = 2;
/// Largest indirect request we build: 256 segments = 1 MiB, what Linux blkback offers.
const MAX_INDIRECT_SEGS: usize = 256;
/// Requests in flight at once (also bounds the indirect pages we keep).
const MAX_IN_FLIGHT: usize = 32;
/// Bounce buffer for unaligned reads.
const BOUNCE: usize = 64 << 10;
/// How long one request may take before the disk is declared dead.
const REQUEST_MS: u64 = 30_000;
/// How long the backend may take to change state.
const STATE_MS: u64 = 10_000;
/// After a timeout, how long to keep trying to end grants the backend still maps.
const GRACE_MS: u64 = 2_000;

/// A page-aligned, zeroed heap allocation (rings, indirect pages, bounce buffers).
struct Pages {
    ptr: *mut u8,
    len: usize,
    /// Granted to a backend that never let go: never freed.
    leaked: bool,
}

impl Pages {
    fn new(len: usize) -> Option<Pages> {
        let layout = Layout::from_size_align(len, PAGE).ok()?;
        // SAFETY: the layout has non-zero size (callers ask for >= one page).
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        (!ptr.is_null()).then_some(Pages { ptr, len, leaked: false })
    }
    fn addr(&self) -> u64 {
        self.ptr as u64
    }
    fn pfn(&self, page: usize) -> u64 {
        (self.addr() >> 12) + page as u64
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        if self.leaked {
            return; // a backend may still write it: the heap must never reuse it
        }
        // SAFETY: allocated in `new` with exactly this layout.
        unsafe { alloc::alloc::dealloc(self.ptr, Layout::from_size_align_unchecked(self.len, PAGE)) }
    }
}

/// Whose page a grant gives the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// The caller's buffer.
    Caller,
    /// Our bounce buffer.
    Bounce,
    /// Our indirect descriptor pages.
    Indirect,
}

/// One grant of a request: its reference, the page (frame number) and whose it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Granted {
    gref: u32,
    pfn: u64,
    owner: Owner,
}

/// One request on the ring: its grants, to revoke when it completes.
#[derive(Default)]
struct InFlight {
    busy: bool,
    grants: Vec<Granted>,
    status: i16,
    done: bool,
}

/// Ending a grant: `gnttab::end_access` on Xen; a fake backend in host tests.
trait EndAccess {
    /// False while the backend still maps the page (the grant stays live).
    fn end_access(&mut self, gref: u32) -> bool;
}

struct Gnttab;

impl EndAccess for Gnttab {
    fn end_access(&mut self, gref: u32) -> bool {
        gnttab::end_access(gref)
    }
}

/// End every grant of every request in flight and free the slots. Returns the grants
/// that could not be ended (the backend still maps those pages).
fn revoke_inflight(inflight: &mut [InFlight], gt: &mut impl EndAccess) -> Vec<Granted> {
    let mut stuck = Vec::new();
    for f in inflight.iter_mut().filter(|f| f.busy) {
        stuck.extend(core::mem::take(&mut f.grants).into_iter().filter(|g| !gt.end_access(g.gref)));
        *f = InFlight::default();
    }
    stuck
}

/// Retry ending `stuck` until none is left or `expired()`; `wait()` between rounds.
fn drain_stuck(
    stuck: &mut Vec<Granted>,
    gt: &mut impl EndAccess,
    mut expired: impl FnMut() -> bool,
    mut wait: impl FnMut(),
) {
    loop {
        stuck.retain(|g| !gt.end_access(g.gref));
        if stuck.is_empty() || expired() {
            return;
        }
        wait();
    }
}

/// Where the pages of grants that stay mapped for good are: (caller's pages as page
/// ranges `(addr, len)`, the bounce buffer, the indirect pages).
fn stranded(stuck: &[Granted]) -> (Vec<(u64, u64)>, bool, bool) {
    let mut caller: Vec<(u64, u64)> = Vec::new();
    for g in stuck.iter().filter(|g| g.owner == Owner::Caller) {
        let at = g.pfn << 12;
        match caller.last_mut() {
            Some((a, l)) if *a + *l == at => *l += PAGE as u64,
            _ => caller.push((at, PAGE as u64)),
        }
    }
    let has = |o: Owner| stuck.iter().any(|g| g.owner == o);
    (caller, has(Owner::Bounce), has(Owner::Indirect))
}

/// One Xen virtual block device.
pub struct BlkFront {
    xs: Rc<RefCell<Xenstore>>,
    /// `device/vbd/<devid>`.
    frontend: String,
    backend: String,
    backend_id: u16,
    devid: u32,
    sector_size: u32,
    /// In `sector_size` units.
    sectors: u64,
    info: u32,
    ring: Pages,
    ring_order: u32,
    ring_grants: Vec<u32>,
    slots: usize,
    req_prod: u32,
    rsp_cons: u32,
    port: u32,
    /// Segments per request (11 without indirect descriptors).
    max_segs: usize,
    indirect: bool,
    /// One indirect page per in-flight slot (when `indirect`).
    indirect_pages: Option<Pages>,
    inflight: Vec<InFlight>,
    bounce: Pages,
    /// Grants found still mapped when their request completed, to settle before the
    /// buffer goes back to the caller.
    stuck: Vec<Granted>,
    /// Grants still mapped after [`GRACE_MS`], their pages out of use for good; ended at
    /// [`BlkFront::release`] once the backend is Closed (it has unmapped everything then),
    /// so that no grant outlives the handoff.
    stranded: Vec<Granted>,
    released: bool,
    /// The ring keys were published (a backend may map the ring).
    published: bool,
    /// Set after a timeout: the ring is in an unknown state.
    broken: Option<&'static str>,
}

/// What [`probe`] found: a disk's name, a description, and the device or why it failed.
pub type Probed = (String, String, Result<BlkFront, String>);

/// Every `device/vbd/*` of this domain, in device-number order (xvda, xvdb, ...).
pub fn probe(xs: &Rc<RefCell<Xenstore>>) -> Vec<Probed> {
    let ids = match xs.borrow_mut().directory("device/vbd") {
        Ok(v) => v,
        Err(_) => return Vec::new(), // no disks at all: ENOENT
    };
    let mut ids: Vec<u32> = ids.iter().filter_map(|s| s.parse().ok()).collect();
    ids.sort_unstable();
    let mut out = Vec::new();
    for id in ids {
        let Some(name) = vbd_name(id) else { continue };
        match BlkFront::open(xs.clone(), id) {
            Ok(d) => {
                let desc = d.describe();
                out.push((name, desc, Ok(d)));
            }
            Err(e) => out.push((name, format!("Xen vbd {id}"), Err(e))),
        }
    }
    out
}

fn xs_err(what: &str, e: XsError) -> String {
    format!("{what}: {e}")
}

impl BlkFront {
    /// Connect to the backend of `device/vbd/<devid>`.
    pub fn open(xs: Rc<RefCell<Xenstore>>, devid: u32) -> Result<BlkFront, String> {
        let frontend = format!("device/vbd/{devid}");
        let (backend, backend_id) = {
            let mut x = xs.borrow_mut();
            let b = x.read(&format!("{frontend}/backend")).map_err(|e| xs_err("reading backend", e))?;
            let id = x.read_u64(&format!("{frontend}/backend-id")).map_err(|e| xs_err("reading backend-id", e))?;
            (b, id as u16)
        };
        let bounce = Pages::new(BOUNCE).ok_or("no memory for a bounce buffer")?;
        let mut d = BlkFront {
            xs,
            frontend,
            backend,
            backend_id,
            devid,
            sector_size: 512,
            sectors: 0,
            info: 0,
            ring: Pages::new(PAGE).ok_or("no memory for the ring")?,
            ring_order: 0,
            ring_grants: Vec::new(),
            slots: 0,
            req_prod: 0,
            rsp_cons: 0,
            port: 0,
            max_segs: BLKIF_MAX_SEGMENTS_PER_REQUEST,
            indirect: false,
            indirect_pages: None,
            inflight: Vec::new(),
            bounce,
            stuck: Vec::new(),
            stranded: Vec::new(),
            released: false,
            published: false,
            broken: None,
        };
        match d.connect() {
            Ok(()) => Ok(d),
            Err(e) => {
                d.abandon();
                Err(e)
            }
        }
    }

    fn backend_state(&self) -> Result<u32, String> {
        let s = self.xs.borrow_mut().read_u64(&format!("{}/state", self.backend));
        s.map(|v| v as u32).map_err(|e| xs_err("reading the backend state", e))
    }

    fn set_state(&self, state: u32) -> Result<(), String> {
        let path = format!("{}/state", self.frontend);
        self.xs.borrow_mut().write(0, &path, &format!("{state}")).map_err(|e| xs_err("writing the frontend state", e))
    }

    /// Wait until the backend's state satisfies `ok`; `bad` states end the wait with an error.
    fn wait_backend(&self, what: &str, ok: impl Fn(u32) -> bool, bad: impl Fn(u32) -> bool) -> Result<u32, String> {
        let d = Deadline::after_ms(STATE_MS);
        // Polling xenstore is cheap for us but not for dom0: pace it.
        wait_state(what, || self.backend_state(), ok, bad, || d.expired(), || super::sleep_us(5_000), STATE_MS)
    }

    fn backend_u64(&self, key: &str) -> Option<u64> {
        self.xs.borrow_mut().read_u64(&format!("{}/{key}", self.backend)).ok()
    }

    fn connect(&mut self) -> Result<(), String> {
        use xenbus_state::*;
        // A backend left Closed by an earlier frontend reconnects from Initialising.
        let s = self.backend_state()?;
        if s == CLOSING || s == CLOSED {
            self.set_state(INITIALISING)?;
        }
        self.wait_backend("InitWait", |s| s == INIT_WAIT || s == CONNECTED, |s| s > CONNECTED)?;

        self.ring_order = self.backend_u64("max-ring-page-order").map_or(0, |o| (o as u32).min(MAX_RING_ORDER));
        let ring_bytes = PAGE << self.ring_order;
        self.ring = Pages::new(ring_bytes).ok_or("no memory for the ring")?;
        self.slots = ring_slots(ring_bytes, BLKIF_SLOT);
        self.init_ring();
        for i in 0..(1usize << self.ring_order) {
            let g = gnttab::grant(self.backend_id, self.ring.pfn(i), false).ok_or("grant table full")?;
            self.ring_grants.push(g);
        }
        if let Some(n) = self.backend_u64("feature-max-indirect-segments")
            && n as usize > BLKIF_MAX_SEGMENTS_PER_REQUEST
        {
            self.max_segs = (n as usize).min(MAX_INDIRECT_SEGS);
            self.indirect = true;
            self.indirect_pages = Some(Pages::new(PAGE * MAX_IN_FLIGHT).ok_or("no memory for indirect pages")?);
        }
        self.inflight = (0..self.slots.min(MAX_IN_FLIGHT)).map(|_| InFlight::default()).collect();
        self.port = evtchn_alloc_unbound(self.backend_id).map_err(|e| format!("{e}"))?;

        // Publish ring, event channel and protocol with state Initialised, atomically.
        let mut tries = 0;
        loop {
            let mut xs = self.xs.borrow_mut();
            let tx = xs.transaction_start().map_err(|e| xs_err("starting a transaction", e))?;
            let fe = &self.frontend;
            let r = (|| -> Result<(), XsError> {
                if self.ring_order == 0 {
                    xs.write(tx, &format!("{fe}/ring-ref"), &format!("{}", self.ring_grants[0]))?;
                } else {
                    xs.write(tx, &format!("{fe}/ring-page-order"), &format!("{}", self.ring_order))?;
                    for (i, g) in self.ring_grants.iter().enumerate() {
                        xs.write(tx, &format!("{fe}/ring-ref{i}"), &format!("{g}"))?;
                    }
                }
                xs.write(tx, &format!("{fe}/event-channel"), &format!("{}", self.port))?;
                xs.write(tx, &format!("{fe}/protocol"), "x86_64-abi")?;
                xs.write(tx, &format!("{fe}/state"), &format!("{INITIALISED}"))
            })();
            match r {
                Ok(()) => match xs.transaction_end(tx, true) {
                    Ok(()) => {
                        self.published = true;
                        break;
                    }
                    Err(XsError::Error(e)) if e == "EAGAIN" && tries < 5 => tries += 1,
                    Err(e) => return Err(xs_err("committing the ring keys", e)),
                },
                Err(e) => {
                    let _ = xs.transaction_end(tx, false);
                    return Err(xs_err("writing the ring keys", e));
                }
            }
        }
        self.wait_backend("Connected", |s| s == CONNECTED, |s| s > CONNECTED)?;

        let sectors_512 = self.backend_u64("sectors").ok_or("the backend published no `sectors`")?;
        self.sector_size = self.backend_u64("sector-size").map_or(512, |s| s as u32);
        if !self.sector_size.is_power_of_two() || !(512..=4096).contains(&self.sector_size) {
            return Err(format!("unsupported sector-size {}", self.sector_size));
        }
        // `sectors` is always in 512-byte units (blkif.h).
        self.sectors = sectors_512 / u64::from(self.sector_size / 512);
        self.info = self.backend_u64("info").unwrap_or(0) as u32;
        self.set_state(CONNECTED)?;
        Ok(())
    }

    fn init_ring(&mut self) {
        // SHARED_RING_INIT: producers 0, events 1. The page is zeroed already.
        let base = self.ring.ptr;
        // SAFETY: the ring is ours (not yet granted): four u32 header words at its start.
        unsafe {
            core::ptr::write_volatile(base.add(4).cast::<u32>(), 1); // req_event
            core::ptr::write_volatile(base.add(12).cast::<u32>(), 1); // rsp_event
        }
        self.req_prod = 0;
        self.rsp_cons = 0;
    }

    /// A one-line description for `rxen.debug` and errors.
    pub fn describe(&self) -> String {
        let mut s = format!("Xen vbd {} via {}", self.devid, self.backend);
        s += &format!(", {}-page ring", 1 << self.ring_order);
        if self.indirect {
            s += &format!(", indirect {} segments", self.max_segs);
        }
        if self.info & VDISK_READONLY != 0 {
            s += ", read-only";
        }
        if self.info & VDISK_CDROM != 0 {
            s += ", cdrom";
        }
        s
    }

    fn ring_u32(&self, off: usize) -> u32 {
        // SAFETY: `off` is one of the four header words of our ring page, which the
        // backend updates: read volatile.
        unsafe { core::ptr::read_volatile(self.ring.ptr.add(off).cast::<u32>()) }
    }

    fn set_ring_u32(&self, off: usize, v: u32) {
        // SAFETY: as in ring_u32.
        unsafe { core::ptr::write_volatile(self.ring.ptr.add(off).cast::<u32>(), v) }
    }

    fn slot_ptr(&self, idx: u32) -> *mut u8 {
        let i = idx as usize & (self.slots - 1);
        self.ring.ptr.wrapping_add(SRING_HEADER + i * BLKIF_SLOT)
    }

    /// Queue one read (`op` = BLKIF_OP_READ) or write (BLKIF_OP_WRITE) of `segs` (page
    /// address, first byte, length) at 512-byte sector `sector` in in-flight slot `slot`.
    /// Returns false (nothing queued, nothing leaked) when the grant table is full.
    fn queue(&mut self, op: u8, slot: usize, sector: u64, segs: &[(u64, usize, usize)], owner: Owner) -> bool {
        let mut grants: Vec<Granted> = Vec::with_capacity(segs.len() + 1);
        let mut descs = Vec::with_capacity(segs.len());
        // A write's pages are only read by the backend: grant them read-only.
        let backend_reads = op == BLKIF_OP_WRITE;
        for &(page, off, len) in segs {
            let Some(g) = gnttab::grant(self.backend_id, page >> 12, backend_reads) else {
                // Never posted: the backend has not seen these refs, ending them succeeds.
                for g in grants {
                    gnttab::end_access(g.gref);
                }
                return false;
            };
            grants.push(Granted { gref: g, pfn: page >> 12, owner });
            descs.push(BlkifRequestSegment {
                gref: g,
                first_sect: (off / 512) as u8,
                last_sect: ((off + len) / 512 - 1) as u8,
                _pad: 0,
            });
        }
        let dst = self.slot_ptr(self.req_prod);
        if self.indirect && segs.len() > BLKIF_MAX_SEGMENTS_PER_REQUEST {
            let pages = self.indirect_pages.as_ref().map(|p| p.addr()).unwrap_or(0);
            let ind = pages + (slot * PAGE) as u64;
            let Some(g) = gnttab::grant(self.backend_id, ind >> 12, true) else {
                for g in grants {
                    gnttab::end_access(g.gref);
                }
                return false;
            };
            grants.push(Granted { gref: g, pfn: ind >> 12, owner: Owner::Indirect });
            for (i, s) in descs.iter().enumerate() {
                // SAFETY: the indirect page for `slot` is ours (PAGE bytes, 512 slots of 8
                // bytes, i < 256); the backend only reads it after the request is posted.
                unsafe { core::ptr::write_volatile((ind as usize as *mut BlkifRequestSegment).add(i), *s) };
            }
            let mut r = BlkifRequestIndirect {
                operation: BLKIF_OP_INDIRECT,
                indirect_op: op,
                nr_segments: descs.len() as u16,
                id: slot as u64,
                sector_number: sector,
                handle: self.devid as u16,
                ..Default::default()
            };
            r.indirect_grefs[0] = g;
            // SAFETY: `dst` is a free request slot of our ring (req_prod - rsp_cons < slots,
            // ensured by the caller), 112 bytes, 8-byte aligned.
            unsafe { core::ptr::write_volatile(dst.cast::<BlkifRequestIndirect>(), r) };
        } else {
            let mut r = BlkifRequest {
                operation: op,
                nr_segments: descs.len() as u8,
                handle: self.devid as u16,
                id: slot as u64,
                sector_number: sector,
                ..Default::default()
            };
            r.seg[..descs.len()].copy_from_slice(&descs);
            // SAFETY: as above.
            unsafe { core::ptr::write_volatile(dst.cast::<BlkifRequest>(), r) };
        }
        self.req_prod = self.req_prod.wrapping_add(1);
        self.inflight[slot] = InFlight { busy: true, grants, status: 0, done: false };
        true
    }

    /// Publish queued requests and notify the backend.
    fn push(&mut self) {
        fence(Ordering::Release);
        self.set_ring_u32(0, self.req_prod);
        fence(Ordering::SeqCst);
        evtchn_send(self.port);
    }

    /// Consume responses; returns how many requests completed, or why the ring cannot be
    /// trusted any more.
    fn collect(&mut self) -> Result<usize, &'static str> {
        let mut n = 0;
        loop {
            let prod = self.ring_u32(8);
            // The backend's index is bounded before use (RING_RESPONSE_PROD_OVERFLOW): it
            // may not answer more requests than were published. That also bounds the loop.
            if prod.wrapping_sub(self.rsp_cons) > self.req_prod.wrapping_sub(self.rsp_cons) {
                return Err("the backend's rsp_prod runs past the requests made (ring corrupt)");
            }
            // Responses are read only after rsp_prod (xen/include/public/io/ring.h).
            fence(Ordering::Acquire);
            while self.rsp_cons != prod {
                let src = self.slot_ptr(self.rsp_cons);
                // SAFETY: a response slot the backend produced (before rsp_prod).
                let r = unsafe { core::ptr::read_volatile(src.cast::<BlkifResponse>()) };
                self.rsp_cons = self.rsp_cons.wrapping_add(1);
                if let Some(f) = self.inflight.get_mut(r.id as usize).filter(|f| f.busy && !f.done) {
                    f.status = r.status;
                    f.done = true;
                    // The backend unmaps before answering; a grant still mapped is kept
                    // and settled (waited for, else quarantined) before the buffer is
                    // handed back.
                    let stuck = &mut self.stuck;
                    stuck.extend(core::mem::take(&mut f.grants).into_iter().filter(|g| !gnttab::end_access(g.gref)));
                    n += 1;
                }
            }
            // RING_FINAL_CHECK_FOR_RESPONSES: ask to be notified of the next one, then look
            // again so a response that raced the write is not missed.
            self.set_ring_u32(12, self.rsp_cons.wrapping_add(1));
            fence(Ordering::SeqCst);
            if self.ring_u32(8) == self.rsp_cons {
                return Ok(n);
            }
        }
    }

    /// Read (`op` = BLKIF_OP_READ) `len` bytes at 512-byte sector `sector` into `addr`, or
    /// write them from there (BLKIF_OP_WRITE); `addr` is sector-size aligned,
    /// identity-mapped memory. Many requests in flight.
    fn transfer_direct(&mut self, op: u8, sector: u64, addr: u64, len: usize, owner: Owner) -> Result<(), BlockError> {
        let r = self.transfer_inner(op, sector, addr, len, owner);
        if self.stuck.is_empty() {
            return r;
        }
        match self.settle_stuck() {
            0 => r,
            _ => {
                self.broken = Some("the backend kept pages of a completed request mapped; they are kept out of use");
                Err(BlockError::Broken("the backend kept pages of a completed request mapped"))
            }
        }
    }

    /// Wait up to [`GRACE_MS`] for the backend to unmap [`BlkFront::stuck`]; whatever it
    /// still maps then stays granted for good and out of use (see the module doc).
    /// Returns how many pages that is.
    fn settle_stuck(&mut self) -> usize {
        let mut stuck = core::mem::take(&mut self.stuck);
        let grace = Deadline::after_ms(GRACE_MS);
        drain_stuck(&mut stuck, &mut Gnttab, || grace.expired(), || super::sleep_us(10_000));
        let (caller, bounce, indirect) = stranded(&stuck);
        for (at, len) in caller {
            mem::QUARANTINE.add(at, len);
        }
        self.bounce.leaked |= bounce;
        if let Some(p) = self.indirect_pages.as_mut() {
            p.leaked |= indirect;
        }
        // The refs stay allocated until release ends them (the pages stay out of use).
        let n = stuck.len();
        self.stranded.extend(stuck);
        n
    }

    /// A request timed out: take back every grant the ring still holds, and give up on the
    /// device (its ring may still be answered late). See the module doc.
    fn abandon_inflight(&mut self) -> BlockError {
        let stuck = revoke_inflight(&mut self.inflight, &mut Gnttab);
        self.stuck.extend(stuck);
        if self.settle_stuck() == 0 {
            self.broken = Some("a request timed out (its grants were revoked)");
            BlockError::Timeout
        } else {
            self.broken = Some("a request timed out and the backend still maps its pages; they are kept out of use");
            BlockError::Broken("a request timed out and the backend still maps its pages; they are kept out of use")
        }
    }

    fn transfer_inner(&mut self, op: u8, sector: u64, addr: u64, len: usize, owner: Owner) -> Result<(), BlockError> {
        let mut pos = 0usize; // bytes queued so far
        let mut outstanding = 0usize;
        let mut error: Option<BlockError> = None;
        let deadline_ms = REQUEST_MS;
        let mut deadline = Deadline::after_ms(deadline_ms);
        while (pos < len && error.is_none()) || outstanding > 0 {
            // Queue as much as slots and grants allow.
            let mut queued = false;
            while pos < len && error.is_none() {
                let Some(slot) = self.inflight.iter().position(|f| !f.busy) else { break };
                if self.req_prod.wrapping_sub(self.rsp_cons) as usize >= self.slots {
                    break;
                }
                let mut segs: Vec<(u64, usize, usize)> = Vec::new();
                let mut p = pos;
                while p < len && segs.len() < self.max_segs {
                    let a = addr + p as u64;
                    let off = (a % PAGE as u64) as usize;
                    let n = (PAGE - off).min(len - p);
                    segs.push((a - off as u64, off, n));
                    p += n;
                }
                if !self.queue(op, slot, sector + (pos / 512) as u64, &segs, owner) {
                    if outstanding == 0 {
                        error = Some(BlockError::Broken("the grant table is full"));
                    }
                    break;
                }
                pos = p;
                outstanding += 1;
                queued = true;
            }
            if queued {
                self.push();
            }
            if outstanding == 0 {
                break;
            }
            evtchn_clear(self.port);
            let done = match self.collect() {
                Ok(done) => done,
                Err(why) => {
                    // Take every grant back, as after a timeout; the disk is done for.
                    return Err(match self.abandon_inflight() {
                        BlockError::Timeout => {
                            self.broken = Some(why);
                            BlockError::Broken(why)
                        }
                        stuck => stuck,
                    });
                }
            };
            if done > 0 {
                deadline = Deadline::after_ms(deadline_ms);
                for f in self.inflight.iter_mut().filter(|f| f.busy && f.done) {
                    if f.status != BLKIF_RSP_OKAY && error.is_none() {
                        error = Some(BlockError::Device { status: f.status as u8 });
                    }
                    *f = InFlight::default();
                }
                outstanding -= done;
                continue;
            }
            if deadline.expired() {
                // The disk is unusable from here on; no grant of it may outlive this.
                return Err(self.abandon_inflight());
            }
            wait_event(self.port, 10_000);
        }
        error.map_or(Ok(()), Err)
    }

    /// The 512-byte sector of block `lba`, for a request of `len` bytes on a disk that is
    /// still ours.
    fn start_sector(&self, lba: u64, len: usize) -> Result<u64, BlockError> {
        check_request(self.sector_size, self.sectors, lba, len)?;
        if self.released {
            return Err(BlockError::Broken("the disk was handed back to Xen"));
        }
        if let Some(why) = self.broken {
            return Err(BlockError::Broken(why));
        }
        Ok(lba * u64::from(self.sector_size / 512))
    }

    /// Undo what `connect` did, as far as it got.
    /// After a failed connect: when the ring was published, a backend may have mapped it
    /// (Linux's blkback maps the ring as soon as the frontend is Initialised, before its
    /// hotplug script finished): ask it to let go (Closing, Closed, each wait bounded),
    /// then end the grants. Best effort: the connect error is what gets reported.
    fn abandon(&mut self) {
        use xenbus_state::*;
        if self.published {
            let _ = self.set_state(CLOSING);
            let _ = self.wait_backend("Closing", |s| s == CLOSING || s == CLOSED, |_| false);
            let _ = self.set_state(CLOSED);
            let _ = self.wait_backend("Closed", |s| s == CLOSED, |_| false);
        }
        self.teardown();
    }

    fn teardown(&mut self) {
        if self.port != 0 {
            evtchn_close(self.port);
            self.port = 0;
        }
        self.ring_grants.retain(|&g| !gnttab::end_access(g));
        // A ring page the backend still maps must never go back to the heap.
        self.ring.leaked |= !self.ring_grants.is_empty();
    }
}

impl BlockDevice for BlkFront {
    fn block_size(&self) -> u32 {
        self.sector_size
    }
    fn num_blocks(&self) -> u64 {
        self.sectors
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let sector = self.start_sector(lba, buf.len())?;
        let bs = self.sector_size as usize;
        let addr = buf.as_mut_ptr() as u64;
        if addr.is_multiple_of(bs as u64) && buf.len() > BOUNCE {
            // Identity mapped: the buffer's address is its guest-physical address.
            return self.transfer_direct(BLKIF_OP_READ, sector, addr, buf.len(), Owner::Caller);
        }
        let mut done = 0;
        while done < buf.len() {
            let n = (buf.len() - done).min(BOUNCE);
            let bounce = self.bounce.addr();
            self.transfer_direct(BLKIF_OP_READ, sector + (done / 512) as u64, bounce, n, Owner::Bounce)?;
            // SAFETY: the bounce buffer is ours, BOUNCE bytes, filled by the backend, and no
            // request that targets it is outstanding (transfer_direct drained them).
            let src = unsafe { core::slice::from_raw_parts(self.bounce.ptr, n) };
            buf[done..done + n].copy_from_slice(src);
            done += n;
        }
        Ok(())
    }

    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        let sector = self.start_sector(lba, buf.len())?;
        if self.info & (VDISK_READONLY | VDISK_CDROM) != 0 {
            return Err(BlockError::ReadOnly);
        }
        let bs = self.sector_size as usize;
        let addr = buf.as_ptr() as u64;
        if addr.is_multiple_of(bs as u64) && buf.len() > BOUNCE {
            return self.transfer_direct(BLKIF_OP_WRITE, sector, addr, buf.len(), Owner::Caller);
        }
        let mut done = 0;
        while done < buf.len() {
            let n = (buf.len() - done).min(BOUNCE);
            // SAFETY: the bounce buffer is ours, BOUNCE bytes, and no request that uses it
            // is outstanding (transfer_direct drains its requests before returning).
            let dst = unsafe { core::slice::from_raw_parts_mut(self.bounce.ptr, n) };
            dst.copy_from_slice(&buf[done..done + n]);
            self.transfer_direct(BLKIF_OP_WRITE, sector + (done / 512) as u64, self.bounce.addr(), n, Owner::Bounce)?;
            done += n;
        }
        Ok(())
    }

    fn unusable(&self) -> Option<&'static str> {
        if self.released { Some("the disk was handed back to Xen") } else { self.broken }
    }

    fn release(&mut self) -> Result<(), String> {
        use xenbus_state::*;
        if self.released && self.port == 0 {
            return Ok(());
        }
        self.released = true;
        let r = (|| {
            self.set_state(CLOSING)?;
            self.wait_backend("Closing", |s| s == CLOSING || s == CLOSED, |_| false)?;
            self.set_state(CLOSED)?;
            self.wait_backend("Closed", |s| s == CLOSED, |_| false)?;
            // Closed: the backend unmapped every page; a grant that still cannot be ended
            // stays allocated (gnttab::outstanding() counts it at handoff).
            self.stranded.retain(|g| !Gnttab.end_access(g.gref));
            {
                let mut xs = self.xs.borrow_mut();
                let fe = &self.frontend;
                let mut keys: Vec<String> = ["ring-ref", "ring-page-order", "event-channel", "protocol"]
                    .iter()
                    .map(|k| format!("{fe}/{k}"))
                    .collect();
                keys.extend((0..self.ring_grants.len()).map(|i| format!("{fe}/ring-ref{i}")));
                for k in keys {
                    xs.rm(0, &k).map_err(|e| xs_err("removing ring keys", e))?;
                }
            }
            self.set_state(INITIALISING)?;
            // The kernel's blkfront must find the backend ready for a new connection.
            self.wait_backend("InitWait", |s| s == INIT_WAIT, |_| false)?;
            Ok::<(), String>(())
        })();
        self.teardown();
        let left = self.ring_grants.len();
        match (r, left) {
            (Err(e), _) => Err(format!("{}: {e}", self.frontend)),
            (Ok(()), 0) => Ok(()),
            (Ok(()), n) => Err(format!("{}: the backend still maps {n} ring page(s)", self.frontend)),
        }
    }
}

/// Poll `state` until it satisfies `ok`; a `bad` state, an error reading it, or
/// `expired` (a bound of `bound_ms`, for the message) ends the wait with a message that
/// names the state seen and the one waited for. Pure: the host tests script the backend.
fn wait_state(
    what: &str,
    mut state: impl FnMut() -> Result<u32, String>,
    ok: impl Fn(u32) -> bool,
    bad: impl Fn(u32) -> bool,
    mut expired: impl FnMut() -> bool,
    mut pause: impl FnMut(),
    bound_ms: u64,
) -> Result<u32, String> {
    loop {
        let s = state()?;
        if ok(s) {
            return Ok(s);
        }
        if bad(s) {
            return Err(format!("backend went to state {} while waiting for {what}", state_name(s)));
        }
        if expired() {
            return Err(format!("backend still {} after {} s, waiting for {what}", state_name(s), bound_ms / 1000));
        }
        pause();
    }
}

/// xenbus state names for messages.
pub fn state_name(s: u32) -> &'static str {
    match s {
        0 => "Unknown",
        1 => "Initialising",
        2 => "InitWait",
        3 => "Initialised",
        4 => "Connected",
        5 => "Closing",
        6 => "Closed",
        7 => "Reconfiguring",
        8 => "Reconfigured",
        _ => "(invalid)",
    }
}

/// Boxed for the disk list.
pub fn boxed(d: BlkFront) -> Box<dyn BlockDevice> {
    Box::new(d)
}

#[cfg(test)]
#[path = "blkfront_tests.rs"]
mod tests;
