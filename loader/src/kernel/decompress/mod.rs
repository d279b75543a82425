// SPDX-License-Identifier: MIT OR Apache-2.0
//! Kernel payload decompressors: what a bzImage's `payload_offset`/`payload_length`
//! describe, decompressed by the loader (a Xen PV guest cannot run the kernel's own
//! decompressor). The formats are those of Xen's domain builder
//! (`xg_dom_bzimageloader.c`): gzip, bzip2, xz, legacy lzma, lzop, lz4 (legacy frame)
//! and zstd; the format is told by its magic ([`detect`]).
//!
//! Every decoder writes into a caller-provided buffer and never past it: the buffer is
//! the cap (a decompression bomb ends in [`DecompressError`] "output larger than N
//! bytes"), and no buffer is used past [`MAX_OUTPUT`] (1 GiB, Xen's XSA-25 cap). The
//! loader sizes the buffer from what the kernel declares (the payload's uncompressed-size
//! trailer, [`size_trailer`], or the bzImage's `init_size`). Errors are `Copy` and name
//! the format, the cause and the input offset.
//!
//! Decoders: gzip is rxen's RFC 1952 container around `miniz_oxide`'s raw inflate;
//! xz (with its x86 BCJ filter, as Linux builds them) and legacy lzma are `lzma-rust2`;
//! lzop is rxen's container around [`crate::codec::lzo1x`]; lz4 is rxen's legacy framing
//! around `lz4_flex`'s block decoder; zstd is [`crate::codec::zstd`] over `ruzstd`;
//! bzip2 is rxen's own decoder (no no_std bzip2 crate was found).

mod bzip2;
mod gzip;
mod lz4;
mod lzma;
mod lzop;
mod zstd;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Xen's cap on a decompressed kernel (XSA-25): no buffer is used past this.
pub const MAX_OUTPUT: usize = 1 << 30;

/// A kernel payload compression format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Gzip,
    Bzip2,
    Xz,
    Lzma,
    Lzop,
    Lz4,
    Zstd,
}

impl Format {
    /// Every format, in [`detect`]'s order.
    pub const ALL: [Format; 7] =
        [Format::Gzip, Format::Bzip2, Format::Xz, Format::Lzma, Format::Lzop, Format::Lz4, Format::Zstd];

    /// The format's name, as error messages give it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
            Format::Lzma => "lzma",
            Format::Lzop => "lzop",
            Format::Lz4 => "lz4",
            Format::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// gzip (RFC 1952): ID1 ID2, CM = 8 (deflate).
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
/// bzip2: "BZh" and the block size digit.
const BZIP2_MAGIC: &[u8] = b"BZh";
/// xz: the stream header magic.
const XZ_MAGIC: &[u8] = &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
/// lzop: its 9-byte magic.
const LZOP_MAGIC: &[u8] = &[0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a];
/// lz4 legacy frame: 0x184C2102 little-endian.
const LZ4_LEGACY_MAGIC: &[u8] = &[0x02, 0x21, 0x4c, 0x18];

/// Tell a payload's format by its magic. Legacy `.lzma` has no magic: Linux takes
/// `5d 00` (the properties byte lc=3 lp=0 pb=2 that `lzma` writes, and a dictionary size
/// whose low byte is 0); here also the header must be sane: a dictionary size of 2^n or
/// 2^n + 2^(n-1) (what the encoders write) and an uncompressed size that is either
/// unknown (all ones) or below 256 GiB.
pub fn detect(payload: &[u8]) -> Option<Format> {
    let p = payload;
    if p.starts_with(GZIP_MAGIC) && p.get(2) == Some(&8) {
        return Some(Format::Gzip);
    }
    if p.starts_with(BZIP2_MAGIC) && p.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)) {
        return Some(Format::Bzip2);
    }
    if p.starts_with(XZ_MAGIC) {
        return Some(Format::Xz);
    }
    if p.starts_with(LZOP_MAGIC) {
        return Some(Format::Lzop);
    }
    if p.starts_with(LZ4_LEGACY_MAGIC) {
        return Some(Format::Lz4);
    }
    if p.starts_with(&crate::codec::zstd::MAGIC) {
        return Some(Format::Zstd);
    }
    if lzma::looks_like_lzma(p) {
        return Some(Format::Lzma);
    }
    None
}

/// The uncompressed size Linux appends to every compressed payload (`size_append`: the
/// last 4 bytes, little-endian; for gzip it is the member's ISIZE). A hint for sizing the
/// output buffer, not to be trusted past [`MAX_OUTPUT`].
pub fn size_trailer(payload: &[u8]) -> Option<u32> {
    let at = payload.len().checked_sub(4)?;
    crate::kernel::le::u32_at(payload, at)
}

