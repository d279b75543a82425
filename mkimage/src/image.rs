// SPDX-License-Identifier: MIT OR Apache-2.0
//! The boot image: the loader ELF (`pvh-boot`) plus one more `PT_LOAD` segment carrying
//! the memdisk, with the image header at physical [`HEADER_PADDR`] filled in.
//!
//! Layout written by [`build_image`]:
//!
//! ```text
//! file offset                         contents
//! 0                                   the loader, byte for byte (ELF header patched:
//!                                     e_phoff, e_phnum; image header patched)
//! align_up(len(loader), 0x1000)       the memdisk (ustar), zero padding before it
//! align_up(memdisk end, 8)            the new program header table: the loader's
//!                                     program headers + one PT_LOAD for the memdisk
//! ```
//!
//! The memdisk is loaded at `align_up(max(p_paddr + p_memsz), 0x1000)`, right after the
//! loader (including its `.bss`). Section headers are left alone. Every PVH loader we
//! target (Xen's libelf, QEMU, Firecracker) reads the program headers at `e_phoff`,
//! wherever that is in the file.

use anyhow::{Context, Result, anyhow, bail, ensure};
use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{EI_CLASS, EI_DATA, ELFCLASS64, ELFDATA2LSB, EM_X86_64, ET_EXEC, Header};
use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE, ProgramHeader};
use rxen_memdisk::{HEADER_PADDR, ImageHeader, MEMDISK_ALIGN};

/// The largest memdisk an image may carry.
pub const MEMDISK_LIMIT: u64 = 1 << 30;
/// Everything (loader and memdisk) must be loaded below this physical address.
pub const PHYS_LIMIT: u64 = 1 << 32;
/// `XEN_ELFNOTE_PHYS32_ENTRY`: the PVH entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const IMAGE_HEADER_SIZE: usize = 96;
/// Offsets of `e_phoff` and `e_phnum` in an ELF64 header.
const OFF_E_PHOFF: usize = 0x20;
const OFF_E_PHNUM: usize = 0x38;
/// `e_phnum` value that means "the real count is elsewhere": we refuse to go there.
const PN_XNUM: usize = 0xffff;
/// Alignment of the appended program header table.
const PHDR_TABLE_ALIGN: u64 = 8;

/// `x` rounded up to a multiple of `a` (a power of two); `None` on overflow.
pub fn align_up(x: u64, a: u64) -> Option<u64> {
    debug_assert!(a.is_power_of_two());
    Some(x.checked_add(a - 1)? & !(a - 1))
}

