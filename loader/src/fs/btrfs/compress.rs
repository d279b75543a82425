// SPDX-License-Identifier: MIT OR Apache-2.0
//! Compressed extents: zlib (one zlib stream; `miniz_oxide`), zstd (one frame;
//! [`crate::codec::zstd`] over `ruzstd`), and lzo: btrfs's own framing (a 4-byte total length, then segments of a
//! 4-byte length and an LZO1X stream each decompressing to at most one sector; a
//! segment header never straddles a sector boundary: the sector's tail is padding)
//! around LZO1X, decompressed by rxen's own [`crate::codec::lzo1x`] (no maintained
//! no_std LZO1X crate was found).
//!
//! Every decompression is capped at the extent's `ram_bytes` (at most [`MAX_RAM_BYTES`],
//! btrfs's 128 KiB for compressed extents); errors name the format and the extent.

use alloc::vec;
use alloc::vec::Vec;

use super::FS;
use super::items::Compression;
use crate::fs::FsError;

/// `BTRFS_MAX_UNCOMPRESSED`: what one compressed extent holds at most.
pub const MAX_RAM_BYTES: u64 = 128 * 1024;
/// zstd window this reader allows (btrfs writes at most 2^17 bytes; allow some room).
const ZSTD_MAX_WINDOW: u64 = 1 << 20;

fn bad(what: &'static str, at: u64) -> FsError {
    FsError::Corrupt { fs: FS, what, at }
}

/// Decompress `src` (extent at logical `at`, for messages) into exactly `ram_bytes`
/// bytes (a stream that ends early is zero-filled, as the kernel does).
pub fn decompress(c: Compression, src: &[u8], ram_bytes: u64, sectorsize: u32, at: u64) -> Result<Vec<u8>, FsError> {
    if ram_bytes > MAX_RAM_BYTES {
        return Err(bad("compressed extent larger than 128 KiB uncompressed", at));
    }
    let cap = ram_bytes as usize;
    let mut out = match c {
        Compression::None => src.get(..cap).ok_or(bad("extent shorter than its size", at))?.to_vec(),
        Compression::Zlib => zlib(src, cap, at)?,
        Compression::Zstd => zstd(src, cap, at)?,
        Compression::Lzo => lzo(src, cap, sectorsize as usize, at)?,
    };
    out.resize(cap, 0);
    Ok(out)
}

fn zlib(src: &[u8], cap: usize, at: u64) -> Result<Vec<u8>, FsError> {
    use miniz_oxide::inflate::TINFLStatus;
    match miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(src, cap) {
        Ok(v) => Ok(v),
        Err(e) if e.status == TINFLStatus::HasMoreOutput => Err(bad("zlib: extent data longer than its size", at)),
        // btrfs pads the last sector after the stream; a stream cut short is an error.
        Err(_) => Err(bad("zlib: invalid compressed extent", at)),
    }
}

fn zstd(src: &[u8], cap: usize, at: u64) -> Result<Vec<u8>, FsError> {
    use crate::codec::zstd::{ZstdErrorKind::*, decode_frame};
    // btrfs pads the frame to the sector: decode one frame, ignore what follows.
    let mut out = vec![0u8; cap];
    let n = decode_frame(src, &mut out, ZSTD_MAX_WINDOW).map_err(|e| {
        bad(
            match e.kind {
                NoHeader => "zstd: no frame header",
                WindowTooLarge => "zstd: frame window larger than 1 MiB",
                BadHeader => "zstd: invalid frame header",
                Corrupt => "zstd: invalid compressed extent",
                OutputFull => "zstd: extent data longer than its size",
                Checksum => "zstd: content checksum mismatch",
            },
            at,
        )
    })?;
    out.truncate(n);
    Ok(out)
}

fn le32_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// btrfs's LZO framing: decompress every segment into at most `cap` bytes.
pub fn lzo(src: &[u8], cap: usize, sectorsize: usize, at: u64) -> Result<Vec<u8>, FsError> {
    let total = le32_at(src, 0).ok_or(bad("lzo: no header", at))?;
    if total > src.len() || total < 4 {
        return Err(bad("lzo: total length past the extent", at));
    }
    let src = &src[..total];
    let mut out = Vec::with_capacity(cap);
    let mut p = 4usize;
    while p < total && out.len() < cap {
        let left_in_sector = sectorsize - p % sectorsize;
        if left_in_sector < 4 {
            p += left_in_sector;
            continue;
        }
        let seg_len = le32_at(src, p).ok_or(bad("lzo: segment header past the extent", at))?;
        p += 4;
        let seg = src.get(p..p.saturating_add(seg_len)).ok_or(bad("lzo: segment past the extent", at))?;
        p += seg_len;
        let want = (cap - out.len()).min(sectorsize);
        let start = out.len();
        out.resize(start + want, 0);
        let n = lzo1x(seg, &mut out[start..]).map_err(|what| bad(what, at))?;
        out.truncate(start + n);
        if n == 0 {
            break;
        }
    }
    Ok(out)
}

/// One btrfs LZO segment: an LZO1X stream ([`crate::codec::lzo1x`]) into `out`.
fn lzo1x(src: &[u8], out: &mut [u8]) -> Result<usize, &'static str> {
    use crate::codec::lzo1x::{Lzo1xErrorKind::*, decompress};
    decompress(src, out).map_err(|e| match e.kind {
        Truncated => "lzo: segment truncated",
        OutputFull => "lzo: segment decompresses past its sector",
        BadDistance => "lzo: match before the start of the segment",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lzo_segments_and_sector_padding() {
        let mut seg = alloc::vec![17 + 5];
        seg.extend_from_slice(b"abcde");
        seg.extend_from_slice(&[0x11, 0, 0]);
        let mut src = alloc::vec![0u8; 4];
        for _ in 0..2 {
            src.extend_from_slice(&(seg.len() as u32).to_le_bytes());
            src.extend_from_slice(&seg);
        }
        let total = src.len() as u32;
        src[..4].copy_from_slice(&total.to_le_bytes());
        // A tiny "sector" of 16 bytes: after the first segment (4 + 4 + 9 = 17) the second
        // header fits; use a real sector size.
        assert_eq!(lzo(&src, 10, 4096, 0).unwrap(), b"abcdeabcde");
        assert_eq!(lzo(&src, 7, 4096, 0).unwrap_err(), bad("lzo: segment decompresses past its sector", 0));
        let mut short = src.clone();
        short[..4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(lzo(&short, 10, 4096, 0).is_err());
    }

    #[test]
    fn zstd_window_is_capped() {
        // Magic, FHD without single segment, window descriptor exponent 30.
        let f = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 30 << 3, 0, 0, 0];
        assert_eq!(
            decompress(Compression::Zstd, &f, 4096, 4096, 7),
            Err(bad("zstd: frame window larger than 1 MiB", 7))
        );
        assert!(decompress(Compression::Zstd, b"nope", 4096, 4096, 7).is_err());
        assert!(decompress(Compression::Zlib, b"nope", 4096, 4096, 7).is_err());
        assert!(decompress(Compression::Zlib, &[], 1 << 20, 4096, 7).is_err());
    }
}
