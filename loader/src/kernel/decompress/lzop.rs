// SPDX-License-Identifier: MIT OR Apache-2.0
//! lzop container (what `lzop` writes, as Linux's kernels use it): the magic, a header
//! (version, method, flags, mode, mtime, name; its Adler-32 or CRC-32), then blocks of a
//! big-endian uncompressed length (0 ends the stream) and compressed length, the
//! checksums the flags ask for, and the data: LZO1X ([`crate::codec::lzo1x`]), or stored
//! when both lengths are equal. Each block is at most 256 KiB uncompressed (lzop's block
//! size, the limit Linux's decoder enforces too); the uncompressed-data checksums are
//! verified.

use super::{DecompressError, Format, LZOP_MAGIC, TRUNCATED};
use crate::codec::lzo1x;

const F_ADLER32_D: u32 = 0x0000_0001;
const F_ADLER32_C: u32 = 0x0000_0002;
const F_H_EXTRA_FIELD: u32 = 0x0000_0040;
const F_CRC32_D: u32 = 0x0000_0100;
const F_CRC32_C: u32 = 0x0000_0200;
const F_H_FILTER: u32 = 0x0000_0800;
const F_H_CRC32: u32 = 0x0000_1000;
/// lzop's largest block (`MAX_BLOCK_SIZE`).
const MAX_BLOCK: usize = 256 * 1024;

fn err(what: &'static str, at: usize) -> DecompressError {
    DecompressError::new(Format::Lzop, what, at)
}

/// Adler-32 (RFC 1950), the checksum lzop uses by default.
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    b << 16 | a
}

struct Cursor<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecompressError> {
        let s = self.b.get(self.p..self.p.saturating_add(n)).ok_or(err(TRUNCATED, self.b.len()))?;
        self.p += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecompressError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecompressError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecompressError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
}

/// Parse the header; returns the flags, the cursor left at the first block.
fn header<'a>(input: &'a [u8]) -> Result<(u32, Cursor<'a>), DecompressError> {
    if !input.starts_with(LZOP_MAGIC) {
        return Err(err(if input.len() < LZOP_MAGIC.len() { TRUNCATED } else { "no lzop magic" }, 0));
    }
    let mut c = Cursor { b: input, p: LZOP_MAGIC.len() };
    let start = c.p;
    let version = c.u16()?;
    let _lib_version = c.u16()?;
    if version >= 0x0940 {
        let _needed = c.u16()?;
    }
    let method_at = c.p;
    let method = c.u8()?;
    if !(1..=3).contains(&method) {
        return Err(err("not an LZO1X method", method_at));
    }
    if version >= 0x0940 {
        let _level = c.u8()?;
    }
    let flags_at = c.p;
    let flags = c.u32()?;
    if flags & F_H_FILTER != 0 {
        return Err(err("filtered lzop files are not supported", flags_at));
    }
    let _mode = c.u32()?;
    let _mtime_low = c.u32()?;
    if version >= 0x0940 {
        let _mtime_high = c.u32()?;
    }
    let name_len = c.u8()?;
    c.take(usize::from(name_len))?;
    let hdr = &input[start..c.p];
    let sum_at = c.p;
    let want = c.u32()?;
    let have = if flags & F_H_CRC32 != 0 { crate::crc::crc32(hdr) } else { adler32(hdr) };
    if have != want {
        return Err(err("header checksum mismatch", sum_at));
    }
    if flags & F_H_EXTRA_FIELD != 0 {
        let len = c.u32()?;
        c.take(len as usize)?;
        let _sum = c.u32()?;
    }
    Ok((flags, c))
}

pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<usize, DecompressError> {
    let (flags, mut c) = header(input)?;
    let mut done = 0usize;
    // Every block takes at least 4 bytes of input.
    loop {
        let block_at = c.p;
        let dst_len = c.u32()? as usize;
        if dst_len == 0 {
            return Ok(done);
        }
        if dst_len > MAX_BLOCK {
            return Err(err("block larger than 256 KiB", block_at));
        }
        let src_len = c.u32()? as usize;
        if src_len > dst_len {
            return Err(err("compressed block larger than its data", block_at));
        }
        let sum_d_adler = if flags & F_ADLER32_D != 0 { Some(c.u32()?) } else { None };
        let sum_d_crc = if flags & F_CRC32_D != 0 { Some(c.u32()?) } else { None };
        if src_len < dst_len {
            if flags & F_ADLER32_C != 0 {
                c.u32()?;
            }
            if flags & F_CRC32_C != 0 {
                c.u32()?;
            }
        }
        let data_at = c.p;
        let data = c.take(src_len)?;
        let cap = out.len();
        let dst = out.get_mut(done..done + dst_len).ok_or(DecompressError::too_large(Format::Lzop, cap, block_at))?;
        if src_len == dst_len {
            dst.copy_from_slice(data);
        } else {
            let n = lzo1x::decompress(data, dst).map_err(|e| {
                let what = match e.kind {
                    lzo1x::Lzo1xErrorKind::Truncated => "LZO1X block truncated",
                    lzo1x::Lzo1xErrorKind::OutputFull => "LZO1X block decompresses past its length",
                    lzo1x::Lzo1xErrorKind::BadDistance => "LZO1X match before the start of the block",
                };
                err(what, data_at + e.at)
            })?;
            if n != dst_len {
                return Err(err("LZO1X block shorter than its length", data_at));
            }
        }
        if sum_d_adler.is_some_and(|s| s != adler32(dst)) {
            return Err(err("block Adler-32 mismatch", block_at));
        }
        if sum_d_crc.is_some_and(|s| s != crate::crc::crc32(dst)) {
            return Err(err("block CRC-32 mismatch", block_at));
        }
        done += dst_len;
    }
}
