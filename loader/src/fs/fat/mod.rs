// SPDX-License-Identifier: MIT OR Apache-2.0
//! FAT12/16/32 with VFAT long names: read, plus one write, a file's existing bytes
//! rewritten in place ([`Fat::write_in_place`], for grubenv on an ESP; nothing is allocated
//! and no metadata changes).
//!
//! Format reference: Microsoft's "FAT: General Overview of On-Disk Format" (fatgen103) for
//! the BPB, the FAT type by cluster count, FAT entries and short directory entries; Linux
//! `Documentation/filesystems/vfat.rst` for long names, the NT case bits and how names
//! compare. One file per concern: [`bpb`] (boot sector), [`dir`] (directory entries); this
//! file has the FAT, cluster chains, file data and the [`Filesystem`] seam.
//!
//! Everything read from the disk is checked before it is used: the BPB's fields and the
//! layout they imply against the device, every cluster number against the cluster count,
//! chains against the file size (files) or FAT's own limit of 65536 entries (directories),
//! and a chain that comes back to a cluster it already passed is refused. FAT sectors are
//! read on demand through a small cache (a 2 GiB FAT32 has a 2 MiB FAT). File data is read
//! straight into the caller's buffer, one device request per physically contiguous run of
//! clusters. FSInfo, the backup boot sector and the second FAT are not read.
//!
//! Node ids: a file's or directory's first cluster; the root directory is [`ROOT_ID`] (on
//! FAT32 it stands for the BPB's root cluster). Empty files have no cluster: id 0.

mod bpb;
mod dir;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

pub use bpb::FatKind;
pub use dir::{Entry, checksum, decode_ucs2, same_name, short_name};

use crate::block::{BlockDevice, BlockError, read_bytes, write_bytes};
use crate::fs::path::{self, Tree};
use crate::fs::{Filesystem, FsError, Node, NodeKind};
use bpb::{BOOT_SECTOR, Bpb};
use dir::{ENTRY_BYTES, Item};

/// The registry name.
pub(crate) const FS: &str = "fat";
/// The root directory's node id: above every cluster number.
pub const ROOT_ID: u64 = 1 << 32;
/// Entries of one directory at most (FAT's own limit: 16-bit entry indices).
pub const MAX_DIR_ENTRIES: u64 = 65536;
/// Bytes of the FAT read and cached at a time.
const FAT_CHUNK: u64 = 4096;
/// FAT chunks kept in the cache.
const CACHE_SLOTS: usize = 8;

/// `len` clusters from cluster `start` on, physically contiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    start: u32,
    len: u32,
}

/// What [`Fat::for_extents`] calls per run: (device, disk byte offset, offset into the
/// request, bytes).
type ExtentFn<'a, D> = dyn FnMut(&mut D, u64, usize, usize) -> Result<(), FsError> + 'a;

fn corrupt(what: &'static str, at: u64) -> FsError {
    FsError::Corrupt { fs: FS, what, at }
}

fn io(err: BlockError) -> FsError {
    FsError::Io { fs: FS, err }
}

/// Is there a FAT boot sector (0x55AA and a sane BPB) on `dev`?
pub fn probe<D: BlockDevice + ?Sized>(dev: &mut D) -> bool {
    let mut b = [0u8; BOOT_SECTOR];
    read_bytes(dev, 0, &mut b).is_ok() && bpb::sane(&b).is_ok()
}

/// The registry's mount function.
pub fn mount(dev: Box<dyn BlockDevice>) -> Result<Box<dyn Filesystem>, FsError> {
    Ok(Box::new(Fat::open(dev)?))
}

/// Label bytes as shown: trailing spaces trimmed, code page 437, `NO NAME` is no label.
fn label_string(raw: &[u8; 11]) -> String {
    let s = dir::label_name(raw);
    if s == "NO NAME" { String::new() } else { s }
}

/// A mounted FAT12/16/32 filesystem.
pub struct Fat<D: BlockDevice> {
    dev: D,
    bpb: Bpb,
    /// FAT chunk index -> its bytes.
    cache: Vec<(u64, Vec<u8>)>,
    cache_next: usize,
    /// The slot asked for last (the chain walk asks for it again and again).
    cache_last: usize,
    /// The chain of the file read last: (first cluster, size, runs).
    file_runs: Option<(u32, u64, Vec<Run>)>,
    label: String,
}

