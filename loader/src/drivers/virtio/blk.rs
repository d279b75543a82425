// SPDX-License-Identifier: MIT OR Apache-2.0
//! virtio-blk (virtio 1.1 §5.2), read-only and polled, over any [`Transport`].
//!
//! A read is split into requests of at most `seg_max` data segments of at most
//! `size_max` bytes each (when the device states those limits) and [`MAX_REQUEST`]
//! bytes in all; the data descriptors point straight into the caller's buffer (the
//! loader is identity mapped, so its addresses are DMA addresses), and up to a third of
//! the queue's worth of requests is kept in flight. Each request is a chain of header
//! (device-readable), data and status (device-writable) descriptors (§5.2.6).
//!
//! A request that times out (or a used ring the device corrupted) ends the device: it is
//! reset before the caller gets its buffer back, so the device can no longer write into
//! it (§2.1.2: after a reset the device uses no buffer). A device that does not
//! acknowledge the reset has its DMA stopped where the transport can (PCI bus
//! mastering off); where nothing can stop it (virtio-mmio), the buffer goes into
//! [`mem::QUARANTINE`] and the queue and request headers are leaked rather than freed.

use alloc::vec::Vec;
use core::mem::ManuallyDrop;
use core::sync::atomic::{Ordering, fence};

use super::queue::{Buffer, DmaRegion, VirtQueue};
use super::{InitError, Transport, negotiate, status};
use crate::block::{BlockDevice, BlockError, check_request};
use crate::mem;
use crate::platform::time::Deadline;

// Feature bits (§5.2.3).
pub const VIRTIO_BLK_F_SIZE_MAX: u64 = 1 << 1;
pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
pub const VIRTIO_BLK_F_RO: u64 = 1 << 5;
pub const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << 6;

// struct virtio_blk_config offsets (§5.2.4).
const CFG_CAPACITY: u16 = 0;
const CFG_SIZE_MAX: u16 = 8;
const CFG_SEG_MAX: u16 = 12;
const CFG_BLK_SIZE: u16 = 20;

/// Request type and status values (§5.2.6).
const VIRTIO_BLK_T_IN: u32 = 0;
const VIRTIO_BLK_T_OUT: u32 = 1;
const VIRTIO_BLK_S_OK: u8 = 0;

/// The largest request we send, whatever the device allows.
pub const MAX_REQUEST: usize = 1 << 20;
/// Data segments per request, at most.
const MAX_SEGMENTS: usize = 8;
/// The queue size we ask for when the transport lets us choose.
const WANTED_QUEUE_SIZE: u16 = 256;
/// How long a request may take before the device is declared dead.
pub const TIMEOUT_MS: u64 = 5000;

/// struct virtio_blk_req's device-readable head (§5.2.6).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct RequestHeader {
    kind: u32,
    reserved: u32,
    sector: u64,
}
const _: () = assert!(core::mem::size_of::<RequestHeader>() == 16);

/// Per-request DMA slot: the header, then the status byte.
const SLOT_SIZE: usize = 32;
const SLOT_STATUS: usize = 16;

/// A virtio block device, ready to read.
pub struct VirtioBlk<T: Transport> {
    transport: T,
    /// Freed on drop only once the device is known to be quiet (see [`Self::quiesce`]).
    queue: ManuallyDrop<VirtQueue>,
    /// Capacity in 512-byte sectors (§5.2.4: always 512-byte units).
    sectors: u64,
    block_size: u32,
    /// Bytes per data segment and segments per request.
    segment_max: usize,
    segments: usize,
    read_only: bool,
    /// Request headers and status bytes, one slot per request in flight (freed like
    /// `queue`).
    slots: ManuallyDrop<DmaRegion>,
    free_slots: Vec<usize>,
    /// Which slot the chain with this head id uses.
    slot_of_head: Vec<usize>,
    /// Set after a timeout or a protocol violation; the device has been reset.
    broken: Option<&'static str>,
}

impl<T: Transport> core::fmt::Debug for VirtioBlk<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VirtioBlk")
            .field("sectors", &self.sectors)
            .field("block_size", &self.block_size)
            .field("queue_size", &self.queue.size())
            .finish()
    }
}

