// SPDX-License-Identifier: MIT OR Apache-2.0
//! ext2/3/4: read, plus one write, a 1024-byte regular file (GRUB's environment block)
//! rewritten in place ([`Ext4::write_in_place`]; nothing is allocated or changed in the
//! metadata, at most one disk sector is written, and whatever the writer cannot prove safe
//! is refused by name).
//!
//! Format reference: Linux `Documentation/filesystems/ext4/` (the on-disk layout chapters:
//! `super.rst`, `group_descr.rst`, `inodes.rst`, `ifork.rst`, `blockmap.rst`,
//! `directory.rst`, `inlinedata.rst`, `journal.rst`, `checksums.rst`). One file per concern:
//! [`superblock`], [`group`], [`inode`], [`extent`], [`blockmap`], [`dir`], [`journal`].
//!
//! Everything read from the disk is checked before it is used: block numbers against the
//! filesystem size, record lengths against their blocks, tree depths, symlink follows (40)
//! and path components (256) are bounded, and `metadata_csum` checksums (superblock, group
//! descriptors, inodes, extent blocks, directory leaf blocks) are verified. A dirty journal
//! is replayed in memory. File data is read straight into the caller's buffer, one device
//! request per physically contiguous run.

mod blockmap;
mod dir;
mod extent;
mod filesystem;
mod group;
mod inode;
mod journal;
mod le;
mod superblock;
mod write;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

pub use filesystem::mount;
pub use inode::Inode;

use crate::block::{BlockDevice, BlockError, read_bytes};
use superblock::*;

/// Symlinks followed in one lookup before giving up (Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINK_FOLLOWS: u32 = 40;
/// Path components walked in one lookup, symlink expansions included.
pub const MAX_PATH_COMPONENTS: usize = 256;
/// Longest symlink target (`PATH_MAX`).
pub const MAX_SYMLINK_LEN: u64 = 4096;
/// Entries [`Ext4::read_dir`] returns at most.
pub const MAX_DIR_ENTRIES: usize = 1 << 20;
/// Blocks of one directory walked at most (4 GiB at 4 KiB blocks, the largedir limit).
const MAX_DIR_BLOCKS: u64 = 1 << 20;
/// Metadata blocks kept in the cache.
const CACHE_SLOTS: usize = 16;

/// The one file size [`Ext4::write_in_place`] rewrites: GRUB's environment block.
/// (GRUB writes 1024 bytes; `config::grubenv::BLOCK_SIZE` is the same number, not
/// imported: the filesystems do not depend on the configuration readers.)
pub const IN_PLACE_FILE_SIZE: u64 = 1024;

/// The incompat features under which a regular file's data block can be rewritten in
/// place with nothing else to update: they change directory entries (filetype, largedir,
/// casefold), where group descriptors live (meta_bg, flex_bg, 64bit), how blocks are mapped
/// (extents: read, and checked to be one extent), checksum seeding (csum_seed), or what
/// other inodes hold (ea_inode); inline data and encryption are per-inode flags, refused
/// one by one. recover and mmp are refused by name.
const INCOMPAT_IN_PLACE: u32 = INCOMPAT_FILETYPE
    | INCOMPAT_META_BG
    | INCOMPAT_EXTENTS
    | INCOMPAT_64BIT
    | INCOMPAT_FLEX_BG
    | INCOMPAT_EA_INODE
    | INCOMPAT_CSUM_SEED
    | INCOMPAT_LARGEDIR
    | INCOMPAT_INLINE_DATA
    | INCOMPAT_ENCRYPT
    | INCOMPAT_CASEFOLD;

/// The ro_compat features under which the same holds: backup placement (sparse_super),
/// size and block-count fields (large_file, huge_file, dir_nlink, extra_isize), group
/// descriptor and metadata checksums (gdt_csum, metadata_csum: data blocks have none and
/// no metadata changes), quota and project ids (no usage changes), verity (per-inode flag,
/// refused one by one).
const RO_COMPAT_IN_PLACE: u32 = RO_COMPAT_SPARSE_SUPER
    | RO_COMPAT_LARGE_FILE
    | RO_COMPAT_HUGE_FILE
    | RO_COMPAT_GDT_CSUM
    | RO_COMPAT_DIR_NLINK
    | RO_COMPAT_EXTRA_ISIZE
    | RO_COMPAT_QUOTA
    | RO_COMPAT_METADATA_CSUM
    | RO_COMPAT_PROJECT
    | RO_COMPAT_VERITY;