impl<D: BlockDevice> Fat<D> {
    /// Read and check the boot sector and the root directory.
    pub fn open(mut dev: D) -> Result<Self, FsError> {
        if dev.size_bytes() < BOOT_SECTOR as u64 {
            return Err(FsError::NotOurs { fs: FS, why: "device too small for a boot sector" });
        }
        let mut b = [0u8; BOOT_SECTOR];
        read_bytes(&mut dev, 0, &mut b).map_err(io)?;
        let bpb = Bpb::parse(&b, dev.size_bytes())?;
        let mut fs =
            Fat { dev, bpb, cache: Vec::new(), cache_next: 0, cache_last: 0, file_runs: None, label: String::new() };
        let root = fs.root_node();
        let mut label = None;
        fs.walk_dir(&root, &mut |i| {
            if let Item::Label(l) = i {
                label = Some(l);
                return true;
            }
            false
        })?;
        fs.label = label.or(fs.bpb.label).map(|l| label_string(&l)).unwrap_or_default();
        Ok(fs)
    }

    /// FAT12, FAT16 or FAT32.
    pub fn fat_kind(&self) -> FatKind {
        self.bpb.kind
    }

    /// The volume serial as blkid prints it (`XXXX-XXXX`), empty without one.
    pub fn uuid_string(&self) -> String {
        self.bpb.serial.map(|s| format!("{:04X}-{:04X}", s >> 16, s & 0xFFFF)).unwrap_or_default()
    }

    /// The root directory's volume label, else the BPB's (`NO NAME` is none).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Give the device back.
    pub fn into_inner(self) -> D {
        self.dev
    }

    fn root_node(&self) -> Node {
        Node { id: ROOT_ID, kind: NodeKind::Dir, size: 0 }
    }

    // ---- the FAT ---------------------------------------------------------------------

    /// The cached chunk of the active FAT that holds byte `off`: its slot.
    fn fat_chunk(&mut self, off: u64) -> Result<usize, FsError> {
        let chunk = off / FAT_CHUNK;
        // The chain walk asks for the same chunk thousands of times in a row.
        if let Some((c, _)) = self.cache.get(self.cache_last)
            && *c == chunk
        {
            return Ok(self.cache_last);
        }
        if let Some(i) = self.cache.iter().position(|(c, _)| *c == chunk) {
            self.cache_last = i;
            return Ok(i);
        }
        let start = chunk * FAT_CHUNK;
        let len = self.bpb.fat_bytes().saturating_sub(start).min(FAT_CHUNK) as usize;
        let mut data = vec![0u8; len];
        read_bytes(&mut self.dev, self.bpb.fat_offset() + start, &mut data).map_err(io)?;
        let i = if self.cache.len() < CACHE_SLOTS {
            self.cache.push((chunk, data));
            self.cache.len() - 1
        } else {
            let i = self.cache_next;
            if let Some(slot) = self.cache.get_mut(i) {
                *slot = (chunk, data);
            }
            self.cache_next = (self.cache_next + 1) % CACHE_SLOTS;
            i
        };
        self.cache_last = i;
        Ok(i)
    }

    /// `N` bytes of the active FAT from byte `off` (little-endian entry bytes), through
    /// the cache; an entry that crosses a chunk's end is read a byte at a time.
    fn fat_bytes<const N: usize>(&mut self, off: u64) -> Result<[u8; N], FsError> {
        let mut out = [0u8; N];
        let within = (off % FAT_CHUNK) as usize;
        if within + N <= FAT_CHUNK as usize {
            let i = self.fat_chunk(off)?;
            let src = self.cache.get(i).and_then(|(_, d)| d.get(within..within + N));
            out.copy_from_slice(src.ok_or(corrupt("FAT entry past the end of the FAT", off))?);
            return Ok(out);
        }
        for (k, b) in out.iter_mut().enumerate() {
            let o = off + k as u64;
            let i = self.fat_chunk(o)?;
            let w = (o % FAT_CHUNK) as usize;
            *b = self
                .cache
                .get(i)
                .and_then(|(_, d)| d.get(w))
                .copied()
                .ok_or(corrupt("FAT entry past the end of the FAT", o))?;
        }
        Ok(out)
    }

