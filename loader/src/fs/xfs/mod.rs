// SPDX-License-Identifier: MIT OR Apache-2.0
//! XFS, versions 4 and 5: read, plus one write, a regular file's bytes rewritten in place
//! ([`Xfs::write_in_place`], for grubenv; nothing is allocated and no metadata changes).
//!
//! Format reference: "XFS Algorithms & Data Structures" (the xfs-documentation
//! repository's design document), with the offsets of Linux's `xfs_format.h` and
//! `xfs_da_format.h`. One file per concern: [`sb`] (the superblock, geometry, feature
//! bits), [`inode`], [`bmap`] (extent lists and the block-map btree), [`dir`] (every
//! directory form), [`log`] (is the log clean?).
//!
//! What it reads: every v5 feature that mkfs.xfs sets by default up to Linux 6.18
//! (crc, ftype, finobt, sparse inodes, reflink, rmapbt, bigtime, inobtcount, nrext64,
//! exchange-range, parent pointers) and v4 filesystems (`-m crc=0`); 512-byte to 64 KiB
//! blocks, sectors up to 32 KiB, directory blocks larger than filesystem blocks. Inodes
//! are found by their number alone (allocation group, block, index), so the inode btrees
//! are never walked. v5 checksums are verified on the superblock, inodes, block-map
//! btree blocks, directory data blocks and remote symlink blocks.
//!
//! What it refuses, by name: the realtime subvolume, incompat features newer than it,
//! `needsrepair`. A dirty log is not replayed: the mount says so in a warning, and file
//! reads are as the last checkpoint left them (metadata checksums still verified), which
//! is what GRUB reads too.

mod bmap;
mod dir;
mod inode;
mod log;
mod sb;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::block::{BlockDevice, BlockError, read_bytes, write_bytes};
use crate::fs::path::{self, MAX_SYMLINK_LEN, Tree};
use crate::fs::{Filesystem, FsError, Node, NodeKind};
use bmap::Extent;
pub use inode::Inode;
use sb::Superblock;

/// The registry name.
pub const FS: &str = "xfs";
/// Entries [`Xfs::read_dir`] returns at most.
pub const MAX_DIR_ENTRIES: usize = 1 << 20;
/// Directory data (below the leaf offset) walked at most: 32 GiB is all the format allows.
const LEAF_OFFSET: u64 = 32 << 30;

fn io(err: BlockError) -> FsError {
    FsError::Io { fs: FS, err }
}

pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).map_or(0, |s| u16::from_be_bytes([s[0], s[1]]))
}
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}
pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| u64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
}

/// Is there an XFS superblock magic at the start of `dev`?
pub fn probe<D: BlockDevice + ?Sized>(dev: &mut D) -> bool {
    let mut m = [0u8; 4];
    read_bytes(dev, 0, &mut m).is_ok() && u32::from_be_bytes(m) == sb::MAGIC
}

/// The registry's mount function.
pub fn mount(dev: Box<dyn BlockDevice>) -> Result<Box<dyn Filesystem>, FsError> {
    Ok(Box::new(Xfs::open(dev)?))
}

/// A mounted (read-only but for [`Xfs::write_in_place`]) XFS filesystem.
pub struct Xfs<D: BlockDevice> {
    dev: D,
    sb: Superblock,
    /// The block map of the inode read last (files are read in several calls).
    map_cache: Option<(u64, Vec<Extent>)>,
    warnings: Vec<String>,
    /// The log is known to be clean (unmounted cleanly): the metadata read is the
    /// filesystem's last word, so a block the reader finds in a file is the file's.
    log_clean: bool,
}

