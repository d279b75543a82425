// SPDX-License-Identifier: MIT OR Apache-2.0
//! Volumes: every (disk, partition) holding a filesystem the loader reads, named like
//! GRUB names them — `vda` (a whole-disk filesystem, common on Xen: `root=/dev/xvda`),
//! `vda,gpt2`, `vda,msdos5` — and found by filesystem UUID or label, partition UUID or
//! label, or a file they hold (GRUB's `search --fs-uuid/--label/--file`).
//!
//! md RAID1 arrays ([`md`]) are named `md/NAME` (`md0` for 0.90) and LVM logical
//! volumes ([`lvm`]) `lvm/VG-LV`, as GRUB names them; see docs/disks-volumes.md.
//!
//! A volume sits over a [`BlockDevice`] (a partition view of a [`SharedDisk`], or a
//! [`compose::Composed`] device mapping an array or LV onto its members) and is mounted once,
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

pub mod compose;
pub mod lvm;
pub mod md;

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
    /// Index in the disk list of the disk holding the volume's block 0, and that block's
    /// number there. For a partition or whole disk the volume is `num_blocks` contiguous
    /// blocks from there; an md array or LVM logical volume (`layout` is set) is not
    /// contiguous on any disk: these two only say where its block 0 is read from (the
    /// first leg of a mirror), for messages. Reads and writes always go through the
    /// volume's own device (`Volume::fs`), which maps them onto the members.
    pub disk: usize,
    pub start_lba: u64,
    /// Size of the volume, in its device's blocks.
    pub num_blocks: u64,
    /// The registry name of its filesystem (`ext4` for ext2/3/4 alike).
    pub fs: &'static str,
    /// Filesystem UUID as blkid prints it.
    pub fs_uuid: String,
    pub label: String,
    pub part_uuid: Option<String>,
    pub part_label: Option<String>,
    /// For an md array or LVM logical volume: what it is built from
    /// (`md raid1 over (vdd,gpt1) (vde,gpt1)`, `lvm over (vda,gpt2)`).
    pub layout: Option<String>,
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
        if let Some(l) = &self.layout {
            s += &format!(" ({l})");
        }
        s
    }
}

/// A block device a filesystem, an md superblock or an LVM label may be on: a whole
/// disk, a partition, an md array or an LVM logical volume.
struct Candidate {
    name: String,
    /// Where its block 0 lies (see [`VolumeInfo::disk`]).
    disk: usize,
    start_lba: u64,
    /// The device: `blocks` blocks of `dev` from `start`.
    dev: SharedDisk,
    start: u64,
    blocks: u64,
    part: Option<part::Partition>,
    layout: Option<String>,
    /// An md member or an LVM PV: its blocks belong to the composed device.
    claimed: bool,
}

impl Candidate {
    fn view(&self) -> PartitionDevice<SharedDisk> {
        PartitionDevice::new(self.dev.clone(), self.start, self.blocks)
    }
}

fn probe_volume(c: Candidate, log: &mut dyn FnMut(String)) -> Option<Volume> {
    let name = c.name.clone();
    match fs::mount(Box::new(c.view())) {
        Ok(fs) => {
            for w in fs.warnings() {
                log(format!("({name}): {w}"));
            }
            let info = VolumeInfo {
                name,
                disk: c.disk,
                start_lba: c.start_lba,
                num_blocks: c.blocks,
                fs: fs.kind(),
                fs_uuid: fs.uuid(),
                label: fs.label(),
                part_uuid: c.part.as_ref().and_then(|p| p.part_uuid_string()),
                part_label: c.part.as_ref().and_then(|p| p.label.clone()),
                layout: c.layout,
            };
            Some(Volume { info, fs })
        }
        Err(e) => {
            log(format!("({name}): {e}"));
            None
        }
    }
}

