// SPDX-License-Identifier: MIT OR Apache-2.0
//! Xen from inside a 64-bit PV domain (pv-boot): what differs from PVH.
//!
//! **Addresses.** pv-boot's ELF notes say VIRT_BASE 0 and PADDR_OFFSET 0, so the domain
//! builder maps virtual address `pfn << 12` to pseudo-physical frame `pfn` for the whole
//! of its initial region (xen.h "start of day": our image, memdisk, p2m list, start_info,
//! xenstore and console pages, page tables, stack, >= 512 KiB of padding, up to a 4 MiB
//! boundary). [`extend_map`] extends that one-to-one map to every frame of the domain,
//! so in pv-boot, as in pvh-boot, a pointer *is* a guest (pseudo-physical) address and
//! the pure code above the platform cannot tell the two apart. What it cannot hide:
//! pages shared with other domains are named by machine frame (grants, rings), so
//! [`gfn`] turns a pfn into its mfn through the p2m list; Xen's own pages (shared_info,
//! grant frames) are mapped at virtual addresses just past RAM, in no frame of the guest.
//!
//! **Page tables are Xen's to check.** A PV guest never writes a live page-table entry:
//! it asks Xen (`mmu_update`, `update_va_mapping`, `mmuext_op`), and a frame can be a
//! page table only while no writable mapping of it exists. So a new table is filled
//! while still writable, then mapped read-only, then linked.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::{XenError, hypercall};
use crate::abi::xen::*;

/// Page-table entry bits (Intel SDM vol. 3, 4.5).
pub const PTE_PRESENT: u64 = 1;
pub const PTE_RW: u64 = 2;
pub const PTE_USER: u64 = 4;
pub const PTE_ACCESSED: u64 = 0x20;
pub const PTE_DIRTY: u64 = 0x40;
/// The machine-address bits of an entry.
pub const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;
/// An L1 entry for an ordinary page, as Xen's builder writes it (xg_dom_x86.c).
pub const L1_DATA: u64 = PTE_PRESENT | PTE_RW | PTE_ACCESSED;
/// An L1 entry for a page-table frame: read-only.
pub const L1_READ_ONLY: u64 = PTE_PRESENT | PTE_ACCESSED;
/// An L2..L4 entry (xg_dom_x86.c).
pub const UPPER: u64 = PTE_PRESENT | PTE_RW | PTE_ACCESSED | PTE_DIRTY | PTE_USER;

static PV: AtomicBool = AtomicBool::new(false);
/// The p2m list (`start_info.mfn_list`): pfn -> mfn, `P2M_LEN` entries.
static P2M: AtomicU64 = AtomicU64::new(0);
static P2M_LEN: AtomicU64 = AtomicU64::new(0);
static STORE: AtomicU64 = AtomicU64::new(0);
static STORE_PORT: AtomicU32 = AtomicU32::new(0);
static CONSOLE: AtomicU64 = AtomicU64::new(0);
static CONSOLE_PORT: AtomicU32 = AtomicU32::new(0);

/// Whether the loader runs as a PV guest.
pub fn is_pv() -> bool {
    PV.load(Ordering::Relaxed)
}

/// The frame number other domains and Xen know guest frame `pfn` by: its mfn on PV (the
/// p2m list), the pfn itself on PVH. `u64::MAX` for a pfn the p2m does not hold.
pub fn gfn(pfn: u64) -> u64 {
    if is_pv() { mfn_of(pfn).unwrap_or(u64::MAX) } else { pfn }
}

/// The machine frame behind `pfn` (PV).
pub fn mfn_of(pfn: u64) -> Option<u64> {
    let (list, len) = (P2M.load(Ordering::Acquire), P2M_LEN.load(Ordering::Acquire));
    if list == 0 || pfn >= len {
        return None;
    }
    // SAFETY: the p2m list is `len` u64s at `list` in the builder's region, mapped and
    // reserved for the whole boot (pv::boot); pfn < len.
    let m = unsafe { core::ptr::read_volatile((list as usize as *const u64).add(pfn as usize)) };
    (m != u64::MAX && m < (1 << 40)).then_some(m)
}

