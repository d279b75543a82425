// SPDX-License-Identifier: MIT OR Apache-2.0
//! Filesystems the loader reads (and, for grubenv, rewrites a file's bytes in place),
//! behind one seam: [`Filesystem`], and the probe registry
//! [`FILESYSTEMS`] that asks each reader whether it recognises a volume.
//!
//! A new filesystem plugs in by implementing [`Filesystem`] over a `Box<dyn BlockDevice>`
//! and adding one [`FsDriver`] line to [`FILESYSTEMS`]; volumes, searches, the config
//! readers and file loading then see it with no other change.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::block::{BlockDevice, BlockError};

pub mod btrfs;
pub mod ext4;
pub mod fat;
pub mod iso9660;
pub mod path;
pub mod xfs;

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// A file or directory found by [`Filesystem::lookup`]: an opaque number the filesystem
/// gave it (ext4: the inode number), what it is and its size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub id: u64,
    pub kind: NodeKind,
    pub size: u64,
}

/// Why a filesystem operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    /// No such file or directory (the words of the filesystem that said so).
    NotFound { fs: &'static str },
    /// The filesystem cannot do this (e.g. a write where it only reads).
    Unsupported { fs: &'static str, what: &'static str },
    /// A path component (or the node given) is not a directory.
    NotADirectory { fs: &'static str },
    /// File bytes were asked of a directory.
    IsADirectory { fs: &'static str },
    /// A symlink's target was asked of something else.
    NotASymlink { fs: &'static str },
    /// More than [`path::MAX_SYMLINK_FOLLOWS`] symlinks in one lookup.
    SymlinkLoop { fs: &'static str },
    /// More than [`path::MAX_PATH_COMPONENTS`] components in one lookup (a directory loop).
    PathTooLong { fs: &'static str },
    /// Not this filesystem at all (the magic or a basic field is wrong).
    NotOurs { fs: &'static str, why: &'static str },
    /// The filesystem uses a feature this reader refuses (named as its tools name it).
    UnsupportedFeature { fs: &'static str, name: &'static str },
    /// A structure on disk is inconsistent: which one, and where (a block, sector or
    /// byte offset as the filesystem counts, 0 when there is no better place).
    Corrupt { fs: &'static str, what: &'static str, at: u64 },
    /// A checksum on disk does not match.
    Checksum { fs: &'static str, what: &'static str, at: u64 },
    /// A walk over guest-controlled structures went past its budget (a cycle).
    Budget { fs: &'static str, what: &'static str },
    /// The device failed.
    Io { fs: &'static str, err: BlockError },
    /// ext2/3/4's own error.
    Ext4(ext4::Ext4Error),
}

impl FsError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, FsError::NotFound { .. })
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::NotFound { fs } => write!(f, "{fs}: no such file or directory"),
            FsError::Unsupported { fs, what } => write!(f, "{fs}: {what} is not supported"),
            FsError::NotADirectory { fs } => write!(f, "{fs}: not a directory"),
            FsError::IsADirectory { fs } => write!(f, "{fs}: is a directory"),
            FsError::NotASymlink { fs } => write!(f, "{fs}: not a symbolic link"),
            FsError::SymlinkLoop { fs } => {
                write!(f, "{fs}: more than {} symbolic links in a path", path::MAX_SYMLINK_FOLLOWS)
            }
            FsError::PathTooLong { fs } => {
                write!(f, "{fs}: more than {} components in a path", path::MAX_PATH_COMPONENTS)
            }
            FsError::NotOurs { fs, why } => write!(f, "{fs}: not this filesystem: {why}"),
            FsError::UnsupportedFeature { fs, name } => write!(f, "{fs}: unsupported feature: {name}"),
            FsError::Corrupt { fs, what, at } => {
                write!(f, "{fs}: corrupt filesystem: {what}")?;
                if *at != 0 { write!(f, " (at {at})") } else { Ok(()) }
            }
            FsError::Checksum { fs, what, at } => write!(f, "{fs}: checksum mismatch: {what} (at {at})"),
            FsError::Budget { fs, what } => write!(f, "{fs}: {what}: more than the reader allows (a cycle?)"),
            FsError::Io { fs, err } => write!(f, "{fs}: {err}"),
            FsError::Ext4(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for FsError {}

/// A mounted filesystem: what boot configurations and kernels need of it. Paths are
/// absolute, `/`-separated; [`Filesystem::lookup`] follows symlinks.
pub trait Filesystem {
    /// The registry name (`ext4`).
    fn kind(&self) -> &'static str;
    /// Filesystem UUID as blkid prints it.
    fn uuid(&self) -> String;
    fn label(&self) -> String;
    /// Things worth telling the user that did not stop the mount.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// What `path` names, symlinks followed.
    fn lookup(&mut self, path: &str) -> Result<Node, FsError>;
    /// Bytes of file `node` from `offset` into `buf`; returns how many (0 at the end).
    fn read_at(&mut self, node: &Node, offset: u64, buf: &mut [u8]) -> Result<usize, FsError>;
    /// The names in directory `node`, in the filesystem's order (`.` and `..` included
    /// when the filesystem stores them).
    fn read_dir(&mut self, node: &Node) -> Result<Vec<String>, FsError>;
    /// The target of the symlink at `path` (not followed).
    fn read_link(&mut self, path: &str) -> Result<String, FsError>;
    /// Rewrite `data` over file bytes that already exist, in place (the grubenv update).
    /// Optional: filesystems without it refuse.
    fn write_in_place(&mut self, node: &Node, offset: u64, data: &[u8]) -> Result<(), FsError> {
        let _ = (node, offset, data);
        Err(FsError::Unsupported { fs: self.kind(), what: "writing in place" })
    }
    /// Other roots the filesystem can show as `/` (btrfs: its top-level subvolumes, by the
    /// names `subvol=` takes), for a configuration search that finds nothing at the
    /// default one: Fedora keeps `/boot` inside the `root` subvolume.
    fn alternate_roots(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Show `root` (one of [`Filesystem::alternate_roots`]; `""`: the default) as `/`.
    fn set_root(&mut self, root: &str) -> Result<(), FsError> {
        let _ = root;
        Err(FsError::Unsupported { fs: self.kind(), what: "another root" })
    }
    /// Give the device back.
    fn into_device(self: Box<Self>) -> Box<dyn BlockDevice>;
}

/// A reader's mount function.
pub type MountFn = fn(Box<dyn BlockDevice>) -> Result<Box<dyn Filesystem>, FsError>;

/// One filesystem reader in the registry.
pub struct FsDriver {
    /// `ext4`.
    pub name: &'static str,
    /// For messages: `ext2/3/4`.
    pub long_name: &'static str,
    /// Cheap check of the magic: is this volume ours?
    pub probe: fn(&mut dyn BlockDevice) -> bool,
    /// Mount it: read and check what every later operation relies on.
    pub mount: MountFn,
}

/// Every filesystem rxen reads, asked in order.
pub static FILESYSTEMS: &[FsDriver] = &[
    FsDriver { name: "ext4", long_name: "ext2/3/4", probe: |dev| ext4::probe(dev), mount: ext4::mount },
    FsDriver { name: "xfs", long_name: "XFS", probe: |dev| xfs::probe(dev), mount: xfs::mount },
    FsDriver { name: "btrfs", long_name: "btrfs", probe: |dev| btrfs::probe(dev), mount: btrfs::mount },
    FsDriver { name: "iso9660", long_name: "ISO9660", probe: |dev| iso9660::probe(dev), mount: iso9660::mount },
    // Last: the FAT probe is a plausibility check of the boot sector, not a magic.
    FsDriver { name: "fat", long_name: "FAT12/16/32", probe: |dev| fat::probe(dev), mount: fat::mount },
];

/// Why [`mount`] found no filesystem.
#[derive(Debug)]
pub enum MountError {
    /// No reader recognised the volume.
    Unrecognised,
    /// A reader recognised it but could not mount it.
    Unusable { long_name: &'static str, cause: FsError },
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountError::Unrecognised => f.write_str("no filesystem rxen reads"),
            MountError::Unusable { long_name, cause } => write!(f, "{long_name} filesystem not usable: {cause}"),
        }
    }
}

/// Ask each reader of [`FILESYSTEMS`] whether it recognises `dev`, and mount it with the
/// first that does.
pub fn mount(mut dev: Box<dyn BlockDevice>) -> Result<Box<dyn Filesystem>, MountError> {
    for d in FILESYSTEMS {
        if (d.probe)(&mut *dev) {
            return (d.mount)(dev).map_err(|cause| MountError::Unusable { long_name: d.long_name, cause });
        }
    }
    Err(MountError::Unrecognised)
}

/// Read the whole of `node` into `buf` (exactly `buf.len()` bytes); `Ok(n < len)` when
/// the file ended early.
pub fn read_exact(fs: &mut dyn Filesystem, node: &Node, buf: &mut [u8]) -> Result<usize, FsError> {
    let mut done = 0usize;
    while done < buf.len() {
        let n = fs.read_at(node, done as u64, &mut buf[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}