impl<D: BlockDevice> Xfs<D> {
    /// Read and check the superblock and the root directory; look at the log.
    pub fn open(mut dev: D) -> Result<Self, FsError> {
        let mut raw = vec![0u8; 512];
        read_bytes(&mut dev, 0, &mut raw).map_err(io)?;
        let sect = usize::from(be16(&raw, 102));
        if (512..=32768).contains(&sect) && sect > raw.len() {
            raw.resize(sect, 0);
            read_bytes(&mut dev, 0, &mut raw).map_err(io)?;
        }
        let sb = Superblock::parse(&raw)?;
        if sb.dblocks.saturating_mul(u64::from(sb.block_size)) > dev.size_bytes() {
            return Err(FsError::Corrupt { fs: FS, what: "filesystem is larger than the device", at: sb.dblocks });
        }
        let mut fs = Xfs { dev, sb, map_cache: None, warnings: Vec::new(), log_clean: false };
        if fs.read_inode(fs.sb.rootino)?.kind() != NodeKind::Dir {
            return Err(FsError::Corrupt { fs: FS, what: "root inode is not a directory", at: fs.sb.rootino });
        }
        match log::check(&mut fs.dev, &fs.sb) {
            Some(w) => fs.warnings.push(w),
            None => fs.log_clean = true,
        }
        Ok(fs)
    }

