// SPDX-License-Identifier: MIT OR Apache-2.0
//! The loader's function names for its exception reports. The release loader is stripped,
//! but its build writes the link map next to it (`pvh-boot.map`, loader/build.rs); from it
//! `rxen-mkimage build` stores `.rxen/symbols` in the memdisk: one line per function,
//! `<hex start> <hex size> <name>`, sorted by start, which the loader's exception handler
//! looks RIP up in (`rxen_loader::platform::traps::symbolize`).

use anyhow::{Result, bail};
use goblin::elf::Elf;

pub use rxen_loader::platform::traps::SYMBOLS_PATH;

/// One line of an lld link map (`VMA LMA Size Align Out/In/Symbol`), if it is one.
fn map_line(l: &str) -> Option<(u64, u64, &str)> {
    let mut rest = l.trim_start();
    let mut num = || -> Option<u64> {
        let end = rest.find(' ')?;
        let v = u64::from_str_radix(&rest[..end], 16).ok()?;
        rest = rest[end..].trim_start();
        Some(v)
    };
    let (vma, _lma, size, _align) = (num()?, num()?, num()?, num()?);
    Some((vma, size, rest))
}

/// The `.text` output section's (address, size) the map describes.
fn text_section(map: &str) -> Option<(u64, u64)> {
    map.lines().filter_map(map_line).find(|(_, _, what)| *what == ".text").map(|(a, s, _)| (a, s))
}

/// The symbol table of the functions in the map's `.text`: each symbol runs to the next
/// one in its input section, or to the section's end. Rust's `::h<hash>` suffixes go.
pub fn table_from_map(map: &str) -> Result<String> {
    let mut out: Vec<(u64, u64, String)> = Vec::new();
    let mut in_text = false;
    let mut section: Option<(u64, u64)> = None;
    let mut pending: Vec<(u64, String)> = Vec::new();
    let flush = |section: Option<(u64, u64)>, pending: &mut Vec<(u64, String)>, out: &mut Vec<(u64, u64, String)>| {
        if let Some((start, size)) = section {
            let end = start + size;
            for i in 0..pending.len() {
                let next = pending.get(i + 1).map_or(end, |p| p.0).min(end);
                let (at, name) = &pending[i];
                if *at < next {
                    out.push((*at, next - at, name.clone()));
                }
            }
        }
        pending.clear();
    };
    for (vma, size, what) in map.lines().filter_map(map_line) {
        if what.starts_with('.') && !what.contains(":(") {
            // An output section.
            flush(section.take(), &mut pending, &mut out);
            in_text = what == ".text";
        } else if !in_text {
        } else if what.contains(":(") {
            flush(section.take(), &mut pending, &mut out);
            section = Some((vma, size));
        } else if section.is_some() && !what.contains(" = ") && !what.is_empty() {
            pending.push((vma, unescape(strip_hash(what))));
        }
    }
    flush(section, &mut pending, &mut out);
    if out.is_empty() {
        bail!("the link map names no function in .text");
    }
    out.sort();
    Ok(out.iter().map(|(a, s, n)| format!("{a:x} {s:x} {n}\n")).collect())
}

/// lld demangles a legacy Rust symbol's path but keeps its escapes in each segment
/// (`_$LT$a..B$u20$as$u20$c..D$GT$`): undo them (the legacy mangling's `$..$` codes and
/// `..` for `::`, as rustc-demangle does), leaving the rest as it is.
fn unescape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, seg) in name.split("::").enumerate() {
        if i > 0 {
            out.push_str("::");
        }
        let mut rest = seg.strip_prefix("_$").map_or(seg, |r| &seg[seg.len() - r.len() - 1..]);
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("..") {
                out.push_str("::");
                rest = r;
            } else if let Some((code, r)) = rest.strip_prefix('$').and_then(|r| r.split_once('$')) {
                let c = match code {
                    "SP" => Some('@'),
                    "BP" => Some('*'),
                    "RF" => Some('&'),
                    "LT" => Some('<'),
                    "GT" => Some('>'),
                    "LP" => Some('('),
                    "RP" => Some(')'),
                    "C" => Some(','),
                    _ => code.strip_prefix('u').and_then(|h| u32::from_str_radix(h, 16).ok()).and_then(char::from_u32),
                };
                match c {
                    Some(c) => out.push(c),
                    None => {
                        out.push('$');
                        out.push_str(code);
                        out.push('$');
                    }
                }
                rest = r;
            } else {
                let n = rest.find(['$', '.']).map_or(rest.len(), |n| n.max(1));
                out.push_str(&rest[..n]);
                rest = &rest[n..];
            }
        }
    }
    out
}

