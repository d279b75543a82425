// SPDX-License-Identifier: MIT OR Apache-2.0
//! Xen PV kernels (x86_64): an ELF64 with Xen's PV notes (xen/include/public/elfnote.h),
//! or a bzImage whose payload (`payload_offset`/`payload_length`, boot protocol >= 2.08)
//! decompresses to one, as Xen's domain builder reads them
//! (tools/libs/guest/xg_dom_bzimageloader.c, xg_dom_elfloader.c).
//!
//! Addresses follow Xen's libelf (xen/common/libelf/libelf-dominfo.c): VIRT_BASE defaults
//! to 0 and PADDR_OFFSET to VIRT_BASE; a segment at physical address `p_paddr` lives at
//! virtual `p_paddr + VIRT_BASE - PADDR_OFFSET`, in pseudo-physical frame
//! `(virtual - VIRT_BASE) >> 12`. Every check here is on untrusted bytes: errors, never
//! panics.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::bzimage::{self, BzImage};
use super::decompress::{self, MAX_OUTPUT};
use super::elf::{self, ELF_MAGIC, PT_LOAD};
use super::le::{u32_at, u64_at};
use super::{ElfPart, KernelError};

const XEN_ELFNOTE_ENTRY: u32 = 1;
const XEN_ELFNOTE_HYPERCALL_PAGE: u32 = 2;
const XEN_ELFNOTE_VIRT_BASE: u32 = 3;
const XEN_ELFNOTE_PADDR_OFFSET: u32 = 4;
const XEN_ELFNOTE_XEN_VERSION: u32 = 5;
const XEN_ELFNOTE_GUEST_OS: u32 = 6;
const XEN_ELFNOTE_LOADER: u32 = 8;
const XEN_ELFNOTE_FEATURES: u32 = 10;
const XEN_ELFNOTE_INIT_P2M: u32 = 15;
const XEN_ELFNOTE_MOD_START_PFN: u32 = 16;
/// The largest kernel image (virt_kend - VIRT_BASE) accepted: one L2 page table's worth,
/// which is what Linux's early PV code copies of the initial mapping.
pub const MAX_IMAGE: u64 = 1 << 30;
const PAGE: u64 = 4096;

/// Why a PV kernel was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvProblem {
    /// An ELF32: 32-bit PV guests.
    Elf32,
    /// No Xen notes at all.
    NoNotes,
    /// XEN_VERSION is not "xen-3.0".
    XenVersion,
    /// Neither LOADER "generic" nor GUEST_OS "linux" (libelf's rule).
    NotGeneric,
    /// A numeric note whose descriptor is not 4 or 8 bytes.
    BadNote(u32),
    /// The address arithmetic overflows, or the layout is inconsistent.
    Layout(&'static str),
    /// The image spans more than [`MAX_IMAGE`].
    TooLarge(u64),
    /// A bzImage with no payload (protocol < 2.08), or one of an unknown format.
    NoPayload,
    /// The decompressed payload is not an ELF.
    PayloadNotElf,
}

impl fmt::Display for PvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PvProblem::Elf32 => f.write_str("32-bit PV kernels are not supported (ELF32)"),
            PvProblem::NoNotes => f.write_str("no Xen PV notes (not a PV kernel)"),
            PvProblem::XenVersion => f.write_str("XEN_VERSION note is not \"xen-3.0\""),
            PvProblem::NotGeneric => {
                f.write_str("neither LOADER \"generic\" nor GUEST_OS \"linux\" (Xen loads no other PV image)")
            }
            PvProblem::BadNote(t) => write!(f, "Xen note {t}: descriptor is not 4 or 8 bytes"),
            PvProblem::Layout(what) => write!(f, "bad layout: {what}"),
            PvProblem::TooLarge(n) => write!(f, "the image spans {n:#x} bytes, more than 1 GiB"),
            PvProblem::NoPayload => f.write_str(
                "bzImage without a known compressed payload (boot protocol 2.08+ and a known format needed)",
            ),
            PvProblem::PayloadNotElf => f.write_str("the bzImage payload does not decompress to an ELF"),
        }
    }
}

/// One `PT_LOAD`: `filesz` bytes from `offset` to virtual `vaddr`, zero up to `memsz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvSegment {
    pub vaddr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
}