    /// `sb_uuid` the way blkid prints it.
    pub fn uuid_string(&self) -> String {
        let mut s = String::with_capacity(36);
        for (i, b) in self.sb.uuid.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                s.push('-');
            }
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// `sb_fname`.
    pub fn label(&self) -> String {
        let n = self.sb.fname.iter().position(|&b| b == 0).unwrap_or(self.sb.fname.len());
        String::from_utf8_lossy(&self.sb.fname[..n]).into_owned()
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn into_inner(self) -> D {
        self.dev
    }

    pub fn read_inode(&mut self, ino: u64) -> Result<Inode, FsError> {
        let off = self.sb.inode_offset(ino).ok_or(FsError::Corrupt { fs: FS, what: "inode number", at: ino })?;
        let mut raw = vec![0u8; usize::from(self.sb.inode_size)];
        read_bytes(&mut self.dev, off, &mut raw).map_err(io)?;
        inode::parse(&self.sb, ino, &raw)
    }

    fn read_fs_block(&mut self, lin: u64) -> Result<Vec<u8>, FsError> {
        let bs = u64::from(self.sb.block_size);
        let mut b = vec![0u8; bs as usize];
        read_bytes(&mut self.dev, lin * bs, &mut b).map_err(io)?;
        Ok(b)
    }

    /// The block map of `inode`, through the one-entry cache.
    fn map_of(&mut self, inode: &Inode) -> Result<Vec<Extent>, FsError> {
        if let Some((ino, map)) = self.map_cache.take()
            && ino == inode.ino
        {
            return Ok(map);
        }
        let sb = self.sb.clone();
        bmap::extents(&sb, inode, &mut |lin| self.read_fs_block(lin))
    }

    fn keep_map(&mut self, ino: u64, map: Vec<Extent>) {
        self.map_cache = Some((ino, map));
    }

    /// Fill `buf` with the bytes at `offset` of the file mapped by `map` (holes and
    /// unwritten extents as zeros): one device request per extent. Returns whether any
    /// byte came from the disk.
    fn read_mapped(&mut self, map: &[Extent], offset: u64, buf: &mut [u8]) -> Result<bool, FsError> {
        let bs = u64::from(self.sb.block_size);
        let mut done = 0usize;
        let mut any = false;
        while done < buf.len() {
            let pos = offset + done as u64;
            let fb = pos / bs;
            let within = pos % bs;
            let want = (buf.len() - done) as u64;
            match bmap::find(map, fb) {
                Err(hole) => {
                    let k = hole.saturating_mul(bs).saturating_sub(within).min(want) as usize;
                    buf[done..done + k].fill(0);
                    done += k;
                }
                Ok(e) => {
                    let into = (fb - e.off) * bs + within;
                    let k = (e.len * bs - into).min(want) as usize;
                    if e.unwritten {
                        buf[done..done + k].fill(0);
                    } else {
                        read_bytes(&mut self.dev, e.block * bs + into, &mut buf[done..done + k]).map_err(io)?;
                        any = true;
                    }
                    done += k;
                }
            }
        }
        Ok(any)
    }

    /// Read file bytes from `offset` into `buf`; returns how many (short at end of file).
    pub fn read_at(&mut self, inode: &Inode, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        match inode.kind() {
            NodeKind::Dir => return Err(FsError::IsADirectory { fs: FS }),
            NodeKind::File | NodeKind::Symlink => {}
            NodeKind::Other => return Err(FsError::Unsupported { fs: FS, what: "reading a special file" }),
        }
        if offset >= inode.size {
            return Ok(0);
        }
        let n = (inode.size - offset).min(buf.len() as u64) as usize;
        if inode.format == inode::FMT_LOCAL {
            let src = inode.fork.get(offset as usize..offset as usize + n).ok_or(FsError::Corrupt {
                fs: FS,
                what: "inline data longer than the inode",
                at: inode.ino,
            })?;
            buf[..n].copy_from_slice(src);
            return Ok(n);
        }
        let map = self.map_of(inode)?;
        let r = self.read_mapped(&map, offset, &mut buf[..n]);
        self.keep_map(inode.ino, map);
        r.map(|_| n)
    }

    /// Overwrite bytes `offset..offset + data.len()` of regular file `inode` where they are
    /// stored, as GRUB's `save_env` does: no allocation, no metadata change. Refused
    /// (nothing written) unless the bytes are inside the file, in written extents, and
    /// the write is one Linux would make the same way: the log is clean (a replay could
    /// move the file's blocks), every read-only-compatible feature is known, and the file
    /// is neither immutable, nor append-only, nor reflinked (its blocks may be another
    /// file's too, which XFS would copy on write). The bytes are read back and compared.
    pub fn write_in_place(&mut self, inode: &Inode, offset: u64, data: &[u8]) -> Result<(), FsError> {
        let refuse = |what| Err(FsError::Unsupported { fs: FS, what });
        if inode.kind() != NodeKind::File || inode.format == inode::FMT_LOCAL {
            return refuse("rewriting anything but a regular file's blocks in place");
        }
        if !self.log_clean {
            return refuse(
                "writing in place while the log is not known to be clean (a log replay could give the file's blocks to another file)",
            );
        }
        if self.sb.ro_compat & !sb::RO_COMPAT_KNOWN != 0 {
            return refuse("writing in place with a read-only-compatible feature newer than this writer");
        }
        if inode.flags & inode::DIFLAG_IMMUTABLE != 0 {
            return refuse("writing in place to an immutable file (chattr +i)");
        }
        if inode.flags & inode::DIFLAG_APPEND != 0 {
            return refuse("writing in place to an append-only file (chattr +a)");
        }
        if inode.flags2 & inode::DIFLAG2_REFLINK != 0 {
            return refuse(
                "writing in place to a reflinked file (its blocks may be shared with a copy, which XFS would copy on write)",
            );
        }
        let Some(end) = offset.checked_add(data.len() as u64).filter(|&e| e <= inode.size) else {
            return refuse("writing past the end of a file");
        };
        let map = self.map_of(inode)?;
        let bs = u64::from(self.sb.block_size);
        // Check the whole range first, so that a refusal writes nothing.
        let mut pos = offset;
        let mut runs = Vec::new();
        while pos < end {
            let fb = pos / bs;
            let Ok(e) = bmap::find(&map, fb) else { return refuse("writing over a hole in place") };
            if e.unwritten {
                return refuse("writing over an unwritten extent in place");
            }
            let into = (fb - e.off) * bs + pos % bs;
            let k = (e.len * bs - into).min(end - pos);
            runs.push((e.block * bs + into, (pos - offset) as usize, k as usize));
            pos += k;
        }
        self.keep_map(inode.ino, map);
        for (at, from, k) in runs {
            let chunk = &data[from..from + k];
            write_bytes(&mut self.dev, at, chunk).map_err(io)?;
            let mut back = vec![0u8; k];
            read_bytes(&mut self.dev, at, &mut back).map_err(io)?;
            if back != chunk {
                return Err(io(BlockError::Broken("the bytes read back differ from those written")));
            }
        }
        Ok(())
    }

    /// Call `f(ino, name, ftype)` for each entry of directory `dir` until it returns true.
    fn walk_dir(&mut self, dir: &Inode, f: &mut dir::Visit<'_>) -> Result<bool, FsError> {
        if dir.kind() != NodeKind::Dir {
            return Err(FsError::NotADirectory { fs: FS });
        }
        let (ftype, v5, ino) = (self.sb.ftype, self.sb.version == 5, dir.ino);
        if dir.format == inode::FMT_LOCAL {
            let parent = dir::shortform_parent(&dir.fork).unwrap_or(ino);
            if f(ino, b".", 0) || f(parent, b"..", 0) {
                return Ok(true);
            }
            return dir::walk_shortform(&dir.fork, ftype, ino, f);
        }
        let dbs = u64::from(self.sb.dir_block_size());
        let data_len = dir.size.min(LEAF_OFFSET);
        let map = self.map_of(dir)?;
        let mut block = vec![0u8; dbs as usize];
        let mut at = 0u64;
        let mut stopped = false;
        while at < data_len {
            // Skip unmapped stretches at once (a freed data block leaves a hole).
            let fb = at / u64::from(self.sb.block_size);
            if let Err(hole) = bmap::find(&map, fb) {
                let skip = hole.saturating_mul(u64::from(self.sb.block_size)).max(dbs);
                at = at.saturating_add(skip).checked_next_multiple_of(dbs).unwrap_or(u64::MAX);
                continue;
            }
            let any = self.read_mapped(&map, at, &mut block)?;
            if any {
                let blk = bmap::find(&map, fb).map_or(0, |e| e.block + (fb - e.off));
                if dir::walk_block(&block, v5, ftype, ino, blk, f)? {
                    stopped = true;
                    break;
                }
            }
            at += dbs;
        }
        self.keep_map(ino, map);
        Ok(stopped)
    }

    fn find(&mut self, dir: &Inode, name: &[u8]) -> Result<u64, FsError> {
        let mut found = None;
        self.walk_dir(dir, &mut |ino, n, _| {
            if n == name {
                found = Some(ino);
            }
            found.is_some()
        })?;
        found.ok_or(FsError::NotFound { fs: FS })
    }

    /// The names in directory `inode`, `.` and `..` included.
    pub fn read_dir(&mut self, inode: &Inode) -> Result<Vec<String>, FsError> {
        let mut out = Vec::new();
        let mut too_many = false;
        self.walk_dir(inode, &mut |_, name, _| {
            if out.len() >= MAX_DIR_ENTRIES {
                too_many = true;
                return true;
            }
            out.push(String::from_utf8_lossy(name).into_owned());
            false
        })?;
        if too_many {
            return Err(FsError::Budget { fs: FS, what: "entries in one directory" });
        }
        Ok(out)
    }

    /// The target of symlink `inode`.
    fn link_bytes(&mut self, inode: &Inode) -> Result<Vec<u8>, FsError> {
        if inode.kind() != NodeKind::Symlink {
            return Err(FsError::NotASymlink { fs: FS });
        }
        if inode.size == 0 || inode.size > MAX_SYMLINK_LEN {
            return Err(FsError::Corrupt { fs: FS, what: "symlink target length", at: inode.ino });
        }
        let len = inode.size as usize;
        if inode.format == inode::FMT_LOCAL {
            return inode.fork.get(..len).map(<[u8]>::to_vec).ok_or(FsError::Corrupt {
                fs: FS,
                what: "inline symlink longer than the inode",
                at: inode.ino,
            });
        }
        let map = self.map_of(inode)?;
        let bs = u64::from(self.sb.block_size);
        let headers = self.sb.version == 5
            && match map.first() {
                Some(e) => {
                    let mut m = [0u8; 4];
                    read_bytes(&mut self.dev, e.block * bs, &mut m).map_err(io)?;
                    u32::from_be_bytes(m) == inode::SYMLINK_MAGIC
                }
                None => false,
            };
        if !headers {
            // v4, and v5 symlinks that mkfs.xfs -p (xfsprogs 6.1) writes without the
            // block header the kernel writes: the target's bytes as they are. Their
            // length is the inode's, and a NUL in them is refused.
            let mut v = vec![0u8; len];
            self.read_mapped(&map, 0, &mut v)?;
            if v.contains(&0) {
                return Err(FsError::Corrupt { fs: FS, what: "remote symlink block magic", at: inode.ino });
            }
            return Ok(v);
        }
        // v5: every extent starts with a header (owner, offset, bytes) and has a CRC.
        let mut v = Vec::with_capacity(len);
        for e in &map {
            if v.len() >= len {
                break;
            }
            let mut b = vec![0u8; (e.len * bs) as usize];
            read_bytes(&mut self.dev, e.block * bs, &mut b).map_err(io)?;
            let bytes = inode::remote_symlink_chunk(&b, inode.ino, v.len(), e.block)?;
            v.extend_from_slice(bytes.get(..(len - v.len()).min(bytes.len())).unwrap_or(&[]));
        }
        if v.len() != len {
            return Err(FsError::Corrupt { fs: FS, what: "remote symlink shorter than its size", at: inode.ino });
        }
        Ok(v)
    }
}

impl<D: BlockDevice> Tree for Xfs<D> {
    type Node = Inode;
    fn fs_name(&self) -> &'static str {
        FS
    }
    fn root(&mut self) -> Result<Inode, FsError> {
        self.read_inode(self.sb.rootino)
    }
    fn node_kind(&self, n: &Inode) -> NodeKind {
        n.kind()
    }
    fn child(&mut self, dir: &Inode, name: &[u8]) -> Result<Inode, FsError> {
        let ino = self.find(dir, name)?;
        self.read_inode(ino)
    }
    fn link_target(&mut self, link: &Inode) -> Result<Vec<u8>, FsError> {
        self.link_bytes(link)
    }
}

