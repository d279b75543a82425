// SPDX-License-Identifier: MIT OR Apache-2.0
//! grubenv writes on ext2/3/4 (`Ext4::write_in_place`, through the loader's own
//! `VolumeFs::write_grubenv`) against small images made here with `mkfs.ext4 -d` and
//! patched with `debugfs -w`:
//!
//! * power cuts: for every N from 0 to the number of sector writes the update issues, a
//!   device that takes only the first N sectors (then fails every write, or "loses power":
//!   the call succeeds and nothing more reaches the medium) is left holding exactly the
//!   old or exactly the new 1024-byte block, read back by the loader's ext4 reader and by
//!   `debugfs -R cat`, `e2fsck -fn` clean, and nothing but sectors of the file's data block
//!   was ever written;
//! * every refusal of `write_in_place` (features, inode flags, layouts, a change spanning
//!   two sectors, a disk with sectors larger than the blocks), named, the disk untouched.
//!
//! XFS, FAT and btrfs: `grubenv_write_xfs_fat.rs`.

mod common;

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;

use common::powercut::{Cut, Medium, PowerCutDisk, changes, env_block, same, sbin, update};
use rxen_loader::block::{SliceDisk, VecDisk};
use rxen_loader::config::grubenv;
use rxen_loader::fs::ext4::Ext4;

const ENV: &str = "/boot/grub/grubenv";

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!("rxen-grubenv-write-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An ext2/3/4 image of `size` made by `tool` from a tree holding `/boot/grub/grubenv`
/// (`env`), a grub.cfg and a few other files; `name` keeps concurrent builds apart.
fn mkfs(name: &str, tool: &str, size: &str, env: &[u8], opts: &[&str]) -> Vec<u8> {
    let dir = tmp().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("boot/grub")).unwrap();
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("boot/grub/grubenv"), env).unwrap();
    std::fs::write(tree.join("boot/grub/grub.cfg"), "set default=0\nload_env\n".repeat(40)).unwrap();
    std::fs::write(tree.join("boot/vmlinuz"), vec![0x5au8; 70_000]).unwrap();
    std::fs::write(tree.join("etc/hostname"), "guest\n").unwrap();
    let img = dir.join("fs.img");
    let st = Command::new("truncate").args(["-s", size]).arg(&img).status().unwrap();
    assert!(st.success());
    let out = sbin(tool)
        .args(["-q", "-F", "-U", "0b1e2d3c-4a5b-4c6d-8e7f-8091a2b3c4d5", "-E", "root_owner=0:0", "-d"])
        .arg(&tree)
        .args(opts)
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success(), "{tool} {opts:?}: {}", String::from_utf8_lossy(&out.stderr));
    // mke2fs -d leaves the quota files counting only the root directory: let e2fsck
    // account the tree, so that every later `e2fsck -fn` starts from a clean filesystem.
    let fix = sbin("e2fsck").arg("-fy").arg(&img).output().unwrap();
    assert!(matches!(fix.status.code(), Some(0 | 1)), "e2fsck -fy: {}", String::from_utf8_lossy(&fix.stdout));
    let data = std::fs::read(&img).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    data
}

