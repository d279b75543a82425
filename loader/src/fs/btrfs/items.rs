// SPDX-License-Identifier: MIT OR Apache-2.0
//! The items the reader interprets: `INODE_ITEM`, `DIR_ITEM`/`DIR_INDEX`, `ROOT_ITEM`
//! and `EXTENT_DATA` (btrfs "On-disk format", sections "Inode", "Directory entries",
//! "Root", "File extents"; the structs of `btrfs_tree.h`). Every field is read through
//! bounds-checked helpers; an item shorter than its fixed part is corrupt.

use alloc::vec::Vec;

use super::tree::{Key, Root};
use super::{FS, le16, le64};
use crate::crc::crc32c_raw;
use crate::fs::{FsError, NodeKind};

pub const INODE_ITEM_LEN: usize = 160;
const DIR_ITEM_HEAD: usize = 30;
const ROOT_ITEM_MIN: usize = 239;
const FILE_EXTENT_INLINE_HEAD: usize = 21;
const FILE_EXTENT_REG_LEN: usize = 53;

/// What the reader keeps of an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inode {
    pub size: u64,
    pub mode: u32,
}

impl Inode {
    pub fn parse(d: &[u8], ino: u64) -> Result<Inode, FsError> {
        if d.len() < INODE_ITEM_LEN {
            return Err(FsError::Corrupt { fs: FS, what: "inode item too short", at: ino });
        }
        Ok(Inode { size: le64(d, 16), mode: super::le32(d, 52) })
    }
    pub fn kind(&self) -> NodeKind {
        match self.mode & 0o170000 {
            0o040000 => NodeKind::Dir,
            0o100000 => NodeKind::File,
            0o120000 => NodeKind::Symlink,
            _ => NodeKind::Other,
        }
    }
}

/// The `DIR_ITEM` key offset of `name`: crc32c seeded with `!1`, not inverted
/// (`btrfs_name_hash`).
pub fn name_hash(name: &[u8]) -> u64 {
    u64::from(crc32c_raw(!1, name))
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// The child: `(ino, INODE_ITEM, 0)` in the same tree, or `(tree id, ROOT_ITEM, _)`
    /// for a subvolume.
    pub location: Key,
    pub name: &'a [u8],
}

/// The entries packed in one `DIR_ITEM` or `DIR_INDEX` item (several share a `DIR_ITEM`
/// when their names' hashes collide).
pub fn dir_entries(d: &[u8], at: u64) -> Result<Vec<DirEntry<'_>>, FsError> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while p < d.len() {
        let head = d.get(p..p + DIR_ITEM_HEAD).ok_or(FsError::Corrupt { fs: FS, what: "directory item", at })?;
        let data_len = usize::from(le16(head, 25));
        let name_len = usize::from(le16(head, 27));
        let name = d.get(p + DIR_ITEM_HEAD..p + DIR_ITEM_HEAD + name_len).ok_or(FsError::Corrupt {
            fs: FS,
            what: "directory entry name past its item",
            at,
        })?;
        if name_len == 0 || p + DIR_ITEM_HEAD + name_len + data_len > d.len() {
            return Err(FsError::Corrupt { fs: FS, what: "directory entry length", at });
        }
        out.push(DirEntry { location: Key::parse(head, 0), name });
        p += DIR_ITEM_HEAD + name_len + data_len;
    }
    Ok(out)
}

/// A `ROOT_ITEM`: where a tree is and its root directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootItem {
    pub root: Root,
    pub root_dirid: u64,
}

impl RootItem {
    pub fn parse(d: &[u8], tree: u64) -> Result<RootItem, FsError> {
        if d.len() < ROOT_ITEM_MIN {
            return Err(FsError::Corrupt { fs: FS, what: "root item too short", at: tree });
        }
        let level = d[238];
        if level >= super::tree::MAX_LEVEL {
            return Err(FsError::Corrupt { fs: FS, what: "root item level", at: tree });
        }
        Ok(RootItem { root: Root { bytenr: le64(d, 176), level }, root_dirid: le64(d, 168) })
    }
}

/// `compression` of a file extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Zlib,
    Lzo,
    Zstd,
}

/// Where one file extent's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtentData<'a> {
    /// In the item itself (compressed or not), `ram_bytes` long once decompressed.
    Inline { data: &'a [u8], ram_bytes: u64, compression: Compression },
    /// Zeros: a hole (disk_bytenr 0) or a preallocated extent.
    Zero { len: u64 },
    /// On disk: `disk_num_bytes` at logical `disk_bytenr`; the file's bytes are
    /// `offset..offset + num_bytes` of what those decompress to (or of them as they are).
    Regular {
        disk_bytenr: u64,
        disk_num_bytes: u64,
        offset: u64,
        num_bytes: u64,
        ram_bytes: u64,
        compression: Compression,
    },
}

impl ExtentData<'_> {
    /// Bytes of the file this extent covers.
    pub fn len(&self) -> u64 {
        match self {
            ExtentData::Inline { ram_bytes, .. } => *ram_bytes,
            ExtentData::Zero { len } => *len,
            ExtentData::Regular { num_bytes, .. } => *num_bytes,
        }
    }
}

