// SPDX-License-Identifier: MIT OR Apache-2.0
//! ext2/ext3 block maps: 12 direct pointers, then single, double and triple indirect
//! blocks of 32-bit block numbers (`Documentation/filesystems/ext4/blockmap.rst`).

use alloc::vec::Vec;

use super::le::le32;
use super::{Ext4Error, Run};

/// Map logical block `lblk` through `i_block` (15 little-endian pointers).
/// A zero pointer is a hole covering everything below it.
pub fn map(
    i_block: &[u8],
    lblk: u64,
    block_size: u32,
    blocks_count: u64,
    ino: u32,
    read: &mut dyn FnMut(u64) -> Result<Vec<u8>, Ext4Error>,
) -> Result<Run, Ext4Error> {
    let p = u64::from(block_size / 4);
    let (slot, mut rel, levels) = if lblk < 12 {
        (lblk as usize, 0, 0)
    } else if lblk - 12 < p {
        (12, lblk - 12, 1)
    } else if lblk - 12 - p < p * p {
        (13, lblk - 12 - p, 2)
    } else if lblk - 12 - p - p * p < p * p * p {
        (14, lblk - 12 - p - p * p, 3)
    } else {
        return Err(Ext4Error::Corrupt { what: "block beyond the block map's reach", ino, block: 0 });
    };
    let mut ptr = u64::from(le32(i_block, slot * 4));
    let mut cover = p.pow(levels);
    for _ in 0..levels {
        if ptr == 0 {
            return Ok(Run::Hole(cover - rel));
        }
        if ptr >= blocks_count {
            return Err(Ext4Error::Corrupt { what: "indirect block past the end of the filesystem", ino, block: ptr });
        }
        let blk = read(ptr)?;
        cover /= p;
        let idx = (rel / cover) as usize;
        rel %= cover;
        ptr = u64::from(le32(&blk, idx * 4));
    }
    if ptr == 0 {
        return Ok(Run::Hole(1));
    }
    if ptr >= blocks_count {
        return Err(Ext4Error::Corrupt { what: "data block past the end of the filesystem", ino, block: ptr });
    }
    Ok(Run::Data { phys: ptr, len: 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn indirection_levels() {
        // 1 KiB blocks: 256 pointers per block.
        let mut i_block = [0u8; 60];
        i_block[0..4].copy_from_slice(&500u32.to_le_bytes());
        i_block[13 * 4..13 * 4 + 4].copy_from_slice(&600u32.to_le_bytes()); // double
        i_block[14 * 4..14 * 4 + 4].copy_from_slice(&700u32.to_le_bytes()); // triple
        let mut read = |b: u64| -> Result<Vec<u8>, Ext4Error> {
            let mut v = vec![0u8; 1024];
            match b {
                600 => v[4..8].copy_from_slice(&601u32.to_le_bytes()), // dind[1] -> 601
                601 => v[8..12].copy_from_slice(&777u32.to_le_bytes()), // [2] -> 777
                700 => v[0..4].copy_from_slice(&701u32.to_le_bytes()),
                701 => v[0..4].copy_from_slice(&702u32.to_le_bytes()),
                702 => v[1020..1024].copy_from_slice(&1500u32.to_le_bytes()),
                _ => return Err(Ext4Error::Corrupt { what: "unexpected read", ino: 0, block: b }),
            }
            Ok(v)
        };
        let m =
            |lblk, read: &mut dyn FnMut(u64) -> Result<Vec<u8>, Ext4Error>| map(&i_block, lblk, 1024, 1000, 3, read);
        assert_eq!(m(0, &mut read).unwrap(), Run::Data { phys: 500, len: 1 });
        assert_eq!(m(1, &mut read).unwrap(), Run::Hole(1));
        assert_eq!(m(12, &mut read).unwrap(), Run::Hole(256)); // no single-indirect block
        let dind = 12 + 256;
        assert_eq!(m(dind + 256 + 2, &mut read).unwrap(), Run::Data { phys: 777, len: 1 });
        assert_eq!(m(dind + 3, &mut read).unwrap(), Run::Hole(253)); // dind[0] is empty
        let tind = dind + 256 * 256;
        assert_eq!(
            m(tind + 255, &mut read).unwrap_err(),
            Ext4Error::Corrupt { what: "data block past the end of the filesystem", ino: 3, block: 1500 }
        );
        assert!(m(tind + 256 * 256 * 256, &mut read).is_err());
    }
}
