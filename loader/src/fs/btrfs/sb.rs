// SPDX-License-Identifier: MIT OR Apache-2.0
//! The btrfs superblock: 4 KiB at byte 64 KiB of every device, little-endian.
//!
//! Layout: the btrfs documentation's "On-disk format" (section "Superblock"), with the
//! offsets and flag values of Linux's `include/uapi/linux/btrfs_tree.h`
//! (`struct btrfs_super_block`, `struct btrfs_dev_item`). Only the primary copy is read;
//! the mirrors at 64 MiB and 256 GiB are not.

use super::{FS, le16, le32, le64};
use crate::crc::crc32c;
use crate::fs::FsError;

/// Byte offset of the primary superblock.
pub const SB_OFFSET: u64 = 64 * 1024;
/// Bytes of the superblock (the checksum covers all but its first 32).
pub const SB_LEN: usize = 4096;
/// `_BHRfS_M`.
pub const MAGIC: &[u8; 8] = b"_BHRfS_M";
const MAGIC_AT: usize = 0x40;
const SYS_CHUNK_ARRAY_AT: usize = 0x32b;
/// `BTRFS_SYSTEM_CHUNK_ARRAY_SIZE`.
pub const SYS_CHUNK_ARRAY_MAX: usize = 2048;

// incompat_flags
const INCOMPAT_MIXED_BACKREF: u64 = 1 << 0;
const INCOMPAT_DEFAULT_SUBVOL: u64 = 1 << 1;
const INCOMPAT_MIXED_GROUPS: u64 = 1 << 2;
const INCOMPAT_COMPRESS_LZO: u64 = 1 << 3;
const INCOMPAT_COMPRESS_ZSTD: u64 = 1 << 4;
const INCOMPAT_BIG_METADATA: u64 = 1 << 5;
const INCOMPAT_EXTENDED_IREF: u64 = 1 << 6;
const INCOMPAT_RAID56: u64 = 1 << 7;
const INCOMPAT_SKINNY_METADATA: u64 = 1 << 8;
const INCOMPAT_NO_HOLES: u64 = 1 << 9;
pub const INCOMPAT_METADATA_UUID: u64 = 1 << 10;
const INCOMPAT_RAID1C34: u64 = 1 << 11;
const INCOMPAT_ZONED: u64 = 1 << 12;
const INCOMPAT_EXTENT_TREE_V2: u64 = 1 << 13;
const INCOMPAT_RAID_STRIPE_TREE: u64 = 1 << 14;
const INCOMPAT_SIMPLE_QUOTA: u64 = 1 << 16;
/// Incompat features that change nothing this reader looks at, or that it reads
/// (compression, holes, raid1c3/4; raid5/6 chunks are refused one by one).
const INCOMPAT_KNOWN: u64 = INCOMPAT_MIXED_BACKREF
    | INCOMPAT_DEFAULT_SUBVOL
    | INCOMPAT_MIXED_GROUPS
    | INCOMPAT_COMPRESS_LZO
    | INCOMPAT_COMPRESS_ZSTD
    | INCOMPAT_BIG_METADATA
    | INCOMPAT_EXTENDED_IREF
    | INCOMPAT_RAID56
    | INCOMPAT_SKINNY_METADATA
    | INCOMPAT_NO_HOLES
    | INCOMPAT_METADATA_UUID
    | INCOMPAT_RAID1C34
    | INCOMPAT_SIMPLE_QUOTA;

/// What the reader keeps of a superblock.
#[derive(Clone, Debug)]
pub struct Superblock {
    pub fsid: [u8; 16],
    /// The fsid tree block headers carry (`metadata_uuid` when that feature is on).
    pub meta_fsid: [u8; 16],
    pub generation: u64,
    pub root: u64,
    pub root_level: u8,
    pub chunk_root: u64,
    pub chunk_root_level: u8,
    pub log_root: u64,
    pub num_devices: u64,
    pub sectorsize: u32,
    pub nodesize: u32,
    pub label: [u8; 256],
    /// This device's `dev_item.devid`.
    pub devid: u64,
    /// This device's size as the filesystem knows it (`dev_item.total_bytes`).
    pub dev_total_bytes: u64,
    pub sys_chunk_array: [u8; SYS_CHUNK_ARRAY_MAX],
    pub sys_chunk_array_size: usize,
}

/// Does `raw` (the bytes at [`SB_OFFSET`]) start like a btrfs superblock?
pub fn has_magic(raw: &[u8]) -> bool {
    raw.get(MAGIC_AT..MAGIC_AT + 8) == Some(&MAGIC[..])
}

