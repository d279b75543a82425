// SPDX-License-Identifier: MIT OR Apache-2.0
//! LVM2 physical volumes and the logical volumes their volume groups describe (the
//! on-disk layout as lvm2's documentation and headers describe it; written from that):
//!
//! * a label `LABELONE` in one of the first four 512-byte sectors (its CRC over the rest
//!   of the sector), type `LVM2 001`, then the PV header: PV uuid, device size, the data
//!   areas and the metadata areas (offset and size pairs, each list ended by zeros);
//! * a metadata area starts with a header (CRC, magic ` LVM2 x[5A%r0N*>`, version 1,
//!   its own offset and size, then `raw_locn`s: the current metadata text's offset in
//!   the area, size and CRC; the text may wrap past the end of the area to just after the
//!   header);
//! * the text is the VG as nested `name { key = value }` sections: strings, integers,
//!   lists. The copy with the highest `seqno` of each VG (by VG id) is used.
//!
//! All LVM CRCs are CRC-32 (IEEE, reflected) from the seed 0xf597a6cf, no inversion.
//!
//! An LV is a list of segments; `striped` (a linear segment is one stripe) maps onto PV
//! extents (or other LVs), `raid1` and `mirror` onto image sub-LVs read from the first
//! healthy one. Every other segment type (thin, cache, snapshot, raid4/5/6/10, ...) is
//! named in a message and its LV skipped. LVs are named as GRUB does: `lvm/VG-LV`, with
//! each `-` inside the VG and LV names doubled.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use super::compose::{Area, Composed, Map, Segment};
use crate::block::{BlockDevice, read_bytes};
use crate::crc::crc32_raw;

pub const CRC_SEED: u32 = 0xf597_a6cf;
pub const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// Largest metadata text read.
pub const MAX_TEXT: usize = 4 << 20;
/// Deepest section nesting in the text (a VG needs 4).
pub const MAX_DEPTH: usize = 16;
/// Most values (of every kind) in one text.
pub const MAX_ITEMS: usize = 200_000;
/// Deepest LV-on-LV chain (a raid1 LV's images are one level).
pub const MAX_LV_DEPTH: usize = 4;
/// Most stripes or legs in one segment.
pub const MAX_AREAS: usize = 64;
/// Most metadata areas read per PV.
const MAX_MDAS: usize = 4;

/// A value of the text format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Section(Vec<(String, Value)>),
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Section(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    fn uint(&self, key: &str) -> Result<u64, String> {
        self.int(key).and_then(|i| u64::try_from(i).ok()).ok_or_else(|| format!("no {key}"))
    }
    fn flags(&self, key: &str) -> Vec<&str> {
        match self.get(key) {
            Some(Value::List(l)) => {
                l.iter().filter_map(|v| if let Value::Str(s) = v { Some(s.as_str()) } else { None }).collect()
            }
            _ => Vec::new(),
        }
    }
    fn sections(&self) -> impl Iterator<Item = (&str, &Value)> {
        let items: &[(String, Value)] = match self {
            Value::Section(i) => i,
            _ => &[],
        };
        items.iter().filter(|(_, v)| matches!(v, Value::Section(_))).map(|(k, v)| (k.as_str(), v))
    }
}

/// Why metadata text does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub at: usize,
    pub what: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LVM metadata text, byte {}: {}", self.at, self.what)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    items: usize,
}

