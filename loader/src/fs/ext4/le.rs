// SPDX-License-Identifier: MIT OR Apache-2.0
//! Bounds-checked little/big-endian field reads: a field past the end of its buffer reads
//! as zero, which every caller then rejects as a bad value, so hostile lengths never panic.

pub fn le16(b: &[u8], o: usize) -> u16 {
    b.get(o..o.wrapping_add(2)).and_then(|s| s.try_into().ok()).map_or(0, u16::from_le_bytes)
}

pub fn le32(b: &[u8], o: usize) -> u32 {
    b.get(o..o.wrapping_add(4)).and_then(|s| s.try_into().ok()).map_or(0, u32::from_le_bytes)
}

pub fn be32(b: &[u8], o: usize) -> u32 {
    b.get(o..o.wrapping_add(4)).and_then(|s| s.try_into().ok()).map_or(0, u32::from_be_bytes)
}
