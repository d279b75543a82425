// SPDX-License-Identifier: MIT OR Apache-2.0
//! A `no_std`, allocation-free reader of POSIX ustar archives (the memdisk format).
//!
//! The memdisk is checked against the image header's SHA-256 before the loader reads it,
//! but the reader still treats every byte as hostile: the fuzzers drive it directly.
//! Every header is checksummed, every size is bounds-checked, and every step moves at least
//! one 512-byte block forward, so a bad archive yields an error naming the offset, never a
//! panic or a hang.
//!
//! What is read: regular files (`'0'`, `'\0'`), directories (`'5'`); other entry types are
//! listed as [`EntryKind::Other`] and are not files. Paths are `prefix/name` (POSIX ustar),
//! UTF-8, compared without a leading `/` or `./`. The archive ends at two zero blocks (one
//! is accepted) or at the end of the data.

use core::fmt;

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// Why an archive (or a lookup in it) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UstarError {
    /// The header at `offset` is damaged: `what` says how.
    Corrupt {
        /// Byte offset of the header in the archive.
        offset: usize,
        /// What is wrong with it.
        what: Corruption,
    },
    /// No entry has that path.
    NotFound,
    /// The entry is a directory or another non-file type.
    NotAFile,
}

/// What is wrong with a damaged header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// Fewer than 512 bytes left for a header.
    TruncatedHeader,
    /// The header checksum does not match its bytes.
    BadChecksum,
    /// No `ustar` magic: not a POSIX/GNU tar header.
    BadMagic,
    /// A numeric field is not octal.
    BadNumber,
    /// The entry's data runs past the end of the archive.
    TruncatedData,
    /// The path is not UTF-8 or is empty.
    BadPath,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Corruption::TruncatedHeader => "truncated header",
            Corruption::BadChecksum => "header checksum mismatch",
            Corruption::BadMagic => "not a ustar header (no \"ustar\" magic)",
            Corruption::BadNumber => "numeric field is not octal",
            Corruption::TruncatedData => "file data runs past the end of the archive",
            Corruption::BadPath => "path is empty or not UTF-8",
        })
    }
}

impl fmt::Display for UstarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UstarError::Corrupt { offset, what } => write!(f, "memdisk archive: header at offset {offset:#x}: {what}"),
            UstarError::NotFound => f.write_str("no such file in the memdisk"),
            UstarError::NotAFile => f.write_str("not a regular file"),
        }
    }
}

impl core::error::Error for UstarError {}

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// Anything else (links, devices, GNU/pax extension headers): carried, not read.
    Other(u8),
}

/// An entry's path: ustar stores it as `prefix` and `name`, joined by `/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryPath<'a> {
    prefix: &'a str,
    name: &'a str,
}

impl<'a> EntryPath<'a> {
    /// Both parts, leading `./` and `/` and trailing `/` removed.
    fn parts(&self) -> (&'a str, &'a str) {
        let trim = |s: &'a str| {
            let mut s = s;
            loop {
                if let Some(r) = s.strip_prefix("./") {
                    s = r;
                } else if let Some(r) = s.strip_prefix('/') {
                    s = r;
                } else {
                    break;
                }
            }
            s.trim_end_matches('/')
        };
        if self.prefix.is_empty() {
            ("", trim(self.name))
        } else {
            (trim(self.prefix), self.name.trim_end_matches('/'))
        }
    }

    /// Whether this is `path` (leading `/` or `./` and a trailing `/` ignored on both sides).
    pub fn matches(&self, path: &str) -> bool {
        let want = EntryPath { prefix: "", name: path }.parts().1;
        match self.parts() {
            ("", n) => n == want,
            (p, n) => {
                want.len() == p.len() + 1 + n.len()
                    && want.starts_with(p)
                    && want.as_bytes()[p.len()] == b'/'
                    && want.ends_with(n)
            }
        }
    }
}

impl fmt::Display for EntryPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parts() {
            ("", n) => f.write_str(n),
            (p, n) => write!(f, "{p}/{n}"),
        }
    }
}

/// One archive member.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    path: EntryPath<'a>,
    kind: EntryKind,
    mode: u32,
    data: &'a [u8],
    offset: usize,
}

impl<'a> Entry<'a> {
    /// Its path.
    pub fn path(&self) -> EntryPath<'a> {
        self.path
    }
    /// What it is.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }
    /// Its permission bits.
    pub fn mode(&self) -> u32 {
        self.mode
    }
    /// Its contents (empty for directories).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
    /// Its size in bytes.
    pub fn size(&self) -> usize {
        self.data.len()
    }
    /// Offset of its header in the archive.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// A ustar archive in memory.
