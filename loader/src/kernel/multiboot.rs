// SPDX-License-Identifier: MIT OR Apache-2.0
//! Multiboot (version 1, "Multiboot Specification version 0.6.96") kernels: a header in
//! the first 8 KiB of the file (magic 0x1BADB002, flags, checksum; section 3.1), loaded
//! either by the header's address fields (flag 16, the "a.out kludge") or as an ELF by
//! its `PT_LOAD` segments at their physical addresses, and entered in 32-bit protected
//! mode, paging off, `%eax` = 0x2BADB002 and `%ebx` = the multiboot information
//! structure (section 3.2; built by `handoff::multiboot`).
//!
//! The header is read here rather than with the `multiboot` crate's `Header::from_slice`:
//! that one asserts (panics) on a bad checksum and on `header_addr < load_addr`, and the
//! bytes are the guest's. The crate builds the information structure.

use alloc::vec::Vec;
use core::fmt;

use super::elf::{self, ELF_MAGIC, PvhElf, Segment};
use super::le::u32_at;
use super::{KernelError, MultibootProblem};

/// `MULTIBOOT_HEADER_MAGIC`.
pub const HEADER_MAGIC: u32 = 0x1BAD_B002;
/// What the kernel finds in `%eax` (`MULTIBOOT_BOOTLOADER_MAGIC`).
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
/// The header lies entirely within this many bytes from the start of the file, 4-aligned.
pub const SEARCH: usize = 8192;

/// Flag 0: modules page aligned.
pub const FLAG_PAGE_ALIGN: u32 = 1 << 0;
/// Flag 1: `mem_*` (and the memory map) must be passed.
pub const FLAG_MEMORY: u32 = 1 << 1;
/// Flag 2: a video mode table must be passed.
pub const FLAG_VIDEO: u32 = 1 << 2;
/// Flag 16: the address fields are valid and say how to load the file.
pub const FLAG_ADDRESSES: u32 = 1 << 16;
/// The requirement bits (0-15) this loader can meet: a loader must refuse any other.
const UNDERSTOOD: u32 = FLAG_PAGE_ALIGN | FLAG_MEMORY;

/// A validated multiboot kernel: where its bytes go and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultibootKernel {
    /// Offset of the header in the file.
    pub header_at: u32,
    pub flags: u32,
    /// Physical entry point (inside a loaded segment).
    pub entry: u32,
    /// What to copy where: from the file at `offset`, `filesz` bytes, zero to `memsz`.
    pub segments: Vec<Segment>,
    /// Loaded by the header's address fields (else as an ELF).
    pub aout: bool,
}

impl MultibootKernel {
    /// The segments and entry in the shape the PVH placement takes (both load fixed
    /// segments and enter 32-bit code).
    pub fn as_loadable(&self) -> PvhElf {
        PvhElf { entry: self.entry, segments: self.segments.clone(), elf64: false }
    }
    /// Modules must start on a page boundary.
    pub fn page_aligned_modules(&self) -> bool {
        self.flags & FLAG_PAGE_ALIGN != 0
    }
}

impl fmt::Display for MultibootKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (lo, hi) = self
            .segments
            .iter()
            .filter(|s| s.memsz > 0)
            .fold((u64::MAX, 0), |(lo, hi), s| (lo.min(s.paddr), hi.max(s.paddr + s.memsz)));
        write!(
            f,
            "multiboot kernel ({}), header at {:#x}, flags {:#x}, entry {:#x}, loads {lo:#x}-{hi:#x}",
            if self.aout { "address fields" } else { "ELF" },
            self.header_at,
            self.flags,
            self.entry
        )
    }
}

/// The first multiboot header magic in the first 8 KiB, 4-aligned, whose checksum holds:
/// `(offset, flags)`. A magic with a bad checksum is an error (the file meant to be one),
/// unless a later magic is good.
pub fn find_header(image: &[u8]) -> Result<Option<(u32, u32)>, KernelError> {
    let mut bad = None;
    let end = image.len().min(SEARCH);
    let mut at = 0;
    while at + 12 <= end {
        if u32_at(image, at) == Some(HEADER_MAGIC) {
            let flags = u32_at(image, at + 4).unwrap_or(0);
            let sum = u32_at(image, at + 8).unwrap_or(0);
            if HEADER_MAGIC.wrapping_add(flags).wrapping_add(sum) == 0 {
                return Ok(Some((at as u32, flags)));
            }
            bad.get_or_insert(at as u32);
        }
        at += 4;
    }
    match bad {
        Some(at) => Err(KernelError::Multiboot { at, problem: MultibootProblem::Checksum }),
        None => Ok(None),
    }
}