/// Find and mount every volume on `disks`: whole disks and partitions, then md RAID1
/// arrays assembled from them, then LVM logical volumes on any of those, and btrfs
/// filesystems over several of them (members by fsid). md members and
/// LVM PVs are not mounted themselves (a 0.90 or 1.0 RAID1 member also looks like a
/// filesystem from block 0: the array is preferred). Problems (a damaged table, a
/// filesystem that does not mount, an array or LV refused) go to `log` and the scan
/// goes on.
pub fn scan(disks: &[Disk], log: &mut dyn FnMut(String)) -> Vec<Volume> {
    let mut cands = Vec::new();
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
        let cand = |name, start, blocks, part| Candidate {
            name,
            disk: i,
            start_lba: start,
            dev: d.dev.clone(),
            start,
            blocks,
            part,
            layout: None,
            claimed: false,
        };
        if table.scheme.is_none() {
            cands.push(cand(d.name.clone(), 0, blocks, None));
            continue;
        }
        for p in &table.partitions {
            let name = format!("{},{}", d.name, p.name());
            cands.push(cand(name, p.start_lba, p.num_blocks, Some(p.clone())));
        }
    }

    // md arrays.
    let mut members = Vec::new();
    let mut member_of = Vec::new();
    for (ci, c) in cands.iter_mut().enumerate() {
        let mut view = c.view();
        match md::probe(&mut view) {
            Ok(None) => {}
            Ok(Some(sb)) => {
                c.claimed = true;
                members.push(md::Member { name: c.name.clone(), sb, dev: Box::new(view) });
                member_of.push(ci);
            }
            Err(e) => {
                c.claimed = true;
                log(format!("({}): {e}; not read", c.name));
            }
        }
    }
    for a in md::assemble(members, log) {
        let m = &cands[member_of[a.first]];
        let (disk, start_lba) = (m.disk, m.start_lba + a.first_offset);
        let blocks = a.dev.num_blocks();
        cands.push(Candidate {
            name: a.name,
            disk,
            start_lba,
            dev: SharedDisk::new(Box::new(a.dev)),
            start: 0,
            blocks,
            part: None,
            layout: Some(a.layout),
            claimed: false,
        });
    }

    // LVM physical volumes, then their logical volumes.
    let mut pvs = Vec::new();
    let mut pv_of = Vec::new();
    for (ci, c) in cands.iter_mut().enumerate().filter(|(_, c)| !c.claimed) {
        match lvm::probe(&mut c.view()) {
            Ok(None) => {}
            Ok(Some(label)) => {
                c.claimed = true;
                pvs.push(lvm::FoundPv {
                    name: c.name.clone(),
                    label,
                    dev: c.dev.clone(),
                    start: c.start,
                    blocks: c.blocks,
                });
                pv_of.push(ci);
            }
            Err(e) => {
                c.claimed = true;
                log(format!("({}): {e}; not read", c.name));
            }
        }
    }
    for lv in lvm::activate(&pvs, log) {
        let (disk, start_lba) = match lv.origin {
            Some((pi, block)) => {
                let pv = &cands[pv_of[pi]];
                (pv.disk, pv.start_lba + block)
            }
            None => (cands[pv_of[0]].disk, cands[pv_of[0]].start_lba),
        };
        let blocks = lv.dev.num_blocks();
        cands.push(Candidate {
            name: lv.name,
            disk,
            start_lba,
            dev: SharedDisk::new(Box::new(lv.dev)),
            start: 0,
            blocks,
            part: None,
            layout: Some(lv.layout),
            claimed: false,
        });
    }

    // btrfs filesystems over several devices: the members gathered by fsid across every
    // disk, mounted once as the first member's volume. Members of a filesystem that
    // does not mount so stay single volumes (a raid1 member reads alone).
    let mut groups: Vec<([u8; 16], Vec<usize>)> = Vec::new();
    for (ci, c) in cands.iter().enumerate().filter(|(_, c)| !c.claimed) {
        if let Some(fsid) = fs::btrfs::multi_device_fsid(&mut c.view()) {
            match groups.iter_mut().find(|g| g.0 == fsid) {
                Some(g) => g.1.push(ci),
                None => groups.push((fsid, alloc::vec![ci])),
            }
        }
    }
    let mut multi = Vec::new();
    for (_, members) in groups.into_iter().filter(|g| g.1.len() > 1) {
        let devs: Vec<Box<dyn BlockDevice>> =
            members.iter().map(|&i| Box::new(cands[i].view()) as Box<dyn BlockDevice>).collect();
        let names: Vec<String> = members.iter().map(|&i| format!("({})", cands[i].name)).collect();
        let first = &cands[members[0]];
        match fs::btrfs::Btrfs::open_multi(devs) {
            Ok(b) => {
                let layout = format!("btrfs over {}", names.join(" "));
                let fs: Box<dyn Filesystem> = Box::new(b);
                for w in fs.warnings() {
                    log(format!("({}): {w}", first.name));
                }
                let info = VolumeInfo {
                    name: first.name.clone(),
                    disk: first.disk,
                    start_lba: first.start_lba,
                    num_blocks: first.blocks,
                    fs: fs.kind(),
                    fs_uuid: fs.uuid(),
                    label: fs.label(),
                    part_uuid: first.part.as_ref().and_then(|p| p.part_uuid_string()),
                    part_label: first.part.as_ref().and_then(|p| p.label.clone()),
                    layout: Some(layout),
                };
                multi.push((members[0], Volume { info, fs }));
                for &i in &members {
                    cands[i].claimed = true;
                }
            }
            Err(e) => log(format!("btrfs over {}: {e}; each member read alone", names.join(" "))),
        }
    }

    // Every volume in candidate order, a multi-device btrfs where its first member was.
    let mut out = Vec::new();
    for (ci, c) in cands.into_iter().enumerate() {
        if let Some(k) = multi.iter().position(|(first, _)| *first == ci) {
            out.push(multi.swap_remove(k).1);
        } else if !c.claimed {
            out.extend(probe_volume(c, log));
        }
    }
    out
}

