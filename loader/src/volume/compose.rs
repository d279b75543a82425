// SPDX-License-Identifier: MIT OR Apache-2.0
//! Composed block devices: an md RAID1 array or an LVM logical volume, as a
//! [`BlockDevice`] whose blocks are mapped onto member devices (partition views of the
//! disks, or other composed devices: an LV on an md array, a raid1 LV's image sub-LVs).
//!
//! A device is a list of contiguous segments; each segment is either striped (a linear
//! mapping is one stripe) or mirrored. Reads of a mirror go to the first leg, and to the
//! next when a leg fails; writes go to every leg, and only when the mirror has all its
//! legs (a write to some legs of a degraded mirror would leave the legs different
//! without md or LVM knowing it): otherwise [`MIRROR_DEGRADED`].

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::block::{BlockDevice, BlockError, check_request};

/// What a write to a mirror without all its legs gets.
pub const MIRROR_DEGRADED: BlockError = BlockError::Broken("not all legs of the mirror are present: read-only");

/// A member device and the block of it where the mapping starts.
pub struct Area {
    pub dev: Box<dyn BlockDevice>,
    pub start: u64,
}

/// How a segment's blocks lie on its areas.
pub enum Map {
    /// Chunks of `chunk` blocks, dealt round-robin over `areas`; one area is linear.
    Striped { chunk: u64, areas: Vec<Area> },
    /// The same blocks on every area (healthy legs only); `complete` when no leg is
    /// missing, which is when writes are allowed.
    Mirror { areas: Vec<Area>, complete: bool },
}

/// `len` blocks of the composed device from block `start` on.
pub struct Segment {
    pub start: u64,
    pub len: u64,
    pub map: Map,
}

/// See the module documentation.
pub struct Composed {
    block_size: u32,
    num_blocks: u64,
    segments: Vec<Segment>,
}

impl Composed {
    /// Segments must be sorted, contiguous from block 0, and every area must hold its
    /// part of the segment (the callers check that against member sizes first).
    pub fn new(block_size: u32, segments: Vec<Segment>) -> Composed {
        let num_blocks = segments.last().map_or(0, |s| s.start + s.len);
        debug_assert!(segments.windows(2).all(|w| w[0].start + w[0].len == w[1].start));
        Composed { block_size, num_blocks, segments }
    }

    /// The block and device of block `lba`'s first (preferred) copy, for messages.
    pub fn first_area(&self) -> Option<(&dyn BlockDevice, u64)> {
        let s = self.segments.first()?;
        let a = match &s.map {
            Map::Striped { areas, .. } | Map::Mirror { areas, .. } => areas.first()?,
        };
        Some((&*a.dev, a.start))
    }

    /// Map `blocks` blocks from `lba` onto members: calls `f(segment, area index, member
    /// block, blocks, offset into the request in blocks)` for each piece.
    fn pieces(
        &mut self,
        lba: u64,
        len: usize,
        mut f: impl FnMut(&mut Map, Option<usize>, u64, u64, u64) -> Result<(), BlockError>,
    ) -> Result<(), BlockError> {
        let blocks = check_request(self.block_size, self.num_blocks, lba, len)?;
        let mut pos = lba;
        let end = lba + blocks;
        let mut i = self.segments.partition_point(|s| s.start + s.len <= pos);
        while pos < end {
            let s = self.segments.get_mut(i).ok_or(BlockError::Broken("composed device map has a hole"))?;
            let rel = pos - s.start;
            let in_seg = (s.start + s.len).min(end) - pos;
            match &mut s.map {
                m @ Map::Striped { .. } => {
                    let Map::Striped { chunk, areas } = &*m else { unreachable!() };
                    let (chunk, n) = (*chunk, areas.len() as u64);
                    let mut r = rel;
                    let mut left = in_seg;
                    while left > 0 {
                        let c = r / chunk;
                        let within = r % chunk;
                        let run = (chunk - within).min(left);
                        let area = (c % n) as usize;
                        let member = (c / n) * chunk + within;
                        f(m, Some(area), member, run, pos + (r - rel) - lba)?;
                        r += run;
                        left -= run;
                    }
                }
                m @ Map::Mirror { .. } => f(m, None, rel, in_seg, pos - lba)?,
            }
            pos += in_seg;
            i += 1;
        }
        Ok(())
    }
}

