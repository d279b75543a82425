// SPDX-License-Identifier: MIT OR Apache-2.0
//! Extent trees: logical block -> physical run.
//!
//! The root node lives in `i_block`; deeper nodes are whole blocks ending in a crc32c tail
//! under `metadata_csum`. Linux `Documentation/filesystems/ext4/ifork.rst`.

use alloc::vec::Vec;

use super::le::{le16, le32};
use super::{Ext4Error, Run};
use crate::crc::crc32c_raw;

pub const EXTENT_MAGIC: u16 = 0xf30a;
/// The kernel never builds deeper trees than 5 levels; deeper is corruption (and a loop).
pub const MAX_DEPTH: u16 = 5;
/// `ee_len` above this marks an uninitialized (preallocated, reads-as-zero) extent.
const INIT_MAX_LEN: u16 = 32768;

/// What the walk needs from its caller.
pub struct Ctx<'a> {
    pub ino: u32,
    pub blocks_count: u64,
    /// The inode's checksum seed when `metadata_csum` is on.
    pub csum_seed: Option<u32>,
    /// Read one filesystem block (a tree node).
    pub read: &'a mut dyn FnMut(u64) -> Result<Vec<u8>, Ext4Error>,
}

struct Header {
    entries: usize,
    depth: u16,
}

fn header(node: &[u8], ino: u32, block: u64) -> Result<Header, Ext4Error> {
    let corrupt = |what| Ext4Error::Corrupt { what, ino, block };
    if le16(node, 0) != EXTENT_MAGIC {
        return Err(corrupt("extent header magic"));
    }
    let entries = usize::from(le16(node, 2));
    let max = usize::from(le16(node, 4));
    let depth = le16(node, 6);
    if entries > max || 12 + 12 * max > node.len() {
        return Err(corrupt("extent header entry count"));
    }
    if depth > MAX_DEPTH {
        return Err(corrupt("extent tree too deep"));
    }
    Ok(Header { entries, depth })
}