/// `n` bytes, in the largest binary unit that divides it exactly ("1 GiB", "4 KiB",
/// "1000 bytes").
pub fn size_str(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n != 0 && n.is_multiple_of(1u64 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// Refuse a memdisk over `limit` bytes. [`build_image`] uses [`MEMDISK_LIMIT`]; tests pass
/// something small.
pub fn check_memdisk_size(len: u64, limit: u64) -> Result<()> {
    if len > limit {
        bail!("memdisk too large: {len} bytes (limit {})", size_str(limit));
    }
    Ok(())
}

/// The loader's ELF header and program headers, checked.
struct Elf {
    header: Header,
    phdrs: Vec<ProgramHeader>,
}

fn ctx() -> Ctx {
    Ctx::new(Container::Big, Endian::Little)
}

fn parse_elf(bytes: &[u8]) -> Result<Elf> {
    ensure!(bytes.len() >= 4 && bytes[..4] == *b"\x7fELF", "not an ELF file");
    ensure!(bytes.len() >= EHDR_SIZE, "ELF header truncated ({} bytes)", bytes.len());
    ensure!(bytes[EI_CLASS] == ELFCLASS64, "not an ELF64 file (EI_CLASS {})", bytes[EI_CLASS]);
    ensure!(bytes[EI_DATA] == ELFDATA2LSB, "not a little-endian ELF file");
    let header = goblin::elf::Elf::parse_header(bytes).map_err(|e| anyhow!("bad ELF header: {e}"))?;
    ensure!(header.e_machine == EM_X86_64, "ELF machine {} is not x86_64", header.e_machine);
    ensure!(
        header.e_type == ET_EXEC,
        "ELF type {} is not ET_EXEC: the loader must be a non-PIE executable",
        header.e_type
    );
    ensure!(usize::from(header.e_phentsize) == PHDR_SIZE, "e_phentsize is {}, not {PHDR_SIZE}", header.e_phentsize);
    let phnum = usize::from(header.e_phnum);
    ensure!(phnum != 0, "no program headers");
    ensure!(phnum < PN_XNUM, "too many program headers (e_phnum is PN_XNUM)");
    let table_end = (phnum as u64 * PHDR_SIZE as u64).checked_add(header.e_phoff);
    ensure!(
        table_end.is_some_and(|e| e <= bytes.len() as u64),
        "program header table at {:#x} ({phnum} entries) is past the end of the file",
        header.e_phoff
    );
    let phdrs = ProgramHeader::parse(bytes, header.e_phoff as usize, phnum, ctx())
        .map_err(|e| anyhow!("program header table: {e}"))?;
    for (i, p) in phdrs.iter().enumerate() {
        if p.p_type != PT_LOAD && p.p_type != PT_NOTE {
            continue;
        }
        let what = || format!("program header {i} ({})", type_name(p.p_type));
        ensure!(p.p_filesz <= p.p_memsz || p.p_type != PT_LOAD, "{}: p_filesz > p_memsz", what());
        ensure!(
            p.p_offset.checked_add(p.p_filesz).is_some_and(|e| e <= bytes.len() as u64),
            "{}: file bytes {:#x}+{:#x} reach past the end of the file",
            what(),
            p.p_offset,
            p.p_filesz
        );
        ensure!(p.p_paddr.checked_add(p.p_memsz).is_some(), "{}: p_paddr + p_memsz overflows", what());
    }
    Ok(Elf { header, phdrs })
}

/// File offset of the 96-byte image header: in the `PT_LOAD` that contains physical
/// address [`HEADER_PADDR`].
fn find_header(elf: &Elf) -> Result<usize> {
    let seg = elf
        .phdrs
        .iter()
        .find(|p| p.p_type == PT_LOAD && p.p_paddr <= HEADER_PADDR && HEADER_PADDR - p.p_paddr < p.p_filesz)
        .ok_or_else(|| anyhow!("no PT_LOAD segment contains physical address {HEADER_PADDR:#x}: not an rxen loader"))?;
    let rel = HEADER_PADDR - seg.p_paddr;
    ensure!(
        rel + IMAGE_HEADER_SIZE as u64 <= seg.p_filesz,
        "the image header at {HEADER_PADDR:#x} is cut off by the end of its PT_LOAD segment"
    );
    Ok((seg.p_offset + rel) as usize)
}

fn read_header(bytes: &[u8], off: usize) -> Result<ImageHeader> {
    ImageHeader::from_bytes(&bytes[off..off + IMAGE_HEADER_SIZE])
        .map_err(|e| anyhow!("at physical {HEADER_PADDR:#x} (file offset {off:#x}): {e}: not an rxen loader"))
}

/// End of the highest `PT_LOAD` in physical memory (`max(p_paddr + p_memsz)`).
fn loads_end<'a>(phdrs: impl IntoIterator<Item = &'a ProgramHeader>) -> u64 {
    phdrs.into_iter().filter(|p| p.p_type == PT_LOAD).map(|p| p.p_paddr.saturating_add(p.p_memsz)).max().unwrap_or(0)
}

fn phdr_bytes(p: &ProgramHeader) -> [u8; PHDR_SIZE] {
    let mut b = [0u8; PHDR_SIZE];
    b[0..4].copy_from_slice(&p.p_type.to_le_bytes());
    b[4..8].copy_from_slice(&p.p_flags.to_le_bytes());
    b[8..16].copy_from_slice(&p.p_offset.to_le_bytes());
    b[16..24].copy_from_slice(&p.p_vaddr.to_le_bytes());
    b[24..32].copy_from_slice(&p.p_paddr.to_le_bytes());
    b[32..40].copy_from_slice(&p.p_filesz.to_le_bytes());
    b[40..48].copy_from_slice(&p.p_memsz.to_le_bytes());
    b[48..56].copy_from_slice(&p.p_align.to_le_bytes());
    b
}

/// Build a boot image from the plain loader and a memdisk. Pure and deterministic: the
/// same inputs give the same bytes.
pub fn build_image(loader_elf: &[u8], memdisk: &[u8]) -> Result<Vec<u8>> {
    build_image_with_limit(loader_elf, memdisk, MEMDISK_LIMIT)
}

/// [`build_image`] with the memdisk size limit as a parameter (for tests).
pub fn build_image_with_limit(loader_elf: &[u8], memdisk: &[u8], limit: u64) -> Result<Vec<u8>> {
    let parts = image_parts(loader_elf, memdisk.len() as u64, rxen_memdisk::sha256(memdisk), limit)?;
    let mut out = Vec::with_capacity(parts.head.len() + memdisk.len() + parts.tail.len());
    out.extend_from_slice(&parts.head);
    out.extend_from_slice(memdisk);
    out.extend_from_slice(&parts.tail);
    Ok(out)
}

/// An image as the bytes around its memdisk: the image is `head`, the memdisk, `tail`.
#[derive(Clone, Debug)]
pub struct ImageParts {
    /// The loader with its image header filled in, padded to the memdisk's offset.
    pub head: Vec<u8>,
    /// Padding, then the program headers (the loader's and the memdisk's).
    pub tail: Vec<u8>,
}

/// The image of `loader_elf` around a memdisk of `md_len` bytes whose SHA-256 is
/// `md_sha` (so a caller holding the memdisk in pieces never has to join them).
pub fn image_parts(loader_elf: &[u8], md_len: u64, md_sha: [u8; 32], limit: u64) -> Result<ImageParts> {
    check_memdisk_size(md_len, limit)?;
    ensure!(md_len != 0, "the memdisk is empty");

    let elf = parse_elf(loader_elf)?;
    let hoff = find_header(&elf)?;
    let mut header = read_header(loader_elf, hoff)?;
    if header.memdisk_len != 0 {
        bail!(
            "already an rxen image: it carries a {}-byte memdisk at {:#x} (build from the plain pvh-boot)",
            header.memdisk_len,
            header.memdisk_paddr
        );
    }

    let loader_end = loads_end(&elf.phdrs);
    let md_paddr = align_up(loader_end, MEMDISK_ALIGN).context("loader segments reach the top of memory")?;
    let md_end = md_paddr.checked_add(md_len);
    if loader_end > PHYS_LIMIT || md_end.is_none_or(|e| e > PHYS_LIMIT) {
        bail!(
            "loader and memdisk do not fit below 4 GiB: the loader ends at {loader_end:#x}, \
             the memdisk ({md_len} bytes) would end at {:#x}",
            md_end.unwrap_or(u64::MAX)
        );
    }

    let md_off = align_up(loader_elf.len() as u64, MEMDISK_ALIGN).context("file too large")?;
    let phoff = align_up(md_off + md_len, PHDR_TABLE_ALIGN).context("file too large")?;
    let old_phnum = elf.phdrs.len();
    let new_phnum = old_phnum + 1;
    ensure!(new_phnum < PN_XNUM, "too many program headers");
    usize::try_from(phoff + (new_phnum * PHDR_SIZE) as u64).context("image too large")?;

    let mut head = Vec::with_capacity(md_off as usize);
    head.extend_from_slice(loader_elf);
    head.resize(md_off as usize, 0);
    // The loader's program headers verbatim, then the memdisk's.
    let mut tail = vec![0u8; (phoff - md_off - md_len) as usize];
    let old_phoff = elf.header.e_phoff as usize;
    tail.extend_from_slice(&loader_elf[old_phoff..old_phoff + old_phnum * PHDR_SIZE]);
    let md_phdr = ProgramHeader {
        p_type: PT_LOAD,
        p_flags: PF_R,
        p_offset: md_off,
        p_vaddr: md_paddr,
        p_paddr: md_paddr,
        p_filesz: md_len,
        p_memsz: md_len,
        p_align: MEMDISK_ALIGN,
    };
    tail.extend_from_slice(&phdr_bytes(&md_phdr));

    head[OFF_E_PHOFF..OFF_E_PHOFF + 8].copy_from_slice(&phoff.to_le_bytes());
    head[OFF_E_PHNUM..OFF_E_PHNUM + 2].copy_from_slice(&(new_phnum as u16).to_le_bytes());

    header.memdisk_paddr = md_paddr;
    header.memdisk_len = md_len;
    header.sha256 = md_sha;
    head[hoff..hoff + IMAGE_HEADER_SIZE].copy_from_slice(&header.to_bytes());
    Ok(ImageParts { head, tail })
}

/// A note named "Xen" in a `PT_NOTE` segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenNote<'a> {
    /// `n_type` (`XEN_ELFNOTE_*`).
    pub n_type: u32,
    /// The descriptor bytes.
    pub desc: &'a [u8],
}

