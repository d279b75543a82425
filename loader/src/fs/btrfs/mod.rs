// SPDX-License-Identifier: MIT OR Apache-2.0
//! btrfs, read-only: one device through the registry, or several ([`Btrfs::open_multi`]).
//!
//! Format reference: the btrfs documentation's "On-disk format" chapter
//! (btrfs.readthedocs.io), with the constants of Linux's
//! `include/uapi/linux/btrfs_tree.h`. One file per concern: [`sb`] (the superblock and
//! its feature bits), [`chunk`] (logical to physical), [`tree`] (tree blocks and the
//! bounded search), [`items`] (inode, directory, root and file extent items),
//! [`compress`] (zlib, lzo, zstd).
//!
//! What it reads: crc32c checksums (mkfs's default); the profiles single, dup, raid1,
//! raid1c3, raid1c4 for data and metadata; the default subvolume (the `default` entry of
//! the root tree's directory 6, else the top level, tree 5), other subvolumes as Linux
//! shows them (a directory of their parent) and any chosen one ([`Btrfs::open_subvol`],
//! what `subvol=` / `subvolid=` say); lookups by `DIR_ITEM` (the crc32c name hash: one
//! search per component), listings by `DIR_INDEX` (creation order); inline, regular and
//! preallocated extents, holes (explicit, and implicit with `no-holes`); compression
//! zlib, lzo and zstd.
//!
//! What it refuses, by name: the checksum types xxhash64, sha256 and blake2b; the
//! profiles raid0, raid10, raid5, raid6; the incompat features zoned, extent-tree-v2,
//! raid-stripe-tree and any newer one; encrypted extents. Not done: data checksums (the
//! csum tree) are not verified, as GRUB does not; the log tree is not replayed (a mount
//! warning says so); only the primary superblock is read.
//!
//! Node ids: the subvolume's tree id in the high 24 bits, the inode number in the low 40
//! ([`node_id`]); a tree id of 2^24 or more, or an inode number of 2^40 or more, is
//! refused (no realistic filesystem has either: both count up from 256).

mod chunk;
mod compress;
mod items;
mod sb;
mod tree;

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::block::{BlockDevice, BlockError, read_bytes};
use crate::fs::path::{self, MAX_SYMLINK_LEN, Tree};
use crate::fs::{Filesystem, FsError, Node, NodeKind};
use chunk::ChunkMap;
use compress::MAX_RAM_BYTES;
use items::{Compression, ExtentData, Inode, RootItem};
use sb::Superblock;
use tree::{CHUNK_ITEM_KEY, DIR_INDEX_KEY, DIR_ITEM_KEY, EXTENT_DATA_KEY, INODE_ITEM_KEY, Key, ROOT_ITEM_KEY, Root};

pub use chunk::profile_name;

/// The registry name.
pub const FS: &str = "btrfs";
/// Entries [`Btrfs::read_dir`] returns at most.
pub const MAX_DIR_ENTRIES: usize = 1 << 20;
/// Extent items one read takes from the tree at a time.
const EXTENTS_PER_BATCH: usize = 1024;
/// Devices [`Btrfs::open_multi`] takes.
pub const MAX_DEVICES: usize = 64;

const FS_TREE_OBJECTID: u64 = 5;
const ROOT_TREE_DIR_OBJECTID: u64 = 6;
const FIRST_CHUNK_TREE_OBJECTID: u64 = 256;
const TREE_ID_BITS: u32 = 24;
const INO_BITS: u32 = 40;

fn io(err: BlockError) -> FsError {
    FsError::Io { fs: FS, err }
}

pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
}

/// The [`Node::id`] of inode `ino` of subvolume tree `tree`.
pub fn node_id(tree: u64, ino: u64) -> Result<u64, FsError> {
    if tree >> TREE_ID_BITS != 0 || ino >> INO_BITS != 0 {
        return Err(FsError::UnsupportedFeature {
            fs: FS,
            name: "a subvolume id of 2^24 or more or an inode number of 2^40 or more",
        });
    }
    Ok(tree << INO_BITS | ino)
}

