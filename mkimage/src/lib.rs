// SPDX-License-Identifier: MIT OR Apache-2.0
//! rxen-mkimage: build, inspect and verify rxen boot images (the `pvh-boot` loader ELF
//! plus a memdisk `PT_LOAD`). See `docs/mkimage.md`.

pub mod answer;
pub mod assemble;
pub mod batch;
pub mod cli;
pub mod explain;
pub mod image;
pub mod sandbox;
pub mod sign;
pub mod symbols;
#[doc(hidden)]
pub mod testelf;

pub use image::{ImageInfo, build_image, read_image};
