// SPDX-License-Identifier: MIT OR Apache-2.0
//! jbd2 log replay, in memory: the committed transactions of a dirty internal journal
//! become an overlay (filesystem block -> journal block) that block reads consult; the
//! disk is never written. Linux `Documentation/filesystems/ext4/journal.rst`.
//!
//! Like the kernel's recovery: scan from `s_start`/`s_sequence` while block headers carry
//! the expected sequence, keep only transactions with a commit block, drop blocks revoked
//! by the same or a later transaction. Tag and commit checksums are not verified.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::le::be32;
use super::{Ext4Error, Overlay};

const JBD2_MAGIC: u32 = 0xc03b_3998;
const BT_DESCRIPTOR: u32 = 1;
const BT_COMMIT: u32 = 2;
const BT_SB_V1: u32 = 3;
const BT_SB_V2: u32 = 4;
const BT_REVOKE: u32 = 5;

const INCOMPAT_REVOKE: u32 = 0x1;
const INCOMPAT_64BIT: u32 = 0x2;
const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
const INCOMPAT_CSUM_V2: u32 = 0x8;
const INCOMPAT_CSUM_V3: u32 = 0x10;
const INCOMPAT_FAST_COMMIT: u32 = 0x20;

const TAG_ESCAPE: u32 = 0x1;
const TAG_SAME_UUID: u32 = 0x2;
const TAG_LAST: u32 = 0x8;

/// Journal block `n` -> its filesystem block and (when asked) its contents; `None` for a hole.
pub type JournalBlockFn<'a> = dyn FnMut(u64, bool) -> Result<Option<(u64, Vec<u8>)>, Ext4Error> + 'a;

/// Everything the scan needs from the filesystem.
pub struct Log<'a> {
    pub block_size: u32,
    pub blocks_count: u64,
    /// Map journal-inode logical block `n` to its filesystem block and, when asked
    /// (`true`), read it (without the overlay); a hole maps to `None`.
    pub block: &'a mut JournalBlockFn<'a>,
    /// Journal inode number, for errors.
    pub ino: u32,
    /// Journal inode size in blocks.
    pub len_blocks: u64,
}

fn corrupt(ino: u32, what: &'static str) -> Ext4Error {
    Ext4Error::Corrupt { what, ino, block: 0 }
}

struct Txn {
    seq: u32,
    /// (filesystem block, journal logical block, escaped)
    tags: Vec<(u64, u64, bool)>,
    revokes: Vec<u64>,
}