/// The first volume matching `key`; else why the volumes that could not be looked in
/// (a file search whose lookup failed for another reason than "not there": a broken
/// directory, a read error), as `(xvda,gpt1): CAUSE`, so that a "no volume matches" names
/// them.
pub fn search(disks: &[Disk], vols: &mut [Volume], key: &SearchKey) -> Result<usize, Vec<String>> {
    let mut unreadable = Vec::new();
    let found = vols.iter_mut().position(|v| {
        if let Some(why) = unusable(disks, &v.info) {
            unreadable.push(why);
            return false;
        }
        matches(v, key, &mut unreadable)
    });
    found.ok_or(unreadable)
}

/// Why volume `v` can no longer be read: the disk holding it gave up (a Xen ring or
/// virtio queue that timed out), though caches may still answer lookups. `None` for a
/// volume spread over several disks (md, LVM): its reads go through its members, and a
/// mirror may still have a good one.
pub fn unusable(disks: &[Disk], v: &VolumeInfo) -> Option<String> {
    if v.layout.is_some() {
        return None;
    }
    let why = disks.get(v.disk)?.dev.unusable()?;
    Some(alloc::format!("({}): the device is unusable: {why}", v.name))
}

/// Whether volume `v` matches `key`; lookup errors other than "not there" go to `unreadable`.
fn matches(v: &mut Volume, key: &SearchKey, unreadable: &mut Vec<String>) -> bool {
    let eq_ci = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    match key {
        SearchKey::FsUuid(u) => eq_ci(&v.info.fs_uuid, u),
        SearchKey::Label(l) => &v.info.label == l,
        SearchKey::PartUuid(u) => v.info.part_uuid.as_deref().is_some_and(|p| eq_ci(p, u)),
        SearchKey::PartLabel(l) => v.info.part_label.as_deref() == Some(l.as_str()),
        SearchKey::File(path) => match v.fs.lookup(path) {
            Ok(n) => n.kind == NodeKind::File,
            Err(e) if e.is_not_found() => false,
            Err(e) => {
                unreadable.push(alloc::format!("({}): {e}", v.name));
                false
            }
        },
    }
}

