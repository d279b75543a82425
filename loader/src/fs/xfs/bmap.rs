// SPDX-License-Identifier: MIT OR Apache-2.0
//! A file's block map: the data fork's extent records, either in the inode (`extents`
//! format) or in the leaves of a block-mapping btree rooted in the inode (`btree`).
//!
//! Layout: "XFS Algorithms & Data Structures", chapters "Data Extents" and "B+trees"
//! (`xfs_bmbt_rec`, `xfs_bmdr_block`, the long-format btree block header).

use alloc::vec::Vec;

use super::inode::{FMT_BTREE, FMT_EXTENTS, Inode};
use super::sb::Superblock;
use super::{FS, be16, be64};
use crate::crc::crc32c;
use crate::fs::FsError;

/// Extents of one file the reader holds at most (6 MiB of map; a 64 MiB initrd
/// fragmented into single 4 KiB blocks needs 16,384).
pub const MAX_EXTENTS: usize = 1 << 18;
/// Btree levels (XFS's own maximum for the block map is 9).
const MAX_LEVELS: u16 = 9;
/// Long-format btree block magics: v4 "BMAP", v5 "BMA3".
const BMAP_MAGIC: u32 = 0x424d_4150;
const BMA3_MAGIC: u32 = 0x424d_4133;
const HDR_V4: usize = 24;
const HDR_V5: usize = 72;
const HDR_V5_CRC: usize = 64;

/// One mapped range of a file, in filesystem blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// First file block.
    pub off: u64,
    /// First block on the device (linear: `agno * agblocks + agbno`).
    pub block: u64,
    pub len: u64,
    /// Allocated but never written: reads as zeros.
    pub unwritten: bool,
}

/// Decode one 16-byte `xfs_bmbt_rec`.
fn decode(sb: &Superblock, rec: &[u8], ino: u64) -> Result<Extent, FsError> {
    let l0 = be64(rec, 0);
    let l1 = be64(rec, 8);
    let off = (l0 & !(1 << 63)) >> 9;
    let fsb = ((l0 & 0x1ff) << 43) | (l1 >> 21);
    let len = l1 & ((1 << 21) - 1);
    let corrupt = |what| FsError::Corrupt { fs: FS, what, at: ino };
    let block = sb.fsb_to_linear(fsb).ok_or(corrupt("extent outside the filesystem"))?;
    if len == 0 || block + len > sb.dblocks {
        return Err(corrupt("extent outside the filesystem"));
    }
    Ok(Extent { off, block, len, unwritten: l0 >> 63 != 0 })
}

/// Every extent of `inode`'s data fork, sorted and checked not to overlap. `read_block`
/// reads one filesystem block (by linear number) for the btree's nodes and leaves.
pub fn extents(
    sb: &Superblock,
    inode: &Inode,
    read_block: &mut dyn FnMut(u64) -> Result<Vec<u8>, FsError>,
) -> Result<Vec<Extent>, FsError> {
    let ino = inode.ino;
    let corrupt = |what| FsError::Corrupt { fs: FS, what, at: ino };
    if inode.nextents > MAX_EXTENTS as u64 {
        return Err(FsError::Budget { fs: FS, what: "extents in one file" });
    }
    let mut out = Vec::new();
    match inode.format {
        FMT_EXTENTS => {
            let n = inode.nextents as usize;
            let recs = inode.fork.get(..n * 16).ok_or(corrupt("more extents than the inode holds"))?;
            for r in recs.chunks_exact(16) {
                out.push(decode(sb, r, ino)?);
            }
        }
        FMT_BTREE => {
            // The root in the inode: level, record count, keys, then pointers at a place
            // set by how many records the fork could hold.
            let f = &inode.fork;
            if f.len() < 4 + 16 {
                return Err(corrupt("block map btree root"));
            }
            let level = be16(f, 0);
            let numrecs = usize::from(be16(f, 2));
            let maxrecs = (f.len() - 4) / 16;
            if level == 0 || level > MAX_LEVELS || numrecs == 0 || numrecs > maxrecs {
                return Err(corrupt("block map btree root"));
            }
            // A true tree has no more nodes than twice its records: more visits mean
            // pointers that share children (a DAG or a cycle through the levels).
            let mut visits = inode.nextents.saturating_mul(2).saturating_add(u64::from(MAX_LEVELS));
            for i in 0..numrecs {
                let ptr = be64(f, 4 + maxrecs * 8 + i * 8);
                walk(sb, ino, ptr, level - 1, read_block, &mut visits, &mut out)?;
            }
        }
        _ => return Err(corrupt("data fork format")),
    }
    out.sort_unstable_by_key(|e| e.off);
    for w in out.windows(2) {
        if w[0].off + w[0].len > w[1].off {
            return Err(corrupt("overlapping extents"));
        }
    }
    Ok(out)
}