/// Run `debugfs` (`-w` when `write`) with `cmd` on `fs`, returning its stdout.
fn debugfs(fs: &mut Vec<u8>, write: bool, cmd: &str) -> String {
    let p = tmp().join(format!("debugfs-{:?}.img", std::thread::current().id()));
    std::fs::write(&p, &fs).unwrap();
    let mut c = sbin("debugfs");
    if write {
        c.arg("-w");
    }
    let out = c.args(["-R", cmd]).arg(&p).output().unwrap();
    assert!(out.status.success(), "debugfs {cmd}: {}", String::from_utf8_lossy(&out.stderr));
    if write {
        *fs = std::fs::read(&p).unwrap();
    }
    let _ = std::fs::remove_file(&p);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Set bits in the superblock word at `field` (0x60 incompat, 0x64 ro_compat), fixing its
/// checksum.
fn set_feature(fs: &mut [u8], field: usize, bit: u32) {
    let sb = &mut fs[1024..2048];
    let v = u32::from_le_bytes(sb[field..field + 4].try_into().unwrap()) | bit;
    sb[field..field + 4].copy_from_slice(&v.to_le_bytes());
    let c = rxen_loader::crc::crc32c_raw(!0, &sb[..0x3fc]);
    sb[0x3fc..].copy_from_slice(&c.to_le_bytes());
}

fn flags(fs: &mut Vec<u8>) -> u32 {
    let out = debugfs(fs, false, &format!("stat {ENV}"));
    let at = out.find("Flags: 0x").unwrap() + 9;
    let hex: String = out[at..].chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    u32::from_str_radix(&hex, 16).unwrap()
}

fn set_flags(fs: &mut Vec<u8>, add: u32) {
    let f = flags(fs) | add;
    debugfs(fs, true, &format!("set_inode_field {ENV} flags 0x{f:x}"));
}

/// (the file's data block, the filesystem block size).
fn data_block(fs: &mut Vec<u8>) -> (u64, u64) {
    let blk = debugfs(fs, false, &format!("bmap {ENV} 0")).trim().parse().unwrap();
    let bs = u64::from(u32::from_le_bytes(fs[1024 + 0x18..1024 + 0x1c].try_into().unwrap()));
    (blk, 1024 << bs)
}

/// The grubenv file as the loader's ext4 reader sees it in `fs`.
fn read_loader(fs: &[u8]) -> Vec<u8> {
    let mut e = Ext4::open(SliceDisk::new(fs, 512)).unwrap();
    let ino = e.lookup(ENV).unwrap();
    let mut b = vec![0u8; ino.size() as usize];
    assert_eq!(e.read_at(&ino, 0, &mut b).unwrap(), b.len());
    b
}

/// The grubenv file as `debugfs -R cat` sees it, and `e2fsck -fn`'s verdict, on `fs`.
fn read_e2fsprogs(fs: &[u8], tag: &str) -> (Vec<u8>, Result<(), String>) {
    let p = tmp().join(format!("check-{tag}.img"));
    std::fs::write(&p, fs).unwrap();
    let cat = sbin("debugfs").args(["-R", &format!("cat {ENV}")]).arg(&p).output().unwrap();
    assert!(cat.status.success());
    let fsck = sbin("e2fsck").arg("-fn").arg(&p).output().unwrap();
    let verdict = if fsck.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&fsck.stdout), String::from_utf8_lossy(&fsck.stderr)))
    };
    let _ = std::fs::remove_file(&p);
    (cat.stdout, verdict)
}

/// One layout for the power-cut runs: a filesystem image, where it sits on the disk, the
/// disk's sector size.
struct Layout {
    name: &'static str,
    tool: &'static str,
    size: &'static str,
    opts: &'static [&'static str],
    /// Byte offset of the filesystem on the disk (an MBR partition when not 0).
    part: u64,
    sector: u32,
}

const LAYOUTS: &[Layout] = &[
    Layout {
        name: "ext4-4k",
        tool: "mkfs.ext4",
        size: "16M",
        opts: &["-b", "4096", "-O", "quota,project,verity"],
        part: 0,
        sector: 512,
    },
    Layout {
        name: "ext4-1k-csum-seed",
        tool: "mkfs.ext4",
        size: "12M",
        opts: &["-b", "1024", "-I", "256", "-O", "64bit,metadata_csum,metadata_csum_seed,inline_data,huge_file"],
        part: 0,
        sector: 512,
    },
    Layout {
        name: "ext4-blockmap",
        tool: "mkfs.ext4",
        size: "12M",
        opts: &["-b", "1024", "-O", "^extents,^64bit,^flex_bg,^metadata_csum,uninit_bg"],
        part: 0,
        sector: 512,
    },
    Layout { name: "ext2", tool: "mkfs.ext2", size: "8M", opts: &["-b", "1024"], part: 0, sector: 512 },
    Layout { name: "ext3-2k", tool: "mkfs.ext3", size: "12M", opts: &["-b", "2048"], part: 0, sector: 512 },
    Layout { name: "ext4-4kn", tool: "mkfs.ext4", size: "16M", opts: &["-b", "4096"], part: 0, sector: 4096 },
    Layout {
        name: "ext4-mbr-32bit-desc",
        tool: "mkfs.ext4",
        size: "16M",
        opts: &["-b", "4096", "-O", "^64bit,metadata_csum"],
        part: 1 << 20,
        sector: 512,
    },
];

