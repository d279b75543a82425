// SPDX-License-Identifier: MIT OR Apache-2.0
//! The DOS/MBR partition table and its extended partitions.
//!
//! Layout of LBA 0 (the de-facto IBM PC format, as also summarised in the UEFI spec,
//! section 5.2.1 "Legacy Master Boot Record"):
//!
//! | bytes     | field                                                  |
//! |-----------|--------------------------------------------------------|
//! | 440..444  | disk signature (u32 LE)                                |
//! | 446..510  | four 16-byte partition records                         |
//! | 510..512  | boot signature `55 AA`                                 |
//!
//! A record: boot indicator (0x00 / 0x80), CHS start (3), system id (1), CHS end (3),
//! starting LBA (u32 LE), size in blocks (u32 LE). The CHS fields are ignored: every tool
//! since the 1990s writes the LBA fields, and CHS cannot address disks past 8 GiB.
//!
//! An extended partition (system id 0x05, 0x0F or 0x85) holds a chain of extended boot
//! records (EBRs), each laid out like an MBR. In each EBR, the first record describes a
//! logical partition, its start relative to *that EBR*; the second links to the next EBR,
//! its start relative to the *start of the extended partition*. The chain is written by
//! whoever owns the disk, so we cap its length and remember every EBR we visited.
//! LBAs and sizes are in the device's logical blocks (4096 on a 4Kn disk).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::{Partition, Scheme, Table, warn};
use crate::block::BlockDevice;

/// System id of a GPT protective MBR entry (UEFI spec, section 5.2.3).
pub const TYPE_GPT_PROTECTIVE: u8 = 0xee;

/// Most logical partitions we follow across all extended partitions: far more than any
/// real disk has, small enough that a crafted chain costs little time.
pub const MAX_LOGICAL: usize = 128;

/// Offset of the four partition records.
const RECORDS: usize = 446;

/// DOS (0x05), Windows LBA (0x0F) and Linux (0x85) extended partitions.
pub fn is_extended(sys: u8) -> bool {
    matches!(sys, 0x05 | 0x0f | 0x85)
}

/// One 16-byte partition record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub boot: u8,
    pub sys: u8,
    pub start: u32,
    pub size: u32,
}

impl Record {
    fn parse(b: &[u8]) -> Record {
        Record {
            boot: b[0],
            sys: b[4],
            start: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            size: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        }
    }

    /// Unused slot: system id 0 or no blocks.
    pub fn is_empty(&self) -> bool {
        self.sys == 0 || self.size == 0
    }
}

/// The parsed first 512 bytes of an MBR or EBR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mbr {
    pub signature: u32,
    pub records: [Record; 4],
    /// The sector starts like a FAT/NTFS boot sector (x86 jump, sane bytes-per-sector).
    boot_sector_like: bool,
}

impl Mbr {
    /// Parse `sector` (at least 512 bytes); `None` without the `55 AA` boot signature.
    pub fn parse(sector: &[u8]) -> Option<Mbr> {
        let s = sector.get(..512)?;
        if s[510] != 0x55 || s[511] != 0xaa {
            return None;
        }
        let mut records = [Record::default(); 4];
        for (i, r) in records.iter_mut().enumerate() {
            let off = RECORDS + 16 * i;
            *r = Record::parse(&s[off..off + 16]);
        }
        let bps = u16::from_le_bytes([s[11], s[12]]);
        let boot_sector_like = matches!(s[0], 0xeb | 0xe9) && bps.is_power_of_two() && (512..=4096).contains(&bps);
        Some(Mbr { signature: u32::from_le_bytes([s[440], s[441], s[442], s[443]]), records, boot_sector_like })
    }

    /// Whether this is a partition table rather than the boot sector of a filesystem that
    /// fills the disk (FAT and NTFS also end their first sector with `55 AA`). A table's
    /// boot indicators are 0x00 or 0x80; a boot sector's bytes 446..510 are code and rarely
    /// are. A FAT-like sector with no used records is a filesystem too.
    pub fn looks_like_table(&self) -> bool {
        if self.records.iter().any(|r| r.boot != 0 && r.boot != 0x80) {
            return false;
        }
        !(self.boot_sector_like && self.records.iter().all(Record::is_empty))
    }

    /// A type 0xEE record is present: the disk is GPT (UEFI spec, section 5.2.3).
    pub fn has_protective(&self) -> bool {
        self.records.iter().any(|r| r.sys == TYPE_GPT_PROTECTIVE)
    }