#[derive(Clone, Copy, Debug)]
pub struct Archive<'a> {
    data: &'a [u8],
}

impl<'a> Archive<'a> {
    /// Wrap `data`; nothing is read until it is iterated.
    pub const fn new(data: &'a [u8]) -> Archive<'a> {
        Archive { data }
    }

    /// The entries in archive order. After an error the iterator ends.
    pub fn entries(&self) -> Entries<'a> {
        Entries { data: self.data, pos: 0, done: false }
    }

    /// The entry at `path`, or `None`. Errors in headers before it are returned.
    pub fn find(&self, path: &str) -> Result<Option<Entry<'a>>, UstarError> {
        for e in self.entries() {
            let e = e?;
            if e.path.matches(path) {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// The contents of the regular file at `path`.
    pub fn file(&self, path: &str) -> Result<&'a [u8], UstarError> {
        match self.find(path)? {
            None => Err(UstarError::NotFound),
            Some(e) if e.kind == EntryKind::File => Ok(e.data),
            Some(_) => Err(UstarError::NotAFile),
        }
    }
}

/// Iterator over an archive's entries.
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, UstarError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<'a> Entries<'a> {
    fn step(&mut self) -> Result<Option<Entry<'a>>, UstarError> {
        let offset = self.pos;
        let rest = &self.data[offset.min(self.data.len())..];
        if rest.is_empty() {
            return Ok(None);
        }
        let corrupt = |what| UstarError::Corrupt { offset, what };
        let Some(h) = rest.get(..BLOCK) else { return Err(corrupt(Corruption::TruncatedHeader)) };
        if h.iter().all(|&b| b == 0) {
            // End of archive (a second zero block normally follows; not required).
            return Ok(None);
        }
        let want = octal(&h[148..156]).ok_or(corrupt(Corruption::BadNumber))?;
        if !checksum_ok(h, want) {
            return Err(corrupt(Corruption::BadChecksum));
        }
        if &h[257..262] != b"ustar" {
            return Err(corrupt(Corruption::BadMagic));
        }
        let size = octal(&h[124..136]).ok_or(corrupt(Corruption::BadNumber))?;
        let mode = octal(&h[100..108]).ok_or(corrupt(Corruption::BadNumber))?;
        let kind = match h[156] {
            b'0' | 0 => EntryKind::File,
            b'5' => EntryKind::Directory,
            t => EntryKind::Other(t),
        };
        let name = cstr(&h[0..100]).ok_or(corrupt(Corruption::BadPath))?;
        let prefix = cstr(&h[345..500]).ok_or(corrupt(Corruption::BadPath))?;
        if name.is_empty() {
            return Err(corrupt(Corruption::BadPath));
        }
        let size = usize::try_from(size).map_err(|_| corrupt(Corruption::TruncatedData))?;
        let data_start = offset + BLOCK;
        let data = data_start
            .checked_add(size)
            .and_then(|end| self.data.get(data_start..end))
            .ok_or(corrupt(Corruption::TruncatedData))?;
        // Advance past the data, rounded up to a block; saturating so a huge size ends the walk.
        let padded = size.div_ceil(BLOCK).saturating_mul(BLOCK);
        self.pos = data_start.saturating_add(padded);
        let data = if kind == EntryKind::Directory { &data[..0] } else { data };
        Ok(Some(Entry { path: EntryPath { prefix, name }, kind, mode: (mode & 0o7777) as u32, data, offset }))
    }
}

/// A NUL-terminated (or full-width) UTF-8 field.
fn cstr(field: &[u8]) -> Option<&str> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    core::str::from_utf8(&field[..end]).ok()
}

/// An octal field: optional leading spaces, digits, then NUL/space padding. An all-blank
/// field is 0.
fn octal(field: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    let mut i = 0;
    while i < field.len() && field[i] == b' ' {
        i += 1;
    }
    let mut digits = 0;
    while i < field.len() && (b'0'..=b'7').contains(&field[i]) {
        v = v.checked_mul(8)?.checked_add(u64::from(field[i] - b'0'))?;
        i += 1;
        digits += 1;
    }
    if field[i..].iter().all(|&b| b == 0 || b == b' ') && (digits > 0 || i == field.len() || field[i] == 0) {
        Some(v)
    } else {
        None
    }
}