/// The inode flags under which the file's bytes are its data block's bytes and may be
/// rewritten: ones the kernel only uses for other operations or other kinds of inode
/// (secrm, unrm, sync, nodump, noatime, nocompr, journal_data: the journal is clean,
/// notail, dirsync, topdir, dax, projinherit) or that say how the block is found
/// (huge_file, extents, eofblocks).
const FLAGS_IN_PLACE: u32 = inode::FLAG_SECRM
    | inode::FLAG_UNRM
    | inode::FLAG_SYNC
    | inode::FLAG_NODUMP
    | inode::FLAG_NOATIME
    | inode::FLAG_NOCOMPR
    | inode::FLAG_JOURNAL_DATA
    | inode::FLAG_NOTAIL
    | inode::FLAG_DIRSYNC
    | inode::FLAG_TOPDIR
    | inode::FLAG_HUGE_FILE
    | inode::FLAG_EXTENTS
    | inode::FLAG_EOFBLOCKS
    | inode::FLAG_DAX
    | inode::FLAG_PROJINHERIT;

/// Why an ext2/3/4 operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ext4Error {
    /// Not an ext2/3/4 filesystem.
    NotExt { why: &'static str },
    /// The filesystem (or inode) uses a feature this reader refuses.
    UnsupportedFeature { name: &'static str },
    /// No such file or directory.
    NotFound,
    /// A path component (or the inode given) is not a directory.
    NotADirectory,
    /// File data was asked of a directory.
    IsADirectory,
    /// A symlink's target was asked of something else.
    NotASymlink,
    /// More than [`MAX_SYMLINK_FOLLOWS`] symlinks in one lookup.
    SymlinkLoop,
    /// More than [`MAX_PATH_COMPONENTS`] components in one lookup (a directory loop).
    PathTooLong,
    /// A structure on disk is inconsistent.
    Corrupt { what: &'static str, ino: u32, block: u64 },
    /// A `metadata_csum` checksum does not match.
    Checksum { what: &'static str, ino: u32, block: u64 },
    /// The device failed.
    Io(BlockError),
    /// A file's bytes cannot be rewritten where they are (see [`Ext4::write_in_place`]).
    NotInPlace { why: &'static str },
    /// As [`Ext4Error::NotInPlace`], for feature or flag bits the writer does not know.
    NotInPlaceBits { what: &'static str, bits: u32 },
}

fn where_(f: &mut fmt::Formatter<'_>, ino: u32, block: u64) -> fmt::Result {
    if ino != 0 {
        write!(f, " (inode {ino})")?;
    }
    if block != 0 {
        write!(f, " (block {block})")?;
    }
    Ok(())
}

impl fmt::Display for Ext4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ext4Error::NotExt { why } => write!(f, "ext4: not an ext2/3/4 filesystem: {why}"),
            Ext4Error::UnsupportedFeature { name } => write!(f, "ext4: unsupported incompat feature: {name}"),
            Ext4Error::NotFound => f.write_str("ext4: no such file or directory"),
            Ext4Error::NotADirectory => f.write_str("ext4: not a directory"),
            Ext4Error::IsADirectory => f.write_str("ext4: is a directory"),
            Ext4Error::NotASymlink => f.write_str("ext4: not a symbolic link"),
            Ext4Error::SymlinkLoop => write!(f, "ext4: more than {MAX_SYMLINK_FOLLOWS} symbolic links in a path"),
            Ext4Error::PathTooLong => write!(f, "ext4: more than {MAX_PATH_COMPONENTS} components in a path"),
            Ext4Error::Corrupt { what, ino, block } => {
                write!(f, "ext4: corrupt filesystem: {what}")?;
                where_(f, ino, block)
            }
            Ext4Error::Checksum { what, ino, block } => {
                write!(f, "ext4: checksum mismatch: {what}")?;
                where_(f, ino, block)
            }
            Ext4Error::Io(e) => write!(f, "ext4: {e}"),
            Ext4Error::NotInPlace { why } => write!(f, "ext4: cannot rewrite the file in place: {why}"),
            Ext4Error::NotInPlaceBits { what, bits } => {
                write!(f, "ext4: cannot rewrite the file in place: {what} 0x{bits:x}")
            }
        }
    }
}

impl core::error::Error for Ext4Error {}

impl From<BlockError> for Ext4Error {
    fn from(e: BlockError) -> Self {
        Ext4Error::Io(e)
    }
}

/// What a directory entry or inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub ino: u32,
    pub kind: FileKind,
}

/// A logical range of a file: a hole (or uninitialized extent) of `n` blocks, or `len`
/// blocks stored from physical block `phys` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Run {
    Hole(u64),
    Data { phys: u64, len: u64 },
}

