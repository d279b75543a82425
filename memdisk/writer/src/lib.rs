// SPDX-License-Identifier: MIT OR Apache-2.0
//! The memdisk writer (host side): a deterministic ustar archive.
//!
//! Same files in, same bytes out: entries are sorted by path (except `rxen.toml`, the
//! boot policy, which comes last), every parent directory is emitted once before its
//! contents, and owner, group and mtime are 0. Built on the `tar`
//! crate's ustar headers; the loader reads the result with `rxen_memdisk::ustar`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Why a file cannot go into the memdisk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError(String);

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WriteError {}

/// The entry written last: the boot policy.
pub const LAST: &str = "rxen.toml";

/// Collects files, then writes them as one archive.
#[derive(Debug, Default, Clone)]
pub struct MemdiskBuilder {
    files: BTreeMap<String, Vec<u8>>,
}

fn check_path(path: &str) -> Result<String, WriteError> {
    let p = path.trim_start_matches('/');
    if p.is_empty() || p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(WriteError(format!("{path:?}: not a valid memdisk path (empty, \".\" or \"..\" component)")));
    }
    // Let tar's ustar header decide whether name/prefix can hold it.
    tar::Header::new_ustar()
        .set_path(p)
        .map_err(|e| WriteError(format!("{path}: path does not fit a ustar header ({e})")))?;
    Ok(p.to_owned())
}

impl MemdiskBuilder {
    /// An empty memdisk.
    pub fn new() -> MemdiskBuilder {
        MemdiskBuilder::default()
    }

    /// Add a regular file at `path` (a leading `/` is dropped). A path added twice, or one
    /// that is also a parent directory of another file, is an error.
    pub fn add_file(&mut self, path: &str, data: Vec<u8>) -> Result<(), WriteError> {
        let p = check_path(path)?;
        if self.files.contains_key(&p) {
            return Err(WriteError(format!("{p}: added twice")));
        }
        let as_dir = format!("{p}/");
        if self.files.keys().any(|k| k.starts_with(&as_dir)) || parents(&p).any(|d| self.files.contains_key(d)) {
            return Err(WriteError(format!("{p}: a path is used both as a file and as a directory")));
        }
        self.files.insert(p, data);
        Ok(())
    }

    /// The file paths added so far, sorted.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The archive bytes: directories and files in sorted path order (`rxen.toml` last),
    /// then two zero blocks.
    pub fn finish(self) -> Vec<u8> {
        let dirs: BTreeSet<&str> = self.files.keys().flat_map(|p| parents(p)).collect();
        let mut all: Vec<(&str, Option<&Vec<u8>>)> = dirs.into_iter().map(|d| (d, None)).collect();
        all.extend(self.files.iter().map(|(p, d)| (p.as_str(), Some(d))));
        // Sort so that "a/" comes right before "a/..." and after "a.txt"'s siblings alike;
        // the boot policy last, so that images differing only in their policy share every
        // byte (and the memdisk hash state) before it (`rxen-mkimage batch`).
        all.sort_by(|a, b| {
            (a.0 == LAST).cmp(&(b.0 == LAST)).then(a.0.cmp(b.0)).then(a.1.is_some().cmp(&b.1.is_some()))
        });
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in all {
            let mut h = tar::Header::new_ustar();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            // Paths were checked by add_file (and parents of a valid path are valid).
            let r = match data {
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    h.set_path(format!("{path}/")).and_then(|()| {
                        h.set_cksum();
                        b.append(&h, std::io::empty())
                    })
                }
                Some(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    h.set_size(d.len() as u64);
                    h.set_path(path).and_then(|()| {
                        h.set_cksum();
                        b.append(&h, &d[..])
                    })
                }
            };
            r.expect("writing a checked path into a Vec cannot fail");
        }
        b.into_inner().expect("finishing a tar in a Vec cannot fail")
    }
}

/// The parent directories of `p`: "a/b/c" gives "a", "a/b".
fn parents(p: &str) -> impl Iterator<Item = &str> {
    p.match_indices('/').map(move |(i, _)| &p[..i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rxen_memdisk::ustar::{Archive, EntryKind};

    #[test]
    fn writes_dirs_sorted_and_reads_back() {
        let mut b = MemdiskBuilder::new();
        b.add_file("/boot/vmlinuz", vec![1; 700]).unwrap();
        b.add_file("rxen.toml", b"version = 1\n".to_vec()).unwrap();
        b.add_file("boot/initrd.img", vec![2; 10]).unwrap();
        let bytes = b.finish();
        assert_eq!(bytes.len() % 512, 0);
        let ar = Archive::new(&bytes);
        let list: Vec<_> = ar.entries().map(|e| e.unwrap()).map(|e| (e.path().to_string(), e.kind())).collect();
        assert_eq!(
            list,
            [
                ("boot".to_string(), EntryKind::Directory),
                ("boot/initrd.img".to_string(), EntryKind::File),
                ("boot/vmlinuz".to_string(), EntryKind::File),
                ("rxen.toml".to_string(), EntryKind::File),
            ]
        );
        assert_eq!(ar.file("boot/vmlinuz").unwrap(), &[1; 700][..]);
    }

    #[test]
    fn rejects_bad_paths() {
        let mut b = MemdiskBuilder::new();
        assert!(b.add_file("", vec![]).is_err());
        assert!(b.add_file("a/../b", vec![]).is_err());
        assert!(b.add_file("a//b", vec![]).is_err());
        b.add_file("a/b", vec![]).unwrap();
        assert!(b.add_file("a/b", vec![]).unwrap_err().to_string().contains("twice"));
        assert!(b.add_file("a", vec![]).is_err());
        assert!(b.add_file("a/b/c", vec![]).is_err());
        let long = "x".repeat(300);
        assert!(b.add_file(&long, vec![]).unwrap_err().to_string().contains("ustar"));
    }

    #[test]
    fn deterministic_regardless_of_insertion_order() {
        let mut a = MemdiskBuilder::new();
        a.add_file("z", vec![1]).unwrap();
        a.add_file("d/e", vec![2]).unwrap();
        let mut b = MemdiskBuilder::new();
        b.add_file("d/e", vec![2]).unwrap();
        b.add_file("z", vec![1]).unwrap();
        assert_eq!(a.finish(), b.finish());
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_.-]{1,20}".prop_filter("not . or ..", |s| s != "." && s != "..")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever the writer accepts, the no_std reader reads back byte for byte.
        #[test]
        fn round_trip(files in proptest::collection::btree_map(
            proptest::collection::vec(component(), 1..5).prop_map(|c| c.join("/")),
            proptest::collection::vec(any::<u8>(), 0..3000),
            0..12,
        )) {
            let mut b = MemdiskBuilder::new();
            let mut kept = BTreeMap::new();
            for (p, d) in &files {
                if b.add_file(p, d.clone()).is_ok() {
                    kept.insert(p.clone(), d.clone());
                }
            }
            let bytes = b.finish();
            let ar = Archive::new(&bytes);
            for (p, d) in &kept {
                prop_assert_eq!(ar.file(p).unwrap(), &d[..]);
            }
            let nfiles = ar.entries().map(|e| e.unwrap()).filter(|e| e.kind() == EntryKind::File).count();
            prop_assert_eq!(nfiles, kept.len());
        }
    }
}
