// SPDX-License-Identifier: MIT OR Apache-2.0
//! The ext2/3/4 reader against real images made by `scripts/build-disk-fixtures`
//! (mkfs.ext2/3/4 -d, debugfs, sfdisk, sgdisk): every file, symlink and directory of the
//! source tree must read back identically; hostile images must fail with the right error.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rxen_loader::block::SliceDisk;
use rxen_loader::fs::ext4::{Ext4, Ext4Error, FileKind};

fn disks() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let st =
            std::process::Command::new(root.join("scripts/build-disk-fixtures")).status().expect("run fixture script");
        assert!(st.success(), "scripts/build-disk-fixtures failed");
        root.join(".cache/disks")
    })
}

/// (image, byte offset, tree) from the manifest.
fn manifest() -> Vec<(String, u64, String)> {
    std::fs::read_to_string(disks().join("manifest.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_string(), w.next().unwrap().parse().unwrap(), w.next().unwrap().to_string())
        })
        .collect()
}

fn image(name: &str) -> Vec<u8> {
    std::fs::read(disks().join(name)).unwrap()
}

fn open(data: &[u8]) -> Result<Ext4<SliceDisk<'_>>, Ext4Error> {
    Ext4::open(SliceDisk::new(data, 512))
}

/// Compare the filesystem with the source tree under `host`, rooted at `path`.
fn compare(fs: &mut Ext4<SliceDisk<'_>>, host: &Path, path: &str, files: &mut usize) {
    let dir = fs.lookup(if path.is_empty() { "/" } else { path }).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut listed: Vec<(String, FileKind)> = fs
        .read_dir(&dir)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .into_iter()
        .filter(|e| e.name != "." && e.name != ".." && e.name != "lost+found")
        .map(|e| (e.name, e.kind))
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected: Vec<(String, FileKind)> = std::fs::read_dir(host)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            let k = if t.is_symlink() {
                FileKind::Symlink
            } else if t.is_dir() {
                FileKind::Dir
            } else {
                FileKind::File
            };
            (e.file_name().into_string().unwrap(), k)
        })
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(listed, expected, "listing of {path}/");
    for (name, kind) in expected {
        let p = format!("{path}/{name}");
        let h = host.join(&name);
        match kind {
            FileKind::Dir => compare(fs, &h, &p, files),
            FileKind::Symlink => {
                let l = fs.lookup_nofollow(&p).unwrap();
                assert_eq!(l.kind(), FileKind::Symlink);
                let target = std::fs::read_link(&h).unwrap();
                assert_eq!(fs.read_link(&l).unwrap(), target.to_str().unwrap(), "{p}");
                // Following works exactly when the host can follow it inside the tree.
                let resolved = fs.lookup(&p);
                if let Ok(meta) = std::fs::metadata(&h)
                    && meta.is_file()
                    && !target.is_absolute()
                {
                    let ino = resolved.unwrap_or_else(|e| panic!("{p}: {e}"));
                    let mut buf = vec![0u8; meta.len() as usize];
                    assert_eq!(fs.read_at(&ino, 0, &mut buf).unwrap(), buf.len());
                    assert_eq!(buf, std::fs::read(&h).unwrap(), "{p} via symlink");
                }
            }
            _ => {
                let ino = fs.lookup(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
                let want = std::fs::read(&h).unwrap();
                assert_eq!(ino.size(), want.len() as u64, "{p}");
                let mut got = vec![0xa5u8; want.len() + 100];
                assert_eq!(fs.read_at(&ino, 0, &mut got).unwrap(), want.len(), "{p}");
                assert!(got[..want.len()] == want[..], "{p}: contents differ");
                // An unaligned read in the middle.
                if want.len() > 5000 {
                    let mut mid = vec![0u8; 3001];
                    assert_eq!(fs.read_at(&ino, 1234, &mut mid).unwrap(), 3001);
                    assert!(mid[..] == want[1234..4235], "{p}: unaligned read");
                }
                *files += 1;
            }
        }
    }
}

