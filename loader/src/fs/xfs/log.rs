// SPDX-License-Identifier: MIT OR Apache-2.0
//! Is the XFS log clean? The reader replays nothing; it looks for the log's head and
//! checks that the last record written there is an unmount record, as a clean unmount
//! (or mkfs) leaves it. Anything else means metadata changes may still sit in the log,
//! and the mount says so.
//!
//! Layout: "XFS Algorithms & Data Structures", chapter "Journaling Log" (`xlog_rec_header`,
//! `xlog_op_header`): the log is a ring of 512-byte basic blocks, each starting with the
//! cycle number of the pass that wrote it (a record header with its magic, then the
//! cycle); the head is where the cycle number drops.

use alloc::format;
use alloc::string::{String, ToString};

use super::be32;
use super::sb::Superblock;
use crate::block::{BlockDevice, read_bytes};

const BB: u64 = 512;
/// `h_magicno`.
const HEADER_MAGIC: u32 = 0xfeed_babe;
/// `xlog_op_header.oh_flags`: the record is an unmount record.
const UNMOUNT_TRANS: u8 = 0x20;
/// Basic blocks searched back from the head for the last record header (a record is
/// at most 256 KiB of data, plus its headers).
const MAX_RECORD_BBS: u64 = 1024;

/// A warning for the mount when the log is not known to be clean.
pub fn check<D: BlockDevice + ?Sized>(dev: &mut D, sb: &Superblock) -> Option<String> {
    let dirty =
        "the log is dirty (not cleanly unmounted): nothing is replayed, files read as the last checkpoint left \
                 them"
            .to_string();
    if sb.logstart == 0 {
        return Some("the log is on an external device: whether it is clean is not known".to_string());
    }
    let start = sb.fsb_to_linear(sb.logstart)?.checked_mul(u64::from(sb.block_size))?;
    let bbs = u64::from(sb.logblocks) * u64::from(sb.block_size) / BB;
    if bbs < 2 || start.checked_add(bbs * BB)? > dev.size_bytes() {
        return Some("the log is outside the filesystem: whether it is clean is not known".to_string());
    }
    let mut read = |bb: u64| -> Option<[u8; 512]> {
        let mut b = [0u8; 512];
        read_bytes(dev, start + (bb % bbs) * BB, &mut b).ok().map(|()| b)
    };
    let cycle = |b: &[u8; 512]| if be32(b, 0) == HEADER_MAGIC { be32(b, 4) } else { be32(b, 0) };
    let first = cycle(&read(0)?);
    let last = cycle(&read(bbs - 1)?);
    // The head: the first block whose cycle differs from block 0's; the log's whole length
    // when the last pass wrote every block.
    let head = if last == first {
        bbs
    } else {
        let (mut lo, mut hi) = (0u64, bbs - 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if cycle(&read(mid)?) == first { lo = mid } else { hi = mid }
        }
        hi
    };
    // The last record header before the head.
    for back in 1..=MAX_RECORD_BBS.min(bbs) {
        let at = (head + bbs - back) % bbs;
        let h = read(at)?;
        if be32(&h, 0) != HEADER_MAGIC {
            continue;
        }
        let (version, h_size) = (be32(&h, 8), be32(&h, 320));
        let hblks = if version & 2 != 0 && h_size > 32768 { u64::from(h_size.div_ceil(32768)) } else { 1 };
        let op = read(at + hblks)?;
        let clean = be32(&h, 40) == 1 && op[9] & UNMOUNT_TRANS != 0;
        if clean && sb.log_incompat == 0 {
            return None;
        }
        if clean {
            return Some(format!("the log carries incompat features {:#x} but is clean", sb.log_incompat));
        }
        return Some(dirty);
    }
    Some(dirty)
}
