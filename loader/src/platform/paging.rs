// SPDX-License-Identifier: MIT OR Apache-2.0
//! Identity mappings above 4 GiB, for device registers the firmware or the VMM placed
//! there (a 64-bit PCI BAR in SeaBIOS's or Cloud Hypervisor's high window, a
//! `virtio_mmio.device=` region).
//!
//! pvh.S identity-maps 0..4 GiB with 2 MiB pages (PML4[0] -> one PDPT -> four PDs).
//! [`map_mmio`] extends those same tables on demand: missing PDPTs and PDs come from the
//! heap (itself below 4 GiB, so the tables stay reachable through the low map), new
//! 2 MiB pages are uncached (PCD|PWT: device registers must not be cached or combined),
//! and entries that exist are left as they are. Mappings are never removed; the kernel
//! builds its own tables before it looks at these.
//!
//! The table walk is pure ([`map_range`] over a [`TableMemory`]) and host-tested; only
//! [`map_mmio`] reads CR3 and touches real tables.

/// Page-table entry bits (Intel SDM vol. 3A §4.5, tables 4-15 to 4-19).
const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const PWT: u64 = 1 << 3;
const PCD: u64 = 1 << 4;
const PS: u64 = 1 << 7;
/// Bits 12..51 of an entry: the physical address of the next table or the page.
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PAGE_2M: u64 = 1 << 21;

/// Why a range could not be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Beyond what the CPU can address (CPUID 0x80000008 MAXPHYADDR) or 4-level paging.
    BeyondPhysicalAddressSpace { end: u64, max: u64 },
    /// No memory for a page table.
    NoMemory,
    /// Only the loader can change its page tables (not host tests).
    Unavailable,
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MapError::BeyondPhysicalAddressSpace { end, max } => {
                write!(f, "ends at {end:#x}, beyond the CPU's physical address space ({max:#x})")
            }
            MapError::NoMemory => f.write_str("no memory for a page table"),
            MapError::Unavailable => f.write_str("page tables cannot be changed here"),
        }
    }
}

/// Page tables as [`map_range`] sees them: 512-entry tables named by physical address.
pub trait TableMemory {
    fn read(&self, table: u64, index: usize) -> u64;
    fn write(&mut self, table: u64, index: usize, entry: u64);
    /// A zeroed, 4 KiB-aligned table that stays put for good.
    fn alloc_table(&mut self) -> Option<u64>;
}

/// Identity-map `[addr, addr + len)` (rounded out to 2 MiB pages) under the PML4 at
/// `root`, uncached, creating the tables it needs. Ranges already mapped (pvh.S's low
/// 4 GiB, a 1 GiB page, an earlier call) are left alone. `max_phys` is the first address
/// the CPU cannot reach. Returns how many 2 MiB pages were added.
pub fn map_range(mem: &mut impl TableMemory, root: u64, addr: u64, len: u64, max_phys: u64) -> Result<usize, MapError> {
    if len == 0 {
        return Ok(0);
    }
    let max = max_phys.min(1 << 48);
    let end = addr
        .checked_add(len)
        .filter(|&e| e <= max)
        .ok_or(MapError::BeyondPhysicalAddressSpace { end: addr.saturating_add(len), max })?;
    let mut added = 0;
    let mut page = addr & !(PAGE_2M - 1);
    while page < end {
        let pdpt = next_table(mem, root, (page >> 39) as usize & 511)?;
        let pdpte = mem.read(pdpt, (page >> 30) as usize & 511);
        if pdpte & (P | PS) == (P | PS) {
            page = (page | ((1 << 30) - 1)) + 1; // a 1 GiB page already maps all of it
            continue;
        }
        let pd = next_table(mem, pdpt, (page >> 30) as usize & 511)?;
        let i = (page >> 21) as usize & 511;
        if mem.read(pd, i) & P == 0 {
            mem.write(pd, i, page | P | RW | PS | PWT | PCD);
            added += 1;
        }
        page += PAGE_2M;
    }
    Ok(added)
}

/// The table entry `index` of `table` points to, made (empty) if there is none.
fn next_table(mem: &mut impl TableMemory, table: u64, index: usize) -> Result<u64, MapError> {
    let e = mem.read(table, index);
    if e & P != 0 {
        return Ok(e & ADDR_MASK);
    }
    let t = mem.alloc_table().ok_or(MapError::NoMemory)?;
    mem.write(table, index, t | P | RW);
    Ok(t)
}