/// The guest frame machine frame `mfn` backs, from Xen's read-only machine-to-phys table.
pub fn m2p(mfn: u64) -> Option<u64> {
    if mfn >= (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) / 8 {
        return None;
    }
    // SAFETY: Xen maps its machine-to-phys table read-only at MACH2PHYS_VIRT_START in
    // every 64-bit PV guest's address space (arch-x86/xen-x86_64.h); the index is within
    // it. Entries for frames not ours hold garbage, which callers check against the p2m.
    let pfn = unsafe { core::ptr::read_volatile((MACH2PHYS_VIRT_START as usize as *const u64).add(mfn as usize)) };
    (pfn < P2M_LEN.load(Ordering::Relaxed) && mfn_of(pfn) == Some(mfn)).then_some(pfn)
}

/// What the domain builder left in `start_info` (xen.h `struct start_info`, x86_64).
#[derive(Clone, Debug)]
pub struct PvStart {
    pub va: u64,
    pub magic: [u8; 32],
    pub nr_pages: u64,
    /// Machine address of shared_info.
    pub shared_info: u64,
    pub flags: u32,
    pub store_mfn: u64,
    pub store_evtchn: u32,
    pub console_mfn: u64,
    pub console_evtchn: u32,
    pub pt_base: u64,
    pub nr_pt_frames: u64,
    pub mfn_list: u64,
    pub mod_start: u64,
    pub mod_len: u64,
    pub cmdline: [u8; 1024],
}

/// `SIF_MOD_START_PFN` (xen.h): `mod_start` is a pfn, not a virtual address.
pub const SIF_MOD_START_PFN: u32 = 1 << 3;

impl PvStart {
    /// Read `start_info` at `va` (in the builder's mapping).
    ///
    /// # Safety
    /// `va` must be the address the domain builder passed in `%rsi`.
    pub unsafe fn read(va: u64) -> PvStart {
        let p = va as usize as *const u8;
        // SAFETY: start_info is one page, mapped by the builder (caller's contract); every
        // offset read is inside its 1168 bytes (xen.h).
        let u64_at = |o: usize| unsafe { core::ptr::read_unaligned(p.add(o).cast::<u64>()) };
        // SAFETY: as above.
        let u32_at = |o: usize| unsafe { core::ptr::read_unaligned(p.add(o).cast::<u32>()) };
        let mut s = PvStart {
            va,
            magic: [0; 32],
            nr_pages: 0,
            shared_info: 0,
            flags: 0,
            store_mfn: 0,
            store_evtchn: 0,
            console_mfn: 0,
            console_evtchn: 0,
            pt_base: 0,
            nr_pt_frames: 0,
            mfn_list: 0,
            mod_start: 0,
            mod_len: 0,
            cmdline: [0; 1024],
        };
        // SAFETY: as above: magic is bytes 0..32, cmd_line 128..1152.
        unsafe {
            core::ptr::copy_nonoverlapping(p, s.magic.as_mut_ptr(), 32);
            core::ptr::copy_nonoverlapping(p.add(128), s.cmdline.as_mut_ptr(), 1024);
        }
        s.nr_pages = u64_at(32);
        s.shared_info = u64_at(40);
        s.flags = u32_at(48);
        s.store_mfn = u64_at(56);
        s.store_evtchn = u32_at(64);
        s.console_mfn = u64_at(72);
        s.console_evtchn = u32_at(80);
        s.pt_base = u64_at(88);
        s.nr_pt_frames = u64_at(96);
        s.mfn_list = u64_at(104);
        s.mod_start = u64_at(112);
        s.mod_len = u64_at(120);
        s
    }

    /// The command line, up to its NUL.
    pub fn cmdline(&self) -> &str {
        let n = self.cmdline.iter().position(|&b| b == 0).unwrap_or(self.cmdline.len());
        core::str::from_utf8(&self.cmdline[..n]).unwrap_or("")
    }

    /// The magic, e.g. "xen-3.0-x86_64".
    pub fn magic(&self) -> &str {
        let n = self.magic.iter().position(|&b| b == 0).unwrap_or(32);
        core::str::from_utf8(&self.magic[..n]).unwrap_or("?")
    }
}