/// Parse an `EXTENT_DATA` item of the file at `ino` (for messages).
pub fn file_extent(d: &[u8], at: u64) -> Result<ExtentData<'_>, FsError> {
    let corrupt = |what| Err(FsError::Corrupt { fs: FS, what, at });
    if d.len() < FILE_EXTENT_INLINE_HEAD {
        return corrupt("file extent item too short");
    }
    let ram_bytes = le64(d, 8);
    let compression = match d[16] {
        0 => Compression::None,
        1 => Compression::Zlib,
        2 => Compression::Lzo,
        3 => Compression::Zstd,
        _ => return Err(FsError::UnsupportedFeature { fs: FS, name: "an unknown compression type" }),
    };
    if d[17] != 0 {
        return Err(FsError::UnsupportedFeature { fs: FS, name: "encrypted file extents" });
    }
    if le16(d, 18) != 0 {
        return Err(FsError::UnsupportedFeature { fs: FS, name: "file extents with another encoding" });
    }
    match d[20] {
        0 => {
            let data = &d[FILE_EXTENT_INLINE_HEAD..];
            if compression == Compression::None && (data.len() as u64) < ram_bytes {
                return corrupt("inline extent shorter than its size");
            }
            Ok(ExtentData::Inline { data, ram_bytes, compression })
        }
        t @ (1 | 2) => {
            if d.len() < FILE_EXTENT_REG_LEN {
                return corrupt("file extent item too short");
            }
            let (disk_bytenr, disk_num_bytes, offset, num_bytes) = (le64(d, 21), le64(d, 29), le64(d, 37), le64(d, 45));
            if t == 2 || disk_bytenr == 0 {
                return Ok(ExtentData::Zero { len: num_bytes });
            }
            let limit = if compression == Compression::None { disk_num_bytes } else { ram_bytes };
            if offset.checked_add(num_bytes).is_none_or(|e| e > limit) {
                return corrupt("file extent range past its data");
            }
            Ok(ExtentData::Regular { disk_bytenr, disk_num_bytes, offset, num_bytes, ram_bytes, compression })
        }
        _ => corrupt("file extent type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn name_hash_matches_btrfs() {
        // btrfs_name_hash("default") as the root tree's DIR_ITEM key carries it on any
        // mkfs.btrfs image (`btrfs inspect-internal dump-tree -t 1`).
        assert_eq!(name_hash(b"default"), 0x8dbf_c2d2);
    }

    #[test]
    fn inline_and_regular_extents() {
        let mut d = vec![0u8; 21];
        d[8..16].copy_from_slice(&5u64.to_le_bytes());
        d.extend_from_slice(b"hello");
        assert_eq!(
            file_extent(&d, 1).unwrap(),
            ExtentData::Inline { data: b"hello", ram_bytes: 5, compression: Compression::None }
        );
        d[8] = 9;
        assert!(file_extent(&d, 1).is_err(), "inline data shorter than ram_bytes");
        d[8] = 5;
        d[16] = 2;
        assert!(matches!(file_extent(&d, 1).unwrap(), ExtentData::Inline { compression: Compression::Lzo, .. }));
        d[17] = 1;
        assert!(matches!(file_extent(&d, 1), Err(FsError::UnsupportedFeature { .. })));
        let mut r = vec![0u8; 53];
        r[20] = 1;
        r[8..16].copy_from_slice(&8192u64.to_le_bytes());
        r[45..53].copy_from_slice(&4096u64.to_le_bytes());
        assert_eq!(file_extent(&r, 1).unwrap(), ExtentData::Zero { len: 4096 });
        r[21..29].copy_from_slice(&(1u64 << 20).to_le_bytes());
        r[29..37].copy_from_slice(&8192u64.to_le_bytes());
        r[37..45].copy_from_slice(&4096u64.to_le_bytes());
        assert!(matches!(file_extent(&r, 1).unwrap(), ExtentData::Regular { offset: 4096, num_bytes: 4096, .. }));
        r[37..45].copy_from_slice(&8192u64.to_le_bytes());
        assert!(file_extent(&r, 1).is_err(), "range past the extent");
        r[20] = 2;
        assert_eq!(file_extent(&r, 1).unwrap(), ExtentData::Zero { len: 4096 });
        assert!(file_extent(&r[..40], 1).is_err());
    }

    #[test]
    fn dir_entries_are_bounded() {
        let mut d = vec![0u8; 30];
        d[..8].copy_from_slice(&257u64.to_le_bytes());
        d[8] = 1;
        d[27] = 3;
        d.extend_from_slice(b"abc");
        let e = dir_entries(&d, 0).unwrap();
        assert_eq!(e, vec![DirEntry { location: Key::new(257, 1, 0), name: b"abc" }]);
        d[27] = 9;
        assert!(dir_entries(&d, 0).is_err());
        assert!(dir_entries(&d[..20], 0).is_err());
    }
}