/// The (tree, inode) of a [`Node::id`].
pub fn split_node_id(id: u64) -> (u64, u64) {
    (id >> INO_BITS, id & ((1 << INO_BITS) - 1))
}

/// Decompress one extent's bytes as a read does (`compression`: 1 zlib, 2 lzo, 3 zstd,
/// as `EXTENT_DATA` stores it), capped at `ram_bytes`: for tests and fuzzers.
pub fn decompress_extent(compression: u8, src: &[u8], ram_bytes: u64, sectorsize: u32) -> Result<Vec<u8>, FsError> {
    let c = match compression {
        1 => Compression::Zlib,
        2 => Compression::Lzo,
        3 => Compression::Zstd,
        _ => Compression::None,
    };
    compress::decompress(c, src, ram_bytes, sectorsize.clamp(4096, 65536).next_power_of_two(), 0)
}

/// Is there a btrfs superblock magic at 64 KiB of `dev`?
pub fn probe<D: BlockDevice + ?Sized>(dev: &mut D) -> bool {
    let mut m = [0u8; 0x48];
    read_bytes(dev, sb::SB_OFFSET, &mut m).is_ok() && sb::has_magic(&m)
}

/// If `dev` is a member of a btrfs filesystem of several devices: its fsid (for the volume
/// scan, which gathers the members across the guest's disks), else `None`.
pub fn multi_device_fsid<D: BlockDevice + ?Sized>(dev: &mut D) -> Option<[u8; 16]> {
    let mut raw = vec![0u8; sb::SB_LEN];
    read_bytes(dev, sb::SB_OFFSET, &mut raw).ok()?;
    let s = Superblock::parse(&raw).ok()?;
    (s.num_devices > 1).then_some(s.fsid)
}

/// The registry's mount function.
pub fn mount(dev: Box<dyn BlockDevice>) -> Result<Box<dyn Filesystem>, FsError> {
    Ok(Box::new(Btrfs::open(dev)?))
}

struct Dev<D> {
    devid: u64,
    dev: D,
}

/// A file or directory: its subvolume tree, inode number and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BNode {
    pub tree: u64,
    pub ino: u64,
    pub inode: Inode,
}

impl BNode {
    pub fn kind(&self) -> NodeKind {
        self.inode.kind()
    }
}

/// One file extent as a read uses it (inline data copied out of its leaf).
enum Ext {
    Inline { data: Vec<u8>, ram_bytes: u64, compression: Compression },
    Zero,
    Regular { disk_bytenr: u64, disk_num_bytes: u64, offset: u64, ram_bytes: u64, compression: Compression },
}

/// (file offset, length in the file, where the bytes are).
type FileExt = (u64, u64, Ext);

/// A mounted btrfs filesystem.
pub struct Btrfs<D: BlockDevice> {
    devs: Vec<Dev<D>>,
    sb: Superblock,
    chunks: ChunkMap,
    /// Checked tree blocks by logical address.
    cache: Vec<(u64, Rc<Vec<u8>>)>,
    /// Subvolume trees found so far.
    trees: Vec<(u64, RootItem)>,
    /// The subvolume shown as `/` and its root directory.
    view: (u64, u64),
    /// The extent decompressed last: (disk_bytenr, bytes).
    extent_cache: Option<(u64, Vec<u8>)>,
    warnings: Vec<String>,
}

impl<D: BlockDevice> Btrfs<D> {
    /// Mount a single-device filesystem (or the one member given of several: chunks with
    /// no copy on it then fail when read).
    pub fn open(dev: D) -> Result<Self, FsError> {
        Self::open_multi(vec![dev])
    }

