// SPDX-License-Identifier: MIT OR Apache-2.0
//! Filesystems the loader reads (and, for grubenv, rewrites a file's bytes in place).

pub mod ext4;
