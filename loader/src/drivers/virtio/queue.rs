// SPDX-License-Identifier: MIT OR Apache-2.0
//! The split virtqueue (virtio 1.1 §2.6): a descriptor table, the available ring the
//! driver writes and the used ring the device writes, in one zeroed, page-aligned heap
//! allocation laid out as the legacy interfaces require (§2.6.2: descriptors, then the
//! available ring, then the used ring on the next 4096-byte boundary). Modern
//! interfaces get the three addresses separately, so the same layout serves both.
//!
//! The loader's heap is identity mapped below 4 GiB: a pointer into it *is* the DMA
//! address. Ring memory is shared with the device, so it is only ever accessed with
//! volatile reads and writes through raw pointers, and ordered with fences (§2.6.13,
//! §2.6.14: buffers before the available index, the used index before its entries).

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{Ordering, fence};

/// Descriptor flags (§2.6.5).
const VIRTQ_DESC_F_NEXT: u16 = 1;
const VIRTQ_DESC_F_WRITE: u16 = 2;

/// The legacy interfaces' ring alignment and page size.
pub const QUEUE_ALIGN: usize = 4096;

/// A descriptor (§2.6.5).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Descriptor {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}
const _: () = assert!(core::mem::size_of::<Descriptor>() == 16);

/// One buffer of a chain: `len` bytes at DMA address `addr`; `device_writes` for buffers
/// the device fills (VIRTQ_DESC_F_WRITE), else the device only reads it.
#[derive(Clone, Copy, Debug)]
pub struct Buffer {
    pub addr: u64,
    pub len: u32,
    pub device_writes: bool,
}

/// Where each part lives inside the allocation, for a queue of `size` entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLayout {
    pub avail_offset: usize,
    pub used_offset: usize,
    pub total: usize,
}

impl QueueLayout {
    pub const fn new(size: u16) -> QueueLayout {
        let n = size as usize;
        let desc = 16 * n;
        let avail = 6 + 2 * n; // flags, idx, ring[n], used_event
        let used = 6 + 8 * n; // flags, idx, ring[n] of (id, len), avail_event
        let used_offset = (desc + avail).next_multiple_of(QUEUE_ALIGN);
        QueueLayout { avail_offset: desc, used_offset, total: used_offset + used.next_multiple_of(QUEUE_ALIGN) }
    }
}

/// Why a queue operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// The size is not a power of two in 1..=32768 (§2.6).
    BadSize,
    /// No memory for the rings.
    NoMemory,
    /// The device returned a descriptor id that is not the head of a chain in flight.
    BadUsedId(u32),
}

/// A split virtqueue, driver side.
pub struct VirtQueue {
    mem: NonNull<u8>,
    layout: Layout,
    size: u16,
    /// The driver's copy of the free-descriptor list (never trusts what the device could
    /// have written into the table).
    next_free: Vec<u16>,
    free_head: u16,
    num_free: u16,
    /// Chain length per head in flight, 0 for descriptors not heading a chain.
    chain_len: Vec<u16>,
    /// Our shadow of avail->idx and the next used->idx we have not consumed.
    avail_idx: u16,
    last_used: u16,
}

// The queue owns its memory; the raw pointer is not shared outside it.
// SAFETY: nothing in VirtQueue is tied to a thread.
unsafe impl Send for VirtQueue {}

impl core::fmt::Debug for VirtQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VirtQueue").field("addr", &self.mem).field("size", &self.size).finish()
    }
}