/// Replayed journal: filesystem block -> (journal's physical block, escaped).
type Overlay = BTreeMap<u64, (u64, bool)>;

/// Is there an ext2/3/4 superblock (magic 0xEF53) on `dev`?
pub fn probe<D: BlockDevice + ?Sized>(dev: &mut D) -> bool {
    let mut m = [0u8; 2];
    read_bytes(dev, SUPERBLOCK_OFFSET + MAGIC_OFFSET as u64, &mut m).is_ok()
        && u16::from_le_bytes(m) == superblock::EXT_MAGIC
}

/// A mounted (read-only) ext2/3/4 filesystem.
pub struct Ext4<D: BlockDevice> {
    dev: D,
    sb: Superblock,
    overlay: Overlay,
    cache: Vec<(u64, Vec<u8>)>,
    cache_next: usize,
    warnings: Vec<String>,
    label: String,
}

impl<D: BlockDevice> Ext4<D> {
    /// Read and check the superblock and the group descriptors; replay a dirty journal.
    pub fn open(mut dev: D) -> Result<Self, Ext4Error> {
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        if dev.size_bytes() < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE as u64 {
            return Err(Ext4Error::NotExt { why: "device too small for a superblock" });
        }
        read_bytes(&mut dev, SUPERBLOCK_OFFSET, &mut raw)?;
        let sb = Superblock::parse(&raw)?;
        if sb.blocks_count.saturating_mul(u64::from(sb.block_size)) > dev.size_bytes() {
            return Err(Ext4Error::Corrupt {
                what: "filesystem is larger than the device",
                ino: 0,
                block: sb.blocks_count,
            });
        }
        let name_len = sb.volume_name.iter().position(|&b| b == 0).unwrap_or(16);
        let label = String::from_utf8_lossy(&sb.volume_name[..name_len]).into_owned();
        let mut fs =
            Ext4 { dev, sb, overlay: Overlay::new(), cache: Vec::new(), cache_next: 0, warnings: Vec::new(), label };
        for g in 0..fs.sb.groups {
            fs.inode_table(g)?;
        }
        if fs.sb.has_incompat(INCOMPAT_RECOVER) {
            fs.recover();
        }
        if fs.read_inode(inode::ROOT_INO)?.kind() != FileKind::Dir {
            return Err(Ext4Error::Corrupt { what: "root inode is not a directory", ino: inode::ROOT_INO, block: 0 });
        }
        Ok(fs)
    }

    /// `s_uuid`.
    pub fn uuid(&self) -> [u8; 16] {
        self.sb.uuid
    }

    /// `s_uuid` the way blkid prints it.
    pub fn uuid_string(&self) -> String {
        let u = &self.sb.uuid;
        let mut s = String::with_capacity(36);
        for (i, b) in u.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                s.push('-');
            }
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// `s_volume_name`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Things worth telling the user that did not stop the mount.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Give the device back.
    pub fn into_inner(self) -> D {
        self.dev
    }

