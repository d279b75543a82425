// SPDX-License-Identifier: MIT OR Apache-2.0
//! The GUID Partition Table, as specified in the UEFI Specification (2.10), chapter 5
//! "GUID Partition Table (GPT) Disk Layout".
//!
//! Header (section 5.3.2, table 5-5), at LBA 1 and, as a backup, normally at the last LBA:
//!
//! | bytes  | field                                                          |
//! |--------|----------------------------------------------------------------|
//! | 0..8   | Signature `"EFI PART"`                                          |
//! | 8..12  | Revision                                                       |
//! | 12..16 | HeaderSize (92 ..= block size)                                 |
//! | 16..20 | HeaderCRC32 over HeaderSize bytes, this field taken as zero    |
//! | 24..32 | MyLBA: where this header is                                    |
//! | 32..40 | AlternateLBA: where the other header is                        |
//! | 40..48 | FirstUsableLBA                                                 |
//! | 48..56 | LastUsableLBA (inclusive)                                      |
//! | 56..72 | DiskGUID                                                       |
//! | 72..80 | PartitionEntryLBA                                              |
//! | 80..84 | NumberOfPartitionEntries                                       |
//! | 84..88 | SizeOfPartitionEntry (128 × 2^n)                               |
//! | 88..92 | PartitionEntryArrayCRC32                                       |
//!
//! Entry (section 5.3.3, table 5-6): PartitionTypeGUID (16, all zero = unused),
//! UniquePartitionGUID (16), StartingLBA (8), EndingLBA (8, inclusive), Attributes (8),
//! PartitionName (72 bytes of UTF-16LE).
//!
//! Section 5.3.2 says how firmware validates a header: signature, header CRC, MyLBA, entry
//! array CRC; if the primary fails, the backup is checked and used. We do the same, plus
//! bounds on everything that decides how much we read, since the disk is untrusted.

use alloc::string::String;
use alloc::vec;
use core::fmt;

use super::{Partition, Scheme, Table, warn};
use crate::block::{BlockDevice, BlockError};
use crate::crc::crc32;

/// `"EFI PART"`.
pub const SIGNATURE: [u8; 8] = *b"EFI PART";
/// Smallest header: the fields above (section 5.3.2).
pub const MIN_HEADER_SIZE: u32 = 92;
/// Smallest entry (section 5.3.3).
pub const MIN_ENTRY_SIZE: u32 = 128;
/// Most entries we accept: 32 times the usual 128, far beyond any partitioning tool.
pub const MAX_ENTRIES: u32 = 4096;
/// Most entry-array bytes we read (4096 entries of 256 bytes).
pub const MAX_ARRAY_BYTES: u64 = 1024 * 1024;

/// Why one GPT header (with its entry array) was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GptFault {
    /// The header or its entry array could not be read.
    Io(BlockError),
    /// No `"EFI PART"` signature.
    Signature,
    /// HeaderSize below 92 or above the block size.
    HeaderSize(u32),
    /// HeaderCRC32 does not match.
    HeaderCrc,
    /// MyLBA is not where we found the header.
    MyLba { expected: u64, found: u64 },
    /// SizeOfPartitionEntry below 128, not a multiple of 8, or too large.
    EntrySize(u32),
    /// NumberOfPartitionEntries above [`MAX_ENTRIES`] / [`MAX_ARRAY_BYTES`].
    EntryCount(u32),
    /// FirstUsableLBA..=LastUsableLBA is empty, reaches past the disk, or covers the header.
    UsableRange { first: u64, last: u64 },
    /// The entry array is outside the disk or overlaps the usable blocks.
    EntryArray { lba: u64 },
    /// PartitionEntryArrayCRC32 does not match.
    EntriesCrc,
    /// The disk is too small to hold a backup header.
    NoBackup,
}