impl<T: Transport> VirtioBlk<T> {
    /// Bring the device up (§3.1.1): reset, negotiate, one request queue, DRIVER_OK.
    /// The device is reset again on every failure.
    pub fn new(mut transport: T) -> Result<VirtioBlk<T>, InitError> {
        let wanted = VIRTIO_BLK_F_SIZE_MAX | VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_RO;
        let features = negotiate(&mut transport, wanted)?;
        match Self::setup(&mut transport, features) {
            Ok(parts) => {
                let (queue, sectors, block_size, segment_max, segments) = parts;
                let in_flight = usize::from(queue.size() / (segments as u16 + 2)).clamp(1, 128);
                let Some(slots) = DmaRegion::new(in_flight * SLOT_SIZE) else {
                    // Before DRIVER_OK, with nothing in the available ring, the device
                    // has no buffer to touch: the queue can be freed whatever the reset did.
                    transport.set_status(status::FAILED);
                    transport.reset();
                    return Err(InitError("no memory for request headers"));
                };
                let mut s = status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK;
                if transport.is_modern() {
                    s |= status::FEATURES_OK;
                }
                transport.set_status(s);
                if transport.status() & (status::DEVICE_NEEDS_RESET | status::FAILED) != 0 {
                    transport.reset();
                    return Err(InitError("the device needs a reset right after DRIVER_OK"));
                }
                Ok(VirtioBlk {
                    slot_of_head: alloc::vec![usize::MAX; usize::from(queue.size())],
                    transport,
                    queue: ManuallyDrop::new(queue),
                    sectors,
                    block_size,
                    segment_max,
                    segments,
                    read_only: features & VIRTIO_BLK_F_RO != 0,
                    slots: ManuallyDrop::new(slots),
                    free_slots: (0..in_flight).rev().collect(),
                    broken: None,
                })
            }
            Err(e) => {
                transport.set_status(status::FAILED);
                transport.reset();
                Err(e)
            }
        }
    }

    /// Queue and configuration: (queue, sectors, block size, segment bytes, segments).
    fn setup(t: &mut T, features: u64) -> Result<(VirtQueue, u64, u32, usize, usize), InitError> {
        let max = t.max_queue_size(0);
        if max == 0 {
            return Err(InitError("request queue 0 is not available"));
        }
        let size = if t.can_shrink_queue() {
            // The largest power of two not above either limit (§2.6: split queue sizes
            // are powers of two).
            let limit = max.min(WANTED_QUEUE_SIZE);
            1u16 << (15 - limit.leading_zeros())
        } else if max.is_power_of_two() {
            max
        } else {
            return Err(InitError("queue size is not a power of two"));
        };
        if size < 4 {
            return Err(InitError("queue too small for a request"));
        }
        let queue = VirtQueue::new(size).map_err(|_| InitError("no memory for the virtqueue"))?;
        let sectors = t.read_config64(CFG_CAPACITY);
        let block_size = if features & VIRTIO_BLK_F_BLK_SIZE != 0 {
            let bs = t.read_config32(CFG_BLK_SIZE);
            if bs.is_power_of_two() && (512..=4096).contains(&bs) { bs } else { 512 }
        } else {
            512
        };
        let mut segment_max = MAX_REQUEST;
        if features & VIRTIO_BLK_F_SIZE_MAX != 0 {
            let size_max = t.read_config32(CFG_SIZE_MAX) as usize;
            if size_max != 0 {
                segment_max = segment_max.min(size_max);
            }
        }
        // Each segment is a whole number of blocks, so requests stay block aligned.
        segment_max -= segment_max % block_size as usize;
        if segment_max == 0 {
            return Err(InitError("the device's size_max is smaller than a block"));
        }
        let mut segments = (MAX_REQUEST / segment_max).clamp(1, MAX_SEGMENTS);
        if features & VIRTIO_BLK_F_SEG_MAX != 0 {
            let seg_max = t.read_config32(CFG_SEG_MAX) as usize;
            if seg_max != 0 {
                segments = segments.min(seg_max);
            }
        }
        // Header + data + status must fit in the queue.
        segments = segments.min(usize::from(size) - 2);
        t.setup_queue(0, &queue)?;
        Ok((queue, sectors, block_size, segment_max, segments))
    }