impl Parser<'_> {
    fn err<T>(&self, what: &'static str) -> Result<T, ParseError> {
        Err(ParseError { at: self.pos, what })
    }
    fn skip(&mut self) {
        while let Some(&c) = self.s.get(self.pos) {
            if c == b'#' {
                while self.s.get(self.pos).is_some_and(|&c| c != b'\n') {
                    self.pos += 1;
                }
            } else if c.is_ascii_whitespace() || c == 0 {
                self.pos += 1;
            } else {
                break;
            }
        }
    }
    fn count(&mut self) -> Result<(), ParseError> {
        self.items += 1;
        if self.items > MAX_ITEMS { self.err("more values than the loader reads") } else { Ok(()) }
    }
    fn ident(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(|&c| c.is_ascii_alphanumeric() || b"_.+-".contains(&c)) {
            self.pos += 1;
        }
        if start == self.pos {
            return self.err("expected a name");
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }
    /// Items up to `}` (or the end at depth 0).
    fn section(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return self.err("sections nest deeper than the loader reads");
        }
        let mut items = Vec::new();
        loop {
            self.skip();
            match self.s.get(self.pos) {
                None if depth == 0 => return Ok(Value::Section(items)),
                None => return self.err("section not closed"),
                Some(b'}') if depth > 0 => {
                    self.pos += 1;
                    return Ok(Value::Section(items));
                }
                _ => {}
            }
            self.count()?;
            let key = self.ident()?;
            self.skip();
            match self.s.get(self.pos) {
                Some(b'{') => {
                    self.pos += 1;
                    let v = self.section(depth + 1)?;
                    items.push((key, v));
                }
                Some(b'=') => {
                    self.pos += 1;
                    let v = self.value(true)?;
                    items.push((key, v));
                }
                _ => return self.err("expected '=' or '{'"),
            }
        }
    }
    fn value(&mut self, list_ok: bool) -> Result<Value, ParseError> {
        self.skip();
        self.count()?;
        match self.s.get(self.pos) {
            Some(b'"') => {
                self.pos += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.pos) {
                        None => return self.err("string not closed"),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            self.pos += 1;
                            match self.s.get(self.pos) {
                                Some(&c) => out.push(c),
                                None => return self.err("string not closed"),
                            }
                        }
                        Some(&c) => out.push(c),
                    }
                    self.pos += 1;
                }
                self.pos += 1;
                Ok(Value::Str(String::from_utf8_lossy(&out).into_owned()))
            }
            Some(b'[') if list_ok => {
                self.pos += 1;
                let mut l = Vec::new();
                loop {
                    self.skip();
                    match self.s.get(self.pos) {
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Value::List(l));
                        }
                        Some(b',') if !l.is_empty() => self.pos += 1,
                        None => return self.err("list not closed"),
                        _ => l.push(self.value(false)?),
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                let start = self.pos;
                self.pos += 1;
                while self.s.get(self.pos).is_some_and(|c| c.is_ascii_digit() || *c == b'.') {
                    self.pos += 1;
                }
                let t = core::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                // Floats appear in some configuration, never in VG metadata: kept as text.
                Ok(t.parse::<i64>().map_or_else(|_| Value::Str(String::from(t)), Value::Int))
            }
            _ => self.err("expected a value"),
        }
    }
}

/// Parse metadata text (a trailing NUL is fine).
pub fn parse_text(text: &[u8]) -> Result<Value, ParseError> {
    if text.len() > MAX_TEXT {
        return Err(ParseError { at: MAX_TEXT, what: "text larger than the loader reads" });
    }
    Parser { s: text, pos: 0, items: 0 }.section(0)
}

/// A PV's label and header, and its metadata text when it has a current copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvLabel {
    /// 32 characters, no dashes.
    pub uuid: String,
    pub device_size: u64,
    /// The current metadata text of each metadata area (seldom more than one).
    pub texts: Vec<Vec<u8>>,
    /// Metadata areas that could not be read, and why.
    pub warnings: Vec<String>,
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Look for an LVM2 label on `dev`; `Ok(None)` when there is none.
pub fn probe(dev: &mut dyn BlockDevice) -> Result<Option<PvLabel>, String> {
    if dev.size_bytes() < 4096 {
        return Ok(None);
    }
    let mut head = alloc::vec![0u8; 2048];
    read_bytes(dev, 0, &mut head).map_err(|e| format!("LVM label: {e}"))?;
    let Some(sector) = (0..4).find(|&s| &head[s * 512..s * 512 + 8] == b"LABELONE") else { return Ok(None) };
    let l = &head[sector * 512..sector * 512 + 512];
    if u64le(l, 8) != sector as u64 {
        return Err(format!("LVM label in sector {sector} says it is in sector {}", u64le(l, 8)));
    }
    let (stored, computed) = (u32le(l, 16), crc32_raw(CRC_SEED, &l[20..]));
    if stored != computed {
        return Err(format!("LVM label checksum 0x{stored:08x} is wrong (computed 0x{computed:08x})"));
    }
    if &l[24..32] != b"LVM2 001" {
        return Err(format!("LVM label type {:?} is not LVM2 001", String::from_utf8_lossy(&l[24..32])));
    }
    let off = u32le(l, 20) as usize;
    if !(32..=512 - 72).contains(&off) {
        return Err(format!("LVM PV header at {off} is outside the label sector"));
    }
    let h = &l[off..];
    let uuid = String::from_utf8_lossy(&h[..32]).into_owned();
    let device_size = u64le(h, 32);
    // Data areas, then metadata areas: (offset, size) pairs, each list ended by zeros.
    let mut at = 40;
    let mut lists: [Vec<(u64, u64)>; 2] = [Vec::new(), Vec::new()];
    for list in &mut lists {
        loop {
            if at + 16 > h.len() {
                return Err(String::from("LVM PV header area lists run past the label sector"));
            }
            let (o, s) = (u64le(h, at), u64le(h, at + 8));
            at += 16;
            if o == 0 {
                break;
            }
            list.push((o, s));
        }
    }
    let mut pv = PvLabel { uuid, device_size, texts: Vec::new(), warnings: Vec::new() };
    for &(o, s) in lists[1].iter().take(MAX_MDAS) {
        match read_mda(dev, o, s) {
            Ok(Some(t)) => pv.texts.push(t),
            Ok(None) => {}
            Err(e) => pv.warnings.push(format!("metadata area at byte {o}: {e}")),
        }
    }
    Ok(Some(pv))
}