/// Collect the records under btree block `fsb`, which must be at `level`. Levels fall by
/// one per step, so the walk ends after [`MAX_LEVELS`] steps down whatever the pointers
/// say; `visits` and [`MAX_EXTENTS`] bound its width.
fn walk(
    sb: &Superblock,
    ino: u64,
    fsb: u64,
    level: u16,
    read_block: &mut dyn FnMut(u64) -> Result<Vec<u8>, FsError>,
    visits: &mut u64,
    out: &mut Vec<Extent>,
) -> Result<(), FsError> {
    if *visits == 0 {
        return Err(FsError::Budget { fs: FS, what: "block map btree nodes" });
    }
    *visits -= 1;
    let corrupt = |what| FsError::Corrupt { fs: FS, what, at: ino };
    let lin = sb.fsb_to_linear(fsb).ok_or(corrupt("block map btree block outside the filesystem"))?;
    let b = read_block(lin)?;
    let hdr = if sb.version == 5 { HDR_V5 } else { HDR_V4 };
    let magic = if sb.version == 5 { BMA3_MAGIC } else { BMAP_MAGIC };
    if b.len() < hdr + 16 || super::be32(&b, 0) != magic {
        return Err(corrupt("block map btree block magic"));
    }
    if sb.version == 5 {
        let mut c = b.clone();
        let stored = u32::from_le_bytes([c[HDR_V5_CRC], c[HDR_V5_CRC + 1], c[HDR_V5_CRC + 2], c[HDR_V5_CRC + 3]]);
        c[HDR_V5_CRC..HDR_V5_CRC + 4].fill(0);
        if crc32c(&c) != stored {
            return Err(FsError::Checksum { fs: FS, what: "block map btree block", at: lin });
        }
        if be64(&b, 56) != ino {
            return Err(corrupt("block map btree block of another inode"));
        }
    }
    if be16(&b, 4) != level {
        return Err(corrupt("block map btree level"));
    }
    let numrecs = usize::from(be16(&b, 6));
    let maxrecs = (b.len() - hdr) / 16;
    if numrecs == 0 || numrecs > maxrecs {
        return Err(corrupt("block map btree record count"));
    }
    if level == 0 {
        if out.len() + numrecs > MAX_EXTENTS {
            return Err(FsError::Budget { fs: FS, what: "extents in one file" });
        }
        for r in b[hdr..hdr + numrecs * 16].chunks_exact(16) {
            out.push(decode(sb, r, ino)?);
        }
        return Ok(());
    }
    for i in 0..numrecs {
        let ptr = be64(&b, hdr + maxrecs * 8 + i * 8);
        walk(sb, ino, ptr, level - 1, read_block, visits, out)?;
    }
    Ok(())
}

/// The extent holding file block `fb`, or the hole up to the next one: `Ok(extent)` or
/// `Err(blocks of hole)` (`u64::MAX` past the last extent).
pub fn find(map: &[Extent], fb: u64) -> Result<Extent, u64> {
    let i = map.partition_point(|e| e.off + e.len <= fb);
    match map.get(i) {
        Some(e) if e.off <= fb => Ok(*e),
        Some(e) => Err(e.off - fb),
        None => Err(u64::MAX),
    }
}