impl XenNote<'_> {
    /// The `XEN_ELFNOTE_*` name of this note's type (xen/include/public/elfnote.h).
    pub fn type_name(&self) -> &'static str {
        match self.n_type {
            0 => "INFO",
            1 => "ENTRY",
            2 => "HYPERCALL_PAGE",
            3 => "VIRT_BASE",
            4 => "PADDR_OFFSET",
            5 => "XEN_VERSION",
            6 => "GUEST_OS",
            7 => "GUEST_VERSION",
            8 => "LOADER",
            9 => "PAE_MODE",
            10 => "FEATURES",
            11 => "BSD_SYMTAB",
            12 => "HV_START_LOW",
            13 => "L1_MFN_VALID",
            14 => "SUSPEND_CANCEL",
            15 => "INIT_P2M",
            16 => "MOD_START_PFN",
            17 => "SUPPORTED_FEATURES",
            18 => "PHYS32_ENTRY",
            19 => "PHYS32_RELOC",
            _ => "unknown",
        }
    }

    /// The descriptor as a little-endian number, when it is 1, 2, 4 or 8 bytes.
    pub fn value(&self) -> Option<u64> {
        match self.desc.len() {
            1 | 2 | 4 | 8 => {
                let mut b = [0u8; 8];
                b[..self.desc.len()].copy_from_slice(self.desc);
                Some(u64::from_le_bytes(b))
            }
            _ => None,
        }
    }
}

