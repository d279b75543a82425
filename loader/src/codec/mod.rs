// SPDX-License-Identifier: MIT OR Apache-2.0
//! Decompression building blocks shared by the filesystems (btrfs compressed extents) and
//! the kernel payload decompressors ([`crate::kernel::decompress`]): rxen's own bounded
//! LZO1X decoder ([`lzo1x`]) and a bounded one-frame zstd decoder over `ruzstd`
//! ([`zstd`]). Both write into a caller's buffer and never past it.

pub mod lzo1x;
pub mod zstd;