/// Become a PV guest: hypercalls (the builder filled the page our HYPERCALL_PAGE note
/// names), the p2m list, and where the xenstore and console rings are mapped.
pub fn init(si: &PvStart) {
    PV.store(true, Ordering::Relaxed);
    super::HYPERCALLS_READY.store(true, Ordering::Release);
    P2M.store(si.mfn_list, Ordering::Relaxed);
    P2M_LEN.store(si.nr_pages, Ordering::Release);
    if let Some(pfn) = m2p(si.console_mfn) {
        CONSOLE.store(pfn << 12, Ordering::Relaxed);
        CONSOLE_PORT.store(si.console_evtchn, Ordering::Release);
    }
    if let Some(pfn) = m2p(si.store_mfn) {
        STORE.store(pfn << 12, Ordering::Relaxed);
        STORE_PORT.store(si.store_evtchn, Ordering::Release);
    }
}

/// The console ring's address and port, on PV.
pub fn console_ring() -> Option<(u64, u32)> {
    let a = CONSOLE.load(Ordering::Acquire);
    (is_pv() && a != 0).then(|| (a, CONSOLE_PORT.load(Ordering::Relaxed)))
}

/// The xenstore ring's address and port, on PV.
pub fn store_ring() -> Option<(u64, u32)> {
    let a = STORE.load(Ordering::Acquire);
    (is_pv() && a != 0).then(|| (a, STORE_PORT.load(Ordering::Relaxed)))
}

/// Clear CR0.TS (PV guests cannot): the precompiled `core` uses SSE.
pub fn fpu_taskswitch_off() {
    // SAFETY: fpu_taskswitch(0) only clears this vCPU's virtual CR0.TS.
    unsafe { hypercall(HYPERVISOR_FPU_TASKSWITCH, 0, 0, 0, 0, 0) };
}

/// Apply `reqs` (`mmu_update`).
///
/// # Safety
/// Every request must be one whose effect on the address space the caller accounts for.
pub unsafe fn mmu_update(reqs: &[MmuUpdate]) -> Result<(), i64> {
    // SAFETY: the caller vouches for the requests; Xen reads `reqs.len()` entries.
    match unsafe {
        hypercall(HYPERVISOR_MMU_UPDATE, reqs.as_ptr() as u64, reqs.len() as u64, 0, u64::from(DOMID_SELF), 0)
    } {
        0 => Ok(()),
        rc => Err(rc),
    }
}

/// Map virtual page `va` by entry `pte` (`update_va_mapping`, flushing that entry).
///
/// # Safety
/// Whatever `va` mapped before must no longer be used through `va`.
pub unsafe fn update_va_mapping(va: u64, pte: u64) -> Result<(), i64> {
    // SAFETY: the caller accounts for the old mapping; Xen validates the new entry.
    match unsafe { hypercall(HYPERVISOR_UPDATE_VA_MAPPING, va, pte, UVMF_INVLPG, 0, 0) } {
        0 => Ok(()),
        rc => Err(rc),
    }
}

/// Apply `ops` (`mmuext_op`).
///
/// # Safety
/// As for [`mmu_update`].
pub unsafe fn mmuext_op(ops: &[MmuextOp]) -> Result<(), i64> {
    // SAFETY: the caller vouches for the operations; Xen reads `ops.len()` entries.
    match unsafe { hypercall(HYPERVISOR_MMUEXT_OP, ops.as_ptr() as u64, ops.len() as u64, 0, u64::from(DOMID_SELF), 0) }
    {
        0 => Ok(()),
        rc => Err(rc),
    }
}

/// Install `table` as the trap table (null: none).
///
/// # Safety
/// Each entry's handler must be code that handles its vector as Xen delivers it (the PV
/// frame: %rcx and %r11 above the hardware-like frame); the table ends with address 0.
pub unsafe fn set_trap_table(table: *const TrapInfo) -> Result<(), i64> {
    // SAFETY: per the caller; Xen copies the table.
    match unsafe { hypercall(HYPERVISOR_SET_TRAP_TABLE, table as u64, 0, 0, 0, 0) } {
        0 => Ok(()),
        rc => Err(rc),
    }
}

/// A page-table frame.
#[repr(C, align(4096))]
pub struct Frame(pub [u64; 512]);

