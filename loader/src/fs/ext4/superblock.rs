// SPDX-License-Identifier: MIT OR Apache-2.0
//! The ext2/3/4 superblock: 1024 bytes at byte 1024 of the filesystem.
//!
//! Layout and feature bits: Linux `Documentation/filesystems/ext4/super.rst`.

use super::Ext4Error;
use super::le::{le16, le32};
use crate::crc::crc32c_raw;

/// Where the superblock starts, in bytes.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Its size in bytes.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// `s_magic`.
pub const EXT_MAGIC: u16 = 0xef53;
/// `s_magic` is at this offset inside the superblock.
pub const MAGIC_OFFSET: usize = 0x38;

// s_feature_compat
pub const COMPAT_HAS_JOURNAL: u32 = 0x4;
pub const COMPAT_SPARSE_SUPER2: u32 = 0x200;
// s_feature_ro_compat
pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
pub const RO_COMPAT_LARGE_FILE: u32 = 0x2;
pub const RO_COMPAT_HUGE_FILE: u32 = 0x8;
pub const RO_COMPAT_GDT_CSUM: u32 = 0x10;
pub const RO_COMPAT_DIR_NLINK: u32 = 0x20;
pub const RO_COMPAT_EXTRA_ISIZE: u32 = 0x40;
pub const RO_COMPAT_HAS_SNAPSHOT: u32 = 0x80;
pub const RO_COMPAT_QUOTA: u32 = 0x100;
pub const RO_COMPAT_BIGALLOC: u32 = 0x200;
pub const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
pub const RO_COMPAT_READONLY: u32 = 0x1000;
pub const RO_COMPAT_PROJECT: u32 = 0x2000;
pub const RO_COMPAT_SHARED_BLOCKS: u32 = 0x4000;
pub const RO_COMPAT_VERITY: u32 = 0x8000;
pub const RO_COMPAT_ORPHAN_PRESENT: u32 = 0x1_0000;
// s_feature_incompat
pub const INCOMPAT_FILETYPE: u32 = 0x2;
pub const INCOMPAT_RECOVER: u32 = 0x4;
pub const INCOMPAT_META_BG: u32 = 0x10;
pub const INCOMPAT_EXTENTS: u32 = 0x40;
pub const INCOMPAT_64BIT: u32 = 0x80;
pub const INCOMPAT_MMP: u32 = 0x100;
pub const INCOMPAT_FLEX_BG: u32 = 0x200;
pub const INCOMPAT_EA_INODE: u32 = 0x400;
pub const INCOMPAT_CSUM_SEED: u32 = 0x2000;
pub const INCOMPAT_LARGEDIR: u32 = 0x4000;
pub const INCOMPAT_INLINE_DATA: u32 = 0x8000;
pub const INCOMPAT_ENCRYPT: u32 = 0x1_0000;
pub const INCOMPAT_CASEFOLD: u32 = 0x2_0000;

/// The incompat bits this reader understands (reading needs nothing more from them, or
/// they are handled): filetype, recover (the journal is replayed in memory), meta_bg,
/// extents, 64bit, mmp (nothing to do read-only), flex_bg, ea_inode, csum_seed, largedir,
/// inline_data, encrypt (encrypted inodes are refused one by one), casefold (lookups match
/// names exactly).
const INCOMPAT_SUPPORTED: u32 =
    0x2 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x2000 | 0x4000 | 0x8000 | 0x10000 | 0x20000;

/// A name for every incompat bit, for [`Ext4Error::UnsupportedFeature`].
const INCOMPAT_NAMES: [&str; 32] = [
    "compression",
    "filetype",
    "recover",
    "journal_dev",
    "meta_bg",
    "incompat 0x20",
    "extents",
    "64bit",
    "mmp",
    "flex_bg",
    "ea_inode",
    "incompat 0x800",
    "dirdata",
    "csum_seed",
    "largedir",
    "inline_data",
    "encrypt",
    "casefold",
    "incompat 0x40000",
    "incompat 0x80000",
    "incompat 0x100000",
    "incompat 0x200000",
    "incompat 0x400000",
    "incompat 0x800000",
    "incompat 0x1000000",
    "incompat 0x2000000",
    "incompat 0x4000000",
    "incompat 0x8000000",
    "incompat 0x10000000",
    "incompat 0x20000000",
    "incompat 0x40000000",
    "incompat 0x80000000",
];