impl VirtQueue {
    /// A zeroed queue of `size` entries (a power of two) in page-aligned heap memory.
    pub fn new(size: u16) -> Result<VirtQueue, QueueError> {
        if size == 0 || !size.is_power_of_two() {
            return Err(QueueError::BadSize);
        }
        let ql = QueueLayout::new(size);
        let layout = Layout::from_size_align(ql.total, QUEUE_ALIGN).map_err(|_| QueueError::BadSize)?;
        // SAFETY: the layout has a non-zero size.
        let mem = NonNull::new(unsafe { alloc_zeroed(layout) }).ok_or(QueueError::NoMemory)?;
        let next_free = (1..=size).map(|i| i % size).collect();
        Ok(VirtQueue {
            mem,
            layout,
            size,
            next_free,
            free_head: 0,
            num_free: size,
            chain_len: vec![0; size as usize],
            avail_idx: 0,
            last_used: 0,
        })
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    pub fn num_free(&self) -> u16 {
        self.num_free
    }

    /// DMA addresses of the descriptor table, the available and the used ring.
    pub fn desc_addr(&self) -> u64 {
        self.mem.as_ptr() as u64
    }
    pub fn avail_addr(&self) -> u64 {
        self.desc_addr() + QueueLayout::new(self.size).avail_offset as u64
    }
    pub fn used_addr(&self) -> u64 {
        self.desc_addr() + QueueLayout::new(self.size).used_offset as u64
    }

    fn ptr<T>(&self, offset: usize) -> *mut T {
        debug_assert!(offset + core::mem::size_of::<T>() <= self.layout.size());
        // SAFETY: every caller passes an offset inside the allocation (the ring geometry
        // is fixed by `size`), so the result stays in bounds.
        unsafe { self.mem.as_ptr().add(offset).cast() }
    }

    fn write_desc(&mut self, i: u16, d: Descriptor) {
        let p = self.ptr::<Descriptor>(16 * i as usize);
        // SAFETY: `i < size`: inside the table; 16-byte aligned (page-aligned base).
        unsafe { p.write_volatile(d) }
    }

    fn avail_ring_offset(&self, slot: u16) -> usize {
        QueueLayout::new(self.size).avail_offset + 4 + 2 * (slot % self.size) as usize
    }

    fn used_offset(&self) -> usize {
        QueueLayout::new(self.size).used_offset
    }

    /// Put a chain of `bufs` on the available ring (§2.6.13) and return its head id, or
    /// `None` when fewer than `bufs.len()` descriptors are free (or `bufs` is empty). The
    /// caller notifies the device.
    pub fn add(&mut self, bufs: &[Buffer]) -> Option<u16> {
        if bufs.is_empty() || bufs.len() > usize::from(self.num_free) {
            return None;
        }
        let head = self.free_head;
        let mut i = head;
        for (k, b) in bufs.iter().enumerate() {
            let last = k + 1 == bufs.len();
            let next = self.next_free[i as usize];
            let flags = if b.device_writes { VIRTQ_DESC_F_WRITE } else { 0 } | if last { 0 } else { VIRTQ_DESC_F_NEXT };
            self.write_desc(i, Descriptor { addr: b.addr, len: b.len, flags, next: if last { 0 } else { next } });
            if last {
                self.free_head = next;
            }
            i = next;
        }
        self.num_free -= bufs.len() as u16;
        self.chain_len[head as usize] = bufs.len() as u16;

        let slot = self.ptr::<u16>(self.avail_ring_offset(self.avail_idx));
        // SAFETY: inside the available ring, 2-byte aligned.
        unsafe { slot.write_volatile(head) };
        // §2.6.13.3: the descriptors and the ring entry must be visible before the index.
        fence(Ordering::SeqCst);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        let idx = self.ptr::<u16>(QueueLayout::new(self.size).avail_offset + 2);
        // SAFETY: avail->idx, 2-byte aligned.
        unsafe { idx.write_volatile(self.avail_idx) };
        // §2.6.13.6: the index must be visible before the notification that follows.
        fence(Ordering::SeqCst);
        Some(head)
    }

    /// The next completed chain: (head id, bytes the device wrote), its descriptors
    /// returned to the free list. `Ok(None)` when nothing new is on the used ring.
    pub fn pop_used(&mut self) -> Result<Option<(u16, u32)>, QueueError> {
        let used = self.used_offset();
        // SAFETY: used->idx, 2-byte aligned, inside the allocation.
        let idx = unsafe { self.ptr::<u16>(used + 2).read_volatile() };
        if idx == self.last_used {
            return Ok(None);
        }
        // §2.6.14: read the entries only after seeing the index.
        fence(Ordering::SeqCst);
        let entry = used + 4 + 8 * (self.last_used % self.size) as usize;
        // SAFETY: used->ring[last_used % size], 4-byte aligned, inside the allocation.
        let (id, len) = unsafe { (self.ptr::<u32>(entry).read_volatile(), self.ptr::<u32>(entry + 4).read_volatile()) };
        let head = u16::try_from(id).ok().filter(|&h| h < self.size && self.chain_len[h as usize] != 0);
        let Some(head) = head else {
            return Err(QueueError::BadUsedId(id));
        };
        self.last_used = self.last_used.wrapping_add(1);
        // Walk our own copy of the chain (head, next_free[head], ...) back onto the free list.
        let n = self.chain_len[head as usize];
        self.chain_len[head as usize] = 0;
        let mut tail = head;
        for _ in 1..n {
            tail = self.next_free[tail as usize];
        }
        self.next_free[tail as usize] = self.free_head;
        self.free_head = head;
        self.num_free += n;
        Ok(Some((head, len)))
    }

    /// Chains the device has not returned yet.
    pub fn in_flight(&self) -> u16 {
        self.avail_idx.wrapping_sub(self.last_used)
    }
}

impl Drop for VirtQueue {
    fn drop(&mut self) {
        // The owner resets the device before dropping its queues (§2.1.2: after reset
        // the device no longer touches them).
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.mem.as_ptr(), self.layout) }
    }
}

