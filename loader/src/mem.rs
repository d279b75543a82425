// SPDX-License-Identifier: MIT OR Apache-2.0
//! The guest's physical memory map, a region allocator over it, and the quarantine of
//! pages a device may still write.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// e820 / hvm_memmap_entry type: usable RAM.
pub const E820_RAM: u32 = 1;
/// Reserved.
pub const E820_RESERVED: u32 = 2;
/// ACPI reclaimable.
pub const E820_ACPI: u32 = 3;
/// ACPI NVS.
pub const E820_NVS: u32 = 4;
/// Unusable.
pub const E820_UNUSABLE: u32 = 5;

/// One memory-map entry (same meaning as `hvm_memmap_table_entry` and `boot_e820_entry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

/// Most disjoint free ranges the allocator tracks (memory maps have a few dozen entries).
pub const MAX_REGIONS: usize = 128;
/// Page size.
pub const PAGE: u64 = 4096;

/// A half-open physical range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

/// Guest-physical pages the loader must never hand out again because a device may still
/// write them: a Xen backend that kept a grant mapped after its request timed out, a
/// virtio device that did not acknowledge its reset. Fixed capacity and no heap; when
/// full, the last range grows to cover the new one (reserving too much is safe,
/// reserving too little is not). Every [`RegionAllocator`] skips [`QUARANTINE`].
#[derive(Debug)]
pub struct Quarantine {
    /// `[start, end)` page ranges; entries at `len..` are unused.
    ranges: [(AtomicU64, AtomicU64); QUARANTINE_RANGES],
    len: AtomicUsize,
}

const QUARANTINE_RANGES: usize = 32;

/// The loader's one quarantine (the loader runs on one CPU, with interrupts off: the
/// atomics only make the static shareable).
pub static QUARANTINE: Quarantine = Quarantine::new();

impl Quarantine {
    pub const fn new() -> Quarantine {
        Quarantine {
            ranges: [const { (AtomicU64::new(0), AtomicU64::new(0)) }; QUARANTINE_RANGES],
            len: AtomicUsize::new(0),
        }
    }

    /// Never hand out `[addr, addr + len)` (rounded out to pages) again.
    pub fn add(&self, addr: u64, len: u64) {
        if len == 0 {
            return;
        }
        let (s, e) = (align_down(addr, PAGE), align_up(addr.saturating_add(len), PAGE).unwrap_or(u64::MAX));
        let n = self.len.load(Ordering::Acquire);
        // Grow a range it overlaps or touches.
        for (rs, re) in &self.ranges[..n] {
            let (a, b) = (rs.load(Ordering::Relaxed), re.load(Ordering::Relaxed));
            if s <= b && a <= e {
                rs.store(a.min(s), Ordering::Relaxed);
                re.store(b.max(e), Ordering::Relaxed);
                return;
            }
        }
        if n < QUARANTINE_RANGES {
            self.ranges[n].0.store(s, Ordering::Relaxed);
            self.ranges[n].1.store(e, Ordering::Relaxed);
            self.len.store(n + 1, Ordering::Release);
        } else {
            let (rs, re) = &self.ranges[n - 1];
            rs.store(rs.load(Ordering::Relaxed).min(s), Ordering::Relaxed);
            re.store(re.load(Ordering::Relaxed).max(e), Ordering::Relaxed);
        }
    }

    /// The quarantined ranges (possibly overlapping after an overflow).
    pub fn ranges(&self) -> impl Iterator<Item = Range> + '_ {
        let n = self.len.load(Ordering::Acquire);
        self.ranges[..n].iter().map(|(s, e)| Range { start: s.load(Ordering::Relaxed), end: e.load(Ordering::Relaxed) })
    }

    /// Whether any byte of `[addr, addr + len)` is quarantined.
    pub fn overlaps(&self, addr: u64, len: u64) -> bool {
        let end = addr.saturating_add(len);
        len > 0 && self.ranges().any(|r| r.start < end && addr < r.end)
    }

    pub fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }
}