#[test]
fn every_image_matches_its_tree() {
    for (img, offset, tree) in manifest() {
        if tree == "-" {
            continue;
        }
        let data = image(&img);
        let part = &data[offset as usize..];
        let mut fs = open(part).unwrap_or_else(|e| panic!("{img}@{offset}: {e}"));
        assert_eq!(fs.uuid_string(), "5a3c1e2f-0b4d-4e6a-8f70-1d2c3b4a5968", "{img}");
        assert!(fs.label().starts_with("rxen-"), "{img}: {}", fs.label());
        assert!(fs.warnings().is_empty(), "{img}: {:?}", fs.warnings());
        let mut files = 0;
        compare(&mut fs, &disks().join(&tree), "", &mut files);
        assert!(files >= 4, "{img}: {files} files");
        eprintln!("{img}@{offset}: {files} files match {tree}");
    }
}

#[test]
fn debian_links_sparse_and_loops() {
    for img in ["ext2.img", "ext4.img", "ext4-feat.img", "ext4-blockmap.img", "ext4-metabg.img"] {
        let data = image(img);
        let mut fs = open(&data).unwrap();
        let k = fs.lookup("/vmlinuz").unwrap();
        assert_eq!(k.size(), 3 * 1024 * 1024, "{img}");
        assert_eq!(k.ino(), fs.lookup("/boot/vmlinuz-6.1.0-test").unwrap().ino());
        assert_eq!(fs.lookup("/a/b/c/rel-hostname").unwrap().ino(), fs.lookup("/etc/hostname").unwrap().ino());
        assert_eq!(fs.lookup("/link-to-dir-via-link/modules.dep").unwrap().size(), 24);
        assert_eq!(fs.lookup("/slow-link").unwrap().ino(), fs.lookup("/etc/hostname").unwrap().ino());
        assert_eq!(fs.lookup("/loop/a").unwrap_err(), Ext4Error::SymlinkLoop);
        assert_eq!(fs.lookup("/loop/self/x").unwrap_err(), Ext4Error::SymlinkLoop);
        assert_eq!(fs.lookup_nofollow("/loop/a").unwrap().kind(), FileKind::Symlink);
        assert_eq!(fs.lookup("/dangling").unwrap_err(), Ext4Error::NotFound);
        assert_eq!(fs.lookup("/etc/hostname/x").unwrap_err(), Ext4Error::NotADirectory);
        let root = fs.lookup("/").unwrap();
        assert_eq!(fs.read_at(&root, 0, &mut [0u8; 4]).unwrap_err(), Ext4Error::IsADirectory);
        assert_eq!(fs.lookup("/empty").unwrap().size(), 0);

        // The htree directory: every name found by lookup and listed once.
        let big = fs.lookup("/bigdir").unwrap();
        assert_eq!(fs.read_dir(&big).unwrap().len(), 3002, "{img}");
        for i in (0..3000).step_by(97) {
            let f = fs.lookup(&format!("/bigdir/file-{i:05}-with-a-longish-name")).unwrap();
            let mut b = [0u8; 8];
            let n = fs.read_at(&f, 0, &mut b).unwrap();
            assert_eq!(&b[..n], format!("{i}\n").as_bytes());
        }

        // Sparse: 72 MiB, data at three places, zeros elsewhere.
        let s = fs.lookup("/sparse").unwrap();
        assert_eq!(s.size(), (70 << 20) + 5005);
        let mut b = vec![0xffu8; 1 << 20];
        fs.read_at(&s, 20 << 20, &mut b).unwrap();
        assert!(b.iter().all(|&x| x == 0), "{img}: hole not zero");
        let host = std::fs::read(disks().join("tree/sparse")).unwrap();
        for off in [0u64, (5 << 20) + 100, (70 << 20) - 10] {
            let mut got = vec![0u8; 6000];
            let n = fs.read_at(&s, off, &mut got).unwrap();
            assert_eq!(n as u64, (host.len() as u64 - off).min(6000));
            assert!(got[..n] == host[off as usize..off as usize + n], "{img}: sparse at {off}");
        }
    }
}