    /// 0xEE plus other used records: a hybrid MBR (UEFI spec 5.2.3 forbids it, tools
    /// such as gdisk still make them for old firmware).
    pub fn is_hybrid(&self) -> bool {
        self.has_protective() && self.records.iter().any(|r| !r.is_empty() && r.sys != TYPE_GPT_PROTECTIVE)
    }
}

/// Fill `table` from an MBR already read from LBA 0, following extended partitions.
pub fn scan<D: BlockDevice + ?Sized>(dev: &mut D, mbr: &Mbr, table: &mut Table) {
    let disk = dev.num_blocks();
    let mut next_logical = 5u32;
    let mut visited: Vec<u64> = Vec::new();
    for (slot, r) in mbr.records.iter().enumerate() {
        let index = slot as u32 + 1;
        if r.is_empty() {
            continue;
        }
        if is_extended(r.sys) {
            let start = u64::from(r.start);
            let size = u64::from(r.size);
            if start == 0 || start >= disk {
                warn(table, format!("msdos{index}: extended partition at LBA {start} is outside the disk; skipped"));
                continue;
            }
            // Clip the container to the disk: the chain is checked link by link anyway.
            let size = size.min(disk - start);
            walk_chain(dev, start, size, &mut next_logical, &mut visited, mbr.signature, table);
            continue;
        }
        push(table, dev, index, r.sys, u64::from(r.start), u64::from(r.size), mbr.signature);
    }
}

/// Add a data partition if it lies inside the disk, else warn.
fn push<D: BlockDevice + ?Sized>(t: &mut Table, dev: &D, index: u32, sys: u8, start: u64, size: u64, sig: u32) {
    let disk = dev.num_blocks();
    if size == 0 {
        return;
    }
    match start.checked_add(size) {
        Some(end) if start > 0 && end <= disk => t.partitions.push(Partition {
            scheme: Scheme::Mbr,
            index,
            start_lba: start,
            num_blocks: size,
            mbr_type: sys,
            type_guid: None,
            part_uuid: None,
            label: None,
            mbr_signature: Some(sig),
        }),
        _ if start == 0 => warn(t, format!("msdos{index}: starts at LBA 0, on the partition table itself; skipped")),
        _ => warn(t, format!("msdos{index}: blocks {start}+{size} are not inside the disk ({disk} blocks); skipped")),
    }
}

/// What an EBR chain that ends early keeps: the logical partitions of this chain (numbered
/// from `first`) already in `table`, e.g. "keeping the 3 logical partitions msdos5..msdos7
/// found before it".
fn kept(table: &Table, first: u32) -> String {
    let mut mine = table.partitions.iter().filter(|p| p.scheme == Scheme::Mbr && p.index >= first).map(|p| p.index);
    let (n, lo, hi) = match mine.next() {
        None => return String::from("no logical partition found before it"),
        Some(i) => mine.fold((1, i, i), |(n, lo, hi), j| (n + 1, lo.min(j), hi.max(j))),
    };
    match n {
        1 => format!("keeping the logical partition msdos{lo} found before it"),
        _ => format!("keeping the {n} logical partitions msdos{lo}..msdos{hi} found before it"),
    }
}