impl fmt::Display for GptFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GptFault::Io(e) => write!(f, "unreadable ({e})"),
            GptFault::Signature => f.write_str("no EFI PART signature"),
            GptFault::HeaderSize(n) => write!(f, "bad header size {n}"),
            GptFault::HeaderCrc => f.write_str("header CRC mismatch"),
            GptFault::MyLba { expected, found } => write!(f, "header says it is at LBA {found}, found at {expected}"),
            GptFault::EntrySize(n) => write!(f, "bad partition entry size {n}"),
            GptFault::EntryCount(n) => write!(f, "too many partition entries ({n})"),
            GptFault::UsableRange { first, last } => write!(f, "bad usable LBA range {first}..={last}"),
            GptFault::EntryArray { lba } => write!(f, "partition entry array at LBA {lba} is misplaced"),
            GptFault::EntriesCrc => f.write_str("partition entry array CRC mismatch"),
            GptFault::NoBackup => f.write_str("disk too small for a backup header"),
        }
    }
}

/// A validated header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable: u64,
    pub last_usable: u64,
    pub disk_guid: [u8; 16],
    pub entries_lba: u64,
    pub num_entries: u32,
    pub entry_size: u32,
    pub entries_crc: u32,
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn le64(b: &[u8], off: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(v)
}

fn guid(b: &[u8], off: usize) -> [u8; 16] {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[off..off + 16]);
    g
}

impl Header {
    /// Validate the header in `block` (one whole block, at least 92 bytes), read from
    /// `lba` of a disk of `disk_blocks` blocks.
    pub fn parse(block: &[u8], lba: u64, disk_blocks: u64) -> Result<Header, GptFault> {
        if block.len() < MIN_HEADER_SIZE as usize || block[..8] != SIGNATURE {
            return Err(GptFault::Signature);
        }
        let size = le32(block, 12);
        if size < MIN_HEADER_SIZE || size as usize > block.len() {
            return Err(GptFault::HeaderSize(size));
        }
        let stored = le32(block, 16);
        let mut copy = [0u8; 512];
        // Header sizes above 512 are legal but unheard of; CRC them without a big buffer.
        let crc = if size as usize <= copy.len() {
            let c = &mut copy[..size as usize];
            c.copy_from_slice(&block[..size as usize]);
            c[16..20].fill(0);
            crc32(c)
        } else {
            let mut v = block[..size as usize].to_vec();
            v[16..20].fill(0);
            crc32(&v)
        };
        if crc != stored {
            return Err(GptFault::HeaderCrc);
        }
        let h = Header {
            my_lba: le64(block, 24),
            alternate_lba: le64(block, 32),
            first_usable: le64(block, 40),
            last_usable: le64(block, 48),
            disk_guid: guid(block, 56),
            entries_lba: le64(block, 72),
            num_entries: le32(block, 80),
            entry_size: le32(block, 84),
            entries_crc: le32(block, 88),
        };
        if h.my_lba != lba {
            return Err(GptFault::MyLba { expected: lba, found: h.my_lba });
        }
        if h.entry_size < MIN_ENTRY_SIZE || !h.entry_size.is_multiple_of(8) || u64::from(h.entry_size) > MAX_ARRAY_BYTES
        {
            return Err(GptFault::EntrySize(h.entry_size));
        }
        if h.num_entries > MAX_ENTRIES || h.array_bytes() > MAX_ARRAY_BYTES {
            return Err(GptFault::EntryCount(h.num_entries));
        }
        let (first, last) = (h.first_usable, h.last_usable);
        if first > last || last >= disk_blocks || (first..=last).contains(&lba) {
            return Err(GptFault::UsableRange { first, last });
        }
        Ok(h)
    }

    /// Bytes of the entry array (fits easily: both factors are bounded by `parse`).
    pub fn array_bytes(&self) -> u64 {
        u64::from(self.num_entries) * u64::from(self.entry_size)
    }