/// Replay the log into `overlay`; returns the number of blocks it now redirects.
pub fn replay(log: &mut Log<'_>, overlay: &mut Overlay) -> Result<usize, Ext4Error> {
    let ino = log.ino;
    let get = |log: &mut Log<'_>, jblk: u64, data: bool| -> Result<(u64, Vec<u8>), Ext4Error> {
        (log.block)(jblk, data)?.ok_or(corrupt(ino, "hole in the journal"))
    };
    let (_, sb) = get(log, 0, true)?;
    let btype = be32(&sb, 4);
    if be32(&sb, 0) != JBD2_MAGIC || (btype != BT_SB_V1 && btype != BT_SB_V2) {
        return Err(corrupt(ino, "journal superblock magic"));
    }
    if be32(&sb, 0xc) != log.block_size {
        return Err(corrupt(ino, "journal block size differs from the filesystem's"));
    }
    let maxlen = u64::from(be32(&sb, 0x10));
    let first = u64::from(be32(&sb, 0x14));
    let mut seq = be32(&sb, 0x18);
    let start = u64::from(be32(&sb, 0x1c));
    if start == 0 {
        return Ok(0); // the log is clean
    }
    if maxlen > log.len_blocks || first == 0 || first >= maxlen || start < first || start >= maxlen {
        return Err(corrupt(ino, "journal superblock geometry"));
    }
    let incompat = if btype == BT_SB_V2 { be32(&sb, 0x28) } else { 0 };
    let known = INCOMPAT_REVOKE | INCOMPAT_64BIT | INCOMPAT_ASYNC_COMMIT | INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3;
    if incompat & !(known | INCOMPAT_FAST_COMMIT) != 0 {
        return Err(Ext4Error::UnsupportedFeature { name: "journal incompat feature" });
    }
    let is64 = incompat & INCOMPAT_64BIT != 0;
    let csum = incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0;
    let v3 = incompat & INCOMPAT_CSUM_V3 != 0;
    let tag_bytes = if v3 {
        16
    } else {
        let sz = if incompat & INCOMPAT_CSUM_V2 != 0 { 14 } else { 12 };
        if is64 { sz } else { sz - 4 }
    };
    let tail = if csum { 4 } else { 0 };
    let bs = log.block_size as usize;
    let next = |pos: u64| if pos + 1 >= maxlen { first } else { pos + 1 };

    let mut committed: Vec<Txn> = Vec::new();
    let mut cur = Txn { seq, tags: Vec::new(), revokes: Vec::new() };
    let mut pos = start;
    // Every log block is visited at most once.
    let mut budget = maxlen - first;
    while budget > 0 {
        budget -= 1;
        let (_, b) = get(log, pos, true)?;
        if be32(&b, 0) != JBD2_MAGIC || be32(&b, 8) != seq {
            break;
        }
        match be32(&b, 4) {
            BT_DESCRIPTOR => {
                let mut off = 12;
                let mut data = next(pos);
                while off + tag_bytes <= bs - tail {
                    let lo = u64::from(be32(&b, off));
                    let (flags, hi) = if v3 {
                        (be32(&b, off + 4), be32(&b, off + 8))
                    } else {
                        (u32::from(b[off + 6]) << 8 | u32::from(b[off + 7]), if is64 { be32(&b, off + 8) } else { 0 })
                    };
                    let fs_block = lo | if is64 { u64::from(hi) << 32 } else { 0 };
                    cur.tags.push((fs_block, data, flags & TAG_ESCAPE != 0));
                    data = next(data);
                    if budget == 0 {
                        return Err(corrupt(ino, "journal descriptor names more blocks than the log holds"));
                    }
                    budget -= 1;
                    off += tag_bytes;
                    if flags & TAG_SAME_UUID == 0 {
                        off += 16;
                    }
                    if flags & TAG_LAST != 0 {
                        break;
                    }
                }
                pos = data;
                continue;
            }
            BT_COMMIT => {
                committed.push(core::mem::replace(
                    &mut cur,
                    Txn { seq: seq.wrapping_add(1), tags: Vec::new(), revokes: Vec::new() },
                ));
                seq = seq.wrapping_add(1);
            }
            BT_REVOKE => {
                let count = (be32(&b, 12) as usize).min(bs);
                let rec = if is64 { 8 } else { 4 };
                let mut off = 16;
                while off + rec <= count {
                    let blk = if is64 {
                        u64::from(be32(&b, off)) << 32 | u64::from(be32(&b, off + 4))
                    } else {
                        u64::from(be32(&b, off))
                    };
                    cur.revokes.push(blk);
                    off += rec;
                }
            }
            _ => break,
        }
        pos = next(pos);
    }

    // A block revoked by transaction R is not replayed from transactions <= R.
    let mut revoked: BTreeMap<u64, u32> = BTreeMap::new();
    for t in &committed {
        for &r in &t.revokes {
            let e = revoked.entry(r).or_insert(t.seq);
            if t.seq.wrapping_sub(*e) as i32 > 0 {
                *e = t.seq;
            }
        }
    }
    for t in &committed {
        for &(fs_block, jblk, escaped) in &t.tags {
            if revoked.get(&fs_block).is_some_and(|&r| t.seq.wrapping_sub(r) as i32 <= 0) {
                continue;
            }
            if fs_block >= log.blocks_count {
                return Err(corrupt(ino, "journal block tag past the end of the filesystem"));
            }
            let (p, _) = get(log, jblk, false)?;
            overlay.insert(fs_block, (p, escaped));
        }
    }
    Ok(overlay.len())
}

/// Restore the magic an escaped journal block had its first word replaced for.
pub fn unescape(block: &mut [u8]) {
    if let Some(w) = block.get_mut(..4) {
        w.copy_from_slice(&JBD2_MAGIC.to_be_bytes());
    }
}
