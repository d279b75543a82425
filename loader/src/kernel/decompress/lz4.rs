// SPDX-License-Identifier: MIT OR Apache-2.0
//! lz4 legacy frame (`lz4 -l`, what Linux uses): the magic 0x184C2102, then blocks of a
//! little-endian u32 compressed size and an LZ4 block decompressing to at most 8 MiB
//! (`lz4_flex`'s safe block decoder, straight into the output buffer). The frame ends at
//! the end of the input, or where 4 bytes are left with nothing after them (Linux's
//! appended size); a repeated magic starts a concatenated frame.

use super::{DecompressError, Format, LZ4_LEGACY_MAGIC, TRUNCATED};
use crate::kernel::le;

/// What one legacy block decompresses to at most.
const BLOCK: usize = 8 << 20;
/// `LZ4_compressBound(8 MiB)`: the largest compressed block.
const MAX_COMPRESSED: usize = BLOCK + BLOCK / 255 + 16;

fn err(what: &'static str, at: usize) -> DecompressError {
    DecompressError::new(Format::Lz4, what, at)
}

pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<usize, DecompressError> {
    if !input.starts_with(LZ4_LEGACY_MAGIC) {
        return Err(err(if input.len() < 4 { TRUNCATED } else { "no legacy frame magic" }, 0));
    }
    let magic = u32::from_le_bytes([0x02, 0x21, 0x4c, 0x18]);
    let mut p = 4usize;
    let mut done = 0usize;
    // Every round moves p forward by at least 4 bytes.
    while p < input.len() {
        let size = le::u32_at(input, p).ok_or(err(TRUNCATED, p))?;
        if size == magic {
            p += 4;
            continue;
        }
        if input.len() - p == 4 {
            break; // the appended uncompressed size
        }
        let size = size as usize;
        if size > MAX_COMPRESSED {
            return Err(err("block larger than LZ4's bound for 8 MiB", p));
        }
        let block = input.get(p + 4..p + 4 + size).ok_or(err(TRUNCATED, input.len()))?;
        let room = out.len() - done;
        let win = room.min(BLOCK);
        match lz4_flex::block::decompress_into(block, &mut out[done..done + win]) {
            Ok(n) => done += n,
            Err(lz4_flex::block::DecompressError::OutputTooSmall { .. }) if room < BLOCK => {
                return Err(DecompressError::too_large(Format::Lz4, out.len(), p));
            }
            Err(lz4_flex::block::DecompressError::OutputTooSmall { .. }) => {
                return Err(err("block decompresses to more than 8 MiB", p));
            }
            Err(_) => return Err(err("corrupt block", p)),
        }
        p += 4 + size;
    }
    Ok(done)
}