/// Guest memory to read files into.
pub trait GuestMemory {
    /// `len` bytes of free RAM (page aligned, below 4 GiB): its physical address and a
    /// slice over it, owned by the caller for the rest of this boot: never handed out
    /// again.
    fn alloc(&mut self, len: u64) -> Option<(u64, &'static mut [u8])>;
    /// Lend the loader's allocator `len` more bytes of RAM for a while (a decompressor's
    /// dictionary), until [`GuestMemory::end_scratch`] gives them back. False when there
    /// is no such RAM or the platform cannot grow its heap.
    fn scratch(&mut self, _len: u64) -> bool {
        false
    }
    /// End the loan of [`GuestMemory::scratch`] (everything allocated from it is freed).
    fn end_scratch(&mut self) {}
    /// Give back `[paddr, paddr + len)` from [`GuestMemory::alloc`], whose slice the caller
    /// no longer uses.
    fn free(&mut self, _paddr: u64, _len: u64) {}
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

#[cfg(test)]
mod search_tests {
    use super::*;
    use crate::block::BlockError;
    use crate::fs::{FsError, Node};

    /// A filesystem whose every lookup answers `r`.
    struct Answers(Result<Node, FsError>);

    impl Filesystem for Answers {
        fn kind(&self) -> &'static str {
            "ext4"
        }
        fn uuid(&self) -> String {
            String::new()
        }
        fn label(&self) -> String {
            String::new()
        }
        fn lookup(&mut self, _: &str) -> Result<Node, FsError> {
            self.0
        }
        fn read_at(&mut self, _: &Node, _: u64, _: &mut [u8]) -> Result<usize, FsError> {
            Ok(0)
        }
        fn read_dir(&mut self, _: &Node) -> Result<Vec<String>, FsError> {
            Ok(Vec::new())
        }
        fn read_link(&mut self, _: &str) -> Result<String, FsError> {
            Err(FsError::NotASymlink { fs: "ext4" })
        }
        fn into_device(self: Box<Self>) -> Box<dyn BlockDevice> {
            Box::new(crate::block::VecDisk::new(Vec::new(), 512))
        }
    }

    fn vol(name: &str, r: Result<Node, FsError>) -> Volume {
        let info = VolumeInfo {
            name: name.into(),
            disk: 0,
            start_lba: 0,
            num_blocks: 8,
            fs: "ext4",
            fs_uuid: String::new(),
            label: String::new(),
            part_uuid: None,
            part_label: None,
            layout: None,
        };
        Volume { info, fs: Box::new(Answers(r)) }
    }

    /// A file search names the volumes it could not look in (a read error, a broken
    /// directory), not only "no volume matches"; "not there" is no such reason.
    #[test]
    fn file_search_names_what_it_could_not_read() {
        let file = Ok(Node { id: 2, kind: NodeKind::File, size: 1 });
        let io = Err(FsError::Io { fs: "ext4", err: BlockError::Timeout });
        let key = SearchKey::File("/boot/vmlinuz".into());
        let mut vols = [vol("xvda,gpt1", io), vol("xvda,gpt2", Err(FsError::NotFound { fs: "ext4" }))];
        let why = search(&[], &mut vols, &key).unwrap_err();
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].starts_with("(xvda,gpt1): ext4: "), "{why:?}");
        let mut vols = [vol("xvda,gpt1", io), vol("xvda,gpt2", file)];
        assert_eq!(search(&[], &mut vols, &key), Ok(1));
    }

    /// A disk that gave up (a ring that timed out) is skipped by every search, by name,
    /// even when the volume's cached metadata still finds the file.
    #[test]
    fn search_skips_a_disk_that_gave_up() {
        struct GaveUp;
        impl BlockDevice for GaveUp {
            fn block_size(&self) -> u32 {
                512
            }
            fn num_blocks(&self) -> u64 {
                8
            }
            fn read_blocks(&mut self, _: u64, _: &mut [u8]) -> Result<(), BlockError> {
                Err(BlockError::Broken("a request timed out"))
            }
            fn unusable(&self) -> Option<&'static str> {
                Some("a request timed out")
            }
        }
        let disks = [
            Disk::new("xvda".into(), "test".into(), Box::new(GaveUp)),
            Disk::new("xvdb".into(), "test".into(), Box::new(crate::block::VecDisk::new(vec![0; 4096], 512))),
        ];
        let file = || Ok(Node { id: 2, kind: NodeKind::File, size: 1 });
        let mut on_b = vol("xvdb,gpt1", file());
        on_b.info.disk = 1;
        let mut vols = [vol("xvda,gpt1", file()), on_b];
        for key in [SearchKey::File("/boot/vmlinuz".into()), SearchKey::FsUuid(String::new())] {
            assert_eq!(search(&disks, &mut vols, &key), Ok(1), "{key:?}");
        }
        let mut vols = [vol("xvda,gpt1", file())];
        let why = search(&disks, &mut vols, &SearchKey::File("/boot/vmlinuz".into())).unwrap_err();
        assert_eq!(why, ["(xvda,gpt1): the device is unusable: a request timed out"]);
    }
}
