// SPDX-License-Identifier: MIT OR Apache-2.0
//! FAT directory entries (fatgen103 §6, §7; Linux `Documentation/filesystems/vfat.rst`):
//! 8.3 short names with the Windows NT case bits, VFAT long-name runs (sequence numbers,
//! the short name's checksum, UCS-2 with surrogate pairs), volume labels, deleted entries
//! and the end marker. Pure: it parses bytes already read.

use alloc::string::String;

/// Bytes of one directory entry.
pub(super) const ENTRY_BYTES: usize = 32;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_DIR: u8 = 0x10;
/// READ_ONLY | HIDDEN | SYSTEM | VOLUME_ID: a long-name slot.
const ATTR_LFN: u8 = 0x0F;
/// Byte 12 (`DIR_NTRes`): base name, extension stored upper case but shown lower case.
const NT_LOWER_BASE: u8 = 0x08;
const NT_LOWER_EXT: u8 = 0x10;
/// A long name has at most 20 slots of 13 UCS-2 units (255 characters and the terminator).
const MAX_LFN_SLOTS: usize = 20;
const UNITS_PER_SLOT: usize = 13;

/// One file or directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The long name when a whole, matching long-name run precedes the entry, else [`Entry::short`].
    pub name: String,
    /// The 8.3 name as shown: `BASE.EXT`, the NT case bits applied.
    pub short: String,
    pub is_dir: bool,
    /// First cluster (0: none, an empty file).
    pub cluster: u32,
    pub size: u32,
}

/// What [`walk`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Entry(Entry),
    /// A volume-label entry's 11 bytes (meaningful in the root directory).
    Label([u8; 11]),
}

/// A long-name run being collected, from its last slot (stored first) down to slot 1.
struct Run {
    units: [u16; MAX_LFN_SLOTS * UNITS_PER_SLOT],
    slots: usize,
    /// The slot number the next entry must carry (0: the run is complete).
    expect: u8,
    checksum: u8,
}