    /// Read the entry array and check its CRC and placement; returns the raw array.
    fn read_entries<D: BlockDevice + ?Sized>(&self, dev: &mut D) -> Result<vec::Vec<u8>, GptFault> {
        let bs = u64::from(dev.block_size());
        let bytes = self.array_bytes();
        let blocks = bytes.div_ceil(bs);
        let end = self.entries_lba.checked_add(blocks).ok_or(GptFault::EntryArray { lba: self.entries_lba })?;
        let overlaps_usable = blocks > 0 && self.entries_lba <= self.last_usable && end > self.first_usable;
        let overlaps_header = (self.entries_lba..end).contains(&self.my_lba);
        if self.entries_lba == 0 || end > dev.num_blocks() || overlaps_usable || overlaps_header {
            return Err(GptFault::EntryArray { lba: self.entries_lba });
        }
        // `blocks * bs` is at most MAX_ARRAY_BYTES rounded up to a block.
        let mut buf = vec![0u8; (blocks * bs) as usize];
        dev.read_blocks(self.entries_lba, &mut buf).map_err(GptFault::Io)?;
        buf.truncate(bytes as usize);
        if crc32(&buf) != self.entries_crc {
            return Err(GptFault::EntriesCrc);
        }
        Ok(buf)
    }
}

/// Read and validate the header at `lba` and its entry array.
fn load<D: BlockDevice + ?Sized>(dev: &mut D, lba: u64) -> Result<(Header, vec::Vec<u8>), GptFault> {
    let mut block = vec![0u8; dev.block_size() as usize];
    dev.read_blocks(lba, &mut block).map_err(GptFault::Io)?;
    let h = Header::parse(&block, lba, dev.num_blocks())?;
    let entries = h.read_entries(dev)?;
    Ok((h, entries))
}

/// Where the primary header says the backup is, if it is readable enough to say so: the
/// signature must be there and the LBA plausible. Otherwise the spec's default, the last
/// block of the disk.
fn backup_lba<D: BlockDevice + ?Sized>(dev: &mut D) -> Option<u64> {
    let mut block = vec![0u8; dev.block_size() as usize];
    dev.read_blocks(1, &mut block).ok()?;
    if block[..8] != SIGNATURE {
        return None;
    }
    let alt = le64(&block, 32);
    (alt > 1 && alt < dev.num_blocks()).then_some(alt)
}

/// Fill `table` from the GPT of `dev` (whose LBA 0 holds a protective MBR).
pub fn scan<D: BlockDevice + ?Sized>(dev: &mut D, table: &mut Table) -> Result<(), super::PartError> {
    let disk = dev.num_blocks();
    let (header, entries) = match load(dev, 1) {
        Ok(v) => v,
        Err(primary) => {
            let last = disk.checked_sub(1).filter(|&l| l > 1);
            let named = backup_lba(dev);
            // Try where the primary points first, then the end of the disk.
            let mut tried = None;
            let mut result = Err(GptFault::NoBackup);
            for lba in [named, last].into_iter().flatten() {
                if tried == Some(lba) {
                    continue;
                }
                tried = Some(lba);
                result = load(dev, lba);
                if result.is_ok() {
                    break;
                }
            }
            match result {
                Ok(v) => {
                    warn(
                        table,
                        alloc::format!(
                            "primary GPT header damaged ({primary}); using the backup at LBA {}",
                            v.0.my_lba
                        ),
                    );
                    v
                }
                Err(backup) => return Err(super::PartError::GptBothDamaged { primary, backup }),
            }
        }
    };
    table.disk_guid = Some(header.disk_guid);
    let esz = header.entry_size as usize;
    for (i, e) in entries.chunks_exact(esz).enumerate() {
        let type_guid = guid(e, 0);
        if type_guid == [0; 16] {
            continue;
        }
        let index = i as u32 + 1;
        let (start, end) = (le64(e, 32), le64(e, 40));
        if start > end || end >= disk || start == 0 {
            warn(
                table,
                alloc::format!("gpt{index}: blocks {start}..={end} are not inside the disk ({disk} blocks); skipped"),
            );
            continue;
        }
        if start < header.first_usable || end > header.last_usable {
            warn(table, alloc::format!("gpt{index}: blocks {start}..={end} are outside the usable range"));
        }
        let part_uuid = guid(e, 16);
        table.partitions.push(Partition {
            scheme: Scheme::Gpt,
            index,
            start_lba: start,
            num_blocks: end - start + 1,
            mbr_type: 0,
            type_guid: Some(type_guid),
            part_uuid: (part_uuid != [0; 16]).then_some(part_uuid),
            label: decode_name(&e[56..128]),
            mbr_signature: None,
        });
    }
    Ok(())
}

