// SPDX-License-Identifier: MIT OR Apache-2.0
//! Directory blocks: linear `ext4_dir_entry_2` records, the `metadata_csum` tail, and
//! htree (dx) blocks, which are valid linear blocks holding only "." / ".." or one empty
//! record spanning the block (`Documentation/filesystems/ext4/directory.rst`).

use super::Ext4Error;
use super::le::{le16, le32};
use crate::crc::crc32c_raw;

/// `file_type` values of `ext4_dir_entry_2`.
pub const FT_REG: u8 = 1;
pub const FT_DIR: u8 = 2;
pub const FT_SYMLINK: u8 = 7;

const TAIL_LEN: usize = 12;
const TAIL_FT: u8 = 0xde;

/// Does the block end in a `ext4_dir_entry_tail` (inode 0, rec_len 12, type 0xDE)?
pub fn has_tail(block: &[u8]) -> bool {
    let Some(t) = block.len().checked_sub(TAIL_LEN).and_then(|o| block.get(o..)) else {
        return false;
    };
    le32(t, 0) == 0 && le16(t, 4) == TAIL_LEN as u16 && t[6] == 0 && t[7] == TAIL_FT
}

/// Check a leaf block's tail checksum. Blocks without a tail are htree nodes (their own
/// `dx_tail` is not checked here) and are accepted.
pub fn verify_tail(block: &[u8], seed: u32, ino: u32, phys: u64) -> Result<(), Ext4Error> {
    if !has_tail(block) {
        return Ok(());
    }
    let end = block.len() - TAIL_LEN;
    if crc32c_raw(seed, &block[..end]) != le32(block, block.len() - 4) {
        return Err(Ext4Error::Checksum { what: "directory block", ino, block: phys });
    }
    Ok(())
}

/// Walk the records of one directory region (a block, or an inline-data area), calling
/// `f(ino, file_type, name)` for every used entry until it returns true. `filetype` says
/// whether byte 7 is a file type (else it is the high byte of the name length).
/// Returns whether `f` stopped the walk.
pub fn walk(
    region: &[u8],
    filetype: bool,
    dir_ino: u32,
    phys: u64,
    f: &mut dyn FnMut(u32, u8, &[u8]) -> bool,
) -> Result<bool, Ext4Error> {
    let bad = |what| Ext4Error::Corrupt { what, ino: dir_ino, block: phys };
    let len = region.len();
    let mut off = 0usize;
    while off < len {
        if len - off < 8 {
            return Err(bad("directory entry overruns its block"));
        }
        let ino = le32(region, off);
        let mut rec_len = usize::from(le16(region, off + 4));
        if len >= 65536 && (rec_len == 65535 || rec_len == 0) {
            rec_len = 65536; // 64 KiB blocks encode a whole-block record this way
        }
        let (name_len, ft) = if filetype {
            (usize::from(region[off + 6]), region[off + 7])
        } else {
            (usize::from(le16(region, off + 6)).min(255), 0)
        };
        if rec_len < 8 || rec_len % 4 != 0 || rec_len > len - off {
            return Err(bad("directory entry rec_len"));
        }
        if ino != 0 {
            if name_len == 0 || 8 + name_len > rec_len {
                return Err(bad("directory entry name_len"));
            }
            if f(ino, ft, &region[off + 8..off + 8 + name_len]) {
                return Ok(true);
            }
        }
        off += rec_len;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn entry(buf: &mut [u8], off: usize, ino: u32, rec_len: u16, name: &[u8], ft: u8) {
        buf[off..off + 4].copy_from_slice(&ino.to_le_bytes());
        buf[off + 4..off + 6].copy_from_slice(&rec_len.to_le_bytes());
        buf[off + 6] = name.len() as u8;
        buf[off + 7] = ft;
        buf[off + 8..off + 8 + name.len()].copy_from_slice(name);
    }

    fn names(block: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, Ext4Error> {
        let mut v = Vec::new();
        walk(block, true, 2, 9, &mut |ino, _, n| {
            v.push((ino, n.to_vec()));
            false
        })?;
        Ok(v)
    }

    #[test]
    fn rec_len_validation_and_tail() {
        let mut b = vec![0u8; 1024];
        entry(&mut b, 0, 2, 12, b".", FT_DIR);
        entry(&mut b, 12, 2, 12, b"..", FT_DIR);
        entry(&mut b, 24, 0, 16, b"gone", FT_REG); // deleted: skipped
        entry(&mut b, 40, 15, 1024 - 40 - 12, b"file", FT_REG);
        entry(&mut b, 1012, 0, 12, b"", TAIL_FT);
        let c = crc32c_raw(77, &b[..1012]);
        b[1020..].copy_from_slice(&c.to_le_bytes());
        assert!(has_tail(&b));
        verify_tail(&b, 77, 2, 9).unwrap();
        assert_eq!(verify_tail(&b, 78, 2, 9), Err(Ext4Error::Checksum { what: "directory block", ino: 2, block: 9 }));
        assert_eq!(names(&b).unwrap().len(), 3);

        let mut bad = b.clone();
        bad[40 + 4..40 + 6].copy_from_slice(&2000u16.to_le_bytes()); // past the block
        assert_eq!(names(&bad), Err(Ext4Error::Corrupt { what: "directory entry rec_len", ino: 2, block: 9 }));
        let mut bad = b.clone();
        bad[4..6].copy_from_slice(&0u16.to_le_bytes()); // zero: would loop forever
        assert!(names(&bad).is_err());
        let mut bad = b.clone();
        bad[12 + 4..12 + 6].copy_from_slice(&10u16.to_le_bytes()); // unaligned
        assert!(names(&bad).is_err());
        let mut bad = b.clone();
        bad[12 + 6] = 200; // name longer than its record
        assert_eq!(names(&bad), Err(Ext4Error::Corrupt { what: "directory entry name_len", ino: 2, block: 9 }));
        // An htree interior node: one empty record spanning the block.
        let mut dx = vec![0u8; 1024];
        dx[4..6].copy_from_slice(&1024u16.to_le_bytes());
        assert!(names(&dx).unwrap().is_empty());
    }
}
