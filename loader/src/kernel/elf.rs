// SPDX-License-Identifier: MIT OR Apache-2.0
//! PVH ELF kernels: an ELF32 or ELF64 little-endian x86 executable carrying Xen's
//! `XEN_ELFNOTE_PHYS32_ENTRY` note (Linux `vmlinux` built with `CONFIG_PVH`, FreeBSD,
//! unikernels). Booted by loading every `PT_LOAD` at its physical address and entering
//! the note's address in 32-bit protected mode with `%ebx` = `hvm_start_info`.
//!
//! A small bounds-checked reader: only the ELF header, the program header table and
//! `PT_NOTE` segments are looked at.

use alloc::vec::Vec;
use core::fmt;

use super::le::{slice, u8_at, u16_at, u32_at, u64_at};
use super::{ElfPart, KernelError, SegmentProblem};

/// `\x7fELF`.
pub const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
/// Most `PT_LOAD` segments accepted.
pub const MAX_SEGMENTS: usize = 64;
/// `XEN_ELFNOTE_PHYS32_ENTRY` (xen/include/public/elfnote.h): 32-bit physical entry.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;
pub(crate) const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const FOUR_GIB: u64 = 1 << 32;

/// One `PT_LOAD`: copy `image[offset..offset + filesz]` to `paddr` and zero up to `memsz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub paddr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
}

/// A validated PVH ELF kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvhElf {
    /// `XEN_ELFNOTE_PHYS32_ENTRY` (low 32 bits).
    pub entry: u32,
    /// The `PT_LOAD` segments, in program-header order: each within the file, `filesz <=
    /// memsz`, below 4 GiB, none overlapping another.
    pub segments: Vec<Segment>,
    /// ELF64 (else ELF32).
    pub elf64: bool,
}

/// A program header, class-independent.
#[derive(Clone, Copy)]
pub(crate) struct Phdr {
    pub(crate) kind: u32,
    pub(crate) offset: u64,
    pub(crate) vaddr: u64,
    pub(crate) paddr: u64,
    pub(crate) filesz: u64,
    pub(crate) memsz: u64,
}

/// The header facts needed to walk the program headers.
pub(crate) struct Header {
    pub(crate) elf64: bool,
    /// `e_entry`.
    pub(crate) entry: u64,
    phoff: u64,
    phentsize: u64,
    pub(crate) phnum: u16,
}

pub(crate) fn header(image: &[u8]) -> Result<Header, KernelError> {
    let trunc = KernelError::ElfTruncated(ElfPart::Header);
    if !image.starts_with(ELF_MAGIC) {
        // Only reachable when called directly; detect() checks the magic first.
        return Err(KernelError::Unrecognized);
    }
    let class = u8_at(image, 4).ok_or(trunc)?;
    let elf64 = match class {
        ELFCLASS32 => false,
        ELFCLASS64 => true,
        c => return Err(KernelError::ElfBadClass(c)),
    };
    if u8_at(image, 5).ok_or(trunc)? != ELFDATA2LSB {
        return Err(KernelError::ElfNotLittleEndian);
    }
    let machine = u16_at(image, 18).ok_or(trunc)?;
    if machine != EM_386 && machine != EM_X86_64 {
        return Err(KernelError::ElfBadMachine(machine));
    }
    let entry = if elf64 { u64_at(image, 24) } else { u32_at(image, 24).map(u64::from) }.ok_or(trunc)?;
    let (phoff, phentsize, phnum, min_phent) = if elf64 {
        (u64_at(image, 32).ok_or(trunc)?, u16_at(image, 54).ok_or(trunc)?, u16_at(image, 56).ok_or(trunc)?, 56)
    } else {
        (
            u64::from(u32_at(image, 28).ok_or(trunc)?),
            u16_at(image, 42).ok_or(trunc)?,
            u16_at(image, 44).ok_or(trunc)?,
            32,
        )
    };
    if phnum > 0 && phentsize < min_phent {
        return Err(KernelError::ElfBadPhentsize(phentsize));
    }
    let phentsize = u64::from(phentsize);
    // The whole table must be inside the file.
    let table_len = phentsize * u64::from(phnum); // <= 65535 * 65535: no overflow
    if slice(image, phoff, table_len).is_none() {
        return Err(KernelError::ElfTruncated(ElfPart::ProgramHeaders));
    }
    Ok(Header { elf64, entry, phoff, phentsize, phnum })
}

