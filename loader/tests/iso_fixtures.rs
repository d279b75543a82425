// SPDX-License-Identifier: MIT OR Apache-2.0
//! The ISO9660 reader against images made by `scripts/build-iso-fixtures` (xorriso, and
//! a python writer for what xorriso cannot make): mounted through the registry
//! ([`rxen_loader::fs::mount`]) on 512-, 2048- and 4096-byte device blocks, every file,
//! symlink and directory of the source tree must read back identically under the names
//! Linux would show (Rock Ridge, Joliet or lower-cased plain names); uuid and label must
//! be what blkid prints; hostile images must fail quickly with an error naming the cause.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rxen_loader::block::VecDisk;
use rxen_loader::fs::iso9660::{Iso9660, Names};
use rxen_loader::fs::{self, Filesystem, FsError, MountError, NodeKind};

fn isos() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let st = Command::new(root.join("scripts/build-iso-fixtures")).status().expect("run fixture script");
        assert!(st.success(), "scripts/build-iso-fixtures failed");
        root.join(".cache/iso")
    })
}

/// (image, tree, names) from the manifest.
fn manifest() -> Vec<(String, String, String)> {
    std::fs::read_to_string(isos().join("manifest.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_string(), w.next().unwrap().to_string(), w.next().unwrap().to_string())
        })
        .collect()
}

fn image(name: &str) -> Vec<u8> {
    std::fs::read(isos().join(name)).unwrap()
}

fn mount_bs(mut data: Vec<u8>, bs: u32) -> Result<Box<dyn Filesystem>, MountError> {
    data.resize(data.len().div_ceil(bs as usize) * bs as usize, 0);
    fs::mount(Box::new(VecDisk::new(data, bs)))
}

fn mount(name: &str) -> Box<dyn Filesystem> {
    let fs = mount_bs(image(name), 512).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(fs.kind(), "iso9660");
    fs
}

fn blkid(img: &Path, tag: &str) -> Option<String> {
    let out = Command::new("blkid").args(["-p", "-o", "value", "-s", tag]).arg(img).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim_end_matches('\n').to_string())
}

fn read_all(fs: &mut dyn Filesystem, path: &str) -> Vec<u8> {
    let n = fs.lookup(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut buf = vec![0u8; n.size as usize];
    assert_eq!(fs::read_exact(fs, &n, &mut buf).unwrap(), buf.len(), "{path}");
    buf
}

/// Compare the volume with the source tree `host` (`tree_root` is its top) under `path`.
fn compare(fs: &mut dyn Filesystem, tree_root: &Path, host: &Path, path: &str, plain: bool, files: &mut usize) {
    let dir = fs.lookup(if path.is_empty() { "/" } else { path }).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(dir.kind, NodeKind::Dir, "{path}");
    let listed = fs.read_dir(&dir).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&listed[..2], [".", ".."], "{path}/");
    let mut listed: Vec<String> = listed
        .into_iter()
        .skip(2)
        .filter(|n| !(path.is_empty() && (n == "RR_MOVED" || n == ".rr_moved" || n == "rr_moved")))
        .collect();
    listed.sort();
    let mut expected: Vec<(String, String)> = std::fs::read_dir(host)
        .unwrap()
        .map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            (if plain { n.to_lowercase() } else { n.clone() }, n)
        })
        .collect();
    expected.sort();
    assert_eq!(listed, expected.iter().map(|e| e.0.clone()).collect::<Vec<_>>(), "listing of {path}/");
    for (name, host_name) in expected {
        let p = format!("{path}/{name}");
        let h = host.join(&host_name);
        let meta = std::fs::symlink_metadata(&h).unwrap();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&h).unwrap();
            assert_eq!(fs.read_link(&p).unwrap_or_else(|e| panic!("{p}: {e}")), target.to_str().unwrap(), "{p}");
            // Following works exactly when the target is a file inside the tree.
            let inside = match target.strip_prefix("/") {
                Ok(rel) => tree_root.join(rel),
                Err(_) => host.join(&target),
            };
            match std::fs::metadata(&inside) {
                Ok(m) if m.is_file() => assert_eq!(read_all(fs, &p), std::fs::read(&inside).unwrap(), "{p} via link"),
                Ok(m) if m.is_dir() => assert_eq!(fs.lookup(&p).unwrap().kind, NodeKind::Dir, "{p}"),
                _ => assert!(fs.lookup(&p).is_err(), "{p} should not resolve"),
            }
        } else if meta.is_dir() {
            assert!(matches!(fs.read_link(&p), Err(FsError::NotASymlink { .. })), "{p}");
            compare(fs, tree_root, &h, &p, plain, files);
        } else {
            let n = fs.lookup(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
            let want = std::fs::read(&h).unwrap();
            assert_eq!((n.kind, n.size), (NodeKind::File, want.len() as u64), "{p}");
            let mut got = vec![0xa5u8; want.len() + 100];
            assert_eq!(fs.read_at(&n, 0, &mut got).unwrap(), want.len(), "{p}");
            assert!(got[..want.len()] == want[..], "{p}: contents differ");
            if want.len() > 5000 {
                let mut mid = vec![0u8; 3001];
                assert_eq!(fs.read_at(&n, 1234, &mut mid).unwrap(), 3001);
                assert!(mid[..] == want[1234..4235], "{p}: unaligned read");
            }
            assert_eq!(fs.read_at(&n, want.len() as u64, &mut got).unwrap(), 0, "{p}: read at the end");
            *files += 1;
        }
    }
}

