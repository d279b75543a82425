// SPDX-License-Identifier: MIT OR Apache-2.0
//! The FAT12/16/32 reader against real images made by `scripts/build-fat-fixtures`
//! (mkfs.vfat, mcopy, sgdisk), mounted through the registry (`fs::mount`): every file and
//! directory of the source tree must read back identically, names case-insensitively;
//! hostile images must fail quickly with an error naming the cause.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod common;

use common::{blkid, compare_tree};
use rxen_loader::block::VecDisk;
use rxen_loader::fs::{self, Filesystem, FsError, Node, NodeKind};

fn disks() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let st =
            std::process::Command::new(root.join("scripts/build-fat-fixtures")).status().expect("run fixture script");
        assert!(st.success(), "scripts/build-fat-fixtures failed");
        root.join(".cache/fat")
    })
}

struct Fixture {
    image: String,
    offset: u64,
    tree: String,
    serial: String,
    label: String,
}

fn manifest() -> Vec<Fixture> {
    std::fs::read_to_string(disks().join("manifest.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Fixture {
                image: w[0].to_string(),
                offset: w[1].parse().unwrap(),
                tree: w[2].to_string(),
                serial: w[3].to_string(),
                label: w[4].to_string(),
            }
        })
        .collect()
}

/// The filesystem of `f`'s image, as its own disk (the partition cut out).
fn volume(f: &Fixture) -> Vec<u8> {
    let data = std::fs::read(disks().join(&f.image)).unwrap();
    data[f.offset as usize..].to_vec()
}

fn mount(data: Vec<u8>) -> Result<Box<dyn Filesystem>, fs::MountError> {
    fs::mount(Box::new(VecDisk::new(data, 512)))
}

fn mount_ok(data: Vec<u8>) -> Box<dyn Filesystem> {
    mount(data).unwrap_or_else(|e| panic!("{e}"))
}

fn read_all(fs: &mut dyn Filesystem, n: &Node) -> Vec<u8> {
    let mut buf = vec![0xa5u8; n.size as usize + 100];
    let got = fs::read_exact(fs, n, &mut buf).unwrap();
    assert_eq!(got, n.size as usize);
    buf.truncate(got);
    buf
}

#[test]
fn every_image_matches_its_tree() {
    for f in manifest() {
        if f.tree == "-" {
            continue;
        }
        let t = Instant::now();
        let mut fs = mount_ok(volume(&f));
        assert_eq!(fs.kind(), "fat");
        let img = disks().join(&f.image);
        let (uuid, label) = (
            blkid(&img, f.offset, "UUID").unwrap_or(f.serial.clone()),
            blkid(&img, f.offset, "LABEL").unwrap_or(f.label.clone()),
        );
        assert_eq!(fs.uuid(), uuid, "{}", f.image);
        assert_eq!(fs.uuid(), f.serial, "{}", f.image);
        assert_eq!(fs.label(), label, "{}", f.image);
        assert!(fs.warnings().is_empty(), "{}", f.image);
        let files = compare_tree(&mut *fs, &disks().join(&f.tree), "", &[]);
        assert!(files >= 5, "{}: {files} files", f.image);
        eprintln!("{}@{}: {files} files match {} in {:?}", f.image, f.offset, f.tree, t.elapsed());
    }
}

