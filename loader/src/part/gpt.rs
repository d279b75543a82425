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
/// Largest entry we accept: the spec allows any 128 × 2^n; every tool writes 128.
pub const MAX_ENTRY_SIZE: u32 = 4096;
/// Most entries we accept: 32 times the usual 128, far beyond any partitioning tool.
pub const MAX_ENTRIES: u32 = 4096;
/// Most entry-array bytes we read (4096 entries of 256 bytes).
pub const MAX_ARRAY_BYTES: u64 = 1024 * 1024;

/// Why the entry array of a header is misplaced ([`GptFault::EntryArray`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArrayPlace {
    /// PartitionEntryLBA is 0 (the protective MBR).
    AtLbaZero,
    /// The array runs past the last block of the disk (`disk` blocks).
    PastDisk { disk: u64 },
    /// The array overlaps FirstUsableLBA..=LastUsableLBA.
    InUsable { first: u64, last: u64 },
    /// The array covers its own header.
    OverHeader { header: u64 },
}

/// Why one GPT header (with its entry array) was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GptFault {
    /// The header or its entry array could not be read.
    Io(BlockError),
    /// No `"EFI PART"` signature.
    Signature,
    /// HeaderSize below 92 or above the block size (`block`).
    HeaderSize { size: u32, block: u32 },
    /// HeaderCRC32 does not match.
    HeaderCrc,
    /// MyLBA is not where we found the header.
    MyLba { expected: u64, found: u64 },
    /// SizeOfPartitionEntry not a multiple of 128, or outside 128..=[`MAX_ENTRY_SIZE`].
    EntrySize(u32),
    /// NumberOfPartitionEntries above [`MAX_ENTRIES`], or the array above
    /// [`MAX_ARRAY_BYTES`].
    EntryCount { count: u32, size: u32 },
    /// FirstUsableLBA..=LastUsableLBA is empty, reaches past the disk (`disk` blocks), or
    /// covers the protective MBR, the primary header or this header (at `header`).
    UsableRange { first: u64, last: u64, disk: u64, header: u64 },
    /// The entry array (`blocks` blocks at `lba`) is outside the disk or overlaps the
    /// usable blocks or the header.
    EntryArray { lba: u64, blocks: u64, why: ArrayPlace },
    /// PartitionEntryArrayCRC32 does not match.
    EntriesCrc,
    /// The disk is too small to hold a backup header.
    NoBackup,
}