impl core::fmt::Display for XenNote<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} {} = ", self.n_type, self.type_name())?;
        let text = self.desc.strip_suffix(b"\0").unwrap_or(self.desc);
        // String notes (elfnote.h: XEN_VERSION, GUEST_OS, GUEST_VERSION, LOADER,
        // PAE_MODE, FEATURES) print as text even when 8 bytes long.
        let is_text = matches!(self.n_type, 5..=10) && self.desc.ends_with(b"\0");
        if let (Some(v), false) = (self.value(), is_text) {
            write!(f, "{v:#x}")
        } else if !text.is_empty() && text.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
            write!(f, "\"{}\"", String::from_utf8_lossy(text))
        } else {
            for b in self.desc {
                write!(f, "{b:02x}")?;
            }
            Ok(())
        }
    }
}

/// The "Xen" notes of every `PT_NOTE` segment.
fn xen_notes<'a>(bytes: &'a [u8], phdrs: &[ProgramHeader]) -> Result<Vec<XenNote<'a>>> {
    let mut notes = Vec::new();
    for (i, p) in phdrs.iter().enumerate().filter(|(_, p)| p.p_type == PT_NOTE) {
        // In bounds: checked by parse_elf.
        let seg = &bytes[p.p_offset as usize..(p.p_offset + p.p_filesz) as usize];
        let mut off = 0usize;
        while off < seg.len() {
            let bad = || anyhow!("program header {i} (NOTE): note at segment offset {off:#x} is truncated");
            let word = |o: usize| -> Option<u32> { Some(u32::from_le_bytes(seg.get(o..o + 4)?.try_into().ok()?)) };
            let namesz = word(off).ok_or_else(bad)? as usize;
            let descsz = word(off + 4).ok_or_else(bad)? as usize;
            let n_type = word(off + 8).ok_or_else(bad)?;
            let name_off = off + 12;
            let desc_off = name_off.checked_add(namesz.next_multiple_of(4)).ok_or_else(bad)?;
            let end = desc_off.checked_add(descsz.next_multiple_of(4)).ok_or_else(bad)?;
            let name = seg.get(name_off..name_off + namesz).ok_or_else(bad)?;
            let desc = seg.get(desc_off..desc_off + descsz).ok_or_else(bad)?;
            if name == b"Xen\0" || name == b"Xen" {
                notes.push(XenNote { n_type, desc });
            }
            off = end;
        }
    }
    Ok(notes)
}