/// fatgen103 §7.2: the checksum of an 11-byte short name that its long-name slots carry.
pub fn checksum(name: &[u8; 11]) -> u8 {
    name.iter().fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// Code page 437's upper half (what Linux's default `codepage=437` shows for short-name bytes
/// >= 0x80).
const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

fn cp437(b: u8) -> char {
    if b < 0x80 { char::from(b) } else { CP437_HIGH.chars().nth(usize::from(b - 0x80)).unwrap_or('\u{FFFD}') }
}

/// Append the bytes of a space-padded name part, lower-cased when `lower`.
fn push_part(out: &mut String, part: &[u8], lower: bool) {
    let end = part.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    for &b in part.get(..end).unwrap_or(&[]) {
        out.push(cp437(if lower { b.to_ascii_lowercase() } else { b }));
    }
}

/// The 8.3 name `raw` as shown: `BASE.EXT` (no dot without an extension), byte 0x05 as
/// 0xE5, `nt` (byte 12) lower-casing the base and/or the extension.
pub fn short_name(raw: &[u8; 11], nt: u8) -> String {
    let mut base = [0u8; 8];
    base.copy_from_slice(&raw[..8]);
    if base[0] == 0x05 {
        base[0] = 0xE5;
    }
    let mut s = String::new();
    push_part(&mut s, &base, nt & NT_LOWER_BASE != 0);
    if raw[8..].iter().any(|&b| b != b' ') {
        s.push('.');
        push_part(&mut s, &raw[8..], nt & NT_LOWER_EXT != 0);
    }
    s
}

/// A volume label's 11 bytes as shown: trailing spaces trimmed, code page 437.
pub fn label_name(raw: &[u8; 11]) -> String {
    let mut s = String::new();
    push_part(&mut s, raw, false);
    s
}

/// UCS-2 (UTF-16: surrogate pairs are joined, lone ones become U+FFFD) up to the first
/// 0x0000 or 0xFFFF, as UTF-8.
pub fn decode_ucs2(units: &[u16]) -> String {
    let end = units.iter().position(|&u| u == 0 || u == 0xFFFF).unwrap_or(units.len());
    char::decode_utf16(units.get(..end).unwrap_or(&[]).iter().copied())
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// The 13 UCS-2 units of a long-name slot.
fn slot_units(e: &[u8; ENTRY_BYTES]) -> [u16; UNITS_PER_SLOT] {
    let mut u = [0u16; UNITS_PER_SLOT];
    let offsets = (1..11).step_by(2).chain((14..26).step_by(2)).chain((28..32).step_by(2));
    for (slot, o) in u.iter_mut().zip(offsets) {
        *slot = u16::from_le_bytes([e[o], e[o + 1]]);
    }
    u
}

/// Names compare case-insensitively in ASCII, as GRUB's FAT reader does; other characters
/// must match exactly (Unicode case tables would cost the loader 12 KiB for names no
/// boot path uses).
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Walk the entries in `raw` (whole 32-byte entries; a partial tail is ignored) and call
/// `f` with each file, directory and volume label, until `f` returns true or the end
/// marker (a first byte of 0). Deleted entries, `.` and `..` are skipped; a long-name run
/// that is broken (a slot missing or out of order, a different checksum) or whose
/// checksum does not match the short name that ends it is dropped: the short name shows,
/// as on Linux. `fat32` says whether the high 16 bits of the first cluster count.
/// Returns whether `f` stopped the walk.
pub fn walk(raw: &[u8], fat32: bool, f: &mut dyn FnMut(Item) -> bool) -> bool {
    let mut run: Option<Run> = None;
    for chunk in raw.chunks_exact(ENTRY_BYTES) {
        let mut e = [0u8; ENTRY_BYTES];
        e.copy_from_slice(chunk);
        let (first, attr) = (e[0], e[11]);
        if first == 0 {
            break;
        }
        if first == 0xE5 {
            run = None;
            continue;
        }
        if attr & 0x3F == ATTR_LFN {
            let seq = first & 0x1F;
            if first & 0x40 != 0 {
                run = (1..=MAX_LFN_SLOTS as u8).contains(&seq).then(|| Run {
                    units: [0xFFFF; MAX_LFN_SLOTS * UNITS_PER_SLOT],
                    slots: usize::from(seq),
                    expect: seq,
                    checksum: e[13],
                });
            }
            let ok = run.as_ref().is_some_and(|r| seq != 0 && seq == r.expect && e[13] == r.checksum && e[12] == 0);
            match run.as_mut() {
                Some(r) if ok => {
                    let at = (usize::from(seq) - 1) * UNITS_PER_SLOT;
                    if let Some(dst) = r.units.get_mut(at..at + UNITS_PER_SLOT) {
                        dst.copy_from_slice(&slot_units(&e));
                    }
                    r.expect = seq - 1;
                }
                _ => run = None,
            }
            continue;
        }
        let lfn = run.take();
        let mut name = [0u8; 11];
        name.copy_from_slice(&e[..11]);
        if attr & ATTR_VOLUME != 0 {
            if f(Item::Label(name)) {
                return true;
            }
            continue;
        }
        if first == b'.' {
            continue;
        }
        let short = short_name(&name, e[12]);
        let long = lfn
            .filter(|r| r.expect == 0 && r.checksum == checksum(&name))
            .map(|r| decode_ucs2(r.units.get(..r.slots * UNITS_PER_SLOT).unwrap_or(&[])))
            .filter(|n| !n.is_empty());
        let hi = if fat32 { u32::from(u16::from_le_bytes([e[20], e[21]])) } else { 0 };
        let cluster = hi << 16 | u32::from(u16::from_le_bytes([e[26], e[27]]));
        let entry = Entry {
            name: long.unwrap_or_else(|| short.clone()),
            short,
            is_dir: attr & ATTR_DIR != 0,
            cluster,
            size: u32::from_le_bytes([e[28], e[29], e[30], e[31]]),
        };
        if f(Item::Entry(entry)) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn short_entry(name: &[u8; 11], attr: u8, nt: u8, cluster: u32, size: u32) -> [u8; 32] {
        let mut e = [0u8; 32];
        e[..11].copy_from_slice(name);
        e[11] = attr;
        e[12] = nt;
        e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
        e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
        e[28..32].copy_from_slice(&size.to_le_bytes());
        e
    }

    /// The long-name slots for `long` before short name `short`, in disk order.
    fn lfn_entries(long: &str, short: &[u8; 11]) -> Vec<[u8; 32]> {
        let mut units: Vec<u16> = long.encode_utf16().collect();
        if !units.len().is_multiple_of(13) {
            units.push(0);
        }
        while !units.len().is_multiple_of(13) {
            units.push(0xFFFF);
        }
        let n = units.len() / 13;
        let sum = checksum(short);
        (1..=n)
            .rev()
            .map(|seq| {
                let mut e = [0u8; 32];
                e[0] = seq as u8 | if seq == n { 0x40 } else { 0 };
                e[11] = ATTR_LFN;
                e[13] = sum;
                let offs = (1..11).step_by(2).chain((14..26).step_by(2)).chain((28..32).step_by(2));
                for (u, o) in units[(seq - 1) * 13..seq * 13].iter().zip(offs) {
                    e[o..o + 2].copy_from_slice(&u.to_le_bytes());
                }
                e
            })
            .collect()
    }

    fn names(raw: &[u8]) -> Vec<Item> {
        let mut out = Vec::new();
        walk(raw, true, &mut |i| {
            out.push(i);
            false
        });
        out
    }

    fn entry_names(raw: &[u8]) -> Vec<String> {
        names(raw)
            .into_iter()
            .filter_map(|i| match i {
                Item::Entry(e) => Some(e.name),
                Item::Label(_) => None,
            })
            .collect()
    }

    #[test]
    fn checksum_matches_fatgen103() {
        // Values computed by hand with the §7.2 routine (rotate right, add).
        assert_eq!(checksum(b"           "), 0xF7);
        let mut sum = 0u8;
        for &b in b"README  TXT" {
            sum = (if sum & 1 != 0 { 0x80u8 } else { 0 }).wrapping_add(sum >> 1).wrapping_add(b);
        }
        assert_eq!(checksum(b"README  TXT"), sum);
    }

    #[test]
    fn short_names_and_nt_case_bits() {
        assert_eq!(short_name(b"README  TXT", 0), "README.TXT");
        assert_eq!(short_name(b"README  TXT", 0x18), "readme.txt");
        assert_eq!(short_name(b"LOWER   TXT", 0x08), "lower.TXT");
        assert_eq!(short_name(b"UPPER   TXT", 0x10), "UPPER.txt");
        assert_eq!(short_name(b"NOEXT      ", 0x18), "noext");
        assert_eq!(short_name(b"\x05BC     DAT", 0), "σBC.DAT");
        assert_eq!(short_name(b"GR\x9a\xe1E   TXT", 0), "GRÜßE.TXT");
        assert_eq!(CP437_HIGH.chars().count(), 128);
        assert_eq!(cp437(0xFF), '\u{a0}');
    }

    #[test]
    fn ucs2_with_surrogates() {
        assert_eq!(decode_ucs2(&[0x47, 0x72, 0xFC, 0xDF, 0x65, 0, 0xFFFF]), "Grüße");
        assert_eq!(decode_ucs2(&[0x61, 0xD83D, 0xDE00, 0x62]), "a😀b");
        assert_eq!(decode_ucs2(&[0x61, 0xD83D, 0x62]), "a\u{FFFD}b");
        assert_eq!(decode_ucs2(&[0xFFFF]), "");
    }

    #[test]
    fn long_names_assemble_and_fall_back() {
        let long = "a-very-long-name with spaces, Grüße and 😀 in it.conf";
        let short = *b"A-VERY~1CON";
        let mut raw: Vec<u8> = Vec::new();
        raw.extend_from_slice(&short_entry(b"RXEN-ESP   ", ATTR_VOLUME, 0, 0, 0));
        raw.extend_from_slice(&short_entry(b".          ", ATTR_DIR, 0, 5, 0));
        raw.extend_from_slice(&short_entry(b"..         ", ATTR_DIR, 0, 0, 0));
        for e in lfn_entries(long, &short) {
            raw.extend_from_slice(&e);
        }
        raw.extend_from_slice(&short_entry(&short, 0x20, 0, 0x12345, 77));
        // Checksum of another name: the run does not belong to this entry.
        for e in lfn_entries("wrong-checksum.txt", b"OTHER   TXT") {
            raw.extend_from_slice(&e);
        }
        raw.extend_from_slice(&short_entry(b"WRONG-~1TXT", 0x20, 0, 9, 1));
        // A slot missing from the middle of the run.
        let mut broken = lfn_entries("a name of more than twenty-six characters", b"ANAMEO~1   ");
        broken.remove(1);
        for e in broken {
            raw.extend_from_slice(&e);
        }
        raw.extend_from_slice(&short_entry(b"ANAMEO~1   ", ATTR_DIR, 0, 10, 0));
        // Deleted, then a short lower-case name.
        let mut del = short_entry(b"GONE    TXT", 0x20, 0, 11, 1);
        del[0] = 0xE5;
        raw.extend_from_slice(&del);
        raw.extend_from_slice(&short_entry(b"README  TXT", 0x20, 0x18, 12, 3));
        raw.extend_from_slice(&[0u8; 32]);
        raw.extend_from_slice(&short_entry(b"AFTEREND   ", 0x20, 0, 13, 1));
        let items = names(&raw);
        assert_eq!(items[0], Item::Label(*b"RXEN-ESP   "));
        assert_eq!(entry_names(&raw), [long, "WRONG-~1.TXT", "ANAMEO~1", "readme.txt"]);
        let Item::Entry(e) = &items[1] else { panic!() };
        assert_eq!((e.short.as_str(), e.cluster, e.size, e.is_dir), ("A-VERY~1.CON", 0x12345, 77, false));
        // On FAT12/16 the high cluster bits are not the cluster's.
        let mut first = None;
        walk(&raw, false, &mut |i| {
            if let Item::Entry(e) = i {
                first = Some(e.cluster);
                return true;
            }
            false
        });
        assert_eq!(first, Some(0x2345));
    }

    #[test]
    fn names_compare_case_insensitively() {
        assert!(same_name("BOOTX64.EFI", "bootx64.efi"));
        assert!(same_name("Grüße.txt", "GRüßE.TXT"));
        assert!(!same_name("Grüße.txt", "GRÜßE.TXT"));
        assert!(same_name("Ωmega", "ΩMEGA"));
        assert!(!same_name("boot", "boot2"));
    }

    #[test]
    fn walk_never_panics_on_noise() {
        let mut raw = [0u8; 32 * 64];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] | 1;
        }
        for i in 0..64 {
            raw[i * 32 + 11] = if i % 3 == 0 { 0x0F } else { 0x20 };
        }
        let _ = names(&raw);
        let _ = names(&raw[..100]);
    }
}