/// More block groups than this is not a filesystem a boot loader meets (128 TiB at 4 KiB
/// blocks); refusing it bounds every per-group loop.
pub const MAX_GROUPS: u64 = 1 << 20;

/// The superblock fields the reader uses, validated.
#[derive(Clone, Debug)]
pub struct Superblock {
    pub inodes_count: u32,
    pub blocks_count: u64,
    pub first_data_block: u32,
    pub block_size: u32,
    pub blocks_per_group: u32,
    pub inodes_per_group: u32,
    pub inode_size: u32,
    pub feature_compat: u32,
    pub feature_incompat: u32,
    pub feature_ro_compat: u32,
    pub uuid: [u8; 16],
    pub volume_name: [u8; 16],
    pub journal_inum: u32,
    pub desc_size: u32,
    pub first_meta_bg: u32,
    /// `s_reserved_gdt_blocks`: blocks kept after each descriptor table copy for growth.
    pub reserved_gdt_blocks: u32,
    pub backup_bgs: [u32; 2],
    pub groups: u32,
    /// The `metadata_csum` seed, when the feature is on.
    pub csum_seed: Option<u32>,
}

fn corrupt(what: &'static str) -> Ext4Error {
    Ext4Error::Corrupt { what, ino: 0, block: 0 }
}

