// SPDX-License-Identifier: MIT OR Apache-2.0
//! A [`Platform`] for running the boot session on a host: `rxen-mkimage explain` and
//! the host tests. Guest RAM is host memory leaked per request (the process ends soon
//! after), the clock stands still, and the disks are whatever the caller hands in.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::Platform;
use crate::volume::Disk;

/// See the module docs.
#[derive(Debug, Default)]
pub struct HostPlatform {
    /// Handed to the session when it probes (once).
    pub disks: Vec<Disk>,
    /// Decide, never act: grubenv writes are described, not done (`explain`).
    pub dry_run: bool,
}

impl Platform for HostPlatform {
    fn clock(&self) -> fn() -> u64 {
        || 0
    }
    fn probe_disks(&mut self, _cmdline: &str, _log: &mut dyn FnMut(String)) -> Vec<Disk> {
        core::mem::take(&mut self.disks)
    }
    unsafe fn map_guest(&mut self, _paddr: u64, len: u64) -> Option<&'static mut [u8]> {
        Some(Box::leak(alloc::vec![0u8; usize::try_from(len).ok()?].into_boxed_slice()))
    }
    fn dry_run(&self) -> bool {
        self.dry_run
    }
}