/// The memdisk segment of an image.
#[derive(Clone, Copy, Debug)]
pub struct MemdiskSegment<'a> {
    /// Index of its program header.
    pub phdr_index: usize,
    /// Its file offset.
    pub file_offset: u64,
    /// Its bytes (as many as the image header says).
    pub bytes: &'a [u8],
}

/// What [`read_image`] found in an image (or a plain loader).
#[derive(Clone, Debug)]
pub struct ImageInfo<'a> {
    /// `e_type` (always `ET_EXEC` here).
    pub e_type: u16,
    /// `e_entry`.
    pub entry: u64,
    /// `e_phoff`.
    pub phoff: u64,
    /// The program headers, in file order.
    pub phdrs: Vec<ProgramHeader>,
    /// The "Xen" ELF notes.
    pub xen_notes: Vec<XenNote<'a>>,
    /// The image header.
    pub header: ImageHeader,
    /// File offset of the image header.
    pub header_offset: usize,
    /// The memdisk, when the header names one (`memdisk_len != 0`).
    pub memdisk: Option<MemdiskSegment<'a>>,
}

impl ImageInfo<'_> {
    /// The PVH entry point (`XEN_ELFNOTE_PHYS32_ENTRY`), if there is one.
    pub fn phys32_entry(&self) -> Option<u64> {
        self.note_value(XEN_ELFNOTE_PHYS32_ENTRY)
    }

    /// A numeric Xen note's value.
    fn note_value(&self, n_type: u32) -> Option<u64> {
        self.xen_notes.iter().find(|n| n.n_type == n_type).and_then(|n| n.value())
    }

    /// How a domain enters the image: PVH (`PHYS32_ENTRY`), else PV (`ENTRY`, with
    /// VIRT_BASE 0 so that it is also the physical address: rxen's pv-boot).
    pub fn entry(&self) -> Option<Entry> {
        if let Some(e) = self.phys32_entry() {
            return Some(Entry::Pvh(e));
        }
        let base = self.note_value(XEN_ELFNOTE_VIRT_BASE).unwrap_or(0);
        self.note_value(XEN_ELFNOTE_ENTRY).map(|e| Entry::Pv { entry: e, virt_base: base })
    }
}

/// `XEN_ELFNOTE_ENTRY`: the PV entry point (virtual).
pub const XEN_ELFNOTE_ENTRY: u32 = 1;
/// `XEN_ELFNOTE_VIRT_BASE`.
pub const XEN_ELFNOTE_VIRT_BASE: u32 = 3;

/// An image's entry: what `inspect` reports and `verify` checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// `type = "pvh"`: 32-bit entry at this physical address.
    Pvh(u64),
    /// `type = "pv"`: 64-bit entry at this virtual address.
    Pv { entry: u64, virt_base: u64 },
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Pvh(e) => write!(f, "PVH (xl type = \"pvh\"), 32-bit entry at {e:#x}"),
            Entry::Pv { entry, virt_base } => {
                write!(f, "PV (xl type = \"pv\"), 64-bit entry at {entry:#x}, VIRT_BASE {virt_base:#x}")
            }
        }
    }
}

