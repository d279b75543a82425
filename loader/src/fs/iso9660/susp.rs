// SPDX-License-Identifier: MIT OR Apache-2.0
//! The System Use Sharing Protocol (SUSP, IEEE P1281) and the Rock Ridge entries
//! (RRIP, IEEE P1282) the reader uses: `SP` (SUSP in use, bytes to skip), `CE`
//! (continuation area), `ST` (end), `NM` (name), `PX` (mode), `SL` (symlink), `CL`/`RE`
//! (relocated directories), `SF`/`ZF` (sparse and zisofs-compressed files: refused on
//! read). `TF`, `PN`, `PL`, `RR`, `ER`, `ES`, `PD` and unknown entries are skipped.
//!
//! Pure parsing of one system use area at a time; the reader follows the `CE` chain.

use alloc::vec::Vec;

use super::FS;
use super::record::le32;
use crate::fs::FsError;
use crate::fs::path::{MAX_NAME_LEN, MAX_SYMLINK_LEN};

/// POSIX file types (`PX` mode & `S_IFMT`).
pub const S_IFMT: u32 = 0o170000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;

/// A continuation area: `len` bytes at `offset` into logical block `block`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Continuation {
    pub block: u32,
    pub offset: u32,
    pub len: u32,
}

/// What the Rock Ridge entries of one directory record say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RockRidge {
    /// `NM`: the name (`None` when no `NM` entry, or one that names `.`/`..`).
    pub name: Option<Vec<u8>>,
    /// `PX`: the POSIX mode.
    pub mode: Option<u32>,
    /// `SL`: the symlink target, components joined.
    pub link: Option<Vec<u8>>,
    /// The last `SL` component continues in the next (no `/` before it).
    link_continues: bool,
    /// `CL`: the directory relocated from here lives at this logical block.
    pub child_link: Option<u32>,
    /// `RE`: this is a relocated directory (hidden where it was moved to).
    pub relocated: bool,
    /// `SF` (sparse file) or `ZF` (zisofs), by the name refusals give.
    pub refused: Option<&'static str>,
}

fn corrupt(what: &'static str) -> FsError {
    FsError::Corrupt { fs: FS, what, at: 0 }
}

/// The `SP` entry that must open the root's `.` record's system use area: `Some(bytes
/// to skip at the start of every other system use area)` when SUSP is in use.
pub fn sp_skip(su: &[u8]) -> Option<u8> {
    match su.get(..7) {
        Some(&[b'S', b'P', 7, 1, 0xbe, 0xef, skip]) => Some(skip),
        _ => None,
    }
}

impl RockRidge {
    /// Fold the entries of one system use area into `self`; the area's `CE`, if any.
    pub fn parse_area(&mut self, area: &[u8]) -> Result<Option<Continuation>, FsError> {
        let mut ce = None;
        let mut pos = 0usize;
        while let Some(&[s0, s1, len, _version]) = area.get(pos..pos + 4) {
            let len = usize::from(len);
            if len < 4 {
                // Padding (or garbage) to the end of the area.
                break;
            }
            let data = area.get(pos + 4..pos + len).ok_or(corrupt("SUSP entry runs past its system use area"))?;
            pos += len;
            match &[s0, s1] {
                b"ST" => break,
                b"CE" => {
                    if data.len() < 20 {
                        return Err(corrupt("SUSP CE entry shorter than 28 bytes"));
                    }
                    ce = Some(Continuation { block: le32(data, 0), offset: le32(data, 8), len: le32(data, 16) });
                }
                b"PX" if data.len() >= 4 => self.mode = Some(le32(data, 0)),
                b"NM" => self.name_part(data)?,
                b"SL" => self.link_part(data)?,
                b"CL" if data.len() >= 4 => self.child_link = Some(le32(data, 0)),
                b"RE" => self.relocated = true,
                b"SF" => self.refused = Some("Rock Ridge sparse files (SF)"),
                b"ZF" => self.refused = Some("zisofs compressed files (ZF)"),
                _ => {}
            }
        }
        Ok(ce)
    }

    /// `NM`: flags (CONTINUE 1, CURRENT 2, PARENT 4) and a piece of the name.
    fn name_part(&mut self, data: &[u8]) -> Result<(), FsError> {
        let flags = data.first().copied().unwrap_or(0);
        if flags & 0x06 != 0 {
            return Ok(());
        }
        let name = self.name.get_or_insert_with(Vec::new);
        name.extend_from_slice(data.get(1..).unwrap_or(&[]));
        if name.len() > MAX_NAME_LEN {
            return Err(corrupt("Rock Ridge name (NM) longer than 255 bytes"));
        }
        Ok(())
    }