/// Frames for the first new tables, before any page past the builder's mapping can be
/// reached: the top 2 MiB chunk and the next may each need an L2 and an L1.
const BOOT_FRAMES: usize = 4;
/// Never read or written by Rust after [`extend_map`] took them: they become page tables
/// (mapped read-only). In .bss: zero, inside the image the builder mapped.
static mut BOOT_TABLES: [Frame; BOOT_FRAMES] = [const { Frame([0; 512]) }; BOOT_FRAMES];

/// What [`extend_map`] did.
#[derive(Clone, Copy, Debug, Default)]
pub struct PvMap {
    /// The builder's mapping ended here (pfn): everything below is its region.
    pub builder_end: u64,
    /// The builder's page-table frames (pfn, count): live, read-only.
    pub builder_pt: (u64, u64),
    /// Frames taken at the top of RAM for the new tables (pfn, count): live, read-only.
    pub pool: (u64, u64),
    /// The loader's .bss frames that became tables (first pfn, count).
    pub boot: (u64, u64),
    /// Virtual pages past RAM, left unmapped for Xen's pages (first VA, count).
    pub window: (u64, u64),
}

impl PvMap {
    /// Whether `pfn` is one of the loader's live page-table frames (which the next
    /// kernel's tables must map read-only).
    pub fn is_table(&self, pfn: u64) -> bool {
        let inside = |(a, n): (u64, u64)| pfn >= a && pfn < a + n;
        inside(self.builder_pt) || inside(self.pool) || inside(self.boot)
    }
}

/// Virtual address of the table an entry points at (through the machine-to-phys table;
/// the one-to-one map makes its pfn its address).
fn table_va(entry: u64) -> Option<u64> {
    if entry & PTE_PRESENT == 0 {
        return None;
    }
    m2p((entry & PTE_ADDR) >> 12).map(|pfn| pfn << 12)
}

fn read_entry(table_va: u64, i: u64) -> u64 {
    // SAFETY: `table_va` is a page-table frame mapped (read-only) in our one-to-one map
    // (the builder's, or one extend_map linked), and i < 512.
    unsafe { core::ptr::read_volatile((table_va as usize as *const u64).add(i as usize)) }
}

