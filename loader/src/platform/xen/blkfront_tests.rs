// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host tests of blkfront's pure parts: grant revocation after a timeout, bounded backend waits.
use super::*;
use alloc::vec;

/// A grant table whose backend keeps some refs mapped for a number of tries.
struct FakeGrants {
    /// gref -> tries left before the backend unmaps it (u32::MAX: never).
    mapped: Vec<(u32, u32)>,
    ended: Vec<u32>,
}

impl EndAccess for FakeGrants {
    fn end_access(&mut self, gref: u32) -> bool {
        if let Some((_, left)) = self.mapped.iter_mut().find(|(g, _)| *g == gref)
            && *left > 0
        {
            *left = left.saturating_sub(1);
            return false;
        }
        assert!(!self.ended.contains(&gref), "grant {gref} ended twice");
        self.ended.push(gref);
        true
    }
}

fn req(grants: &[(u32, u64, Owner)]) -> InFlight {
    InFlight {
        busy: true,
        grants: grants.iter().map(|&(gref, pfn, owner)| Granted { gref, pfn, owner }).collect(),
        status: 0,
        done: false,
    }
}

/// A scripted backend: the states it shows, one per poll (the last one forever), and
/// a clock of polls; the wait must end by the bound whatever the backend does.
fn scripted(states: &[Result<u32, &str>], what: &str, bound_polls: u32) -> (Result<u32, String>, u32) {
    let polls = core::cell::Cell::new(0u32);
    let r = wait_state(
        what,
        || {
            let i = (polls.get() as usize).min(states.len() - 1);
            states[i].map_err(|e| format!("reading the backend state: {e}"))
        },
        |s| s == xenbus_state::CONNECTED,
        |s| s > xenbus_state::CONNECTED,
        || polls.get() >= bound_polls,
        || polls.set(polls.get() + 1),
        STATE_MS,
    );
    (r, polls.get())
}

#[test]
fn backend_waits_are_bounded_and_name_the_state() {
    use xenbus_state::*;
    // A backend that never moves: the bound ends it, naming the state it stayed in.
    let (r, polls) = scripted(&[Ok(INIT_WAIT)], "Connected", 2000);
    assert_eq!(r.unwrap_err(), "backend still InitWait after 10 s, waiting for Connected");
    assert_eq!(polls, 2000);
    // One that gives up (Closing) while we wait: at once, named.
    let (r, polls) = scripted(&[Ok(INIT_WAIT), Ok(INITIALISED), Ok(CLOSING)], "Connected", 2000);
    assert_eq!(r.unwrap_err(), "backend went to state Closing while waiting for Connected");
    assert_eq!(polls, 2);
    // xenstore fails (the node went away: a vbd that disappeared): the error, at once.
    let (r, _) = scripted(&[Ok(INIT_WAIT), Err("ENOENT")], "Connected", 2000);
    assert_eq!(r.unwrap_err(), "reading the backend state: ENOENT");
    // A garbage state value is named, not trusted.
    let (r, _) = scripted(&[Ok(77)], "Connected", 3);
    assert_eq!(r.unwrap_err(), "backend went to state (invalid) while waiting for Connected");
    // The normal sequence.
    let (r, polls) = scripted(&[Ok(INITIALISING), Ok(INIT_WAIT), Ok(CONNECTED)], "Connected", 2000);
    assert_eq!((r, polls), (Ok(CONNECTED), 2));
}

#[test]
fn timeout_revokes_every_grant_the_backend_does_not_map() {
    let mut inflight = vec![
        req(&[(10, 0x100, Owner::Caller), (11, 0x101, Owner::Caller)]),
        InFlight::default(),
        req(&[(12, 0x200, Owner::Bounce), (13, 0x300, Owner::Indirect)]),
    ];
    let mut gt = FakeGrants { mapped: Vec::new(), ended: Vec::new() };
    let stuck = revoke_inflight(&mut inflight, &mut gt);
    assert!(stuck.is_empty());
    assert_eq!(gt.ended, [10, 11, 12, 13]);
    assert!(inflight.iter().all(|f| !f.busy && f.grants.is_empty()));
}

#[test]
fn grants_still_mapped_are_retried_then_kept_out_of_use() {
    let mut inflight = vec![
        req(&[(10, 0x100, Owner::Caller), (11, 0x101, Owner::Caller), (12, 0x102, Owner::Caller)]),
        req(&[(20, 0x500, Owner::Bounce), (21, 0x900, Owner::Indirect), (22, 0x104, Owner::Caller)]),
    ];
    // 11 is unmapped after two more tries; 12, 20 and 22 never are.
    let mut gt =
        FakeGrants { mapped: vec![(11, 2), (12, u32::MAX), (20, u32::MAX), (22, u32::MAX)], ended: Vec::new() };
    let mut stuck = revoke_inflight(&mut inflight, &mut gt);
    assert_eq!(stuck.iter().map(|g| g.gref).collect::<Vec<_>>(), [11, 12, 20, 22]);
    let rounds = core::cell::Cell::new(0);
    drain_stuck(&mut stuck, &mut gt, || rounds.get() >= 5, || rounds.set(rounds.get() + 1));
    assert_eq!(rounds.get(), 5, "keeps trying until the grace period ends");
    assert!(gt.ended.contains(&11));
    let (caller, bounce, indirect) = stranded(&stuck);
    // The caller's still-mapped pages, as ranges to quarantine (0x102 and 0x104 are
    // not adjacent); the bounce buffer must be leaked; the indirect page was revoked.
    assert_eq!(caller, [(0x102000, 0x1000), (0x104000, 0x1000)]);
    assert!(bounce && !indirect);
    // Nothing stuck: the wait is never entered.
    let mut none = Vec::new();
    drain_stuck(&mut none, &mut gt, || panic!("no grace needed"), || panic!("no wait needed"));
}
