// SPDX-License-Identifier: MIT OR Apache-2.0
//! Kernel image formats: the x86 boot protocol's bzImage ([`bzimage`]) and PVH ELF kernels
//! ([`elf`]). Every parser here takes untrusted bytes: it never panics, never overflows,
//! and reports what is wrong as a [`KernelError`].

pub mod bzimage;
pub mod decompress;
pub mod elf;
pub mod multiboot;
pub mod pv;

use core::fmt;

/// A recognised kernel image.
#[derive(Debug)]
pub enum Kernel<'a> {
    /// A Linux bzImage, booted by the x86 boot protocol (`boot_params`).
    BzImage(bzimage::BzImage<'a>),
    /// An ELF kernel with `XEN_ELFNOTE_PHYS32_ENTRY`, booted by the PVH ABI
    /// (`hvm_start_info`).
    PvhElf(elf::PvhElf),
    /// A multiboot (version 1) kernel, entered with `%eax` = 0x2BADB002 and `%ebx` = the
    /// multiboot information.
    Multiboot(multiboot::MultibootKernel),
}

/// Recognise `image`: ELF magic → [`elf::parse_pvh`]; the boot protocol's `HdrS` magic →
/// [`bzimage::parse`]; anything else → [`KernelError::Unrecognized`].
///
/// A multiboot header (in the first 8 KiB) is looked for in an ELF without the PVH note
/// and in a file that is neither: [`multiboot::parse`].
pub fn detect(image: &[u8]) -> Result<Kernel<'_>, KernelError> {
    if image.starts_with(elf::ELF_MAGIC) {
        return match elf::parse_pvh(image) {
            Err(KernelError::ElfNoPhys32Entry) if multiboot::has_header(image) => {
                multiboot::parse(image).map(|k| Kernel::Multiboot(k.expect("a header was found")))
            }
            r => r.map(Kernel::PvhElf),
        };
    }
    if bzimage::has_hdrs(image) {
        return bzimage::parse(image).map(Kernel::BzImage);
    }
    match multiboot::parse(image)? {
        Some(k) => Ok(Kernel::Multiboot(k)),
        None => Err(KernelError::Unrecognized),
    }
}

impl fmt::Display for Kernel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kernel::BzImage(k) => k.fmt(f),
            Kernel::PvhElf(k) => k.fmt(f),
            Kernel::Multiboot(k) => k.fmt(f),
        }
    }
}

/// Which part of an ELF file is cut short or out of bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfPart {
    /// The ELF header.
    Header,
    /// The program header table.
    ProgramHeaders,
    /// A `PT_NOTE` segment's bytes.
    NoteSegment,
    /// A note inside a `PT_NOTE` segment.
    Note,
}

impl fmt::Display for ElfPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElfPart::Header => "the ELF header",
            ElfPart::ProgramHeaders => "the program header table",
            ElfPart::NoteSegment => "a PT_NOTE segment",
            ElfPart::Note => "a note",
        })
    }
}

/// What is wrong with a `PT_LOAD` segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentProblem {
    /// `p_filesz > p_memsz`.
    FileszOverMemsz,
    /// `p_offset + p_filesz` is past the end of the file.
    PastEndOfFile,
    /// `p_paddr + p_memsz` overflows or reaches past 4 GiB.
    Above4G,
    /// Overlaps an earlier `PT_LOAD` segment in physical memory.
    Overlaps,
}