fn read_mda(dev: &mut dyn BlockDevice, start: u64, size: u64) -> Result<Option<Vec<u8>>, String> {
    let mut h = alloc::vec![0u8; 512];
    read_bytes(dev, start, &mut h).map_err(|e| e.to_string())?;
    let (stored, computed) = (u32le(&h, 0), crc32_raw(CRC_SEED, &h[4..]));
    if stored != computed {
        return Err(format!("header checksum 0x{stored:08x} is wrong (computed 0x{computed:08x})"));
    }
    if &h[4..20] != MDA_MAGIC || u32le(&h, 20) != 1 {
        return Err(String::from("not an LVM2 metadata area header"));
    }
    if u64le(&h, 24) != start || u64le(&h, 32) != size || size < 1024 {
        return Err(String::from("header's offset or size does not match the PV header"));
    }
    let (off, len, crc, flags) = (u64le(&h, 40), u64le(&h, 48), u32le(&h, 56), u32le(&h, 60));
    if off == 0 || len == 0 || flags & 1 != 0 {
        return Ok(None);
    }
    if len as usize > MAX_TEXT || len > size - 512 || off < 512 || off >= size {
        return Err(format!("metadata text of {len} bytes at {off} does not fit the {size}-byte area"));
    }
    let mut text = alloc::vec![0u8; len as usize];
    let first = len.min(size - off) as usize;
    read_bytes(dev, start + off, &mut text[..first]).map_err(|e| e.to_string())?;
    read_bytes(dev, start + 512, &mut text[first..]).map_err(|e| e.to_string())?;
    let computed = crc32_raw(CRC_SEED, &text);
    if computed != crc {
        return Err(format!("metadata text checksum 0x{crc:08x} is wrong (computed 0x{computed:08x})"));
    }
    Ok(Some(text))
}

/// A PV the scan found: its label, a device over it, and what it is for messages.
pub struct FoundPv {
    pub name: String,
    pub label: PvLabel,
    pub dev: crate::block::SharedDisk,
    pub start: u64,
    pub blocks: u64,
}

/// An activated LV.
pub struct LogicalVolume {
    /// `lvm/VG-LV`.
    pub name: String,
    pub uuid: String,
    pub dev: Composed,
    /// Index into the PVs of the PV holding block 0, and that block on it.
    pub origin: Option<(usize, u64)>,
    /// `lvm linear over (vda,gpt2)`, ...
    pub layout: String,
}