    /// Replay the journal into the overlay, or warn why not.
    fn recover(&mut self) {
        let sb = &self.sb;
        if sb.feature_compat & COMPAT_HAS_JOURNAL == 0 || sb.journal_inum == 0 {
            self.warnings.push("journal needs recovery but the filesystem has no internal journal".to_string());
            return;
        }
        let mut overlay = Overlay::new();
        let (block_size, blocks_count) = (self.sb.block_size, self.sb.blocks_count);
        let result = self.read_inode(self.sb.journal_inum).and_then(|j| {
            let mut block = |lblk: u64, data: bool| -> Result<Option<(u64, Vec<u8>)>, Ext4Error> {
                match self.map(&j, lblk)? {
                    Run::Hole(_) => Ok(None),
                    Run::Data { phys, .. } => {
                        let mut buf = Vec::new();
                        if data {
                            buf = vec![0u8; block_size as usize];
                            self.read_fs_block(phys, &mut buf)?;
                        }
                        Ok(Some((phys, buf)))
                    }
                }
            };
            let mut log = journal::Log {
                block_size,
                blocks_count,
                ino: j.ino,
                len_blocks: j.size / u64::from(block_size),
                block: &mut block,
            };
            journal::replay(&mut log, &mut overlay)
        });
        match result {
            Ok(n) => {
                self.warnings.push(format!("journal needs recovery: {n} blocks replayed in memory"));
                self.overlay = overlay;
                self.cache.clear();
            }
            Err(e) => self
                .warnings
                .push(format!("journal needs recovery but cannot be replayed ({e}): reading the filesystem as is")),
        }
    }

    // ---- blocks ----------------------------------------------------------------------

    /// Read filesystem block `blk` into `buf` (one block), through the journal overlay.
    fn read_fs_block(&mut self, blk: u64, buf: &mut [u8]) -> Result<(), Ext4Error> {
        let bs = u64::from(self.sb.block_size);
        match self.overlay.get(&blk) {
            Some(&(jphys, escaped)) => {
                read_bytes(&mut self.dev, jphys * bs, buf)?;
                if escaped {
                    journal::unescape(buf);
                }
            }
            None => read_bytes(&mut self.dev, blk * bs, buf)?,
        }
        Ok(())
    }

    /// A metadata block, through the cache.
    fn meta(&mut self, blk: u64, what: &'static str, ino: u32) -> Result<&[u8], Ext4Error> {
        if blk >= self.sb.blocks_count {
            return Err(Ext4Error::Corrupt { what, ino, block: blk });
        }
        let slot = match self.cache.iter().position(|(b, _)| *b == blk) {
            Some(i) => i,
            None => {
                let (i, mut buf) = if self.cache.len() < CACHE_SLOTS {
                    self.cache.push((u64::MAX, Vec::new()));
                    (self.cache.len() - 1, vec![0u8; self.sb.block_size as usize])
                } else {
                    let i = self.cache_next % CACHE_SLOTS;
                    self.cache_next = self.cache_next.wrapping_add(1);
                    (i, self.cache.get_mut(i).map(|e| core::mem::take(&mut e.1)).unwrap_or_default())
                };
                if let Some(e) = self.cache.get_mut(i) {
                    e.0 = u64::MAX;
                }
                let r = self.read_fs_block(blk, &mut buf);
                if let Some(e) = self.cache.get_mut(i) {
                    e.1 = buf;
                }
                r?;
                if let Some(e) = self.cache.get_mut(i) {
                    e.0 = blk;
                }
                i
            }
        };
        Ok(self.cache.get(slot).map_or(&[][..], |e| &e.1[..]))
    }

    fn meta_vec(&mut self, blk: u64, what: &'static str, ino: u32) -> Result<Vec<u8>, Ext4Error> {
        Ok(self.meta(blk, what, ino)?.to_vec())
    }

    // ---- inodes ----------------------------------------------------------------------

    fn inode_table(&mut self, g: u32) -> Result<u64, Ext4Error> {
        Ok(self.group_desc(g)?.0)
    }

