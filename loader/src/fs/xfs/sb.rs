// SPDX-License-Identifier: MIT OR Apache-2.0
//! The XFS superblock: the first sector of allocation group 0, big-endian.
//!
//! Layout and feature bits: "XFS Algorithms & Data Structures", chapter "Allocation
//! Groups" (the superblock), and `xfs_format.h`'s `struct xfs_dsb` for the offsets.

use super::{FS, be16, be32, be64};
use crate::crc::crc32c;
use crate::fs::FsError;

/// `sb_magicnum`: "XFSB".
pub const MAGIC: u32 = 0x5846_5342;
/// Bytes of the superblock that carry fields (the rest of its sector is zero).
pub const SB_LEN: usize = 264;
const CRC_OFFSET: usize = 224;

// sb_versionnum (low nibble: the version; the rest: v4 feature bits)
const VERSION_NUMBITS: u16 = 0x000f;
const VERSION_DIRV2BIT: u16 = 0x2000;
const VERSION_MOREBITSBIT: u16 = 0x8000;
// sb_features2 (v4)
const VERSION2_FTYPE: u32 = 0x0000_0200;
// sb_features_incompat (v5)
pub const INCOMPAT_FTYPE: u32 = 1 << 0;
pub const INCOMPAT_SPINODES: u32 = 1 << 1;
pub const INCOMPAT_META_UUID: u32 = 1 << 2;
pub const INCOMPAT_BIGTIME: u32 = 1 << 3;
pub const INCOMPAT_NEEDSREPAIR: u32 = 1 << 4;
pub const INCOMPAT_NREXT64: u32 = 1 << 5;
pub const INCOMPAT_EXCHRANGE: u32 = 1 << 6;
pub const INCOMPAT_PARENT: u32 = 1 << 7;
// sb_features_ro_compat (v5): the free inode btree, the reverse-mapping btree, reflink
// (the refcount btree), counts in the inode btree roots.
pub const RO_COMPAT_FINOBT: u32 = 1 << 0;
pub const RO_COMPAT_RMAPBT: u32 = 1 << 1;
pub const RO_COMPAT_REFLINK: u32 = 1 << 2;
pub const RO_COMPAT_INOBTCNT: u32 = 1 << 3;
/// Every read-only-compatible feature known to leave a file's written extents alone
/// when their bytes are rewritten in place (none of them indexes or checksums data).
pub const RO_COMPAT_KNOWN: u32 = RO_COMPAT_FINOBT | RO_COMPAT_RMAPBT | RO_COMPAT_REFLINK | RO_COMPAT_INOBTCNT;
/// Every incompat feature whose on-disk change this reader understands (none of them
/// changes where file bytes or directory entries are, except ftype and nrext64, which
/// it reads).
const INCOMPAT_KNOWN: u32 = INCOMPAT_FTYPE
    | INCOMPAT_SPINODES
    | INCOMPAT_META_UUID
    | INCOMPAT_BIGTIME
    | INCOMPAT_NEEDSREPAIR
    | INCOMPAT_NREXT64
    | INCOMPAT_EXCHRANGE
    | INCOMPAT_PARENT;

/// What the reader keeps of the superblock.
#[derive(Clone, Debug)]
pub struct Superblock {
    pub version: u8,
    pub block_size: u32,
    pub dblocks: u64,
    pub uuid: [u8; 16],
    pub logstart: u64,
    pub logblocks: u32,
    pub rootino: u64,
    pub agblocks: u32,
    pub agcount: u32,
    pub agblklog: u8,
    pub inode_size: u16,
    pub inopblog: u8,
    pub fname: [u8; 12],
    pub dirblklog: u8,
    pub incompat: u32,
    /// `sb_features_ro_compat` (0 on v4).
    pub ro_compat: u32,
    pub log_incompat: u32,
    /// Directory entries carry a file type byte.
    pub ftype: bool,
}

