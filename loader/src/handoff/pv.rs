// SPDX-License-Identifier: MIT OR Apache-2.0
//! A PV kernel's start of day (xen/include/public/xen.h, the comment before `struct
//! start_info`), built the way Xen's domain builder lays it out
//! (tools/libs/guest/xg_dom_x86.c: alloc_pgtables_pv, count_pgtables, setup_pgtables_pv,
//! start_info_x86_64): one virtual region from VIRT_BASE holding, in order, the kernel,
//! the initrd, the p2m list, start_info, the page tables and a boot stack, then at least
//! 512 KiB of padding, ending on a 4 MiB boundary; virtual `VIRT_BASE + pfn << 12` maps
//! pseudo-physical frame `pfn` from frame 0 on.
//!
//! Pure: everything is in frame numbers, with the domain's p2m list as a slice. The
//! loader's own live page-table frames are mapped read-only (Xen refuses a table that maps
//! a page-table frame writable), and so are the new tables. One more page, the loader's
//! trampoline, is mapped at its own address, so the code that switches tables survives
//! the switch.

use alloc::vec;
use alloc::vec::Vec;

use super::HandoffError;
use crate::kernel::pv::PvElf;

const PAGE: u64 = 4096;
/// An ordinary page, as the builder maps it: present, writable, accessed.
const L1_RW: u64 = 0x23;
/// A page-table frame: present, accessed, read-only.
const L1_RO: u64 = 0x21;
/// L2..L4 entries: present, writable, accessed, dirty, user (xg_dom_x86.c).
const UPPER: u64 = 0x67;
/// The padding after the boot stack (xg_dom_x86.c alloc_pgtables_pv).
const PADDING: u64 = 512 * 1024 / PAGE;
/// `MAX_GUEST_CMDLINE` (xen.h).
const CMDLINE_MAX: usize = 1024;

/// What the layout depends on.
#[derive(Clone, Copy, Debug)]
pub struct PvLayoutInput<'a> {
    pub elf: &'a PvElf,
    pub initrd_len: u64,
    pub nr_pages: u64,
    pub cmdline: &'a str,
    /// A loader page mapped at virtual `pfn << 12` in the new tables too.
    pub trampoline_pfn: u64,
}

/// Where everything goes (frame numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvLayout {
    pub virt_base: u64,
    pub kernel_pfn: u64,
    pub initrd: Option<(u64, u64)>,
    pub p2m_pfn: u64,
    pub p2m_pages: u64,
    pub start_info_pfn: u64,
    pub pt_pfn: u64,
    pub pt_frames: u64,
    pub stack_pfn: u64,
    /// First frame past the mapping.
    pub end_pfn: u64,
    /// Whether the trampoline needs tables of its own (it lies outside the mapping).
    pub trampoline_tables: bool,
}

impl PvLayout {
    /// The kernel's virtual address of frame `pfn`.
    pub fn va(&self, pfn: u64) -> u64 {
        self.virt_base.wrapping_add(pfn * PAGE)
    }
}

/// Page-table shifts of levels 1..3 (the span one entry of an L2, L3, L4 covers is
/// 1 << SHIFT[l]): an L1 maps 2 MiB, an L2 1 GiB, an L3 512 GiB.
const SPAN: [u32; 3] = [21, 30, 39];

/// The tables at each level (L1, L2, L3) that map `[from, to)`, as ranges of
/// `va >> SPAN[l]` keys.
fn keys(from: u64, to: u64) -> [(u64, u64); 3] {
    SPAN.map(|s| (from >> s, ((to - 1) >> s) + 1))
}

/// Tables for `[from, to)` plus the trampoline page at `t` (1 L4 + L3s + L2s + L1s).
fn count_tables(from: u64, to: u64, t: u64) -> (u64, bool) {
    let k = keys(from, to);
    let mut n = 1;
    let outside = t < from || t >= to;
    for (l, &(a, b)) in k.iter().enumerate() {
        n += b - a;
        let tk = t >> SPAN[l];
        if outside && (tk < a || tk >= b) {
            n += 1;
        }
    }
    (n, outside)
}