    /// Group `g`'s descriptor, checked ([`group::inode_table`]), with its inode table.
    fn group_desc(&mut self, g: u32) -> Result<(u64, Vec<u8>), Ext4Error> {
        let (blk, off) = group::desc_location(&self.sb, g);
        let ds = self.sb.desc_size as usize;
        let b = self.meta(blk, "group descriptor block outside the filesystem", 0)?;
        let desc = b.get(off..off + ds).ok_or(Ext4Error::Corrupt { what: "group descriptor", ino: 0, block: blk })?;
        let desc = desc.to_vec();
        Ok((group::inode_table(&self.sb, g, &desc)?, desc))
    }

    fn read_inode(&mut self, ino: u32) -> Result<Inode, Ext4Error> {
        if ino == 0 || ino > self.sb.inodes_count {
            return Err(Ext4Error::Corrupt { what: "inode number out of range", ino, block: 0 });
        }
        let ipg = self.sb.inodes_per_group;
        let g = (ino - 1) / ipg;
        let idx = u64::from((ino - 1) % ipg);
        let table = self.inode_table(g)?;
        let isz = u64::from(self.sb.inode_size);
        let bs = u64::from(self.sb.block_size);
        let blk = table + idx * isz / bs;
        let within = (idx * isz % bs) as usize;
        let b = self.meta(blk, "inode table outside the filesystem", ino)?;
        let raw = b.get(within..within + isz as usize).ok_or(Ext4Error::Corrupt { what: "inode", ino, block: blk })?;
        let raw = raw.to_vec();
        inode::parse(&self.sb, ino, &raw, blk)
    }

    // ---- file data -------------------------------------------------------------------

    /// Map logical block `lblk` of `inode`.
    fn map(&mut self, inode: &Inode, lblk: u64) -> Result<Run, Ext4Error> {
        let ino = inode.ino;
        let blocks_count = self.sb.blocks_count;
        if inode.has_flag(inode::FLAG_EXTENTS) {
            let csum_seed = self.sb.csum_seed.map(|_| inode.csum_seed);
            let mut read = |b| self.meta_vec(b, "extent block outside the filesystem", ino);
            let mut ctx = extent::Ctx { ino, blocks_count, csum_seed, read: &mut read };
            extent::map(&mut ctx, &inode.i_block, lblk)
        } else {
            let bs = self.sb.block_size;
            let mut read = |b| self.meta_vec(b, "indirect block outside the filesystem", ino);
            blockmap::map(&inode.i_block, lblk, bs, blocks_count, ino, &mut read)
        }
    }

    fn check_readable(&self, inode: &Inode) -> Result<(), Ext4Error> {
        if inode.has_flag(inode::FLAG_ENCRYPT) {
            return Err(Ext4Error::UnsupportedFeature { name: "encrypt" });
        }
        Ok(())
    }

    /// Read file bytes from `offset` into `buf`; returns how many (short at end of file).
    /// Holes and uninitialized extents read as zeros.
    pub fn read_at(&mut self, inode: &Inode, offset: u64, buf: &mut [u8]) -> Result<usize, Ext4Error> {
        if inode.kind() == FileKind::Dir {
            return Err(Ext4Error::IsADirectory);
        }
        self.read_data(inode, offset, buf)
    }

    fn read_data(&mut self, inode: &Inode, offset: u64, buf: &mut [u8]) -> Result<usize, Ext4Error> {
        self.check_readable(inode)?;
        if offset >= inode.size {
            return Ok(0);
        }
        let n = (inode.size - offset).min(buf.len() as u64) as usize;
        if inode.has_flag(inode::FLAG_INLINE_DATA) {
            let data = inode.inline_data()?;
            let src = data.get(offset as usize..offset as usize + n).unwrap_or(&[]);
            buf[..src.len()].copy_from_slice(src);
            return Ok(src.len());
        }
        let bs = u64::from(self.sb.block_size);
        let mut done = 0usize;
        let mut block = Vec::new();
        while done < n {
            let pos = offset + done as u64;
            let lblk = pos / bs;
            let within = pos % bs;
            let want = (n - done) as u64;
            match self.map(inode, lblk)? {
                Run::Hole(len) => {
                    let k = len.saturating_mul(bs).saturating_sub(within).min(want) as usize;
                    buf[done..done + k].fill(0);
                    done += k;
                }
                Run::Data { phys, mut len } => {
                    // Coalesce physically contiguous runs that the request still needs.
                    while len.saturating_mul(bs).saturating_sub(within) < want {
                        match self.map(inode, lblk + len)? {
                            Run::Data { phys: p, len: l } if p == phys + len => len += l,
                            _ => break,
                        }
                    }
                    let avail = len.saturating_mul(bs).saturating_sub(within).min(want);
                    if within == 0 && avail >= bs && self.overlay.range(phys..phys + len).next().is_none() {
                        // The throughput path: one device request straight into `buf`.
                        let whole = (avail - avail % bs) as usize;
                        read_bytes(&mut self.dev, phys * bs, &mut buf[done..done + whole])?;
                        done += whole;
                    } else {
                        block.resize(bs as usize, 0);
                        self.read_fs_block(phys, &mut block)?;
                        let k = (bs - within).min(want) as usize;
                        buf[done..done + k].copy_from_slice(&block[within as usize..within as usize + k]);
                        done += k;
                    }
                }
            }
        }
        Ok(n)
    }