    /// Whether the device is read-only (VIRTIO_BLK_F_RO).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The virtqueue size in use.
    pub fn queue_size(&self) -> u16 {
        self.queue.size()
    }

    /// Bytes per request, at most.
    pub fn max_request(&self) -> usize {
        self.segment_max * self.segments
    }

    /// Make sure the device touches no memory any more: a reset it acknowledged, else
    /// its DMA stopped by the transport. False if neither could be had.
    fn quiesce(&mut self) -> bool {
        self.transport.reset() || self.transport.stop_dma()
    }

    /// Stop the device and refuse further reads. `[addr, addr + len)` is the caller's
    /// buffer of the failed transfer: if the device cannot be made quiet it may still be
    /// written, so it is quarantined and the error says so.
    fn fail(&mut self, why: &'static str, addr: u64, len: usize, err: BlockError) -> BlockError {
        if self.quiesce() {
            self.broken = Some(why);
            return err;
        }
        mem::QUARANTINE.add(addr, len as u64);
        self.broken = Some("the device did not acknowledge its reset; its memory is kept out of use");
        BlockError::Broken("the device did not acknowledge its reset; the buffer is kept out of use")
    }

    /// Put one request for `len` bytes at `addr` (sector `sector`) on the queue: a read
    /// into it, or with `write` a write from it.
    fn submit(&mut self, sector: u64, addr: u64, len: usize, write: bool) {
        let slot = self.free_slots.pop().expect("caller checked for a free slot");
        let kind = if write { VIRTIO_BLK_T_OUT } else { VIRTIO_BLK_T_IN };
        let hdr = RequestHeader { kind, reserved: 0, sector };
        // SAFETY: the slot is ours (taken from the free list), inside the DMA region,
        // aligned; the device does not read it before the chain is published below.
        unsafe {
            self.slots.ptr::<RequestHeader>(slot * SLOT_SIZE).write_volatile(hdr);
            self.slots.ptr::<u8>(slot * SLOT_SIZE + SLOT_STATUS).write_volatile(0xff);
        }
        let base = self.slots.addr() + (slot * SLOT_SIZE) as u64;
        let mut bufs = [Buffer { addr: 0, len: 0, device_writes: false }; MAX_SEGMENTS + 2];
        bufs[0] = Buffer { addr: base, len: 16, device_writes: false };
        let mut n = 1;
        let mut done = 0;
        while done < len {
            let seg = (len - done).min(self.segment_max);
            bufs[n] = Buffer { addr: addr + done as u64, len: seg as u32, device_writes: !write };
            n += 1;
            done += seg;
        }
        bufs[n] = Buffer { addr: base + SLOT_STATUS as u64, len: 1, device_writes: true };
        let head = self.queue.add(&bufs[..=n]).expect("caller checked for free descriptors");
        self.slot_of_head[usize::from(head)] = slot;
    }
}

impl<T: Transport> BlockDevice for VirtioBlk<T> {
    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn num_blocks(&self) -> u64 {
        self.sectors / u64::from(self.block_size / 512)
    }

    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.transfer(lba, buf.as_mut_ptr() as u64, buf.len(), false)
    }

    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        if self.read_only() {
            return Err(BlockError::ReadOnly);
        }
        self.transfer(lba, buf.as_ptr() as u64, buf.len(), true)
    }

    fn unusable(&self) -> Option<&'static str> {
        self.broken
    }
}