fn node(i: &Inode) -> Node {
    Node { id: i.ino, kind: i.kind(), size: i.size }
}

impl Filesystem for Xfs<Box<dyn BlockDevice>> {
    fn kind(&self) -> &'static str {
        FS
    }
    fn uuid(&self) -> String {
        self.uuid_string()
    }
    fn label(&self) -> String {
        Xfs::label(self)
    }
    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
    fn lookup(&mut self, p: &str) -> Result<Node, FsError> {
        Ok(node(&path::resolve(self, p, true)?))
    }
    fn read_at(&mut self, n: &Node, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let i = self.read_inode(n.id)?;
        Xfs::read_at(self, &i, offset, buf)
    }
    fn read_dir(&mut self, n: &Node) -> Result<Vec<String>, FsError> {
        let i = self.read_inode(n.id)?;
        Xfs::read_dir(self, &i)
    }
    fn read_link(&mut self, p: &str) -> Result<String, FsError> {
        let i = path::resolve(self, p, false)?;
        Ok(String::from_utf8_lossy(&self.link_bytes(&i)?).to_string())
    }
    fn write_in_place(&mut self, n: &Node, offset: u64, data: &[u8]) -> Result<(), FsError> {
        let i = self.read_inode(n.id)?;
        Xfs::write_in_place(self, &i, offset, data)
    }
    fn into_device(self: Box<Self>) -> Box<dyn BlockDevice> {
        self.into_inner()
    }
}
