// SPDX-License-Identifier: MIT OR Apache-2.0
//! Path lookup shared by the filesystem readers: split an absolute path, walk it one
//! directory at a time, follow symlinks (absolute ones from the root, relative ones from
//! the directory holding the link) and resolve `..` by the walk's own ancestry, so a
//! filesystem only answers "the child named N of directory D" and "the target of link L".
//!
//! Every walk is bounded: [`MAX_SYMLINK_FOLLOWS`] links and [`MAX_PATH_COMPONENTS`]
//! components, symlink expansions included, so a directory or link loop in guest data
//! ends in [`FsError::SymlinkLoop`] or [`FsError::PathTooLong`].

use alloc::vec::Vec;

use super::{FsError, NodeKind};

/// Symlinks followed in one lookup before giving up (Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINK_FOLLOWS: u32 = 40;
/// Path components walked in one lookup, symlink expansions included.
pub const MAX_PATH_COMPONENTS: usize = 256;
/// Longest symlink target (`PATH_MAX`).
pub const MAX_SYMLINK_LEN: u64 = 4096;
/// Longest name of one component (every filesystem rxen reads stores at most 255 bytes).
pub const MAX_NAME_LEN: usize = 255;

/// What a filesystem gives the walker.
pub trait Tree {
    /// A resolved file or directory, as the filesystem identifies it.
    type Node: Clone;
    /// For messages: the registry name.
    fn fs_name(&self) -> &'static str;
    fn root(&mut self) -> Result<Self::Node, FsError>;
    fn node_kind(&self, node: &Self::Node) -> NodeKind;
    /// The entry `name` (never `.`, `..` or empty) of directory `dir`;
    /// [`FsError::NotFound`] when there is none.
    fn child(&mut self, dir: &Self::Node, name: &[u8]) -> Result<Self::Node, FsError>;
    /// The target of symlink `link`, at most [`MAX_SYMLINK_LEN`] bytes.
    fn link_target(&mut self, link: &Self::Node) -> Result<Vec<u8>, FsError>;
}

/// Resolve absolute `path` (`/` is the root), following symlinks everywhere, or everywhere
/// but the last component when `follow_last` is false.
pub fn resolve<T: Tree + ?Sized>(t: &mut T, path: &str, follow_last: bool) -> Result<T::Node, FsError> {
    let fs = t.fs_name();
    let root = t.root()?;
    // The directories from the root down to the current one.
    let mut ancestry: Vec<T::Node> = Vec::new();
    let mut cur = root.clone();
    // Components still to walk, last one first.
    let mut pending: Vec<Vec<u8>> = Vec::new();
    push_components(fs, &mut pending, path.as_bytes())?;
    let (mut follows, mut steps) = (0u32, 0usize);
    while let Some(name) = pending.pop() {
        steps += 1;
        if steps > MAX_PATH_COMPONENTS {
            return Err(FsError::PathTooLong { fs });
        }
        if t.node_kind(&cur) != NodeKind::Dir {
            return Err(FsError::NotADirectory { fs });
        }
        if name == b".." {
            if let Some(up) = ancestry.pop() {
                cur = up;
            }
            continue;
        }
        if name.len() > MAX_NAME_LEN {
            return Err(FsError::NotFound { fs });
        }
        let next = t.child(&cur, &name)?;
        if t.node_kind(&next) == NodeKind::Symlink && (follow_last || !pending.is_empty()) {
            follows += 1;
            if follows > MAX_SYMLINK_FOLLOWS {
                return Err(FsError::SymlinkLoop { fs });
            }
            let target = t.link_target(&next)?;
            if target.is_empty() {
                return Err(FsError::NotFound { fs });
            }
            if target.first() == Some(&b'/') {
                ancestry.clear();
                cur = root.clone();
            }
            push_components(fs, &mut pending, &target)?;
            continue;
        }
        if ancestry.len() >= MAX_PATH_COMPONENTS {
            return Err(FsError::PathTooLong { fs });
        }
        ancestry.push(core::mem::replace(&mut cur, next));
    }
    Ok(cur)
}

/// Push the components of `path` onto `pending` so that its first component pops first.
fn push_components(fs: &'static str, pending: &mut Vec<Vec<u8>>, path: &[u8]) -> Result<(), FsError> {
    let parts: Vec<&[u8]> = path.split(|&c| c == b'/').filter(|p| !p.is_empty() && *p != b".").collect();
    if pending.len() + parts.len() > MAX_PATH_COMPONENTS {
        return Err(FsError::PathTooLong { fs });
    }
    pending.extend(parts.iter().rev().map(|p| p.to_vec()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    /// A tree in memory: (name, parent, kind, link target).
    struct Mem(Vec<(&'static str, usize, NodeKind, &'static str)>);

    impl Tree for Mem {
        type Node = usize;
        fn fs_name(&self) -> &'static str {
            "mem"
        }
        fn root(&mut self) -> Result<usize, FsError> {
            Ok(0)
        }
        fn node_kind(&self, n: &usize) -> NodeKind {
            self.0[*n].2
        }
        fn child(&mut self, dir: &usize, name: &[u8]) -> Result<usize, FsError> {
            self.0
                .iter()
                .enumerate()
                .skip(1)
                .find(|(_, e)| e.1 == *dir && e.0.as_bytes() == name)
                .map(|(i, _)| i)
                .ok_or(FsError::NotFound { fs: "mem" })
        }
        fn link_target(&mut self, n: &usize) -> Result<Vec<u8>, FsError> {
            Ok(self.0[*n].3.as_bytes().to_vec())
        }
    }

    fn tree() -> Mem {
        use NodeKind::*;
        Mem(vec![
            ("", 0, Dir, ""),
            ("boot", 0, Dir, ""),
            ("vmlinuz", 1, File, ""),
            ("grub", 1, Dir, ""),
            ("up", 3, Symlink, "../vmlinuz"),
            ("abs", 0, Symlink, "/boot/grub/up"),
            ("loop", 0, Symlink, "/loop"),
            ("self", 1, Symlink, "."),
        ])
    }

    #[test]
    fn walks_follows_and_climbs() {
        let mut t = tree();
        assert_eq!(resolve(&mut t, "/", true), Ok(0));
        assert_eq!(resolve(&mut t, "/boot/vmlinuz", true), Ok(2));
        assert_eq!(resolve(&mut t, "//boot/./grub/../vmlinuz", true), Ok(2));
        assert_eq!(resolve(&mut t, "/boot/grub/up", true), Ok(2));
        assert_eq!(resolve(&mut t, "/boot/grub/up", false), Ok(4));
        assert_eq!(resolve(&mut t, "/abs", true), Ok(2));
        assert_eq!(resolve(&mut t, "/../../boot/self/self/vmlinuz", true), Ok(2));
    }

    #[test]
    fn loops_and_bad_paths_are_named() {
        let mut t = tree();
        assert_eq!(resolve(&mut t, "/loop", true), Err(FsError::SymlinkLoop { fs: "mem" }));
        assert_eq!(resolve(&mut t, "/boot/vmlinuz/x", true), Err(FsError::NotADirectory { fs: "mem" }));
        assert_eq!(resolve(&mut t, "/nope", true), Err(FsError::NotFound { fs: "mem" }));
        let long: String = core::iter::repeat_n("boot/..", 300).collect::<Vec<_>>().join("/");
        assert_eq!(resolve(&mut t, &long, true), Err(FsError::PathTooLong { fs: "mem" }));
        let name: String = core::iter::repeat_n('x', 256).collect();
        assert_eq!(resolve(&mut t, &name, true), Err(FsError::NotFound { fs: "mem" }));
    }
}