impl Superblock {
    /// Parse and check the superblock's sector (at least [`SB_LEN`] bytes; the v5 CRC
    /// covers the whole sector).
    pub fn parse(raw: &[u8]) -> Result<Self, FsError> {
        let bad = |why| Err(FsError::NotOurs { fs: FS, why });
        let corrupt = |what| Err(FsError::Corrupt { fs: FS, what, at: 0 });
        if raw.len() < SB_LEN || be32(raw, 0) != MAGIC {
            return bad("no XFS superblock magic");
        }
        let versionnum = be16(raw, 100);
        let version = (versionnum & VERSION_NUMBITS) as u8;
        if version != 4 && version != 5 {
            return Err(FsError::UnsupportedFeature { fs: FS, name: "a superblock version other than 4 or 5" });
        }
        let sect_size = be16(raw, 102);
        if !(512..=32768).contains(&sect_size) || !sect_size.is_power_of_two() || raw.len() < usize::from(sect_size) {
            return corrupt("sector size");
        }
        if version == 5 {
            let mut s = raw[..usize::from(sect_size)].to_vec();
            let stored = u32::from_le_bytes([s[CRC_OFFSET], s[CRC_OFFSET + 1], s[CRC_OFFSET + 2], s[CRC_OFFSET + 3]]);
            s[CRC_OFFSET..CRC_OFFSET + 4].fill(0);
            if crc32c(&s) != stored {
                return Err(FsError::Checksum { fs: FS, what: "superblock", at: 0 });
            }
        }
        let block_size = be32(raw, 4);
        let block_log = raw[120];
        if !(512..=65536).contains(&block_size)
            || !block_size.is_power_of_two()
            || u32::from(block_log) != block_size.trailing_zeros()
        {
            return corrupt("block size");
        }
        let inode_size = be16(raw, 104);
        let inopblock = be16(raw, 106);
        let inopblog = raw[123];
        if !(256..=2048).contains(&inode_size)
            || !inode_size.is_power_of_two()
            || u32::from(inode_size) > block_size
            || u32::from(inopblock) != block_size / u32::from(inode_size)
            || u32::from(inopblog) != u32::from(inopblock).trailing_zeros()
            || raw[122] as u32 != inode_size.trailing_zeros()
        {
            return corrupt("inode size");
        }
        let agblocks = be32(raw, 84);
        let agcount = be32(raw, 88);
        let agblklog = raw[124];
        if agblocks == 0 || agcount == 0 || agblklog > 31 || u64::from(agblocks) > 1u64 << agblklog {
            return corrupt("allocation group geometry");
        }
        // agblklog is log2(agblocks) rounded up.
        if agblklog > 0 && u64::from(agblocks) <= 1u64 << (agblklog - 1) {
            return corrupt("allocation group size log");
        }
        let dblocks = be64(raw, 8);
        if dblocks == 0 || dblocks > u64::from(agblocks) * u64::from(agcount) {
            return corrupt("data blocks beyond the allocation groups");
        }
        let dirblklog = raw[192];
        if u32::from(block_log) + u32::from(dirblklog) > 16 {
            return corrupt("directory block size");
        }
        if be64(raw, 16) != 0 {
            // A realtime device: the files there are not on this disk.
            return Err(FsError::UnsupportedFeature { fs: FS, name: "a realtime subvolume" });
        }
        let mut sb = Superblock {
            version,
            block_size,
            dblocks,
            uuid: raw[32..48].try_into().unwrap_or([0; 16]),
            logstart: be64(raw, 48),
            logblocks: be32(raw, 96),
            rootino: be64(raw, 56),
            agblocks,
            agcount,
            agblklog,
            inode_size,
            inopblog,
            fname: raw[108..120].try_into().unwrap_or([0; 12]),
            dirblklog,
            incompat: 0,
            ro_compat: 0,
            log_incompat: 0,
            ftype: false,
        };
        if version == 4 {
            if versionnum & VERSION_DIRV2BIT == 0 {
                return Err(FsError::UnsupportedFeature { fs: FS, name: "version 1 directories" });
            }
            sb.ftype = versionnum & VERSION_MOREBITSBIT != 0 && be32(raw, 200) & VERSION2_FTYPE != 0;
        } else {
            sb.ro_compat = be32(raw, 212);
            sb.incompat = be32(raw, 216);
            sb.log_incompat = be32(raw, 220);
            if sb.incompat & !INCOMPAT_KNOWN != 0 {
                return Err(FsError::UnsupportedFeature { fs: FS, name: "an incompat feature newer than this reader" });
            }
            if sb.incompat & INCOMPAT_NEEDSREPAIR != 0 {
                return Err(FsError::UnsupportedFeature {
                    fs: FS,
                    name: "needsrepair (xfs_repair must run before the filesystem is read)",
                });
            }
            sb.ftype = sb.incompat & INCOMPAT_FTYPE != 0;
        }
        if !sb.valid_ino(sb.rootino) {
            return corrupt("root inode number");
        }
        Ok(sb)
    }