/// The disk for `fs` in layout `l`: the filesystem itself, or an MBR disk with it as
/// partition 1 at `l.part`.
fn disk_of(name: &str, l: &Layout, fs: &[u8]) -> Vec<u8> {
    if l.part == 0 {
        return fs.to_vec();
    }
    let p = tmp().join(format!("{name}-disk.img"));
    let size = l.part as usize + fs.len();
    std::fs::write(&p, vec![0u8; size]).unwrap();
    let mut sfdisk = sbin("sfdisk").args(["-q"]).arg(&p).stdin(std::process::Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    let start = l.part / 512;
    let spec = format!("label: dos\nunit: sectors\n{start},{},83\n", fs.len() / 512);
    sfdisk.stdin.take().unwrap().write_all(spec.as_bytes()).unwrap();
    assert!(sfdisk.wait().unwrap().success());
    let mut d = std::fs::read(&p).unwrap();
    let _ = std::fs::remove_file(&p);
    d[l.part as usize..].copy_from_slice(fs);
    d
}

/// For every N from 0 to the number of sector writes the update of `vars` issues (and
/// for both ways of losing the rest), the medium holds exactly `old` or exactly `new`
/// (`new` iff all N were taken), read by the loader and by debugfs, e2fsck is clean, and
/// every sector ever issued is inside the file's data block. Returns (sectors the update
/// issues, runs).
fn power_cuts(test: &str, l: &Layout, old: &[u8], vars: &[(String, Option<String>)], new: &[u8]) -> (usize, usize) {
    let name = format!("{test}-{}", l.name);
    let mut fs = mkfs(&name, l.tool, l.size, old, l.opts);
    let (blk, bs) = data_block(&mut fs);
    let disk = disk_of(&name, l, &fs);
    let (cat, fsck) = read_e2fsprogs(&fs, &format!("{name}-before"));
    assert_eq!(cat, old, "{name}: debugfs cat before the update");
    fsck.unwrap_or_else(|e| panic!("{name}: e2fsck -fn before the update: {e}"));
    let sector = u64::from(l.sector);
    let inside = |s: u64| {
        let at = s * sector;
        at >= l.part + blk * bs && at + sector <= l.part + (blk + 1) * bs
    };
    // An unlimited run: how many sector writes the update issues.
    let (done, issued, r) = update(&disk, l.sector, ENV, vars, usize::MAX, Cut::Error);
    let total = issued.len();
    assert!(r.as_ref().is_ok_and(|m| m.contains(": saved ")), "{}: {r:?}", l.name);
    assert!(total >= 1, "{}: nothing written", l.name);
    let fs_of = |d: &[u8]| d[l.part as usize..l.part as usize + fs.len()].to_vec();
    assert_eq!(read_loader(&fs_of(&done)), new, "{}", l.name);
    let mut runs = 0;
    for cut in [Cut::Error, Cut::LosePower] {
        for n in 0..=total {
            let tag = format!("{name}-{cut:?}-{n}");
            let (medium, issued, r) = update(&disk, l.sector, ENV, vars, n, cut);
            runs += 1;
            assert!(issued.iter().all(|&s| inside(s)), "{tag}: wrote sectors {issued:?} outside block {blk}");
            assert!(issued.len() <= total, "{tag}: {} sectors issued", issued.len());
            // Nothing outside the file's block changed on the disk, at any byte.
            let (lo, hi) = ((l.part + blk * bs) as usize, (l.part + (blk + 1) * bs) as usize);
            assert!(medium[..lo] == disk[..lo] && medium[hi..] == disk[hi..], "{tag}: bytes outside the block");
            let want = if n >= total { new } else { old };
            let fsb = fs_of(&medium);
            same(&read_loader(&fsb), want, &format!("{tag}: the loader's reader"));
            let (cat, fsck) = read_e2fsprogs(&fsb, &tag);
            same(&cat, want, &format!("{tag}: debugfs cat"));
            fsck.unwrap_or_else(|e| panic!("{tag}: e2fsck -fn: {e}"));
            match (n >= total, cut) {
                (true, _) => assert!(r.as_ref().is_ok_and(|m| m.contains(": saved ")), "{tag}: {r:?}"),
                (false, Cut::Error) => {
                    let e = r.unwrap_err();
                    assert!(e.contains("not saved: ext4: the device reported I/O error"), "{tag}: {e}");
                }
                (false, Cut::LosePower) => {
                    let e = r.unwrap_err();
                    assert!(
                        e.contains("not saved: ext4: the device is unusable: the bytes read back differ"),
                        "{tag}: {e}"
                    );
                }
            }
        }
    }
    (total, runs)
}

/// The corpus's grubenv files (`tests/fixtures/configs/*/.../grubenv`), as the
/// distributions' tools wrote them.
fn corpus_envs() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/configs");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.file_name().is_some_and(|n| n == "grubenv") {
                let name = p.strip_prefix(&root).unwrap().display().to_string();
                out.push((name, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 8, "{} corpus grubenv files", out.len());
    out
}

/// The writes GRUB's configurations ask for: Ubuntu/Debian's boot once (next_entry
/// cleared, recordfail), savedefault, Fedora's boot_success.
fn typical_writes() -> Vec<Vec<(String, Option<String>)>> {
    let long = "gnulinux-advanced-4d2a1b5c-8e3f-4a6b-9c7d-1e2f3a4b5c6d>gnulinux-6.8.0-40-generic-advanced-4d2a1b5c";
    vec![
        changes(&[("next_entry", Some("")), ("recordfail", Some("1"))]),
        changes(&[("saved_entry", Some(long))]),
        changes(&[("boot_success", Some("1")), ("boot_indeterminate", Some("0"))]),
        changes(&[("next_entry", None)]),
    ]
}

/// Every corpus grubenv, with every typical write, changes in the first 512 bytes only:
/// the one-sector rule refuses none of them. Each is written on an ext4 image and
/// e2fsck stays clean.
#[test]
fn every_corpus_grubenv_update_is_one_sector() {
    for (name, old) in corpus_envs() {
        assert_eq!(old.len(), 1024, "{name}");
        for vars in typical_writes() {
            let new = grubenv::update(&old, &vars).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(old[512..] == new[512..], "{name}: {vars:?} changes the second sector");
        }
        let tag = format!("corpus-{}", name.replace(['/', ','], "_"));
        let fs = mkfs(&tag, "mkfs.ext4", "8M", &old, &[]);
        // All but the last (a delete of what the first sets) at once.
        let vars: Vec<_> = typical_writes()[..3].concat();
        let new = grubenv::update(&old, &vars).unwrap();
        let (medium, issued, r) = update(&fs, 512, ENV, &vars, usize::MAX, Cut::Error);
        assert!(r.as_ref().is_ok_and(|m| m.contains(": saved ")), "{name}: {r:?}");
        assert_eq!(issued.len(), usize::from(new != old), "{name}");
        assert_eq!(read_loader(&medium), new, "{name}");
        let (cat, fsck) = read_e2fsprogs(&medium, &tag);
        assert_eq!(cat, new, "{name}");
        fsck.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Ubuntu 24.04's boot once from the corpus: `grub-reboot` set next_entry, grub.cfg
/// clears it and saves recordfail: the change stays in the first 512 bytes.
#[test]
fn power_cut_while_clearing_next_entry_leaves_old_or_new() {
    let (_, old) = corpus_envs().into_iter().find(|(n, _)| n.starts_with("ubuntu2404/")).unwrap();
    let vars = changes(&[("next_entry", Some("")), ("recordfail", Some("1"))]);
    let new = grubenv::update(&old, &vars).unwrap();
    assert_ne!(old[..512], new[..512]);
    assert_eq!(old[512..], new[512..]);
    let mut runs = 0;
    for l in LAYOUTS {
        let (total, n) = power_cuts("next-entry", l, &old, &vars, &new);
        assert_eq!(total, 1, "{}: one sector", l.name);
        runs += n;
    }
    eprintln!("{runs} power-cut runs over {} layouts", LAYOUTS.len());
}

/// RHEL-style long kernelopts push the block past 512 bytes; boot_success lives in the
/// second half and only that sector is written.
#[test]
fn power_cut_in_the_second_sector_leaves_old_or_new() {
    let opts =
        "root=/dev/mapper/rhel-root ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=/dev/mapper/rhel-swap \
                rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet "
            .repeat(3);
    let old = env_block(&[
        ("saved_entry", "0b1e2d3c4a5b4c6d8e7f8091a2b3c4d5-5.14.0-362.el9.x86_64"),
        ("kernelopts", &opts),
        ("boot_success", "0"),
    ]);
    let vars = changes(&[("boot_success", Some("1"))]);
    let new = grubenv::update(&old, &vars).unwrap();
    assert_eq!(old[..512], new[..512]);
    assert_ne!(old[512..], new[512..]);
    let mut runs = 0;
    for l in LAYOUTS {
        let (total, n) = power_cuts("second-sector", l, &old, &vars, &new);
        assert_eq!(total, 1, "{}", l.name);
        runs += n;
    }
    eprintln!("{runs} power-cut runs over {} layouts", LAYOUTS.len());
}

// ---- refusals -----------------------------------------------------------------------

fn small_env() -> Vec<u8> {
    env_block(&[("saved_entry", "0"), ("next_entry", "1")])
}

/// `write_in_place` of the update clearing next_entry on `fs` (a disk of `sector`-byte
/// sectors) must fail; returns the message, after checking nothing was written.
fn refused_on(fs: &[u8], sector: u32) -> String {
    let m = Rc::new(RefCell::new(Medium {
        data: fs.to_vec(),
        budget: usize::MAX,
        cut: Cut::Error,
        issued: Vec::new(),
        taken: 0,
    }));
    let mut e = Ext4::open(PowerCutDisk { m: m.clone(), bs: sector }).unwrap();
    let ino = e.lookup(ENV).unwrap();
    let mut old = vec![0u8; ino.size() as usize];
    let _ = e.read_at(&ino, 0, &mut old);
    let new = match grubenv::update(&old, &changes(&[("next_entry", Some(""))])) {
        Ok(n) => n,
        Err(_) => old.iter().map(|b| b ^ 1).collect(),
    };
    let err = e.write_in_place(&ino, 0, &new).unwrap_err().to_string();
    let m = m.borrow();
    assert!(m.issued.is_empty() && m.data == fs, "refused ({err}), yet sectors {:?} were written", m.issued);
    err
}

fn refused(fs: &[u8]) -> String {
    refused_on(fs, 512)
}

fn expect(err: String, want: &str) {
    assert!(err.starts_with("ext4: cannot rewrite the file in place: "), "{err}");
    assert!(err.contains(want), "{err:?} does not say {want:?}");
}

#[test]
fn refuses_inode_flags_that_forbid_or_change_the_write() {
    let base = mkfs("flags", "mkfs.ext4", "8M", &small_env(), &["-O", "verity"]);
    for (flag, why) in [
        (0x10, "the file is immutable (chattr +i)"),
        (0x20, "the file is append-only (chattr +a)"),
        (0x10_0000, "the file has fs-verity"),
        (0x800, "the file is encrypted"),
        (0x1000_0000, "its data is inline in the inode"),
        (0x4, "the file is compressed"),
        (0x200, "the file is compressed"),
        (0x20_0000, "the inode holds an extended attribute value"),
        (0x100_0000, "the file is a snapshot"),
        (0x2000, "the writer does not know inode flag 0x2000"),
        (0x8000_0000, "the writer does not know inode flag 0x80000000"),
    ] {
        let mut fs = base.clone();
        set_flags(&mut fs, flag);
        expect(refused(&fs), why);
    }
    // Harmless flags: written.
    let mut fs = base.clone();
    set_flags(&mut fs, 0x80 | 0x40 | 0x8); // noatime, nodump, sync
    let mut e = Ext4::open(VecDisk::new(fs, 512)).unwrap();
    let ino = e.lookup(ENV).unwrap();
    let new = grubenv::update(&small_env(), &changes(&[("next_entry", Some(""))])).unwrap();
    e.write_in_place(&ino, 0, &new).unwrap();
    assert_eq!(read_loader(&e.into_inner().data), new);
}

#[test]
fn refuses_features_it_does_not_know_to_be_safe() {
    let base = mkfs("features", "mkfs.ext4", "8M", &small_env(), &[]);
    for (bit, why) in [
        (0x1000, "the filesystem is marked read-only (feature read-only)"),
        (0x4000, "shared_blocks: data blocks may be shared between files"),
        (0x80, "has_snapshot"),
        (0x1_0000, "orphan_present"),
        (0x800, "the writer does not know ro_compat feature 0x800"),
        (0x4, "the writer does not know ro_compat feature 0x4"),
        (0x2_0000, "the writer does not know ro_compat feature 0x20000"),
        (0x8000_0000, "the writer does not know ro_compat feature 0x80000000"),
    ] {
        let mut fs = base.clone();
        set_feature(&mut fs, 0x64, bit);
        expect(refused(&fs), why);
    }
    let fs = mkfs("bigalloc", "mkfs.ext4", "32M", &small_env(), &["-b", "4096", "-O", "bigalloc", "-C", "65536"]);
    expect(refused(&fs), "bigalloc");
    let fs = mkfs("mmp", "mkfs.ext4", "8M", &small_env(), &["-O", "mmp"]);
    expect(refused(&fs), "mmp: another host may be using the filesystem");
    // A journal with a committed transaction to replay (as scripts/build-disk-fixtures
    // makes dirty-journal.img; debugfs's journal writer leaves metadata_csum descriptor
    // checksums stale, so without it).
    let mut fs = mkfs("journal", "mkfs.ext4", "8M", &small_env(), &["-O", "^metadata_csum"]);
    let (blk, _) = data_block(&mut fs);
    let jblock = tmp().join("journal-block.bin");
    std::fs::write(&jblock, vec![b'#'; 1024]).unwrap();
    let cmds = tmp().join("journal.cmds");
    std::fs::write(&cmds, format!("jo\njw -b {blk} {}\njc\n", jblock.display())).unwrap();
    let p = tmp().join("journal.img");
    std::fs::write(&p, &fs).unwrap();
    let out = sbin("debugfs").arg("-w").arg("-f").arg(&cmds).arg(&p).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fs = std::fs::read(&p).unwrap();
    for f in [&p, &cmds, &jblock] {
        let _ = std::fs::remove_file(f);
    }
    assert_ne!(fs[1024 + 0x60] & 0x4, 0, "needs_recovery not set");
    expect(refused(&fs), "the journal needs recovery");
}

#[test]
fn refuses_anything_but_one_plain_1024_byte_block() {
    let env = small_env();
    // Sizes.
    for (name, data) in [("short", env[..1000].to_vec()), ("long", [&env[..], &[b'#'; 1024][..]].concat())] {
        let fs = mkfs(name, "mkfs.ext4", "8M", &data, &[]);
        expect(refused(&fs), "the file is not exactly 1024 bytes");
    }
    let base = mkfs("layout", "mkfs.ext4", "8M", &env, &[]);
    // Part of the file only.
    let mut e = Ext4::open(VecDisk::new(base.clone(), 512)).unwrap();
    let ino = e.lookup(ENV).unwrap();
    expect(e.write_in_place(&ino, 512, &env[512..]).unwrap_err().to_string(), "does not cover the whole file");
    expect(e.write_in_place(&ino, 0, &env[..512]).unwrap_err().to_string(), "does not cover the whole file");
    let dir = e.lookup("/boot/grub").unwrap();
    expect(e.write_in_place(&dir, 0, &env).unwrap_err().to_string(), "not a regular file");
    // The extent in the inode: i_block[3] = ee_block, [4] = ee_len | ee_start_hi << 16,
    // [5] = ee_start_lo; [0] = magic | entries << 16, [1] = max | depth << 16.
    for (field, value, why) in [
        ("block[4]", "0x8001", "its data is in an uninitialised extent"),
        ("block[4]", "2", "its extent is not one block at the start of the file"),
        ("block[3]", "1", "its extent is not one block at the start of the file"),
        ("block[0]", "0x2f30a", "its data is not one extent in the inode"),
        ("block[1]", "0x10004", "its data is not one extent in the inode"),
    ] {
        let mut fs = base.clone();
        debugfs(&mut fs, true, &format!("sif {ENV} {field} {value}"));
        expect(refused(&fs), why);
    }
    // The extent pointing at metadata (the inode table, a bitmap, the descriptors) or at
    // a free block.
    let mut fs = base.clone();
    let imap = debugfs(&mut fs, false, &format!("imap {ENV}"));
    let itable: u64 = imap.split("located at block ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    let free: u64 = debugfs(&mut fs, false, "ffb 1 4000").split("found: ").nth(1).unwrap().trim().parse().unwrap();
    for (blk, why) in [
        (itable, "its data block is also filesystem metadata"),
        (2, "its data block is also filesystem metadata"),
        (free, "its data block is free in the block bitmap"),
    ] {
        let mut fs = base.clone();
        debugfs(&mut fs, true, &format!("sif {ENV} block[5] {blk}"));
        expect(refused(&fs), why);
    }
    // Block maps: one direct block and nothing else.
    let mut fs = mkfs("layout-ext2", "mkfs.ext2", "8M", &env, &["-b", "1024"]);
    debugfs(&mut fs, true, &format!("sif {ENV} block[1] 3000"));
    expect(refused(&fs), "its data is not one direct block");
    let mut fs = mkfs("layout-ext2-hole", "mkfs.ext2", "8M", &env, &["-b", "1024"]);
    debugfs(&mut fs, true, &format!("sif {ENV} block[0] 0"));
    expect(refused(&fs), "a hole");
}

/// A disk with 4096-byte sectors under 1 KiB blocks: one sector write would rewrite three
/// other blocks too.
#[test]
fn refuses_sectors_larger_than_blocks() {
    let fs = mkfs("4kn-1k", "mkfs.ext4", "8M", &small_env(), &["-b", "1024"]);
    expect(refused_on(&fs, 4096), "the disk's sectors are larger than the filesystem's blocks");
}

/// A change in both halves of the block (next_entry, first, is deleted and everything
/// after it moves back over the 512-byte line) cannot be written as one sector: refused,
/// nothing written, the block and the filesystem as they were.
#[test]
fn refuses_a_change_spanning_two_sectors() {
    let old = env_block(&[("next_entry", "once"), ("kernelopts", &"quiet splash ".repeat(40))]);
    let vars = changes(&[("next_entry", None)]);
    let new = grubenv::update(&old, &vars).unwrap();
    assert!(old[..512] != new[..512] && old[512..] != new[512..]);
    for l in LAYOUTS {
        let name = format!("two-sectors-{}", l.name);
        let fs = mkfs(&name, l.tool, l.size, &old, l.opts);
        let disk = disk_of(&name, l, &fs);
        let (medium, issued, r) = update(&disk, l.sector, ENV, &vars, usize::MAX, Cut::Error);
        if l.sector >= 1024 {
            // One sector holds the whole block: written.
            assert!(r.is_ok(), "{}: {r:?}", l.name);
            assert_eq!(issued.len(), 1, "{}", l.name);
            continue;
        }
        let e = r.unwrap_err();
        assert!(
            e.contains("not saved: ext4: cannot rewrite the file in place: the new bytes differ from the old ones in more than one disk sector"),
            "{}: {e}",
            l.name
        );
        assert!(issued.is_empty() && medium == disk, "{}: {issued:?}", l.name);
    }
}

/// The same bytes again: nothing is written at all.
#[test]
fn an_unchanged_block_writes_nothing() {
    let fs = mkfs("unchanged", "mkfs.ext4", "8M", &small_env(), &[]);
    let m =
        Rc::new(RefCell::new(Medium { data: fs.clone(), budget: 0, cut: Cut::Error, issued: Vec::new(), taken: 0 }));
    let mut e = Ext4::open(PowerCutDisk { m: m.clone(), bs: 512 }).unwrap();
    let ino = e.lookup(ENV).unwrap();
    e.write_in_place(&ino, 0, &small_env()).unwrap();
    assert!(m.borrow().issued.is_empty());
}

/// A read-only disk: every check passes, the one sector write fails with the device's
/// reason, nothing changes.
#[test]
fn a_read_only_disk_says_so() {
    let fs = mkfs("read-only", "mkfs.ext4", "8M", &small_env(), &[]);
    let mut e = Ext4::open(SliceDisk::new(&fs, 512)).unwrap();
    let ino = e.lookup(ENV).unwrap();
    let new = grubenv::update(&small_env(), &changes(&[("next_entry", Some(""))])).unwrap();
    assert_eq!(e.write_in_place(&ino, 0, &new).unwrap_err().to_string(), "ext4: the device is read-only");
}
