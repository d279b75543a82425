// SPDX-License-Identifier: MIT OR Apache-2.0
//! rxen's in-guest loader, as a library.
//!
//! Everything here except [`platform`], [`drivers`] and [`pvh`] is pure: it takes byte
//! slices, plain structs and the small traits at the seams (`BlockDevice`, `Filesystem`,
//! `session::Console`, `session::Platform`), builds and tests on the host, and is what
//! the fuzzers drive. The freestanding image (`src/bin/pvh_boot.rs`) is thin: entry asm,
//! the allocator, the panic handler and the jump around [`pvh::boot`], which runs
//! [`session::run`]. docs/architecture.md walks one boot through these modules.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod abi;
pub mod block;
pub mod boot;
pub mod bootcfg;
pub mod bootinfo;
pub mod cmdline;
pub mod codec;
pub mod config;
pub mod crc;
pub mod drivers;
pub mod fs;
pub mod handoff;
pub mod kernel;
pub mod mem;
pub mod part;
pub mod platform;
pub mod pv;
pub mod pvh;
pub mod session;
pub mod trust;
pub mod volume;