impl<T: Transport> VirtioBlk<T> {
    /// Move `len` bytes between the device from block `lba` on and memory at `addr` (the
    /// caller's buffer, whole blocks), many requests in flight.
    fn transfer(&mut self, lba: u64, addr: u64, len: usize, write: bool) -> Result<(), BlockError> {
        if let Some(why) = self.broken {
            return Err(BlockError::Broken(why));
        }
        check_request(self.block_size, self.num_blocks(), lba, len)?;
        if len == 0 {
            return Ok(());
        }
        // The buffer is the DMA target: identity mapped only below 4 GiB (host unit tests
        // use host addresses with a fake device).
        let dma_limit: u64 = if cfg!(test) { u64::MAX } else { 1 << 32 };
        if addr.checked_add(len as u64).is_none_or(|end| end > dma_limit) {
            return Err(BlockError::Broken("buffer above 4 GiB"));
        }
        let sector0 = lba * u64::from(self.block_size / 512);
        let total = len;
        let per_request = self.max_request();
        let mut submitted = 0usize;
        let mut error = None;
        let mut deadline = Deadline::after_ms(TIMEOUT_MS);
        loop {
            let mut added = false;
            while submitted < total
                && error.is_none()
                && !self.free_slots.is_empty()
                && usize::from(self.queue.num_free()) >= self.segments + 2
            {
                let len = (total - submitted).min(per_request);
                self.submit(sector0 + (submitted / 512) as u64, addr + submitted as u64, len, write);
                submitted += len;
                added = true;
            }
            if added {
                self.transport.notify(0);
            }
            if self.queue.in_flight() == 0 {
                break;
            }
            match self.queue.pop_used() {
                Ok(Some((head, _written))) => {
                    let slot = core::mem::replace(&mut self.slot_of_head[usize::from(head)], usize::MAX);
                    // SAFETY: the device has returned the chain (used ring), so it is done
                    // with the slot; inside the DMA region.
                    let st = unsafe { self.slots.ptr::<u8>(slot * SLOT_SIZE + SLOT_STATUS).read_volatile() };
                    self.free_slots.push(slot);
                    if st != VIRTIO_BLK_S_OK && error.is_none() {
                        // Stop submitting, but let the requests in flight finish: the
                        // device may still be writing into `buf`.
                        error = Some(BlockError::Device { status: st });
                    }
                    deadline = Deadline::after_ms(TIMEOUT_MS);
                }
                Ok(None) => {
                    if deadline.expired() {
                        // Reset before returning: the device must not write into `buf`
                        // once the caller has it back.
                        return Err(self.fail(
                            "a request timed out; the device was reset",
                            addr,
                            len,
                            BlockError::Timeout,
                        ));
                    }
                    core::hint::spin_loop();
                }
                Err(_) => {
                    return Err(self.fail(
                        "the device returned a bogus used-ring entry; the device was reset",
                        addr,
                        len,
                        BlockError::Broken("virtio-blk: bogus used-ring entry"),
                    ));
                }
            }
        }
        // The device's writes into `buf` happen before it published the used entries we
        // have read; make sure nothing reads `buf` ahead of that.
        fence(Ordering::SeqCst);
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<T: Transport> Drop for VirtioBlk<T> {
    fn drop(&mut self) {
        // §2.1.2: after a reset the device no longer uses the queue, which is freed next.
        // A device that cannot be made quiet keeps its queue and headers: leaked.
        if self.quiesce() {
            // SAFETY: dropped once, here, and the device no longer uses either region.
            unsafe {
                ManuallyDrop::drop(&mut self.queue);
                ManuallyDrop::drop(&mut self.slots);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::queue::fake::FakeDevice;
    use super::super::{F_VERSION_1, Transport};
    use super::*;
    use alloc::vec;

    /// A modern virtio-blk device over a disk image in memory, serving requests when
    /// notified, last-submitted first.
    struct FakeBlk {
        disk: Vec<u8>,
        status: u8,
        features: u64,
        driver_features: u64,
        size_max: u32,
        seg_max: u32,
        dev: Option<FakeDevice>,
        /// Sector that fails with VIRTIO_BLK_S_IOERR.
        bad_sector: Option<u64>,
        /// Requests seen: (sector, bytes, data segments); most in flight at once.
        requests: Vec<(u64, usize, usize)>,
        max_batch: usize,
        silent: bool,
        /// Ignores resets once running (and has no way to stop its DMA).
        deaf_to_reset: bool,
    }

    impl Transport for &mut FakeBlk {
        fn is_modern(&self) -> bool {
            true
        }
        fn reset(&mut self) -> bool {
            if self.deaf_to_reset && self.status & status::DRIVER_OK != 0 {
                return false; // keeps its queue and status: still "running"
            }
            self.status = 0;
            self.dev = None;
            true
        }
        fn status(&mut self) -> u8 {
            self.status
        }
        fn set_status(&mut self, s: u8) {
            if s == 0 && self.deaf_to_reset && self.status & status::DRIVER_OK != 0 {
                return;
            }
            if s == 0 {
                self.dev = None;
            }
            self.status = s;
        }
        fn device_features(&mut self) -> u64 {
            self.features
        }
        fn set_driver_features(&mut self, f: u64) {
            assert_eq!(f & !self.features, 0, "accepted a feature not offered");
            self.driver_features = f;
        }
        fn max_queue_size(&mut self, _: u16) -> u16 {
            16
        }
        fn setup_queue(&mut self, index: u16, q: &VirtQueue) -> Result<(), InitError> {
            assert_eq!(index, 0);
            self.dev = Some(FakeDevice::new(q));
            Ok(())
        }
        fn notify(&mut self, _: u16) {
            assert!(self.status & status::DRIVER_OK != 0);
            let Some(dev) = self.dev.as_mut() else { return };
            if self.silent {
                return;
            }
            let chains = dev.take();
            self.max_batch = self.max_batch.max(chains.len());
            for (head, chain) in chains.into_iter().rev() {
                // SAFETY: the header descriptor points at the driver's live DMA slot.
                let hdr = unsafe { (chain[0].addr as *const RequestHeader).read_volatile() };
                assert!(matches!(hdr.kind, VIRTIO_BLK_T_IN | VIRTIO_BLK_T_OUT) && chain[0].len == 16);
                let write = hdr.kind == VIRTIO_BLK_T_OUT;
                let data = &chain[1..chain.len() - 1];
                assert!(data.len() <= self.seg_max as usize);
                let mut off = hdr.sector as usize * 512;
                let mut total = 0;
                for d in data {
                    // A read's buffers are device-writable (flag 2), a write's are not.
                    assert!(d.len <= self.size_max && (d.flags & 2 != 0) != write);
                    let range = off..off + d.len as usize;
                    if write {
                        // SAFETY: the data descriptor points into the caller's live buffer.
                        let src = unsafe { core::slice::from_raw_parts(d.addr as *const u8, d.len as usize) };
                        self.disk[range].copy_from_slice(src);
                    } else {
                        // SAFETY: the data descriptor points into the caller's live buffer.
                        let dst = unsafe { core::slice::from_raw_parts_mut(d.addr as *mut u8, d.len as usize) };
                        dst.copy_from_slice(&self.disk[range]);
                    }
                    off += d.len as usize;
                    total += d.len as usize;
                }
                let bad = self.bad_sector.is_some_and(|b| (hdr.sector..hdr.sector + (total / 512) as u64).contains(&b));
                let st = chain.last().unwrap();
                assert_eq!((st.len, st.flags), (1, 2));
                // SAFETY: the status descriptor points at the driver's live DMA slot.
                unsafe { (st.addr as *mut u8).write_volatile(if bad { 1 } else { 0 }) };
                self.requests.push((hdr.sector, total, data.len()));
                dev.complete(u32::from(head), total as u32 + 1);
            }
        }
        fn config_generation(&mut self) -> u32 {
            0
        }
        fn read_config8(&mut self, _: u16) -> u8 {
            0
        }
        fn read_config32(&mut self, off: u16) -> u32 {
            let sectors = (self.disk.len() / 512) as u64;
            match off {
                0 => sectors as u32,
                4 => (sectors >> 32) as u32,
                8 => self.size_max,
                12 => self.seg_max,
                _ => 0,
            }
        }
    }

    #[test]
    fn writes_reach_the_disk_and_read_only_devices_refuse() {
        let mut f = fake(64 * 1024);
        let data: Vec<u8> = (0..3 * 512).map(|i| (i * 7 % 256) as u8).collect();
        {
            let mut blk = VirtioBlk::new(&mut f).unwrap();
            blk.write_blocks(5, &data).unwrap();
            let mut back = vec![0u8; data.len()];
            blk.read_blocks(5, &mut back).unwrap();
            assert_eq!(back, data);
        }
        assert_eq!(&f.disk[5 * 512..8 * 512], &data[..]);
        f.features |= VIRTIO_BLK_F_RO;
        let before = f.disk.clone();
        let mut blk = VirtioBlk::new(&mut f).unwrap();
        assert_eq!(blk.write_blocks(5, &[0u8; 512]), Err(BlockError::ReadOnly));
        drop(blk);
        assert_eq!(f.disk, before);
    }

    fn fake(len: usize) -> FakeBlk {
        FakeBlk {
            disk: (0..len).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect(),
            status: 0,
            features: F_VERSION_1 | VIRTIO_BLK_F_SIZE_MAX | VIRTIO_BLK_F_SEG_MAX | (1 << 9) | (1 << 28),
            driver_features: 0,
            size_max: 8192,
            seg_max: 3,
            dev: None,
            bad_sector: None,
            requests: Vec::new(),
            max_batch: 0,
            silent: false,
            deaf_to_reset: false,
        }
    }

    #[test]
    fn large_read_is_split_and_pipelined() {
        let mut f = fake(1 << 20);
        let disk = f.disk.clone();
        {
            let mut blk = VirtioBlk::new(&mut f).unwrap();
            assert_eq!((blk.block_size(), blk.num_blocks()), (512, 2048));
            assert_eq!(blk.max_request(), 3 * 8192);
            let mut buf = vec![0u8; 200 * 1024 + 512];
            blk.read_blocks(7, &mut buf).unwrap();
            assert_eq!(&buf[..], &disk[7 * 512..7 * 512 + buf.len()]);
            let mut one = [0u8; 512];
            blk.read_blocks(2047, &mut one).unwrap();
            assert_eq!(&one[..], &disk[2047 * 512..]);
            assert!(matches!(blk.read_blocks(2048, &mut one), Err(BlockError::OutOfRange { .. })));
        }
        // Only what the driver uses was accepted; the drop reset the device.
        assert_eq!(f.driver_features, F_VERSION_1 | VIRTIO_BLK_F_SIZE_MAX | VIRTIO_BLK_F_SEG_MAX);
        assert_eq!(f.status, 0);
        // 16 descriptors / 5 per request: 3 requests in flight at a time.
        assert_eq!(f.max_batch, 3);
        let big: Vec<_> = f.requests.iter().filter(|r| r.1 == 3 * 8192).collect();
        assert_eq!(big.len(), 8);
        assert_eq!(f.requests.iter().map(|r| r.1).sum::<usize>(), 200 * 1024 + 1024);
    }

    #[test]
    fn device_errors_and_timeouts() {
        let mut f = fake(1 << 20);
        f.bad_sector = Some(100);
        {
            let mut blk = VirtioBlk::new(&mut f).unwrap();
            let mut buf = vec![0u8; 128 * 1024];
            assert_eq!(blk.read_blocks(0, &mut buf), Err(BlockError::Device { status: 1 }));
            // The device stays usable.
            blk.read_blocks(0, &mut buf[..512]).unwrap();
        }
        let mut f = fake(1 << 20);
        f.silent = true;
        let mut blk = VirtioBlk::new(&mut f).unwrap();
        let mut buf = vec![0u8; 512];
        assert_eq!(blk.read_blocks(0, &mut buf), Err(BlockError::Timeout));
        assert!(matches!(blk.read_blocks(0, &mut buf), Err(BlockError::Broken(_))));
        drop(blk);
        // The timeout reset the device before the buffer came back: it forgot the queue.
        assert!(f.dev.is_none() && f.status == 0);
        assert!(!mem::QUARANTINE.overlaps(buf.as_ptr() as u64, 512));
    }

    /// A device that ignores the reset after a timeout may still write the buffer: the
    /// buffer is quarantined, the queue leaked, the error says so.
    #[test]
    fn timeout_on_a_device_that_ignores_reset_quarantines_the_buffer() {
        let mut f = fake(1 << 20);
        f.silent = true;
        f.deaf_to_reset = true;
        let mut blk = VirtioBlk::new(&mut f).unwrap();
        // Leaked on purpose, as the driver leaks it: the "device" may still write it.
        let buf: &'static mut [u8] = Vec::leak(vec![0u8; 4096]);
        let r = blk.read_blocks(0, buf);
        assert!(matches!(r, Err(BlockError::Broken(m)) if m.contains("reset")), "{r:?}");
        assert!(mem::QUARANTINE.overlaps(buf.as_ptr() as u64, 4096));
        drop(blk);
        assert!(f.dev.is_some(), "the device still holds its queue (leaked, not freed)");
    }

    #[test]
    fn modern_device_without_version_1_is_refused() {
        let mut f = fake(4096);
        f.features &= !F_VERSION_1;
        assert!(VirtioBlk::new(&mut f).is_err());
        assert_eq!(f.status, 0);
    }
}