impl BlockDevice for Composed {
    fn block_size(&self) -> u32 {
        self.block_size
    }
    fn num_blocks(&self) -> u64 {
        self.num_blocks
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let bs = self.block_size as usize;
        self.pieces(lba, buf.len(), |m, area, member, run, at| {
            let out = &mut buf[at as usize * bs..(at + run) as usize * bs];
            match (m, area) {
                (Map::Striped { areas, .. }, Some(a)) => {
                    let a = &mut areas[a];
                    a.dev.read_blocks(a.start + member, out)
                }
                (Map::Mirror { areas, .. }, _) => {
                    let mut last = BlockError::Broken("mirror with no legs");
                    for a in areas.iter_mut() {
                        match a.dev.read_blocks(a.start + member, out) {
                            Ok(()) => return Ok(()),
                            Err(e) => last = e,
                        }
                    }
                    Err(last)
                }
                _ => Err(BlockError::Broken("composed device map")),
            }
        })
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        let bs = self.block_size as usize;
        // Refuse before writing anything when any piece is a degraded mirror.
        self.pieces(lba, buf.len(), |m, _, _, _, _| match m {
            Map::Mirror { complete: false, .. } => Err(MIRROR_DEGRADED),
            _ => Ok(()),
        })?;
        self.pieces(lba, buf.len(), |m, area, member, run, at| {
            let data = &buf[at as usize * bs..(at + run) as usize * bs];
            match (m, area) {
                (Map::Striped { areas, .. }, Some(a)) => {
                    let a = &mut areas[a];
                    a.dev.write_blocks(a.start + member, data)
                }
                (Map::Mirror { areas, .. }, _) => {
                    for a in areas.iter_mut() {
                        a.dev.write_blocks(a.start + member, data)?;
                    }
                    Ok(())
                }
                _ => Err(BlockError::Broken("composed device map")),
            }
        })
    }
    fn release(&mut self) -> Result<(), alloc::string::String> {
        // The members are views of disks the session releases itself.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::SharedDisk;
    use crate::block::{VecDisk, read_bytes};
    use crate::part::PartitionDevice;

    fn disk(seed: u8, blocks: usize) -> SharedDisk {
        let data = (0..blocks * 512).map(|i| (i / 512) as u8 ^ seed).collect();
        SharedDisk::new(Box::new(VecDisk::new(data, 512)))
    }

    fn area(d: &SharedDisk, start: u64) -> Area {
        Area { dev: Box::new(PartitionDevice::new(d.clone(), 0, d.num_blocks())), start }
    }

    #[test]
    fn striped_and_linear_segments_map_onto_members() {
        let (a, b) = (disk(0, 64), disk(0x80, 64));
        // 8 blocks linear from a@10, then 16 striped in 2-block chunks over a@40, b@4.
        let mut c = Composed::new(
            512,
            alloc::vec![
                Segment { start: 0, len: 8, map: Map::Striped { chunk: 8, areas: alloc::vec![area(&a, 10)] } },
                Segment {
                    start: 8,
                    len: 16,
                    map: Map::Striped { chunk: 2, areas: alloc::vec![area(&a, 40), area(&b, 4)] }
                },
            ],
        );
        assert_eq!(c.num_blocks(), 24);
        let mut buf = alloc::vec![0u8; 24 * 512];
        c.read_blocks(0, &mut buf).unwrap();
        let got: Vec<u8> = buf.chunks(512).map(|s| s[0]).collect();
        let want = [
            10, 11, 12, 13, 14, 15, 16, 17, 40, 41, 0x84, 0x85, 42, 43, 0x86, 0x87, 44, 45, 0x88, 0x89, 46, 47, 0x8a,
            0x8b,
        ];
        assert_eq!(got, want);
        let mut one = [0u8; 700];
        read_bytes(&mut c, 10 * 512 + 100, &mut one).unwrap();
        assert_eq!((one[0], one[699]), (0x84, 0x85));
        assert!(c.read_blocks(24, &mut buf[..512]).is_err());
        c.write_blocks(10, &[0xee; 512]).unwrap();
        let mut chk = [0u8; 512];
        b.clone().read_blocks(4, &mut chk).unwrap();
        assert_eq!(chk, [0xee; 512]);
    }

    #[test]
    fn mirror_reads_the_next_leg_and_writes_all_or_none() {
        let (a, b) = (disk(1, 16), disk(1, 16));
        let seg = |complete, areas| Segment { start: 0, len: 8, map: Map::Mirror { areas, complete } };
        let mut m = Composed::new(512, alloc::vec![seg(true, alloc::vec![area(&a, 2), area(&b, 2)])]);
        m.write_blocks(1, &[7; 512]).unwrap();
        let mut chk = [0u8; 512];
        for d in [&a, &b] {
            d.clone().read_blocks(3, &mut chk).unwrap();
            assert_eq!(chk, [7; 512]);
        }
        let mut deg = Composed::new(512, alloc::vec![seg(false, alloc::vec![area(&a, 2)])]);
        assert_eq!(deg.write_blocks(1, &[9; 512]), Err(MIRROR_DEGRADED));
        a.clone().read_blocks(3, &mut chk).unwrap();
        assert_eq!(chk, [7; 512], "nothing written");
        deg.read_blocks(1, &mut chk).unwrap();
        assert_eq!(chk, [7; 512]);
    }
}