/// The heap the decoder of `format` may need for `payload` with an output of at most
/// `out_len` bytes, beyond the output buffer: its history window, which the dictionary
/// decoders grow by doubling, so that on a first-fit heap the blocks already given back
/// leave holes below each new one: twice the final power of two in all (measured on real
/// Xen: 1.5x was not enough), plus 2 MiB for tables. The caller makes sure that much is free
/// before decoding: `ruzstd` cannot report a failed allocation (it panics), so this check
/// is what keeps a frame that asks for a large window an error in a small guest.
pub fn working_memory(format: Format, payload: &[u8], out_len: u64) -> u64 {
    const TABLES: u64 = 2 << 20;
    let grown = |history: u64| {
        let cap = history.min(out_len).saturating_add(256 << 10).checked_next_power_of_two().unwrap_or(u64::MAX);
        cap.saturating_mul(2).saturating_add(TABLES)
    };
    match format {
        // The dictionary is what the header says (xz: its first block's LZMA2 filter;
        // without one, the 64 MiB the decoder allows). lzma-rust2 grows the window by
        // doubling up to exactly the dictionary size: the last two sizes and the holes
        // below them fit in twice the dictionary's power of two.
        Format::Xz => {
            let dict = lzma::xz_dict_size(payload).unwrap_or(64 << 20).min(out_len.max(1));
            dict.checked_next_power_of_two().unwrap_or(u64::MAX).saturating_mul(2).saturating_add(TABLES)
        }
        Format::Lzma => grown(crate::kernel::le::u32_at(payload, 1).map_or(64 << 20, u64::from)),
        Format::Zstd => grown(crate::codec::zstd::window_size(payload).unwrap_or(1 << 27)),
        Format::Bzip2 => 8 << 20,
        Format::Gzip | Format::Lzop | Format::Lz4 => TABLES,
    }
}

/// The message of the error for output past the buffer (its `Display` adds the size).
pub const OUTPUT_TOO_LARGE: &str = "output larger than the buffer";
/// The message of the error for input that ends too early.
pub const TRUNCATED: &str = "truncated input";
/// The message of the error when the caller's poll asked to stop.
pub const INTERRUPTED: &str = "interrupted";

/// Why a payload did not decompress. `Display`: "FORMAT: CAUSE at input offset N", or
/// "FORMAT: output larger than N bytes (at input offset M)".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecompressError {
    /// The format's name ([`Format::name`]).
    pub format: &'static str,
    /// What is wrong.
    pub what: &'static str,
    /// About where in the input (from the payload's start) it went wrong.
    pub offset: u64,
    /// For [`OUTPUT_TOO_LARGE`]: the buffer's size.
    pub limit: Option<u64>,
}

impl DecompressError {
    pub(crate) fn new(format: Format, what: &'static str, offset: usize) -> Self {
        DecompressError { format: format.name(), what, offset: offset as u64, limit: None }
    }
    pub(crate) fn too_large(format: Format, limit: usize, offset: usize) -> Self {
        DecompressError {
            format: format.name(),
            what: OUTPUT_TOO_LARGE,
            offset: offset as u64,
            limit: Some(limit as u64),
        }
    }
    /// Whether this is the output-past-the-buffer error.
    pub fn is_too_large(&self) -> bool {
        self.limit.is_some()
    }
    /// Whether the caller's poll stopped the work ([`decompress_into_polled`]).
    pub fn is_interrupted(&self) -> bool {
        self.what == INTERRUPTED
    }
}

impl fmt::Display for DecompressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            Some(n) => write!(f, "{}: output larger than {n} bytes (at input offset {})", self.format, self.offset),
            None => write!(f, "{}: {} at input offset {}", self.format, self.what, self.offset),
        }
    }
}

/// Decompress `input` (of `format`) into `out`; returns the bytes written. Output that
/// does not fit in `out` (or in its first [`MAX_OUTPUT`] bytes) is an error: the caller's
/// buffer is the cap. Bytes after the compressed stream (Linux's size trailer) are ignored.
pub fn decompress_into(format: Format, input: &[u8], out: &mut [u8]) -> Result<usize, DecompressError> {
    decompress_into_polled(format, input, out, &mut || false)
}

