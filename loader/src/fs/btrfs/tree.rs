// SPDX-License-Identifier: MIT OR Apache-2.0
//! Tree blocks and the search over them: every btrfs tree (root, chunk, FS trees) is a
//! B+tree of `nodesize` blocks, each with a 101-byte header (checksum, fsid, its own
//! logical address, level); interior nodes hold (key, child pointer) pairs, leaves hold
//! (key, offset, size) items with their data at the block's end.
//!
//! Each block read is checked: checksum (crc32c over all but the first 32 bytes), its
//! bytenr, the fsid, its level (one less than its parent's, so a pointer back up or to
//! itself is caught and no walk can loop), item counts and offsets inside the block, keys
//! strictly increasing and the first key equal to the parent's pointer. A walk reads at
//! most [`MAX_BLOCKS_PER_WALK`] blocks.

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Ordering;

use super::{Btrfs, FS, io, le32, le64};
use crate::block::{BlockDevice, read_bytes};
use crate::crc::crc32c;
use crate::fs::FsError;

/// `BTRFS_MAX_LEVEL`: levels 0 (leaves) to 7.
pub const MAX_LEVEL: u8 = 8;
pub const HEADER_LEN: usize = 101;
const KEY_PTR_LEN: usize = 33;
const ITEM_LEN: usize = 25;
/// Tree blocks one walk reads at most (a DAG of shared children would otherwise take
/// exponential time).
pub const MAX_BLOCKS_PER_WALK: u32 = 1 << 16;
/// Tree blocks kept in memory.
const CACHE_BLOCKS: usize = 64;

pub const INODE_ITEM_KEY: u8 = 1;
pub const DIR_ITEM_KEY: u8 = 84;
pub const DIR_INDEX_KEY: u8 = 96;
pub const EXTENT_DATA_KEY: u8 = 108;
pub const ROOT_ITEM_KEY: u8 = 132;
pub const CHUNK_ITEM_KEY: u8 = 228;

/// A btrfs key: ordered by objectid, then type, then offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub objectid: u64,
    pub ty: u8,
    pub offset: u64,
}

impl Key {
    pub const fn new(objectid: u64, ty: u8, offset: u64) -> Key {
        Key { objectid, ty, offset }
    }
    /// The 17-byte on-disk form at `b[at..]`.
    pub fn parse(b: &[u8], at: usize) -> Key {
        Key { objectid: le64(b, at), ty: b.get(at + 8).copied().unwrap_or(0), offset: le64(b, at + 9) }
    }
}

/// A tree's root: the logical address of its top block and that block's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Root {
    pub bytenr: u64,
    pub level: u8,
}

/// A checked tree block.
pub struct Block {
    pub data: Rc<Vec<u8>>,
    pub level: u8,
    pub nritems: usize,
}

impl Block {
    /// Key `i` (a node's pointer key or a leaf's item key).
    pub fn key(&self, i: usize) -> Key {
        let sz = if self.level == 0 { ITEM_LEN } else { KEY_PTR_LEN };
        Key::parse(&self.data, HEADER_LEN + i * sz)
    }
    fn child(&self, i: usize) -> u64 {
        le64(&self.data, HEADER_LEN + i * KEY_PTR_LEN + 17)
    }
    /// Leaf item `i`'s data.
    pub fn item(&self, i: usize) -> &[u8] {
        let at = HEADER_LEN + i * ITEM_LEN;
        let off = le32(&self.data, at + 17) as usize;
        let size = le32(&self.data, at + 21) as usize;
        self.data.get(HEADER_LEN + off..HEADER_LEN + off + size).unwrap_or(&[])
    }
}

/// Check the header and layout of block `b` read from logical `bytenr`.
pub fn check_block(b: &[u8], bytenr: u64, fsid: &[u8; 16], level: u8) -> Result<Block, FsError> {
    let corrupt = |what| Err(FsError::Corrupt { fs: FS, what, at: bytenr });
    if b.len() < HEADER_LEN {
        return corrupt("tree block too small");
    }
    if crc32c(&b[32..]) != le32(b, 0) {
        return Err(FsError::Checksum { fs: FS, what: "tree block", at: bytenr });
    }
    if le64(b, 0x30) != bytenr {
        return corrupt("tree block bytenr");
    }
    if b[0x20..0x30] != fsid[..] {
        return corrupt("tree block fsid");
    }
    if b[0x64] != level {
        return corrupt("tree block level");
    }
    let nritems = le32(b, 0x60) as usize;
    let room = b.len() - HEADER_LEN;
    let blk = Block { data: Rc::new(Vec::new()), level, nritems };
    if level == 0 {
        if nritems > room / ITEM_LEN {
            return corrupt("leaf item count");
        }
        for i in 0..nritems {
            let at = HEADER_LEN + i * ITEM_LEN;
            let off = le32(b, at + 17) as usize;
            let size = le32(b, at + 21) as usize;
            if off.checked_add(size).is_none_or(|e| e > room) || off < nritems * ITEM_LEN {
                return corrupt("leaf item offset");
            }
        }
    } else if nritems == 0 || nritems > room / KEY_PTR_LEN {
        return corrupt("node pointer count");
    }
    let sz = if level == 0 { ITEM_LEN } else { KEY_PTR_LEN };
    for i in 1..nritems {
        if Key::parse(b, HEADER_LEN + (i - 1) * sz) >= Key::parse(b, HEADER_LEN + i * sz) {
            return corrupt("tree block keys out of order");
        }
    }
    Ok(blk)
}