pub(crate) fn phdr(image: &[u8], h: &Header, i: u16) -> Option<Phdr> {
    let at = h.phoff.checked_add(h.phentsize * u64::from(i))?;
    let ph = slice(image, at, h.phentsize)?;
    Some(if h.elf64 {
        Phdr {
            kind: u32_at(ph, 0)?,
            offset: u64_at(ph, 8)?,
            vaddr: u64_at(ph, 16)?,
            paddr: u64_at(ph, 24)?,
            filesz: u64_at(ph, 32)?,
            memsz: u64_at(ph, 40)?,
        }
    } else {
        Phdr {
            kind: u32_at(ph, 0)?,
            offset: u32_at(ph, 4)?.into(),
            vaddr: u32_at(ph, 8)?.into(),
            paddr: u32_at(ph, 12)?.into(),
            filesz: u32_at(ph, 16)?.into(),
            memsz: u32_at(ph, 20)?.into(),
        }
    })
}

fn align4(n: u32) -> u64 {
    (u64::from(n) + 3) & !3
}

/// Walk the notes of one `PT_NOTE` segment, calling `f(name, type, desc)`.
fn walk_notes<'a>(
    mut notes: &'a [u8],
    f: &mut dyn FnMut(&'a [u8], u32, &'a [u8]) -> Result<(), KernelError>,
) -> Result<(), KernelError> {
    let trunc = KernelError::ElfTruncated(ElfPart::Note);
    while !notes.is_empty() {
        let namesz = u32_at(notes, 0).ok_or(trunc)?;
        let descsz = u32_at(notes, 4).ok_or(trunc)?;
        let kind = u32_at(notes, 8).ok_or(trunc)?;
        let name = slice(notes, 12, namesz.into()).ok_or(trunc)?;
        let desc_at = 12 + align4(namesz);
        let desc = slice(notes, desc_at, descsz.into()).ok_or(trunc)?;
        f(name, kind, desc)?;
        let next = desc_at + align4(descsz);
        // The last note's padding may be missing.
        notes = usize::try_from(next).ok().and_then(|n| notes.get(n..)).unwrap_or(&[]);
    }
    Ok(())
}

fn is_xen(name: &[u8]) -> bool {
    let name = name.strip_suffix(b"\0").unwrap_or(name);
    name == b"Xen"
}

/// Call `f(type, desc)` for every note named "Xen" in every `PT_NOTE` segment.
pub(crate) fn for_each_xen_note<'a>(
    image: &'a [u8],
    h: &Header,
    f: &mut dyn FnMut(u32, &'a [u8]) -> Result<(), KernelError>,
) -> Result<(), KernelError> {
    for i in 0..h.phnum {
        let p = phdr(image, h, i).ok_or(KernelError::ElfTruncated(ElfPart::ProgramHeaders))?;
        if p.kind != PT_NOTE {
            continue;
        }
        let seg = slice(image, p.offset, p.filesz).ok_or(KernelError::ElfTruncated(ElfPart::NoteSegment))?;
        walk_notes(seg, &mut |name, kind, desc| if is_xen(name) { f(kind, desc) } else { Ok(()) })?;
    }
    Ok(())
}

/// Parse a PVH ELF kernel: its `XEN_ELFNOTE_PHYS32_ENTRY` and its `PT_LOAD` segments.
pub fn parse_pvh(image: &[u8]) -> Result<PvhElf, KernelError> {
    let h = header(image)?;

    let mut entry = None;
    for_each_xen_note(image, &h, &mut |kind, desc| {
        if kind == XEN_ELFNOTE_PHYS32_ENTRY && entry.is_none() {
            entry = Some(match desc.len() {
                4 => u32_at(desc, 0).unwrap_or(0),
                8 => u64_at(desc, 0).unwrap_or(0) as u32, // the low 32 bits
                n => return Err(KernelError::ElfBadPhys32Entry { descsz: n as u32 }),
            });
        }
        Ok(())
    })?;
    let entry = entry.ok_or(KernelError::ElfNoPhys32Entry)?;

    let segments = load_segments(image, &h)?;
    Ok(PvhElf { entry, segments, elf64: h.elf64 })
}