    /// The FAT entry of cluster `c`: the next cluster of its chain, `None` at the end.
    fn next_cluster(&mut self, c: u32) -> Result<Option<u32>, FsError> {
        let n = u64::from(c);
        let (v, eoc, bad) = match self.bpb.kind {
            FatKind::Fat12 => {
                let pair = u32::from(u16::from_le_bytes(self.fat_bytes::<2>(n + n / 2)?));
                (if c & 1 == 0 { pair & 0xFFF } else { pair >> 4 }, 0xFF8, 0xFF7)
            }
            FatKind::Fat16 => (u32::from(u16::from_le_bytes(self.fat_bytes::<2>(2 * n)?)), 0xFFF8, 0xFFF7),
            FatKind::Fat32 => (u32::from_le_bytes(self.fat_bytes::<4>(4 * n)?) & 0x0FFF_FFFF, 0x0FFF_FFF8, 0x0FFF_FFF7),
        };
        match v {
            _ if v >= eoc => Ok(None),
            _ if v == bad => Err(corrupt("bad cluster in a cluster chain", n)),
            0 => Err(corrupt("free cluster in a cluster chain", n)),
            _ if !self.bpb.valid_cluster(v) => Err(corrupt("cluster number past the end of the filesystem", n)),
            _ => Ok(Some(v)),
        }
    }

    /// The chain from cluster `first`, at most `limit` clusters, as contiguous runs; and
    /// whether it ended (an end-of-chain mark) within them. A chain that passes a
    /// cluster twice is [`FsError::Corrupt`].
    fn chain(&mut self, first: u32, limit: u64) -> Result<(Vec<Run>, bool), FsError> {
        if !self.bpb.valid_cluster(first) {
            return Err(corrupt("first cluster number outside the filesystem", u64::from(first)));
        }
        let mut runs = vec![Run { start: first, len: 1 }];
        let (mut cur, mut n, mut ended) = (first, 1u64, false);
        while n < limit {
            let Some(next) = self.next_cluster(cur)? else {
                ended = true;
                break;
            };
            match runs.last_mut() {
                Some(r) if u64::from(r.start) + u64::from(r.len) == u64::from(next) => r.len += 1,
                _ => runs.push(Run { start: next, len: 1 }),
            }
            cur = next;
            n += 1;
        }
        let mut sorted = runs.clone();
        sorted.sort_unstable_by_key(|r| r.start);
        if let Some(w) = sorted.windows(2).find(|w| u64::from(w[0].start) + u64::from(w[0].len) > u64::from(w[1].start))
        {
            return Err(corrupt("cluster chain loops back on itself", u64::from(w[1].start)));
        }
        Ok((runs, ended))
    }

    /// The runs of file `node` (cached for the file read last).
    fn runs_of(&mut self, node: &Node) -> Result<Vec<Run>, FsError> {
        let first = u32::try_from(node.id).map_err(|_| FsError::NotFound { fs: FS })?;
        if let Some((f, s, runs)) = self.file_runs.take()
            && f == first
            && s == node.size
        {
            self.file_runs = Some((f, s, runs.clone()));
            return Ok(runs);
        }
        let cb = self.bpb.cluster_bytes();
        let need = node.size.div_ceil(cb);
        if need > u64::from(self.bpb.clusters) {
            return Err(corrupt("file larger than the filesystem", node.size));
        }
        if first == 0 {
            return Err(corrupt("file with data but no first cluster", node.size));
        }
        let (runs, ended) = self.chain(first, need)?;
        let got: u64 = runs.iter().map(|r| u64::from(r.len)).sum();
        if ended && got < need {
            return Err(corrupt("cluster chain shorter than the file", u64::from(first)));
        }
        self.file_runs = Some((first, node.size, runs.clone()));
        Ok(runs)
    }

