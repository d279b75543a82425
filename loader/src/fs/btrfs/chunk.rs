// SPDX-License-Identifier: MIT OR Apache-2.0
//! The chunk map: logical addresses (what every tree pointer and file extent names) to
//! (device, physical offset). Bootstrapped from the superblock's `sys_chunk_array`, then
//! completed from the chunk tree (`CHUNK_ITEM`s, key `(256, 228, logical)`).
//!
//! Profiles read: single, dup, raid1, raid1c3, raid1c4 (every stripe is a whole copy:
//! the first stripe on a present device is read). raid0, raid10, raid5 and raid6 stripe
//! data across devices and are refused by name.

use alloc::vec::Vec;

use super::{FS, le16, le64};
use crate::fs::FsError;

pub const CHUNK_ITEM_LEN: usize = 48;
pub const STRIPE_LEN: usize = 32;
/// Chunks the map holds at most (a 16 TiB filesystem of 1 GiB data chunks has 16 Ki).
pub const MAX_CHUNKS: usize = 1 << 18;
/// Stripes one chunk may list (raid1c4 has 4; raid10 across many disks more).
pub const MAX_STRIPES: usize = 256;

// chunk type / block group flags
const BG_RAID0: u64 = 1 << 3;
const BG_RAID1: u64 = 1 << 4;
const BG_DUP: u64 = 1 << 5;
const BG_RAID10: u64 = 1 << 6;
const BG_RAID5: u64 = 1 << 7;
const BG_RAID6: u64 = 1 << 8;
const BG_RAID1C3: u64 = 1 << 9;
const BG_RAID1C4: u64 = 1 << 10;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stripe {
    pub devid: u64,
    pub offset: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub logical: u64,
    pub length: u64,
    pub flags: u64,
    pub stripes: Vec<Stripe>,
}

/// The profile's name as `btrfs filesystem df` prints it.
pub fn profile_name(flags: u64) -> &'static str {
    match flags & (BG_RAID0 | BG_RAID1 | BG_DUP | BG_RAID10 | BG_RAID5 | BG_RAID6 | BG_RAID1C3 | BG_RAID1C4) {
        0 => "single",
        BG_RAID0 => "raid0",
        BG_RAID1 => "raid1",
        BG_DUP => "dup",
        BG_RAID10 => "raid10",
        BG_RAID5 => "raid5",
        BG_RAID6 => "raid6",
        BG_RAID1C3 => "raid1c3",
        BG_RAID1C4 => "raid1c4",
        _ => "several profiles at once",
    }
}

/// Parse one chunk item (`data`, at least 48 bytes plus its stripes) for logical `logical`.
pub fn parse_chunk(logical: u64, data: &[u8]) -> Result<(Chunk, usize), FsError> {
    let corrupt = |what| Err(FsError::Corrupt { fs: FS, what, at: logical });
    if data.len() < CHUNK_ITEM_LEN {
        return corrupt("chunk item too short");
    }
    let length = le64(data, 0);
    let flags = le64(data, 24);
    let num_stripes = usize::from(le16(data, 44));
    let len = CHUNK_ITEM_LEN + num_stripes * STRIPE_LEN;
    if num_stripes == 0 || num_stripes > MAX_STRIPES || data.len() < len {
        return corrupt("chunk stripe count");
    }
    if length == 0 || logical.checked_add(length).is_none() {
        return corrupt("chunk length");
    }
    let name = profile_name(flags);
    let copies = match name {
        "single" => 1,
        "dup" | "raid1" => 2,
        "raid1c3" => 3,
        "raid1c4" => 4,
        "raid0" => return Err(FsError::UnsupportedFeature { fs: FS, name: "the raid0 profile" }),
        "raid10" => return Err(FsError::UnsupportedFeature { fs: FS, name: "the raid10 profile" }),
        "raid5" => return Err(FsError::UnsupportedFeature { fs: FS, name: "the raid5 profile" }),
        "raid6" => return Err(FsError::UnsupportedFeature { fs: FS, name: "the raid6 profile" }),
        _ => return corrupt("chunk profile flags"),
    };
    if num_stripes != copies {
        return corrupt("chunk stripe count for its profile");
    }
    let stripes = (0..num_stripes)
        .map(|i| {
            let s = CHUNK_ITEM_LEN + i * STRIPE_LEN;
            Stripe { devid: le64(data, s), offset: le64(data, s + 8) }
        })
        .collect::<Vec<_>>();
    if stripes.iter().any(|s| s.offset.checked_add(length).is_none()) {
        return corrupt("chunk stripe offset");
    }
    Ok((Chunk { logical, length, flags, stripes }, len))
}

/// Chunks sorted by logical address, without overlaps.
#[derive(Clone, Debug, Default)]
pub struct ChunkMap {
    chunks: Vec<Chunk>,
}

impl ChunkMap {
    /// Parse the superblock's `sys_chunk_array`: (disk key, chunk item) pairs.
    pub fn from_sys_array(arr: &[u8]) -> Result<ChunkMap, FsError> {
        let mut map = ChunkMap::default();
        let mut at = 0usize;
        while at < arr.len() {
            let key = arr.get(at..at + 17).ok_or(FsError::Corrupt {
                fs: FS,
                what: "system chunk array entry",
                at: at as u64,
            })?;
            if key[8] != super::tree::CHUNK_ITEM_KEY {
                return Err(FsError::Corrupt { fs: FS, what: "system chunk array key type", at: at as u64 });
            }
            let logical = le64(key, 9);
            let (chunk, len) = parse_chunk(logical, arr.get(at + 17..).unwrap_or(&[]))?;
            map.insert(chunk)?;
            at += 17 + len;
        }
        if map.chunks.is_empty() {
            return Err(FsError::Corrupt { fs: FS, what: "empty system chunk array", at: 0 });
        }
        Ok(map)
    }