    /// Mount a filesystem from its member devices, in any order: each one's superblock
    /// must carry the same fsid and its own devid. The newest superblock (highest
    /// generation) is used. A missing member is an error only when a chunk read has no
    /// copy on a present device.
    pub fn open_multi(devices: Vec<D>) -> Result<Self, FsError> {
        if devices.is_empty() || devices.len() > MAX_DEVICES {
            return Err(FsError::Corrupt { fs: FS, what: "number of devices given", at: devices.len() as u64 });
        }
        let mut devs = Vec::with_capacity(devices.len());
        let mut best: Option<Superblock> = None;
        let mut raw = vec![0u8; sb::SB_LEN];
        for mut dev in devices {
            read_bytes(&mut dev, sb::SB_OFFSET, &mut raw).map_err(io)?;
            let s = Superblock::parse(&raw)?;
            if let Some(b) = &best
                && b.fsid != s.fsid
            {
                return Err(FsError::Corrupt {
                    fs: FS,
                    what: "a device of another btrfs filesystem (fsid differs)",
                    at: s.devid,
                });
            }
            if devs.iter().any(|d: &Dev<D>| d.devid == s.devid) {
                return Err(FsError::Corrupt { fs: FS, what: "two devices with one devid", at: s.devid });
            }
            if dev.size_bytes() < s.dev_total_bytes {
                return Err(FsError::Corrupt { fs: FS, what: "device smaller than the filesystem says", at: s.devid });
            }
            devs.push(Dev { devid: s.devid, dev });
            if best.as_ref().is_none_or(|b| s.generation > b.generation) {
                best = Some(s);
            }
        }
        let sb = best.ok_or(FsError::NotOurs { fs: FS, why: "no superblock" })?;
        let chunks = ChunkMap::from_sys_array(sb.sys_chunks())?;
        let mut fs = Btrfs {
            devs,
            sb,
            chunks,
            cache: Vec::new(),
            trees: Vec::new(),
            view: (FS_TREE_OBJECTID, 256),
            extent_cache: None,
            warnings: Vec::new(),
        };
        fs.read_chunk_tree()?;
        if (fs.devs.len() as u64) < fs.sb.num_devices {
            fs.warnings.push(format!("btrfs: {} of {} devices present", fs.devs.len(), fs.sb.num_devices));
        }
        if fs.sb.log_root != 0 {
            fs.warnings.push(String::from(
                "btrfs: the log tree is not replayed: files synced after the last commit read as of that commit",
            ));
        }
        let default = fs.default_subvol()?;
        fs.set_view(default)?;
        Ok(fs)
    }