/// The `PT_LOAD` segments, validated: each within the file, `filesz <= memsz`, below
/// 4 GiB, none overlapping another; at least one.
pub(crate) fn load_segments(image: &[u8], h: &Header) -> Result<Vec<Segment>, KernelError> {
    let mut segments: Vec<Segment> = Vec::new();
    for i in 0..h.phnum {
        let p = phdr(image, h, i).ok_or(KernelError::ElfTruncated(ElfPart::ProgramHeaders))?;
        if p.kind != PT_LOAD {
            continue;
        }
        if segments.len() == MAX_SEGMENTS {
            return Err(KernelError::ElfTooManySegments);
        }
        let bad = |problem| KernelError::ElfBadSegment { index: i, problem };
        if p.filesz > p.memsz {
            return Err(bad(SegmentProblem::FileszOverMemsz));
        }
        if slice(image, p.offset, p.filesz).is_none() {
            return Err(bad(SegmentProblem::PastEndOfFile));
        }
        let end = p.paddr.checked_add(p.memsz).ok_or(bad(SegmentProblem::Above4G))?;
        if end > FOUR_GIB {
            return Err(bad(SegmentProblem::Above4G));
        }
        if p.memsz > 0 && segments.iter().any(|s| s.memsz > 0 && p.paddr < s.paddr + s.memsz && s.paddr < end) {
            return Err(bad(SegmentProblem::Overlaps));
        }
        segments.push(Segment { paddr: p.paddr, offset: p.offset, filesz: p.filesz, memsz: p.memsz });
    }
    if segments.is_empty() {
        return Err(KernelError::ElfNoLoadSegments);
    }
    Ok(segments)
}

/// Every note named "Xen" as `(type, desc)`, for `inspect`. Best effort: stops at the
/// first malformed structure and returns what it found until then.
pub fn xen_notes(image: &[u8]) -> Vec<(u32, &[u8])> {
    let mut out = Vec::new();
    if let Ok(h) = header(image) {
        let _ = for_each_xen_note(image, &h, &mut |kind, desc| {
            out.push((kind, desc));
            Ok(())
        });
    }
    out
}

impl PvhElf {
    /// Lowest and highest (exclusive) physical address of the loaded image.
    pub fn extent(&self) -> (u64, u64) {
        let lo = self.segments.iter().map(|s| s.paddr).min().unwrap_or(0);
        let hi = self.segments.iter().map(|s| s.paddr + s.memsz).max().unwrap_or(0);
        (lo, hi)
    }
}

impl fmt::Display for PvhElf {
    /// One line for `inspect`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (lo, hi) = self.extent();
        write!(
            f,
            "PVH ELF{}, entry {:#x}, {} PT_LOAD segment(s) at {lo:#x}..{hi:#x}",
            if self.elf64 { 64 } else { 32 },
            self.entry,
            self.segments.len()
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec;

    fn put(b: &mut Vec<u8>, off: usize, v: &[u8]) {
        if b.len() < off + v.len() {
            b.resize(off + v.len(), 0);
        }
        b[off..off + v.len()].copy_from_slice(v);
    }

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend_from_slice(&(name.len() as u32).to_le_bytes());
        n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        n.extend_from_slice(&kind.to_le_bytes());
        n.extend_from_slice(name);
        while n.len() % 4 != 0 {
            n.push(0);
        }
        n.extend_from_slice(desc);
        while n.len() % 4 != 0 {
            n.push(0);
        }
        n
    }

    /// The notes segment: a GNU note, a Xen note of another type, then (optionally)
    /// PHYS32_ENTRY with an 8-byte descriptor.
    fn notes(entry: Option<u32>, entry_desc_len: usize) -> Vec<u8> {
        let mut n = note(b"GNU\0", 3, &[1, 2, 3, 4, 5]);
        n.extend(note(b"Xen\0", 6, b"linux\0"));
        if let Some(e) = entry {
            let mut d = vec![0xaau8; entry_desc_len];
            d[..4].copy_from_slice(&e.to_le_bytes());
            n.extend(note(b"Xen\0", XEN_ELFNOTE_PHYS32_ENTRY, &d));
        }
        n
    }