/// Lay out the start of day.
pub fn layout(input: &PvLayoutInput) -> Result<PvLayout, HandoffError> {
    let elf = input.elf;
    if input.cmdline.len() >= CMDLINE_MAX {
        return Err(HandoffError::PvCmdlineTooLong { len: input.cmdline.len() });
    }
    let kernel_pfn = elf.pfn(elf.virt_kstart);
    let mut next = elf.pfn(elf.virt_kend);
    let initrd = match input.initrd_len {
        0 => None,
        len => {
            let at = next;
            next += len.div_ceil(PAGE);
            Some((at, len))
        }
    };
    let p2m_pfn = next;
    let p2m_pages = (input.nr_pages * 8).div_ceil(PAGE);
    next += p2m_pages;
    let start_info_pfn = next;
    next += 1;
    let pt_pfn = next;
    let alloc_end = elf.virt_base.wrapping_add(next * PAGE);
    let t = input.trampoline_pfn * PAGE;
    // As alloc_pgtables_pv: grow the region until its tables, the stack and the padding fit.
    let extra = 1 + PADDING;
    let mut pages = extra;
    let (end, frames, outside) = loop {
        let want = alloc_end
            .checked_add(pages * PAGE)
            .ok_or(HandoffError::PvTooSmall { need_pages: u64::MAX >> 12, have_pages: input.nr_pages })?;
        let end = want.next_multiple_of(4 << 20);
        let (frames, outside) = count_tables(elf.virt_base, end, t);
        pages = frames + extra;
        if alloc_end + pages * PAGE <= end {
            break (end, frames, outside);
        }
    };
    if !outside && elf.virt_base != 0 {
        return Err(HandoffError::PvTrampolineClash { va: t });
    }
    let end_pfn = (end - elf.virt_base) / PAGE;
    if end_pfn > input.nr_pages || (outside && input.trampoline_pfn >= input.nr_pages) {
        return Err(HandoffError::PvTooSmall { need_pages: end_pfn, have_pages: input.nr_pages });
    }
    Ok(PvLayout {
        virt_base: elf.virt_base,
        kernel_pfn,
        initrd,
        p2m_pfn,
        p2m_pages,
        start_info_pfn,
        pt_pfn,
        pt_frames: frames,
        stack_pfn: pt_pfn + frames,
        end_pfn,
        trampoline_tables: outside,
    })
}

/// The new page tables: `pt_frames` pages, L4 first, then the L3s, L2s and L1s (the
/// builder's order, whose ends Linux frees). `p2m[pfn]` is frame `pfn`'s mfn;
/// `read_only(pfn)` names the loader's live page-table frames.
pub fn page_tables(
    input: &PvLayoutInput,
    l: &PvLayout,
    p2m: &[u64],
    read_only: &dyn Fn(u64) -> bool,
) -> Result<Vec<u8>, HandoffError> {
    let too_small = || HandoffError::PvTooSmall { need_pages: l.end_pfn, have_pages: p2m.len() as u64 };
    let mfn = |pfn: u64| p2m.get(pfn as usize).copied().filter(|&m| m != u64::MAX).ok_or_else(too_small);
    let from = l.virt_base;
    let to = l.va(l.end_pfn);
    let t = input.trampoline_pfn * PAGE;
    let k = keys(from, to);
    // Frame index of each table: [L4] [L3s..] [tramp L3] [L2s..] [tramp L2] [L1s..] [tramp L1].
    let mut next = 1u64;
    let mut base = [0u64; 3];
    let mut tramp = [None::<u64>; 3];
    for lvl in (0..3).rev() {
        base[lvl] = next;
        next += k[lvl].1 - k[lvl].0;
        let tk = t >> SPAN[lvl];
        if l.trampoline_tables && (tk < k[lvl].0 || tk >= k[lvl].1) {
            tramp[lvl] = Some(next);
            next += 1;
        }
    }
    debug_assert_eq!(next, l.pt_frames);
    // Which frame holds the level-`lvl` table for virtual address `va`.
    let table_of = |lvl: usize, va: u64| -> u64 {
        let key = va >> SPAN[lvl];
        if key >= k[lvl].0 && key < k[lvl].1 { base[lvl] + key - k[lvl].0 } else { tramp[lvl].unwrap_or(0) }
    };
    let mut out = vec![0u8; (l.pt_frames * PAGE) as usize];
    let mut put = |frame: u64, index: u64, val: u64| {
        let at = (frame * PAGE + index * 8) as usize;
        out[at..at + 8].copy_from_slice(&val.to_le_bytes());
    };
    let is_table = |pfn: u64| pfn >= l.pt_pfn && pfn < l.pt_pfn + l.pt_frames;
    let mut map = |va: u64, pfn: u64, flags: u64| -> Result<(), HandoffError> {
        let (l3, l2, l1) = (table_of(2, va), table_of(1, va), table_of(0, va));
        put(0, (va >> 39) & 511, (mfn(l.pt_pfn + l3)? << 12) | UPPER);
        put(l3, (va >> 30) & 511, (mfn(l.pt_pfn + l2)? << 12) | UPPER);
        put(l2, (va >> 21) & 511, (mfn(l.pt_pfn + l1)? << 12) | UPPER);
        put(l1, (va >> 12) & 511, (mfn(pfn)? << 12) | flags);
        Ok(())
    };
    for pfn in 0..l.end_pfn {
        let flags = if is_table(pfn) || read_only(pfn) { L1_RO } else { L1_RW };
        map(l.va(pfn), pfn, flags)?;
    }
    if l.trampoline_tables {
        map(t, input.trampoline_pfn, L1_RW)?;
    }
    Ok(out)
}