/// `name` without a trailing `::h` and 16 hex digits.
fn strip_hash(name: &str) -> &str {
    match name.rsplit_once("::h") {
        Some((base, h)) if h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()) => base,
        _ => name,
    }
}

/// The function table of `loader` from its link map `map`, once the map is shown to be
/// that very loader's ([`check_map_matches`]).
pub fn table_for(map: &str, loader: &[u8]) -> Result<String> {
    check_map_matches(map, loader)?;
    table_from_map(map)
}

/// Whether `map` is the link map of `loader`: the same `.text` address and size.
pub fn check_map_matches(map: &str, loader: &[u8]) -> Result<()> {
    let Some((at, size)) = text_section(map) else { bail!("no .text output section in the link map") };
    let elf = Elf::parse(loader)?;
    let text = elf.section_headers.iter().find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".text"));
    match text {
        Some(s) if s.sh_addr == at && s.sh_size == size => Ok(()),
        Some(s) => bail!(
            "the link map's .text ({at:#x}+{size:#x}) is not the loader's ({:#x}+{:#x}): a map of another build",
            s.sh_addr,
            s.sh_size
        ),
        None => bail!("the loader has no .text section header to check the link map against"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "             VMA              LMA     Size Align Out     In      Symbol
          100000           100000       60     8 .rxen.header
          100000           100000       60     8         /x.o:(.rxen.header)
          100000           100000       60     1                 pvh_boot::RXEN_HEADER::h129f2ea20ffbed4e
          100060           100060      200    16 .text
          100060           100060       c7     1         /x.o:(.text.entry32)
          100060           100060        0     1                 pvh_start32
          1000ff           1000ff        0     1                 long_mode_entry
          100127           100127       5e     1         /x.o:(.text._ZN3foo3bar17h0123456789abcdefE)
          100127           100127        0     1                 foo::bar::h0123456789abcdef
          100190           100190       d0    16         /x.o:(.text.empty)
          100260           100260      100    16 .rodata
          100260           100260        8     1         /x.o:(.rodata.x)
          100260           100260        0     1                 not_code
";

    #[test]
    fn functions_of_text_with_their_extents() {
        let t = table_from_map(MAP).unwrap();
        assert_eq!(t, "100060 9f pvh_start32\n1000ff 28 long_mode_entry\n100127 5e foo::bar\n");
        assert_eq!(text_section(MAP), Some((0x100060, 0x200)));
        assert!(table_from_map("garbage\n").is_err());
    }

    #[test]
    fn legacy_escapes_undone() {
        assert_eq!(
            unescape("_$LT$rxen_loader..pvh..HwPlatform$u20$as$u20$rxen_loader..session..Platform$GT$::crash"),
            "<rxen_loader::pvh::HwPlatform as rxen_loader::session::Platform>::crash"
        );
        assert_eq!(unescape("core::fmt::write"), "core::fmt::write");
        assert_eq!(unescape("a::_$RF$T$u5b$u8$u5d$::x"), "a::&T[u8]::x");
        assert_eq!(unescape("odd$XX$.x"), "odd$XX$.x");
    }

    #[test]
    fn the_loaders_own_map_and_elf_agree() {
        // The testelf loader has no .text header: the check says so rather than passing.
        let elf = crate::testelf::loader_elf();
        let e = check_map_matches(MAP, &elf).unwrap_err().to_string();
        assert!(e.contains(".text"), "{e}");
        assert!(check_map_matches("", &elf).is_err());
    }
}