#[test]
fn case_insensitive_lookups_and_the_loader_paths() {
    for f in manifest().into_iter().filter(|f| f.tree == "tree") {
        let mut fs = mount_ok(volume(&f));
        let tree = disks().join("tree");
        for (asked, host) in [
            ("/EFI/boot/bootx64.efi", "EFI/BOOT/BOOTX64.EFI"),
            ("/efi/BOOT/BootX64.Efi", "EFI/BOOT/BOOTX64.EFI"),
            ("/LOADER/ENTRIES/DEBIAN-6.1.CONF", "loader/entries/debian-6.1.conf"),
            ("/Grub/GrubEnv", "grub/grubenv"),
            ("/VMLINUZ-6.1", "vmlinuz-6.1"),
            ("/names/GRüßE.TXT", "names/Grüße.txt"),
            ("/names/README.TXT", "names/readme.txt"),
            ("/names/mixed case name.txt", "names/Mixed Case Name.TXT"),
            ("/names/ΩMEGA-üNïCöDé-€.BIN", "names/Ωmega-ünïcödé-€.bin"),
            ("/a/B/c/D/e/F/g/H/DEEP.TXT", "a/b/c/d/e/f/g/h/deep.txt"),
            ("/./names/../names/noext", "names/noext"),
        ] {
            let n = fs.lookup(asked).unwrap_or_else(|e| panic!("{}: {asked}: {e}", f.image));
            assert_eq!(read_all(&mut *fs, &n), std::fs::read(tree.join(host)).unwrap(), "{asked}");
        }
        // The 8.3 alias mtools gave the long name finds it too.
        let long = fs.lookup("/names/Mixed Case Name.TXT").unwrap();
        assert_eq!(fs.lookup("/names/MIXEDC~1.TXT").map(|n| n.id), Ok(long.id), "{}", f.image);
        assert!(fs.lookup("/names/nope").unwrap_err().is_not_found());
        assert_eq!(fs.lookup("/vmlinuz-6.1/x").unwrap_err(), FsError::NotADirectory { fs: "fat" });
        let root = fs.lookup("/").unwrap();
        assert_eq!(fs.read_at(&root, 0, &mut [0u8; 4]).unwrap_err(), FsError::IsADirectory { fs: "fat" });
        assert_eq!(fs.read_link("/vmlinuz-6.1").unwrap_err(), FsError::NotASymlink { fs: "fat" });
        let entries = fs.lookup("/loader/entries").unwrap();
        assert_eq!(fs.read_dir(&entries).unwrap(), ["debian-6.1.conf"]);
        let bigdir = fs.lookup("/bigdir").unwrap();
        assert_eq!(fs.read_dir(&bigdir).unwrap().len(), 520);
        assert!(fs.lookup("/bigdir/ENTRY-0519-WITH-A-LONG-NAME.TXT").is_ok());
        let empty = fs.lookup("/sizes/f0").unwrap();
        assert_eq!(fs.read_at(&empty, 0, &mut [0u8; 8]), Ok(0));
    }
}

#[test]
fn write_in_place_round_trip() {
    for f in manifest().into_iter().filter(|f| f.tree == "tree") {
        let mut fs = mount_ok(volume(&f));
        let env = fs.lookup("/grub/grubenv").unwrap();
        assert_eq!(env.size, 1024);
        let mut new = b"# GRUB Environment Block\nsaved_entry=1\nnext_entry=\n".to_vec();
        new.resize(1024, b'#');
        fs.write_in_place(&env, 0, &new).unwrap();
        assert_eq!(read_all(&mut *fs, &env), new);
        fs.write_in_place(&env, 1000, b"x".repeat(24).as_slice()).unwrap();
        let past = fs.write_in_place(&env, 1000, &[b'y'; 25]).unwrap_err();
        assert!(past.to_string().contains("past the end"), "{past}");
        let dir = fs.lookup("/grub").unwrap();
        assert!(fs.write_in_place(&dir, 0, b"x").is_err());
        // Across clusters of a larger file, then the bytes are on the disk for a new mount.
        let big = fs.lookup("/big/random3m.bin").unwrap();
        let patch: Vec<u8> = (0..10000u32).map(|i| (i * 7) as u8).collect();
        fs.write_in_place(&big, 100_000, &patch).unwrap();
        let disk = fs.into_device();
        let mut fs = fs::mount(disk).unwrap();
        let env = fs.lookup("/grub/grubenv").unwrap();
        let mut want = new.clone();
        want[1000..].fill(b'x');
        assert_eq!(read_all(&mut *fs, &env), want, "{}", f.image);
        let big = fs.lookup("/big/random3m.bin").unwrap();
        let mut back = vec![0u8; patch.len()];
        assert_eq!(fs.read_at(&big, 100_000, &mut back).unwrap(), patch.len());
        assert_eq!(back, patch, "{}", f.image);
    }
}