/// Why a kernel image was refused. `Display` names the stage and the cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// Neither ELF magic nor the boot protocol's `HdrS`.
    Unrecognized,

    // ---- bzImage ----
    /// The image is shorter than what we needed to read.
    BzTooShort { need: u64, have: u64 },
    /// No `HdrS` at 0x202 (only from [`bzimage::parse`] called directly).
    BzNoHdrS,
    /// `boot_flag` at 0x1fe is not 0xAA55.
    BzBadBootFlag(u16),
    /// The byte at 0x200 is not a short `jmp` (0xEB), so the header length is unknown.
    BzNoShortJump(u8),
    /// Boot protocol older than 2.06.
    BzProtocolTooOld(u16),
    /// The setup header (0x202 + the byte at 0x201) ends past the zero page's header area.
    BzHeaderTooLong { end: u16 },
    /// The setup header ends before the last field its protocol version defines.
    BzHeaderTooShort { end: u16, need: u16, version: u16 },
    /// `setup_sects` larger than the 32 KiB real-mode limit allows.
    BzSetupSectsAbsurd(u8),
    /// The image is shorter than its real-mode setup.
    BzSetupTruncated { setup: u64, have: u64 },
    /// The protected-mode part is shorter than `syssize` says.
    BzSyssizeTruncated { need: u64, have: u64 },
    /// `LOADED_HIGH` is clear: a zImage, loaded at 0x10000; not supported.
    BzZImage,
    /// A relocatable kernel whose `kernel_alignment` is not a power of two.
    BzBadAlignment(u32),
    /// The compressed payload (`payload_offset`, `payload_length`) cannot be what Linux's
    /// decompressor reads.
    BzPayload { offset: u32, length: u32, problem: PayloadProblem },

    // ---- ELF ----
    /// Part of the file is truncated or out of bounds.
    ElfTruncated(ElfPart),
    /// `EI_CLASS` is neither ELFCLASS32 nor ELFCLASS64.
    ElfBadClass(u8),
    /// `EI_DATA` is not little-endian.
    ElfNotLittleEndian,
    /// `e_machine` is neither EM_386 nor EM_X86_64.
    ElfBadMachine(u16),
    /// `e_phentsize` smaller than a program header of this class.
    ElfBadPhentsize(u16),
    /// More `PT_LOAD` segments than [`elf::MAX_SEGMENTS`].
    ElfTooManySegments,
    /// No `PT_LOAD` segment.
    ElfNoLoadSegments,
    /// `PT_LOAD` number `index` (counting program headers from 0) is unusable.
    ElfBadSegment { index: u16, problem: SegmentProblem },
    /// `XEN_ELFNOTE_PHYS32_ENTRY` with a descriptor that is not 4 or 8 bytes.
    ElfBadPhys32Entry { descsz: u32 },
    /// No `XEN_ELFNOTE_PHYS32_ENTRY`.
    ElfNoPhys32Entry,

    // ---- multiboot ----
    /// The multiboot header at offset `at` cannot be honoured.
    Multiboot { at: u32, problem: MultibootProblem },

    // ---- Xen PV kernels ----
    /// A PV kernel the loader cannot boot, and why.
    Pv(pv::PvProblem),
    /// The bzImage's payload did not decompress.
    PvPayload(decompress::DecompressError),
}

/// What is wrong with a bzImage's compressed payload ([`KernelError::BzPayload`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadProblem {
    /// It reaches past the protected-mode kernel (`pm_len` bytes).
    Outside { pm_len: u64 },
    /// Its first `len` (at most 4) bytes are no magic of a format Linux decompresses.
    UnknownFormat { head: [u8; 4], len: u8 },
    /// An xz stream header whose CRC32 does not match.
    XzHeader,
}

/// What is wrong with a multiboot header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultibootProblem {
    Checksum,
    /// Requirement flags (bits 0-15) this loader cannot meet.
    Requirement(u32),
    /// The address fields are cut off by the end of the file.
    Truncated,
    HeaderBeforeLoad,
    LoadEnd,
    BssEnd,
    PastEndOfFile,
    Above4G,
    EntryOutside(u32),
    NotElf,
}

impl fmt::Display for MultibootProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MultibootProblem::*;
        match *self {
            Checksum => f.write_str("the checksum does not add up"),
            Requirement(bits) => write!(
                f,
                "requirement flags {bits:#x} cannot be met (rxen passes memory information and page-aligns \
                 modules; there is no video mode on a Xen or microvm console)"
            ),
            Truncated => f.write_str("the address fields are truncated"),
            HeaderBeforeLoad => f.write_str("header_addr is below load_addr, or before the start of the file"),
            LoadEnd => f.write_str("load_end_addr is below load_addr"),
            BssEnd => f.write_str("bss_end_addr is below load_end_addr"),
            PastEndOfFile => f.write_str("load_end_addr reaches past the end of the file"),
            Above4G => f.write_str("the image reaches past 4 GiB"),
            EntryOutside(e) => write!(f, "entry {e:#x} is outside the loaded image"),
            NotElf => f.write_str("neither address fields (flag 16) nor an ELF: nothing says where it loads"),
        }
    }
}