impl Superblock {
    /// Parse and validate the 1024 superblock bytes.
    pub fn parse(raw: &[u8]) -> Result<Superblock, Ext4Error> {
        if raw.len() < SUPERBLOCK_SIZE {
            return Err(Ext4Error::NotExt { why: "too small for a superblock" });
        }
        if le16(raw, MAGIC_OFFSET) != EXT_MAGIC {
            return Err(Ext4Error::NotExt { why: "no ext2/3/4 superblock magic" });
        }
        let rev_level = le32(raw, 0x4c);
        let dynamic = rev_level >= 1;
        let (feature_compat, feature_incompat, feature_ro_compat) =
            if dynamic { (le32(raw, 0x5c), le32(raw, 0x60), le32(raw, 0x64)) } else { (0, 0, 0) };

        let unsupported = feature_incompat & !INCOMPAT_SUPPORTED;
        if unsupported != 0 {
            let bit = unsupported.trailing_zeros() as usize;
            return Err(Ext4Error::UnsupportedFeature { name: INCOMPAT_NAMES.get(bit).copied().unwrap_or("incompat") });
        }

        let csum = feature_ro_compat & RO_COMPAT_METADATA_CSUM != 0;
        if csum {
            if raw.get(0x175) != Some(&1) {
                return Err(corrupt("superblock checksum type is not crc32c"));
            }
            if crc32c_raw(!0, &raw[..0x3fc]) != le32(raw, 0x3fc) {
                return Err(Ext4Error::Checksum { what: "superblock", ino: 0, block: 0 });
            }
        }

        let log_block_size = le32(raw, 0x18);
        if log_block_size > 6 {
            return Err(corrupt("block size above 64 KiB"));
        }
        let block_size = 1024u32 << log_block_size;
        let is64 = feature_incompat & INCOMPAT_64BIT != 0;
        let blocks_count = u64::from(le32(raw, 0x4)) | if is64 { u64::from(le32(raw, 0x150)) << 32 } else { 0 };
        let first_data_block = le32(raw, 0x14);
        let blocks_per_group = le32(raw, 0x20);
        let inodes_per_group = le32(raw, 0x28);
        let inodes_count = le32(raw, 0);
        let inode_size = if dynamic { u32::from(le16(raw, 0x58)) } else { 128 };
        let desc_size = if is64 { u32::from(le16(raw, 0xfe)) } else { 32 };

        if blocks_per_group == 0 {
            return Err(corrupt("s_blocks_per_group is zero"));
        }
        if inodes_per_group == 0 || inodes_per_group > block_size.saturating_mul(8) {
            return Err(corrupt("s_inodes_per_group out of range"));
        }
        if inodes_count == 0 {
            return Err(corrupt("s_inodes_count is zero"));
        }
        if first_data_block > 1 || u64::from(first_data_block) >= blocks_count {
            return Err(corrupt("s_first_data_block out of range"));
        }
        if !inode_size.is_power_of_two() || inode_size < 128 || inode_size > block_size {
            return Err(corrupt("s_inode_size out of range"));
        }
        if is64 && (!(64..=1024).contains(&desc_size) || !desc_size.is_power_of_two() || desc_size > block_size) {
            return Err(corrupt("s_desc_size out of range"));
        }
        let groups = (blocks_count - u64::from(first_data_block)).div_ceil(u64::from(blocks_per_group));
        if groups == 0 {
            return Err(corrupt("no block groups"));
        }
        if groups > MAX_GROUPS {
            return Err(corrupt("too many block groups"));
        }
        if u64::from(inodes_count) > groups * u64::from(inodes_per_group) {
            return Err(corrupt("s_inodes_count exceeds the inodes of all groups"));
        }

        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&raw[0x68..0x78]);
        let mut volume_name = [0u8; 16];
        volume_name.copy_from_slice(&raw[0x78..0x88]);
        let csum_seed = csum
            .then(|| if feature_incompat & INCOMPAT_CSUM_SEED != 0 { le32(raw, 0x270) } else { crc32c_raw(!0, &uuid) });
        Ok(Superblock {
            inodes_count,
            blocks_count,
            first_data_block,
            block_size,
            blocks_per_group,
            inodes_per_group,
            inode_size,
            feature_compat,
            feature_incompat,
            feature_ro_compat,
            uuid,
            volume_name,
            journal_inum: le32(raw, 0xe0),
            desc_size,
            first_meta_bg: le32(raw, 0x104),
            reserved_gdt_blocks: u32::from(le16(raw, 0xce)),
            backup_bgs: [le32(raw, 0x24c), le32(raw, 0x250)],
            groups: groups as u32,
            csum_seed,
        })
    }

    pub fn has_incompat(&self, bit: u32) -> bool {
        self.feature_incompat & bit != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn minimal() -> alloc::vec::Vec<u8> {
        let mut sb = vec![0u8; 1024];
        sb[0..4].copy_from_slice(&64u32.to_le_bytes()); // inodes
        sb[4..8].copy_from_slice(&1024u32.to_le_bytes()); // blocks
        sb[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
        sb[0x20..0x24].copy_from_slice(&8192u32.to_le_bytes());
        sb[0x28..0x2c].copy_from_slice(&64u32.to_le_bytes());
        sb[0x38..0x3a].copy_from_slice(&EXT_MAGIC.to_le_bytes());
        sb
    }

    #[test]
    fn geometry_and_features() {
        let sb = Superblock::parse(&minimal()).unwrap();
        assert_eq!((sb.block_size, sb.groups, sb.inode_size), (1024, 1, 128));

        let mut raw = minimal();
        raw[0x20..0x24].fill(0);
        assert!(matches!(Superblock::parse(&raw), Err(Ext4Error::Corrupt { what: "s_blocks_per_group is zero", .. })));

        let mut raw = minimal();
        raw[0x4c] = 1; // dynamic rev
        raw[0x58] = 128;
        raw[0x60..0x64].copy_from_slice(&0x1000u32.to_le_bytes());
        assert_eq!(Superblock::parse(&raw).unwrap_err(), Ext4Error::UnsupportedFeature { name: "dirdata" });
        raw[0x60..0x64].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        assert_eq!(Superblock::parse(&raw).unwrap_err(), Ext4Error::UnsupportedFeature { name: "incompat 0x80000000" });
    }

    #[test]
    fn superblock_checksum() {
        let mut raw = minimal();
        raw[0x4c] = 1;
        raw[0x58] = 128;
        raw[0x64..0x68].copy_from_slice(&RO_COMPAT_METADATA_CSUM.to_le_bytes());
        raw[0x175] = 1;
        let c = crc32c_raw(!0, &raw[..0x3fc]);
        raw[0x3fc..].copy_from_slice(&c.to_le_bytes());
        let sb = Superblock::parse(&raw).unwrap();
        assert_eq!(sb.csum_seed, Some(crc32c_raw(!0, &[0u8; 16])));
        raw[0x78] = b'x'; // label changed, checksum not
        assert_eq!(Superblock::parse(&raw).unwrap_err(), Ext4Error::Checksum { what: "superblock", ino: 0, block: 0 });
    }
}