impl Superblock {
    /// Parse and check a superblock ([`SB_LEN`] bytes).
    pub fn parse(raw: &[u8]) -> Result<Self, FsError> {
        let corrupt = |what| Err(FsError::Corrupt { fs: FS, what, at: SB_OFFSET });
        if raw.len() < SB_LEN || !has_magic(raw) {
            return Err(FsError::NotOurs { fs: FS, why: "no btrfs superblock magic" });
        }
        match le16(raw, 0xc4) {
            0 => {}
            1 => return Err(FsError::UnsupportedFeature { fs: FS, name: "checksum type xxhash64" }),
            2 => return Err(FsError::UnsupportedFeature { fs: FS, name: "checksum type sha256" }),
            3 => return Err(FsError::UnsupportedFeature { fs: FS, name: "checksum type blake2b" }),
            _ => return Err(FsError::UnsupportedFeature { fs: FS, name: "an unknown checksum type" }),
        }
        if crc32c(&raw[32..SB_LEN]) != le32(raw, 0) {
            return Err(FsError::Checksum { fs: FS, what: "superblock", at: SB_OFFSET });
        }
        if le64(raw, 0x30) != SB_OFFSET {
            return corrupt("superblock bytenr");
        }
        let incompat = le64(raw, 0xbc);
        let unknown = incompat & !INCOMPAT_KNOWN;
        if unknown != 0 {
            let name = if unknown & INCOMPAT_ZONED != 0 {
                "zoned"
            } else if unknown & INCOMPAT_EXTENT_TREE_V2 != 0 {
                "extent-tree-v2"
            } else if unknown & INCOMPAT_RAID_STRIPE_TREE != 0 {
                "raid-stripe-tree"
            } else {
                "an incompat feature newer than this reader"
            };
            return Err(FsError::UnsupportedFeature { fs: FS, name });
        }
        let sectorsize = le32(raw, 0x90);
        let nodesize = le32(raw, 0x94);
        if !(4096..=65536).contains(&sectorsize) || !sectorsize.is_power_of_two() {
            return corrupt("sector size");
        }
        if !(4096..=65536).contains(&nodesize) || !nodesize.is_power_of_two() || nodesize < sectorsize {
            return corrupt("node size");
        }
        let root_level = raw[0xc6];
        let chunk_root_level = raw[0xc7];
        if root_level >= super::tree::MAX_LEVEL || chunk_root_level >= super::tree::MAX_LEVEL {
            return corrupt("tree root level");
        }
        let sys_chunk_array_size = le32(raw, 0xa0) as usize;
        if sys_chunk_array_size > SYS_CHUNK_ARRAY_MAX {
            return corrupt("system chunk array size");
        }
        let mut fsid = [0u8; 16];
        fsid.copy_from_slice(&raw[0x20..0x30]);
        let mut meta_fsid = fsid;
        if incompat & INCOMPAT_METADATA_UUID != 0 {
            meta_fsid.copy_from_slice(&raw[0x23b..0x24b]);
        }
        // dev_item at 0xc9: its fsid (at +82) must be the filesystem's.
        if raw[0xc9 + 82..0xc9 + 98] != meta_fsid && raw[0xc9 + 82..0xc9 + 98] != fsid {
            return corrupt("device item of another filesystem");
        }
        let mut label = [0u8; 256];
        label.copy_from_slice(&raw[0x12b..0x22b]);
        let mut sys_chunk_array = [0u8; SYS_CHUNK_ARRAY_MAX];
        sys_chunk_array.copy_from_slice(&raw[SYS_CHUNK_ARRAY_AT..SYS_CHUNK_ARRAY_AT + SYS_CHUNK_ARRAY_MAX]);
        Ok(Superblock {
            fsid,
            meta_fsid,
            generation: le64(raw, 0x48),
            root: le64(raw, 0x50),
            root_level,
            chunk_root: le64(raw, 0x58),
            chunk_root_level,
            log_root: le64(raw, 0x60),
            num_devices: le64(raw, 0x88),
            sectorsize,
            nodesize,
            label,
            devid: le64(raw, 0xc9),
            dev_total_bytes: le64(raw, 0xc9 + 8),
            sys_chunk_array,
            sys_chunk_array_size,
        })
    }

    pub fn sys_chunks(&self) -> &[u8] {
        self.sys_chunk_array.get(..self.sys_chunk_array_size).unwrap_or(&[])
    }
}
