// SPDX-License-Identifier: MIT OR Apache-2.0
//! Directory records and volume descriptors (ECMA-119 9.1 and 8.4/8.5): pure parsing of
//! bytes already read, every field bounds-checked.

use crate::fs::FsError;

use super::FS;

/// Directory record flags (ECMA-119 9.1.6).
pub const FLAG_DIRECTORY: u8 = 0x02;
pub const FLAG_ASSOCIATED: u8 = 0x04;
pub const FLAG_MULTI_EXTENT: u8 = 0x80;
/// The fixed part of a directory record, before the file identifier.
pub const RECORD_FIXED: usize = 33;

/// One directory record, borrowed from the block holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Length of the whole record in bytes.
    pub len: usize,
    /// Extended attribute record length, in logical blocks (the data starts after it).
    pub xa_len: u8,
    /// Location of the extent (the little-endian half), in logical blocks.
    pub lba: u32,
    /// Data length in bytes (the little-endian half).
    pub size: u32,
    pub flags: u8,
    /// File unit size and interleave gap: nonzero means an interleaved file.
    pub unit: u8,
    pub gap: u8,
    /// File identifier: `\0` is `.`, `\x01` is `..`.
    pub name: &'a [u8],
    /// The system use area (SUSP / Rock Ridge entries).
    pub su: &'a [u8],
}

impl Record<'_> {
    pub fn is_dir(&self) -> bool {
        self.flags & FLAG_DIRECTORY != 0
    }
    pub fn is_dot(&self) -> bool {
        self.name == [0]
    }
    pub fn is_dotdot(&self) -> bool {
        self.name == [1]
    }
}

pub fn le16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

pub fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b_, c, d]) => u32::from_le_bytes([a, b_, c, d]),
        _ => 0,
    }
}

fn corrupt(what: &'static str, at: u64) -> FsError {
    FsError::Corrupt { fs: FS, what, at }
}

/// Parse the record at the start of `b`, which runs to the end of its logical block;
/// `at` (its byte offset on the device) is for messages. `Ok(None)` for a zero length
/// byte: the rest of the block is padding.
pub fn parse_record(b: &[u8], at: u64) -> Result<Option<Record<'_>>, FsError> {
    let len = usize::from(*b.first().ok_or(corrupt("directory record past the end of its block", at))?);
    if len == 0 {
        return Ok(None);
    }
    if len > b.len() {
        return Err(corrupt("directory record crosses the end of its logical block", at));
    }
    if len < RECORD_FIXED + 1 {
        return Err(corrupt("directory record shorter than 34 bytes", at));
    }
    let rec = b.get(..len).ok_or(corrupt("directory record crosses the end of its logical block", at))?;
    let name_len = usize::from(rec.get(32).copied().unwrap_or(0));
    let name_end = RECORD_FIXED + name_len;
    let name = rec.get(RECORD_FIXED..name_end).ok_or(corrupt("directory record's name runs past the record", at))?;
    if name.is_empty() {
        return Err(corrupt("directory record with an empty name", at));
    }
    // A padding byte follows an even-length identifier (ECMA-119 9.1.12).
    let su_start = (name_end + usize::from(name_len.is_multiple_of(2))).min(len);
    let su = rec.get(su_start..).unwrap_or(&[]);
    Ok(Some(Record {
        len,
        xa_len: rec.get(1).copied().unwrap_or(0),
        lba: le32(rec, 2),
        size: le32(rec, 10),
        flags: rec.get(25).copied().unwrap_or(0),
        unit: rec.get(26).copied().unwrap_or(0),
        gap: rec.get(27).copied().unwrap_or(0),
        name,
        su,
    }))
}

/// Volume descriptor types (ECMA-119 8.1.1).
pub const VD_PRIMARY: u8 = 1;
pub const VD_SUPPLEMENTARY: u8 = 2;
pub const VD_TERMINATOR: u8 = 255;
/// Byte offset of the root directory record in a primary/supplementary descriptor.
pub const VD_ROOT_RECORD: usize = 156;

/// Is the supplementary descriptor `vd` a Joliet one (escape sequence `%/@`, `%/C` or
/// `%/E`: UCS-2 levels 1, 2, 3)?
pub fn is_joliet(vd: &[u8]) -> bool {
    vd.first() == Some(&VD_SUPPLEMENTARY)
        && vd.get(6) == Some(&1)
        && matches!(vd.get(88..91), Some(b"%/@" | b"%/C" | b"%/E"))
}