/// PartitionName: UTF-16LE up to the first NUL; unpaired surrogates become U+FFFD.
fn decode_name(raw: &[u8]) -> Option<String> {
    let units = raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0);
    let s: String = char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use crate::block::SliceDisk;

    const LINUX: [u8; 16] = guid_bytes("0fc63daf-8483-4772-8e79-3d69d8477de4");
    const ESP: [u8; 16] = guid_bytes("c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
    const U1: [u8; 16] = guid_bytes("6a4c1b2e-3f5d-4e8a-9b7c-0d1e2f3a4b5c");

    fn parts() -> Vec<GptPart> {
        vec![
            GptPart { slot: 0, type_guid: ESP, uuid: U1, start: 40, end: 79, name: "EFI system" },
            GptPart { slot: 2, type_guid: LINUX, uuid: [7; 16], start: 80, end: 199, name: "root" },
        ]
    }

    fn check(t: &Table) {
        assert_eq!(t.scheme, Some(Scheme::Gpt));
        assert_eq!(t.disk_guid, Some(DISK_GUID));
        let got: Vec<_> = t.partitions.iter().map(|p| (p.name(), p.start_lba, p.num_blocks)).collect();
        assert_eq!(got, [("gpt1".into(), 40, 40), ("gpt3".into(), 80, 120)]);
        let p = &t.partitions[0];
        assert_eq!(p.label.as_deref(), Some("EFI system"));
        assert_eq!(p.type_guid, Some(ESP));
        assert_eq!(p.part_uuid_string().as_deref(), Some("6a4c1b2e-3f5d-4e8a-9b7c-0d1e2f3a4b5c"));
        assert_eq!(t.by_part_uuid("6A4C1B2E-3F5D-4E8A-9B7C-0D1E2F3A4B5C").unwrap().index, 1);
    }

    #[test]
    fn guid_text_round_trip() {
        assert_eq!(guid_string(&LINUX), "0fc63daf-8483-4772-8e79-3d69d8477de4");
        assert_eq!(LINUX[..4], [0xaf, 0x3d, 0xc6, 0x0f]);
    }

    #[test]
    fn clean_gpt() {
        let img = build_gpt(512, 256, &parts());
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        check(&t);
        assert_eq!(t.mbr_signature, None);
    }

    #[test]
    fn gpt_4096_byte_blocks() {
        let img = build_gpt(4096, 256, &parts());
        let t = scan(&mut SliceDisk::new(&img, 4096)).unwrap();
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        check(&t);
        // The same bytes read as 512-byte blocks are not a valid GPT (LBA 1 is zeros).
        assert!(scan(&mut SliceDisk::new(&img, 512)).is_err());
    }

    #[test]
    fn corrupted_primary_header_uses_backup() {
        let mut img = build_gpt(512, 256, &parts());
        img[512 + 40] ^= 1; // FirstUsableLBA, so the header CRC no longer matches
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        check(&t);
        assert_eq!(t.warnings, ["primary GPT header damaged (header CRC mismatch); using the backup at LBA 255"]);
        // Primary signature gone too: the backup is found at the end of the disk.
        img[512..520].fill(0);
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        check(&t);
        assert_eq!(t.warnings, ["primary GPT header damaged (no EFI PART signature); using the backup at LBA 255"]);
    }

    #[test]
    fn backup_where_the_primary_says() {
        // A disk grown after partitioning: the backup is not at the last block any more.
        let small = build_gpt(512, 256, &parts());
        let mut img = small.clone();
        img.resize(512 * 300, 0);
        img[512 + 16] ^= 0xff; // break the header CRC field
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        check(&t);
        assert_eq!(t.warnings, ["primary GPT header damaged (header CRC mismatch); using the backup at LBA 255"]);
    }

    #[test]
    fn entries_crc_mismatch_uses_backup() {
        let mut img = build_gpt(512, 256, &parts());
        img[2 * 512 + 56] ^= 0x20; // first entry's name in the primary array
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        check(&t);
        assert_eq!(
            t.warnings,
            ["primary GPT header damaged (partition entry array CRC mismatch); using the backup at LBA 255"]
        );
    }

    #[test]
    fn both_damaged_is_an_error() {
        let mut img = build_gpt(512, 256, &parts());
        img[512 + 40] ^= 1;
        img[255 * 512 + 40] ^= 1;
        let e = scan(&mut SliceDisk::new(&img, 512)).unwrap_err();
        assert_eq!(e, PartError::GptBothDamaged { primary: GptFault::HeaderCrc, backup: GptFault::HeaderCrc });
        assert_eq!(
            e.to_string(),
            "GPT: both headers damaged (primary: header CRC mismatch; backup: header CRC mismatch)"
        );
        // Entry arrays both damaged.
        let mut img = build_gpt(512, 256, &parts());
        img[2 * 512 + 56] ^= 1;
        let backup_entries = (255 - 32) * 512;
        img[backup_entries + 56] ^= 1;
        let e = scan(&mut SliceDisk::new(&img, 512)).unwrap_err();
        assert_eq!(e, PartError::GptBothDamaged { primary: GptFault::EntriesCrc, backup: GptFault::EntriesCrc });
    }

    #[test]
    fn header_field_checks() {
        let img = build_gpt(512, 256, &parts());
        let hdr = &img[512..1024];
        assert!(gpt::Header::parse(hdr, 1, 256).is_ok());
        assert_eq!(gpt::Header::parse(hdr, 2, 256), Err(GptFault::MyLba { expected: 2, found: 1 }));
        // Disk shorter than LastUsableLBA.
        assert!(matches!(gpt::Header::parse(hdr, 1, 100), Err(GptFault::UsableRange { .. })));
        let with = |off: usize, v: u32| {
            let mut h = hdr.to_vec();
            h[off..off + 4].copy_from_slice(&v.to_le_bytes());
            reseal(&mut h);
            gpt::Header::parse(&h, 1, 256)
        };
        assert_eq!(with(84, 100), Err(GptFault::EntrySize(100)));
        assert_eq!(with(84, 132), Err(GptFault::EntrySize(132)));
        assert_eq!(with(80, 100_000), Err(GptFault::EntryCount(100_000)));
        assert_eq!(with(12, 91), Err(GptFault::HeaderSize(91)));
        assert_eq!(with(12, 513), Err(GptFault::HeaderSize(513)));
    }

    #[test]
    fn protective_and_hybrid_mbr() {
        let mut img = build_gpt(512, 256, &parts());
        mbr_record(&mut img, 1, 0, 0x83, 80, 120);
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        check(&t);
        assert_eq!(t.warnings.len(), 1);
        assert!(t.warnings[0].starts_with("hybrid MBR"));
        // Without the 0xEE entry the same disk is read as an MBR.
        mbr_record(&mut img, 0, 0, 0, 0, 0);
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        assert_eq!(t.scheme, Some(Scheme::Mbr));
        assert_eq!(t.partitions[0].name(), "msdos2");
    }

    #[test]
    fn bad_entries_are_skipped() {
        let mut ps = parts();
        ps.push(GptPart { slot: 5, type_guid: LINUX, uuid: [0; 16], start: 150, end: 100, name: "" });
        ps.push(GptPart { slot: 6, type_guid: LINUX, uuid: [1; 16], start: 200, end: 1 << 40, name: "" });
        ps.push(GptPart { slot: 7, type_guid: LINUX, uuid: [2; 16], start: 2, end: 3, name: "" });
        let img = build_gpt(512, 256, &ps);
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(t.partitions[2].index, 8);
        assert_eq!(t.partitions[2].label, None);
        assert_eq!(t.warnings.len(), 3, "{:?}", t.warnings);
    }

    #[test]
    fn tiny_disks_do_not_panic() {
        let full = build_gpt(512, 256, &parts());
        for blocks in 0..8 {
            let img = &full[..blocks * 512];
            let _ = scan(&mut SliceDisk::new(img, 512));
        }
    }
}
