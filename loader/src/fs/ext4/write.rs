// SPDX-License-Identifier: MIT OR Apache-2.0
//! The one write ext4 allows: a GRUB environment block rewritten in place, one sector at
//! most, after every check that makes it safe (`Ext4::write_in_place`).

use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::block::{BlockDevice, BlockError};
use crate::crc::crc32c_raw;

impl<D: BlockDevice> Ext4<D> {
    /// Rewrite regular file `inode`, a GRUB environment block, in place, as GRUB's
    /// `save_env` does: no allocation, no metadata change (not even the times), the size
    /// stays. `offset` must be 0 and `data` the whole [`IN_PLACE_FILE_SIZE`]-byte file.
    ///
    /// Every assumption that makes this safe is checked first, and a write that is not
    /// safe is refused with [`Ext4Error::NotInPlace`] (or [`Ext4Error::NotInPlaceBits`])
    /// naming the reason, nothing written: see `check_in_place` for the list.
    ///
    /// Power-cut safety: only the disk sectors whose bytes change are written, and the
    /// write is refused when more than one sector would change. With the usual device
    /// guarantee that one sector is written all or nothing, the file then holds exactly
    /// the old bytes or exactly the new ones at every moment, whatever the moment the
    /// power goes. The sector is read back and compared after the write.
    pub fn write_in_place(&mut self, inode: &Inode, offset: u64, data: &[u8]) -> Result<(), Ext4Error> {
        let phys = self.check_in_place(inode, offset, data.len())?;
        let refuse = |why| Err(Ext4Error::NotInPlace { why });
        let bs = u64::from(self.sb.block_size);
        let dbs = u64::from(self.dev.block_size());
        // check_in_place: dbs <= bs, both powers of two, so the file's block starts on a
        // sector and the sectors below are all inside it.
        let first = phys * bs / dbs;
        let sectors = IN_PLACE_FILE_SIZE.div_ceil(dbs) as usize; // 2 at 512 bytes, else 1
        let dbs = dbs as usize;
        let mut cur = vec![0u8; sectors * dbs];
        self.dev.read_blocks(first, &mut cur)?;
        let differs = |i: usize| {
            let (lo, hi) = (i * dbs, ((i + 1) * dbs).min(data.len()));
            cur[lo..hi] != data[lo..hi]
        };
        let changed: Vec<usize> = (0..sectors).filter(|&i| differs(i)).collect();
        let i = match changed[..] {
            [] => return Ok(()),
            [i] => i,
            _ => {
                return refuse(
                    "the new bytes differ from the old ones in more than one disk sector, and a power cut \
                     between two sector writes would leave half of each",
                );
            }
        };
        let (lo, hi) = (i * dbs, ((i + 1) * dbs).min(data.len()));
        cur[lo..hi].copy_from_slice(&data[lo..hi]);
        // One request of one sector: the only write.
        self.dev.write_blocks(first + i as u64, &cur[i * dbs..(i + 1) * dbs])?;
        // Metadata cache entries cannot hold file data, but drop them anyway: cheap, sure.
        self.cache.clear();
        let mut back = vec![0u8; sectors * dbs];
        self.dev.read_blocks(first, &mut back)?;
        if back[..data.len()] != *data {
            return Err(Ext4Error::Io(BlockError::Broken("the bytes read back differ from those written")));
        }
        Ok(())
    }