    fn read_chunk_tree(&mut self) -> Result<(), FsError> {
        let root = Root { bytenr: self.sb.chunk_root, level: self.sb.chunk_root_level };
        let mut found = Vec::new();
        let mut err = None;
        self.walk(root, Key::new(FIRST_CHUNK_TREE_OBJECTID, CHUNK_ITEM_KEY, 0), &mut |k, d| {
            if k.ty == CHUNK_ITEM_KEY && k.objectid == FIRST_CHUNK_TREE_OBJECTID {
                match chunk::parse_chunk(k.offset, d) {
                    Ok((c, _)) => found.push(c),
                    Err(e) => err = Some(e),
                }
            }
            Ok(err.is_some() || found.len() > chunk::MAX_CHUNKS)
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        let mut map = self.chunks.clone();
        for c in found {
            map.insert(c)?;
        }
        // Every stripe on a present device must lie inside it.
        for c in map.chunks() {
            for s in &c.stripes {
                if let Some(d) = self.devs.iter().find(|d| d.devid == s.devid)
                    && s.offset + c.length > d.dev.size_bytes()
                {
                    return Err(FsError::Corrupt {
                        fs: FS,
                        what: "chunk stripe past the end of its device",
                        at: c.logical,
                    });
                }
            }
        }
        self.chunks = map;
        self.cache.clear();
        Ok(())
    }

    fn root_tree(&self) -> Root {
        Root { bytenr: self.sb.root, level: self.sb.root_level }
    }

    /// The subvolume `default` names in the root tree's directory, else the top level.
    fn default_subvol(&mut self) -> Result<u64, FsError> {
        let k = Key::new(ROOT_TREE_DIR_OBJECTID, DIR_ITEM_KEY, items::name_hash(b"default"));
        let Some(d) = self.find_item(self.root_tree(), k)? else { return Ok(FS_TREE_OBJECTID) };
        let found = items::dir_entries(&d, ROOT_TREE_DIR_OBJECTID)?
            .iter()
            .find(|e| e.name == b"default")
            .map(|e| e.location.objectid);
        Ok(found.unwrap_or(FS_TREE_OBJECTID))
    }

    /// The root item of subvolume tree `tree`, or `NotFound`.
    fn subvol_root(&mut self, tree: u64) -> Result<RootItem, FsError> {
        if let Some((_, r)) = self.trees.iter().find(|(t, _)| *t == tree) {
            return Ok(*r);
        }
        if tree != FS_TREE_OBJECTID && !(256..1 << TREE_ID_BITS).contains(&tree) {
            return Err(FsError::NotFound { fs: FS });
        }
        // Snapshots' root items are keyed (id, ROOT_ITEM, transid): take the last one.
        let mut item = None;
        self.walk(self.root_tree(), Key::new(tree, ROOT_ITEM_KEY, u64::MAX), &mut |k, d| {
            if k.objectid == tree && k.ty == ROOT_ITEM_KEY {
                item = Some(RootItem::parse(d, tree));
            }
            Ok(true)
        })?;
        let r = item.ok_or(FsError::NotFound { fs: FS })??;
        if self.trees.len() >= 64 {
            self.trees.remove(0);
        }
        self.trees.push((tree, r));
        Ok(r)
    }

    fn set_view(&mut self, tree: u64) -> Result<(), FsError> {
        let r = self.subvol_root(tree)?;
        let root = self.read_inode(tree, r.root_dirid)?;
        if root.kind() != NodeKind::Dir {
            return Err(FsError::Corrupt { fs: FS, what: "subvolume root is not a directory", at: tree });
        }
        self.view = (tree, r.root_dirid);
        Ok(())
    }

    /// Show subvolume `name_or_id` as `/`, as Linux's `subvolid=N` (all digits) or
    /// `subvol=PATH` (a path from the top-level subvolume, tree 5; the path must name a
    /// subvolume's root) do. Nothing changes on an error.
    pub fn open_subvol(&mut self, name_or_id: &str) -> Result<(), FsError> {
        if !name_or_id.is_empty() && name_or_id.bytes().all(|c| c.is_ascii_digit()) {
            let id: u64 = name_or_id.parse().map_err(|_| FsError::NotFound { fs: FS })?;
            return self.set_view(id);
        }
        let old = self.view;
        self.set_view(FS_TREE_OBJECTID)?;
        let r = path::resolve(self, name_or_id, true);
        self.view = old;
        let n = r?;
        if n.kind() != NodeKind::Dir {
            return Err(FsError::NotADirectory { fs: FS });
        }
        if self.subvol_root(n.tree)?.root_dirid != n.ino {
            return Err(FsError::Unsupported { fs: FS, what: "a subvol= path that is not a subvolume's root" });
        }
        self.view = (n.tree, n.ino);
        Ok(())
    }

    /// The tree id of the subvolume shown as `/`.
    pub fn subvol_id(&self) -> u64 {
        self.view.0
    }

    /// The fsid the way blkid prints it.
    pub fn uuid_string(&self) -> String {
        let mut s = String::with_capacity(36);
        for (i, b) in self.sb.fsid.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                s.push('-');
            }
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    pub fn label(&self) -> String {
        let n = self.sb.label.iter().position(|&b| b == 0).unwrap_or(self.sb.label.len());
        String::from_utf8_lossy(&self.sb.label[..n]).into_owned()
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The devices, in the order given.
    pub fn into_devices(self) -> Vec<D> {
        self.devs.into_iter().map(|d| d.dev).collect()
    }

    fn tree_of(&mut self, tree: u64) -> Result<Root, FsError> {
        Ok(self.subvol_root(tree)?.root)
    }

    pub fn read_inode(&mut self, tree: u64, ino: u64) -> Result<BNode, FsError> {
        node_id(tree, ino)?;
        let root = self.tree_of(tree)?;
        let d = self.find_item(root, Key::new(ino, INODE_ITEM_KEY, 0))?.ok_or(FsError::Corrupt {
            fs: FS,
            what: "directory entry names a missing inode",
            at: ino,
        })?;
        Ok(BNode { tree, ino, inode: Inode::parse(&d, ino)? })
    }

    fn node_of(&mut self, n: &Node) -> Result<BNode, FsError> {
        let (tree, ino) = split_node_id(n.id);
        self.read_inode(tree, ino)
    }

    fn find(&mut self, dir: &BNode, name: &[u8]) -> Result<BNode, FsError> {
        if dir.kind() != NodeKind::Dir {
            return Err(FsError::NotADirectory { fs: FS });
        }
        let root = self.tree_of(dir.tree)?;
        let Some(d) = self.find_item(root, Key::new(dir.ino, DIR_ITEM_KEY, items::name_hash(name)))? else {
            return Err(FsError::NotFound { fs: FS });
        };
        let loc = items::dir_entries(&d, dir.ino)?
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.location)
            .ok_or(FsError::NotFound { fs: FS })?;
        match loc.ty {
            INODE_ITEM_KEY => self.read_inode(dir.tree, loc.objectid),
            ROOT_ITEM_KEY => {
                let r = self.subvol_root(loc.objectid)?;
                self.read_inode(loc.objectid, r.root_dirid)
            }
            _ => Err(FsError::Corrupt { fs: FS, what: "directory entry location type", at: dir.ino }),
        }
    }

    /// The names in directory `dir`, in `DIR_INDEX` (creation) order; btrfs stores no
    /// `.` or `..`.
    pub fn read_dir(&mut self, dir: &BNode) -> Result<Vec<String>, FsError> {
        if dir.kind() != NodeKind::Dir {
            return Err(FsError::NotADirectory { fs: FS });
        }
        let root = self.tree_of(dir.tree)?;
        let mut out = Vec::new();
        let mut err = None;
        let ino = dir.ino;
        self.walk(root, Key::new(ino, DIR_INDEX_KEY, 0), &mut |k, d| {
            if k.objectid > ino || (k.objectid == ino && k.ty > DIR_INDEX_KEY) {
                return Ok(true);
            }
            if k.objectid != ino || k.ty != DIR_INDEX_KEY {
                return Ok(false);
            }
            for e in items::dir_entries(d, ino)? {
                out.push(String::from_utf8_lossy(e.name).into_owned());
            }
            if out.len() > MAX_DIR_ENTRIES {
                err = Some(FsError::Budget { fs: FS, what: "entries in one directory" });
                return Ok(true);
            }
            Ok(false)
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The extents of `n` overlapping `start..end`, as (file offset, length, extent): at
    /// most [`EXTENTS_PER_BATCH`] of them, and whether there may be more.
    fn extents(&mut self, n: &BNode, start: u64, end: u64) -> Result<(Vec<FileExt>, bool), FsError> {
        let root = self.tree_of(n.tree)?;
        let ino = n.ino;
        let mut out = Vec::new();
        let mut more = false;
        self.walk(root, Key::new(ino, EXTENT_DATA_KEY, start), &mut |k, d| {
            if k.objectid > ino
                || (k.objectid == ino && k.ty > EXTENT_DATA_KEY)
                || k.offset >= end && k.objectid == ino && k.ty == EXTENT_DATA_KEY
            {
                return Ok(true);
            }
            if k.objectid != ino || k.ty != EXTENT_DATA_KEY {
                return Ok(false);
            }
            let e = items::file_extent(d, ino)?;
            let len = e.len();
            if k.offset.checked_add(len).is_none_or(|e| e <= start) {
                return Ok(false);
            }
            let ext = match e {
                ExtentData::Inline { data, ram_bytes, compression } => {
                    Ext::Inline { data: data.to_vec(), ram_bytes, compression }
                }
                ExtentData::Zero { .. } => Ext::Zero,
                ExtentData::Regular { disk_bytenr, disk_num_bytes, offset, ram_bytes, compression, .. } => {
                    Ext::Regular { disk_bytenr, disk_num_bytes, offset, ram_bytes, compression }
                }
            };
            out.push((k.offset, len, ext));
            more = out.len() >= EXTENTS_PER_BATCH;
            Ok(more)
        })?;
        Ok((out, more))
    }

    /// The decompressed bytes of a compressed extent, through the one-entry cache.
    fn decompressed(
        &mut self,
        disk_bytenr: u64,
        disk_num_bytes: u64,
        ram_bytes: u64,
        c: Compression,
    ) -> Result<&[u8], FsError> {
        if self.extent_cache.as_ref().is_none_or(|(a, _)| *a != disk_bytenr) {
            if disk_num_bytes > MAX_RAM_BYTES || ram_bytes > MAX_RAM_BYTES {
                return Err(FsError::Corrupt {
                    fs: FS,
                    what: "compressed extent larger than 128 KiB",
                    at: disk_bytenr,
                });
            }
            let mut src = vec![0u8; disk_num_bytes as usize];
            self.read_logical(disk_bytenr, &mut src)?;
            let v = compress::decompress(c, &src, ram_bytes, self.sb.sectorsize, disk_bytenr)?;
            self.extent_cache = Some((disk_bytenr, v));
        }
        Ok(self.extent_cache.as_ref().map_or(&[][..], |(_, v)| &v[..]))
    }

    /// Read file bytes from `offset` into `buf`; returns how many (short at end of file).
    pub fn read_at(&mut self, n: &BNode, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        match n.kind() {
            NodeKind::Dir => return Err(FsError::IsADirectory { fs: FS }),
            NodeKind::File | NodeKind::Symlink => {}
            NodeKind::Other => return Err(FsError::Unsupported { fs: FS, what: "reading a special file" }),
        }
        let size = n.inode.size;
        if offset >= size {
            return Ok(0);
        }
        let len = (size - offset).min(buf.len() as u64) as usize;
        let end = offset + len as u64;
        let buf = &mut buf[..len];
        let mut pos = offset;
        loop {
            let (exts, more) = self.extents(n, pos, end)?;
            let before = pos;
            for (start, elen, ext) in exts {
                let eend = start.saturating_add(elen).min(end);
                if eend <= pos {
                    continue;
                }
                let from = start.max(pos);
                // An implicit hole before this extent.
                buf[(pos - offset) as usize..(from - offset) as usize].fill(0);
                let dst = &mut buf[(from - offset) as usize..(eend - offset) as usize];
                let into = from - start;
                match ext {
                    Ext::Zero => dst.fill(0),
                    Ext::Inline { data, ram_bytes, compression } => {
                        let plain = if compression == Compression::None {
                            data
                        } else {
                            compress::decompress(compression, &data, ram_bytes, self.sb.sectorsize, n.ino)?
                        };
                        let s = plain.get(into as usize..into as usize + dst.len()).ok_or(FsError::Corrupt {
                            fs: FS,
                            what: "inline extent shorter than its size",
                            at: n.ino,
                        })?;
                        dst.copy_from_slice(s);
                    }
                    Ext::Regular { disk_bytenr, disk_num_bytes, offset: eoff, ram_bytes, compression } => {
                        if compression == Compression::None {
                            let at = disk_bytenr.checked_add(eoff + into).ok_or(FsError::Corrupt {
                                fs: FS,
                                what: "file extent address",
                                at: disk_bytenr,
                            })?;
                            self.read_logical(at, dst)?;
                        } else {
                            let plain = self.decompressed(disk_bytenr, disk_num_bytes, ram_bytes, compression)?;
                            let i = (eoff + into) as usize;
                            let s = plain.get(i..i + dst.len()).ok_or(FsError::Corrupt {
                                fs: FS,
                                what: "compressed extent shorter than its file range",
                                at: disk_bytenr,
                            })?;
                            dst.copy_from_slice(s);
                        }
                    }
                }
                pos = eend;
            }
            if !more || pos >= end {
                break;
            }
            if pos == before {
                return Err(FsError::Corrupt { fs: FS, what: "file extents that do not advance", at: n.ino });
            }
        }
        buf[(pos - offset) as usize..].fill(0);
        Ok(len)
    }

    /// The target of symlink `n` (its inline extent).
    fn link_bytes(&mut self, n: &BNode) -> Result<Vec<u8>, FsError> {
        if n.kind() != NodeKind::Symlink {
            return Err(FsError::NotASymlink { fs: FS });
        }
        if n.inode.size == 0 || n.inode.size > MAX_SYMLINK_LEN {
            return Err(FsError::Corrupt { fs: FS, what: "symlink target length", at: n.ino });
        }
        let mut v = vec![0u8; n.inode.size as usize];
        let k = self.read_at(n, 0, &mut v)?;
        v.truncate(k);
        Ok(v)
    }
}

impl<D: BlockDevice> Tree for Btrfs<D> {
    type Node = BNode;
    fn fs_name(&self) -> &'static str {
        FS
    }
    fn root(&mut self) -> Result<BNode, FsError> {
        let (tree, ino) = self.view;
        self.read_inode(tree, ino)
    }
    fn node_kind(&self, n: &BNode) -> NodeKind {
        n.kind()
    }
    fn child(&mut self, dir: &BNode, name: &[u8]) -> Result<BNode, FsError> {
        self.find(dir, name)
    }
    fn link_target(&mut self, link: &BNode) -> Result<Vec<u8>, FsError> {
        self.link_bytes(link)
    }
}

fn node(n: &BNode) -> Result<Node, FsError> {
    Ok(Node { id: node_id(n.tree, n.ino)?, kind: n.kind(), size: n.inode.size })
}

impl Filesystem for Btrfs<Box<dyn BlockDevice>> {
    fn kind(&self) -> &'static str {
        FS
    }
    fn uuid(&self) -> String {
        self.uuid_string()
    }
    fn label(&self) -> String {
        Btrfs::label(self)
    }
    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
    fn lookup(&mut self, p: &str) -> Result<Node, FsError> {
        node(&path::resolve(self, p, true)?)
    }
    fn read_at(&mut self, n: &Node, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let b = self.node_of(n)?;
        Btrfs::read_at(self, &b, offset, buf)
    }
    fn read_dir(&mut self, n: &Node) -> Result<Vec<String>, FsError> {
        let b = self.node_of(n)?;
        Btrfs::read_dir(self, &b)
    }
    fn read_link(&mut self, p: &str) -> Result<String, FsError> {
        let b = path::resolve(self, p, false)?;
        Ok(String::from_utf8_lossy(&self.link_bytes(&b)?).into_owned())
    }
    fn alternate_roots(&mut self) -> Vec<String> {
        // The top level's entries that are subvolume roots (at most 16), the view kept.
        let old = self.view;
        let mut out = Vec::new();
        if self.set_view(FS_TREE_OBJECTID).is_ok()
            && let Ok(root) = self.read_inode(FS_TREE_OBJECTID, self.view.1)
            && let Ok(names) = Btrfs::read_dir(self, &root)
        {
            for name in names.into_iter().take(64) {
                let p = format!("/{name}");
                if out.len() < 16 && self.open_subvol(&p).is_ok() && self.view != old {
                    out.push(p);
                }
                self.view = (FS_TREE_OBJECTID, root.ino);
            }
        }
        self.view = old;
        out
    }
    fn set_root(&mut self, root: &str) -> Result<(), FsError> {
        if root.is_empty() {
            let d = self.default_subvol()?;
            return self.set_view(d);
        }
        self.open_subvol(root)
    }
    fn into_device(self: Box<Self>) -> Box<dyn BlockDevice> {
        let mut devs = self.into_devices();
        // The first device given (the registry gives one).
        devs.swap_remove(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_round_trip_and_refuse_overflow() {
        let id = node_id(256, 257).unwrap();
        assert_eq!(split_node_id(id), (256, 257));
        assert_eq!(split_node_id(node_id(5, (1 << 40) - 1).unwrap()), (5, (1 << 40) - 1));
        assert!(node_id(1 << 24, 256).is_err());
        assert!(node_id(5, 1 << 40).is_err());
    }
}