#[test]
fn every_image_matches_its_tree() {
    for (img, tree, names) in manifest() {
        if tree == "-" {
            continue;
        }
        for bs in [512u32, 2048, 4096] {
            let mut fs = mount_bs(image(&img), bs).unwrap_or_else(|e| panic!("{img}/{bs}: {e}"));
            let path = isos().join(&img);
            if let Some(uuid) = blkid(&path, "UUID") {
                assert_eq!(fs.uuid(), uuid, "{img}: uuid");
            }
            if let Some(label) = blkid(&path, "LABEL") {
                assert_eq!(fs.label(), label, "{img}: label");
            }
            assert_eq!(fs.uuid(), "2023-11-14-22-13-13-00", "{img}");
            assert!(fs.warnings().is_empty(), "{img}: {:?}", fs.warnings());
            let mut files = 0;
            let root = isos().join(&tree);
            compare(&mut *fs, &root, &root, "", names == "plain", &mut files);
            assert!(files >= 10, "{img}: {files} files");
            if bs == 512 {
                eprintln!("{img}: {files} files match {tree} ({names} names), label {:?}", fs.label());
            }
        }
    }
}

#[test]
fn names_are_chosen_like_linux() {
    for (img, names) in [
        ("rr-joliet.iso", Names::RockRidge { skip: 0 }),
        ("rr-deep.iso", Names::RockRidge { skip: 0 }),
        ("joliet.iso", Names::Joliet),
        ("plain.iso", Names::Plain),
        ("level3.iso", Names::Plain),
    ] {
        let fs = Iso9660::open(VecDisk::new(image(img), 2048)).unwrap();
        assert_eq!(fs.names(), names, "{img}");
    }
}