/// The logical block size of a primary/supplementary descriptor: a power of two from
/// 512 to the 2048-byte sector (ECMA-119 6.1.2).
pub fn logical_block_size(vd: &[u8], at: u64) -> Result<u32, FsError> {
    let bs = u32::from(le16(vd, 128));
    if !bs.is_power_of_two() || !(512..=2048).contains(&bs) {
        return Err(FsError::Corrupt { fs: FS, what: "logical block size is not 512, 1024 or 2048", at });
    }
    Ok(bs)
}

/// A date of the primary volume descriptor (ECMA-119 8.4.26.1: 16 ASCII digits and a
/// time zone byte) as blkid prints it: `YYYY-MM-DD-HH-MM-SS-CC`; `None` when unset (all
/// zeros) or not digits.
pub fn vd_date(d: &[u8]) -> Option<alloc::string::String> {
    let digits = d.get(..16)?;
    if !digits.iter().all(u8::is_ascii_digit) || digits.iter().all(|&c| c == b'0') {
        return None;
    }
    let mut s = alloc::string::String::with_capacity(22);
    for (i, &c) in digits.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10 | 12 | 14) {
            s.push('-');
        }
        s.push(char::from(c));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A record as mastering tools lay it out.
    pub fn rec(lba: u32, size: u32, flags: u8, name: &[u8], su: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.push(0);
        r.push(0);
        r.extend_from_slice(&lba.to_le_bytes());
        r.extend_from_slice(&lba.to_be_bytes());
        r.extend_from_slice(&size.to_le_bytes());
        r.extend_from_slice(&size.to_be_bytes());
        r.extend_from_slice(&[123, 1, 2, 3, 4, 5, 0, flags, 0, 0, 0, 1, 1, 0]);
        r.push(name.len() as u8);
        r.extend_from_slice(name);
        if name.len().is_multiple_of(2) {
            r.push(0);
        }
        r.extend_from_slice(su);
        if r.len() % 2 == 1 {
            r.push(0);
        }
        r[0] = r.len() as u8;
        r
    }

    #[test]
    fn parses_records_and_refuses_bad_lengths() {
        let r = rec(20, 5000, FLAG_DIRECTORY, b"BOOT", b"NM\x09\x01\x00boot");
        let p = parse_record(&r, 0).unwrap().unwrap();
        assert_eq!((p.lba, p.size, p.is_dir(), p.name), (20, 5000, true, &b"BOOT"[..]));
        assert_eq!(p.su, b"NM\x09\x01\x00boot\0");
        assert_eq!(p.len, r.len());
        let dot = rec(18, 2048, 2, b"\0", b"");
        assert!(parse_record(&dot, 0).unwrap().unwrap().is_dot());
        assert_eq!(parse_record(&[0, 1, 2], 0), Ok(None));
        assert!(matches!(parse_record(&r[..r.len() - 1], 7), Err(FsError::Corrupt { at: 7, .. })));
        assert!(parse_record(&[20; 20], 0).is_err());
        let mut bad = r.clone();
        bad[32] = 200;
        assert!(parse_record(&bad, 0).is_err());
        assert!(parse_record(&[], 0).is_err());
    }

    #[test]
    fn dates_and_descriptors() {
        assert_eq!(vd_date(b"2023111422131300\0").as_deref(), Some("2023-11-14-22-13-13-00"));
        assert_eq!(vd_date(b"0000000000000000\0"), None);
        assert_eq!(vd_date(&[0; 17]), None);
        assert_eq!(vd_date(b"2023"), None);
        let mut vd = [0u8; 2048];
        vd[0] = 2;
        vd[6] = 1;
        vd[88..91].copy_from_slice(b"%/E");
        assert!(is_joliet(&vd));
        vd[90] = b'X';
        assert!(!is_joliet(&vd));
        vd[128..130].copy_from_slice(&2048u16.to_le_bytes());
        assert_eq!(logical_block_size(&vd, 0), Ok(2048));
        vd[128..130].copy_from_slice(&4096u16.to_le_bytes());
        assert!(logical_block_size(&vd, 0).is_err());
    }
}
