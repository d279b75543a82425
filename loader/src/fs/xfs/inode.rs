// SPDX-License-Identifier: MIT OR Apache-2.0
//! XFS inodes (`struct xfs_dinode`, big-endian): the core, then the data fork (and the
//! attribute fork, which the reader skips).
//!
//! Layout: "XFS Algorithms & Data Structures", chapters "On-disk Inode" and "Data
//! Extents"; offsets from `xfs_format.h`.

use alloc::vec::Vec;

use super::sb::Superblock;
use super::{FS, be16, be32, be64};
use crate::crc::crc32c;
use crate::fs::{FsError, NodeKind};

/// `di_magic`: "IN".
const MAGIC: u16 = 0x494e;
/// Core sizes: v1/v2 inodes, v3 (v5 filesystems) inodes.
const CORE_V2: usize = 100;
const CORE_V3: usize = 176;
const CRC_OFFSET: usize = 100;

// di_format
pub const FMT_LOCAL: u8 = 1;
pub const FMT_EXTENTS: u8 = 2;
pub const FMT_BTREE: u8 = 3;
// di_flags
const DIFLAG_REALTIME: u16 = 0x1;
pub const DIFLAG_IMMUTABLE: u16 = 0x8;
pub const DIFLAG_APPEND: u16 = 0x10;
// di_flags2
pub const DIFLAG2_REFLINK: u64 = 1 << 1;
const DIFLAG2_NREXT64: u64 = 1 << 4;

const S_IFMT: u16 = 0o170000;
const S_IFDIR: u16 = 0o040000;
const S_IFREG: u16 = 0o100000;
const S_IFLNK: u16 = 0o120000;

/// An inode as the reader uses it.
#[derive(Clone, Debug)]
pub struct Inode {
    pub ino: u64,
    pub mode: u16,
    pub format: u8,
    pub size: u64,
    /// Data fork extent count (`di_nextents`, or `di_big_nextents` with nrext64).
    pub nextents: u64,
    /// The data fork's bytes: extent records, the btree root, or local data.
    pub fork: Vec<u8>,
    /// `di_flags` and (v3 inodes) `di_flags2`: what [`super::Xfs::write_in_place`] must
    /// respect (immutable, append-only, shared extents).
    pub flags: u16,
    pub flags2: u64,
}

impl Inode {
    pub fn kind(&self) -> NodeKind {
        match self.mode & S_IFMT {
            S_IFDIR => NodeKind::Dir,
            S_IFREG => NodeKind::File,
            S_IFLNK => NodeKind::Symlink,
            _ => NodeKind::Other,
        }
    }
}

/// Parse inode `ino` from its `inode_size` bytes `raw`.
pub fn parse(sb: &Superblock, ino: u64, raw: &[u8]) -> Result<Inode, FsError> {
    let corrupt = |what| Err(FsError::Corrupt { fs: FS, what, at: ino });
    if raw.len() < usize::from(sb.inode_size) || raw.len() < CORE_V3 {
        return corrupt("short inode");
    }
    if be16(raw, 0) != MAGIC {
        return corrupt("inode magic");
    }
    let version = raw[4];
    let core = match (sb.version, version) {
        (5, 3) => CORE_V3,
        (4, 1 | 2) => CORE_V2,
        _ => return corrupt("inode version does not match the filesystem's"),
    };
    if version == 3 {
        let mut c = raw[..usize::from(sb.inode_size)].to_vec();
        let stored = u32::from_le_bytes([c[CRC_OFFSET], c[CRC_OFFSET + 1], c[CRC_OFFSET + 2], c[CRC_OFFSET + 3]]);
        c[CRC_OFFSET..CRC_OFFSET + 4].fill(0);
        if crc32c(&c) != stored {
            return Err(FsError::Checksum { fs: FS, what: "inode", at: ino });
        }
        if be64(raw, 152) != ino {
            return corrupt("inode number in the inode differs from its place");
        }
    }
    let flags = be16(raw, 90);
    if flags & DIFLAG_REALTIME != 0 {
        return Err(FsError::UnsupportedFeature { fs: FS, name: "files on the realtime subvolume" });
    }
    let flags2 = if version == 3 { be64(raw, 120) } else { 0 };
    let nextents = if flags2 & DIFLAG2_NREXT64 != 0 { be64(raw, 24) } else { u64::from(be32(raw, 76)) };
    let forkoff = usize::from(raw[82]) * 8;
    let literal = usize::from(sb.inode_size) - core;
    let fork_len = if forkoff == 0 { literal } else { forkoff };
    if fork_len > literal {
        return corrupt("attribute fork offset past the inode");
    }
    let size = be64(raw, 56);
    if size > i64::MAX as u64 {
        return corrupt("file size");
    }
    Ok(Inode {
        ino,
        mode: be16(raw, 2),
        format: raw[5],
        size,
        nextents,
        fork: raw[core..core + fork_len].to_vec(),
        flags,
        flags2,
    })
}

/// `xfs_dsymlink_hdr.sl_magic`: "XSLM".
pub const SYMLINK_MAGIC: u32 = 0x5853_4c4d;
const SYMLINK_HDR: usize = 56;
const SYMLINK_CRC_OFFSET: usize = 12;

/// The target bytes that one extent `b` of a v5 remote symlink carries after its header,
/// which must name `ino` as owner and `offset` as where in the target they go.
pub fn remote_symlink_chunk(b: &[u8], ino: u64, offset: usize, blk: u64) -> Result<&[u8], FsError> {
    let corrupt = |what| Err(FsError::Corrupt { fs: FS, what, at: blk });
    if b.len() <= SYMLINK_HDR || be32(b, 0) != SYMLINK_MAGIC {
        return corrupt("remote symlink block magic");
    }
    let mut c = b.to_vec();
    let o = SYMLINK_CRC_OFFSET;
    let stored = u32::from_le_bytes([c[o], c[o + 1], c[o + 2], c[o + 3]]);
    c[o..o + 4].fill(0);
    if crc32c(&c) != stored {
        return Err(FsError::Checksum { fs: FS, what: "remote symlink block", at: blk });
    }
    let bytes = be32(b, 8) as usize;
    if be64(b, 32) != ino || be32(b, 4) as usize != offset || bytes > b.len() - SYMLINK_HDR {
        return corrupt("remote symlink block header");
    }
    Ok(&b[SYMLINK_HDR..SYMLINK_HDR + bytes])
}