#[test]
fn boot_layout_links_and_errors() {
    for img in ["rr-joliet.iso", "rr-deep.iso", "level3-rr.iso"] {
        let mut fs = mount(img);
        let k = fs.lookup("/boot/vmlinuz").unwrap();
        assert_eq!(k.size, 3 * 1024 * 1024);
        assert_eq!(fs.lookup("/vmlinuz").unwrap(), k);
        assert_eq!(fs.lookup("/bootdir/grub/up").unwrap(), k);
        assert_eq!(fs.lookup("/boot/grub/dot-meta").unwrap(), fs.lookup("/meta-data").unwrap());
        assert!(read_all(&mut *fs, "/abs-grub").starts_with(b"menuentry 'Live 0'"));
        assert!(read_all(&mut *fs, "/long-link").starts_with(b"through a long link"));
        assert_eq!(read_all(&mut *fs, "/user-data"), std::fs::read(isos().join("tree/user-data")).unwrap());
        assert!(read_all(&mut *fs, "/isolinux/isolinux.cfg").starts_with(b"default live"));
        assert_eq!(fs.read_link("/bootdir").unwrap(), "boot");
        assert_eq!(fs.lookup("/loop/a").unwrap_err(), FsError::SymlinkLoop { fs: "iso9660" });
        assert_eq!(fs.lookup("/dangling").unwrap_err(), FsError::NotFound { fs: "iso9660" });
        assert_eq!(fs.lookup("/meta-data/x").unwrap_err(), FsError::NotADirectory { fs: "iso9660" });
        assert_eq!(fs.lookup("/MixedCase.Txt").unwrap().size, 6);
        assert!(fs.lookup("/mixedcase.txt").unwrap_err().is_not_found(), "Rock Ridge names are case-sensitive");
        assert_eq!(fs.read_link("/boot").unwrap_err(), FsError::NotASymlink { fs: "iso9660" });
        let root = fs.lookup("/").unwrap();
        assert_eq!(fs.read_at(&root, 0, &mut [0u8; 4]).unwrap_err(), FsError::IsADirectory { fs: "iso9660" });
        assert!(fs.read_dir(&k).is_err());
        let bigdir = fs.lookup("/bigdir").unwrap();
        assert_eq!(fs.read_dir(&bigdir).unwrap().len(), 402);
        assert_eq!(
            fs.lookup("/a/b/c/d/e/f/g/h/i/j/k/l/../../../../../../../../../../../../meta-data").unwrap().size,
            43
        );
    }
    // rr-joliet's deep directories were relocated to /RR_MOVED, which xorriso marks
    // `RE` itself: hidden, as Linux hides it, and the directories are where they were.
    let mut fs = mount("rr-joliet.iso");
    assert!(fs.lookup("/RR_MOVED").unwrap_err().is_not_found());
    let root = fs.lookup("/").unwrap();
    assert!(!fs.read_dir(&root).unwrap().iter().any(|n| n.eq_ignore_ascii_case("rr_moved")));
    assert_eq!(read_all(&mut *fs, "/a/b/c/d/e/f/g/h/i/j/k/l/deeper.txt"), b"deeper file\n");
    // Joliet names are case-sensitive, plain ones are not.
    let mut fs = mount("joliet.iso");
    assert!(fs.lookup("/mixedcase.txt").unwrap_err().is_not_found());
    assert_eq!(fs.lookup("/caf\u{e9}/\u{65e5}\u{672c}\u{8a9e}.txt").unwrap().size, 8);
    let mut fs = mount("plain.iso");
    assert_eq!(fs.lookup("/BOOT/GRUB/GRUB.CFG").unwrap(), fs.lookup("/boot/grub/grub.cfg").unwrap());
    assert_eq!(fs.lookup("/Boot/VmLinuz").unwrap().size, 3 * 1024 * 1024);
    assert!(fs.read_link("/boot").is_err());
}

#[test]
fn multi_extent_and_interleaved_files() {
    let big = std::fs::read(isos().join("multi-extent-big.bin")).unwrap();
    let odd = std::fs::read(isos().join("multi-extent-odd.bin")).unwrap();
    for bs in [512, 2048] {
        let mut fs = mount_bs(image("multi-extent.iso"), bs).unwrap();
        let root = fs.lookup("/").unwrap();
        assert_eq!(fs.read_dir(&root).unwrap(), [".", "..", "big.bin", "odd.bin", "small.txt", "inter.bin"]);
        assert_eq!(read_all(&mut *fs, "/big.bin"), big);
        assert_eq!(read_all(&mut *fs, "/ODD.BIN"), odd);
        assert_eq!(read_all(&mut *fs, "/small.txt"), b"small file\n");
        // Across the boundary of the first and second extents.
        let n = fs.lookup("/big.bin").unwrap();
        let mut b = vec![0u8; 5000];
        assert_eq!(fs.read_at(&n, (1 << 20) - 1000, &mut b).unwrap(), 5000);
        assert!(b[..] == big[(1 << 20) - 1000..(1 << 20) + 4000]);
        assert_eq!(fs.read_at(&n, big.len() as u64 - 10, &mut b).unwrap(), 10);
        let i = fs.lookup("/inter.bin").unwrap();
        let e = fs.read_at(&i, 0, &mut b).unwrap_err();
        assert!(matches!(e, FsError::UnsupportedFeature { .. }) && e.to_string().contains("interleaved"), "{e}");
    }
}

