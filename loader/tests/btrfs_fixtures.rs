// SPDX-License-Identifier: MIT OR Apache-2.0
//! The btrfs reader against filesystems made by the real mkfs.btrfs
//! (`scripts/build-btrfs-fixtures`) and, when they have been built, by a Linux kernel
//! (`scripts/build-btrfs-kernel-fixtures`: compressed extents, subvolumes, raid1): every
//! file, symlink and directory of the source tree must read back identically, through the
//! registry's probe and the `Filesystem` seam; hostile images must fail with the error
//! that names their damage.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{FileDisk, blkid, compare_tree, mount};
use rxen_loader::block::BlockDevice;
use rxen_loader::fs::btrfs::Btrfs;
use rxen_loader::fs::{Filesystem, FsError, NodeKind};
use rxen_loader::volume::{self, Disk};

const UUID: &str = "5d3c8e7a-1b2f-4a6d-9c0e-f1a2b3c4d5e6";

fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let st = std::process::Command::new(root.join("scripts/build-btrfs-fixtures")).status().expect("run script");
        assert!(st.success(), "scripts/build-btrfs-fixtures failed");
        root.join(".cache/btrfs")
    })
}

/// The kernel-made fixtures (scripts/build-btrfs-kernel-fixtures: Debian's kernel in
/// QEMU, about half a minute of TCG once; cached). Without QEMU the tests that need them
/// say so and pass.
fn kdir() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let d = root.join(".cache/btrfs-kernel");
        let qemu = std::process::Command::new("qemu-system-x86_64").arg("--version").output().is_ok();
        if !qemu && !d.join("manifest.txt").exists() {
            eprintln!("no QEMU: the kernel-made btrfs fixtures are not built and their tests skip");
            return None;
        }
        let st =
            std::process::Command::new(root.join("scripts/build-btrfs-kernel-fixtures")).status().expect("run script");
        assert!(st.success(), "scripts/build-btrfs-kernel-fixtures failed");
        Some(d)
    })
    .clone()
}