/// Map logical block `lblk` of the tree rooted at `root` (the inode's `i_block`).
pub fn map(ctx: &mut Ctx<'_>, root: &[u8], lblk: u64) -> Result<Run, Ext4Error> {
    let ino = ctx.ino;
    let mut node: Vec<u8> = root.to_vec();
    let mut node_block = 0u64;
    // Logical blocks past the tree's last mapping are holes up to 2^32.
    let mut limit: u64 = 1 << 32;
    let mut expect_depth: Option<u16> = None;
    loop {
        let h = header(&node, ino, node_block)?;
        if expect_depth.is_some_and(|d| d != h.depth) {
            return Err(Ext4Error::Corrupt { what: "extent tree depth mismatch", ino, block: node_block });
        }
        let entry = |i: usize| &node[12 + 12 * i..24 + 12 * i];
        if h.depth == 0 {
            for i in 0..h.entries {
                let e = entry(i);
                let first = u64::from(le32(e, 0));
                let raw_len = le16(e, 4);
                let (len, uninit) =
                    if raw_len > INIT_MAX_LEN { (raw_len - INIT_MAX_LEN, true) } else { (raw_len, false) };
                let len = u64::from(len);
                let start = u64::from(le32(e, 8)) | u64::from(le16(e, 6)) << 32;
                if first > lblk {
                    limit = limit.min(first);
                    break;
                }
                if lblk < first + len {
                    if start == 0 || start.checked_add(len).is_none_or(|end| end > ctx.blocks_count) {
                        return Err(Ext4Error::Corrupt {
                            what: "extent past the end of the filesystem",
                            ino,
                            block: start,
                        });
                    }
                    let off = lblk - first;
                    return Ok(if uninit {
                        Run::Hole(len - off)
                    } else {
                        Run::Data { phys: start + off, len: len - off }
                    });
                }
            }
            return Ok(Run::Hole(limit.saturating_sub(lblk).max(1)));
        }
        // Index node: follow the last index whose first block is <= lblk.
        let mut child = None;
        for i in 0..h.entries {
            let e = entry(i);
            let first = u64::from(le32(e, 0));
            if first > lblk {
                limit = limit.min(first);
                break;
            }
            child = Some(u64::from(le32(e, 4)) | u64::from(le16(e, 8)) << 32);
        }
        let Some(child) = child else {
            return Ok(Run::Hole(limit.saturating_sub(lblk).max(1)));
        };
        if child == 0 || child >= ctx.blocks_count {
            return Err(Ext4Error::Corrupt { what: "extent index past the end of the filesystem", ino, block: child });
        }
        node = (ctx.read)(child)?;
        node_block = child;
        if let Some(seed) = ctx.csum_seed {
            // struct ext4_extent_tail follows the eh_max entries.
            let tail = 12 + 12 * usize::from(le16(&node, 4));
            let stored = le32(&node, tail);
            if tail + 4 > node.len() || crc32c_raw(seed, &node[..tail]) != stored {
                return Err(Ext4Error::Checksum { what: "extent block", ino, block: child });
            }
        }
        expect_depth = Some(h.depth - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn hdr(buf: &mut [u8], entries: u16, max: u16, depth: u16) {
        buf[0..2].copy_from_slice(&EXTENT_MAGIC.to_le_bytes());
        buf[2..4].copy_from_slice(&entries.to_le_bytes());
        buf[4..6].copy_from_slice(&max.to_le_bytes());
        buf[6..8].copy_from_slice(&depth.to_le_bytes());
    }
    fn leaf(buf: &mut [u8], i: usize, first: u32, len: u16, start: u32) {
        let e = &mut buf[12 + 12 * i..24 + 12 * i];
        e[0..4].copy_from_slice(&first.to_le_bytes());
        e[4..6].copy_from_slice(&len.to_le_bytes());
        e[8..12].copy_from_slice(&start.to_le_bytes());
    }

    #[test]
    fn two_level_tree() {
        // root: one index -> block 50: extents [0..4) at 100, [10..12) uninit at 200, [20..) at 900
        let mut root = [0u8; 60];
        hdr(&mut root, 1, 4, 1);
        root[12 + 4..12 + 8].copy_from_slice(&50u32.to_le_bytes());
        let mut blk = vec![0u8; 1024];
        hdr(&mut blk, 3, 84, 0);
        leaf(&mut blk, 0, 0, 4, 100);
        leaf(&mut blk, 1, 10, 32768 + 2, 200);
        leaf(&mut blk, 2, 20, 5, 998);
        let seed = 0x1234_5678;
        let tail = 12 + 12 * 84;
        let c = crc32c_raw(seed, &blk[..tail]);
        blk[tail..tail + 4].copy_from_slice(&c.to_le_bytes());
        let mut reads = 0;
        let mut read = |b: u64| {
            reads += 1;
            assert_eq!(b, 50);
            Ok(blk.clone())
        };
        let mut ctx = Ctx { ino: 12, blocks_count: 1000, csum_seed: Some(seed), read: &mut read };
        assert_eq!(map(&mut ctx, &root, 1).unwrap(), Run::Data { phys: 101, len: 3 });
        assert_eq!(map(&mut ctx, &root, 5).unwrap(), Run::Hole(5));
        assert_eq!(map(&mut ctx, &root, 11).unwrap(), Run::Hole(1));
        assert_eq!(
            map(&mut ctx, &root, 20).unwrap_err(),
            Ext4Error::Corrupt { what: "extent past the end of the filesystem", ino: 12, block: 998 }
        );
        assert_eq!(map(&mut ctx, &root, 30).unwrap(), Run::Hole((1 << 32) - 30));
        let mut ctx = Ctx { ino: 12, blocks_count: 1000, csum_seed: Some(seed ^ 1), read: &mut read };
        assert_eq!(
            map(&mut ctx, &root, 1).unwrap_err(),
            Ext4Error::Checksum { what: "extent block", ino: 12, block: 50 }
        );
    }

    #[test]
    fn self_referencing_index_terminates() {
        let mut root = [0u8; 60];
        hdr(&mut root, 1, 4, 3);
        root[12 + 4..12 + 8].copy_from_slice(&7u32.to_le_bytes());
        let mut blk = vec![0u8; 1024];
        hdr(&mut blk, 1, 84, 3); // claims the same depth again: a cycle
        blk[12 + 4..12 + 8].copy_from_slice(&7u32.to_le_bytes());
        let mut read = |_| Ok(blk.clone());
        let mut ctx = Ctx { ino: 5, blocks_count: 100, csum_seed: None, read: &mut read };
        assert_eq!(
            map(&mut ctx, &root, 0).unwrap_err(),
            Ext4Error::Corrupt { what: "extent tree depth mismatch", ino: 5, block: 7 }
        );
        hdr(&mut root, 5, 4, 0);
        assert!(matches!(map(&mut ctx, &root, 0), Err(Ext4Error::Corrupt { what: "extent header entry count", .. })));
    }
}