    /// `SL`: flags, then component records: flags (CONTINUE 1, CURRENT 2, PARENT 4,
    /// ROOT 8), length, bytes.
    fn link_part(&mut self, data: &[u8]) -> Result<(), FsError> {
        let mut comps = data.get(1..).unwrap_or(&[]);
        let link = self.link.get_or_insert_with(Vec::new);
        while !comps.is_empty() {
            let Some((&[flags, len], rest)) = comps.split_first_chunk::<2>() else {
                return Err(corrupt("Rock Ridge SL component cut short"));
            };
            let len = usize::from(len);
            let content = rest.get(..len).ok_or(corrupt("Rock Ridge SL component runs past its entry"))?;
            comps = rest.get(len..).unwrap_or(&[]);
            if flags & 0x08 != 0 {
                link.clear();
                link.push(b'/');
                self.link_continues = true;
                continue;
            }
            if !link.is_empty() && !self.link_continues && link.last() != Some(&b'/') {
                link.push(b'/');
            }
            if flags & 0x02 != 0 {
                link.push(b'.');
            } else if flags & 0x04 != 0 {
                link.extend_from_slice(b"..");
            } else {
                link.extend_from_slice(content);
            }
            self.link_continues = flags & 0x01 != 0;
            if link.len() as u64 > MAX_SYMLINK_LEN {
                return Err(corrupt("Rock Ridge symlink (SL) longer than 4096 bytes"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn entry(sig: &[u8; 2], data: &[u8]) -> Vec<u8> {
        let mut e = vec![sig[0], sig[1], (4 + data.len()) as u8, 1];
        e.extend_from_slice(data);
        e
    }

    fn sl(flags: u8, comps: &[(u8, &[u8])]) -> Vec<u8> {
        let mut d = vec![flags];
        for (f, c) in comps {
            d.push(*f);
            d.push(c.len() as u8);
            d.extend_from_slice(c);
        }
        entry(b"SL", &d)
    }

    #[test]
    fn sp_names_modes_and_continuations() {
        assert_eq!(sp_skip(b"SP\x07\x01\xbe\xef\x00PX"), Some(0));
        assert_eq!(sp_skip(b"SP\x07\x01\xbe\xee\x00"), None);
        assert_eq!(sp_skip(b"SP"), None);
        let mode = 0o100644u32;
        let mut area = entry(b"PX", &[mode.to_le_bytes(), mode.to_be_bytes()].concat());
        area.extend(entry(b"NM", b"\x01long-na"));
        area.extend(entry(b"TF", &[0; 8]));
        area.extend(entry(b"NM", b"\x00me.txt"));
        let mut ce = vec![0u8; 24];
        ce[0] = 30;
        ce[8] = 100;
        ce[16] = 50;
        area.extend(entry(b"CE", &ce));
        area.extend([0, 0]);
        let mut rr = RockRidge::default();
        assert_eq!(rr.parse_area(&area), Ok(Some(Continuation { block: 30, offset: 100, len: 50 })));
        assert_eq!(rr.name.as_deref(), Some(&b"long-name.txt"[..]));
        assert_eq!(rr.mode.map(|m| m & S_IFMT), Some(S_IFREG));
        let mut rr = RockRidge::default();
        rr.parse_area(&entry(b"NM", b"\x02")).unwrap();
        assert_eq!(rr.name, None);
        let mut rr = RockRidge::default();
        let mut area = entry(b"RE", b"");
        area.extend(entry(b"CL", &[7, 0, 0, 0, 0, 0, 0, 7]));
        area.extend(entry(b"ST", b""));
        area.extend(entry(b"NM", b"\0ignored"));
        rr.parse_area(&area).unwrap();
        assert!(rr.relocated);
        assert_eq!((rr.child_link, rr.name), (Some(7), None));
        assert!(RockRidge::default().parse_area(b"NM\x20\x01abc").is_err());
        assert!(RockRidge::default().parse_area(&entry(b"CE", &[0; 8])).is_err());
        let mut rr = RockRidge::default();
        rr.parse_area(&entry(b"ZF", b"pz")).unwrap();
        assert!(rr.refused.is_some());
    }

    #[test]
    fn symlink_components() {
        let target = |areas: &[Vec<u8>]| {
            let mut rr = RockRidge::default();
            for a in areas {
                rr.parse_area(a).unwrap();
            }
            rr.link.unwrap()
        };
        assert_eq!(target(&[sl(0, &[(8, b""), (0, b"boot"), (0, b"grub")])]), b"/boot/grub");
        assert_eq!(target(&[sl(0, &[(4, b""), (4, b""), (0, b"etc"), (2, b""), (0, b"x")])]), b"../../etc/./x");
        assert_eq!(target(&[sl(0, &[(8, b"")])]), b"/");
        // A component split across two SL entries, then a new one.
        assert_eq!(target(&[sl(1, &[(0, b"a"), (1, b"lo")]), sl(0, &[(0, b"ng"), (0, b"b")])]), b"a/long/b");
        assert!(RockRidge::default().parse_area(&sl(0, &[(0, b"abc")])[..8]).is_err());
        let mut rr = RockRidge::default();
        let big = sl(0, &[(0, &[b'x'; 200]), (0, &[b'y'; 40])]);
        let mut r = Ok(None);
        for _ in 0..20 {
            r = rr.parse_area(&big);
        }
        assert!(r.is_err());
    }
}