impl ImageInfo<'_> {
    /// Does the memdisk match the header's checksum? `None` without a memdisk.
    pub fn checksum_ok(&self) -> Option<bool> {
        self.memdisk.map(|m| self.header.check(m.bytes).is_ok())
    }
}

/// Parse an image (or a plain loader): ELF header, program headers, Xen notes, the image
/// header and, when the header names one, the segment carrying the memdisk. The memdisk
/// checksum is *not* checked here (see [`ImageInfo::checksum_ok`], [`check_image`]).
pub fn read_image(image: &[u8]) -> Result<ImageInfo<'_>> {
    let elf = parse_elf(image)?;
    let header_offset = find_header(&elf)?;
    let header = read_header(image, header_offset)?;
    let xen_notes = xen_notes(image, &elf.phdrs)?;
    let memdisk = if header.memdisk_len == 0 {
        None
    } else {
        let (i, p) = elf
            .phdrs
            .iter()
            .enumerate()
            .find(|(_, p)| p.p_type == PT_LOAD && p.p_paddr == header.memdisk_paddr)
            .ok_or_else(|| {
                anyhow!(
                    "the image header puts the memdisk at {:#x} but no PT_LOAD segment is loaded there",
                    header.memdisk_paddr
                )
            })?;
        ensure!(
            p.p_filesz == header.memdisk_len,
            "the memdisk segment (program header {i}) holds {} bytes but the image header says {}",
            p.p_filesz,
            header.memdisk_len
        );
        let bytes = &image[p.p_offset as usize..(p.p_offset + p.p_filesz) as usize];
        Some(MemdiskSegment { phdr_index: i, file_offset: p.p_offset, bytes })
    };
    Ok(ImageInfo {
        e_type: elf.header.e_type,
        entry: elf.header.e_entry,
        phoff: elf.header.e_phoff,
        phdrs: elf.phdrs,
        xen_notes,
        header,
        header_offset,
        memdisk,
    })
}

