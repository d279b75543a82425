// SPDX-License-Identifier: MIT OR Apache-2.0
//! One zstd frame decoded by `ruzstd` into a caller's buffer, with the frame's window
//! checked against a cap before anything is allocated (`ruzstd` allocates the window as
//! it decodes), and the output bounded by the buffer.

use ruzstd::io::Read;

/// The zstd frame magic (little-endian 0xFD2FB528).
pub const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// What went wrong decoding a zstd frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZstdErrorKind {
    /// No zstd magic, or the frame header is cut short.
    NoHeader,
    /// The frame asks for a window larger than the caller's cap.
    WindowTooLarge,
    /// `ruzstd` refused the frame header.
    BadHeader,
    /// A block is corrupt or the input ends inside the frame.
    Corrupt,
    /// The frame decompresses to more than the output buffer.
    OutputFull,
    /// The frame's content checksum (XXH64, low 32 bits) does not match the output.
    Checksum,
}

/// A zstd error and about where in the input it was found (`ruzstd` reads whole blocks:
/// the offset is the end of the input consumed so far).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZstdError {
    pub kind: ZstdErrorKind,
    pub at: usize,
}

/// The window a zstd frame header asks for, or `None` when the header is unreadable.
pub fn window_size(src: &[u8]) -> Option<u64> {
    if src.get(..4)? != MAGIC {
        return None;
    }
    let fhd = *src.get(4)?;
    let single_segment = fhd & 0x20 != 0;
    if !single_segment {
        let wd = *src.get(5)?;
        let base = 1u64 << (10 + u32::from(wd >> 3));
        return Some(base + (base / 8) * u64::from(wd & 7));
    }
    // Single segment: the window is the content size.
    let dict_len = [0usize, 1, 2, 4][usize::from(fhd & 3)];
    let fcs_len = [1usize, 2, 4, 8][usize::from(fhd >> 6)];
    let at = 5 + dict_len;
    let b = src.get(at..at + fcs_len)?;
    let mut v = 0u64;
    for (i, x) in b.iter().enumerate() {
        v |= u64::from(*x) << (8 * i);
    }
    Some(if fcs_len == 2 { v + 256 } else { v })
}

/// Decode the zstd frame at the start of `src` into `out`, refusing a window larger than
/// `max_window`; returns the bytes written. What follows the frame is ignored.
pub fn decode_frame(src: &[u8], out: &mut [u8], max_window: u64) -> Result<usize, ZstdError> {
    use ZstdErrorKind::*;
    let err = |kind, rest: &[u8]| ZstdError { kind, at: src.len() - rest.len() };
    match window_size(src) {
        None => return Err(err(NoHeader, src)),
        Some(w) if w > max_window => return Err(err(WindowTooLarge, src)),
        Some(_) => {}
    }
    let mut dec = ruzstd::decoding::FrameDecoder::new();
    let mut input = src;
    dec.init(&mut input).map_err(|_| err(BadHeader, src))?;
    // Drain in steps so that ruzstd holds at most its window plus one step.
    const STEP: usize = 1 << 20;
    let mut done = 0usize;
    // Every round decodes at least one block (3 bytes of input at least) or ends the frame.
    let max_rounds = src.len() / 3 + 2;
    let mut rounds = 0usize;
    while !dec.is_finished() {
        rounds += 1;
        if rounds > max_rounds {
            return Err(err(Corrupt, input));
        }
        dec.decode_blocks(&mut input, ruzstd::decoding::BlockDecodingStrategy::UptoBytes(STEP))
            .map_err(|_| err(Corrupt, input))?;
        done += dec.read(out.get_mut(done..).unwrap_or(&mut [])).map_err(|_| err(Corrupt, input))?;
        if dec.can_collect() > 0 && done >= out.len() {
            return Err(err(OutputFull, input));
        }
    }
    done += dec.read(out.get_mut(done..).unwrap_or(&mut [])).map_err(|_| err(Corrupt, input))?;
    if dec.can_collect() > 0 {
        return Err(err(OutputFull, input));
    }
    if let Some(want) = dec.get_checksum_from_data()
        && dec.get_calculated_checksum() != Some(want)
    {
        return Err(err(Checksum, input));
    }
    Ok(done)
}