fn manifest(d: &Path) -> Vec<String> {
    std::fs::read_to_string(d.join("manifest.txt"))
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn every_image_matches_its_tree() {
    let tree = dir().join("tree");
    for img in manifest(dir())
        .iter()
        .filter(|i| !i.starts_with("bad-") && !i.starts_with("hostile-") && !i.starts_with("csum-"))
    {
        let path = dir().join(img);
        for bs in [512u32, 4096] {
            let mut fs = mount(&path, 0, bs);
            assert_eq!(fs.kind(), "btrfs");
            assert_eq!(fs.uuid(), UUID, "{img}");
            assert_eq!(fs.label(), "rxen-btrfs", "{img}");
            if let Some(u) = blkid(&path, 0, "UUID") {
                assert_eq!(fs.uuid(), u, "{img}: blkid's UUID");
            }
            if let Some(l) = blkid(&path, 0, "LABEL") {
                assert_eq!(fs.label(), l, "{img}: blkid's LABEL");
            }
            assert!(fs.warnings().is_empty(), "{img}: {:?}", fs.warnings());
            let files = compare_tree(&mut *fs, &tree, "", &[]);
            assert!(files > 3000, "{img}: {files} files");
            eprintln!("{img} ({bs}-byte device blocks): {files} files match");
        }
    }
}

#[test]
fn lookups_follow_links_and_name_errors() {
    let mut fs = mount(&dir().join("default.img"), 0, 512);
    let k = fs.lookup("/boot/vmlinuz-6.8.5-301.fc40.x86_64").unwrap();
    assert_eq!(k.size, 3 * 1024 * 1024 + 17);
    assert_eq!(fs.lookup("/vmlinuz").unwrap(), k);
    assert_eq!(fs.lookup("/links/kernel").unwrap(), k);
    assert_eq!(fs.lookup("/links/sizes/f1").unwrap().size, 1);
    assert_eq!(fs.lookup("/links/abs").unwrap().size, 10);
    assert_eq!(fs.lookup("/links/entries/../../grub2/grubenv").unwrap().size, 1024);
    assert_eq!(fs.lookup("/nope").unwrap_err(), FsError::NotFound { fs: "btrfs" });
    assert_eq!(fs.lookup("/empty/x").unwrap_err(), FsError::NotADirectory { fs: "btrfs" });
    let root = fs.lookup("/").unwrap();
    assert_eq!(root.kind, NodeKind::Dir);
    assert_eq!(fs.read_at(&root, 0, &mut [0u8; 4]).unwrap_err(), FsError::IsADirectory { fs: "btrfs" });
    assert_eq!(fs.read_link("/vmlinuz").unwrap(), "boot/vmlinuz-6.8.5-301.fc40.x86_64");
    assert_eq!(fs.read_link("/boot").unwrap_err(), FsError::NotASymlink { fs: "btrfs" });
    assert_eq!(fs.lookup("/links/loop").unwrap_err(), FsError::SymlinkLoop { fs: "btrfs" });
    for i in (0..3000).step_by(97) {
        let f = fs.lookup(&format!("/dir-big/entry-{i:05}-{}", "x".repeat(i % 40))).unwrap();
        assert_eq!(f.size, format!("{i}\n").len() as u64);
    }
    let d = fs.lookup("/dir-big").unwrap();
    assert_eq!(fs.read_dir(&d).unwrap().len(), 3000);
    // Reads past the end and across extents.
    let mut b = vec![0u8; 10];
    assert_eq!(fs.read_at(&k, k.size, &mut b).unwrap(), 0);
    assert_eq!(fs.read_at(&k, k.size - 3, &mut b).unwrap(), 3);
    assert_eq!(
        fs.write_in_place(&k, 0, b"x").unwrap_err(),
        FsError::Unsupported { fs: "btrfs", what: "writing in place" }
    );
}

#[test]
fn hostile_images_name_their_damage() {
    let _ = dir();
    let t0 = Instant::now();
    let open = |img: &str| rxen_loader::fs::mount(Box::new(FileDisk::open(&dir().join(img), 0, 512)));
    let cases: &[(&str, &str)] = &[
        ("bad-sb-csum.img", "btrfs: checksum mismatch: superblock"),
        ("bad-incompat.img", "unsupported feature: an incompat feature newer than this reader"),
        ("bad-chunk-past-device.img", "chunk stripe past the end of its device"),
        ("csum-xxhash.img", "unsupported feature: checksum type xxhash64"),
    ];
    for (img, want) in cases {
        let e = open(img).err().unwrap_or_else(|| panic!("{img} mounted"));
        assert!(e.to_string().contains(want), "{img}: {e}");
    }
    let reads: &[(&str, &str, &str)] = &[
        ("hostile-tree-cycle.img", "/boot/vmlinuz-6.8.5-301.fc40.x86_64", "tree block level"),
        ("hostile-extent-past-device.img", "/boot/vmlinuz-6.8.5-301.fc40.x86_64", "logical address in no chunk"),
    ];
    for (img, p, want) in reads {
        let e = match open(img) {
            Err(e) => e.to_string(),
            Ok(mut fs) => match fs.lookup(p) {
                Err(e) => e.to_string(),
                Ok(n) => fs
                    .read_at(&n, 0, &mut vec![0u8; 1 << 22])
                    .err()
                    .unwrap_or_else(|| panic!("{img}: {p} read"))
                    .to_string(),
            },
        };
        assert!(e.contains(want), "{img}: {p}: {e}");
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[test]
fn truncated_device_is_refused() {
    let data = std::fs::read(dir().join("single.img")).unwrap();
    let cut = rxen_loader::block::VecDisk::new(data[..32 << 20].to_vec(), 512);
    let e = rxen_loader::fs::mount(Box::new(cut)).err().unwrap();
    assert!(e.to_string().contains("device smaller than the filesystem says"), "{e}");
}

/// Each kernel-made image against the tree it was filled from.
#[test]
fn kernel_images_match_their_trees() {
    let Some(kd) = kdir() else { return };
    let tree = kd.join("tree");
    // Compressed: the same tree copied in under each compression (compress-force).
    let mut fs = mount(&kd.join("compress.img"), 0, 512);
    for c in ["zlib", "lzo", "zstd", "none"] {
        let files = compare_tree(&mut *fs, &tree, &format!("/{c}"), &[]);
        eprintln!("compress.img /{c}: {files} files match");
    }
    // Sparse (explicit hole extents: ^no-holes) and preallocated files.
    check_special(&mut *fs, &kd, "/special");
    assert_eq!(fs.lookup("/special/prealloc").unwrap().size, 1 << 20);
    let p = fs.lookup("/special/prealloc").unwrap();
    let mut b = vec![1u8; 1 << 20];
    assert_eq!(rxen_loader::fs::read_exact(&mut *fs, &p, &mut b).unwrap(), 1 << 20);
    assert!(b.iter().all(|&x| x == 0), "/special/prealloc reads as zeros");
}

/// The sparse and partly preallocated files the guest wrote under `at`.
fn check_special(fs: &mut dyn Filesystem, kd: &Path, at: &str) {
    for (name, expected) in [
        ("sparse", "sparse.expected"),
        ("prealloc-mixed", "prealloc-mixed.expected"),
        ("fragmented", "fragmented.expected"),
    ] {
        let p = format!("{at}/{name}");
        let Ok(n) = fs.lookup(&p) else {
            assert_ne!(name, "sparse", "{p}");
            continue;
        };
        let want = std::fs::read(kd.join(expected)).unwrap();
        assert_eq!(n.size, want.len() as u64, "{p}");
        let mut b = vec![1u8; want.len()];
        assert_eq!(rxen_loader::fs::read_exact(fs, &n, &mut b).unwrap(), b.len());
        assert!(b == want, "{p}");
        // Unaligned reads straddling data and hole.
        let mut mid = vec![1u8; 10000];
        let off = (1 << 20) - 5000;
        if want.len() > off + 10000 {
            fs.read_at(&n, off as u64, &mut mid).unwrap();
            assert!(mid[..] == want[off..off + 10000], "{p}: unaligned");
        }
    }
}

#[test]
fn subvolumes_as_linux_shows_them() {
    let Some(kd) = kdir() else { return };
    let tree = kd.join("tree");
    // Fedora's layout: subvolumes root and home at the top level, the default left at 5.
    let mut fs = mount(&kd.join("subvol.img"), 0, 512);
    let files = compare_tree(&mut *fs, &tree, "/root/usr", &[]);
    assert!(files > 10);
    compare_tree(&mut *fs, &tree, "/root-snap/usr", &[]);
    compare_tree(&mut *fs, &tree.join("boot"), "/@/boot", &[]);
    compare_tree(&mut *fs, &tree.join("boot"), "/root/nested", &[]);
    assert!(fs.lookup("/@/boot/grub2/grub.cfg").is_ok());
    let home = fs.lookup("/home").unwrap();
    assert!(fs.read_dir(&home).unwrap().is_empty());
    check_special(&mut *fs, &kd, "/root/special");
    // Different subvolumes, different node ids for their root directories.
    assert_ne!(fs.lookup("/root").unwrap().id, fs.lookup("/root-snap").unwrap().id);
    // The same subvolume mounted as / (subvol= and subvolid=).
    let disk = FileDisk::open(&kd.join("subvol.img"), 0, 512);
    let mut b = Btrfs::open(Box::new(disk) as Box<dyn BlockDevice>).unwrap();
    assert_eq!(b.subvol_id(), 5);
    b.open_subvol("/root").unwrap();
    let id = b.subvol_id();
    assert!(id >= 256);
    let mut fs: Box<dyn Filesystem> = Box::new(b);
    compare_tree(&mut *fs, &tree, "/usr", &[]);
    assert_eq!(fs.lookup("/@").unwrap_err(), FsError::NotFound { fs: "btrfs" });
    let disk = FileDisk::open(&kd.join("subvol.img"), 0, 512);
    let mut b = Btrfs::open(Box::new(disk) as Box<dyn BlockDevice>).unwrap();
    b.open_subvol(&id.to_string()).unwrap();
    assert_eq!(b.subvol_id(), id);
    assert!(b.open_subvol("/root/usr").is_err(), "a plain directory is no subvolume");
    assert!(b.open_subvol("999999").is_err());
    // A default subvolume set with `btrfs subvolume set-default`.
    let mut fs = mount(&kd.join("subvol-default.img"), 0, 512);
    compare_tree(&mut *fs, &tree, "/usr", &[]);
}

#[test]
fn raid1_across_two_devices() {
    let Some(kd) = kdir() else { return };
    let tree = kd.join("tree");
    let a = || Box::new(FileDisk::open(&kd.join("raid1-a.img"), 0, 512)) as Box<dyn BlockDevice>;
    let b = || Box::new(FileDisk::open(&kd.join("raid1-b.img"), 0, 512)) as Box<dyn BlockDevice>;
    for devs in [vec![a(), b()], vec![b(), a()]] {
        let fs: Box<dyn Filesystem> = Box::new(Btrfs::open_multi(devs).unwrap());
        let mut fs = fs;
        assert_eq!(fs.uuid(), UUID);
        compare_tree(&mut *fs, &tree, "/data", &[]);
    }
    // One member alone: raid1 keeps a copy of everything on it (a warning says one is missing).
    for one in [a(), b()] {
        let mut fs = rxen_loader::fs::mount(one).unwrap();
        assert!(fs.warnings().iter().any(|w| w.contains("1 of 2 devices")), "{:?}", fs.warnings());
        compare_tree(&mut *fs, &tree, "/data", &[]);
    }
    // The volume scan gathers the members across the guest's disks: one volume, named
    // after its first member, whichever disk order.
    for order in [["raid1-a.img", "raid1-b.img"], ["raid1-b.img", "raid1-a.img"]] {
        let disks: Vec<Disk> = order
            .iter()
            .enumerate()
            .map(|(i, f)| {
                Disk::new(["vda", "vdb"][i].into(), "file".into(), Box::new(FileDisk::open(&kd.join(f), 0, 512)))
            })
            .collect();
        let mut log = Vec::new();
        let mut vols = volume::scan(&disks, &mut |m| log.push(m));
        assert_eq!(vols.len(), 1, "{log:?}");
        assert_eq!((vols[0].name.as_str(), vols[0].fs_uuid.as_str()), ("vda", UUID));
        assert_eq!(vols[0].layout.as_deref(), Some("btrfs over (vda) (vdb)"));
        assert!(log.is_empty(), "{log:?}");
        compare_tree(&mut *vols[0].fs, &tree, "/data", &[]);
    }
    // Not members of one filesystem.
    let other = Box::new(FileDisk::open(&kd.join("compress.img"), 0, 512)) as Box<dyn BlockDevice>;
    let e = Btrfs::open_multi(vec![a(), other]).err().unwrap();
    assert!(e.to_string().contains("fsid differs"), "{e}");
}

/// An image with some blocks replaced in memory.
struct Patched {
    inner: FileDisk,
    /// (byte offset, bytes) of each replaced stretch.
    patches: Vec<(u64, Vec<u8>)>,
}

impl BlockDevice for Patched {
    fn block_size(&self) -> u32 {
        self.inner.block_size()
    }
    fn num_blocks(&self) -> u64 {
        self.inner.num_blocks()
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), rxen_loader::block::BlockError> {
        self.inner.read_blocks(lba, buf)?;
        let start = lba * u64::from(self.block_size());
        let end = start + buf.len() as u64;
        for (at, p) in &self.patches {
            let (s, e) = ((*at).max(start), (at + p.len() as u64).min(end));
            if s < e {
                buf[(s - start) as usize..(e - start) as usize]
                    .copy_from_slice(&p[(s - at) as usize..(e - at) as usize]);
            }
        }
        Ok(())
    }
}

fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82f6_3b78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Walk and read everything reachable (bounded), ignoring errors: only panics and hangs
/// are failures here.
fn exercise(fs: &mut dyn Filesystem, path: &str, budget: &mut u32) {
    let Ok(n) = fs.lookup(if path.is_empty() { "/" } else { path }) else { return };
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    match n.kind {
        NodeKind::Dir => {
            let Ok(names) = fs.read_dir(&n) else { return };
            for name in names.iter().take(40) {
                let _ = fs.read_link(&format!("{path}/{name}"));
                exercise(fs, &format!("{path}/{name}"), budget);
            }
        }
        _ => {
            let mut b = vec![0u8; (n.size as usize).min(4 << 20)];
            let _ = fs.read_at(&n, 0, &mut b);
            let k = b.len().min(70000);
            let _ = fs.read_at(&n, n.size / 3, &mut b[..k]);
        }
    }
}

/// Damage with the checksums recomputed (so the damage is seen past them), in the tree
/// blocks and, for the compressed image, in the data: every mount and read must end in
/// an answer or an error, never a panic or a hang.
#[test]
fn damaged_images_never_panic() {
    let mut imgs = vec![(dir().join("single.img"), 4096usize)];
    if let Some(kd) = kdir() {
        imgs.push((kd.join("compress.img"), 16384));
    }
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // More with RXEN_BTRFS_DAMAGE_ROUNDS (a few thousand have run clean).
    let rounds: u32 = std::env::var("RXEN_BTRFS_DAMAGE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let t0 = Instant::now();
    for (img, nodesize) in imgs {
        let data = std::fs::read(&img).unwrap();
        let fsid = data[0x10020..0x10030].to_vec();
        let blocks: Vec<usize> = (0x20000..data.len() - nodesize)
            .step_by(4096)
            .filter(|&at| {
                data[at + 0x20..at + 0x30] == fsid[..]
                    && u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) == crc32c(&data[at + 32..at + nodesize])
            })
            .collect();
        assert!(blocks.len() > 10, "{}: {} tree blocks", img.display(), blocks.len());
        let used = data.iter().rposition(|&b| b != 0).unwrap_or(0);
        drop(data);
        for round in 0..rounds {
            let mut disk = Patched { inner: FileDisk::open(&img, 0, 512), patches: Vec::new() };
            for _ in 0..1 + next() % 3 {
                let at = blocks[(next() % blocks.len() as u64) as usize] as u64;
                let mut b = vec![0u8; nodesize];
                rxen_loader::block::read_bytes(&mut disk, at, &mut b).unwrap();
                for _ in 0..1 + next() % 4 {
                    let i = 32 + (next() % (nodesize as u64 - 32)) as usize;
                    b[i] = match next() % 4 {
                        0 => 0,
                        1 => 0xff,
                        _ => next() as u8,
                    };
                }
                let c = crc32c(&b[32..]);
                b[..4].copy_from_slice(&c.to_le_bytes());
                disk.patches.push((at, b));
            }
            if round % 2 == 1 {
                // Data bytes too (compressed extents among them).
                for _ in 0..8 {
                    let at = 0x100000 + next() % (used as u64 - 0x100000);
                    disk.patches.push((at, vec![next() as u8; 1 + (next() % 64) as usize]));
                }
            }
            let t = Instant::now();
            if let Ok(mut fs) = rxen_loader::fs::mount(Box::new(disk)) {
                let mut budget = 150;
                exercise(&mut *fs, "", &mut budget);
            }
            assert!(t.elapsed() < Duration::from_secs(5), "{} round {round}: {:?}", img.display(), t.elapsed());
        }
    }
    eprintln!("damaged images: {:?}", t0.elapsed());
}

/// The kernel's compressed extents decompress to their size; damaged copies (bytes
/// changed, cut short, caps lowered) end in an answer or an error naming the format,
/// never a panic.
#[test]
fn decompressors_survive_damage() {
    let Some(kd) = kdir() else { return };
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let rounds: u32 = std::env::var("RXEN_BTRFS_DAMAGE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let mut n = 0;
    for e in std::fs::read_dir(kd.join("extents")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_str().unwrap().to_string();
        let mut parts = name.split('-');
        let algo = parts.next().unwrap();
        let ram: u64 = parts.nth(1).unwrap().parse().unwrap();
        let c = match algo {
            "zlib" => 1,
            "lzo" => 2,
            _ => 3,
        };
        let src = std::fs::read(&p).unwrap();
        let plain =
            rxen_loader::fs::btrfs::decompress_extent(c, &src, ram, 4096).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(plain.len() as u64, ram, "{name}");
        for _ in 0..rounds {
            let mut d = src.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % d.len() as u64) as usize;
                d[i] = next() as u8;
            }
            let cut = if next() % 4 == 0 { (next() % d.len() as u64) as usize } else { d.len() };
            let cap = if next() % 4 == 0 { next() % (ram + 1) } else { ram };
            if let Err(e) = rxen_loader::fs::btrfs::decompress_extent(c, &d[..cut], cap, 4096) {
                assert!(e.to_string().contains(algo), "{name}: {e}");
            }
        }
        n += 1;
    }
    assert!(n >= 9, "{n} compressed extents");
}

/// Data single over two devices: both together read everything; one alone mounts (the
/// metadata is raid1) and a file whose data is on the other fails with the error that
/// names a missing member, while the rest still reads.
#[test]
fn missing_member_is_named_where_it_matters() {
    let Some(kd) = kdir() else { return };
    let tree = kd.join("tree");
    let dev = |n: &str| Box::new(FileDisk::open(&kd.join(n), 0, 512)) as Box<dyn BlockDevice>;
    let mut fs: Box<dyn Filesystem> =
        Box::new(Btrfs::open_multi(vec![dev("split-b.img"), dev("split-a.img")]).unwrap());
    assert!(fs.warnings().is_empty(), "{:?}", fs.warnings());
    for d in ["d1", "d2", "d3", "d4", "d5", "d6"] {
        compare_tree(&mut *fs, &tree, &format!("/{d}"), &[]);
    }
    for one in ["split-a.img", "split-b.img"] {
        let mut fs = rxen_loader::fs::mount(dev(one)).unwrap();
        assert!(fs.warnings().iter().any(|w| w.contains("1 of 2 devices")), "{:?}", fs.warnings());
        let (mut ok, mut missing) = (0, 0);
        for d in ["d1", "d2", "d3", "d4", "d5", "d6"] {
            let k = fs.lookup(&format!("/{d}/boot/vmlinuz-6.8.5-301.fc40.x86_64")).unwrap();
            let mut b = vec![0u8; k.size as usize];
            match rxen_loader::fs::read_exact(&mut *fs, &k, &mut b) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(e.to_string().contains("a missing member"), "{one}: {e}");
                    missing += 1;
                }
            }
        }
        assert!(missing > 0, "{one}: every kernel read with one member of two ({ok} ok)");
        // Inline files live in the (raid1) metadata: they read from either member.
        let f = fs.lookup("/d6/sizes/f100").unwrap();
        assert_eq!(rxen_loader::fs::read_exact(&mut *fs, &f, &mut [0u8; 100]).unwrap(), 100);
    }
}
