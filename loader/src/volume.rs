// SPDX-License-Identifier: MIT OR Apache-2.0
//! Volumes: every (disk, partition) holding a filesystem the loader reads, named like
//! GRUB names them — `vda` (a whole-disk filesystem, common on Xen: `root=/dev/xvda`),
//! `vda,gpt2`, `vda,msdos5` — and found by filesystem UUID or label, partition UUID or
//! label, or a file they hold (GRUB's `search --fs-uuid/--label/--file`).
//!
//! A volume sits over a [`BlockDevice`] (today a partition view of a [`SharedDisk`]; an
//! LVM logical volume or an md mirror is one more kind of device) and is mounted once,
//! by the [`crate::fs`] registry, when the disks are scanned; every later read, stat,
//! list and search reuses that mount.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::block::{BlockDevice, SharedDisk};
use crate::fs::{self, Filesystem, FsError, NodeKind};
use crate::part::{self, PartitionDevice};

/// A disk the loader found.
pub struct Disk {
    /// `vda`, `xvda`, ...
    pub name: String,
    /// What it is, for messages (driver, transport).
    pub desc: String,
    pub dev: SharedDisk,
}

impl Disk {
    pub fn new(name: String, desc: String, dev: Box<dyn BlockDevice>) -> Disk {
        Disk { name, desc, dev: SharedDisk::new(dev) }
    }
}

impl fmt::Debug for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Disk({}: {})", self.name, self.desc)
    }
}

/// What a `search` step looks for (GRUB's `search --file/--fs-uuid/--label`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchKey {
    /// `file = "/vmlinuz"`: the first volume holding this file.
    File(String),
    /// `fs_uuid = "..."`: the filesystem UUID (as blkid prints it; case-insensitive).
    FsUuid(String),
    /// `label = "..."`: the filesystem label.
    Label(String),
    /// `part_uuid = "..."`: the partition's UUID (GPT unique GUID, or MBR `xxxxxxxx-NN`).
    PartUuid(String),
    /// `part_label = "..."`: the GPT partition name.
    PartLabel(String),
}

impl fmt::Display for SearchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SearchKey::File(v) => write!(f, "file {v}"),
            SearchKey::FsUuid(v) => write!(f, "fs_uuid {v}"),
            SearchKey::Label(v) => write!(f, "label {v:?}"),
            SearchKey::PartUuid(v) => write!(f, "part_uuid {v}"),
            SearchKey::PartLabel(v) => write!(f, "part_label {v:?}"),
        }
    }
}

/// What is known of a volume without reading it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeInfo {
    /// `vda`, `vda,gpt2`, `vda,msdos5`: written `(vda,gpt2)` in paths.
    pub name: String,
    /// Index of its disk in the disk list.
    pub disk: usize,
    /// First block and block count on the disk.
    pub start_lba: u64,
    pub num_blocks: u64,
    /// The registry name of its filesystem (`ext4` for ext2/3/4 alike).
    pub fs: &'static str,
    /// Filesystem UUID as blkid prints it.
    pub fs_uuid: String,
    pub label: String,
    pub part_uuid: Option<String>,
    pub part_label: Option<String>,
}

/// A mounted filesystem on a disk or partition.
pub struct Volume {
    pub info: VolumeInfo,
    pub fs: Box<dyn Filesystem>,
}

impl fmt::Debug for Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Volume({})", self.info.name)
    }
}

impl core::ops::Deref for Volume {
    type Target = VolumeInfo;
    fn deref(&self) -> &VolumeInfo {
        &self.info
    }
}

impl VolumeInfo {
    /// One line for `rxen.debug` and "nothing to boot" listings.
    pub fn describe(&self) -> String {
        let mut s = format!("({}) {} uuid {}", self.name, self.fs, self.fs_uuid);
        if !self.label.is_empty() {
            s += &format!(" label {:?}", self.label);
        }
        if let Some(u) = &self.part_uuid {
            s += &format!(" partuuid {u}");
        }
        if let Some(l) = self.part_label.as_ref().filter(|l| !l.is_empty()) {
            s += &format!(" partlabel {l:?}");
        }
        s
    }
}

fn probe_volume(
    disks: &[Disk],
    disk: usize,
    name: String,
    start_lba: u64,
    num_blocks: u64,
    part: Option<&part::Partition>,
    log: &mut dyn FnMut(String),
) -> Option<Volume> {
    let dev = Box::new(PartitionDevice::new(disks[disk].dev.clone(), start_lba, num_blocks));
    match fs::mount(dev) {
        Ok(fs) => {
            for w in fs.warnings() {
                log(format!("({name}): {w}"));
            }
            let info = VolumeInfo {
                name,
                disk,
                start_lba,
                num_blocks,
                fs: fs.kind(),
                fs_uuid: fs.uuid(),
                label: fs.label(),
                part_uuid: part.and_then(|p| p.part_uuid_string()),
                part_label: part.and_then(|p| p.label.clone()),
            };
            Some(Volume { info, fs })
        }
        Err(e) => {
            log(format!("({name}): {e}"));
            None
        }
    }
}