impl fmt::Display for GptFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GptFault::Io(e) => write!(f, "unreadable ({e})"),
            GptFault::Signature => f.write_str("no EFI PART signature"),
            GptFault::HeaderSize { size, block } => {
                write!(f, "header size {size} is outside {MIN_HEADER_SIZE}..={block} (the block size)")
            }
            GptFault::HeaderCrc => f.write_str("header CRC mismatch"),
            GptFault::MyLba { expected, found } => write!(f, "header says it is at LBA {found}, found at {expected}"),
            GptFault::EntrySize(n) if !n.is_multiple_of(MIN_ENTRY_SIZE) => {
                write!(f, "entry size {n} is not a multiple of {MIN_ENTRY_SIZE}")
            }
            GptFault::EntrySize(n) => {
                write!(f, "entry size {n} is outside {MIN_ENTRY_SIZE}..={MAX_ENTRY_SIZE}")
            }
            GptFault::EntryCount { count, .. } if count > MAX_ENTRIES => {
                write!(f, "entry count {count} is above {MAX_ENTRIES}")
            }
            GptFault::EntryCount { count, size } => write!(
                f,
                "partition entry array of {count} entries of {size} bytes ({} bytes) is above the {MAX_ARRAY_BYTES}-byte budget",
                u64::from(count) * u64::from(size)
            ),
            GptFault::UsableRange { first, last, disk, header } => {
                write!(f, "usable LBAs {first}..={last} ")?;
                if first > last {
                    f.write_str("are an empty range (first after last)")
                } else if last >= disk {
                    write!(f, "reach past the disk ({disk} blocks)")
                } else if first < 2 {
                    f.write_str("cover the protective MBR or the primary header")
                } else {
                    write!(f, "cover the header at LBA {header}")
                }
            }
            GptFault::EntryArray { lba, blocks, why } => {
                write!(f, "partition entry array at LBA {lba} ({blocks} blocks) ")?;
                match why {
                    ArrayPlace::AtLbaZero => f.write_str("is on the protective MBR"),
                    ArrayPlace::PastDisk { disk } => write!(f, "lies past the end of the disk ({disk} blocks)"),
                    ArrayPlace::InUsable { first, last } => write!(f, "overlaps the usable LBAs {first}..={last}"),
                    ArrayPlace::OverHeader { header } => write!(f, "covers its header at LBA {header}"),
                }
            }
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
            return Err(GptFault::HeaderSize { size, block: block.len() as u32 });
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
        let esz = h.entry_size;
        if !esz.is_multiple_of(MIN_ENTRY_SIZE) || !(MIN_ENTRY_SIZE..=MAX_ENTRY_SIZE).contains(&esz) {
            return Err(GptFault::EntrySize(esz));
        }
        if h.num_entries > MAX_ENTRIES || h.array_bytes() > MAX_ARRAY_BYTES {
            return Err(GptFault::EntryCount { count: h.num_entries, size: esz });
        }
        // The usable blocks lie strictly between the primary header (LBA 1, after the
        // protective MBR) and the end of the disk, and never hold this header.
        let (first, last) = (h.first_usable, h.last_usable);
        if first > last || last >= disk_blocks || first < 2 || (first..=last).contains(&lba) {
            return Err(GptFault::UsableRange { first, last, disk: disk_blocks, header: lba });
        }
        Ok(h)
    }

    /// Bytes of the entry array (fits easily: both factors are bounded by `parse`).
    pub fn array_bytes(&self) -> u64 {
        u64::from(self.num_entries) * u64::from(self.entry_size)
    }

    /// Where the entry array must not be, or `Ok` with its size in blocks.
    fn check_array_place(&self, bs: u64, disk: u64) -> Result<u64, GptFault> {
        let blocks = self.array_bytes().div_ceil(bs);
        let lba = self.entries_lba;
        let fault = |why| GptFault::EntryArray { lba, blocks, why };
        if lba == 0 {
            return Err(fault(ArrayPlace::AtLbaZero));
        }
        let end = match lba.checked_add(blocks) {
            Some(end) if end <= disk => end,
            _ => return Err(fault(ArrayPlace::PastDisk { disk })),
        };
        if blocks > 0 && lba <= self.last_usable && end > self.first_usable {
            return Err(fault(ArrayPlace::InUsable { first: self.first_usable, last: self.last_usable }));
        }
        if (lba..end).contains(&self.my_lba) {
            return Err(fault(ArrayPlace::OverHeader { header: self.my_lba }));
        }
        Ok(blocks)
    }

    /// Read the entry array and check its CRC and placement; returns the raw array.
    fn read_entries<D: BlockDevice + ?Sized>(&self, dev: &mut D) -> Result<vec::Vec<u8>, GptFault> {
        let bs = u64::from(dev.block_size());
        let blocks = self.check_array_place(bs, dev.num_blocks())?;
        // `blocks * bs` is at most MAX_ARRAY_BYTES rounded up to a block.
        let mut buf = vec![0u8; (blocks * bs) as usize];
        dev.read_blocks(self.entries_lba, &mut buf).map_err(GptFault::Io)?;
        buf.truncate(self.array_bytes() as usize);
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
/// signature must be there and the LBA plausible (past the primary, inside the disk).
/// The backup found there is validated as strictly as any header, so a wrong pointer
/// costs one read.
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
///
/// A primary header (or its entry array) that fails any check is replaced by the backup:
/// first where the primary's AlternateLBA points, then at the last block of the disk, each
/// validated as strictly as the primary. Only when both fail is the GPT refused.
pub fn scan<D: BlockDevice + ?Sized>(dev: &mut D, table: &mut Table) -> Result<(), super::PartError> {
    let disk = dev.num_blocks();
    let (header, entries) = match load(dev, 1) {
        Ok(v) => v,
        Err(primary) => {
            let last = disk.checked_sub(1).filter(|&l| l > 1);
            let named = backup_lba(dev);
            // Try where the primary points first, then the end of the disk (at most two
            // reads of a header and its array).
            let mut tried = None;
            let mut result = Err((None, GptFault::NoBackup));
            for lba in [named, last].into_iter().flatten() {
                if tried == Some(lba) {
                    continue;
                }
                tried = Some(lba);
                result = load(dev, lba).map_err(|e| (Some(lba), e));
                if result.is_ok() {
                    break;
                }
            }
            match result {
                Ok(v) => {
                    warn(
                        table,
                        alloc::format!(
                            "primary GPT header damaged ({primary}); using the backup header at LBA {}",
                            v.0.my_lba
                        ),
                    );
                    v
                }
                Err((backup_lba, backup)) => {
                    return Err(super::PartError::GptBothDamaged { primary, backup, backup_lba });
                }
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
        assert_eq!(
            t.warnings,
            ["primary GPT header damaged (header CRC mismatch); using the backup header at LBA 255"]
        );
        // Primary signature gone too: the backup is found at the end of the disk.
        img[512..520].fill(0);
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        check(&t);
        assert_eq!(
            t.warnings,
            ["primary GPT header damaged (no EFI PART signature); using the backup header at LBA 255"]
        );
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
        assert_eq!(
            t.warnings,
            ["primary GPT header damaged (header CRC mismatch); using the backup header at LBA 255"]
        );
    }

    #[test]
    fn entries_crc_mismatch_uses_backup() {
        let mut img = build_gpt(512, 256, &parts());
        img[2 * 512 + 56] ^= 0x20; // first entry's name in the primary array
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
        check(&t);
        assert_eq!(
            t.warnings,
            ["primary GPT header damaged (partition entry array CRC mismatch); using the backup header at LBA 255"]
        );
    }

    #[test]
    fn both_damaged_is_an_error() {
        let mut img = build_gpt(512, 256, &parts());
        img[512 + 40] ^= 1;
        img[255 * 512 + 40] ^= 1;
        let e = scan(&mut SliceDisk::new(&img, 512)).unwrap_err();
        assert_eq!(
            e,
            PartError::GptBothDamaged {
                primary: GptFault::HeaderCrc,
                backup: GptFault::HeaderCrc,
                backup_lba: Some(255)
            }
        );
        assert_eq!(
            e.to_string(),
            "GPT: both headers damaged (primary header at LBA 1: header CRC mismatch; \
             backup header at LBA 255: header CRC mismatch); no partitions read"
        );
        // Entry arrays both damaged.
        let mut img = build_gpt(512, 256, &parts());
        img[2 * 512 + 56] ^= 1;
        let backup_entries = (255 - 32) * 512;
        img[backup_entries + 56] ^= 1;
        let e = scan(&mut SliceDisk::new(&img, 512)).unwrap_err();
        assert_eq!(
            e,
            PartError::GptBothDamaged {
                primary: GptFault::EntriesCrc,
                backup: GptFault::EntriesCrc,
                backup_lba: Some(255)
            }
        );
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
        assert_eq!(with(84, 136), Err(GptFault::EntrySize(136)));
        assert_eq!(with(84, 8192), Err(GptFault::EntrySize(8192)));
        assert_eq!(with(84, 0), Err(GptFault::EntrySize(0)));
        assert!(with(84, 256).is_ok());
        assert_eq!(with(80, 100_000), Err(GptFault::EntryCount { count: 100_000, size: 128 }));
        assert_eq!(with(12, 91), Err(GptFault::HeaderSize { size: 91, block: 512 }));
        assert_eq!(with(12, 513), Err(GptFault::HeaderSize { size: 513, block: 512 }));
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
