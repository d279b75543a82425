// SPDX-License-Identifier: MIT OR Apache-2.0
//! bzip2, decoded by rxen (no no_std bzip2 decoder was found), written from the format's
//! public description: a stream header "BZh1".."BZh9" (the block size in 100 kB), then
//! blocks (48-bit magic 0x314159265359, block CRC, origPtr, the symbol map, 2..6 Huffman
//! tables chosen per 50 symbols by MTF-coded selectors, then RUNA/RUNB and MTF-coded
//! symbols) each undone by the inverse Burrows-Wheeler transform and the initial
//! run-length coding, and the end-of-stream marker 0x177245385090 with the combined CRC.
//! One stream; what follows it is ignored.
//!
//! Bounds: a block holds at most its level × 100 000 symbols (checked as they are
//! decoded), a Huffman code is at most 20 bits, selectors past bzip2's 18 002 are read
//! and dropped, run lengths are capped by the block size, and the output is the caller's
//! buffer. Every CRC is checked.

use alloc::vec;
use alloc::vec::Vec;

use super::{DecompressError, Format, TRUNCATED};

const BLOCK_MAGIC: u64 = 0x3141_5926_5359;
const END_MAGIC: u64 = 0x1772_4538_5090;
const MAX_GROUPS: usize = 6;
const MAX_ALPHA: usize = 258;
const MAX_CODE_LEN: usize = 20;
const MAX_SELECTORS: usize = 18_002;
const GROUP_SIZE: usize = 50;

fn err(what: &'static str, bit: usize) -> DecompressError {
    DecompressError::new(Format::Bzip2, what, bit / 8)
}

/// bzip2's CRC-32: polynomial 0x04c11db7, MSB first (not reflected).
static CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 { (c << 1) ^ 0x04c1_1db7 } else { c << 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

fn crc_update(crc: u32, data: &[u8]) -> u32 {
    data.iter().fold(crc, |c, &b| (c << 8) ^ CRC_TABLE[((c >> 24) ^ u32::from(b)) as usize])
}

/// MSB-first bit reader.
struct Bits<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Result<u32, DecompressError> {
        let byte = *self.b.get(self.pos >> 3).ok_or(err(TRUNCATED, self.pos))?;
        let v = (byte >> (7 - (self.pos & 7))) & 1;
        self.pos += 1;
        Ok(u32::from(v))
    }
    fn bits(&mut self, n: u32) -> Result<u64, DecompressError> {
        let mut v = 0u64;
        for _ in 0..n {
            v = v << 1 | u64::from(self.bit()?);
        }
        Ok(v)
    }
}

/// A canonical Huffman code: symbols by code length, then by value.
struct Huffman {
    count: [u16; MAX_CODE_LEN + 1],
    symbol: [u16; MAX_ALPHA],
}

impl Huffman {
    fn new(lens: &[u8]) -> Self {
        let mut h = Huffman { count: [0; MAX_CODE_LEN + 1], symbol: [0; MAX_ALPHA] };
        for &l in lens {
            h.count[usize::from(l)] += 1;
        }
        let mut offs = [0u16; MAX_CODE_LEN + 2];
        for l in 1..=MAX_CODE_LEN {
            offs[l + 1] = offs[l] + h.count[l];
        }
        for (s, &l) in lens.iter().enumerate() {
            let o = &mut offs[usize::from(l)];
            h.symbol[usize::from(*o)] = s as u16;
            *o += 1;
        }
        h
    }

