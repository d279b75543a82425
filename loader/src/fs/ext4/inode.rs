// SPDX-License-Identifier: MIT OR Apache-2.0
//! Inodes: the on-disk record, its `metadata_csum` checksum, and in-inode extended
//! attributes (only `system.data`, the tail of inline data, is read).
//!
//! Linux `Documentation/filesystems/ext4/inodes.rst`, `inlinedata.rst`, `attributes.rst`.

use alloc::vec::Vec;

use super::le::{le16, le32};
use super::superblock::{INCOMPAT_LARGEDIR, RO_COMPAT_HUGE_FILE, Superblock};
use super::{Ext4Error, FileKind};
use crate::crc::crc32c_raw;

pub const ROOT_INO: u32 = 2;

// i_flags (Linux `fs/ext4/ext4.h`, `EXT4_*_FL`).
pub const FLAG_SECRM: u32 = 0x1;
pub const FLAG_UNRM: u32 = 0x2;
pub const FLAG_COMPR: u32 = 0x4;
pub const FLAG_SYNC: u32 = 0x8;
pub const FLAG_IMMUTABLE: u32 = 0x10;
pub const FLAG_APPEND: u32 = 0x20;
pub const FLAG_NODUMP: u32 = 0x40;
pub const FLAG_NOATIME: u32 = 0x80;
pub const FLAG_DIRTY: u32 = 0x100;
pub const FLAG_COMPRBLK: u32 = 0x200;
pub const FLAG_NOCOMPR: u32 = 0x400;
pub const FLAG_ENCRYPT: u32 = 0x800;
pub const FLAG_JOURNAL_DATA: u32 = 0x4000;
pub const FLAG_NOTAIL: u32 = 0x8000;
pub const FLAG_DIRSYNC: u32 = 0x1_0000;
pub const FLAG_TOPDIR: u32 = 0x2_0000;
pub const FLAG_HUGE_FILE: u32 = 0x4_0000;
pub const FLAG_EXTENTS: u32 = 0x8_0000;
pub const FLAG_VERITY: u32 = 0x10_0000;
pub const FLAG_EA_INODE: u32 = 0x20_0000;
pub const FLAG_EOFBLOCKS: u32 = 0x40_0000;
/// The ext4 snapshot patches' `SNAPFILE`, `SNAPFILE_DELETED`, `SNAPFILE_SHRUNK`.
pub const FLAGS_SNAPSHOT: u32 = 0x100_0000 | 0x400_0000 | 0x800_0000;
pub const FLAG_DAX: u32 = 0x200_0000;
pub const FLAG_INLINE_DATA: u32 = 0x1000_0000;
pub const FLAG_PROJINHERIT: u32 = 0x2000_0000;

/// Bytes of file data `i_block` holds.
pub const I_BLOCK_LEN: usize = 60;

/// An inode, as read from the inode table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inode {
    pub(super) ino: u32,
    pub(super) mode: u16,
    pub(super) flags: u32,
    pub(super) size: u64,
    /// `i_blocks` in 512-byte units (huge_file scaling applied).
    pub(super) sectors: u64,
    pub(super) file_acl: u64,
    pub(super) i_block: [u8; I_BLOCK_LEN],
    /// Seed for this inode's extent-block and directory-block checksums.
    pub(super) csum_seed: u32,
    /// The `system.data` xattr value: inline data past the 60 bytes in `i_block`.
    pub(super) inline_tail: Vec<u8>,
}