/// Map every frame of the domain one to one (virtual `pfn << 12`), plus `window` pages of
/// unmapped virtual space past RAM, with 4 KiB pages under the builder's L4 slot 0.
///
/// # Safety
/// Call once, early, with the builder's `start_info` ([`init`] done): the frames at the
/// top of RAM it takes must not be in use (nothing but the builder's region is).
pub unsafe fn extend_map(si: &PvStart, window: u64) -> Result<PvMap, XenError> {
    let fail = |what: &'static str| move |rc: i64| XenError::Hypercall(what, rc);
    let nr = si.nr_pages;
    let target = nr.checked_add(window).ok_or(XenError::Hypercall("sizing the map", -22))?;
    let chunks = target.div_ceil(512);
    if chunks > 512 * 512 {
        return Err(XenError::Hypercall("mapping more than 512 GiB", -22));
    }
    let l3 = table_va(read_entry(si.pt_base, 0)).ok_or(XenError::Hypercall("reading the builder's L4", -22))?;
    let l3_ma = read_entry(si.pt_base, 0) & PTE_ADDR;
    let l2_of = |g: u64| {
        let e = read_entry(l3, g);
        table_va(e).map(|va| (va, e & PTE_ADDR))
    };
    let chunk_mapped = |c: u64| l2_of(c / 512).is_some_and(|(l2, _)| read_entry(l2, c % 512) & PTE_PRESENT != 0);
    let builder_end = (0..chunks).find(|&c| !chunk_mapped(c)).unwrap_or(chunks) * 512;
    // Frames needed: one L1 per unmapped chunk, one L2 per GiB without one.
    let mut need = (0..chunks).filter(|&c| !chunk_mapped(c)).count() as u64;
    need += (0..chunks.div_ceil(512)).filter(|&g| l2_of(g).is_none()).count() as u64;
    let pool_n = need.saturating_sub(BOOT_FRAMES as u64);
    if nr < pool_n || nr - pool_n < builder_end.min(nr) + 512 {
        return Err(XenError::Hypercall("finding RAM for page tables", -12));
    }
    let pool_start = nr - pool_n;
    let boot_va = (&raw const BOOT_TABLES) as u64;
    let mut next_boot = 0u64;
    let mut next_pool = nr;
    let mut take = || -> Option<u64> {
        if next_boot < BOOT_FRAMES as u64 {
            next_boot += 1;
            Some(boot_va + (next_boot - 1) * 4096)
        } else if next_pool > pool_start {
            next_pool -= 1;
            Some(next_pool << 12)
        } else {
            None
        }
    };
    // Fill a frame while writable, map it read-only, link it at machine address `slot`.
    let install = |frame: u64, fill: &dyn Fn(&mut [u64; 512]), slot: u64| -> Result<(), XenError> {
        let mfn = mfn_of(frame >> 12).ok_or(XenError::Hypercall("finding a table's frame", -22))?;
        // SAFETY: `frame` is a free page of ours, mapped writable (a BOOT_TABLES entry, or
        // a pool page in a chunk mapped before it is taken), that nothing else references.
        fill(unsafe { &mut *(frame as usize as *mut [u64; 512]) });
        // SAFETY: the frame is ours and no longer written through this mapping.
        unsafe { update_va_mapping(frame, (mfn << 12) | L1_READ_ONLY) }.map_err(fail("mapping a table read-only"))?;
        let link = MmuUpdate { ptr: slot | MMU_NORMAL_PT_UPDATE, val: (mfn << 12) | UPPER };
        // SAFETY: the slot is an empty entry of one of our live tables; the new table maps
        // only frames of this domain (or nothing).
        unsafe { mmu_update(&[link]) }.map_err(fail("linking a page table"))
    };
    for c in (0..chunks).rev() {
        let g = c / 512;
        let (l2, l2_ma) = match l2_of(g) {
            Some(t) => t,
            None => {
                let f = take().ok_or(XenError::Hypercall("page-table frames", -12))?;
                install(f, &|t| t.fill(0), l3_ma + g * 8)?;
                l2_of(g).ok_or(XenError::Hypercall("reading back an L2", -22))?
            }
        };
        if read_entry(l2, c % 512) & PTE_PRESENT != 0 {
            continue;
        }
        let f = take().ok_or(XenError::Hypercall("page-table frames", -12))?;
        install(
            f,
            &|t| {
                for (k, e) in t.iter_mut().enumerate() {
                    let pfn = c * 512 + k as u64;
                    *e = match mfn_of(pfn) {
                        Some(m) if pfn < nr => (m << 12) | L1_DATA,
                        _ => 0,
                    };
                }
            },
            l2_ma + (c % 512) * 8,
        )?;
    }
    let builder_pt = (si.pt_base >> 12, si.nr_pt_frames);
    Ok(PvMap {
        builder_end,
        builder_pt,
        pool: (pool_start, pool_n),
        boot: (boot_va >> 12, next_boot),
        window: (nr << 12, window),
    })
}

/// Map Xen's page at machine frame `mfn` (shared_info, a grant frame) at `va`, a page of
/// [`PvMap::window`].
///
/// # Safety
/// `va` must be an unused window page and `mfn` a frame Xen lets this domain map.
pub unsafe fn map_xen_page(va: u64, mfn: u64) -> Result<(), i64> {
    // SAFETY: per the caller.
    unsafe { update_va_mapping(va, (mfn << 12) | L1_DATA | PTE_DIRTY) }
}

/// Ask Xen for `n` grant-table frames; their mfns go to `frames`.
pub fn grant_frames(frames: &mut [u64]) -> Result<(), XenError> {
    let mut s = GnttabSetupTable {
        dom: DOMID_SELF,
        _pad0: 0,
        nr_frames: frames.len() as u32,
        status: 0,
        _pad1: [0; 6],
        frame_list: frames.as_mut_ptr() as u64,
    };
    // SAFETY: GNTTABOP_setup_table (grant_table.h) writes `nr_frames` mfns to
    // `frame_list`, which has that many slots, and changes nothing else of ours.
    let rc =
        unsafe { hypercall(HYPERVISOR_GRANT_TABLE_OP, u64::from(GNTTABOP_SETUP_TABLE), &raw mut s as u64, 1, 0, 0) };
    match (rc, s.status) {
        (0, 0) => Ok(()),
        (0, st) => Err(XenError::Hypercall("GNTTABOP_setup_table", i64::from(st))),
        (rc, _) => Err(XenError::Hypercall("GNTTABOP_setup_table", rc)),
    }
}