#[test]
fn hostile_images() {
    let t0 = Instant::now();
    let truncated = image("truncated.img");
    assert!(matches!(open(&truncated), Err(Ext4Error::Corrupt { what: "filesystem is larger than the device", .. })));
    let zero = image("zero-groups.img");
    assert!(matches!(open(&zero), Err(Ext4Error::Corrupt { what: "s_blocks_per_group is zero", .. })));

    let dl = image("dirloop.img");
    let mut fs = open(&dl).unwrap();
    assert_eq!(fs.lookup("/a/b/up/b/up/b/c").unwrap().kind(), FileKind::Dir);
    let long = "/a/b/up".to_string() + &"/b/up".repeat(200);
    assert_eq!(fs.lookup(&long).unwrap_err(), Ext4Error::PathTooLong);
    let long = "/emptydir".to_string() + &"/self".repeat(300);
    assert_eq!(fs.lookup(&long).unwrap_err(), Ext4Error::PathTooLong);

    let ep = image("extent-past-end.img");
    let mut fs = open(&ep).unwrap();
    let f = fs.lookup("/boot/grub/grub.cfg").unwrap();
    let e = fs.read_at(&f, 0, &mut [0u8; 100]).unwrap_err();
    assert!(matches!(e, Ext4Error::Corrupt { what: "extent past the end of the filesystem", .. }), "{e}");
    assert!(e.to_string().contains(&format!("inode {}", f.ino())), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(20));

    // A directory block with a bad checksum: flip a byte inside /etc's block.
    let mut data = image("ext4.img");
    let mut fs = open(&data).unwrap();
    let etc = fs.lookup("/etc").unwrap();
    drop(fs);
    let blk = debugfs_bmap("ext4.img", "/etc");
    let name = data[blk * 4096..(blk + 1) * 4096].windows(8).position(|w| w == b"hostname").unwrap();
    data[blk * 4096 + name] = b'H';
    let mut fs = open(&data).unwrap();
    let e = fs.read_dir(&etc).unwrap_err();
    assert_eq!(e, Ext4Error::Checksum { what: "directory block", ino: etc.ino(), block: blk as u64 });
}

fn debugfs_bmap(img: &str, path: &str) -> usize {
    let out = std::process::Command::new("debugfs")
        .args(["-R", &format!("bmap {path} 0"), disks().join(img).to_str().unwrap()])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

fn set_incompat(data: &mut [u8], bit: u32) {
    let sb = &mut data[1024..2048];
    let v = u32::from_le_bytes(sb[0x60..0x64].try_into().unwrap()) | bit;
    sb[0x60..0x64].copy_from_slice(&v.to_le_bytes());
    let c = rxen_loader::crc::crc32c_raw(!0, &sb[..0x3fc]);
    sb[0x3fc..].copy_from_slice(&c.to_le_bytes());
}

#[test]
fn feature_errors_name_the_feature() {
    for (bit, name) in [(0x1000, "dirdata"), (0x8, "journal_dev"), (0x100_0000, "incompat 0x1000000")] {
        let mut data = image("ext4.img");
        set_incompat(&mut data, bit);
        let e = open(&data).err().unwrap();
        assert_eq!(e, Ext4Error::UnsupportedFeature { name });
        assert_eq!(e.to_string(), format!("ext4: unsupported incompat feature: {name}"));
    }
    // A superblock byte changed without fixing the checksum.
    let mut data = image("ext4.img");
    data[1024 + 0x78] ^= 1;
    assert_eq!(open(&data).err().unwrap(), Ext4Error::Checksum { what: "superblock", ino: 0, block: 0 });
    let mut data = image("ext2.img");
    data[1024 + 0x38] = 0;
    assert!(matches!(open(&data), Err(Ext4Error::NotExt { .. })));
}

#[test]
fn dirty_journal_is_replayed_in_memory() {
    let data = image("dirty-journal.img");
    let mut fs = open(&data).unwrap();
    assert!(fs.warnings().iter().any(|w| w.starts_with("journal needs recovery: ")), "{:?}", fs.warnings());
    let f = fs.lookup("/etc/hostname").unwrap();
    let mut b = vec![0u8; f.size() as usize];
    fs.read_at(&f, 0, &mut b).unwrap();
    assert_eq!(&b[..], &b"replayed-from-journal\n"[..b.len()]);
    // Everything else still reads.
    assert_eq!(fs.lookup("/vmlinuz").unwrap().size(), 3 << 20);
}

/// Counts device requests, to check that file data is read in large coalesced requests.
struct Counting<'a> {
    inner: SliceDisk<'a>,
    reads: usize,
    largest: usize,
}

