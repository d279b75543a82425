// SPDX-License-Identifier: MIT OR Apache-2.0
//! ext2/3/4 behind the [`Filesystem`] seam.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{Ext4, Ext4Error, FileKind, Inode};
use crate::block::BlockDevice;
use crate::fs::{Filesystem, FsError, Node, NodeKind};

impl From<Ext4Error> for FsError {
    fn from(e: Ext4Error) -> Self {
        match e {
            Ext4Error::NotFound => FsError::NotFound { fs: "ext4" },
            e => FsError::Ext4(e),
        }
    }
}

fn node(i: &Inode) -> Node {
    let kind = match i.kind() {
        FileKind::File => NodeKind::File,
        FileKind::Dir => NodeKind::Dir,
        FileKind::Symlink => NodeKind::Symlink,
        FileKind::Other => NodeKind::Other,
    };
    Node { id: u64::from(i.ino()), kind, size: i.size() }
}

/// The registry's mount function for ext2/3/4.
pub fn mount(dev: Box<dyn BlockDevice>) -> Result<Box<dyn Filesystem>, FsError> {
    Ok(Box::new(Ext4::open(dev)?))
}

impl Ext4<Box<dyn BlockDevice>> {
    fn inode_of(&mut self, n: &Node) -> Result<Inode, FsError> {
        let ino = u32::try_from(n.id).map_err(|_| FsError::Ext4(Ext4Error::NotFound))?;
        Ok(self.read_inode(ino)?)
    }
}

impl Filesystem for Ext4<Box<dyn BlockDevice>> {
    fn kind(&self) -> &'static str {
        "ext4"
    }
    fn uuid(&self) -> String {
        self.uuid_string()
    }
    fn label(&self) -> String {
        Ext4::label(self).to_string()
    }
    fn warnings(&self) -> Vec<String> {
        Ext4::warnings(self).to_vec()
    }
    fn lookup(&mut self, path: &str) -> Result<Node, FsError> {
        Ok(node(&Ext4::lookup(self, path)?))
    }
    fn read_at(&mut self, n: &Node, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let ino = self.inode_of(n)?;
        Ok(Ext4::read_at(self, &ino, offset, buf)?)
    }
    fn read_dir(&mut self, n: &Node) -> Result<Vec<String>, FsError> {
        let ino = self.inode_of(n)?;
        Ok(Ext4::read_dir(self, &ino)?.into_iter().map(|e| e.name).collect())
    }
    fn read_link(&mut self, path: &str) -> Result<String, FsError> {
        let ino = self.lookup_nofollow(path)?;
        Ok(Ext4::read_link(self, &ino)?)
    }
    fn write_in_place(&mut self, n: &Node, offset: u64, data: &[u8]) -> Result<(), FsError> {
        let ino = self.inode_of(n)?;
        Ok(Ext4::write_in_place(self, &ino, offset, data)?)
    }
    fn into_device(self: Box<Self>) -> Box<dyn BlockDevice> {
        self.into_inner()
    }
}