    /// Add `c` in order; an exact duplicate (a system chunk met again in the chunk tree)
    /// is ignored, an overlap is corrupt.
    pub fn insert(&mut self, c: Chunk) -> Result<(), FsError> {
        let i = self.chunks.partition_point(|x| x.logical < c.logical);
        if let Some(x) = self.chunks.get(i)
            && x.logical == c.logical
        {
            return if *x == c {
                Ok(())
            } else {
                Err(FsError::Corrupt { fs: FS, what: "two chunks at one address", at: c.logical })
            };
        }
        let end = c.logical + c.length;
        if i > 0 && self.chunks.get(i - 1).is_some_and(|p| p.logical + p.length > c.logical)
            || self.chunks.get(i).is_some_and(|n| n.logical < end)
        {
            return Err(FsError::Corrupt { fs: FS, what: "overlapping chunks", at: c.logical });
        }
        if self.chunks.len() >= MAX_CHUNKS {
            return Err(FsError::Budget { fs: FS, what: "chunks in the chunk tree" });
        }
        self.chunks.insert(i, c);
        Ok(())
    }

    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// Where logical `addr` is: `(devid, physical, bytes contiguous from there to the
    /// chunk's end)` on the first stripe for which `present(devid)` holds.
    pub fn map(&self, addr: u64, present: &dyn Fn(u64) -> bool) -> Result<(u64, u64, u64), FsError> {
        let i = self.chunks.partition_point(|c| c.logical <= addr);
        let c = i
            .checked_sub(1)
            .and_then(|i| self.chunks.get(i))
            .filter(|c| addr - c.logical < c.length)
            .ok_or(FsError::Corrupt { fs: FS, what: "logical address in no chunk", at: addr })?;
        let within = addr - c.logical;
        let s = c.stripes.iter().find(|s| present(s.devid)).ok_or(FsError::Io {
            fs: FS,
            err: crate::block::BlockError::Broken("no btrfs device holding this chunk is present (a missing member)"),
        })?;
        Ok((s.devid, s.offset + within, c.length - within))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn item(length: u64, flags: u64, stripes: &[(u64, u64)]) -> Vec<u8> {
        let mut v = vec![0u8; CHUNK_ITEM_LEN];
        v[0..8].copy_from_slice(&length.to_le_bytes());
        v[24..32].copy_from_slice(&flags.to_le_bytes());
        v[44..46].copy_from_slice(&(stripes.len() as u16).to_le_bytes());
        for (d, o) in stripes {
            let mut s = vec![0u8; STRIPE_LEN];
            s[0..8].copy_from_slice(&d.to_le_bytes());
            s[8..16].copy_from_slice(&o.to_le_bytes());
            v.extend_from_slice(&s);
        }
        v
    }

    #[test]
    fn maps_single_dup_and_mirrors() {
        let mut m = ChunkMap::default();
        m.insert(parse_chunk(1 << 20, &item(1 << 20, 2, &[(1, 4 << 20)])).unwrap().0).unwrap();
        m.insert(parse_chunk(8 << 20, &item(1 << 20, 4 | BG_DUP, &[(1, 10 << 20), (1, 11 << 20)])).unwrap().0).unwrap();
        m.insert(parse_chunk(16 << 20, &item(1 << 20, 1 | BG_RAID1, &[(1, 20 << 20), (2, 30 << 20)])).unwrap().0)
            .unwrap();
        let all = |_| true;
        assert_eq!(m.map((1 << 20) + 5, &all).unwrap(), (1, (4 << 20) + 5, (1 << 20) - 5));
        assert_eq!(m.map(8 << 20, &all).unwrap(), (1, 10 << 20, 1 << 20));
        assert_eq!(m.map((16 << 20) + 1, &|d| d == 2).unwrap(), (2, (30 << 20) + 1, (1 << 20) - 1));
        assert!(matches!(m.map(2 << 20, &all), Err(FsError::Corrupt { what: "logical address in no chunk", .. })));
        assert!(matches!(m.map(16 << 20, &|d| d == 3), Err(FsError::Io { .. })));
        // Overlaps are refused, duplicates ignored.
        let dup = parse_chunk(1 << 20, &item(1 << 20, 2, &[(1, 4 << 20)])).unwrap().0;
        m.insert(dup).unwrap();
        let over = parse_chunk((1 << 20) + 4096, &item(1 << 20, 2, &[(1, 0)])).unwrap().0;
        assert!(m.insert(over).is_err());
    }

    #[test]
    fn striped_profiles_are_refused_by_name() {
        for (f, n) in [
            (BG_RAID0, "the raid0 profile"),
            (BG_RAID10, "the raid10 profile"),
            (BG_RAID5, "the raid5 profile"),
            (BG_RAID6, "the raid6 profile"),
        ] {
            let e = parse_chunk(0, &item(1 << 20, 1 | f, &[(1, 0), (2, 0)])).unwrap_err();
            assert_eq!(e, FsError::UnsupportedFeature { fs: FS, name: n });
        }
        assert!(parse_chunk(0, &item(1 << 20, 1 | BG_RAID1C3, &[(1, 0), (2, 0), (3, 0)])).is_ok());
        assert!(parse_chunk(0, &item(1 << 20, 1 | BG_RAID1, &[(1, 0)])).is_err());
        assert!(parse_chunk(0, &item(1 << 20, 1, &[])).is_err());
        assert!(parse_chunk(0, &[0u8; 20]).is_err());
    }
}
