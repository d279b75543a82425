// SPDX-License-Identifier: MIT OR Apache-2.0
//! XFS version 2 directories: shortform (entries inside the inode) and the data blocks
//! of the block, leaf, node and btree forms. Every form keeps its entries in data blocks
//! below the leaf offset (32 GiB into the directory); the leaf and free-index blocks
//! above it only speed lookups up, so the reader walks the data blocks and never needs
//! them, whatever form the directory has taken.
//!
//! Layout: "XFS Algorithms & Data Structures", chapter "Directories"
//! (`xfs_dir2_sf_hdr`, `xfs_dir2_data_entry`, `xfs_dir2_data_unused`,
//! `xfs_dir2_block_tail`, `xfs_dir3_blk_hdr`).

use super::{FS, be16, be32, be64};
use crate::crc::crc32c;
use crate::fs::FsError;

/// Data block magics: v4 "XD2B" (single-block form) and "XD2D"; v5 "XDB3" and "XDD3".
const XD2B: u32 = 0x5844_3242;
const XD2D: u32 = 0x5844_3244;
const XDB3: u32 = 0x5844_4233;
const XDD3: u32 = 0x5844_4433;
const HDR_V4: usize = 16;
const HDR_V5: usize = 64;
const CRC_OFFSET: usize = 4;
/// `xfs_dir2_data_unused.freetag`.
const FREE_TAG: u16 = 0xffff;

/// One entry: inode number, name, file type byte (0 without ftype).
pub type Visit<'a> = dyn FnMut(u64, &[u8], u8) -> bool + 'a;

/// Walk a shortform directory (the inode's data fork); `.` and `..` are not stored.
/// Returns whether `f` stopped the walk.
pub fn walk_shortform(fork: &[u8], ftype: bool, ino: u64, f: &mut Visit<'_>) -> Result<bool, FsError> {
    let corrupt = |what| Err(FsError::Corrupt { fs: FS, what, at: ino });
    let (Some(&count), Some(&i8count)) = (fork.first(), fork.get(1)) else { return corrupt("shortform directory") };
    let ino_len = if i8count == 0 { 4 } else { 8 };
    let n = if i8count == 0 { usize::from(count) } else { usize::from(i8count) };
    let mut pos = 2 + ino_len;
    for _ in 0..n {
        let Some(&namelen) = fork.get(pos) else { return corrupt("shortform directory entry") };
        let namelen = usize::from(namelen);
        let name_at = pos + 3;
        let ft_len = usize::from(ftype);
        let end = name_at + namelen + ft_len + ino_len;
        if namelen == 0 || end > fork.len() {
            return corrupt("shortform directory entry");
        }
        let name = &fork[name_at..name_at + namelen];
        let ft = if ftype { fork[name_at + namelen] } else { 0 };
        let at = name_at + namelen + ft_len;
        let child = if ino_len == 4 { u64::from(be32(fork, at)) } else { be64(fork, at) };
        if f(child, name, ft) {
            return Ok(true);
        }
        pos = end;
    }
    Ok(false)
}

/// The shortform directory's parent inode.
pub fn shortform_parent(fork: &[u8]) -> Option<u64> {
    match fork.get(1)? {
        0 => (fork.len() >= 6).then(|| u64::from(be32(fork, 2))),
        _ => (fork.len() >= 10).then(|| be64(fork, 2)),
    }
}

/// Walk the entries of one directory data block `b` (one directory block, whole) of
/// directory `ino` at filesystem block `blk`. Returns whether `f` stopped the walk.
pub fn walk_block(b: &[u8], v5: bool, ftype: bool, ino: u64, blk: u64, f: &mut Visit<'_>) -> Result<bool, FsError> {
    let corrupt = |what| Err(FsError::Corrupt { fs: FS, what, at: blk });
    if b.len() < HDR_V5 + 16 {
        return corrupt("directory block");
    }
    let magic = be32(b, 0);
    let (single, hdr) = match (v5, magic) {
        (false, XD2B) => (true, HDR_V4),
        (false, XD2D) => (false, HDR_V4),
        (true, XDB3) => (true, HDR_V5),
        (true, XDD3) => (false, HDR_V5),
        _ => return corrupt("directory data block magic"),
    };
    if v5 {
        let mut c = b.to_vec();
        let stored = u32::from_le_bytes([c[CRC_OFFSET], c[CRC_OFFSET + 1], c[CRC_OFFSET + 2], c[CRC_OFFSET + 3]]);
        c[CRC_OFFSET..CRC_OFFSET + 4].fill(0);
        if crc32c(&c) != stored {
            return Err(FsError::Checksum { fs: FS, what: "directory block", at: blk });
        }
        if be64(b, 40) != ino {
            return corrupt("directory block of another inode");
        }
    }
    let mut end = b.len();
    if single {
        // The block form ends in the leaf entries (8 bytes each) and a tail of 8.
        let count = be32(b, b.len() - 8) as usize;
        match count.checked_mul(8).and_then(|l| b.len().checked_sub(8 + l)) {
            Some(e) if e >= hdr => end = e,
            _ => return corrupt("directory block tail"),
        }
    }
    let mut pos = hdr;
    while pos + 8 <= end {
        if be16(b, pos) == FREE_TAG {
            let len = usize::from(be16(b, pos + 2));
            if len < 8 || len % 8 != 0 || pos + len > end {
                return corrupt("free space in a directory block");
            }
            pos += len;
            continue;
        }
        let child = be64(b, pos);
        let namelen = usize::from(b[pos + 8]);
        let ft_len = usize::from(ftype);
        let size = (8 + 1 + namelen + ft_len + 2).next_multiple_of(8);
        if namelen == 0 || pos + size > end {
            return corrupt("directory entry");
        }
        let name = &b[pos + 9..pos + 9 + namelen];
        let ft = if ftype { b[pos + 9 + namelen] } else { 0 };
        if f(child, name, ft) {
            return Ok(true);
        }
        pos += size;
    }
    Ok(false)
}