fn ver(v: u16) -> (u16, u16) {
    (v >> 8, v & 0xff)
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use KernelError::*;
        match *self {
            Unrecognized => f.write_str("kernel: neither a bzImage (no HdrS at 0x202) nor an ELF (no \\x7fELF) nor multiboot (no header in the first 8 KiB)"),
            BzTooShort { need, have } => {
                write!(f, "bzImage: image is {have} bytes, too short (need at least {need})")
            }
            BzNoHdrS => f.write_str("bzImage: no HdrS signature at 0x202"),
            BzBadBootFlag(v) => write!(f, "bzImage: boot_flag at 0x1fe is {v:#06x}, not 0xaa55"),
            BzNoShortJump(b) => {
                write!(f, "bzImage: byte at 0x200 is {b:#04x}, not a short jmp (0xeb): setup header length unknown")
            }
            BzProtocolTooOld(v) => {
                let (a, b) = ver(v);
                write!(f, "bzImage: boot protocol {a}.{b:02} is too old (need 2.06)")
            }
            BzHeaderTooLong { end } => {
                write!(f, "bzImage: setup header claims to end at {end:#x}, past the zero page's header area (0x290)")
            }
            BzHeaderTooShort { end, need, version } => {
                let (a, b) = ver(version);
                write!(
                    f,
                    "bzImage: setup header ends at {end:#x} but protocol {a}.{b:02} defines fields up to {need:#x}"
                )
            }
            BzSetupSectsAbsurd(n) => {
                write!(f, "bzImage: setup_sects {n} is absurd (the real-mode setup is at most 32 KiB: 63 sectors)")
            }
            BzSetupTruncated { setup, have } => {
                write!(f, "bzImage: image is {have} bytes, shorter than its {setup}-byte real-mode setup")
            }
            BzSyssizeTruncated { need, have } => {
                write!(f, "bzImage: protected-mode kernel is {have} bytes but syssize says {need}: truncated image")
            }
            BzZImage => f.write_str("bzImage: LOADED_HIGH is clear: a zImage (loaded at 0x10000), not supported"),
            BzPayload { offset, length, problem } => {
                write!(f, "bzImage: compressed payload at offset {offset:#x} ({length} bytes) ")?;
                match problem {
                    PayloadProblem::Outside { pm_len } => {
                        write!(f, "reaches past the {pm_len}-byte protected-mode kernel: truncated or damaged image")
                    }
                    PayloadProblem::UnknownFormat { head, len } => {
                        f.write_str("starts")?;
                        for b in &head[..usize::from(len)] {
                            write!(f, " {b:02x}")?;
                        }
                        f.write_str(
                            ", no format Linux's decompressor reads (gzip, bzip2, xz, lzma, lzop, lz4, zstd): a \
                             damaged kernel",
                        )
                    }
                    PayloadProblem::XzHeader => f.write_str("has a damaged xz stream header (its CRC32 does not match)"),
                }
            }
            BzBadAlignment(a) => {
                write!(f, "bzImage: relocatable kernel with kernel_alignment {a:#x}, not a power of two")
            }
            ElfTruncated(part) => write!(f, "ELF: {part} is truncated or out of bounds"),
            ElfBadClass(c) => write!(f, "ELF: class {c} is neither ELF32 nor ELF64"),
            ElfNotLittleEndian => f.write_str("ELF: not little-endian (not an x86 kernel)"),
            ElfBadMachine(m) => write!(f, "ELF: machine {m} is not x86 (EM_386 or EM_X86_64)"),
            ElfBadPhentsize(s) => write!(f, "ELF: e_phentsize {s} is too small for this ELF class"),
            ElfTooManySegments => write!(f, "ELF: more than {} PT_LOAD segments", elf::MAX_SEGMENTS),
            ElfNoLoadSegments => f.write_str("ELF: no PT_LOAD segment"),
            ElfBadSegment { index, problem } => {
                let why = match problem {
                    SegmentProblem::FileszOverMemsz => "p_filesz is larger than p_memsz",
                    SegmentProblem::PastEndOfFile => "its file bytes reach past the end of the file",
                    SegmentProblem::Above4G => "it reaches past 4 GiB",
                    SegmentProblem::Overlaps => "it overlaps an earlier PT_LOAD segment",
                };
                write!(f, "ELF: PT_LOAD (program header {index}): {why}")
            }
            ElfBadPhys32Entry { descsz } => {
                write!(f, "ELF: XEN_ELFNOTE_PHYS32_ENTRY descriptor is {descsz} bytes (need 4 or 8)")
            }
            ElfNoPhys32Entry => f.write_str("ELF kernel has no XEN_ELFNOTE_PHYS32_ENTRY note: not a PVH kernel"),
            Multiboot { at, problem } => write!(f, "multiboot header at {at:#x}: {problem}"),
            Pv(p) => write!(f, "PV kernel: {p}"),
            PvPayload(e) => write!(f, "PV kernel: bzImage payload: {e}"),
        }
    }
}