    /// Everything [`Ext4::write_in_place`] needs to be true, checked; returns the file's
    /// one data block. In order:
    ///
    /// * the file is a regular file;
    /// * the journal needs no recovery (Linux would replay older bytes over the new ones);
    /// * every incompat and ro_compat feature is one under which a file's data block is
    ///   addressed by the inode alone and holds nothing but the file's bytes, so that
    ///   rewriting it changes nothing else ([`INCOMPAT_IN_PLACE`], [`RO_COMPAT_IN_PLACE`]):
    ///   `metadata_csum` is among them because data blocks carry no checksum and the write
    ///   touches no metadata; `mmp` (another host may be using the filesystem),
    ///   `read-only`, `shared_blocks`, snapshots, `orphan_present` and `bigalloc` are
    ///   refused by name, a bit the writer does not know by its value;
    /// * no inode flag outside [`FLAGS_IN_PLACE`]: immutable, append-only, fs-verity,
    ///   encrypted, inline data, compressed, an xattr-value inode and snapshot files are
    ///   refused by name, an unknown flag by its value;
    /// * the file is exactly [`IN_PLACE_FILE_SIZE`] bytes and the write covers all of it;
    /// * its data is one initialised extent of one block at logical block 0, in the inode
    ///   (extents), or one direct block and no other pointer (block maps);
    /// * the disk's sectors are no larger than the filesystem's blocks (a sector write
    ///   then stays inside the file's block);
    /// * the block is no group's superblock, descriptor (or reserved descriptor), bitmap
    ///   or inode table block, and it is marked in use in its group's block bitmap (the
    ///   bitmap's `metadata_csum` checksum verified).
    fn check_in_place(&mut self, inode: &Inode, offset: u64, len: usize) -> Result<u64, Ext4Error> {
        let refuse = |why| Err(Ext4Error::NotInPlace { why });
        let bits = |what, bits| Err(Ext4Error::NotInPlaceBits { what, bits });
        if inode.kind() != FileKind::File {
            return refuse("not a regular file");
        }
        let sb = &self.sb;
        if sb.has_incompat(INCOMPAT_RECOVER) {
            return refuse("the journal needs recovery");
        }
        if sb.has_incompat(INCOMPAT_MMP) {
            return refuse("mmp: another host may be using the filesystem (multi-mount protection)");
        }
        let incompat = sb.feature_incompat & !INCOMPAT_IN_PLACE;
        if incompat != 0 {
            return bits("the writer does not know incompat feature", incompat);
        }
        let ro = sb.feature_ro_compat;
        for (bit, why) in [
            (RO_COMPAT_READONLY, "the filesystem is marked read-only (feature read-only)"),
            (RO_COMPAT_SHARED_BLOCKS, "shared_blocks: data blocks may be shared between files"),
            (RO_COMPAT_HAS_SNAPSHOT, "has_snapshot: data blocks may also belong to a snapshot"),
            (RO_COMPAT_ORPHAN_PRESENT, "orphan_present: orphan inodes are waiting to be processed"),
            (RO_COMPAT_BIGALLOC, "bigalloc: the writer does not check cluster allocation"),
        ] {
            if ro & bit != 0 {
                return refuse(why);
            }
        }
        if ro & !RO_COMPAT_IN_PLACE != 0 {
            return bits("the writer does not know ro_compat feature", ro & !RO_COMPAT_IN_PLACE);
        }
        for (flag, why) in [
            (inode::FLAG_IMMUTABLE, "the file is immutable (chattr +i)"),
            (inode::FLAG_APPEND, "the file is append-only (chattr +a)"),
            (inode::FLAG_VERITY, "the file has fs-verity (its Merkle tree would no longer match)"),
            (inode::FLAG_ENCRYPT, "the file is encrypted"),
            (inode::FLAG_INLINE_DATA, "its data is inline in the inode"),
            (inode::FLAG_COMPR | inode::FLAG_DIRTY | inode::FLAG_COMPRBLK, "the file is compressed"),
            (inode::FLAG_EA_INODE, "the inode holds an extended attribute value"),
            (inode::FLAGS_SNAPSHOT, "the file is a snapshot"),
        ] {
            if inode.has_flag(flag) {
                return refuse(why);
            }
        }
        if inode.flags & !FLAGS_IN_PLACE != 0 {
            return bits("the writer does not know inode flag", inode.flags & !FLAGS_IN_PLACE);
        }
        if inode.size != IN_PLACE_FILE_SIZE {
            return refuse("the file is not exactly 1024 bytes (a GRUB environment block)");
        }
        if offset != 0 || len as u64 != inode.size {
            return refuse("the write does not cover the whole file");
        }
        let ib = &inode.i_block;
        let le = |o| u64::from(le::le32(ib, o));
        let phys = if inode.has_flag(inode::FLAG_EXTENTS) {
            // Header: magic, entries, max, depth; then the one leaf extent: ee_block,
            // ee_len, ee_start_hi, ee_start_lo.
            let (magic, entries, depth) = (le::le16(ib, 0), le::le16(ib, 2), le::le16(ib, 6));
            if magic != extent::EXTENT_MAGIC || depth != 0 || entries != 1 {
                return refuse("its data is not one extent in the inode");
            }
            let (first, ee_len) = (le(12), le::le16(ib, 16));
            if ee_len > 32768 {
                return refuse("its data is in an uninitialised extent");
            }
            if first != 0 || ee_len != 1 {
                return refuse("its extent is not one block at the start of the file");
            }
            le(20) | u64::from(le::le16(ib, 18)) << 32
        } else {
            if (1..15).any(|i| le(4 * i) != 0) {
                return refuse("its data is not one direct block");
            }
            le(0)
        };
        if phys == 0 {
            return refuse("a hole or an uninitialised extent");
        }
        // The tree walk the reader uses must agree (it also checks the block is inside
        // the filesystem).
        match self.map(inode, 0)? {
            Run::Data { phys: p, .. } if p == phys => {}
            _ => return Err(Ext4Error::Corrupt { what: "data block mapping", ino: inode.ino, block: phys }),
        }
        let bs = self.sb.block_size;
        if self.dev.block_size() > bs {
            return refuse("the disk's sectors are larger than the filesystem's blocks");
        }
        if self.is_metadata_block(phys)? {
            return refuse("its data block is also filesystem metadata");
        }
        if !self.block_in_use(phys)? {
            return refuse("its data block is free in the block bitmap");
        }
        Ok(phys)
    }

