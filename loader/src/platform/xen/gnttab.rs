// SPDX-License-Identifier: MIT OR Apache-2.0
//! Grant table v1 (`public/grant_table.h`): the frames [`super::Xen::init`] mapped, and
//! grant references handed out from a lock-free bitmap (refs 0..8 belong to the toolstack).
//!
//! Granting: write domid and frame, then (after a barrier) the flags, so the other end
//! never sees a permitted entry with a stale frame. Revoking: clear the flags only while
//! the other end has no mapping (GTF_reading/GTF_writing clear), with a compare-exchange
//! so a mapping made in between is noticed.

use core::sync::atomic::{AtomicU16, AtomicU64, Ordering, fence};

use super::{GRANT_TABLE, NR_GRANT_FRAMES};
use crate::abi::xen::{
    GNTTAB_NR_RESERVED_ENTRIES, GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY, GTF_WRITING, GrantEntryV1,
};

const MAX_GRANTS: usize = super::GRANT_FRAMES as usize * 512;
/// One bit per grant ref: set = in use.
static USED: [AtomicU64; MAX_GRANTS / 64] = [const { AtomicU64::new(0) }; MAX_GRANTS / 64];
/// Grants currently handed out (for the handoff check).
static OUTSTANDING: AtomicU64 = AtomicU64::new(0);

fn entry(gref: u32) -> Option<*mut GrantEntryV1> {
    let base = GRANT_TABLE.load(Ordering::Acquire);
    let n = NR_GRANT_FRAMES.load(Ordering::Acquire) as usize * 512;
    if base == 0 || gref as usize >= n {
        return None;
    }
    Some((base as usize as *mut GrantEntryV1).wrapping_add(gref as usize))
}

/// Let `domid` access guest frame `pfn` (read-only when `readonly`). None when the table
/// is full or not mapped.
pub fn grant(domid: u16, pfn: u64, readonly: bool) -> Option<u32> {
    // PV: the backend maps the machine frame (the p2m list's entry); PVH: the pfn.
    let frame = u32::try_from(super::pv::gfn(pfn)).ok()?;
    let n = (NR_GRANT_FRAMES.load(Ordering::Acquire) as usize * 512).min(MAX_GRANTS);
    for (w, word) in USED.iter().enumerate() {
        let mut cur = word.load(Ordering::Relaxed);
        while cur != u64::MAX {
            let bit = (!cur).trailing_zeros();
            let gref = (w * 64) as u32 + bit;
            if gref as usize >= n {
                return None;
            }
            if gref < GNTTAB_NR_RESERVED_ENTRIES {
                // Never ours: mark it used so we do not look again.
                word.fetch_or(1 << bit, Ordering::Relaxed);
                cur = word.load(Ordering::Relaxed);
                continue;
            }
            match word.compare_exchange(cur, cur | (1 << bit), Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    let e = entry(gref)?;
                    // SAFETY: `e` is entry `gref` of the mapped grant table (bounds checked
                    // in `entry`); the ref is ours (bit just set), so only Xen and the
                    // grantee look at it, and they ignore it until the flags permit.
                    unsafe {
                        core::ptr::write_volatile(&raw mut (*e).domid, domid);
                        core::ptr::write_volatile(&raw mut (*e).frame, frame);
                        fence(Ordering::Release);
                        let flags = GTF_PERMIT_ACCESS | if readonly { GTF_READONLY } else { 0 };
                        core::ptr::write_volatile(&raw mut (*e).flags, flags);
                    }
                    OUTSTANDING.fetch_add(1, Ordering::Relaxed);
                    return Some(gref);
                }
                Err(now) => cur = now,
            }
        }
    }
    None
}

/// Take access back. False (and the ref stays allocated) while the grantee still has the
/// frame mapped: the caller must not reuse the page then.
pub fn end_access(gref: u32) -> bool {
    let Some(e) = entry(gref) else { return false };
    // SAFETY: entry `gref` of the mapped grant table; the flags word is shared with Xen,
    // which updates it atomically, so it is read and changed with atomics.
    let flags = unsafe { &*(&raw mut (*e).flags).cast::<AtomicU16>() };
    let mut cur = flags.load(Ordering::Acquire);
    loop {
        if cur & (GTF_READING | GTF_WRITING) != 0 {
            return false;
        }
        match flags.compare_exchange(cur, 0, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(now) => cur = now,
        }
    }
    USED[gref as usize / 64].fetch_and(!(1 << (gref % 64)), Ordering::Release);
    OUTSTANDING.fetch_sub(1, Ordering::Relaxed);
    true
}

/// Grants handed out and not yet revoked.
pub fn outstanding() -> u64 {
    OUTSTANDING.load(Ordering::Relaxed)
}