impl rxen_loader::block::BlockDevice for Counting<'_> {
    fn block_size(&self) -> u32 {
        self.inner.block_size()
    }
    fn num_blocks(&self) -> u64 {
        self.inner.num_blocks()
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), rxen_loader::block::BlockError> {
        self.reads += 1;
        self.largest = self.largest.max(buf.len());
        self.inner.read_blocks(lba, buf)
    }
}

#[test]
fn big_reads_are_coalesced() {
    let data = image("ext4.img");
    let mut dev = Counting { inner: SliceDisk::new(&data, 512), reads: 0, largest: 0 };
    let mut fs = Ext4::open(&mut dev).unwrap();
    let k = fs.lookup("/vmlinuz").unwrap();
    let mut buf = vec![0u8; k.size() as usize];
    let before = fs.into_inner().reads;
    // A fresh mount (its own metadata reads counted apart) reads the 3 MiB file.
    let opened = {
        let fs = Ext4::open(&mut dev).unwrap();
        fs.into_inner().reads - before
    };
    let mut fs = Ext4::open(&mut dev).unwrap();
    assert_eq!(fs.read_at(&k, 0, &mut buf).unwrap(), buf.len());
    let reads = fs.into_inner().reads - before - 2 * opened;
    assert!(reads <= 4, "3 MiB read took {reads} device requests");
    assert!(dev.largest >= 1 << 20, "largest request {} bytes", dev.largest);
    assert!(buf == std::fs::read(disks().join("tree/boot/vmlinuz-6.1.0-test")).unwrap());
}

/// `write_in_place` (the grubenv update) rewrites only a whole 1024-byte GRUB environment
/// block (`loader/tests/grubenv_write.rs` has the writes, power cuts and every refusal on
/// images made for it): on every fixture layout anything else is refused by name, the
/// disk untouched.
#[test]
fn write_in_place_refuses_all_but_a_grubenv_block() {
    use rxen_loader::block::VecDisk;
    let refused = |img: &str, path: &str, off: u64, len: usize| -> String {
        let data = image(img);
        let mut fs = Ext4::open(VecDisk::new(data.clone(), 512)).unwrap();
        let ino = fs.lookup(path).unwrap();
        let e = fs.write_in_place(&ino, off, &vec![0x5a; len]).unwrap_err().to_string();
        assert!(fs.into_inner().data == data, "{img}{path}: refused, yet the disk changed");
        e
    };
    for name in ["ext4.img", "ext4-feat.img", "ext4-blockmap.img", "ext2.img", "ext3.img"] {
        let e = refused(name, "/boot/vmlinuz-6.1.0-test", 3000, 3000);
        assert!(e.contains("the file is not exactly 1024 bytes"), "{name}: {e}");
    }
    assert!(refused("ext4.img", "/etc", 0, 16).contains("not a regular file"));
    assert!(refused("ext4.img", "/etc/hostname", 0, 4096).contains("not exactly 1024 bytes"));
    assert!(refused("ext4.img", "/sparse", 1 << 20, 16).contains("not exactly 1024 bytes"));
    assert!(refused("ext4-feat.img", "/etc/hostname", 0, 4).contains("inline"));
    assert!(refused("dirty-journal.img", "/etc/hostname", 0, 4).contains("journal needs recovery"));
}