/// A zeroed, page-aligned heap block for device-visible data (request headers, status
/// bytes): its address is its DMA address. Accessed only through raw pointers.
pub struct DmaRegion {
    mem: NonNull<u8>,
    layout: Layout,
}

// SAFETY: owned memory, not tied to a thread.
unsafe impl Send for DmaRegion {}

impl DmaRegion {
    /// `len` zeroed bytes (`len` > 0), or `None` when the heap is exhausted.
    pub fn new(len: usize) -> Option<DmaRegion> {
        let layout = Layout::from_size_align(len.max(1), QUEUE_ALIGN).ok()?;
        // SAFETY: the layout has a non-zero size.
        let mem = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        Some(DmaRegion { mem, layout })
    }

    pub fn addr(&self) -> u64 {
        self.mem.as_ptr() as u64
    }

    pub fn len(&self) -> usize {
        self.layout.size()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// A raw pointer to the `T` at `offset` (in bounds and aligned, or this panics).
    pub fn ptr<T>(&self, offset: usize) -> *mut T {
        assert!(offset + core::mem::size_of::<T>() <= self.len() && offset.is_multiple_of(core::mem::align_of::<T>()));
        // SAFETY: in bounds (checked above).
        unsafe { self.mem.as_ptr().add(offset).cast() }
    }
}

impl Drop for DmaRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.mem.as_ptr(), self.layout) }
    }
}