/// The layout checks `verify` makes beyond [`read_image`]: a PVH entry point inside an
/// executable segment, `PT_LOAD` segments that do not overlap, the memdisk segment above
/// the loader, aligned, below 4 GiB, and its checksum.
pub fn check_image(info: &ImageInfo<'_>) -> Result<()> {
    let (entry, kind) = match info.entry() {
        Some(Entry::Pvh(e)) => (e, "PVH"),
        Some(Entry::Pv { entry, virt_base: 0 }) => (entry, "PV"),
        Some(Entry::Pv { virt_base, .. }) => {
            bail!("a PV image with VIRT_BASE {virt_base:#x}: rxen images are loaded one to one (VIRT_BASE 0)")
        }
        None => bail!(
            "no Xen PHYS32_ENTRY note (type {XEN_ELFNOTE_PHYS32_ENTRY}) or ENTRY note (type {XEN_ELFNOTE_ENTRY}): \
             not a PVH or PV image"
        ),
    };
    let loads: Vec<(usize, &ProgramHeader)> =
        info.phdrs.iter().enumerate().filter(|(_, p)| p.p_type == PT_LOAD).collect();
    ensure!(
        loads.iter().any(|(_, p)| p.p_flags & PF_X != 0 && p.p_paddr <= entry && entry < p.p_paddr + p.p_filesz),
        "the {kind} entry point {entry:#x} is not inside an executable PT_LOAD segment"
    );
    for (n, (i, a)) in loads.iter().enumerate() {
        ensure!(a.p_paddr + a.p_memsz <= PHYS_LIMIT, "program header {i} (LOAD) reaches past 4 GiB");
        for (j, b) in &loads[n + 1..] {
            let overlap = a.p_paddr < b.p_paddr + b.p_memsz && b.p_paddr < a.p_paddr + a.p_memsz;
            ensure!(
                !overlap || a.p_memsz == 0 || b.p_memsz == 0,
                "program headers {i} and {j} (LOAD) overlap in physical memory"
            );
        }
    }
    if let Some(md) = &info.memdisk {
        let p = &info.phdrs[md.phdr_index];
        let others = loads.iter().filter(|(i, _)| *i != md.phdr_index).map(|(_, p)| *p);
        let loader_end = loads_end(others);
        ensure!(
            p.p_paddr >= loader_end,
            "the memdisk at {:#x} is not above the loader (which ends at {loader_end:#x})",
            p.p_paddr
        );
        ensure!(
            p.p_paddr.is_multiple_of(MEMDISK_ALIGN),
            "the memdisk at {:#x} is not {MEMDISK_ALIGN:#x}-aligned",
            p.p_paddr
        );
        ensure!(p.p_filesz == p.p_memsz, "the memdisk segment's p_memsz differs from its p_filesz");
        info.header.check(md.bytes).map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}

/// "LOAD", "NOTE", ... for a `p_type`.
pub fn type_name(p_type: u32) -> String {
    use goblin::elf::program_header::*;
    match p_type {
        PT_NULL => "NULL".into(),
        PT_LOAD => "LOAD".into(),
        PT_DYNAMIC => "DYNAMIC".into(),
        PT_INTERP => "INTERP".into(),
        PT_NOTE => "NOTE".into(),
        PT_PHDR => "PHDR".into(),
        PT_TLS => "TLS".into(),
        PT_GNU_STACK => "GNU_STACK".into(),
        PT_GNU_RELRO => "GNU_RELRO".into(),
        PT_GNU_EH_FRAME => "GNU_EH_FRAME".into(),
        PT_GNU_PROPERTY => "GNU_PROPERTY".into(),
        t => format!("{t:#x}"),
    }
}

/// "RWX"-style flags.
pub fn flags_str(flags: u32) -> String {
    let mut s = String::new();
    s.push(if flags & PF_R != 0 { 'R' } else { '-' });
    s.push(if flags & PF_W != 0 { 'W' } else { '-' });
    s.push(if flags & PF_X != 0 { 'X' } else { '-' });
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testelf;

    #[test]
    fn align() {
        assert_eq!(align_up(0, 0x1000), Some(0));
        assert_eq!(align_up(1, 0x1000), Some(0x1000));
        assert_eq!(align_up(0x1000, 0x1000), Some(0x1000));
        assert_eq!(align_up(u64::MAX, 8), None);
        assert_eq!(size_str(1 << 30), "1 GiB");
        assert_eq!(size_str(4096), "4 KiB");
        assert_eq!(size_str(1000), "1000 bytes");
        assert_eq!(size_str(0), "0 bytes");
    }

    #[test]
    fn layout() {
        let loader = testelf::loader_elf();
        let md: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let img = build_image(&loader, &md).unwrap();
        // The loader is intact except e_phoff/e_phnum and the header.
        let info0 = read_image(&loader).unwrap();
        assert!(info0.memdisk.is_none());
        let info = read_image(&img).unwrap();
        let hoff = info.header_offset;
        assert_eq!(hoff, info0.header_offset);
        for (i, (a, b)) in loader.iter().zip(&img).enumerate() {
            if !(OFF_E_PHOFF..OFF_E_PHOFF + 8).contains(&i)
                && !(OFF_E_PHNUM..OFF_E_PHNUM + 2).contains(&i)
                && !(hoff + 16..hoff + 64).contains(&i)
            {
                assert_eq!(a, b, "byte {i:#x} changed");
            }
        }
        let md_off = align_up(loader.len() as u64, 0x1000).unwrap();
        assert!(img[loader.len()..md_off as usize].iter().all(|&b| b == 0));
        let seg = info.memdisk.unwrap();
        assert_eq!(seg.file_offset, md_off);
        assert_eq!(seg.bytes, &md[..]);
        assert_eq!(info.phoff, align_up(md_off + 5000, 8).unwrap());
        assert_eq!(info.phdrs.len(), info0.phdrs.len() + 1);
        assert_eq!(&info.phdrs[..info0.phdrs.len()], &info0.phdrs[..]);
        let p = info.phdrs.last().unwrap();
        assert_eq!(
            (p.p_type, p.p_flags, p.p_offset, p.p_filesz, p.p_memsz, p.p_align),
            (PT_LOAD, PF_R, md_off, 5000, 5000, 0x1000)
        );
        assert_eq!(p.p_paddr, p.p_vaddr);
        assert_eq!(p.p_paddr, align_up(loads_end(&info0.phdrs), 0x1000).unwrap());
        assert_eq!(info.header.memdisk_paddr, p.p_paddr);
        assert_eq!(info.header.memdisk_len, 5000);
        assert_eq!(info.header.sha256, rxen_memdisk::sha256(&md));
        assert_eq!(info.checksum_ok(), Some(true));
        assert_eq!(info.phys32_entry(), Some(testelf::ENTRY));
        check_image(&info).unwrap();
        assert_eq!(img.len() as u64, info.phoff + 56 * info.phdrs.len() as u64);
    }

    #[test]
    fn refuses_an_image() {
        let img = build_image(&testelf::loader_elf(), b"x").unwrap();
        let e = build_image(&img, b"y").unwrap_err().to_string();
        assert!(e.starts_with("already an rxen image"), "{e}");
        assert!(e.contains("build from the plain pvh-boot"), "{e}");
    }

    #[test]
    fn oversized_memdisk() {
        let loader = testelf::loader_elf();
        let e = build_image_with_limit(&loader, &[0u8; 4097], 4096).unwrap_err().to_string();
        assert_eq!(e, "memdisk too large: 4097 bytes (limit 4 KiB)");
        build_image_with_limit(&loader, &[0u8; 4096], 4096).unwrap();
        assert_eq!(
            check_memdisk_size(MEMDISK_LIMIT + 1, MEMDISK_LIMIT).unwrap_err().to_string(),
            format!("memdisk too large: {} bytes (limit 1 GiB)", MEMDISK_LIMIT + 1)
        );
        check_memdisk_size(MEMDISK_LIMIT, MEMDISK_LIMIT).unwrap();
    }

    #[test]
    fn refuses_bad_loaders() {
        let e = |b: &[u8]| build_image(b, b"x").unwrap_err().to_string();
        assert_eq!(e(b"hello"), "not an ELF file");
        let mut l = testelf::loader_elf();
        l[EI_CLASS] = 1;
        assert!(e(&l).contains("not an ELF64"));
        let mut l = testelf::loader_elf();
        l[16] = 3; // ET_DYN
        assert!(e(&l).contains("not ET_EXEC"), "{}", e(&l));
        let mut l = testelf::loader_elf();
        let h = testelf::HEADER_OFFSET;
        l[h] = b'X';
        assert!(e(&l).contains("magic"), "{}", e(&l));
        let l = testelf::loader_elf();
        let cut = &l[..testelf::HEADER_OFFSET + 50];
        assert!(e(cut).contains("past the end of the file"), "{}", e(cut));
        // Loader segments ending near 4 GiB: no room for the memdisk.
        let mut l = testelf::loader_elf();
        let memsz_off = testelf::PHOFF + 40;
        l[memsz_off..memsz_off + 8].copy_from_slice(&(0xffff_0000u64 - 0x10_0000).to_le_bytes());
        let msg = build_image(&l, &[0u8; 0x20000]).unwrap_err().to_string();
        assert!(msg.contains("do not fit below 4 GiB"), "{msg}");
    }

    #[test]
    fn detects_corruption() {
        let mut img = build_image(&testelf::loader_elf(), &[7u8; 3000]).unwrap();
        let off = read_image(&img).unwrap().memdisk.unwrap().file_offset as usize;
        img[off + 100] ^= 1;
        let info = read_image(&img).unwrap();
        assert_eq!(info.checksum_ok(), Some(false));
        let e = check_image(&info).unwrap_err().to_string();
        assert!(e.contains("sha256"), "{e}");
    }
}
