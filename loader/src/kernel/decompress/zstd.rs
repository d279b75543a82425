// SPDX-License-Identifier: MIT OR Apache-2.0
//! zstd: one frame by [`crate::codec::zstd`] (`ruzstd`), the content checksum checked
//! when the frame has one; the window is capped at 128 MiB (Linux's
//! `ZSTD_WINDOWLOG_MAX` for `zstd -22 --ultra` kernels; `ruzstd` itself stops at 100 MiB).

use super::{DecompressError, Format};
use crate::codec::zstd::{ZstdErrorKind::*, decode_frame};

const MAX_WINDOW: u64 = 1 << 27;

pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<usize, DecompressError> {
    decode_frame(input, out, MAX_WINDOW).map_err(|e| match e.kind {
        OutputFull => DecompressError::too_large(Format::Zstd, out.len(), e.at),
        k => DecompressError::new(
            Format::Zstd,
            match k {
                NoHeader => "no frame header",
                WindowTooLarge => "frame window larger than 128 MiB",
                BadHeader => "invalid frame header",
                Checksum => "content checksum mismatch",
                _ => "corrupt block or truncated input",
            },
            e.at,
        ),
    })
}