/// The header checksum: the sum of its bytes with the checksum field read as spaces.
/// Unsigned is POSIX; signed sums (old Sun tar) are accepted too.
fn checksum_ok(h: &[u8], want: u64) -> bool {
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    unsigned == want || u64::try_from(signed).is_ok_and(|s| s == want)
}

/// Fill a ustar header block (used by the tests here and by the writer's tests).
#[cfg(test)]
pub(crate) fn test_header(name: &str, size: usize, kind: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    let s = std::format!("{size:011o}\0");
    h[124..136].copy_from_slice(s.as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
    let c = std::format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(c.as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (name, data) in files {
            v.extend_from_slice(&test_header(name, data.len(), b'0'));
            v.extend_from_slice(data);
            v.resize(v.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        v.extend_from_slice(&[0; 2 * BLOCK]);
        v
    }

    #[test]
    fn reads_files() {
        let a = archive(&[("rxen.toml", b"version = 1\n"), ("boot/vmlinuz", &[7u8; 1000])]);
        let ar = Archive::new(&a);
        assert_eq!(ar.file("rxen.toml").unwrap(), b"version = 1\n");
        assert_eq!(ar.file("/boot/vmlinuz").unwrap(), &[7u8; 1000][..]);
        assert_eq!(ar.file("./boot/vmlinuz").unwrap().len(), 1000);
        assert_eq!(ar.file("boot/missing"), Err(UstarError::NotFound));
        let names: Vec<_> = ar.entries().map(|e| std::format!("{}", e.unwrap().path())).collect();
        assert_eq!(names, ["rxen.toml", "boot/vmlinuz"]);
    }

    #[test]
    fn directory_is_not_a_file() {
        let mut a = test_header("boot/", 0, b'5').to_vec();
        a.extend_from_slice(&[0; 1024]);
        assert_eq!(Archive::new(&a).file("boot"), Err(UstarError::NotAFile));
    }

    #[test]
    fn bad_checksum_names_offset() {
        let mut a = archive(&[("a", b"x"), ("b", b"y")]);
        a[1024] ^= 1; // the name of the second header
        let err = Archive::new(&a).file("b").unwrap_err();
        assert_eq!(err, UstarError::Corrupt { offset: 1024, what: Corruption::BadChecksum });
        assert_eq!(std::format!("{err}"), "memdisk archive: header at offset 0x400: header checksum mismatch");
        // The first file is still readable: the damage is after it.
        assert_eq!(Archive::new(&a).file("a").unwrap(), b"x");
    }

    #[test]
    fn truncated_data_is_an_error() {
        let a = archive(&[("big", &[1u8; 2000])]);
        let err = Archive::new(&a[..1500]).file("big").unwrap_err();
        assert_eq!(err, UstarError::Corrupt { offset: 0, what: Corruption::TruncatedData });
        let err = Archive::new(&a[..100]).file("big").unwrap_err();
        assert_eq!(err, UstarError::Corrupt { offset: 0, what: Corruption::TruncatedHeader });
    }

    #[test]
    fn huge_size_does_not_overflow() {
        let mut h = test_header("x", 0, b'0');
        h[124..136].copy_from_slice(b"77777777777\0");
        let sum: u32 =
            h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
        h[148..156].copy_from_slice(std::format!("{sum:06o}\0 ").as_bytes());
        assert!(matches!(Archive::new(&h).file("x"), Err(UstarError::Corrupt { what: Corruption::TruncatedData, .. })));
    }

    #[test]
    fn empty_and_zero_archives_are_empty() {
        assert_eq!(Archive::new(&[]).entries().count(), 0);
        assert_eq!(Archive::new(&[0; 1024]).entries().count(), 0);
        assert_eq!(Archive::new(&[]).file("x"), Err(UstarError::NotFound));
    }

    #[test]
    fn prefix_paths_match() {
        let mut h = test_header("vmlinuz", 3, b'0');
        h[345..349].copy_from_slice(b"boot");
        let sum: u32 =
            h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
        h[148..156].copy_from_slice(std::format!("{sum:06o}\0 ").as_bytes());
        let mut a = h.to_vec();
        a.extend_from_slice(b"abc");
        a.resize(2048, 0);
        let ar = Archive::new(&a);
        assert_eq!(ar.file("/boot/vmlinuz").unwrap(), b"abc");
        assert_eq!(ar.file("boot/vmlinu"), Err(UstarError::NotFound));
        assert_eq!(ar.file("bootxvmlinuz"), Err(UstarError::NotFound));
    }
}