/// Follow the EBR chain of the extended partition at `base` (`size` blocks, already
/// clipped to the disk). Whatever ends the chain early (a loop, a link outside the
/// extended partition or past the disk, an unreadable EBR, the [`MAX_LOGICAL`] budget)
/// keeps the logical partitions found before it and says so.
fn walk_chain<D: BlockDevice + ?Sized>(
    dev: &mut D,
    base: u64,
    size: u64,
    next_logical: &mut u32,
    visited: &mut Vec<u64>,
    sig: u32,
    table: &mut Table,
) {
    let mut sector = vec![0u8; dev.block_size() as usize];
    let disk = dev.num_blocks();
    let ext_end = base.saturating_add(size);
    let first_logical = *next_logical;
    if visited.contains(&base) {
        warn(
            table,
            format!("extended partition at LBA {base}: its EBRs were already read through another one; skipped"),
        );
        return;
    }
    let mut ebr = base;
    // Each pass reads one EBR and pushes `ebr` on `visited`; the pass stops at
    // MAX_LOGICAL EBRs over all extended partitions, so the loop is bounded.
    loop {
        if visited.len() >= MAX_LOGICAL {
            let msg = format!(
                "EBR chain of the extended partition at LBA {base}: longer than {MAX_LOGICAL} EBRs; stopped at LBA {ebr}, {}",
                kept(table, first_logical)
            );
            warn(table, msg);
            return;
        }
        visited.push(ebr);
        if let Err(e) = dev.read_blocks(ebr, &mut sector) {
            let msg = format!("EBR at LBA {ebr}: {e}; chain stopped, {}", kept(table, first_logical));
            warn(table, msg);
            return;
        }
        let Some(m) = Mbr::parse(&sector) else {
            let msg = format!("EBR at LBA {ebr} has no 55AA signature; chain stopped, {}", kept(table, first_logical));
            warn(table, msg);
            return;
        };
        // Only the first two records are used by EBRs; the other two are often garbage.
        let mut link = None;
        for r in &m.records[..2] {
            if r.is_empty() {
                continue;
            }
            if is_extended(r.sys) {
                link.get_or_insert(*r);
                continue;
            }
            let index = *next_logical;
            *next_logical = next_logical.saturating_add(1);
            match ebr.checked_add(u64::from(r.start)) {
                // A logical partition starting at its own EBR would overwrite it.
                Some(start) if r.start != 0 => {
                    if start.saturating_add(u64::from(r.size)) > ext_end {
                        warn(table, format!("msdos{index}: reaches past its extended partition"));
                    }
                    push(table, dev, index, r.sys, start, u64::from(r.size), sig);
                }
                _ => warn(table, format!("msdos{index}: starts at its own EBR (LBA {ebr}); skipped")),
            }
        }
        let Some(link) = link else { return };
        // The link is relative to the start of the extended partition: 0 is its first EBR.
        let next = base.saturating_add(u64::from(link.start));
        if visited.contains(&next) {
            let what = if next == ebr { String::from("itself") } else { format!("the earlier EBR at LBA {next}") };
            let msg = format!(
                "EBR chain of the extended partition at LBA {base}: EBR at LBA {ebr} links back to {what} (a loop); \
                 chain stopped, {}",
                kept(table, first_logical)
            );
            warn(table, msg);
            return;
        }
        if next >= ext_end {
            let msg = if next >= disk {
                format!(
                    "EBR at LBA {ebr} links to LBA {next}, past the end of the disk ({disk} blocks); chain stopped, {}",
                    kept(table, first_logical)
                )
            } else {
                format!(
                    "EBR at LBA {ebr} links to LBA {next}, outside its extended partition (LBA {base}..{ext_end}); \
                     chain stopped, {}",
                    kept(table, first_logical)
                )
            };
            warn(table, msg);
            return;
        }
        ebr = next;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use super::MAX_LOGICAL;
    use crate::block::SliceDisk;

    #[test]
    fn primary_only() {
        let mut img = vec![0u8; 512 * 4096];
        mbr_record(&mut img, 0, 0, 0x83, 2048, 1024);
        mbr_record(&mut img, 2, 0x80, 0x0c, 3072, 1024);
        set_mbr_sig(&mut img, 0xdead_beef);
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        assert_eq!(t.scheme, Some(Scheme::Mbr));
        assert_eq!(t.mbr_signature, Some(0xdead_beef));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.partitions.len(), 2);
        let p = &t.partitions[1];
        assert_eq!((p.name().as_str(), p.start_lba, p.num_blocks, p.mbr_type), ("msdos3", 3072, 1024, 0x0c));
        assert_eq!(p.part_uuid_string().as_deref(), Some("deadbeef-03"));
        assert_eq!(t.get("msdos1").unwrap().start_lba, 2048);
        assert!(t.get("msdos2").is_none());
        assert_eq!(t.by_part_uuid("DEADBEEF-01").unwrap().index, 1);
    }

    #[test]
    fn logical_chain() {
        let mut img = vec![0u8; 512 * 8192];
        mbr_record(&mut img, 0, 0, 0x83, 2048, 1024);
        mbr_record(&mut img, 1, 0, 0x0f, 4096, 4096);
        // EBR 1 at 4096: logical at +2048 (abs 6144) size 512, link to base+1024 (abs 5120).
        ebr(&mut img, 512, 4096, (0x83, 2048, 512), Some((0x05, 1024, 2048)));
        // EBR 2 at 5120: logical at +100 (abs 5220) size 300, end of chain.
        ebr(&mut img, 512, 5120, (0x82, 100, 300), None);
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let got: Vec<_> = t.partitions.iter().map(|p| (p.name(), p.start_lba, p.num_blocks, p.mbr_type)).collect();
        assert_eq!(
            got,
            [
                ("msdos1".into(), 2048, 1024, 0x83),
                ("msdos5".into(), 6144, 512, 0x83),
                ("msdos6".into(), 5220, 300, 0x82)
            ]
        );
        // The extended container itself is not a partition anyone boots from.
        assert!(t.get("msdos2").is_none());
    }

    #[test]
    fn ebr_loop_terminates() {
        let mut img = vec![0u8; 512 * 8192];
        mbr_record(&mut img, 0, 0, 0x05, 4096, 4096);
        // Two EBRs linking to each other (a link of 0 is the extended partition's start,
        // the first EBR).
        ebr(&mut img, 512, 4096, (0x83, 10, 10), Some((0x05, 1024, 100)));
        ebr(&mut img, 512, 5120, (0x83, 10, 10), Some((0x05, 0x0, 100)));
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        assert_eq!(t.partitions.len(), 2);
        assert!(t.warnings.iter().any(|w| w.contains("links back to the earlier EBR at LBA 4096")), "{:?}", t.warnings);
        // EBR 2 links to itself.
        ebr(&mut img, 512, 5120, (0x83, 10, 10), Some((0x05, 1024, 100)));
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        assert_eq!(t.partitions.len(), 2);
        assert!(t.warnings.iter().any(|w| w.contains("links back to itself")), "{:?}", t.warnings);
    }

    #[test]
    fn long_chain_is_capped() {
        let n = 300u64;
        let mut img = vec![0u8; 512 * (16 + 2 * n as usize)];
        mbr_record(&mut img, 0, 0, 0x85, 8, (2 * n + 4) as u32);
        for i in 0..n {
            let next = if i + 1 < n { Some((0x05, (2 * (i + 1)) as u32, 2)) } else { None };
            ebr(&mut img, 512, 8 + 2 * i, (0x83, 1, 1), next);
        }
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        assert_eq!(t.partitions.len(), MAX_LOGICAL);
        assert_eq!(t.partitions.last().unwrap().index, 4 + MAX_LOGICAL as u32);
        assert_eq!(
            t.warnings,
            [format!(
                "EBR chain of the extended partition at LBA 8: longer than {MAX_LOGICAL} EBRs; stopped at LBA {}, \
                 keeping the {MAX_LOGICAL} logical partitions msdos5..msdos{} found before it",
                8 + 2 * MAX_LOGICAL,
                4 + MAX_LOGICAL
            )]
        );
    }

    #[test]
    fn past_the_disk_and_empty() {
        let mut img = vec![0u8; 512 * 100];
        mbr_record(&mut img, 0, 0, 0x83, 10, 0); // zero size: empty
        mbr_record(&mut img, 1, 0, 0x83, 50, 60); // ends past the disk
        mbr_record(&mut img, 2, 0, 0x83, 200, 1); // starts past the disk
        mbr_record(&mut img, 3, 0, 0x83, 0xffff_ffff, 0xffff_ffff);
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        assert_eq!(t.scheme, Some(Scheme::Mbr));
        assert!(t.partitions.is_empty());
        assert_eq!(t.warnings.len(), 3, "{:?}", t.warnings);
    }

    #[test]
    fn no_table_and_fat_boot_sector() {
        let img = vec![0u8; 512 * 16];
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        assert_eq!(t, Table::default());
        // A FAT boot sector on the whole disk: jump, 512 bytes/sector, code where records are.
        let mut fat = vec![0u8; 512 * 16];
        fat[0] = 0xeb;
        fat[11..13].copy_from_slice(&512u16.to_le_bytes());
        fat[510] = 0x55;
        fat[511] = 0xaa;
        assert_eq!(scan(&mut SliceDisk::new(&fat, 512)).unwrap().scheme, None);
        fat[446] = 0x31; // code bytes as a boot indicator
        fat[450] = 0x83;
        assert_eq!(scan(&mut SliceDisk::new(&fat, 512)).unwrap().scheme, None);
    }

    #[test]
    fn mbr_on_4k_blocks() {
        let mut img = vec![0u8; 4096 * 64];
        mbr_record(&mut img, 0, 0, 0x83, 8, 32);
        let t = scan(&mut SliceDisk::new(&img, 4096)).unwrap();
        assert_eq!((t.partitions[0].start_lba, t.partitions[0].num_blocks), (8, 32));
    }
}