    /// Call `f` with each (disk byte offset, byte count) of file `node`'s bytes
    /// `offset..offset + len` (inside the file), one call per contiguous run.
    fn for_extents(&mut self, node: &Node, offset: u64, len: u64, f: &mut ExtentFn<'_, D>) -> Result<(), FsError> {
        if len == 0 {
            return Ok(());
        }
        let runs = self.runs_of(node)?;
        let cb = self.bpb.cluster_bytes();
        let (mut base, mut pos, end) = (0u64, offset, offset + len);
        for r in runs {
            let top = base + u64::from(r.len) * cb;
            if pos < top {
                let k = (top.min(end) - pos) as usize;
                let disk = self.bpb.cluster_offset(r.start) + (pos - base);
                f(&mut self.dev, disk, (pos - offset) as usize, k)?;
                pos += k as u64;
                if pos >= end {
                    return Ok(());
                }
            }
            base = top;
        }
        Err(corrupt("cluster chain shorter than the file", node.id))
    }

    // ---- directories -----------------------------------------------------------------

    /// The bytes of directory `node`.
    fn dir_bytes(&mut self, node: &Node) -> Result<Vec<u8>, FsError> {
        if node.kind != NodeKind::Dir {
            return Err(FsError::NotADirectory { fs: FS });
        }
        let max = MAX_DIR_ENTRIES * ENTRY_BYTES as u64;
        if node.id == ROOT_ID && self.bpb.kind != FatKind::Fat32 {
            let mut raw = vec![0u8; self.bpb.root_entries as usize * ENTRY_BYTES];
            read_bytes(&mut self.dev, self.bpb.root_offset(), &mut raw).map_err(io)?;
            return Ok(raw);
        }
        let first = if node.id == ROOT_ID { self.bpb.root_cluster } else { u32::try_from(node.id).unwrap_or(0) };
        if first == 0 {
            return Err(corrupt("directory without a first cluster", 0));
        }
        let cb = self.bpb.cluster_bytes();
        let limit = max.div_ceil(cb);
        let (runs, ended) = self.chain(first, limit)?;
        if !ended && self.next_cluster(runs.last().map_or(first, |r| r.start + r.len - 1))?.is_some() {
            return Err(FsError::Budget { fs: FS, what: "directory cluster chain longer than 65536 entries" });
        }
        let total: u64 = runs.iter().map(|r| u64::from(r.len) * cb).sum();
        let mut raw = vec![0u8; total as usize];
        let mut at = 0usize;
        for r in runs {
            let n = (u64::from(r.len) * cb) as usize;
            let dst = raw.get_mut(at..at + n).ok_or(corrupt("directory size", 0))?;
            read_bytes(&mut self.dev, self.bpb.cluster_offset(r.start), dst).map_err(io)?;
            at += n;
        }
        Ok(raw)
    }

    fn walk_dir(&mut self, node: &Node, f: &mut dyn FnMut(Item) -> bool) -> Result<bool, FsError> {
        let raw = self.dir_bytes(node)?;
        Ok(dir::walk(&raw, self.bpb.kind == FatKind::Fat32, f))
    }

    fn node_of(e: &Entry) -> Node {
        let kind = if e.is_dir { NodeKind::Dir } else { NodeKind::File };
        Node { id: u64::from(e.cluster), kind, size: if e.is_dir { 0 } else { u64::from(e.size) } }
    }

    /// The entries of directory `node`, in directory order (`.`, `..`, labels and deleted
    /// entries left out).
    pub fn entries(&mut self, node: &Node) -> Result<Vec<Entry>, FsError> {
        let mut out = Vec::new();
        self.walk_dir(node, &mut |i| {
            if let Item::Entry(e) = i {
                out.push(e);
            }
            false
        })?;
        Ok(out)
    }

    /// What `path` names; names compare case-insensitively, long or short.
    pub fn lookup(&mut self, path: &str) -> Result<Node, FsError> {
        path::resolve(self, path, true)
    }

    // ---- file data -------------------------------------------------------------------