/// Little-endian reads that never panic: `None` when out of bounds.
pub(crate) mod le {
    pub fn bytes<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
        let end = off.checked_add(N)?;
        b.get(off..end)?.try_into().ok()
    }
    pub fn u8_at(b: &[u8], off: usize) -> Option<u8> {
        b.get(off).copied()
    }
    pub fn u16_at(b: &[u8], off: usize) -> Option<u16> {
        bytes(b, off).map(u16::from_le_bytes)
    }
    pub fn u32_at(b: &[u8], off: usize) -> Option<u32> {
        bytes(b, off).map(u32::from_le_bytes)
    }
    pub fn u64_at(b: &[u8], off: usize) -> Option<u64> {
        bytes(b, off).map(u64::from_le_bytes)
    }
    /// `b[off..off + len]`, with the arithmetic checked.
    pub fn slice(b: &[u8], off: u64, len: u64) -> Option<&[u8]> {
        let off = usize::try_from(off).ok()?;
        let len = usize::try_from(len).ok()?;
        b.get(off..off.checked_add(len)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_neither() {
        assert_eq!(detect(b"").unwrap_err(), KernelError::Unrecognized);
        assert_eq!(detect(&[0u8; 4096]).unwrap_err(), KernelError::Unrecognized);
        assert_eq!(
            KernelError::Unrecognized.to_string(),
            "kernel: neither a bzImage (no HdrS at 0x202) nor an ELF (no \\x7fELF) nor multiboot (no header in the first 8 KiB)"
        );
    }

    #[test]
    fn detect_dispatches() {
        let bz = bzimage::tests::synthetic();
        assert!(matches!(detect(&bz), Ok(Kernel::BzImage(_))));
        let elf = elf::tests::synthetic64(Some(0x100_0000));
        assert!(matches!(detect(&elf), Ok(Kernel::PvhElf(_))));
        let not_pvh = elf::tests::synthetic64(None);
        assert_eq!(detect(&not_pvh).unwrap_err(), KernelError::ElfNoPhys32Entry);
        // HdrS present but broken: the bzImage error, not "unrecognized".
        let mut bad = bz.clone();
        bad[0x206] = 0x04;
        bad[0x207] = 0x02;
        assert_eq!(detect(&bad).unwrap_err(), KernelError::BzProtocolTooOld(0x0204));
    }

    #[test]
    fn display_messages() {
        assert_eq!(
            KernelError::BzProtocolTooOld(0x0204).to_string(),
            "bzImage: boot protocol 2.04 is too old (need 2.06)"
        );
        assert_eq!(
            KernelError::ElfNoPhys32Entry.to_string(),
            "ELF kernel has no XEN_ELFNOTE_PHYS32_ENTRY note: not a PVH kernel"
        );
        let bz = bzimage::tests::synthetic();
        let k = detect(&bz).unwrap();
        let s = k.to_string();
        assert!(s.starts_with("bzImage protocol 2.15, 64-bit entry, relocatable, pref_address 0x1000000"), "{s}");
    }

    proptest::proptest! {
        #[test]
        fn detect_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
            let _ = detect(&data).map(|k| k.to_string());
            let _ = elf::xen_notes(&data);
        }

        #[test]
        fn mutated_bzimage_never_panics(muts in proptest::collection::vec((0x1f0usize..0x280, proptest::num::u8::ANY), 0..16),
                                        cut in 0usize..12_000) {
            let mut img = bzimage::tests::synthetic();
            for (o, v) in muts { img[o] = v; }
            img.truncate(cut);
            if let Ok(Kernel::BzImage(k)) = detect(&img) {
                let _ = k.header_bytes();
                let _ = k.payload();
            }
        }

        #[test]
        fn mutated_elf_never_panics(muts in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..16),
                                    cut in 0usize..400) {
            let mut img = elf::tests::synthetic64(Some(0x1234));
            for (o, v) in muts { if o < img.len() { img[o] = v; } }
            img.truncate(cut);
            let _ = detect(&img);
            let _ = elf::xen_notes(&img);
            let mut img = elf::tests::synthetic32(Some(0x1234));
            img.truncate(cut);
            let _ = detect(&img);
        }
    }
}