/// GRUB's name for LV `lv` of VG `vg`.
pub fn lv_name(vg: &str, lv: &str) -> String {
    format!("lvm/{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

fn plain_uuid(s: &str) -> String {
    s.chars().filter(|&c| c != '-').collect()
}

/// A VG: the chosen metadata copy and the PVs matched to its physical_volumes.
struct Vg<'a> {
    body: &'a Value,
    extent: u64,
    /// Metadata PV name → index into the found PVs (None: missing).
    pvs: Vec<(String, Option<usize>, u64 /*pe_start*/, u64 /*pe_count*/)>,
}

/// Activate every visible LV of the VGs on `pvs`; refusals go to `log`.
pub fn activate(pvs: &[FoundPv], log: &mut dyn FnMut(String)) -> Vec<LogicalVolume> {
    // Parse every copy; keep the highest seqno of each VG id.
    let mut best: Vec<(String, i64, Value)> = Vec::new();
    for p in pvs {
        for w in &p.label.warnings {
            log(format!("({}): LVM {w}", p.name));
        }
        for t in &p.label.texts {
            let v = match parse_text(t) {
                Ok(v) => v,
                Err(e) => {
                    log(format!("({}): {e}", p.name));
                    continue;
                }
            };
            let Some((_, vg)) = v.sections().next() else {
                log(format!("({}): LVM metadata holds no volume group", p.name));
                continue;
            };
            let id = String::from(vg.str("id").unwrap_or(""));
            let seq = vg.int("seqno").unwrap_or(-1);
            match best.iter_mut().find(|b| b.0 == id) {
                Some(b) if b.1 >= seq => {}
                Some(b) => *b = (id, seq, v),
                None => best.push((id, seq, v)),
            }
        }
    }
    let mut out = Vec::new();
    for (_, _, text) in &best {
        let (vgname, body) = text.sections().next().unwrap();
        let Ok(extent) = body.uint("extent_size").and_then(|e| if e == 0 { Err(String::new()) } else { Ok(e) }) else {
            log(format!("(lvm/{vgname}): VG has no extent_size"));
            continue;
        };
        let mut vg = Vg { body, extent, pvs: Vec::new() };
        if let Some(list) = body.get("physical_volumes") {
            for (pvname, pv) in list.sections() {
                let id = plain_uuid(pv.str("id").unwrap_or(""));
                let missing = pv.flags("flags").contains(&"MISSING");
                let found = pvs.iter().position(|p| p.label.uuid == id).filter(|_| !missing);
                if found.is_none() {
                    log(format!("(lvm/{vgname}): PV {pvname} ({}) is missing", pv.str("id").unwrap_or("?")));
                }
                let pe_start = pv.uint("pe_start").unwrap_or(0);
                let pe_count = pv.uint("pe_count").unwrap_or(0);
                vg.pvs.push((String::from(pvname), found, pe_start, pe_count));
            }
        }
        let Some(lvs) = body.get("logical_volumes") else { continue };
        let mut used: Vec<(usize, u64, u64, String)> = Vec::new();
        for (lvname, lv) in lvs.sections() {
            if !lv.flags("status").contains(&"VISIBLE") {
                continue;
            }
            let name = lv_name(vgname, lvname);
            // A snapshot's COW store is visible but holds no filesystem of its own.
            let is_cow = lvs.sections().any(|(_, o)| {
                o.sections().any(|(_, s)| s.str("type") == Some("snapshot") && s.str("cow_store") == Some(lvname))
            });
            if is_cow {
                log(format!("({name}): LV is a snapshot; snapshot LVs are not supported, skipped"));
                continue;
            }
            let mut origin = None;
            let mut legs = Vec::new();
            match build(&vg, pvs, lvname, 0, &mut origin, &mut legs, &mut used) {
                Ok(dev) => {
                    let layout = format!("lvm over {}", legs.join(" "));
                    out.push(LogicalVolume {
                        name,
                        uuid: String::from(lv.str("id").unwrap_or("")),
                        dev,
                        origin,
                        layout,
                    });
                }
                Err(e) => log(format!("({name}): {e}; LV skipped")),
            }
        }
    }
    out
}

/// Build the device of LV `lvname`; `origin` gets the PV block of block 0, `legs` the
/// PVs used (for the layout line), `used` every PV extent range claimed so far.
fn build(
    vg: &Vg<'_>,
    pvs: &[FoundPv],
    lvname: &str,
    depth: usize,
    origin: &mut Option<(usize, u64)>,
    legs: &mut Vec<String>,
    used: &mut Vec<(usize, u64, u64, String)>,
) -> Result<Composed, String> {
    if depth > MAX_LV_DEPTH {
        return Err(format!("LVs stacked deeper than {MAX_LV_DEPTH} (at {lvname})"));
    }
    let lv = vg
        .body
        .get("logical_volumes")
        .and_then(|l| l.get(lvname))
        .ok_or_else(|| format!("LV {lvname} is not in the metadata"))?;
    // Block size: the first PV's (all must agree); sectors per block.
    let bs = pvs.first().map_or(512, |p| p.dev.block_size());
    let per = u64::from(bs / 512);
    if !vg.extent.is_multiple_of(per) {
        return Err(format!("extent size {} sectors is not a whole number of {bs}-byte blocks", vg.extent));
    }
    let ext_blocks = vg.extent / per;
    let mut segs = Vec::new();
    let mut next = 0u64;
    for (i, (_, seg)) in lv.sections().enumerate() {
        let start = seg.uint("start_extent")?;
        let count = seg.uint("extent_count")?;
        if start != next {
            return Err(format!(
                "segment {} starts at extent {start}, not {next}: segments overlap or leave a hole",
                i + 1
            ));
        }
        if count == 0 {
            return Err(format!("segment {} has no extents", i + 1));
        }
        next = start.checked_add(count).ok_or("extent count overflows")?;
        let len = count.checked_mul(ext_blocks).ok_or("LV size overflows")?;
        let ty = seg.str("type").unwrap_or("");
        let map = match ty {
            "striped" => {
                let n = seg.uint("stripe_count")?;
                let areas = pairs(seg, "stripes")?;
                if n == 0 || n as usize != areas.len() || areas.len() > MAX_AREAS || count % n != 0 {
                    return Err(format!("segment {}: stripe_count {n} does not match its stripes", i + 1));
                }
                let per_area = count / n;
                let chunk = if n == 1 {
                    len
                } else {
                    let ss = seg.uint("stripe_size")?;
                    if ss == 0
                        || !ss.is_multiple_of(per)
                        || !per_area.checked_mul(vg.extent).is_some_and(|b| b.is_multiple_of(ss))
                    {
                        return Err(format!("segment {}: stripe_size {ss} does not divide its stripes", i + 1));
                    }
                    ss / per
                };
                let mut a = Vec::new();
                for (name, ext) in areas {
                    a.push(area(vg, pvs, &name, ext, per_area, depth, origin, legs, used, lvname, segs.is_empty())?);
                }
                Map::Striped { chunk, areas: a }
            }
            "raid1" | "mirror" => {
                let list = if ty == "raid1" {
                    // rmeta, rimage pairs: the images are the legs, from extent `start`.
                    pairs_any(seg, "raids")?.into_iter().skip(1).step_by(2).map(|n| (n, start)).collect::<Vec<_>>()
                } else {
                    pairs(seg, "mirrors")?
                };
                if list.is_empty() || list.len() > MAX_AREAS {
                    return Err(format!("segment {}: {ty} with {} legs", i + 1, list.len()));
                }
                let mut a = Vec::new();
                let total = list.len();
                for (name, ext) in list {
                    let sub = vg.body.get("logical_volumes").and_then(|l| l.get(&name));
                    if sub.is_some_and(|s| s.flags("status").contains(&"REBUILD")) {
                        continue;
                    }
                    let mut lo = None;
                    match area(vg, pvs, &name, ext, count, depth, &mut lo, legs, used, lvname, false) {
                        Ok(x) => {
                            if a.is_empty() && segs.is_empty() {
                                *origin = lo;
                            }
                            a.push(x);
                        }
                        Err(_) => continue,
                    }
                }
                if a.is_empty() {
                    return Err(format!("segment {}: no healthy {ty} leg", i + 1));
                }
                let complete = a.len() == total;
                Map::Mirror { areas: a, complete }
            }
            "" => return Err(format!("segment {} has no type", i + 1)),
            other => return Err(format!("segment type {other:?} is not supported")),
        };
        let start = start.checked_mul(ext_blocks).ok_or("LV size overflows")?;
        segs.push(Segment { start, len, map });
    }
    if segs.is_empty() {
        return Err(String::from("LV has no segments"));
    }
    Ok(Composed::new(bs, segs))
}

/// `name, extent` pairs of list `key`.
fn pairs(seg: &Value, key: &str) -> Result<Vec<(String, u64)>, String> {
    let Some(Value::List(l)) = seg.get(key) else { return Err(format!("segment has no {key}")) };
    if l.len() % 2 != 0 || l.len() > 2 * MAX_AREAS {
        return Err(format!("{key} is not name, extent pairs"));
    }
    l.chunks(2)
        .map(|c| match (&c[0], &c[1]) {
            (Value::Str(n), Value::Int(e)) if *e >= 0 => Ok((n.clone(), *e as u64)),
            _ => Err(format!("{key} is not name, extent pairs")),
        })
        .collect()
}

fn pairs_any(seg: &Value, key: &str) -> Result<Vec<String>, String> {
    let Some(Value::List(l)) = seg.get(key) else { return Err(format!("segment has no {key}")) };
    if l.len() > 2 * MAX_AREAS {
        return Err(format!("{key} lists too many LVs"));
    }
    l.iter().map(|v| if let Value::Str(s) = v { Ok(s.clone()) } else { Err(format!("{key} is not names")) }).collect()
}

/// One stripe or leg: `count` extents of PV or LV `name` from extent `ext`.
#[allow(clippy::too_many_arguments)]
fn area(
    vg: &Vg<'_>,
    pvs: &[FoundPv],
    name: &str,
    ext: u64,
    count: u64,
    depth: usize,
    origin: &mut Option<(usize, u64)>,
    legs: &mut Vec<String>,
    used: &mut Vec<(usize, u64, u64, String)>,
    lvname: &str,
    first: bool,
) -> Result<Area, String> {
    let per = u64::from(pvs.first().map_or(512, |p| p.dev.block_size()) / 512);
    if let Some((_, found, pe_start, pe_count)) = vg.pvs.iter().find(|p| p.0 == name) {
        let Some(pi) = *found else { return Err(format!("PV {name} is missing")) };
        let end = ext.checked_add(count).ok_or("extent overflow")?;
        let p = &pvs[pi];
        let sector_end = end.checked_mul(vg.extent).and_then(|s| s.checked_add(*pe_start)).ok_or("extent overflow")?;
        if end > *pe_count || sector_end > p.blocks * per {
            return Err(format!(
                "extents {ext}..{end} reach past the end of PV {name} ({} extents, {} sectors)",
                pe_count,
                p.blocks * per
            ));
        }
        if pe_start % per != 0 {
            return Err(format!("PV {name} data does not start on a block"));
        }
        if let Some(o) = used.iter().find(|u| u.0 == pi && u.1 < end && ext < u.2 && u.3 != lvname) {
            return Err(format!("extents {ext}..{end} of PV {name} are also used by LV {}", o.3));
        }
        used.push((pi, ext, end, String::from(lvname)));
        let start = (pe_start + ext * vg.extent) / per;
        if first && origin.is_none() {
            *origin = Some((pi, start));
        }
        let leg = format!("({})", p.name);
        if !legs.contains(&leg) {
            legs.push(leg);
        }
        return Ok(Area { dev: Box::new(crate::part::PartitionDevice::new(p.dev.clone(), p.start, p.blocks)), start });
    }
    // Another LV (a raid or mirror image, a pvmove).
    let sub = build(vg, pvs, name, depth + 1, origin, legs, used)?;
    let start = ext.checked_mul(vg.extent / per).ok_or("extent overflow")?;
    if count.checked_mul(vg.extent / per).and_then(|n| start.checked_add(n)).is_none_or(|e| e > sub.num_blocks()) {
        return Err(format!("extents {ext}.. reach past the end of LV {name}"));
    }
    Ok(Area { dev: Box::new(sub), start })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_text_format() {
        let t = b"# comment\nvg {\nid = \"a-b\"\nseqno = 3\nstatus = [\"READ\", \"WRITE\"]\nx = 1.5\nsub {\nk = \"q\\\"x\"\n}\n}\ncontents = \"Text Format Volume\"\n\0";
        let v = parse_text(t).unwrap();
        let vg = v.get("vg").unwrap();
        assert_eq!(vg.int("seqno"), Some(3));
        assert_eq!(vg.flags("status"), ["READ", "WRITE"]);
        assert_eq!(vg.get("sub").unwrap().str("k"), Some("q\"x"));
        assert_eq!(vg.str("x"), Some("1.5"));
        assert!(parse_text(b"a { b = ").is_err());
        assert!(parse_text(b"a { ").is_err());
        assert!(parse_text(b"a = [[1]]").is_err());
        let deep: Vec<u8> = core::iter::repeat_n(&b"a {"[..], 10_000).flatten().copied().collect();
        assert_eq!(parse_text(&deep).unwrap_err().what, "sections nest deeper than the loader reads");
        let many: Vec<u8> = core::iter::repeat_n(&b"k = 1\n"[..], MAX_ITEMS).flatten().copied().collect();
        assert_eq!(parse_text(&many).unwrap_err().what, "more values than the loader reads");
    }

    #[test]
    fn names_double_dashes() {
        assert_eq!(lv_name("my-vg", "root"), "lvm/my--vg-root");
        assert_eq!(lv_name("rhel", "lv-home"), "lvm/rhel-lv--home");
    }
}