/// Run `f`, which must end in an error whose text contains `cause`, in under 2 s.
fn fails_with(image: &str, cause: &str, f: impl FnOnce(Vec<u8>) -> Result<(), String>) {
    let data = std::fs::read(disks().join(image)).unwrap();
    let t = Instant::now();
    let e = f(data).expect_err(image);
    assert!(t.elapsed() < Duration::from_secs(2), "{image}: {:?}", t.elapsed());
    assert!(e.contains(cause), "{image}: {e}");
    eprintln!("{image}: {e} ({:?})", t.elapsed());
}

fn read_path(data: Vec<u8>, path: &str) -> Result<(), String> {
    let mut fs = mount(data).map_err(|e| e.to_string())?;
    let n = fs.lookup(path).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; n.size as usize];
    fs::read_exact(&mut *fs, &n, &mut buf).map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn hostile_images_fail_with_their_cause() {
    // The base image is fine.
    read_path(std::fs::read(disks().join("hostile-base.img")).unwrap(), "/CYCLE.BIN").unwrap();
    fails_with("cyclic-file.img", "cluster chain loops", |d| read_path(d, "/CYCLE.BIN"));
    fails_with("dirloop.img", "cluster chain loops", |d| {
        let mut fs = mount(d).map_err(|e| e.to_string())?;
        let dir = fs.lookup("/LOOPDIR").map_err(|e| e.to_string())?;
        fs.read_dir(&dir).map(|_| ()).map_err(|e| e.to_string())
    });
    fails_with("dirloop.img", "cluster chain loops", |d| read_path(d, "/LOOPDIR/INSIDE.TXT"));
    fails_with("past-end.img", "cluster number outside the filesystem", |d| read_path(d, "/PASTEND.BIN"));
    fails_with("past-end.img", "cluster number past the end", |d| read_path(d, "/PASTEND2.BIN"));
    fails_with("too-big.img", "larger than the device", |d| read_path(d, "/OK.TXT"));
    // Writes are refused on a broken chain, before anything is written.
    fails_with("cyclic-file.img", "cluster chain loops", |d| {
        let mut fs = mount(d).map_err(|e| e.to_string())?;
        let n = fs.lookup("/CYCLE.BIN").map_err(|e| e.to_string())?;
        fs.write_in_place(&n, 0, &[0u8; 100]).map_err(|e| e.to_string())
    });
    // Everything else on the damaged images still reads.
    for img in ["cyclic-file.img", "dirloop.img", "past-end.img", "bad-lfn.img"] {
        read_path(std::fs::read(disks().join(img)).unwrap(), "/ok.txt").unwrap();
    }
}

#[test]
fn broken_lfn_falls_back_to_the_short_name() {
    let mut fs = mount_ok(std::fs::read(disks().join("bad-lfn.img")).unwrap());
    let root = fs.lookup("/").unwrap();
    let names = fs.read_dir(&root).unwrap();
    assert!(names.contains(&"LONG-F~1.TXT".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("long-file")), "{names:?}");
    assert!(fs.lookup("/long-file-name-broken.txt").unwrap_err().is_not_found());
    let n = fs.lookup("/long-f~1.txt").unwrap();
    assert_eq!(read_all(&mut *fs, &n), b"broken lfn\n");
    // The intact image has the long name.
    let mut fs = mount_ok(std::fs::read(disks().join("hostile-base.img")).unwrap());
    assert!(fs.lookup("/long-file-name-broken.txt").is_ok());
}