    /// Is `blk` one of the filesystem's own blocks: the boot block and superblock, a
    /// superblock or descriptor table copy (with its reserved growth blocks), a meta_bg
    /// descriptor block, a bitmap, an inode table block? One pass over the groups
    /// (at most [`superblock::MAX_GROUPS`]).
    fn is_metadata_block(&mut self, blk: u64) -> Result<bool, Ext4Error> {
        let sb = self.sb.clone();
        let first = u64::from(sb.first_data_block);
        if blk <= first {
            return Ok(true);
        }
        let bpg = u64::from(sb.blocks_per_group);
        let per_block = sb.block_size / sb.desc_size;
        let gdt_blocks = u64::from(sb.groups.div_ceil(per_block));
        let meta_bg = sb.has_incompat(INCOMPAT_META_BG);
        // Blocks after a superblock copy: the classic descriptor table (before the first
        // meta group, with meta_bg) and the reserved blocks.
        let classic = if meta_bg { u64::from(sb.first_meta_bg).min(gdt_blocks) } else { gdt_blocks };
        let after_super = classic + u64::from(sb.reserved_gdt_blocks);
        let table_blocks =
            (u64::from(sb.inodes_per_group) * u64::from(sb.inode_size)).div_ceil(u64::from(sb.block_size));
        let start = |g: u32| first + u64::from(g) * bpg;
        for g in 0..sb.groups {
            let s = start(g);
            let sup = group::has_super(&sb, g);
            if sup && (s..=s + after_super).contains(&blk) {
                return Ok(true);
            }
            if group::desc_location(&sb, g).0 == blk {
                return Ok(true);
            }
            // meta_bg keeps copies of a meta group's descriptor block in its second and
            // last groups.
            if meta_bg && g / per_block >= sb.first_meta_bg {
                let pos = g % per_block;
                if (pos == 1 || pos == per_block - 1) && blk == s + u64::from(sup) {
                    return Ok(true);
                }
            }
            let (table, desc) = self.group_desc(g)?;
            let maps = group::bitmaps(&sb, &desc);
            if blk == maps.block_bitmap || blk == maps.inode_bitmap || (table..table + table_blocks).contains(&blk) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Is `blk` marked in use in its group's block bitmap?
    fn block_in_use(&mut self, blk: u64) -> Result<bool, Ext4Error> {
        let sb = self.sb.clone();
        let Some(rel) = blk.checked_sub(u64::from(sb.first_data_block)) else { return Ok(false) };
        let bpg = u64::from(sb.blocks_per_group);
        let g = u32::try_from(rel / bpg).map_err(|_| Ext4Error::Corrupt { what: "block group", ino: 0, block: blk })?;
        let bit = (rel % bpg) as usize;
        let (_, desc) = self.group_desc(g)?;
        let maps = group::bitmaps(&sb, &desc);
        let csum = sb.feature_ro_compat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM) != 0;
        if csum && maps.flags & group::BG_BLOCK_UNINIT != 0 {
            return Ok(false);
        }
        let bitmap = self.meta_vec(maps.block_bitmap, "block bitmap outside the filesystem", 0)?;
        let bytes = (bpg / 8) as usize;
        let Some(used) = bitmap.get(..bytes) else {
            return Err(Ext4Error::Corrupt { what: "block bitmap", ino: 0, block: maps.block_bitmap });
        };
        if let Some(seed) = sb.csum_seed {
            let c = crc32c_raw(seed, used);
            let c = if maps.block_bitmap_csum_bits == 32 { c } else { c & 0xffff };
            if c != maps.block_bitmap_csum {
                return Err(Ext4Error::Checksum { what: "block bitmap", ino: 0, block: maps.block_bitmap });
            }
        }
        Ok(used.get(bit / 8).is_some_and(|b| b & (1 << (bit % 8)) != 0))
    }
}