    // ---- directories -----------------------------------------------------------------

    /// Call `f(ino, file_type, name)` for each entry of directory `dir` until it returns true.
    fn walk_dir(&mut self, dir: &Inode, f: &mut dyn FnMut(u32, u8, &[u8]) -> bool) -> Result<bool, Ext4Error> {
        if dir.kind() != FileKind::Dir {
            return Err(Ext4Error::NotADirectory);
        }
        self.check_readable(dir)?;
        let filetype = self.sb.has_incompat(INCOMPAT_FILETYPE);
        let ino = dir.ino;
        if dir.has_flag(inode::FLAG_INLINE_DATA) {
            // i_block: the parent's inode number, then entries; system.data: more entries.
            let parent = le::le32(&dir.i_block, 0);
            if f(ino, dir::FT_DIR, b".") || f(parent, dir::FT_DIR, b"..") {
                return Ok(true);
            }
            if dir::walk(&dir.i_block[4..], filetype, ino, 0, f)? {
                return Ok(true);
            }
            return dir::walk(&dir.inline_tail, filetype, ino, 0, f);
        }
        let bs = u64::from(self.sb.block_size);
        let nblocks = dir.size.div_ceil(bs);
        // A directory cannot have more blocks than the filesystem: this bounds the walk
        // even when a hostile extent tree maps the same blocks over and over.
        if nblocks > MAX_DIR_BLOCKS || nblocks > self.sb.blocks_count {
            return Err(Ext4Error::Corrupt { what: "directory too large", ino, block: 0 });
        }
        let mut block = vec![0u8; bs as usize];
        let mut lblk = 0;
        while lblk < nblocks {
            match self.map(dir, lblk)? {
                Run::Hole(len) => lblk = lblk.saturating_add(len),
                Run::Data { phys, .. } => {
                    self.read_fs_block(phys, &mut block)?;
                    if self.sb.csum_seed.is_some() {
                        dir::verify_tail(&block, dir.csum_seed, ino, phys)?;
                    }
                    if dir::walk(&block, filetype, ino, phys, f)? {
                        return Ok(true);
                    }
                    lblk += 1;
                }
            }
        }
        Ok(false)
    }

    fn find(&mut self, dir: &Inode, name: &[u8]) -> Result<u32, Ext4Error> {
        let mut found = 0;
        self.walk_dir(dir, &mut |ino, _, n| {
            if n == name {
                found = ino;
                true
            } else {
                false
            }
        })?;
        if found == 0 { Err(Ext4Error::NotFound) } else { Ok(found) }
    }