    /// phdrs: (type, offset, paddr, filesz, memsz)
    fn build(elf64: bool, notes: &[u8], loads: &[(u64, u64, u64)]) -> Vec<u8> {
        let (ehsize, phentsize) = if elf64 { (64usize, 56usize) } else { (52, 32) };
        let phnum = 1 + loads.len();
        let notes_at = ehsize + phnum * phentsize;
        let data_at = notes_at + notes.len();
        let mut b = vec![0u8; data_at];
        put(&mut b, 0, ELF_MAGIC);
        b[4] = if elf64 { ELFCLASS64 } else { ELFCLASS32 };
        b[5] = ELFDATA2LSB;
        b[6] = 1;
        put(&mut b, 16, &2u16.to_le_bytes());
        put(&mut b, 18, &(if elf64 { EM_X86_64 } else { EM_386 }).to_le_bytes());
        if elf64 {
            put(&mut b, 32, &(ehsize as u64).to_le_bytes());
            put(&mut b, 54, &(phentsize as u16).to_le_bytes());
            put(&mut b, 56, &(phnum as u16).to_le_bytes());
        } else {
            put(&mut b, 28, &(ehsize as u32).to_le_bytes());
            put(&mut b, 42, &(phentsize as u16).to_le_bytes());
            put(&mut b, 44, &(phnum as u16).to_le_bytes());
        }
        let mut phs = vec![(PT_NOTE, notes_at as u64, 0u64, notes.len() as u64, notes.len() as u64)];
        let mut off = data_at as u64;
        for &(paddr, filesz, memsz) in loads {
            phs.push((PT_LOAD, off, paddr, filesz, memsz));
            off += filesz;
        }
        for (i, (kind, offset, paddr, filesz, memsz)) in phs.into_iter().enumerate() {
            let at = ehsize + i * phentsize;
            put(&mut b, at, &kind.to_le_bytes());
            if elf64 {
                put(&mut b, at + 8, &offset.to_le_bytes());
                put(&mut b, at + 16, &paddr.to_le_bytes());
                put(&mut b, at + 24, &paddr.to_le_bytes());
                put(&mut b, at + 32, &filesz.to_le_bytes());
                put(&mut b, at + 40, &memsz.to_le_bytes());
            } else {
                put(&mut b, at + 4, &(offset as u32).to_le_bytes());
                put(&mut b, at + 8, &(paddr as u32).to_le_bytes());
                put(&mut b, at + 12, &(paddr as u32).to_le_bytes());
                put(&mut b, at + 16, &(filesz as u32).to_le_bytes());
                put(&mut b, at + 20, &(memsz as u32).to_le_bytes());
            }
        }
        put(&mut b, notes_at, notes);
        let total: u64 = loads.iter().map(|l| l.1).sum();
        for i in 0..total {
            b.push(i as u8);
        }
        b
    }

    const LOADS: &[(u64, u64, u64)] = &[(0x100_0000, 0x40, 0x1000), (0x200_0000, 0x20, 0x20)];

    pub fn synthetic64(entry: Option<u32>) -> Vec<u8> {
        build(true, &notes(entry, 8), LOADS)
    }

    pub fn synthetic32(entry: Option<u32>) -> Vec<u8> {
        build(false, &notes(entry, 4), LOADS)
    }

    #[test]
    fn parses_elf64_and_elf32() {
        for (img, elf64) in [(synthetic64(Some(0x100_0123)), true), (synthetic32(Some(0x100_0123)), false)] {
            let k = parse_pvh(&img).unwrap();
            assert_eq!(k.entry, 0x100_0123);
            assert_eq!(k.elf64, elf64);
            assert_eq!(k.segments.len(), 2);
            let s = k.segments[0];
            assert_eq!((s.paddr, s.filesz, s.memsz), (0x100_0000, 0x40, 0x1000));
            assert_eq!(&img[s.offset as usize..][..4], &[0, 1, 2, 3]);
            let s1 = k.segments[1];
            assert_eq!(s1.offset, s.offset + 0x40);
            assert_eq!(k.extent(), (0x100_0000, 0x200_0020));
            assert!(k.to_string().starts_with(if elf64 { "PVH ELF64, entry 0x1000123" } else { "PVH ELF32" }));
        }
    }