impl Inode {
    /// Inode number.
    pub fn ino(&self) -> u32 {
        self.ino
    }
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// What the inode is.
    pub fn kind(&self) -> FileKind {
        match self.mode & 0xf000 {
            0x8000 => FileKind::File,
            0x4000 => FileKind::Dir,
            0xa000 => FileKind::Symlink,
            _ => FileKind::Other,
        }
    }
    pub(super) fn has_flag(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// The inline data (`i_block` then `system.data`), cut to `i_size`.
    pub(super) fn inline_data(&self) -> Result<Vec<u8>, Ext4Error> {
        let mut v = Vec::with_capacity(I_BLOCK_LEN + self.inline_tail.len());
        v.extend_from_slice(&self.i_block);
        v.extend_from_slice(&self.inline_tail);
        if self.size > v.len() as u64 {
            return Err(Ext4Error::Corrupt { what: "inline data shorter than i_size", ino: self.ino, block: 0 });
        }
        v.truncate(self.size as usize);
        Ok(v)
    }

    /// A symlink whose target sits in `i_block` itself.
    pub(super) fn is_fast_symlink(&self, block_size: u32) -> bool {
        let ea_sectors = if self.file_acl != 0 { u64::from(block_size / 512) } else { 0 };
        self.kind() == FileKind::Symlink
            && !self.has_flag(FLAG_INLINE_DATA | FLAG_EXTENTS)
            && self.size < I_BLOCK_LEN as u64
            && self.sectors.saturating_sub(ea_sectors) == 0
    }
}

/// Parse the `sb.inode_size` bytes of inode `ino`, checking its checksum.
pub fn parse(sb: &Superblock, ino: u32, raw: &[u8], block: u64) -> Result<Inode, Ext4Error> {
    let corrupt = |what| Ext4Error::Corrupt { what, ino, block };
    if raw.len() < 128 {
        return Err(corrupt("inode record too small"));
    }
    let isize = raw.len();
    let extra = if isize > 128 { usize::from(le16(raw, 0x80)) } else { 0 };
    if extra > isize - 128 || extra % 4 != 0 {
        return Err(corrupt("i_extra_isize out of range"));
    }
    let generation = le32(raw, 0x64);
    let mut csum_seed = 0;
    if let Some(seed) = sb.csum_seed {
        csum_seed = crc32c_raw(crc32c_raw(seed, &ino.to_le_bytes()), &generation.to_le_bytes());
        // The checksum covers the whole record with i_checksum_lo (and _hi, when the
        // extra fields reach it) read as zero.
        let has_hi = extra >= 4;
        let mut c = crc32c_raw(csum_seed, &raw[..0x7c]);
        c = crc32c_raw(c, &[0, 0]);
        c = crc32c_raw(c, &raw[0x7e..0x80]);
        if isize > 128 {
            c = crc32c_raw(c, &raw[0x80..0x82]);
            if has_hi {
                c = crc32c_raw(c, &[0, 0]);
                c = crc32c_raw(c, &raw[0x84..]);
            } else {
                c = crc32c_raw(c, &raw[0x82..]);
            }
        }
        let stored = u32::from(le16(raw, 0x7c)) | if has_hi { u32::from(le16(raw, 0x82)) << 16 } else { 0 };
        let ok = if has_hi { c == stored } else { c & 0xffff == stored };
        if !ok {
            if raw.iter().all(|&b| b == 0) {
                return Err(corrupt("directory entry names an unused inode"));
            }
            return Err(Ext4Error::Checksum { what: "inode", ino, block });
        }
    }
    let mode = le16(raw, 0);
    if mode == 0 {
        return Err(corrupt("directory entry names an unused inode"));
    }
    let flags = le32(raw, 0x20);
    let is_file = mode & 0xf000 == 0x8000;
    let size_hi = if is_file || sb.has_incompat(INCOMPAT_LARGEDIR) { u64::from(le32(raw, 0x6c)) << 32 } else { 0 };
    let size = u64::from(le32(raw, 0x4)) | size_hi;
    let huge = sb.feature_ro_compat & RO_COMPAT_HUGE_FILE != 0;
    let mut sectors = u64::from(le32(raw, 0x1c)) | if huge { u64::from(le16(raw, 0x74)) << 32 } else { 0 };
    if huge && flags & FLAG_HUGE_FILE != 0 {
        sectors = sectors.saturating_mul(u64::from(sb.block_size / 512));
    }
    let mut i_block = [0u8; I_BLOCK_LEN];
    i_block.copy_from_slice(&raw[0x28..0x28 + I_BLOCK_LEN]);
    let inline_tail = if flags & FLAG_INLINE_DATA != 0 {
        system_data(&raw[128 + extra..]).ok_or(corrupt("inline data attribute malformed"))?.to_vec()
    } else {
        Vec::new()
    };
    Ok(Inode {
        ino,
        mode,
        flags,
        size,
        sectors,
        file_acl: u64::from(le32(raw, 0x68)) | u64::from(le16(raw, 0x76)) << 32,
        i_block,
        csum_seed,
        inline_tail,
    })
}

const XATTR_MAGIC: u32 = 0xea02_0000;
const XATTR_INDEX_SYSTEM: u8 = 7;

/// The value of `system.data` among the in-inode xattrs (`ibody` starts right after
/// `i_extra_isize`): empty when there are none, `None` when the table is malformed.
fn system_data(ibody: &[u8]) -> Option<&[u8]> {
    if le32(ibody, 0) != XATTR_MAGIC {
        return Some(&[]);
    }
    let entries = ibody.get(4..)?;
    let mut pos = 0usize;
    // Each entry is at least 16 bytes, so this walk ends within the inode.
    while pos + 16 <= entries.len() && le32(entries, pos) != 0 {
        let name_len = usize::from(entries[pos]);
        let index = entries[pos + 1];
        let value_offs = usize::from(le16(entries, pos + 2));
        let value_inum = le32(entries, pos + 4);
        let value_size = le32(entries, pos + 8) as usize;
        let name = entries.get(pos + 16..pos + 16 + name_len)?;
        if index == XATTR_INDEX_SYSTEM && name == b"data" {
            if value_inum != 0 {
                return None;
            }
            return entries.get(value_offs..value_offs.checked_add(value_size)?);
        }
        pos = (pos + 16 + name_len + 3) & !3;
    }
    Some(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_data_attribute() {
        let mut body = alloc::vec![0u8; 96];
        body[0..4].copy_from_slice(&XATTR_MAGIC.to_le_bytes());
        // one entry: name "data", index 7, value at 40 (relative to the first entry), 5 bytes
        let e = &mut body[4..];
        e[0] = 4;
        e[1] = 7;
        e[2..4].copy_from_slice(&40u16.to_le_bytes());
        e[8..12].copy_from_slice(&5u32.to_le_bytes());
        e[16..20].copy_from_slice(b"data");
        e[40..45].copy_from_slice(b"hello");
        assert_eq!(system_data(&body), Some(&b"hello"[..]));
        body[4 + 8..4 + 12].copy_from_slice(&500u32.to_le_bytes());
        assert_eq!(system_data(&body), None);
        assert_eq!(system_data(&[0u8; 8]), Some(&[][..]));
    }
}