impl Default for Quarantine {
    fn default() -> Self {
        Quarantine::new()
    }
}

/// Free guest RAM, page-granular, below a limit. Needs no heap (the heap is carved from it).
#[derive(Clone, Debug)]
pub struct RegionAllocator {
    free: [Range; MAX_REGIONS],
    len: usize,
}

fn align_up(v: u64, a: u64) -> Option<u64> {
    debug_assert!(a.is_power_of_two());
    v.checked_add(a - 1).map(|x| x & !(a - 1))
}

fn align_down(v: u64, a: u64) -> u64 {
    v & !(a - 1)
}

impl RegionAllocator {
    /// Free RAM = the `E820_RAM` entries, shrunk inward to whole pages, clipped to
    /// `[0, limit)`, minus every non-RAM entry (maps can overlap).
    pub fn from_e820(map: impl IntoIterator<Item = E820Entry> + Clone, limit: u64) -> RegionAllocator {
        let mut a = RegionAllocator { free: [Range::default(); MAX_REGIONS], len: 0 };
        for e in map.clone() {
            if e.kind == E820_RAM {
                let start = align_up(e.addr, PAGE).unwrap_or(u64::MAX);
                let end = align_down(e.addr.saturating_add(e.size).min(limit), PAGE);
                a.add(start, end);
            }
        }
        for e in map {
            if e.kind != E820_RAM {
                a.reserve(e.addr, e.size);
            }
        }
        a
    }

    fn add(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // Merge with whatever overlaps or touches, keep the list sorted.
        let (mut s, mut e) = (start, end);
        let mut out = [Range::default(); MAX_REGIONS];
        let mut n = 0;
        let mut placed = false;
        for r in &self.free[..self.len] {
            if r.end < s {
                out[n] = *r;
                n += 1;
            } else if r.start > e {
                if !placed {
                    out[n] = Range { start: s, end: e };
                    n += 1;
                    placed = true;
                }
                if n < MAX_REGIONS {
                    out[n] = *r;
                    n += 1;
                }
            } else {
                s = s.min(r.start);
                e = e.max(r.end);
            }
        }
        if !placed && n < MAX_REGIONS {
            out[n] = Range { start: s, end: e };
            n += 1;
        }
        self.free = out;
        self.len = n;
    }

    /// Remove `[addr, addr + len)` (rounded out to pages) from the free set.
    pub fn reserve(&mut self, addr: u64, len: u64) {
        if len == 0 {
            return;
        }
        let s = align_down(addr, PAGE);
        let e = align_up(addr.saturating_add(len), PAGE).unwrap_or(u64::MAX);
        let mut out = [Range::default(); MAX_REGIONS];
        let mut n = 0;
        for r in &self.free[..self.len] {
            for piece in [Range { start: r.start, end: r.end.min(s) }, Range { start: r.start.max(e), end: r.end }] {
                if piece.start < piece.end && n < MAX_REGIONS {
                    out[n] = piece;
                    n += 1;
                }
            }
        }
        self.free = out;
        self.len = n;
    }

    /// Undo [`reserve`](Self::reserve): give `[addr, addr + len)`, rounded out to whole
    /// pages as `reserve` rounds, back to the free set. The caller vouches that those pages
    /// are RAM and its own (checked free before it reserved them).
    pub fn release(&mut self, addr: u64, len: u64) {
        if len == 0 {
            return;
        }
        let start = align_down(addr, PAGE);
        let end = align_up(addr.saturating_add(len), PAGE).unwrap_or(u64::MAX);
        self.add(start, end);
    }

    /// The free ranges, sorted.
    pub fn free(&self) -> &[Range] {
        &self.free[..self.len]
    }

    /// Total free bytes.
    pub fn free_bytes(&self) -> u64 {
        self.free().iter().map(|r| r.end - r.start).sum()
    }