/// A validated x86_64 PV kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvElf {
    pub virt_base: u64,
    /// Lowest virtual address of the image (page aligned down).
    pub virt_kstart: u64,
    /// End of the image (page aligned up).
    pub virt_kend: u64,
    pub entry: u64,
    /// XEN_ELFNOTE_HYPERCALL_PAGE: a page of the image the loader fills with stubs.
    pub hypercall_page: Option<u64>,
    /// XEN_ELFNOTE_INIT_P2M (unused: the p2m goes inside the mapping, which every PV
    /// kernel accepts).
    pub init_p2m: Option<u64>,
    /// XEN_ELFNOTE_MOD_START_PFN: the kernel takes the initrd by pfn.
    pub mod_start_pfn: bool,
    pub guest_os: String,
    pub loader: String,
    pub features: String,
    pub segments: Vec<PvSegment>,
}

impl PvElf {
    /// Pseudo-physical frame of virtual address `va` of the kernel.
    pub fn pfn(&self, va: u64) -> u64 {
        (va - self.virt_base) / PAGE
    }
}

fn text(desc: &[u8]) -> String {
    let d = desc.split(|&b| b == 0).next().unwrap_or(&[]);
    String::from_utf8_lossy(d).into()
}

/// Parse a PV kernel ELF.
pub fn parse_pv(image: &[u8]) -> Result<PvElf, KernelError> {
    let bad = |p| KernelError::Pv(p);
    let h = elf::header(image)?;
    if !h.elf64 {
        return Err(bad(PvProblem::Elf32));
    }
    let mut n_notes = 0;
    let (mut entry, mut hcall, mut vbase, mut poff, mut p2m, mut modpfn) = (None, None, None, None, None, false);
    let (mut version, mut guest_os, mut loader, mut features) = (None, String::new(), String::new(), String::new());
    elf::for_each_xen_note(image, &h, &mut |kind, desc| {
        n_notes += 1;
        let num = || match desc.len() {
            4 => u32_at(desc, 0).map(u64::from).ok_or(bad(PvProblem::BadNote(kind))),
            8 => u64_at(desc, 0).ok_or(bad(PvProblem::BadNote(kind))),
            _ => Err(bad(PvProblem::BadNote(kind))),
        };
        match kind {
            XEN_ELFNOTE_ENTRY => entry = Some(num()?),
            XEN_ELFNOTE_HYPERCALL_PAGE => hcall = Some(num()?),
            XEN_ELFNOTE_VIRT_BASE => vbase = Some(num()?),
            XEN_ELFNOTE_PADDR_OFFSET => poff = Some(num()?),
            XEN_ELFNOTE_INIT_P2M => p2m = Some(num()?),
            XEN_ELFNOTE_MOD_START_PFN => modpfn = num()? != 0,
            XEN_ELFNOTE_XEN_VERSION => version = Some(text(desc)),
            XEN_ELFNOTE_GUEST_OS => guest_os = text(desc),
            XEN_ELFNOTE_LOADER => loader = text(desc),
            XEN_ELFNOTE_FEATURES => features = text(desc),
            _ => {}
        }
        Ok(())
    })?;
    if n_notes == 0 {
        return Err(bad(PvProblem::NoNotes));
    }
    if version.as_deref() != Some("xen-3.0") {
        return Err(bad(PvProblem::XenVersion));
    }
    if !loader.starts_with("generic") && !guest_os.starts_with("linux") {
        return Err(bad(PvProblem::NotGeneric));
    }
    let virt_base = vbase.unwrap_or(0);
    let paddr_offset = poff.unwrap_or(virt_base);
    let virt_offset = virt_base.wrapping_sub(paddr_offset);

    let mut segments: Vec<PvSegment> = Vec::new();
    for i in 0..h.phnum {
        let p = elf::phdr(image, &h, i).ok_or(KernelError::ElfTruncated(ElfPart::ProgramHeaders))?;
        if p.kind != PT_LOAD || p.memsz == 0 {
            continue;
        }
        if segments.len() == elf::MAX_SEGMENTS {
            return Err(KernelError::ElfTooManySegments);
        }
        let seg = |problem| KernelError::ElfBadSegment { index: i, problem };
        if p.filesz > p.memsz {
            return Err(seg(super::SegmentProblem::FileszOverMemsz));
        }
        if super::le::slice(image, p.offset, p.filesz).is_none() {
            return Err(seg(super::SegmentProblem::PastEndOfFile));
        }
        let vaddr = p.paddr.wrapping_add(virt_offset);
        let end = vaddr.checked_add(p.memsz).ok_or(bad(PvProblem::Layout("a segment's end overflows")))?;
        if vaddr < virt_base {
            return Err(bad(PvProblem::Layout("a segment lies below VIRT_BASE")));
        }
        if segments.iter().any(|s| vaddr < s.vaddr + s.memsz && s.vaddr < end) {
            return Err(seg(super::SegmentProblem::Overlaps));
        }
        segments.push(PvSegment { vaddr, offset: p.offset, filesz: p.filesz, memsz: p.memsz });
    }
    if segments.is_empty() {
        return Err(KernelError::ElfNoLoadSegments);
    }
    segments.sort_by_key(|s| s.vaddr);
    let virt_kstart = segments[0].vaddr & !(PAGE - 1);
    let last = segments.iter().map(|s| s.vaddr + s.memsz).max().unwrap_or(0);
    let virt_kend = last.checked_next_multiple_of(PAGE).ok_or(bad(PvProblem::Layout("the image end overflows")))?;
    let span = virt_kend - virt_base;
    if span > MAX_IMAGE {
        return Err(bad(PvProblem::TooLarge(span)));
    }
    let entry = match entry {
        Some(e) => e,
        None => u64_at(image, 24).ok_or(KernelError::ElfTruncated(ElfPart::Header))?,
    };
    if entry < virt_kstart || entry >= virt_kend {
        return Err(bad(PvProblem::Layout("the entry point is outside the image")));
    }
    if let Some(hp) = hcall
        && (hp < virt_kstart || hp + PAGE > virt_kend || hp % PAGE != 0)
    {
        return Err(bad(PvProblem::Layout("the hypercall page is not a page of the image")));
    }
    Ok(PvElf {
        virt_base,
        virt_kstart,
        virt_kend,
        entry,
        hypercall_page: hcall,
        init_p2m: p2m,
        mod_start_pfn: modpfn,
        guest_os,
        loader,
        features,
        segments,
    })
}