/// `f` must fail with an error whose text contains `cause`, in under 2 s.
fn fails_with<T: std::fmt::Debug>(what: &str, cause: &str, f: impl FnOnce() -> Result<T, String>) {
    let t = Instant::now();
    let e = f().expect_err(what);
    assert!(e.contains(cause), "{what}: {e:?} should name {cause:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "{what}: took {:?}", t.elapsed());
    eprintln!("{what}: {e}");
}

#[test]
fn hostile_images_fail_with_the_cause() {
    let s = |e: FsError| e.to_string();
    fails_with("h-reclen", "crosses the end of its logical block", || {
        let mut fs = mount("h-reclen.iso");
        let root = fs.lookup("/").map_err(s)?;
        fs.read_dir(&root).map_err(s)
    });
    fails_with("h-reclen lookup", "crosses the end of its logical block", || {
        mount("h-reclen.iso").lookup("/bad").map_err(s)
    });
    fails_with("h-extent", "file extent past the end of the device", || {
        mount("h-extent.iso").lookup("/far.bin").map_err(s)
    });
    fails_with("h-celoop", "continuation areas (CE)", || mount("h-celoop.iso").lookup("/loop").map_err(s));
    fails_with("h-slloop self", "symbolic links", || mount("h-slloop.iso").lookup("/self").map_err(s));
    fails_with("h-slloop a", "symbolic links", || mount("h-slloop.iso").lookup("/a/x").map_err(s));
    assert_eq!(mount("h-slloop.iso").read_link("/self").unwrap(), "self");
    let deep: String = "/d".repeat(300);
    fails_with("h-dirself", "components in a path", || mount("h-dirself.iso").lookup(&deep).map_err(s));
    let mut fs = mount("h-dirself.iso");
    let d = fs.lookup(&"/d".repeat(200)).unwrap();
    assert_eq!(fs.read_dir(&d).unwrap(), [".", "..", "d"]);
    fails_with("h-noterm", "terminator", || {
        mount_bs(image("h-noterm.iso"), 512).map(|_| ()).map_err(|e| e.to_string())
    });
    // Not ISO9660 at all: the registry finds no reader.
    assert!(matches!(mount_bs(vec![0u8; 1 << 20], 512), Err(MountError::Unrecognised)));
    // A truncated image mounts with a warning; files past the end fail by name.
    let mut fs = mount_bs(image("rr-joliet.iso")[..200 * 2048].to_vec(), 2048).unwrap();
    assert!(fs.warnings().iter().any(|w| w.contains("larger than the device")), "{:?}", fs.warnings());
    assert!(fs.lookup("/boot/vmlinuz").unwrap_err().to_string().contains("past the end of the device"));
    // Every image cut short at any sector: an error or a mount, never a panic.
    let data = image("rr-joliet.iso");
    for cut in [16usize, 17, 18, 19, 20, 21, 22, 24, 30, 40] {
        if let Ok(mut fs) = mount_bs(data[..cut * 2048].to_vec(), 2048) {
            let _ = fs.lookup("/boot/grub/grub.cfg");
        }
    }
}

/// A small deterministic fuzz: the metadata sectors of the Rock Ridge + Joliet image
/// with bytes overwritten at random (descriptors, path tables, directories, SUSP areas):
/// every mount and lookup must end in a result, never a panic, and quickly.
#[test]
fn mutated_metadata_never_panics() {
    let base = image("rr-joliet.iso");
    let head = base[..120 * 2048].to_vec();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let t = Instant::now();
    let mut mounted = 0;
    for _ in 0..3000 {
        let mut img = head.clone();
        for _ in 0..1 + next() % 8 {
            let at = 16 * 2048 + (next() % (img.len() as u64 - 16 * 2048)) as usize;
            img[at] = next() as u8;
        }
        let Ok(mut fs) = mount_bs(img, 2048) else { continue };
        mounted += 1;
        if let Ok(root) = fs.lookup("/") {
            let _ = fs.read_dir(&root);
        }
        for p in ["/boot/grub/grub.cfg", "/vmlinuz", "/bootdir/grub/up", "/long-link", "/a/b/c/d/e/f/g/h/i/j/deep.txt"]
        {
            if let Ok(n) = fs.lookup(p) {
                let _ = fs.read_at(&n, 0, &mut [0u8; 4096]);
                let _ = fs.read_at(&n, u64::MAX - 10, &mut [0u8; 16]);
            }
            let _ = fs.read_link(p);
        }
    }
    assert!(mounted > 100, "{mounted} mounts");
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
}