/// A device model for host tests: reads the rings the way the spec says a device does,
/// through the addresses the driver programs, and completes chains in any order.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;

    pub(crate) struct FakeDevice {
        desc: *const Descriptor,
        avail: *const u16,
        used: *mut u8,
        size: u16,
        seen_avail: u16,
        used_idx: u16,
    }

    impl FakeDevice {
        pub(crate) fn new(q: &VirtQueue) -> FakeDevice {
            FakeDevice {
                desc: q.desc_addr() as *const Descriptor,
                avail: q.avail_addr() as *const u16,
                used: q.used_addr() as *mut u8,
                size: q.size(),
                seen_avail: 0,
                used_idx: 0,
            }
        }

        /// Take every newly available chain: (head, its descriptors).
        pub(crate) fn take(&mut self) -> Vec<(u16, Vec<Descriptor>)> {
            let mut out = Vec::new();
            // SAFETY: the test's queue is alive; avail->idx is at +2.
            let idx = unsafe { self.avail.add(1).read_volatile() };
            while self.seen_avail != idx {
                // SAFETY: ring[seen % size] is inside the available ring.
                let head = unsafe { self.avail.add(2 + (self.seen_avail % self.size) as usize).read_volatile() };
                let mut chain = Vec::new();
                let mut i = head;
                loop {
                    // SAFETY: descriptor ids stay below size (asserted).
                    let d = unsafe { self.desc.add(i as usize).read_volatile() };
                    chain.push(d);
                    if d.flags & VIRTQ_DESC_F_NEXT == 0 {
                        break;
                    }
                    assert!(d.next < self.size && chain.len() <= self.size as usize);
                    i = d.next;
                }
                out.push((head, chain));
                self.seen_avail = self.seen_avail.wrapping_add(1);
            }
            out
        }

        pub(crate) fn complete(&mut self, id: u32, len: u32) {
            let e = 4 + 8 * (self.used_idx % self.size) as usize;
            // SAFETY: inside the used ring of the live queue.
            unsafe {
                self.used.add(e).cast::<u32>().write_volatile(id);
                self.used.add(e + 4).cast::<u32>().write_volatile(len);
                self.used_idx = self.used_idx.wrapping_add(1);
                self.used.add(2).cast::<u16>().write_volatile(self.used_idx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeDevice;
    use super::*;

    fn buf(addr: u64, len: u32, w: bool) -> Buffer {
        Buffer { addr, len, device_writes: w }
    }

    #[test]
    fn layout_matches_the_legacy_formula() {
        // §2.6.2 legacy: 256 entries: 4096 + 518 -> used at 8192, 2054 bytes -> 3 pages.
        assert_eq!(QueueLayout::new(256), QueueLayout { avail_offset: 4096, used_offset: 8192, total: 12288 });
        assert_eq!(QueueLayout::new(8), QueueLayout { avail_offset: 128, used_offset: 4096, total: 8192 });
        assert!(VirtQueue::new(6).is_err() && VirtQueue::new(0).is_err());
    }

    #[test]
    fn chains_round_trip_out_of_order_and_wrap() {
        let mut q = VirtQueue::new(8).unwrap();
        assert_eq!(q.desc_addr() % 4096, 0);
        let mut dev = FakeDevice::new(&q);
        // Many rounds: the 16-bit indices and the ring positions wrap many times.
        for round in 0..20_000u32 {
            let a = q.add(&[buf(0x1000, 16, false), buf(0x2000 + u64::from(round), 512, true), buf(0x3000, 1, true)]);
            let b = q.add(&[buf(0x4000, 16, false), buf(0x5000, 4096, true)]);
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(q.num_free(), 3);
            // Only 3 left: a 4-chain does not fit, nothing is published.
            assert_eq!(q.add(&[buf(0, 1, false); 4]), None);
            assert_eq!(q.in_flight(), 2);
            let got = dev.take();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].0, a);
            assert_eq!(got[0].1.len(), 3);
            assert_eq!(
                got[0].1[1],
                Descriptor { addr: 0x2000 + u64::from(round), len: 512, flags: 3, next: got[0].1[1].next }
            );
            assert_eq!(got[0].1[2].flags, VIRTQ_DESC_F_WRITE);
            assert_eq!(got[0].1[0].flags, VIRTQ_DESC_F_NEXT);
            assert_eq!(got[1].1.len(), 2);
            assert_eq!(q.pop_used(), Ok(None));
            // Complete the second first.
            dev.complete(u32::from(b), 4096);
            dev.complete(u32::from(a), 513);
            assert_eq!(q.pop_used(), Ok(Some((b, 4096))));
            assert_eq!(q.pop_used(), Ok(Some((a, 513))));
            assert_eq!(q.pop_used(), Ok(None));
            assert_eq!(q.num_free(), 8);
            assert_eq!(q.in_flight(), 0);
        }
    }

    #[test]
    fn full_queue_and_bogus_ids() {
        let mut q = VirtQueue::new(4).unwrap();
        let mut dev = FakeDevice::new(&q);
        let heads: Vec<u16> = (0..4).map(|i| q.add(&[buf(i, 1, true)]).unwrap()).collect();
        assert_eq!(q.add(&[buf(0, 1, true)]), None);
        assert_eq!(dev.take().len(), 4);
        dev.complete(99, 0);
        assert_eq!(q.pop_used(), Err(QueueError::BadUsedId(99)));
        let mut q = VirtQueue::new(4).unwrap();
        let mut dev = FakeDevice::new(&q);
        let h = q.add(&[buf(0, 1, true)]).unwrap();
        dev.take();
        dev.complete(u32::from(h), 1);
        assert_eq!(q.pop_used(), Ok(Some((h, 1))));
        // The same id again: not in flight any more.
        dev.complete(u32::from(h), 1);
        assert_eq!(q.pop_used(), Err(QueueError::BadUsedId(u32::from(h))));
        let _ = heads;
    }
}