    /// The directory block size in bytes.
    pub fn dir_block_size(&self) -> u32 {
        self.block_size << self.dirblklog
    }

    /// The linear block number (`agno * agblocks + agbno`) of encoded filesystem block
    /// `fsb` (`agno << agblklog | agbno`), or `None` when it is outside the filesystem.
    pub fn fsb_to_linear(&self, fsb: u64) -> Option<u64> {
        let agno = fsb >> self.agblklog;
        let agbno = fsb & ((1u64 << self.agblklog) - 1);
        if agno >= u64::from(self.agcount) || agbno >= u64::from(self.agblocks) {
            return None;
        }
        let lin = agno * u64::from(self.agblocks) + agbno;
        (lin < self.dblocks).then_some(lin)
    }

    /// Byte offset of inode `ino` on the device, or `None` when the number is impossible.
    pub fn inode_offset(&self, ino: u64) -> Option<u64> {
        if !self.valid_ino(ino) {
            return None;
        }
        let per_ag = u32::from(self.agblklog) + u32::from(self.inopblog);
        let agno = ino >> per_ag;
        let agbno = (ino >> self.inopblog) & ((1u64 << self.agblklog) - 1);
        let index = ino & ((1u64 << self.inopblog) - 1);
        let lin = agno * u64::from(self.agblocks) + agbno;
        Some(lin * u64::from(self.block_size) + index * u64::from(self.inode_size))
    }

    fn valid_ino(&self, ino: u64) -> bool {
        let per_ag = u32::from(self.agblklog) + u32::from(self.inopblog);
        if ino == 0 || per_ag >= 64 {
            return false;
        }
        let agno = ino >> per_ag;
        let agbno = (ino >> self.inopblog) & ((1u64 << self.agblklog) - 1);
        agno < u64::from(self.agcount)
            && agbno < u64::from(self.agblocks)
            && agno * u64::from(self.agblocks) + agbno < self.dblocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v4 superblock with sane geometry (4 KiB blocks, 512-byte inodes, 2 AGs).
    fn v4() -> alloc::vec::Vec<u8> {
        let mut b = alloc::vec![0u8; 512];
        b[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&4096u32.to_be_bytes());
        b[8..16].copy_from_slice(&8192u64.to_be_bytes());
        b[56..64].copy_from_slice(&128u64.to_be_bytes());
        b[84..88].copy_from_slice(&4096u32.to_be_bytes());
        b[88..92].copy_from_slice(&2u32.to_be_bytes());
        b[100..102].copy_from_slice(&(4 | VERSION_DIRV2BIT).to_be_bytes());
        b[102..104].copy_from_slice(&512u16.to_be_bytes());
        b[104..106].copy_from_slice(&512u16.to_be_bytes());
        b[106..108].copy_from_slice(&8u16.to_be_bytes());
        (b[120], b[122], b[123], b[124]) = (12, 9, 3, 12);
        b
    }

    #[test]
    fn geometry_is_checked_without_overflow() {
        let sb = Superblock::parse(&v4()).unwrap();
        assert_eq!(sb.inode_offset(128), Some(128 * 512));
        assert_eq!(sb.fsb_to_linear(1 << 12 | 5), Some(4096 + 5));
        assert_eq!(sb.fsb_to_linear(2 << 12), None);
        // Logs that would overflow a shift (found by the fuzzer: block log 200).
        for (at, v) in [(120, 200u8), (123, 77), (124, 40), (192, 250)] {
            let mut b = v4();
            b[at] = v;
            assert!(matches!(Superblock::parse(&b), Err(FsError::Corrupt { .. })), "byte {at} = {v}");
        }
    }
}