#[test]
fn probe_skips_partitioned_disks_and_ext4() {
    // The whole GPT disk: sector 0 is the protective MBR, not a FAT.
    let f = manifest().into_iter().find(|f| f.offset != 0).unwrap();
    let whole = std::fs::read(disks().join(&f.image)).unwrap();
    assert!(matches!(mount(whole), Err(fs::MountError::Unrecognised)));
    let mut dev = VecDisk::new(volume(&f), 512);
    assert!(rxen_loader::fs::fat::probe(&mut dev));
}

/// A disk that counts read requests.
struct Counting(VecDisk, std::rc::Rc<std::cell::Cell<usize>>);

impl rxen_loader::block::BlockDevice for Counting {
    fn block_size(&self) -> u32 {
        self.0.block_size()
    }
    fn num_blocks(&self) -> u64 {
        self.0.num_blocks()
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), rxen_loader::block::BlockError> {
        self.1.set(self.1.get() + 1);
        self.0.read_blocks(lba, buf)
    }
}

#[test]
fn contiguous_files_are_read_in_one_request() {
    for f in manifest().into_iter().filter(|f| f.tree == "tree") {
        let reads = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut fs = fs::mount(Box::new(Counting(VecDisk::new(volume(&f), 512), reads.clone()))).unwrap();
        let n = fs.lookup("/big/random3m.bin").unwrap();
        // The chain is walked once (FAT reads, cached), then the data is read.
        let mut buf = vec![0u8; n.size as usize];
        fs.read_at(&n, 0, &mut buf).unwrap();
        let before = reads.get();
        fs.read_at(&n, 0, &mut buf).unwrap();
        assert_eq!(reads.get() - before, 1, "{}: mcopy writes the file contiguously", f.image);
        assert_eq!(buf, std::fs::read(disks().join("tree/big/random3m.bin")).unwrap());
    }
}

/// What the fuzz target does (fuzz/fuzz_targets/fat.rs), on one image.
fn exercise(data: Vec<u8>) {
    let Ok(mut fs) = mount(data) else { return };
    let _ = (fs.uuid(), fs.label());
    if let Ok(root) = fs.lookup("/")
        && let Ok(names) = fs.read_dir(&root)
    {
        for name in names.iter().take(16) {
            if let Ok(n) = fs.lookup(&format!("/{name}")) {
                match n.kind {
                    NodeKind::Dir => drop(fs.read_dir(&n)),
                    _ => drop(fs.read_at(&n, 0, &mut vec![0u8; (n.size as usize).min(1 << 20)])),
                }
                let len = n.size.min(64) as usize;
                if fs.write_in_place(&n, 0, &vec![0x23u8; len]).is_ok() {
                    let mut back = vec![0u8; len];
                    let got = fs.read_at(&n, 0, &mut back).expect("a file just written reads back");
                    assert!(back[..got].iter().all(|&b| b == 0x23), "{name}: written bytes read back");
                }
            }
        }
    }
    for p in ["/loader/entries", "/EFI/BOOT/BOOTX64.EFI", "/vmlinuz", "/grub/grubenv", "/LOOPDIR/INSIDE.TXT"] {
        let _ = fs.lookup(p);
    }
}

/// A stand-in for the fuzzer where cargo-fuzz is not installed: seeded random damage to the
/// metadata of a small FAT12 (boot sector, FATs, root directory, first clusters) must never
/// panic or hang.
#[test]
fn random_damage_never_panics() {
    let base = std::fs::read(disks().join("small-fat12.img")).unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let t = Instant::now();
    for _ in 0..1500 {
        let mut d = base.clone();
        for _ in 0..1 + next() % 8 {
            let at = (next() % 40_000) as usize;
            d[at] = match next() % 4 {
                0 => 0,
                1 => 0xFF,
                _ => next() as u8,
            };
        }
        exercise(d);
    }
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    eprintln!("1500 damaged images in {:?}", t.elapsed());
}
