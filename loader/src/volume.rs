// SPDX-License-Identifier: MIT OR Apache-2.0
//! Volumes: every (disk, partition) holding a filesystem the loader reads, named like
//! GRUB names them — `vda` (a whole-disk filesystem, common on Xen: `root=/dev/xvda`),
//! `vda,gpt2`, `vda,msdos5` — and found by filesystem UUID or label, partition UUID or
//! label, or a file they hold (GRUB's `search --fs-uuid/--label/--file`).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::block::BlockDevice;
use crate::config::policy::SearchKey;
use crate::fs::ext4::{Ext4, Ext4Error, FileKind};
use crate::part::{self, PartitionDevice};

/// A disk the loader found.
pub struct Disk {
    /// `vda`, `vdb`, ... (later `xvda`).
    pub name: String,
    /// What it is, for messages (driver, transport).
    pub desc: String,
    pub dev: Box<dyn BlockDevice>,
}

impl core::fmt::Debug for Disk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Disk({}: {})", self.name, self.desc)
    }
}

/// A filesystem on a disk or partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// `vda`, `vda,gpt2`, `vda,msdos5`: written `(vda,gpt2)` in paths.
    pub name: String,
    /// Index of its disk in the disk list.
    pub disk: usize,
    /// First block and block count on the disk.
    pub start_lba: u64,
    pub num_blocks: u64,
    /// `ext4` (ext2/3/4 alike).
    pub fs: &'static str,
    /// Filesystem UUID as blkid prints it.
    pub fs_uuid: String,
    pub label: String,
    pub part_uuid: Option<String>,
    pub part_label: Option<String>,
}

impl Volume {
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

/// Open the filesystem of `vol` on `disks`.
pub fn open<'d>(disks: &'d mut [Disk], vol: &Volume) -> Result<Ext4<PartitionDevice<&'d mut dyn BlockDevice>>, String> {
    let disk = disks.get_mut(vol.disk).ok_or_else(|| format!("({}): disk gone", vol.name))?;
    let dev: &'d mut dyn BlockDevice = &mut *disk.dev;
    Ext4::open(PartitionDevice::new(dev, vol.start_lba, vol.num_blocks)).map_err(|e| format!("({}): {e}", vol.name))
}

fn probe_volume(
    disks: &mut [Disk],
    disk: usize,
    name: String,
    start_lba: u64,
    num_blocks: u64,
    part: Option<&part::Partition>,
    log: &mut dyn FnMut(String),
) -> Option<Volume> {
    let dev: &mut dyn BlockDevice = &mut *disks[disk].dev;
    let mut pd = PartitionDevice::new(dev, start_lba, num_blocks);
    if !crate::fs::ext4::probe(&mut pd) {
        log(format!("({name}): no filesystem rxen reads"));
        return None;
    }
    match Ext4::open(pd) {
        Ok(fs) => {
            for w in fs.warnings() {
                log(format!("({name}): {w}"));
            }
            Some(Volume {
                name,
                disk,
                start_lba,
                num_blocks,
                fs: "ext4",
                fs_uuid: fs.uuid_string(),
                label: fs.label().to_string(),
                part_uuid: part.and_then(|p| p.part_uuid_string()),
                part_label: part.and_then(|p| p.label.clone()),
            })
        }
        Err(e) => {
            log(format!("({name}): ext2/3/4 filesystem not usable: {e}"));
            None
        }
    }
}

/// Find every volume on `disks`. Problems (a damaged table, a filesystem that does not
/// open) go to `log` and the scan goes on.
pub fn scan(disks: &mut [Disk], log: &mut dyn FnMut(String)) -> Vec<Volume> {
    let mut vols = Vec::new();
    for i in 0..disks.len() {
        let dname = disks[i].name.clone();
        let blocks = disks[i].dev.num_blocks();
        let table = match part::scan(&mut *disks[i].dev) {
            Ok(t) => t,
            Err(e) => {
                log(format!("({dname}): partition table: {e}"));
                continue;
            }
        };
        for w in &table.warnings {
            log(format!("({dname}): {w}"));
        }
        if table.scheme.is_none() {
            vols.extend(probe_volume(disks, i, dname.clone(), 0, blocks, None, log));
            continue;
        }
        for p in &table.partitions {
            let name = format!("{dname},{}", p.name());
            vols.extend(probe_volume(disks, i, name, p.start_lba, p.num_blocks, Some(p), log));
        }
    }
    vols
}

/// The first volume matching `key`.
pub fn search(disks: &mut [Disk], vols: &[Volume], key: &SearchKey) -> Option<usize> {
    let eq_ci = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    vols.iter().position(|v| match key {
        SearchKey::FsUuid(u) => eq_ci(&v.fs_uuid, u),
        SearchKey::Label(l) => &v.label == l,
        SearchKey::PartUuid(u) => v.part_uuid.as_deref().is_some_and(|p| eq_ci(p, u)),
        SearchKey::PartLabel(l) => v.part_label.as_deref() == Some(l.as_str()),
        SearchKey::File(path) => match open(disks, v) {
            Ok(mut fs) => fs.lookup(path).is_ok_and(|i| i.kind() == FileKind::File),
            Err(_) => false,
        },
    })
}

/// Guest memory to read files into.
pub trait GuestMemory {
    /// `len` bytes of free RAM (page aligned, below 4 GiB): its physical address and a
    /// slice over it, now owned by the caller for the rest of this boot attempt.
    fn alloc(&mut self, len: u64) -> Option<(u64, &'static mut [u8])>;
}

/// Largest file read from a disk (a kernel or an initrd).
pub const MAX_FILE: u64 = 1 << 30;

/// Why [`read_file`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadFileError {
    /// The file (or a directory on its path) is not there.
    NotFound(String),
    /// Anything else: I/O, corruption, no memory.
    Other(String),
}

/// Read the whole file `path` of `vol` into fresh guest memory.
pub fn read_file(
    disks: &mut [Disk],
    vol: &Volume,
    path: &str,
    mem: &mut dyn GuestMemory,
) -> Result<(u64, &'static [u8]), ReadFileError> {
    let other = ReadFileError::Other;
    let mut fs = open(disks, vol).map_err(other)?;
    let ino = fs.lookup(path).map_err(|e| {
        let m = format!("({}){path}: {e}", vol.name);
        if matches!(e, Ext4Error::NotFound) { ReadFileError::NotFound(m) } else { ReadFileError::Other(m) }
    })?;
    if ino.kind() != FileKind::File {
        return Err(other(format!("({}){path}: not a regular file", vol.name)));
    }
    let size = ino.size();
    if size > MAX_FILE {
        return Err(other(format!("({}){path}: {size} bytes is larger than the {MAX_FILE}-byte limit", vol.name)));
    }
    let (paddr, buf) =
        mem.alloc(size.max(1)).ok_or_else(|| other(format!("({}){path}: no free RAM for {size} bytes", vol.name)))?;
    let buf = &mut buf[..size as usize];
    let mut done = 0usize;
    while done < buf.len() {
        let n =
            fs.read_at(&ino, done as u64, &mut buf[done..]).map_err(|e| other(format!("({}){path}: {e}", vol.name)))?;
        if n == 0 {
            return Err(other(format!("({}){path}: file ended at {done} of {size} bytes", vol.name)));
        }
        done += n;
    }
    Ok((paddr, buf))
}