/// The CPU's physical address limit: 2^MAXPHYADDR (CPUID 0x80000008 EAX[7:0]; 36 bits
/// when the leaf is missing, as the SDM says to assume).
pub fn max_phys() -> u64 {
    let (max_ext, ..) = super::cpuid(0x8000_0000);
    let bits = if max_ext >= 0x8000_0008 { super::cpuid(0x8000_0008).0 & 0xff } else { 36 };
    1u64 << bits.clamp(32, 52)
}

/// Identity-map device registers at `[addr, addr + len)`, uncached, so that an
/// [`crate::drivers::virtio::MmioRegion`] can be made over them. Below 4 GiB pvh.S has
/// mapped everything already.
pub fn map_mmio(addr: u64, len: u64) -> Result<(), MapError> {
    if addr.checked_add(len).is_some_and(|end| end <= 1 << 32) {
        return Ok(());
    }
    #[cfg(test)]
    return Err(MapError::Unavailable);
    #[cfg(not(test))]
    {
        let cr3: u64;
        // SAFETY: reading CR3 has no side effects; the loader runs at CPL 0.
        unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags)) };
        let added = map_range(&mut LiveTables, cr3 & ADDR_MASK, addr, len, max_phys())?;
        if added > 0 {
            // SAFETY: writing CR3 back flushes the TLB (non-global entries; the loader
            // sets no G bits) so the new entries are used; the tables themselves are
            // unchanged where they were already present.
            unsafe { core::arch::asm!("mov cr3, {}", in(reg) cr3, options(nostack, preserves_flags)) };
        }
        Ok(())
    }
}

/// The page tables the CPU uses: pvh.S's (in .bss, below 4 GiB) and those added here
/// (heap, below 4 GiB), all reachable through the low identity map.
#[cfg(not(test))]
struct LiveTables;

