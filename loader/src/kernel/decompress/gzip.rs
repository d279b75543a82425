// SPDX-License-Identifier: MIT OR Apache-2.0
//! gzip (RFC 1952): the member header parsed here (FTEXT, FHCRC, FEXTRA, FNAME,
//! FCOMMENT), the raw deflate stream inflated by `miniz_oxide` straight into the output
//! buffer, then the CRC-32 and ISIZE trailer checked. One member; what follows is ignored.

use alloc::boxed::Box;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress as inflate, inflate_flags};

use super::{DecompressError, Format, TRUNCATED};
use crate::kernel::le;

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;

fn err(what: &'static str, at: usize) -> DecompressError {
    DecompressError::new(Format::Gzip, what, at)
}

/// Offset just past a zero-terminated field starting at `at`.
fn skip_zstring(input: &[u8], at: usize) -> Result<usize, DecompressError> {
    let rest = input.get(at..).ok_or(err(TRUNCATED, input.len()))?;
    let nul = rest.iter().position(|&b| b == 0).ok_or(err("header name or comment not terminated", at))?;
    Ok(at + nul + 1)
}

/// Length of the member header.
fn header_len(input: &[u8]) -> Result<usize, DecompressError> {
    if input.len() < 10 {
        return Err(err(TRUNCATED, input.len()));
    }
    if input[..2] != [0x1f, 0x8b] {
        return Err(err("no gzip magic", 0));
    }
    if input[2] != 8 {
        return Err(err("compression method is not deflate", 2));
    }
    let flg = input[3];
    if flg & FRESERVED != 0 {
        return Err(err("reserved header flags set", 3));
    }
    let mut p = 10usize;
    if flg & FEXTRA != 0 {
        let xlen = le::u16_at(input, p).ok_or(err(TRUNCATED, input.len()))?;
        p += 2 + usize::from(xlen);
        if p > input.len() {
            return Err(err(TRUNCATED, input.len()));
        }
    }
    if flg & FNAME != 0 {
        p = skip_zstring(input, p)?;
    }
    if flg & FCOMMENT != 0 {
        p = skip_zstring(input, p)?;
    }
    if flg & FHCRC != 0 {
        let want = le::u16_at(input, p).ok_or(err(TRUNCATED, input.len()))?;
        if crate::crc::crc32(&input[..p]) as u16 != want {
            return Err(err("header CRC16 mismatch", p));
        }
        p += 2;
    }
    Ok(p)
}

pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<usize, DecompressError> {
    let start = header_len(input)?;
    let deflate = &input[start..];
    let mut state = Box::<DecompressorOxide>::default();
    let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let (status, used, written) = inflate(&mut state, deflate, out, 0, flags);
    let at = start + used;
    match status {
        TINFLStatus::Done => {}
        TINFLStatus::HasMoreOutput => return Err(DecompressError::too_large(Format::Gzip, out.len(), at)),
        TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => return Err(err(TRUNCATED, at)),
        _ => return Err(err("corrupt deflate stream", at)),
    }
    let crc = le::u32_at(input, at).ok_or(err(TRUNCATED, input.len()))?;
    let isize = le::u32_at(input, at + 4).ok_or(err(TRUNCATED, input.len()))?;
    let data = &out[..written];
    if isize != written as u32 {
        return Err(err("ISIZE does not match the decompressed size", at + 4));
    }
    if crate::crc::crc32(data) != crc {
        return Err(err("CRC32 mismatch", at));
    }
    Ok(written)
}