    #[test]
    fn xen_notes_lists_xen_only() {
        let img = synthetic64(Some(0x1234));
        let n = xen_notes(&img);
        assert_eq!(n.len(), 2);
        assert_eq!(n[0], (6, &b"linux\0"[..]));
        assert_eq!(n[1].0, XEN_ELFNOTE_PHYS32_ENTRY);
        assert_eq!(n[1].1.len(), 8);
        assert!(xen_notes(b"junk").is_empty());
        assert!(xen_notes(&img[..100]).is_empty());
    }

    #[test]
    fn errors() {
        assert_eq!(parse_pvh(&synthetic64(None)).unwrap_err(), KernelError::ElfNoPhys32Entry);
        assert_eq!(
            KernelError::ElfNoPhys32Entry.to_string(),
            "ELF kernel has no XEN_ELFNOTE_PHYS32_ENTRY note: not a PVH kernel"
        );
        assert_eq!(
            parse_pvh(&build(true, &notes(Some(1), 6), LOADS)).unwrap_err(),
            KernelError::ElfBadPhys32Entry { descsz: 6 }
        );
        assert_eq!(parse_pvh(&build(true, &notes(Some(1), 4), LOADS)).unwrap().entry, 1);
        assert_eq!(parse_pvh(b"\x7fELF").unwrap_err(), KernelError::ElfTruncated(ElfPart::Header));
        let good = synthetic64(Some(0x1234));
        let e = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut img = good.clone();
            f(&mut img);
            parse_pvh(&img).unwrap_err()
        };
        assert_eq!(e(&|b| b[4] = 3), KernelError::ElfBadClass(3));
        assert_eq!(e(&|b| b[5] = 2), KernelError::ElfNotLittleEndian);
        assert_eq!(e(&|b| b[18] = 40), KernelError::ElfBadMachine(40));
        assert_eq!(e(&|b| b[54] = 40), KernelError::ElfBadPhentsize(40));
        assert_eq!(e(&|b| b[56] = 200), KernelError::ElfTruncated(ElfPart::ProgramHeaders));
        assert_eq!(e(&|b| put(b, 32, &u64::MAX.to_le_bytes())), KernelError::ElfTruncated(ElfPart::ProgramHeaders));
        // PT_NOTE offset past the end.
        assert_eq!(
            e(&|b| put(b, 64 + 8, &0xffff_ffffu64.to_le_bytes())),
            KernelError::ElfTruncated(ElfPart::NoteSegment)
        );
        // A note whose descsz overruns its segment.
        let notes_at = 64 + 3 * 56;
        assert_eq!(e(&|b| put(b, notes_at + 4, &0x1000u32.to_le_bytes())), KernelError::ElfTruncated(ElfPart::Note));

        let seg = |loads: &[(u64, u64, u64)]| parse_pvh(&build(true, &notes(Some(1), 8), loads)).unwrap_err();
        let bad = |index, problem| KernelError::ElfBadSegment { index, problem };
        assert_eq!(seg(&[(0x10_0000, 0x20, 0x10)]), bad(1, SegmentProblem::FileszOverMemsz));
        assert_eq!(seg(&[(0xffff_f000, 0, 0x1001)]), bad(1, SegmentProblem::Above4G));
        assert_eq!(seg(&[(u64::MAX, 0, 2)]), bad(1, SegmentProblem::Above4G));
        assert_eq!(seg(&[(0x10_0000, 0, 0x1000), (0x10_0800, 0, 0x1000)]), bad(2, SegmentProblem::Overlaps));
        assert_eq!(seg(&[]), KernelError::ElfNoLoadSegments);
        let many: Vec<(u64, u64, u64)> = (0..65).map(|i| (0x10_0000 + i * 0x1000, 0, 0x1000)).collect();
        assert_eq!(seg(&many), KernelError::ElfTooManySegments);
        assert_eq!(parse_pvh(&build(true, &notes(Some(1), 8), &many[..64])).unwrap().segments.len(), 64);
        // filesz past the end of the file.
        let mut img = good.clone();
        img.truncate(img.len() - 1);
        assert_eq!(parse_pvh(&img).unwrap_err(), bad(2, SegmentProblem::PastEndOfFile));
        // Exactly up to 4 GiB is fine.
        assert!(parse_pvh(&build(true, &notes(Some(1), 8), &[(0xffff_f000, 0, 0x1000)])).is_ok());
    }
}