    fn decode(&self, r: &mut Bits<'_>) -> Result<u16, DecompressError> {
        let at = r.pos;
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..=MAX_CODE_LEN {
            code |= r.bit()? as i32;
            let count = i32::from(self.count[len]);
            if code - count < first {
                return self
                    .symbol
                    .get((index + (code - first)) as usize)
                    .copied()
                    .ok_or(err("invalid Huffman code", at));
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(err("invalid Huffman code", at))
    }
}

pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<usize, DecompressError> {
    if input.len() < 4 {
        return Err(err(TRUNCATED, input.len() * 8));
    }
    if &input[..3] != b"BZh" || !(b'1'..=b'9').contains(&input[3]) {
        return Err(err("no bzip2 stream header", 0));
    }
    let max_block = usize::from(input[3] - b'0') * 100_000;
    let mut r = Bits { b: input, pos: 32 };
    let mut tt: Vec<u32> = Vec::new();
    let mut done = 0usize;
    let mut combined = 0u32;
    loop {
        let magic_at = r.pos;
        let magic = r.bits(48)?;
        if magic == END_MAGIC {
            let want = r.bits(32)? as u32;
            if want != combined {
                return Err(err("stream CRC mismatch", r.pos - 32));
            }
            return Ok(done);
        }
        if magic != BLOCK_MAGIC {
            return Err(err("no block or end-of-stream magic", magic_at));
        }
        let want_crc = r.bits(32)? as u32;
        if tt.is_empty() {
            tt = vec![0u32; max_block];
        }
        let n = block(&mut r, &mut tt, max_block)?;
        let start = done;
        done = unbwt_unrle(&mut tt[..n.len], n.orig_ptr, out, done, r.pos)?;
        let crc = !crc_update(!0, &out[start..done]);
        if crc != want_crc {
            return Err(err("block CRC mismatch", magic_at));
        }
        combined = combined.rotate_left(1) ^ crc;
    }
}

struct Block {
    len: usize,
    orig_ptr: usize,
}

/// Decode one block's symbols into the low bytes of `tt`; returns its length.
fn block(r: &mut Bits<'_>, tt: &mut [u32], max_block: usize) -> Result<Block, DecompressError> {
    let at = r.pos;
    if r.bit()? != 0 {
        return Err(err("randomised blocks are not supported", at));
    }
    let orig_ptr = r.bits(24)? as usize;
    // The symbol map: 16 ranges of 16 byte values.
    let ranges = r.bits(16)?;
    let mut seq_to_byte = [0u8; 256];
    let mut in_use = 0usize;
    for i in 0..16 {
        if ranges & (1 << (15 - i)) != 0 {
            let used = r.bits(16)?;
            for j in 0..16 {
                if used & (1 << (15 - j)) != 0 {
                    seq_to_byte[in_use] = (i * 16 + j) as u8;
                    in_use += 1;
                }
            }
        }
    }
    if in_use == 0 {
        return Err(err("block uses no symbols", at));
    }
    let alpha = in_use + 2;
    let groups_at = r.pos;
    let groups = r.bits(3)? as usize;
    if !(2..=MAX_GROUPS).contains(&groups) {
        return Err(err("Huffman table count not 2..6", groups_at));
    }
    let nsel = r.bits(15)? as usize;
    if nsel == 0 {
        return Err(err("no selectors", groups_at));
    }
    let mut mtf_groups: [u8; MAX_GROUPS] = [0, 1, 2, 3, 4, 5];
    let mut selectors = Vec::with_capacity(nsel.min(MAX_SELECTORS));
    for _ in 0..nsel {
        let sel_at = r.pos;
        let mut v = 0usize;
        while r.bit()? == 1 {
            v += 1;
            if v >= groups {
                return Err(err("selector out of range", sel_at));
            }
        }
        let g = mtf_groups[v];
        mtf_groups.copy_within(0..v, 1);
        mtf_groups[0] = g;
        if selectors.len() < MAX_SELECTORS {
            selectors.push(g);
        }
    }
    // The code lengths: a 5-bit start, then per symbol a delta coded 1x (x=0: +1, 1: -1), 0 ends.
    let mut tables = Vec::with_capacity(groups);
    for _ in 0..groups {
        let mut lens = [0u8; MAX_ALPHA];
        let mut cur = r.bits(5)? as i32;
        for l in lens.iter_mut().take(alpha) {
            loop {
                if !(1..=MAX_CODE_LEN as i32).contains(&cur) {
                    return Err(err("Huffman code length not 1..20", r.pos));
                }
                if r.bit()? == 0 {
                    break;
                }
                cur += if r.bit()? == 0 { 1 } else { -1 };
            }
            *l = cur as u8;
        }
        tables.push(Huffman::new(&lens[..alpha]));
    }
    // The symbols: RUNA (0) and RUNB (1) give a run of the front MTF byte, 2..alpha-2 an MTF
    // index + 1, alpha - 1 ends the block.
    let eob = (alpha - 1) as u16;
    let mut mtf: [u8; 256] = core::array::from_fn(|i| i as u8);
    let mut len = 0usize;
    let mut run = 0usize;
    let mut run_bit = 0u32;
    let mut sel = 0usize;
    let mut left_in_group = 0usize;
    let mut table = &tables[0];
    loop {
        if left_in_group == 0 {
            let g = *selectors.get(sel).ok_or(err("more symbol groups than selectors", r.pos))?;
            table = &tables[usize::from(g)];
            sel += 1;
            left_in_group = GROUP_SIZE;
        }
        left_in_group -= 1;
        let sym_at = r.pos;
        let sym = table.decode(r)?;
        if sym <= 1 {
            if run_bit > 20 {
                return Err(err("run longer than a block", sym_at));
            }
            run += (usize::from(sym) + 1) << run_bit;
            run_bit += 1;
            if run > max_block {
                return Err(err("run longer than a block", sym_at));
            }
            continue;
        }
        if run > 0 {
            if len + run > max_block {
                return Err(err("block longer than its level allows", sym_at));
            }
            let b = u32::from(seq_to_byte[usize::from(mtf[0])]);
            tt[len..len + run].fill(b);
            len += run;
            run = 0;
            run_bit = 0;
        }
        if sym == eob {
            break;
        }
        let v = usize::from(sym - 1);
        if v >= in_use {
            return Err(err("MTF index past the symbols in use", sym_at));
        }
        let s = mtf[v];
        mtf.copy_within(0..v, 1);
        mtf[0] = s;
        if len >= max_block {
            return Err(err("block longer than its level allows", sym_at));
        }
        tt[len] = u32::from(seq_to_byte[usize::from(s)]);
        len += 1;
    }
    if orig_ptr >= len {
        return Err(err("origPtr past the block", at));
    }
    Ok(Block { len, orig_ptr })
}

/// Undo the BWT of `tt` (bytes in the low 8 bits) and the initial run-length coding
/// (4 equal bytes, then a count of more) into `out` from `done`; returns the new end.
/// The links are built in `t`'s upper 24 bits (a block is below 2^24 symbols).
fn unbwt_unrle(
    t: &mut [u32],
    orig_ptr: usize,
    out: &mut [u8],
    mut done: usize,
    bit: usize,
) -> Result<usize, DecompressError> {
    let n = t.len();
    let mut cftab = [0usize; 257];
    for &x in t.iter() {
        cftab[(x & 0xff) as usize + 1] += 1;
    }
    for i in 1..257 {
        cftab[i] += cftab[i - 1];
    }
    for i in 0..n {
        let c = (t[i] & 0xff) as usize;
        let j = cftab[c];
        cftab[c] += 1;
        t[j] |= (i as u32) << 8;
    }
    let cap = out.len();
    let mut pos = (t[orig_ptr] >> 8) as usize;
    let mut last: Option<u8> = None;
    let mut same = 0u32;
    for _ in 0..n {
        let x = t[pos];
        let b = (x & 0xff) as u8;
        pos = (x >> 8) as usize;
        if same == 4 {
            let k = usize::from(b);
            let end = done.checked_add(k).filter(|&e| e <= cap).ok_or(DecompressError::too_large(
                Format::Bzip2,
                cap,
                bit / 8,
            ))?;
            out[done..end].fill(last.unwrap_or(0));
            done = end;
            same = 0;
            last = None;
            continue;
        }
        if last == Some(b) {
            same += 1;
        } else {
            last = Some(b);
            same = 1;
        }
        if done >= cap {
            return Err(DecompressError::too_large(Format::Bzip2, cap, bit / 8));
        }
        out[done] = b;
        done += 1;
    }
    Ok(done)
}