    /// Is `[addr, addr + len)` entirely free (and nothing of it quarantined)?
    pub fn is_free(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else { return false };
        self.free().iter().any(|r| r.start <= addr && end <= r.end) && !QUARANTINE.overlaps(addr, len)
    }

    /// Take the quarantined pages out of the free set (before every allocation: pages
    /// are quarantined while allocators cloned earlier still list them free).
    pub fn skip_quarantine(&mut self, q: &Quarantine) {
        for r in q.ranges() {
            self.reserve(r.start, r.end - r.start);
        }
    }

    /// Take `[addr, addr + len)` if it is free.
    pub fn alloc_at(&mut self, addr: u64, len: u64) -> bool {
        self.skip_quarantine(&QUARANTINE);
        if self.is_free(addr, len) {
            self.reserve(addr, len);
            true
        } else {
            false
        }
    }

    /// The highest `len` bytes aligned to `align` that end at or below `max_end`.
    pub fn alloc_top(&mut self, len: u64, align: u64, max_end: u64) -> Option<u64> {
        self.skip_quarantine(&QUARANTINE);
        let align = align.max(PAGE);
        let len = align_up(len.max(1), PAGE)?;
        let found = self.free().iter().rev().find_map(|r| {
            let end = r.end.min(max_end);
            let start = align_down(end.checked_sub(len)?, align);
            (start >= r.start).then_some(start)
        })?;
        self.reserve(found, len);
        Some(found)
    }