#[cfg(not(test))]
impl TableMemory for LiveTables {
    fn read(&self, table: u64, index: usize) -> u64 {
        // SAFETY: `table` is a page table of the live hierarchy (from CR3 or an entry of
        // it), below 4 GiB and so identity mapped; index < 512 (masked by the caller).
        unsafe { core::ptr::read_volatile((table as usize as *const u64).add(index & 511)) }
    }
    fn write(&mut self, table: u64, index: usize, entry: u64) {
        // SAFETY: as in `read`; the entries written are not present before (map_range
        // only fills empty ones), so no translation in use changes.
        unsafe { core::ptr::write_volatile((table as usize as *mut u64).add(index & 511), entry) }
    }
    fn alloc_table(&mut self) -> Option<u64> {
        let layout = core::alloc::Layout::from_size_align(4096, 4096).ok()?;
        // SAFETY: non-zero size. Never freed: the CPU walks it from now on.
        let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
        let at = p as u64;
        (!p.is_null() && at.checked_add(4096).is_some_and(|e| e <= 1 << 32)).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    /// Tables as a map of (table, index) -> entry; tables are handed out from 0x10_0000.
    #[derive(Default)]
    struct Fake {
        entries: BTreeMap<(u64, usize), u64>,
        next: u64,
        limit: usize,
        tables: usize,
    }

    impl TableMemory for Fake {
        fn read(&self, table: u64, index: usize) -> u64 {
            self.entries.get(&(table, index)).copied().unwrap_or(0)
        }
        fn write(&mut self, table: u64, index: usize, entry: u64) {
            assert!(index < 512 && table.is_multiple_of(4096));
            self.entries.insert((table, index), entry);
        }
        fn alloc_table(&mut self) -> Option<u64> {
            if self.tables == self.limit {
                return None;
            }
            self.tables += 1;
            self.next += 4096;
            Some(0x10_0000 + self.next)
        }
    }

    /// pvh.S's layout: PML4 at 0x1000 -> PDPT at 0x2000 -> PDs 0x3000.. for 0..4 GiB.
    fn pvh_tables() -> Fake {
        let mut f = Fake { limit: 16, ..Fake::default() };
        f.write(0x1000, 0, 0x2000 | P | RW);
        for i in 0..4u64 {
            f.write(0x2000, i as usize, (0x3000 + i * 4096) | P | RW);
            for j in 0..512u64 {
                f.write(0x3000 + i * 4096, j as usize, ((i << 30) | (j << 21)) | P | RW | PS);
            }
        }
        f
    }

    /// The physical address `va` translates to, if mapped (2 MiB or 1 GiB pages).
    fn walk(f: &Fake, root: u64, va: u64) -> Option<u64> {
        let l4 = f.read(root, (va >> 39) as usize & 511);
        (l4 & P != 0).then_some(())?;
        let l3 = f.read(l4 & ADDR_MASK, (va >> 30) as usize & 511);
        (l3 & P != 0).then_some(())?;
        if l3 & PS != 0 {
            return Some((l3 & ADDR_MASK & !((1 << 30) - 1)) | (va & ((1 << 30) - 1)));
        }
        let l2 = f.read(l3 & ADDR_MASK, (va >> 21) as usize & 511);
        (l2 & P != 0 && l2 & PS != 0).then_some((l2 & ADDR_MASK & !(PAGE_2M - 1)) | (va & (PAGE_2M - 1)))
    }

    #[test]
    fn low_memory_is_left_alone_and_high_bars_are_identity_mapped_uncached() {
        let mut f = pvh_tables();
        let before = f.entries.clone();
        assert_eq!(map_range(&mut f, 0x1000, 0xfe00_0000, 0x4000, 1 << 40), Ok(0));
        assert_eq!(f.entries, before);
        // SeaBIOS's high window on q35: a 16 KiB BAR at 6 GiB. One new PD, one 2 MiB page.
        assert_eq!(map_range(&mut f, 0x1000, 0x1_8000_0000, 0x4000, 1 << 40), Ok(1));
        assert_eq!(f.tables, 1);
        assert_eq!(walk(&f, 0x1000, 0x1_8000_3ffc), Some(0x1_8000_3ffc));
        let pd = f.read(0x2000, 6) & ADDR_MASK;
        assert_eq!(f.read(pd, 0) & (PCD | PWT | PS | P), PCD | PWT | PS | P);
        // Again: nothing new.
        assert_eq!(map_range(&mut f, 0x1000, 0x1_8000_0000, 0x4000, 1 << 40), Ok(0));
        // Straddling two 2 MiB pages, and one above 512 GiB (a new PDPT too).
        assert_eq!(map_range(&mut f, 0x1000, 0x1_801f_f000, 0x2000, 1 << 40), Ok(1));
        assert_eq!(walk(&f, 0x1000, 0x1_8020_0000), Some(0x1_8020_0000));
        assert_eq!(map_range(&mut f, 0x1000, 0x80_0000_0000 + 0x1000, 0x1000, 1 << 46), Ok(1));
        assert_eq!(walk(&f, 0x1000, 0x80_0000_1234), Some(0x80_0000_1234));
        assert_eq!(f.tables, 3);
        // The low map is unchanged throughout.
        assert_eq!(walk(&f, 0x1000, 0xfebd_5000), Some(0xfebd_5000));
        assert_eq!(walk(&f, 0x1000, 0x1_0000_0000), None);
    }

    #[test]
    fn limits() {
        let mut f = pvh_tables();
        assert_eq!(
            map_range(&mut f, 0x1000, 0x100_0000_0000, 0x1000, 1 << 40),
            Err(MapError::BeyondPhysicalAddressSpace { end: 0x100_0000_1000, max: 1 << 40 })
        );
        assert!(map_range(&mut f, 0x1000, u64::MAX - 10, 100, 1 << 52).is_err());
        f.limit = 0;
        assert_eq!(map_range(&mut f, 0x1000, 0x2_0000_0000, 0x1000, 1 << 40), Err(MapError::NoMemory));
        // A 1 GiB page already there covers the range.
        let mut g = pvh_tables();
        g.write(0x2000, 8, (8u64 << 30) | P | RW | PS);
        assert_eq!(map_range(&mut g, 0x1000, 0x2_0000_0000, 1 << 30, 1 << 40), Ok(0));
        assert_eq!(map_range(&mut g, 0x1000, 0x2_0000_0000, 0, 1 << 40), Ok(0));
    }
}