    /// Read file bytes from `offset` into `buf`; returns how many (short at the end).
    pub fn read_at(&mut self, node: &Node, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        match node.kind {
            NodeKind::Dir => return Err(FsError::IsADirectory { fs: FS }),
            NodeKind::File => {}
            _ => return Err(FsError::NotFound { fs: FS }),
        }
        if offset >= node.size {
            return Ok(0);
        }
        let n = (node.size - offset).min(buf.len() as u64);
        self.for_extents(node, offset, n, &mut |dev, disk, at, k| {
            let dst = buf.get_mut(at..at + k).ok_or(corrupt("read range", 0))?;
            read_bytes(dev, disk, dst).map_err(io)
        })?;
        Ok(n as usize)
    }

    /// Overwrite bytes `offset..offset + data.len()` of file `node` where they are stored,
    /// as GRUB's `save_env` does: no allocation, no directory entry change, the size stays.
    /// Refused (nothing written) past the end of the file. The bytes are read back and
    /// compared after the write.
    pub fn write_in_place(&mut self, node: &Node, offset: u64, data: &[u8]) -> Result<(), FsError> {
        if node.kind != NodeKind::File {
            return Err(FsError::Unsupported { fs: FS, what: "writing in place to anything but a file" });
        }
        let end = offset.checked_add(data.len() as u64).filter(|&e| e <= node.size);
        if end.is_none() {
            return Err(FsError::Unsupported { fs: FS, what: "writing past the end of a file" });
        }
        // Map the whole range first: a broken chain refuses before anything is written.
        self.for_extents(node, offset, data.len() as u64, &mut |_, _, _, _| Ok(()))?;
        self.for_extents(node, offset, data.len() as u64, &mut |dev, disk, at, k| {
            let chunk = data.get(at..at + k).ok_or(corrupt("write range", 0))?;
            write_bytes(dev, disk, chunk).map_err(io)?;
            let mut back = vec![0u8; k];
            read_bytes(dev, disk, &mut back).map_err(io)?;
            if back != chunk {
                return Err(io(BlockError::Broken("the bytes read back differ from those written")));
            }
            Ok(())
        })
    }
}

impl<D: BlockDevice> Tree for Fat<D> {
    type Node = Node;
    fn fs_name(&self) -> &'static str {
        FS
    }
    fn root(&mut self) -> Result<Node, FsError> {
        Ok(self.root_node())
    }
    fn node_kind(&self, node: &Node) -> NodeKind {
        node.kind
    }
    fn child(&mut self, dir: &Node, name: &[u8]) -> Result<Node, FsError> {
        let name = core::str::from_utf8(name).map_err(|_| FsError::NotFound { fs: FS })?;
        let mut found = None;
        self.walk_dir(dir, &mut |i| match i {
            Item::Entry(e) if same_name(&e.name, name) || same_name(&e.short, name) => {
                found = Some(Self::node_of(&e));
                true
            }
            _ => false,
        })?;
        found.ok_or(FsError::NotFound { fs: FS })
    }
    fn link_target(&mut self, _link: &Node) -> Result<Vec<u8>, FsError> {
        Err(FsError::NotASymlink { fs: FS })
    }
}

impl Filesystem for Fat<Box<dyn BlockDevice>> {
    fn kind(&self) -> &'static str {
        FS
    }
    fn uuid(&self) -> String {
        self.uuid_string()
    }
    fn label(&self) -> String {
        self.label.clone()
    }
    fn lookup(&mut self, path: &str) -> Result<Node, FsError> {
        Fat::lookup(self, path)
    }
    fn read_at(&mut self, node: &Node, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        Fat::read_at(self, node, offset, buf)
    }
    fn read_dir(&mut self, node: &Node) -> Result<Vec<String>, FsError> {
        Ok(self.entries(node)?.into_iter().map(|e| e.name).collect())
    }
    fn read_link(&mut self, path: &str) -> Result<String, FsError> {
        Fat::lookup(self, path)?;
        Err(FsError::NotASymlink { fs: FS })
    }
    fn write_in_place(&mut self, node: &Node, offset: u64, data: &[u8]) -> Result<(), FsError> {
        Fat::write_in_place(self, node, offset, data)
    }
    fn into_device(self: Box<Self>) -> Box<dyn BlockDevice> {
        self.into_inner()
    }
}