/// Find and mount every volume on `disks`. Problems (a damaged table, a filesystem that
/// does not mount) go to `log` and the scan goes on.
pub fn scan(disks: &[Disk], log: &mut dyn FnMut(String)) -> Vec<Volume> {
    let mut vols = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        let blocks = d.dev.num_blocks();
        let table = match part::scan(&mut d.dev.clone()) {
            Ok(t) => t,
            Err(e) => {
                log(format!("({}): partition table: {e}", d.name));
                continue;
            }
        };
        for w in &table.warnings {
            log(format!("({}): {w}", d.name));
        }
        if table.scheme.is_none() {
            vols.extend(probe_volume(disks, i, d.name.clone(), 0, blocks, None, log));
            continue;
        }
        for p in &table.partitions {
            let name = format!("{},{}", d.name, p.name());
            vols.extend(probe_volume(disks, i, name, p.start_lba, p.num_blocks, Some(p), log));
        }
    }
    vols
}

/// The first volume matching `key`.
pub fn search(vols: &mut [Volume], key: &SearchKey) -> Option<usize> {
    let eq_ci = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    vols.iter_mut().position(|v| match key {
        SearchKey::FsUuid(u) => eq_ci(&v.info.fs_uuid, u),
        SearchKey::Label(l) => &v.info.label == l,
        SearchKey::PartUuid(u) => v.info.part_uuid.as_deref().is_some_and(|p| eq_ci(p, u)),
        SearchKey::PartLabel(l) => v.info.part_label.as_deref() == Some(l.as_str()),
        SearchKey::File(path) => v.fs.lookup(path).is_ok_and(|n| n.kind == NodeKind::File),
    })
}

/// Guest memory to read files into.
pub trait GuestMemory {
    /// `len` bytes of free RAM (page aligned, below 4 GiB): its physical address and a
    /// slice over it, owned by the caller for the rest of this boot: never handed out
    /// again.
    fn alloc(&mut self, len: u64) -> Option<(u64, &'static mut [u8])>;
}

/// Largest file read from a disk (a kernel or an initrd).
pub const MAX_FILE: u64 = 1 << 30;

/// Why [`read_file`] (or a config read) failed: the volume and path, and the cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// `(vda,gpt2)/boot/vmlinuz`.
    pub file: String,
    pub cause: FileErrorCause,
}

/// See [`FileError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileErrorCause {
    Fs(FsError),
    NotAFile,
    TooLarge {
        size: u64,
        limit: u64,
    },
    /// A configuration larger than its reader takes.
    OverLimit {
        size: u64,
        limit: u64,
    },
    NoMemory {
        size: u64,
    },
    Short {
        done: u64,
        size: u64,
    },
}

impl FileError {
    /// The file (or a directory on its path) is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(&self.cause, FileErrorCause::Fs(e) if e.is_not_found())
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = &self.file;
        match &self.cause {
            FileErrorCause::Fs(e) => write!(f, "{file}: {e}"),
            FileErrorCause::NotAFile => write!(f, "{file}: not a regular file"),
            FileErrorCause::TooLarge { size, limit } => {
                write!(f, "{file}: {size} bytes is larger than the {limit}-byte limit")
            }
            FileErrorCause::OverLimit { size, limit } => {
                write!(f, "{file}: {size} bytes is more than the {limit}-byte limit")
            }
            FileErrorCause::NoMemory { size } => write!(f, "{file}: no free RAM for {size} bytes"),
            FileErrorCause::Short { done, size } => write!(f, "{file}: file ended at {done} of {size} bytes"),
        }
    }
}

impl Volume {
    fn err(&self, path: &str, cause: FileErrorCause) -> FileError {
        FileError { file: format!("({}){path}", self.info.name), cause }
    }

    /// Look up a regular file of at most `limit` bytes.
    pub fn file(&mut self, path: &str, limit: u64) -> Result<fs::Node, FileError> {
        self.file_within(path, limit, |size, limit| FileErrorCause::TooLarge { size, limit })
    }

    fn file_within(
        &mut self,
        path: &str,
        limit: u64,
        over: fn(u64, u64) -> FileErrorCause,
    ) -> Result<fs::Node, FileError> {
        let n = self.fs.lookup(path).map_err(|e| self.err(path, FileErrorCause::Fs(e)))?;
        if n.kind != NodeKind::File {
            return Err(self.err(path, FileErrorCause::NotAFile));
        }
        if n.size > limit {
            return Err(self.err(path, over(n.size, limit)));
        }
        Ok(n)
    }

    /// Read the whole file `path` into fresh guest memory.
    pub fn read_file(&mut self, path: &str, mem: &mut dyn GuestMemory) -> Result<(u64, &'static [u8]), FileError> {
        let n = self.file(path, MAX_FILE)?;
        let size = n.size;
        let (paddr, buf) = mem.alloc(size.max(1)).ok_or_else(|| self.err(path, FileErrorCause::NoMemory { size }))?;
        let buf = &mut buf[..size as usize];
        let done = fs::read_exact(&mut *self.fs, &n, buf).map_err(|e| self.err(path, FileErrorCause::Fs(e)))?;
        if done < buf.len() {
            return Err(self.err(path, FileErrorCause::Short { done: done as u64, size }));
        }
        Ok((paddr, buf))
    }

    /// Read a small file (a configuration) onto the heap; a file shorter than its size
    /// says is returned as far as it goes.
    pub fn read_small(&mut self, path: &str, limit: usize) -> Result<Vec<u8>, FileError> {
        let n = self.file_within(path, limit as u64, |size, limit| FileErrorCause::OverLimit { size, limit })?;
        let mut buf = alloc::vec![0u8; n.size as usize];
        let done = fs::read_exact(&mut *self.fs, &n, &mut buf).map_err(|e| self.err(path, FileErrorCause::Fs(e)))?;
        buf.truncate(done);
        Ok(buf)
    }
}
