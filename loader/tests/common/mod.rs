// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the filesystem fixture tests share: a host file as a [`BlockDevice`] (images
//! are read where they are, not loaded whole), and the comparison of a mounted
//! filesystem, through the registry's [`Filesystem`] seam, with the tree it was made from.
#![allow(dead_code)]

pub mod powercut;

use std::os::unix::fs::FileExt;
use std::path::Path;

use rxen_loader::block::{BlockDevice, BlockError};
use rxen_loader::fs::{Filesystem, NodeKind};

/// A disk image file read with `pread`: `block_size` bytes per block, from `offset` on.
pub struct FileDisk {
    file: std::fs::File,
    offset: u64,
    blocks: u64,
    block_size: u32,
    writable: bool,
}

impl FileDisk {
    pub fn open(path: &Path, offset: u64, block_size: u32) -> Self {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let len = file.metadata().unwrap().len();
        FileDisk { file, offset, blocks: (len - offset) / u64::from(block_size), block_size, writable: false }
    }
    /// A writable copy of `path` at `copy`.
    pub fn copy(path: &Path, copy: &Path, block_size: u32) -> Self {
        std::fs::copy(path, copy).unwrap();
        let file = std::fs::OpenOptions::new().read(true).write(true).open(copy).unwrap();
        let len = file.metadata().unwrap().len();
        FileDisk { file, offset: 0, blocks: len / u64::from(block_size), block_size, writable: true }
    }
}

impl BlockDevice for FileDisk {
    fn block_size(&self) -> u32 {
        self.block_size
    }
    fn num_blocks(&self) -> u64 {
        self.blocks
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let n = buf.len() as u64 / u64::from(self.block_size);
        if lba + n > self.blocks {
            return Err(BlockError::OutOfRange { lba, blocks: n, device_blocks: self.blocks });
        }
        self.file
            .read_exact_at(buf, self.offset + lba * u64::from(self.block_size))
            .map_err(|_| BlockError::Device { status: 1 })
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        if !self.writable {
            return Err(BlockError::ReadOnly);
        }
        self.file
            .write_all_at(buf, self.offset + lba * u64::from(self.block_size))
            .map_err(|_| BlockError::Device { status: 1 })
    }
}

/// Mount `img` (from byte `offset`, in `block_size` device blocks) through the registry.
pub fn mount(img: &Path, offset: u64, block_size: u32) -> Box<dyn Filesystem> {
    rxen_loader::fs::mount(Box::new(FileDisk::open(img, offset, block_size)))
        .unwrap_or_else(|e| panic!("{}: {e}", img.display()))
}

/// What a host path is, as the loader names it.
fn host_kind(t: std::fs::FileType) -> NodeKind {
    if t.is_symlink() {
        NodeKind::Symlink
    } else if t.is_dir() {
        NodeKind::Dir
    } else {
        NodeKind::File
    }
}

/// Compare `fs` under `path` with the host tree at `host`: the listing (less `.`, `..`
/// and, on both sides, the names in `skip`), every file's bytes (whole, and an unaligned read in the
/// middle, nothing at the end), every symlink's target. Returns how many files matched.
pub fn compare_tree(fs: &mut dyn Filesystem, host: &Path, path: &str, skip: &[&str]) -> usize {
    let dir = fs.lookup(if path.is_empty() { "/" } else { path }).unwrap_or_else(|e| panic!("{path}/: {e}"));
    assert_eq!(dir.kind, NodeKind::Dir, "{path}/");
    let mut listed: Vec<String> = fs
        .read_dir(&dir)
        .unwrap_or_else(|e| panic!("{path}/: {e}"))
        .into_iter()
        .filter(|n| n != "." && n != ".." && !skip.contains(&n.as_str()))
        .collect();
    listed.sort();
    let mut expected: Vec<(String, NodeKind)> = std::fs::read_dir(host)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), host_kind(e.file_type().unwrap()))
        })
        .filter(|(n, _)| !skip.contains(&n.as_str()))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<String> = expected.iter().map(|e| e.0.clone()).collect();
    assert_eq!(listed, names, "listing of {path}/");
    let mut files = 0;
    for (name, kind) in expected {
        let p = format!("{path}/{name}");
        let h = host.join(&name);
        match kind {
            NodeKind::Dir => files += compare_tree(fs, &h, &p, skip),
            NodeKind::Symlink => {
                let target = std::fs::read_link(&h).unwrap();
                assert_eq!(fs.read_link(&p).unwrap_or_else(|e| panic!("{p}: {e}")), target.to_str().unwrap(), "{p}");
                if let Ok(meta) = std::fs::metadata(&h)
                    && meta.is_file()
                    && !target.is_absolute()
                {
                    let n = fs.lookup(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
                    let mut buf = vec![0u8; meta.len() as usize];
                    assert_eq!(rxen_loader::fs::read_exact(fs, &n, &mut buf).unwrap(), buf.len(), "{p}");
                    assert!(buf == std::fs::read(&h).unwrap(), "{p} via symlink");
                }
            }
            _ => {
                let n = fs.lookup(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
                assert_eq!(n.kind, NodeKind::File, "{p}");
                let want = std::fs::read(&h).unwrap();
                assert_eq!(n.size, want.len() as u64, "{p}");
                let mut got = vec![0xa5u8; want.len() + 100];
                assert_eq!(fs.read_at(&n, 0, &mut got).unwrap(), want.len(), "{p}");
                assert!(got[..want.len()] == want[..], "{p}: contents differ");
                if want.len() > 5000 {
                    let mut mid = vec![0u8; 3001];
                    assert_eq!(fs.read_at(&n, 1234, &mut mid).unwrap(), 3001, "{p}");
                    assert!(mid[..] == want[1234..4235], "{p}: unaligned read");
                }
                assert_eq!(fs.read_at(&n, want.len() as u64, &mut got).unwrap(), 0, "{p}: read at the end");
                files += 1;
            }
        }
    }
    files
}

/// `blkid -o value -s TAG img` (offset in bytes), or `None` without blkid.
pub fn blkid(img: &Path, offset: u64, tag: &str) -> Option<String> {
    let out = std::process::Command::new("blkid")
        .args(["-p", "-o", "value", "-s", tag, "-O", &offset.to_string()])
        .arg(img)
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
