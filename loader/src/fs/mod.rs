// SPDX-License-Identifier: MIT OR Apache-2.0
//! Filesystems the loader reads (read-only).

pub mod ext4;