/// What start_info says beyond the layout.
#[derive(Clone, Copy, Debug)]
pub struct PvStartInfo<'a> {
    pub nr_pages: u64,
    pub shared_info: u64,
    pub flags: u32,
    pub store_mfn: u64,
    pub store_evtchn: u32,
    pub console_mfn: u64,
    pub console_evtchn: u32,
    pub cmdline: &'a str,
}

/// The start_info page (xen.h `struct start_info`, x86_64 offsets).
pub fn start_info(l: &PvLayout, s: &PvStartInfo) -> Vec<u8> {
    let mut p = vec![0u8; PAGE as usize];
    let put64 = |p: &mut Vec<u8>, at: usize, v: u64| p[at..at + 8].copy_from_slice(&v.to_le_bytes());
    p[..14].copy_from_slice(b"xen-3.0-x86_64");
    put64(&mut p, 32, s.nr_pages);
    put64(&mut p, 40, s.shared_info);
    p[48..52].copy_from_slice(&s.flags.to_le_bytes());
    put64(&mut p, 56, s.store_mfn);
    p[64..68].copy_from_slice(&s.store_evtchn.to_le_bytes());
    put64(&mut p, 72, s.console_mfn);
    p[80..84].copy_from_slice(&s.console_evtchn.to_le_bytes());
    put64(&mut p, 88, l.va(l.pt_pfn));
    put64(&mut p, 96, l.pt_frames);
    put64(&mut p, 104, l.va(l.p2m_pfn));
    if let Some((pfn, len)) = l.initrd {
        put64(&mut p, 112, l.va(pfn));
        put64(&mut p, 120, len);
    }
    let c = s.cmdline.as_bytes();
    let n = c.len().min(CMDLINE_MAX - 1);
    p[128..128 + n].copy_from_slice(&c[..n]);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::pv::PvSegment;
    use alloc::string::String;

    const MFN_BASE: u64 = 0x10_0000;

    fn linux(kend_mib: u64) -> PvElf {
        PvElf {
            virt_base: 0xffff_ffff_8000_0000,
            virt_kstart: 0xffff_ffff_8100_0000,
            virt_kend: 0xffff_ffff_8000_0000 + (kend_mib << 20),
            entry: 0xffff_ffff_8100_0000,
            hypercall_page: None,
            init_p2m: None,
            mod_start_pfn: true,
            guest_os: String::from("linux"),
            loader: String::new(),
            features: String::new(),
            segments: alloc::vec![PvSegment { vaddr: 0xffff_ffff_8100_0000, offset: 0, filesz: 0, memsz: 0x1000 }],
        }
    }

    /// Walk the 4 levels for `va` through `tables` (frame pt_pfn + i at byte i * 4096).
    fn walk(l: &PvLayout, tables: &[u8], va: u64) -> Option<(u64, u64)> {
        let entry = |frame: u64, idx: u64| {
            let at = (frame * PAGE + idx * 8) as usize;
            u64::from_le_bytes(tables[at..at + 8].try_into().unwrap())
        };
        let frame_of = |e: u64| ((e & 0x000f_ffff_ffff_f000) >> 12) - MFN_BASE - l.pt_pfn;
        let mut frame = 0;
        for shift in [39, 30, 21] {
            let e = entry(frame, (va >> shift) & 511);
            if e & 1 == 0 {
                return None;
            }
            assert_eq!(e & 0xfff, UPPER);
            frame = frame_of(e);
        }
        let e = entry(frame, (va >> 12) & 511);
        (e & 1 != 0).then(|| (((e & 0x000f_ffff_ffff_f000) >> 12) - MFN_BASE, e & 0xfff))
    }

    #[test]
    fn linux_in_256_mib() {
        let elf = linux(64);
        let nr = 65536;
        let p2m: Vec<u64> = (0..nr).map(|p| p + MFN_BASE).collect();
        let input = PvLayoutInput {
            elf: &elf,
            initrd_len: 20 << 20,
            nr_pages: nr,
            cmdline: "console=hvc0",
            trampoline_pfn: 0x180,
        };
        let l = layout(&input).unwrap();
        assert_eq!(l.kernel_pfn, 0x1000);
        assert_eq!(l.initrd, Some((0x4000, 20 << 20)));
        assert_eq!(l.p2m_pfn, 0x4000 + 0x1400);
        assert_eq!(l.p2m_pages, 128);
        assert_eq!(l.start_info_pfn, l.p2m_pfn + 128);
        assert_eq!(l.pt_pfn, l.start_info_pfn + 1);
        assert_eq!(l.stack_pfn, l.pt_pfn + l.pt_frames);
        assert_eq!(l.va(l.end_pfn) % (4 << 20), 0);
        assert!(l.end_pfn - l.stack_pfn > PADDING, "padding after the stack");
        assert!(l.trampoline_tables);
        // 1 L4, 1 L3, 1 L2, end/2MiB L1s, plus L3+L2+L1 for the trampoline.
        assert_eq!(l.pt_frames, 1 + 1 + 1 + (l.end_pfn * PAGE).div_ceil(2 << 20) + 3);
        let ro = |pfn: u64| pfn == 0x190;
        let t = page_tables(&input, &l, &p2m, &ro).unwrap();
        for pfn in 0..l.end_pfn {
            let (got, flags) = walk(&l, &t, l.va(pfn)).unwrap();
            assert_eq!(got, pfn);
            let table = pfn >= l.pt_pfn && pfn < l.pt_pfn + l.pt_frames;
            assert_eq!(flags, if table || pfn == 0x190 { L1_RO } else { L1_RW }, "pfn {pfn:#x}");
        }
        assert_eq!(walk(&l, &t, l.va(l.end_pfn)), None);
        assert_eq!(walk(&l, &t, 0x180 * PAGE), Some((0x180, L1_RW)));
        assert_eq!(walk(&l, &t, 0x181 * PAGE), None);
        let si = start_info(
            &l,
            &PvStartInfo {
                nr_pages: nr,
                shared_info: 0x1234_5000,
                flags: 0,
                store_mfn: 7,
                store_evtchn: 1,
                console_mfn: 8,
                console_evtchn: 2,
                cmdline: "console=hvc0",
            },
        );
        assert_eq!(&si[..15], b"xen-3.0-x86_64\0");
        assert_eq!(u64::from_le_bytes(si[88..96].try_into().unwrap()), l.va(l.pt_pfn));
        assert_eq!(u64::from_le_bytes(si[104..112].try_into().unwrap()), l.va(l.p2m_pfn));
        assert_eq!(u64::from_le_bytes(si[112..120].try_into().unwrap()), l.va(0x4000));
        assert_eq!(&si[128..141], b"console=hvc0\0");
    }

    #[test]
    fn virt_base_zero_shares_the_tables() {
        let mut elf = linux(0);
        elf.virt_base = 0;
        elf.virt_kstart = 0x20_0000;
        elf.virt_kend = 0x40_0000;
        let input = PvLayoutInput { elf: &elf, initrd_len: 0, nr_pages: 8192, cmdline: "", trampoline_pfn: 0x180 };
        let l = layout(&input).unwrap();
        assert!(!l.trampoline_tables);
        assert_eq!(l.pt_frames, 3 + l.va(l.end_pfn).div_ceil(2 << 20));
    }

    #[test]
    fn too_small_and_too_long() {
        let elf = linux(64);
        let input = PvLayoutInput { elf: &elf, initrd_len: 0, nr_pages: 8192, cmdline: "", trampoline_pfn: 0x180 };
        assert!(matches!(layout(&input), Err(HandoffError::PvTooSmall { .. })));
        let long = "x".repeat(1024);
        let input = PvLayoutInput { elf: &elf, initrd_len: 0, nr_pages: 65536, cmdline: &long, trampoline_pfn: 0x180 };
        assert_eq!(layout(&input), Err(HandoffError::PvCmdlineTooLong { len: 1024 }));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(kend in 17u64..900, initrd in 0u64..(1 << 30), nr in 0u64..(1 << 20), tp in 0u64..(1 << 20)) {
            let elf = linux(kend);
            let input = PvLayoutInput { elf: &elf, initrd_len: initrd, nr_pages: nr, cmdline: "", trampoline_pfn: tp };
            if let Ok(l) = layout(&input) {
                let p2m: Vec<u64> = (0..nr.min(1 << 16)).map(|p| p + MFN_BASE).collect();
                let _ = page_tables(&input, &l, &p2m, &|_| false);
            }
        }
    }
}