/// [`decompress_into`], calling `poll` now and then (xz and lzma: every 256 KiB of
/// output; the other formats, fast ones, not at all): when it returns true, the work stops
/// with an [`INTERRUPTED`] error ([`DecompressError::is_interrupted`]).
pub fn decompress_into_polled(
    format: Format,
    input: &[u8],
    out: &mut [u8],
    poll: &mut dyn FnMut() -> bool,
) -> Result<usize, DecompressError> {
    let cap = out.len().min(MAX_OUTPUT);
    let out = &mut out[..cap];
    match format {
        Format::Gzip => gzip::decompress(input, out),
        Format::Bzip2 => bzip2::decompress(input, out),
        Format::Xz => lzma::xz(input, out, poll),
        Format::Lzma => lzma::lzma(input, out, poll),
        Format::Lzop => lzop::decompress(input, out),
        Format::Lz4 => lz4::decompress(input, out),
        Format::Zstd => zstd::decompress(input, out),
    }
}

/// [`decompress_into`] a new buffer of `out_cap` bytes (at most [`MAX_OUTPUT`]), cut to
/// what was written. The buffer is allocated whole up front.
pub fn decompress(format: Format, input: &[u8], out_cap: usize) -> Result<Vec<u8>, DecompressError> {
    let mut out = vec![0u8; out_cap.min(MAX_OUTPUT)];
    let n = decompress_into(format, input, &mut out)?;
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_magics() {
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Some(Format::Gzip));
        assert_eq!(detect(b"BZh91AY&SY"), Some(Format::Bzip2));
        assert_eq!(detect(b"BZhx"), None);
        assert_eq!(detect(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 4]), Some(Format::Xz));
        // xz's block header: BCJ x86 (id 4, no properties), then LZMA2 with 32 MiB (0x1a).
        let mut x = alloc::vec![0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 1, 0, 0, 0, 0];
        x.extend([2, 0x01, 0x04, 0x00, 0x21, 0x01, 0x1a, 0, 0, 0, 0, 0]);
        assert_eq!(lzma::xz_dict_size(&x), Some(32 << 20));
        assert_eq!(working_memory(Format::Xz, &x, 60 << 20), (64 << 20) + (2 << 20));
        assert_eq!(working_memory(Format::Xz, &x, 1 << 20), (2 << 20) + (2 << 20));
        x[18] = 41;
        assert_eq!(lzma::xz_dict_size(&x), None);
        assert_eq!(lzma::xz_dict_size(&x[..15]), None);
        assert_eq!(detect(LZOP_MAGIC), Some(Format::Lzop));
        assert_eq!(detect(&[0x02, 0x21, 0x4c, 0x18, 0, 0]), Some(Format::Lz4));
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd, 0x04]), Some(Format::Zstd));
        let mut lz = vec![0x5d, 0, 0, 0x80, 0];
        lz.extend_from_slice(&[0xff; 8]);
        assert_eq!(detect(&lz), Some(Format::Lzma));
        lz[3] = 0x81; // dictionary 0x810000: not 2^n or 2^n + 2^(n-1)
        assert_eq!(detect(&lz), None);
        assert_eq!(detect(b""), None);
        assert_eq!(detect(b"\x7fELF"), None);
    }

    #[test]
    fn error_display() {
        let e = DecompressError::new(Format::Xz, "corrupt block header", 1234);
        assert_eq!(e.to_string(), "xz: corrupt block header at input offset 1234");
        let e = DecompressError::too_large(Format::Zstd, 64, 10);
        assert_eq!(e.to_string(), "zstd: output larger than 64 bytes (at input offset 10)");
        assert!(e.is_too_large());
    }

    #[test]
    fn bzip2_empty_and_cut_stream() {
        // "BZh9", the end-of-stream magic, combined CRC 0.
        let empty = [b'B', b'Z', b'h', b'9', 0x17, 0x72, 0x45, 0x38, 0x50, 0x90, 0, 0, 0, 0];
        assert_eq!(decompress(Format::Bzip2, &empty, 16), Ok(vec![]));
        let e = decompress(Format::Bzip2, &empty[..8], 16).unwrap_err();
        assert_eq!(e.to_string(), "bzip2: truncated input at input offset 8");
    }

    #[test]
    fn size_trailer_reads_last_four() {
        assert_eq!(size_trailer(&[9, 1, 0, 0, 0]), Some(1));
        assert_eq!(size_trailer(&[1, 0, 0]), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(fmt in 0usize..7, data in proptest::collection::vec(proptest::num::u8::ANY, 0..2048), cap in 0usize..65536) {
            let f = Format::ALL[fmt];
            let _ = detect(&data);
            let _ = decompress(f, &data, cap).map_err(|e| e.to_string());
        }
    }
}