/// The index of the last key `<= k` in `blk`, or `None` when every key is greater.
fn floor(blk: &Block, k: &Key) -> Option<usize> {
    let (mut lo, mut hi) = (0usize, blk.nritems);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match blk.key(mid).cmp(k) {
            Ordering::Greater => hi = mid,
            _ => lo = mid + 1,
        }
    }
    lo.checked_sub(1)
}

/// What a walk's visitor says after each item.
pub type Visit<'a> = dyn FnMut(&Key, &[u8]) -> Result<bool, FsError> + 'a;

impl<D: BlockDevice> Btrfs<D> {
    /// Read and check the tree block at logical `bytenr`, expected at `level`.
    pub(super) fn read_block(&mut self, bytenr: u64, level: u8) -> Result<Block, FsError> {
        if let Some((_, d)) = self.cache.iter().find(|(a, _)| *a == bytenr) {
            let data = d.clone();
            let b = check_cached(&data, bytenr, level)?;
            return Ok(b);
        }
        let ns = self.sb.nodesize as usize;
        let mut buf = vec![0u8; ns];
        self.read_logical(bytenr, &mut buf)?;
        let mut blk = check_block(&buf, bytenr, &self.sb.meta_fsid, level)?;
        let data = Rc::new(buf);
        if self.cache.len() >= CACHE_BLOCKS {
            self.cache.remove(0);
        }
        self.cache.push((bytenr, data.clone()));
        blk.data = data;
        Ok(blk)
    }

    /// Read `buf.len()` bytes at logical `addr` (across chunks if need be): one device
    /// request per stretch contiguous on one device.
    pub(super) fn read_logical(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), FsError> {
        let mut done = 0usize;
        while done < buf.len() {
            let at =
                addr.checked_add(done as u64).ok_or(FsError::Corrupt { fs: FS, what: "logical address", at: addr })?;
            let devs = &self.devs;
            let (devid, phys, run) = self.chunks.map(at, &|id| devs.iter().any(|d| d.devid == id))?;
            let k = ((buf.len() - done) as u64).min(run) as usize;
            let d = self.devs.iter_mut().find(|d| d.devid == devid).ok_or(FsError::Corrupt {
                fs: FS,
                what: "device",
                at: devid,
            })?;
            if phys.checked_add(k as u64).is_none_or(|e| e > d.dev.size_bytes()) {
                return Err(FsError::Corrupt { fs: FS, what: "chunk stripe past the end of its device", at });
            }
            read_bytes(&mut d.dev, phys, &mut buf[done..done + k]).map_err(io)?;
            done += k;
        }
        Ok(())
    }

    /// Visit, in key order, the items of tree `root` from the one with the greatest key
    /// `<= start` (or the first, when all are greater) until `visit` returns true or the
    /// tree ends.
    pub(super) fn walk(&mut self, root: Root, start: Key, visit: &mut Visit<'_>) -> Result<(), FsError> {
        let mut budget = MAX_BLOCKS_PER_WALK;
        self.walk_block(root.bytenr, root.level, None, &start, visit, &mut budget).map(|_| ())
    }

