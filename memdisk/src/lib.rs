// SPDX-License-Identifier: MIT OR Apache-2.0
//! The rxen memdisk: a ustar archive carried in the boot image, and the image header
//! that tells the loader where it is and what its SHA-256 must be.
//!
//! The reader ([`ustar`]) is `no_std` and allocation-free so the loader and the fuzzers
//! run the same code; the writer is the
//! separate `rxen-memdisk-writer` crate (std), which `rxen-mkimage` uses.
#![cfg_attr(not(test), no_std)]

pub mod header;
pub mod ustar;

pub use header::{HEADER_MAGIC, HEADER_PADDR, HEADER_VERSION, HeaderError, ImageHeader, MEMDISK_ALIGN};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(data);
    h.finalize().into()
}
