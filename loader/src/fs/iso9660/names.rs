// SPDX-License-Identifier: MIT OR Apache-2.0
//! File names as Linux isofs shows them by default: Joliet's UCS-2 (big-endian) decoded
//! to UTF-8, and plain ISO9660 identifiers with the `;1` version and a trailing `.`
//! dropped and upper case mapped to lower (`map=normal`); volume labels as blkid prints
//! them.

use alloc::string::String;
use alloc::vec::Vec;

/// Drop a `;<digits>` version and then one trailing `.` (ECMA-119 7.5: `NAME.EXT;1`,
/// `NAME.;1`).
fn strip_version(name: &[u8]) -> &[u8] {
    let mut n = name;
    if let Some(semi) = n.iter().rposition(|&c| c == b';')
        && n.get(semi + 1..).is_some_and(|v| v.iter().all(u8::is_ascii_digit))
    {
        n = n.get(..semi).unwrap_or(n);
    }
    if n.len() > 1
        && let Some(stripped) = n.strip_suffix(b".")
    {
        n = stripped;
    }
    n
}

/// A plain ISO9660 identifier as Linux's `map=normal` shows it: `README.TXT;1` ->
/// `readme.txt`, `VMLINUZ.;1` -> `vmlinuz`.
pub fn plain(name: &[u8]) -> Vec<u8> {
    strip_version(name).to_ascii_lowercase()
}

/// Big-endian 16-bit units (an odd last byte dropped).
fn units(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|c| match c {
        &[hi, lo] => u16::from_be_bytes([hi, lo]),
        _ => 0,
    })
}

/// UCS-2/UTF-16 big-endian to UTF-8 (an unpaired surrogate becomes U+FFFD; an odd last
/// byte is dropped).
pub fn ucs2_to_utf8(b: &[u8]) -> String {
    char::decode_utf16(units(b)).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
}

/// A Joliet file identifier as UTF-8, its `;1` version and a trailing `.` dropped.
pub fn joliet(name: &[u8]) -> Vec<u8> {
    let s = ucs2_to_utf8(name);
    strip_version(s.as_bytes()).to_vec()
}

/// A descriptor's identifier field with trailing spaces (and NULs) trimmed.
pub fn trim(id: &[u8]) -> &[u8] {
    let end = id.iter().rposition(|&c| c != b' ' && c != 0).map_or(0, |p| p + 1);
    id.get(..end).unwrap_or(&[])
}

/// The label blkid prints: the Joliet volume identifier when there is a Joliet
/// descriptor (its 16 UCS-2 characters, continued by the primary descriptor's bytes past
/// the 16th when that one is longer), else the primary descriptor's.
pub fn label(pvd_id: &[u8], joliet_id: Option<&[u8]>) -> String {
    let pvd = trim(pvd_id);
    let Some(j) = joliet_id else { return String::from_utf8_lossy(pvd).into_owned() };
    let mut id: Vec<u16> = units(j).collect();
    while id.last().is_some_and(|&u| u == u16::from(b' ') || u == 0) {
        id.pop();
    }
    let mut s: String = char::decode_utf16(id.iter().copied()).map(|r| r.unwrap_or('\u{fffd}')).collect();
    if id.len() == 16
        && let Some(rest) = pvd.get(16..)
    {
        s.push_str(&String::from_utf8_lossy(rest));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ucs2(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_be_bytes).collect()
    }

    #[test]
    fn plain_names() {
        assert_eq!(plain(b"README.TXT;1"), b"readme.txt");
        assert_eq!(plain(b"VMLINUZ.;1"), b"vmlinuz");
        assert_eq!(plain(b"BOOT"), b"boot");
        assert_eq!(plain(b"A.B;X"), b"a.b;x");
        assert_eq!(plain(b"."), b".");
        assert_eq!(plain(b";1"), b"");
    }

    #[test]
    fn joliet_names_and_labels() {
        assert_eq!(joliet(&ucs2("gr\u{fc}\u{df}e.txt;1")), "gr\u{fc}\u{df}e.txt".as_bytes());
        assert_eq!(joliet(&ucs2("\u{65e5}\u{672c}")), "\u{65e5}\u{672c}".as_bytes());
        assert_eq!(joliet(&ucs2("MixedCase")), b"MixedCase");
        assert_eq!(ucs2_to_utf8(&[0xd8, 0x00, 0x00]), "\u{fffd}");
        assert_eq!(ucs2_to_utf8(&ucs2("\u{1f600}")), "\u{1f600}");
        assert_eq!(trim(b"RXEN   \0\0"), b"RXEN");
        assert_eq!(trim(b"    "), b"");
        assert_eq!(label(b"RXEN_LIVE                       ", None), "RXEN_LIVE");
        let mut j = ucs2("Rxen Joliet");
        j.resize(32, 0);
        assert_eq!(label(b"RXEN_JOLIET", Some(&j)), "Rxen Joliet");
        let long = b"A_VOLUME_ID_LONGER_THAN_SIXTEEN ";
        assert_eq!(label(long, Some(&ucs2("A_VOLUME_ID_LONG"))), "A_VOLUME_ID_LONGER_THAN_SIXTEEN");
    }
}