    /// The lowest `len` bytes aligned to `align` that start at or above `min_start`.
    pub fn alloc_bottom(&mut self, len: u64, align: u64, min_start: u64) -> Option<u64> {
        self.skip_quarantine(&QUARANTINE);
        let align = align.max(PAGE);
        let len = align_up(len.max(1), PAGE)?;
        let found = self.free().iter().find_map(|r| {
            let start = align_up(r.start.max(min_start), align)?;
            (start.checked_add(len)? <= r.end).then_some(start)
        })?;
        self.reserve(found, len);
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantine_merges_overflows_safely_and_allocators_skip_it() {
        let q = Quarantine::new();
        assert!(q.is_empty() && !q.overlaps(0, u64::MAX));
        q.add(0x1_0800, 0x100); // rounded out to the page
        q.add(0x1_1000, 0x1000); // touching: merged
        assert_eq!(q.ranges().collect::<alloc::vec::Vec<_>>(), [Range { start: 0x1_0000, end: 0x1_2000 }]);
        assert!(q.overlaps(0x1_1fff, 1) && !q.overlaps(0x1_2000, 0x1000));
        for i in 0..QUARANTINE_RANGES as u64 + 3 {
            q.add(0x100_0000 + i * 0x10_0000, 0x1000);
        }
        // Full: the last range grew to cover the rest (more reserved, nothing lost).
        for i in 0..QUARANTINE_RANGES as u64 + 3 {
            assert!(q.overlaps(0x100_0000 + i * 0x10_0000, 0x1000), "{i}");
        }
        let mut a = RegionAllocator::from_e820([E820Entry { addr: 0, size: 0x10_0000, kind: E820_RAM }], u64::MAX);
        a.skip_quarantine(&q);
        assert!(!a.free().iter().any(|r| r.start < 0x1_2000 && 0x1_0000 < r.end));
        assert_eq!(a.free_bytes(), 0x10_0000 - 0x2000);
    }

    #[test]
    fn release_gives_back_and_merges() {
        let mut a = RegionAllocator::from_e820([E820Entry { addr: 0, size: 0x10_0000, kind: E820_RAM }], u64::MAX);
        a.reserve(0x2000, 0x3000);
        assert!(!a.is_free(0x3000, 0x1000));
        a.release(0x2000, 0x3000);
        assert_eq!(a.free(), &[Range { start: 0, end: 0x10_0000 }]);
        // Rounded as reserve rounds: an unaligned reserve/release pair leaves nothing behind.
        a.reserve(0x2800, 0x1000);
        assert!(!a.is_free(0x2000, 0x2000));
        a.release(0x2800, 0x1000);
        assert_eq!(a.free(), &[Range { start: 0, end: 0x10_0000 }]);
    }

    fn qemu_map() -> [E820Entry; 4] {
        [
            E820Entry { addr: 0, size: 0x9fc00, kind: E820_RAM },
            E820Entry { addr: 0x9fc00, size: 0x400, kind: E820_RESERVED },
            E820Entry { addr: 0x10_0000, size: 0x1ff0_0000, kind: E820_RAM },
            E820Entry { addr: 0xfeff_c000, size: 0x4000, kind: E820_RESERVED },
        ]
    }

    #[test]
    fn from_e820_rounds_inward_and_clips() {
        let map = [
            E820Entry { addr: 0x100, size: 0x2000, kind: E820_RAM },
            E820Entry { addr: 0x1_0000_0000 - 0x1000, size: 0x2000_0000, kind: E820_RAM },
        ];
        let a = RegionAllocator::from_e820(map, 1 << 32);
        assert_eq!(a.free(), &[Range { start: 0x1000, end: 0x2000 }, Range { start: 0xffff_f000, end: 0x1_0000_0000 }]);
    }

    #[test]
    fn reserved_overlapping_ram_is_removed() {
        let map = [
            E820Entry { addr: 0, size: 0x100_0000, kind: E820_RAM },
            E820Entry { addr: 0x10_0800, size: 0x100, kind: E820_ACPI },
        ];
        let a = RegionAllocator::from_e820(map, 1 << 32);
        assert_eq!(a.free(), &[Range { start: 0, end: 0x10_0000 }, Range { start: 0x10_1000, end: 0x100_0000 }]);
    }

    #[test]
    fn top_bottom_at() {
        let mut a = RegionAllocator::from_e820(qemu_map(), 1 << 32);
        a.reserve(0, 0x10_0000);
        let top = a.alloc_top(0x10_0000, 0x20_0000, u64::MAX).unwrap();
        assert_eq!(top, 0x1fe0_0000);
        assert!(!a.is_free(top, 1));
        let bottom = a.alloc_bottom(0x3000, 0x20_0000, 0x10_0000).unwrap();
        assert_eq!(bottom, 0x20_0000);
        assert!(a.alloc_at(0x100_0000, 0x200_0000));
        assert!(!a.alloc_at(0x100_0000, 0x1000));
        // Below a cap (initrd_addr_max-style).
        let capped = a.alloc_top(0x1000, PAGE, 0x80_0000).unwrap();
        assert_eq!(capped, 0x7f_f000);
        assert_eq!(a.alloc_top(0x4000_0000, PAGE, u64::MAX), None);
    }

    proptest::proptest! {
        #[test]
        fn allocations_never_overlap(sizes in proptest::collection::vec((1u64..0x40_0000, 0u32..3, proptest::bool::ANY), 1..40)) {
            let mut a = RegionAllocator::from_e820(qemu_map(), 1 << 32);
            let total = a.free_bytes();
            let mut got: Vec<(u64, u64)> = Vec::new();
            for (len, al, top) in sizes {
                let align = [PAGE, 0x20_0000, 0x100_0000][al as usize];
                let r = if top { a.alloc_top(len, align, u64::MAX) } else { a.alloc_bottom(len, align, 0) };
                if let Some(s) = r {
                    let l = align_up(len, PAGE).unwrap();
                    proptest::prop_assert_eq!(s % align, 0);
                    for &(os, ol) in &got {
                        proptest::prop_assert!(s + l <= os || os + ol <= s, "overlap");
                    }
                    got.push((s, l));
                }
            }
            let used: u64 = got.iter().map(|g| g.1).sum();
            proptest::prop_assert!(a.free_bytes() <= total - used);
        }
    }
}
