// SPDX-License-Identifier: MIT OR Apache-2.0
//! Block group descriptors: where they live (plain, meta_bg, sparse_super/sparse_super2
//! backups) and what the reader needs from them (the inode table; for the in-place
//! writer's checks also the bitmaps, the group's flags and its block bitmap checksum).
//!
//! Linux `Documentation/filesystems/ext4/group_descr.rst` and `blockgroup.rst`.

use super::Ext4Error;
use super::le::{le16, le32};
use super::superblock::{COMPAT_SPARSE_SUPER2, INCOMPAT_META_BG, RO_COMPAT_SPARSE_SUPER, Superblock};
use crate::crc::crc32c_raw;

/// Does group `g` hold a superblock backup (and so, in a meta_bg, a descriptor copy)?
pub fn has_super(sb: &Superblock, g: u32) -> bool {
    if g == 0 {
        return true;
    }
    if sb.feature_compat & COMPAT_SPARSE_SUPER2 != 0 {
        return g == sb.backup_bgs[0] || g == sb.backup_bgs[1];
    }
    if sb.feature_ro_compat & RO_COMPAT_SPARSE_SUPER == 0 || g == 1 {
        return true;
    }
    [3u32, 5, 7].iter().any(|&base| {
        let mut p = base;
        while p < g {
            match p.checked_mul(base) {
                Some(n) => p = n,
                None => return false,
            }
        }
        p == g
    })
}

/// The block holding group `g`'s descriptor, and the descriptor's byte offset in it.
pub fn desc_location(sb: &Superblock, g: u32) -> (u64, usize) {
    let per_block = sb.block_size / sb.desc_size;
    let within = ((g % per_block) * sb.desc_size) as usize;
    let meta_group = g / per_block;
    let first = u64::from(sb.first_data_block);
    if sb.feature_incompat & INCOMPAT_META_BG == 0 || meta_group < sb.first_meta_bg {
        // The descriptor table follows the superblock's block: byte 1024 is block 1 with
        // 1 KiB blocks (where s_first_data_block is 1, except with bigalloc, where it is
        // 0), block 0 with larger ones.
        let sb_block = u64::from(sb.block_size == 1024);
        return (sb_block + 1 + u64::from(meta_group), within);
    }
    // meta_bg: each meta group's descriptors sit in its first group, after the backup
    // superblock when that group has one.
    let g0 = meta_group * per_block;
    let mut blk = first + u64::from(g0) * u64::from(sb.blocks_per_group);
    if has_super(sb, g0) {
        blk += 1;
    }
    if sb.block_size == 1024 && first == 0 && g0 == 0 {
        blk += 1;
    }
    (blk, within)
}

/// Check one descriptor (`metadata_csum`: crc32c of the group number and the descriptor
/// with its checksum zeroed, low 16 bits) and return its inode table block.
pub fn inode_table(sb: &Superblock, g: u32, desc: &[u8]) -> Result<u64, Ext4Error> {
    let (blk, _) = desc_location(sb, g);
    if let Some(seed) = sb.csum_seed {
        let mut c = crc32c_raw(seed, &g.to_le_bytes());
        c = crc32c_raw(c, desc.get(..0x1e).unwrap_or(&[]));
        c = crc32c_raw(c, &[0, 0]);
        c = crc32c_raw(c, desc.get(0x20..).unwrap_or(&[]));
        if (c & 0xffff) as u16 != le16(desc, 0x1e) {
            return Err(Ext4Error::Checksum { what: "group descriptor", ino: 0, block: blk });
        }
    }
    let hi = if sb.desc_size >= 64 { u64::from(le32(desc, 0x28)) << 32 } else { 0 };
    let table = u64::from(le32(desc, 0x8)) | hi;
    let table_blocks = (u64::from(sb.inodes_per_group) * u64::from(sb.inode_size)).div_ceil(u64::from(sb.block_size));
    if table == 0 || table.checked_add(table_blocks).is_none_or(|end| end > sb.blocks_count) {
        return Err(Ext4Error::Corrupt { what: "inode table outside the filesystem", ino: 0, block: blk });
    }
    Ok(table)
}

/// `bg_flags`: the block bitmap is not initialised (every block but the group's own
/// metadata is free).
pub const BG_BLOCK_UNINIT: u16 = 0x2;

/// What the in-place writer needs of a group beyond its inode table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bitmaps {
    pub block_bitmap: u64,
    pub inode_bitmap: u64,
    pub flags: u16,
    /// `bg_block_bitmap_csum` (lo, and hi with 64-byte descriptors) and how many bits of
    /// the crc32c it keeps.
    pub block_bitmap_csum: u32,
    pub block_bitmap_csum_bits: u32,
}

/// The bitmap fields of one descriptor (check it with [`inode_table`] first).
pub fn bitmaps(sb: &Superblock, desc: &[u8]) -> Bitmaps {
    let wide = sb.desc_size >= 64;
    let hi = |off: usize| if wide { u64::from(le32(desc, off)) << 32 } else { 0 };
    let csum_hi = if wide { u32::from(le16(desc, 0x38)) << 16 } else { 0 };
    Bitmaps {
        block_bitmap: u64::from(le32(desc, 0x0)) | hi(0x20),
        inode_bitmap: u64::from(le32(desc, 0x4)) | hi(0x24),
        flags: le16(desc, 0x12),
        block_bitmap_csum: u32::from(le16(desc, 0x18)) | csum_hi,
        block_bitmap_csum_bits: if wide { 32 } else { 16 },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sparse_super_groups() {
        let mut raw = alloc::vec![0u8; 1024];
        raw[4..8].copy_from_slice(&100_000u32.to_le_bytes());
        raw[0x14] = 1;
        raw[0x20..0x24].copy_from_slice(&1024u32.to_le_bytes());
        raw[0x28..0x2c].copy_from_slice(&16u32.to_le_bytes());
        raw[0..4].copy_from_slice(&16u32.to_le_bytes());
        raw[0x38..0x3a].copy_from_slice(&0xef53u16.to_le_bytes());
        raw[0x4c] = 1;
        raw[0x58] = 128;
        raw[0x64] = 1; // sparse_super
        let sb = super::Superblock::parse(&raw).unwrap();
        let with: alloc::vec::Vec<u32> = (0..100).filter(|&g| super::has_super(&sb, g)).collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
        assert_eq!(super::desc_location(&sb, 33), (3, 32));
    }
}
