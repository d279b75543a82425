// SPDX-License-Identifier: MIT OR Apache-2.0
//! xz (one stream; Linux's kernels are `xz --check=crc32 --x86 --lzma2`, and the x86 BCJ
//! filter is applied by the decoder) and legacy `.lzma` (13-byte header: properties,
//! dictionary size, uncompressed size), both by `lzma-rust2` (no_std + alloc,
//! `forbid(unsafe_code)` as built here). Its reader is pulled into the output buffer;
//! its dictionary is bounded by [`MEM_LIMIT_KB`] before it is allocated.

use lzma_rust2::{Error, Read};

use super::{DecompressError, Format, INTERRUPTED, TRUNCATED};
use crate::kernel::le;

/// The decoder's memory limit: a 64 MiB dictionary (`xz -9`, `lzma -9`) and its tables.
const MEM_LIMIT_KB: u32 = 72 * 1024;

fn map(format: Format, e: Error, at: usize) -> DecompressError {
    let what = match e {
        Error::Eof => TRUNCATED,
        Error::OutOfMemory(_) => "dictionary larger than 64 MiB",
        Error::Interrupted => "interrupted",
        Error::InvalidData(s)
        | Error::InvalidInput(s)
        | Error::Other(s)
        | Error::Unsupported(s)
        | Error::WriteZero(s) => s,
    };
    DecompressError::new(format, what, at)
}

/// Output between two calls of the caller's `poll` (a key on the console stops the work).
const POLL_EVERY: usize = 256 << 10;

/// Pull `r` into `out`; `consumed` tells how much input the reader has taken; `poll()`
/// after every [`POLL_EVERY`] bytes out: true stops with [`INTERRUPTED`].
fn pull<R: Read>(
    format: Format,
    r: &mut R,
    out: &mut [u8],
    consumed: impl Fn(&R) -> usize,
    poll: &mut dyn FnMut() -> bool,
) -> Result<usize, DecompressError> {
    let (mut done, mut next_poll) = (0usize, 0usize);
    // Every round writes at least one byte or ends: at most out.len() + 1 rounds.
    loop {
        if done >= next_poll {
            if poll() {
                return Err(DecompressError::new(format, INTERRUPTED, consumed(r)));
            }
            next_poll = done.saturating_add(POLL_EVERY);
        }
        let end = out.len().min(done.saturating_add(POLL_EVERY));
        let buf = &mut out[done..end];
        if buf.is_empty() {
            let mut probe = [0u8; 1];
            return match r.read(&mut probe) {
                Ok(0) => Ok(done),
                Ok(_) => Err(DecompressError::too_large(format, out.len(), consumed(r))),
                Err(e) => Err(map(format, e, consumed(r))),
            };
        }
        match r.read(buf) {
            Ok(0) => return Ok(done),
            Ok(n) => done += n.min(buf.len()),
            Err(e) => return Err(map(format, e, consumed(r))),
        }
    }
}

pub fn xz(input: &[u8], out: &mut [u8], poll: &mut dyn FnMut() -> bool) -> Result<usize, DecompressError> {
    let mut rest = input;
    let mut r = lzma_rust2::XzReader::new_mem_limit(&mut rest, false, MEM_LIMIT_KB);
    pull(Format::Xz, &mut r, out, |r| input.len() - r.inner().len(), poll)
}

/// The LZMA2 dictionary size of an xz stream's first block, from its block header's
/// filter flags (xz file format 1.1.0, sections 3.1.5 and 5.3.1); `None` when the header
/// cannot be read that far. Linux's kernels: the x86 BCJ filter, then LZMA2 with 32 MiB.
pub fn xz_dict_size(p: &[u8]) -> Option<u64> {
    const STREAM_HEADER: usize = 12;
    let size = (usize::from(*p.get(STREAM_HEADER)?) + 1) * 4;
    let h = p.get(STREAM_HEADER..STREAM_HEADER + size)?;
    let flags = h[1];
    let mut at = 2;
    // A multibyte integer: 7 bits a byte, at most 9 bytes.
    let varint = |at: &mut usize| -> Option<u64> {
        let mut v = 0u64;
        for i in 0..9 {
            let b = *h.get(*at)?;
            *at += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    if flags & 0x40 != 0 {
        varint(&mut at)?; // compressed size
    }
    if flags & 0x80 != 0 {
        varint(&mut at)?; // uncompressed size
    }
    for _ in 0..=(flags & 3) {
        let id = varint(&mut at)?;
        let props = varint(&mut at)? as usize;
        if id == 0x21 {
            let d = *h.get(at)?;
            return match d {
                0..=39 => Some((2 | u64::from(d & 1)) << (d / 2 + 11)),
                40 => Some(u32::MAX as u64),
                _ => None,
            };
        }
        at = at.checked_add(props)?;
    }
    None
}

/// Whether `p` starts with a plausible legacy `.lzma` header (see [`super::detect`]).
pub fn looks_like_lzma(p: &[u8]) -> bool {
    if p.len() < 13 || p[0] != 0x5d || p[1] != 0 || p[2] != 0 {
        return false;
    }
    let Some(dict) = le::u32_at(p, 1) else { return false };
    let Some(size) = le::u64_at(p, 5) else { return false };
    // 2^n, or 2^n + 2^(n-1): clear the top bit, what is left is 0 or the next bit down.
    let top = 1u32 << (31 - dict.leading_zeros().min(31));
    let rest = dict & !top;
    let dict_ok = dict != 0 && (rest == 0 || rest == top >> 1);
    dict_ok && (size == u64::MAX || size < 1 << 38)
}

pub fn lzma(input: &[u8], out: &mut [u8], poll: &mut dyn FnMut() -> bool) -> Result<usize, DecompressError> {
    if input.len() < 13 {
        return Err(DecompressError::new(Format::Lzma, TRUNCATED, input.len()));
    }
    let mut rest = input;
    let mut r =
        lzma_rust2::LzmaReader::new_mem_limit(&mut rest, MEM_LIMIT_KB, None).map_err(|e| map(Format::Lzma, e, 0))?;
    pull(Format::Lzma, &mut r, out, |r| input.len() - r.inner().len(), poll)
}