/// The buffer a bzImage's payload needs: its size trailer (the last 4 bytes, which Linux
/// appends for every format), else `init_size`; at most [`MAX_OUTPUT`] (XSA-25's cap).
pub fn pv_output_size(bz: &BzImage) -> usize {
    let n = bz.payload_uncompressed_size().map(|n| n as usize).unwrap_or(bz.init_size() as usize);
    n.min(MAX_OUTPUT)
}

/// The PV kernel ELF in `file`: the file itself when it is an ELF, else a bzImage's
/// payload decompressed into `out` (sized by [`pv_output_size`]; the cap).
pub fn pv_kernel_image<'b>(file: &'b [u8], out: &'b mut [u8]) -> Result<&'b [u8], KernelError> {
    if file.starts_with(ELF_MAGIC) {
        return Ok(file);
    }
    payload_image(&bzimage::parse(file)?, out, &mut || false).map(|n| &out[..n])
}

/// The ELF in an already parsed bzImage's payload, decompressed into `out` (sized by
/// [`pv_output_size`]); its length. The decoder calls `poll` now and then
/// ([`decompress::decompress_into_polled`]).
pub fn payload_image(bz: &BzImage, out: &mut [u8], poll: &mut dyn FnMut() -> bool) -> Result<usize, KernelError> {
    let p = bz.payload().ok_or(KernelError::Pv(PvProblem::NoPayload))?;
    let f = decompress::detect(p).ok_or(KernelError::Pv(PvProblem::NoPayload))?;
    let n = decompress::decompress_into_polled(f, p, out, poll).map_err(KernelError::PvPayload)?;
    if !out[..n].starts_with(ELF_MAGIC) {
        return Err(KernelError::Pv(PvProblem::PayloadNotElf));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn note(kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        n.extend_from_slice(&kind.to_le_bytes());
        n.extend_from_slice(b"Xen\0");
        n.extend_from_slice(desc);
        while n.len() % 4 != 0 {
            n.push(0);
        }
        n
    }

    /// A Linux-like PV ELF: one PT_LOAD at paddr 16 MiB, VIRT_BASE -2 GiB.
    pub fn linux_like(memsz: u64, notes: &[Vec<u8>]) -> Vec<u8> {
        let notes: Vec<u8> = notes.concat();
        let phoff = 64u64;
        let notes_off = phoff + 2 * 56;
        let data_off = (notes_off + notes.len() as u64).next_multiple_of(16);
        let mut b = vec![0u8; data_off as usize + 0x2000];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18] = 62;
        b[24..32].copy_from_slice(&0xffff_ffff_8100_0000u64.to_le_bytes());
        b[32..40].copy_from_slice(&phoff.to_le_bytes());
        b[54] = 56;
        b[56] = 2;
        let ph = |b: &mut Vec<u8>, at: usize, kind: u32, off: u64, paddr: u64, filesz: u64, memsz: u64| {
            b[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            b[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            b[at + 24..at + 32].copy_from_slice(&paddr.to_le_bytes());
            b[at + 32..at + 40].copy_from_slice(&filesz.to_le_bytes());
            b[at + 40..at + 48].copy_from_slice(&memsz.to_le_bytes());
        };
        ph(&mut b, 64, 1, data_off, 0x100_0000, 0x2000, memsz);
        ph(&mut b, 120, 4, notes_off, 0, notes.len() as u64, notes.len() as u64);
        b[notes_off as usize..notes_off as usize + notes.len()].copy_from_slice(&notes);
        b
    }

    pub fn linux_notes() -> Vec<Vec<u8>> {
        vec![
            note(6, b"linux\0"),
            note(5, b"xen-3.0\0"),
            note(3, &0xffff_ffff_8000_0000u64.to_le_bytes()),
            note(4, &0u64.to_le_bytes()),
            note(1, &0xffff_ffff_8100_0000u64.to_le_bytes()),
            note(2, &0xffff_ffff_8100_1000u64.to_le_bytes()),
        ]
    }

    #[test]
    fn linux_like_kernel() {
        let img = linux_like(0x40_0000, &linux_notes());
        let k = parse_pv(&img).unwrap();
        assert_eq!(k.virt_base, 0xffff_ffff_8000_0000);
        assert_eq!(k.virt_kstart, 0xffff_ffff_8100_0000);
        assert_eq!(k.virt_kend, 0xffff_ffff_8140_0000);
        assert_eq!(k.pfn(k.virt_kstart), 0x1000);
        assert_eq!(k.entry, 0xffff_ffff_8100_0000);
        assert_eq!(k.hypercall_page, Some(0xffff_ffff_8100_1000));
        assert_eq!(k.guest_os, "linux");
        assert_eq!(k.segments.len(), 1);
    }

    #[test]
    fn refusals_name_the_cause() {
        let mut n = linux_notes();
        n[1] = note(5, b"xen-2.0\0");
        assert_eq!(parse_pv(&linux_like(0x2000, &n)), Err(KernelError::Pv(PvProblem::XenVersion)));
        let mut n = linux_notes();
        n[0] = note(6, b"plan9\0");
        assert_eq!(parse_pv(&linux_like(0x2000, &n)), Err(KernelError::Pv(PvProblem::NotGeneric)));
        let mut n = linux_notes();
        n[4] = note(1, &0x1000u64.to_le_bytes());
        assert!(parse_pv(&linux_like(0x2000, &n)).unwrap_err().to_string().contains("entry point is outside"));
        assert_eq!(parse_pv(&linux_like(0x2000, &[])), Err(KernelError::Pv(PvProblem::NoNotes)));
        assert!(matches!(
            parse_pv(&linux_like(0x4100_0000, &linux_notes())),
            Err(KernelError::Pv(PvProblem::TooLarge(_)))
        ));
        let mut n = linux_notes();
        n[5] = note(2, &[1, 2, 3]);
        assert_eq!(parse_pv(&linux_like(0x2000, &n)), Err(KernelError::Pv(PvProblem::BadNote(2))));
    }

    /// Debian's own kernel, when the test suite fetched it (scripts/fetch-kernel).
    #[test]
    fn debian_kernel() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../.cache/kernel/vmlinuz");
        let Ok(file) = std::fs::read(path) else {
            std::println!("skipped: no {path} (scripts/fetch-kernel)");
            return;
        };
        let bz = bzimage::parse(&file).unwrap();
        let mut out = vec![0u8; pv_output_size(&bz)];
        let img = pv_kernel_image(&file, &mut out).unwrap();
        let k = parse_pv(img).unwrap();
        assert_eq!(k.virt_base, 0xffff_ffff_8000_0000);
        // Linux dropped its hypercall page with XSA-466 (6.1.119 in Debian's 6.1): the
        // note may be there or not; when it is, it is a page of the image (checked).
        std::println!("{k:x?}");
        assert_eq!(k.guest_os, "linux");
        assert!(k.entry >= k.virt_kstart && k.entry < k.virt_kend);
        assert_eq!(k.pfn(k.virt_kstart), 0x1000, "Linux loads at 16 MiB");
    }

    proptest::proptest! {
        #[test]
        fn mutated_never_panics(muts in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..16)) {
            let mut img = linux_like(0x4000, &linux_notes());
            for (at, v) in muts {
                if at < img.len() { img[at] = v; }
            }
            let _ = parse_pv(&img).map_err(|e| alloc::string::ToString::to_string(&e));
            let mut out = vec![0u8; 4096];
            let _ = pv_kernel_image(&img, &mut out);
        }
    }
}
