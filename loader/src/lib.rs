// SPDX-License-Identifier: MIT OR Apache-2.0
//! rxen's in-guest loader, as a library.
//!
//! Everything here except [`platform`] is pure: it takes byte slices and plain structs,
//! builds and tests on the host, and is what the fuzzers drive. The freestanding images
//! (`src/bin/pvh_boot.rs`) are thin: entry asm, the allocator, the panic handler, and a
//! call into [`boot`].
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod abi;
pub mod block;
pub mod boot;
pub mod bootcfg;
pub mod bootinfo;
pub mod cmdline;
pub mod config;
pub mod crc;
pub mod drivers;
pub mod fs;
pub mod handoff;
pub mod kernel;
pub mod mem;
pub mod part;
pub mod platform;
pub mod session;
pub mod volume;
