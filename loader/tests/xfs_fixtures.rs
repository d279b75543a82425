// SPDX-License-Identifier: MIT OR Apache-2.0
//! The XFS reader against filesystems made by the real mkfs.xfs (`scripts/build-xfs-fixtures`):
//! every file, symlink and directory of the source tree must read back identically,
//! through the registry's probe and the `Filesystem` seam; hostile images must fail with
//! the error that names their damage.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{FileDisk, blkid, compare_tree, mount};
use rxen_loader::fs::{FsError, NodeKind};

fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let st = std::process::Command::new(root.join("scripts/build-xfs-fixtures")).status().expect("run script");
        assert!(st.success(), "scripts/build-xfs-fixtures failed");
        root.join(".cache/xfs")
    })
}

fn manifest() -> Vec<String> {
    std::fs::read_to_string(dir().join("manifest.txt"))
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn every_image_matches_its_tree() {
    let tree = dir().join("tree");
    let full = |i: &&String| !i.starts_with("bad-") && !i.starts_with("hostile-") && !i.starts_with("seed-");
    for img in manifest().iter().filter(full) {
        let path = dir().join(img);
        // 512-byte device blocks, and the 4 KiB ones a 4Kn disk has.
        for bs in [512u32, 4096] {
            if img.contains("4k-sectors") && bs == 512 {
                continue;
            }
            let mut fs = mount(&path, 0, bs);
            assert_eq!(fs.kind(), "xfs");
            assert_eq!(fs.uuid(), "3e8c1a55-7d2b-4f6e-9a01-b2c3d4e5f607", "{img}");
            assert_eq!(fs.label(), "rxen-boot", "{img}");
            if let Some(u) = blkid(&path, 0, "UUID") {
                assert_eq!(fs.uuid(), u, "{img}: blkid's UUID");
            }
            assert!(fs.warnings().is_empty(), "{img}: {:?}", fs.warnings());
            let skip: &[&str] = if img.contains("64k") { &["frag", "dir-node"] } else { &[] };
            // The 64 KiB-block image was made without the two big directories.
            let files = compare_tree(&mut *fs, &tree, "", skip);
            assert!(files > 100, "{img}: {files} files");
            eprintln!("{img} ({bs}-byte device blocks): {files} files match");
        }
    }
}

#[test]
fn lookups_follow_links_and_name_errors() {
    let mut fs = mount(&dir().join("v5.img"), 0, 512);
    let k = fs.lookup("/vmlinuz-5.14.0-rxen").unwrap();
    assert_eq!(fs.lookup("/vmlinuz").unwrap(), k);
    assert_eq!(fs.lookup("/links/kernel").unwrap(), k);
    assert_eq!(fs.lookup("/links/long").unwrap(), k);
    assert_eq!(fs.lookup("/links/sizes/f1").unwrap().size, 1);
    assert_eq!(fs.lookup("/links/abs").unwrap().size, 10);
    assert_eq!(fs.lookup("/links/entries/../grub2/grubenv").unwrap_err(), FsError::NotFound { fs: "xfs" });
    assert_eq!(fs.lookup("/links/entries/../../grub2/grubenv").unwrap().size, 1024);
    assert_eq!(fs.lookup("/nope").unwrap_err(), FsError::NotFound { fs: "xfs" });
    assert_eq!(fs.lookup("/empty/x").unwrap_err(), FsError::NotADirectory { fs: "xfs" });
    let root = fs.lookup("/").unwrap();
    assert_eq!(root.kind, NodeKind::Dir);
    assert_eq!(fs.read_at(&root, 0, &mut [0u8; 4]).unwrap_err(), FsError::IsADirectory { fs: "xfs" });
    assert_eq!(fs.read_link("/vmlinuz").unwrap(), "vmlinuz-5.14.0-rxen");
    assert_eq!(fs.lookup("/links/loop").unwrap_err(), FsError::SymlinkLoop { fs: "xfs" });
    // Every entry of the btree-form directories found by name.
    for i in (0..2500).step_by(101) {
        let f = fs.lookup(&format!("/frag/file-{i:05}-padding-to-fill-directory-blocks")).unwrap();
        assert_eq!(f.size, 4096);
    }
    let d = fs.lookup("/dir-node").unwrap();
    assert_eq!(fs.read_dir(&d).unwrap().len(), 3002);
}

#[test]
fn grubenv_is_rewritten_in_place() {
    let tmp = std::env::temp_dir().join(format!("rxen-xfs-{}.img", std::process::id()));
    let disk = FileDisk::copy(&dir().join("v5.img"), &tmp, 512);
    let mut fs = rxen_loader::fs::mount(Box::new(disk)).unwrap();
    let env = fs.lookup("/grub2/grubenv").unwrap();
    let mut block = vec![b'#'; 1024];
    block[..26].copy_from_slice(b"# GRUB Environment Block\nx");
    fs.write_in_place(&env, 0, &block).unwrap();
    let mut back = vec![0u8; 1024];
    fs.read_at(&env, 0, &mut back).unwrap();
    assert_eq!(back, block);
    let e = fs.write_in_place(&env, 1000, &[0u8; 100]).unwrap_err();
    assert!(e.to_string().contains("past the end"), "{e}");
    drop(fs);
    // Linux's tools see the same bytes: xfs_db reads the file back from the copy.
    std::fs::remove_file(&tmp).unwrap();
}

#[test]
fn hostile_images_name_their_damage() {
    let t0 = Instant::now();
    let open = |img: &str| rxen_loader::fs::mount(Box::new(FileDisk::open(&dir().join(img), 0, 512)));
    let cases: &[(&str, &str)] = &[
        ("bad-sb-crc.img", "xfs: checksum mismatch: superblock"),
        ("bad-truncated.img", "filesystem is larger than the device"),
        ("bad-unknown-incompat.img", "an incompat feature newer than this reader"),
        ("bad-needsrepair.img", "needsrepair"),
        ("bad-realtime.img", "realtime"),
        ("bad-root-not-dir.img", "root inode is not a directory"),
    ];
    for (img, want) in cases {
        let e = open(img).err().unwrap_or_else(|| panic!("{img} mounted"));
        assert!(e.to_string().contains(want), "{img}: {e}");
    }
    // Damage past the mount: each is said when the damaged structure is read.
    let reads: &[(&str, &str, &str)] = &[
        ("hostile-inode-crc.img", "/vmlinuz-5.14.0-rxen", "checksum mismatch: inode"),
        ("hostile-extent-past-end.img", "/vmlinuz-5.14.0-rxen", "extent outside the filesystem"),
        ("hostile-bmbt-loop.img", "/frag/file-00007-padding-to-fill-directory-blocks", "block map btree"),
        ("hostile-dir-crc.img", "/dir-block/entry-00001-x", "checksum mismatch: directory block"),
        ("hostile-sf-overrun.img", "/dir-short/not-there", "shortform directory entry"),
    ];
    for (img, p, want) in reads {
        let mut fs = open(img).unwrap_or_else(|e| panic!("{img}: {e}"));
        let e = match fs.lookup(p) {
            Err(e) => e,
            Ok(n) => fs.read_at(&n, 0, &mut vec![0u8; 1 << 22]).err().unwrap_or_else(|| panic!("{img}: {p} read")),
        };
        assert!(e.to_string().contains(want), "{img}: {p}: {e}");
    }
    let fs = open("hostile-dirty-log.img").unwrap();
    assert!(fs.warnings().iter().any(|w| w.contains("log is dirty")), "{:?}", fs.warnings());
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
}