    /// The entries of directory `inode`, "." and ".." included, in on-disk order.
    pub fn read_dir(&mut self, inode: &Inode) -> Result<Vec<DirEntry>, Ext4Error> {
        let mut raw: Vec<(u32, u8, String)> = Vec::new();
        let mut too_many = false;
        self.walk_dir(inode, &mut |ino, ft, name| {
            if raw.len() >= MAX_DIR_ENTRIES {
                too_many = true;
                return true;
            }
            raw.push((ino, ft, String::from_utf8_lossy(name).into_owned()));
            false
        })?;
        if too_many {
            return Err(Ext4Error::Corrupt { what: "directory has too many entries", ino: inode.ino, block: 0 });
        }
        let mut out = Vec::with_capacity(raw.len());
        for (ino, ft, name) in raw {
            let kind = match ft {
                dir::FT_REG => FileKind::File,
                dir::FT_DIR => FileKind::Dir,
                dir::FT_SYMLINK => FileKind::Symlink,
                0 => self.read_inode(ino)?.kind(),
                _ => FileKind::Other,
            };
            out.push(DirEntry { name, ino, kind });
        }
        Ok(out)
    }

    // ---- symlinks and paths ----------------------------------------------------------

    fn link_target(&mut self, inode: &Inode) -> Result<Vec<u8>, Ext4Error> {
        if inode.kind() != FileKind::Symlink {
            return Err(Ext4Error::NotASymlink);
        }
        self.check_readable(inode)?;
        if inode.size > MAX_SYMLINK_LEN {
            return Err(Ext4Error::Corrupt { what: "symlink target too long", ino: inode.ino, block: 0 });
        }
        if inode.is_fast_symlink(self.sb.block_size) {
            return Ok(inode.i_block[..inode.size as usize].to_vec());
        }
        let mut v = vec![0u8; inode.size as usize];
        let n = self.read_data(inode, 0, &mut v)?;
        v.truncate(n);
        Ok(v)
    }

    /// The target of symlink `inode`.
    pub fn read_link(&mut self, inode: &Inode) -> Result<String, Ext4Error> {
        Ok(String::from_utf8_lossy(&self.link_target(inode)?).into_owned())
    }

    /// Resolve absolute `path` ("/" is the root), following symlinks everywhere.
    pub fn lookup(&mut self, path: &str) -> Result<Inode, Ext4Error> {
        self.resolve(path, true)
    }

    /// Resolve `path`, following symlinks except in the last component.
    pub fn lookup_nofollow(&mut self, path: &str) -> Result<Inode, Ext4Error> {
        self.resolve(path, false)
    }

    fn resolve(&mut self, path: &str, follow_last: bool) -> Result<Inode, Ext4Error> {
        let root = self.read_inode(inode::ROOT_INO)?;
        // Components still to walk, last one first.
        let mut pending: Vec<Vec<u8>> = Vec::new();
        push_components(&mut pending, path.as_bytes())?;
        let mut cur = root.clone();
        let mut follows = 0;
        let mut steps = 0;
        while let Some(name) = pending.pop() {
            steps += 1;
            if steps > MAX_PATH_COMPONENTS {
                return Err(Ext4Error::PathTooLong);
            }
            if cur.kind() != FileKind::Dir {
                return Err(Ext4Error::NotADirectory);
            }
            if name.len() > 255 {
                return Err(Ext4Error::NotFound);
            }
            let ino = self.find(&cur, &name)?;
            let next = self.read_inode(ino)?;
            if next.kind() == FileKind::Symlink && (follow_last || !pending.is_empty()) {
                follows += 1;
                if follows > MAX_SYMLINK_FOLLOWS {
                    return Err(Ext4Error::SymlinkLoop);
                }
                let target = self.link_target(&next)?;
                if target.is_empty() {
                    return Err(Ext4Error::NotFound);
                }
                if target.first() == Some(&b'/') {
                    cur = root.clone();
                }
                push_components(&mut pending, &target)?;
                continue;
            }
            cur = next;
        }
        Ok(cur)
    }
}

/// Push the components of `path` onto `pending` so that its first component pops first.
fn push_components(pending: &mut Vec<Vec<u8>>, path: &[u8]) -> Result<(), Ext4Error> {
    let parts: Vec<&[u8]> = path.split(|&c| c == b'/').filter(|p| !p.is_empty() && *p != b".").collect();
    if pending.len() + parts.len() > MAX_PATH_COMPONENTS {
        return Err(Ext4Error::PathTooLong);
    }
    pending.extend(parts.iter().rev().map(|p| p.to_vec()));
    Ok(())
}