    fn walk_block(
        &mut self,
        bytenr: u64,
        level: u8,
        first: Option<Key>,
        start: &Key,
        visit: &mut Visit<'_>,
        budget: &mut u32,
    ) -> Result<bool, FsError> {
        if *budget == 0 {
            return Err(FsError::Budget { fs: FS, what: "tree blocks read in one search" });
        }
        *budget -= 1;
        let blk = self.read_block(bytenr, level)?;
        if blk.nritems == 0 {
            return Ok(false);
        }
        if let Some(f) = first
            && blk.key(0) != f
        {
            return Err(FsError::Corrupt {
                fs: FS,
                what: "tree block first key differs from its parent's",
                at: bytenr,
            });
        }
        let from = floor(&blk, start).unwrap_or(0);
        for i in from..blk.nritems {
            if level == 0 {
                if visit(&blk.key(i), blk.item(i))? {
                    return Ok(true);
                }
            } else if self.walk_block(blk.child(i), level - 1, Some(blk.key(i)), start, visit, budget)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The data of the item with key exactly `k` in `root`, if any.
    pub(super) fn find_item(&mut self, root: Root, k: Key) -> Result<Option<Vec<u8>>, FsError> {
        let mut out = None;
        self.walk(root, k, &mut |key, data| {
            if *key == k {
                out = Some(data.to_vec());
            }
            Ok(*key >= k)
        })?;
        Ok(out)
    }
}

/// A cached block was checked when read; only its level may differ from this use's.
fn check_cached(data: &Rc<Vec<u8>>, bytenr: u64, level: u8) -> Result<Block, FsError> {
    if data.get(0x64) != Some(&level) {
        return Err(FsError::Corrupt { fs: FS, what: "tree block level", at: bytenr });
    }
    Ok(Block { data: data.clone(), level, nritems: le32(data, 0x60) as usize })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_objectid_type_offset() {
        let a = Key::new(256, INODE_ITEM_KEY, 0);
        let b = Key::new(256, DIR_ITEM_KEY, 0);
        let c = Key::new(256, DIR_ITEM_KEY, u64::MAX);
        let d = Key::new(257, 0, 0);
        assert!(a < b && b < c && c < d);
        let mut raw = [0u8; 17];
        raw[..8].copy_from_slice(&256u64.to_le_bytes());
        raw[8] = 84;
        raw[9..].copy_from_slice(&7u64.to_le_bytes());
        assert_eq!(Key::parse(&raw, 0), Key::new(256, 84, 7));
        assert_eq!(Key::parse(&raw, 10), Key::new(0, 0, 0));
    }

    fn leaf(keys: &[Key], fsid: &[u8; 16], bytenr: u64) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[0x20..0x30].copy_from_slice(fsid);
        b[0x30..0x38].copy_from_slice(&bytenr.to_le_bytes());
        b[0x60..0x64].copy_from_slice(&(keys.len() as u32).to_le_bytes());
        for (i, k) in keys.iter().enumerate() {
            let at = HEADER_LEN + i * ITEM_LEN;
            b[at..at + 8].copy_from_slice(&k.objectid.to_le_bytes());
            b[at + 8] = k.ty;
            b[at + 9..at + 17].copy_from_slice(&k.offset.to_le_bytes());
            let off = (4096 - HEADER_LEN - 8 * (i + 1)) as u32;
            b[at + 17..at + 21].copy_from_slice(&off.to_le_bytes());
            b[at + 21..at + 25].copy_from_slice(&8u32.to_le_bytes());
        }
        let c = crc32c(&b[32..]);
        b[..4].copy_from_slice(&c.to_le_bytes());
        b
    }

    #[test]
    fn blocks_are_checked_and_searched() {
        let fsid = [7u8; 16];
        let keys = [Key::new(1, 1, 0), Key::new(5, 84, 3), Key::new(5, 96, 2)];
        let b = leaf(&keys, &fsid, 8192);
        let blk = check_block(&b, 8192, &fsid, 0).unwrap();
        let blk = Block { data: Rc::new(b.clone()), ..blk };
        assert_eq!(blk.key(1), keys[1]);
        assert_eq!(blk.item(0).len(), 8);
        assert_eq!(floor(&blk, &Key::new(0, 0, 0)), None);
        assert_eq!(floor(&blk, &Key::new(5, 84, 3)), Some(1));
        assert_eq!(floor(&blk, &Key::new(5, 90, 0)), Some(1));
        assert_eq!(floor(&blk, &Key::new(9, 0, 0)), Some(2));
        assert!(matches!(check_block(&b, 4096, &fsid, 0), Err(FsError::Corrupt { what: "tree block bytenr", .. })));
        assert!(matches!(check_block(&b, 8192, &[0; 16], 0), Err(FsError::Corrupt { what: "tree block fsid", .. })));
        assert!(matches!(check_block(&b, 8192, &fsid, 1), Err(FsError::Corrupt { what: "tree block level", .. })));
        let mut bad = b.clone();
        bad[200] ^= 1;
        assert!(matches!(check_block(&bad, 8192, &fsid, 0), Err(FsError::Checksum { .. })));
        let unordered = leaf(&[keys[1], keys[0]], &fsid, 8192);
        assert!(matches!(
            check_block(&unordered, 8192, &fsid, 0),
            Err(FsError::Corrupt { what: "tree block keys out of order", .. })
        ));
    }
}