/// Whether `image` carries a multiboot header (good checksum) in its first 8 KiB.
pub fn has_header(image: &[u8]) -> bool {
    matches!(find_header(image), Ok(Some(_)))
}

/// Parse a multiboot kernel. `Ok(None)`: no header at all.
pub fn parse(image: &[u8]) -> Result<Option<MultibootKernel>, KernelError> {
    let Some((at, flags)) = find_header(image)? else { return Ok(None) };
    let err = |problem| KernelError::Multiboot { at, problem };
    let unknown = flags & 0xffff & !UNDERSTOOD;
    if unknown != 0 {
        return Err(err(MultibootProblem::Requirement(unknown)));
    }
    if flags & FLAG_ADDRESSES != 0 {
        let field = |i: usize| u32_at(image, at as usize + 12 + 4 * i).ok_or(err(MultibootProblem::Truncated));
        let (header_addr, load_addr, load_end, bss_end, entry) =
            (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
        // The file is loaded from the offset where the header is, less how far into the
        // text the header says it is (section 3.1.3).
        let into = header_addr.checked_sub(load_addr).ok_or(err(MultibootProblem::HeaderBeforeLoad))?;
        let offset = at.checked_sub(into).ok_or(err(MultibootProblem::HeaderBeforeLoad))?;
        let file_end = image.len() as u64;
        let filesz = match load_end {
            0 => image.len() as u64 - u64::from(offset),
            e => u64::from(e.checked_sub(load_addr).ok_or(err(MultibootProblem::LoadEnd))?),
        };
        if u64::from(offset) + filesz > file_end {
            return Err(err(MultibootProblem::PastEndOfFile));
        }
        let memsz = match bss_end {
            0 => filesz,
            e => {
                let m = u64::from(e.checked_sub(load_addr).ok_or(err(MultibootProblem::BssEnd))?);
                if m < filesz {
                    return Err(err(MultibootProblem::BssEnd));
                }
                m
            }
        };
        if u64::from(load_addr) + memsz > 1 << 32 {
            return Err(err(MultibootProblem::Above4G));
        }
        if memsz == 0 || entry < load_addr || u64::from(entry) >= u64::from(load_addr) + memsz {
            return Err(err(MultibootProblem::EntryOutside(entry)));
        }
        let segments = Vec::from([Segment { paddr: load_addr.into(), offset: offset.into(), filesz, memsz }]);
        return Ok(Some(MultibootKernel { header_at: at, flags, entry, segments, aout: true }));
    }
    if !image.starts_with(ELF_MAGIC) {
        return Err(err(MultibootProblem::NotElf));
    }
    let h = elf::header(image)?;
    let segments = elf::load_segments(image, &h)?;
    // The entry is physical when it lies in a segment as loaded; a higher-half kernel's
    // e_entry is virtual: translate it through its segment's p_vaddr.
    let e = h.entry;
    let entry = if segments.iter().any(|s| e >= s.paddr && e < s.paddr + s.memsz) {
        Some(e)
    } else {
        (0..h.phnum)
            .filter_map(|i| elf::phdr(image, &h, i))
            .filter(|p| p.kind == elf::PT_LOAD)
            .find(|p| e >= p.vaddr && e - p.vaddr < p.memsz)
            .map(|p| p.paddr + (e - p.vaddr))
    };
    let entry = entry.filter(|&e| e < 1 << 32).ok_or(err(MultibootProblem::EntryOutside(e as u32)))?;
    Ok(Some(MultibootKernel { header_at: at, flags, entry: entry as u32, segments, aout: false }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A flat multiboot image: the header at `at` with address fields, code after it.
    pub fn aout(at: usize, load: u32, len: u32, bss: u32, entry_off: u32) -> Vec<u8> {
        let mut b = vec![0x90u8; len as usize];
        let flags = FLAG_ADDRESSES | FLAG_MEMORY | FLAG_PAGE_ALIGN;
        let words = [
            HEADER_MAGIC,
            flags,
            0u32.wrapping_sub(HEADER_MAGIC.wrapping_add(flags)),
            load + at as u32,
            load,
            load + len,
            if bss == 0 { 0 } else { load + len + bss },
            load + entry_off,
        ];
        for (i, w) in words.iter().enumerate() {
            b[at + 4 * i..at + 4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    #[test]
    fn address_fields_load_the_whole_file() {
        let img = aout(64, 0x10_0000, 0x3000, 0x1000, 0x100);
        let k = parse(&img).unwrap().unwrap();
        assert!(k.aout);
        assert_eq!(k.entry, 0x10_0100);
        assert_eq!(k.segments, [Segment { paddr: 0x10_0000, offset: 0, filesz: 0x3000, memsz: 0x4000 }]);
        assert!(k.page_aligned_modules());
        assert!(k.to_string().contains("entry 0x100100, loads 0x100000-0x104000"), "{k}");
    }

    #[test]
    fn no_header_is_none_and_bad_checksum_is_named() {
        assert_eq!(parse(&[0u8; 9000]).unwrap(), None);
        let mut img = aout(8, 0x10_0000, 0x1000, 0, 0);
        img[16] ^= 1; // the checksum
        let e = parse(&img).unwrap_err();
        assert_eq!(e.to_string(), "multiboot header at 0x8: the checksum does not add up");
    }

    #[test]
    fn a_header_past_8k_is_not_seen() {
        let img = aout(8192, 0x10_0000, 0x3000, 0, 0);
        assert_eq!(parse(&img).unwrap(), None);
    }

    #[test]
    fn unmet_requirements_are_refused() {
        let mut img = aout(0, 0x10_0000, 0x1000, 0, 0);
        let flags = FLAG_ADDRESSES | FLAG_VIDEO;
        img[4..8].copy_from_slice(&flags.to_le_bytes());
        img[8..12].copy_from_slice(&0u32.wrapping_sub(HEADER_MAGIC.wrapping_add(flags)).to_le_bytes());
        let e = parse(&img).unwrap_err();
        assert!(e.to_string().contains("requirement flags 0x4"), "{e}");
    }

    #[test]
    fn bad_address_fields_are_errors_not_panics() {
        // header_addr below load_addr; load_end past the file; entry outside; bss below.
        let base = aout(32, 0x10_0000, 0x2000, 0, 0x10);
        let set = |img: &mut Vec<u8>, word: usize, v: u32| {
            img[32 + 4 * word..36 + 4 * word].copy_from_slice(&v.to_le_bytes())
        };
        let cases: [(usize, u32, &str); 5] = [
            (3, 0xf_0000, "header_addr is below load_addr"),
            (5, 0x10_9000, "past the end of the file"),
            (7, 0x20_0000, "entry 0x200000 is outside"),
            (6, 0x10_1000, "bss_end_addr"),
            (5, 0xf_0000, "load_end_addr"),
        ];
        for (word, v, want) in cases {
            let mut img = base.clone();
            set(&mut img, word, v);
            let e = parse(&img).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
        // Truncated: a header whose address fields are cut off.
        let mut short = base[..44].to_vec();
        short.truncate(44);
        assert!(parse(&short).unwrap_err().to_string().contains("truncated"));
    }

    #[test]
    fn elf_multiboot_kernels_load_by_segments() {
        // A PVH test ELF with a multiboot header dropped into its first 8 KiB, and no
        // Xen note: loaded by its PT_LOADs, entered at e_entry.
        let mut img = crate::kernel::elf::tests::synthetic32(None);
        let at = img.len().next_multiple_of(4);
        img.resize(at + 12, 0);
        let flags = FLAG_MEMORY;
        img[at..at + 4].copy_from_slice(&HEADER_MAGIC.to_le_bytes());
        img[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
        img[at + 8..at + 12].copy_from_slice(&0u32.wrapping_sub(HEADER_MAGIC.wrapping_add(flags)).to_le_bytes());
        img[24..28].copy_from_slice(&0x100_0010u32.to_le_bytes()); // e_entry
        let k = parse(&img).unwrap().unwrap();
        assert!(!k.aout);
        assert_eq!(k.entry, 0x100_0010);
        assert_eq!(k.segments.len(), 2);
        // An entry outside every segment is named.
        img[24..28].copy_from_slice(&0x500_0000u32.to_le_bytes());
        assert!(parse(&img).unwrap_err().to_string().contains("entry 0x5000000 is outside"));
        // Not ELF and no address fields: named.
        let mut flat = vec![0u8; 64];
        flat[..12].copy_from_slice(&img[at..at + 12]);
        assert!(parse(&flat).unwrap_err().to_string().contains("neither address fields (flag 16) nor an ELF"));
    }
}
