// SPDX-License-Identifier: MIT OR Apache-2.0
//! grubenv writes on XFS and FAT (and btrfs, which refuses them), through the loader's
//! own `VolumeFs::write_grubenv`, against filesystems made here by the real tools
//! (`mkfs.xfs -p`, `mkfs.vfat` + `mcopy`, `mkfs.btrfs --rootdir`), no root needed:
//!
//! * power cuts: for every N from 0 to the number of sector writes the update issues, a
//!   device that takes only the first N (then fails every write, or "loses power": the
//!   call succeeds and nothing more reaches the medium) holds exactly the old or exactly
//!   the new block, as the loader reads it and as the tools see it (`mtype` for FAT; for
//!   XFS the bytes of the file's block, which `xfs_repair -n` checks belong to it), and
//!   `xfs_repair -n` / `fsck.vfat -n` are clean; only one sector of the file's block is
//!   ever written;
//! * XFS refuses, writing nothing, what it cannot do safely: immutable, append-only and
//!   reflinked files, an unknown read-only-compatible feature, a log not known clean;
//! * a change spanning two sectors is refused on both, and btrfs writes nothing.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::powercut::{Cut, changes, env_block, same, sbin, update};
use rxen_loader::config::grubenv;

const ENV: &str = "/boot/grub/grubenv";

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!("rxen-grubenv-xfs-fat-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(c: &mut Command) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Xfs,
    Fat,
}

struct Layout {
    name: &'static str,
    kind: Kind,
    size: &'static str,
    opts: &'static [&'static str],
    /// The disk's sector size.
    sector: u32,
}

const LAYOUTS: &[Layout] = &[
    Layout { name: "xfs-v5", kind: Kind::Xfs, size: "16M", opts: &[], sector: 512 },
    Layout { name: "xfs-v5-1k", kind: Kind::Xfs, size: "16M", opts: &["-b", "size=1024"], sector: 512 },
    Layout { name: "xfs-v5-4kn", kind: Kind::Xfs, size: "16M", opts: &["-s", "size=4096"], sector: 4096 },
    Layout { name: "xfs-v4-512", kind: Kind::Xfs, size: "16M", opts: &["-m", "crc=0", "-b", "size=512"], sector: 512 },
    Layout { name: "fat12", kind: Kind::Fat, size: "4M", opts: &["-F", "12"], sector: 512 },
    Layout { name: "fat16", kind: Kind::Fat, size: "24M", opts: &["-F", "16", "-s", "4"], sector: 512 },
    Layout { name: "fat32", kind: Kind::Fat, size: "40M", opts: &["-F", "32"], sector: 512 },
    Layout {
        name: "fat16-4kn",
        kind: Kind::Fat,
        size: "32M",
        opts: &["-F", "16", "-S", "4096", "-s", "1"],
        sector: 4096,
    },
];

/// A source tree with `env` as /boot/grub/grubenv, a grub.cfg, a kernel-sized file of
/// random bytes and /etc/hostname.
fn tree(dir: &std::path::Path, env: &[u8]) -> PathBuf {
    let t = dir.join("tree");
    let _ = std::fs::remove_dir_all(&t);
    std::fs::create_dir_all(t.join("boot/grub")).unwrap();
    std::fs::create_dir_all(t.join("etc")).unwrap();
    std::fs::write(t.join("boot/grub/grubenv"), env).unwrap();
    std::fs::write(t.join("boot/grub/grub.cfg"), "set default=0\nload_env\n".repeat(40)).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let kernel: Vec<u8> = (0..70_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(t.join("boot/vmlinuz"), kernel).unwrap();
    std::fs::write(t.join("etc/hostname"), "guest\n").unwrap();
    t
}

/// The filesystem of layout `l` holding the tree with `env`.
fn mkfs(test: &str, l: &Layout, env: &[u8]) -> Vec<u8> {
    let dir = tmp().join(format!("{test}-{}", l.name));
    std::fs::create_dir_all(&dir).unwrap();
    let t = tree(&dir, env);
    let img = dir.join("fs.img");
    let _ = std::fs::remove_file(&img);
    run(Command::new("truncate").args(["-s", l.size]).arg(&img));
    match l.kind {
        Kind::Xfs => {
            let proto = dir.join("proto");
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            let p = run(Command::new(root.join("scripts/xfs-protofile")).arg(&t));
            std::fs::write(&proto, p).unwrap();
            // mkfs.xfs makes filesystems under 300 MB only for the XFS test suite, which
            // says so with these (xfsprogs mkfs/xfs_mkfs.c).
            run(sbin("mkfs.xfs")
                .envs([("TEST_DIR", "1"), ("TEST_DEV", "1"), ("QA_CHECK_FS", "1")])
                .args(["-q", "-f", "-d", "agcount=1", "-p"])
                .arg(&proto)
                .args(l.opts)
                .arg(&img));
        }
        Kind::Fat => {
            run(sbin("mkfs.vfat").args(["-i", "0b1e2d3c"]).args(l.opts).arg(&img));
            let i = img.to_str().unwrap();
            run(Command::new("mmd").args(["-i", i, "::/boot", "::/boot/grub", "::/etc"]));
            for f in ["boot/grub/grubenv", "boot/grub/grub.cfg", "boot/vmlinuz", "etc/hostname"] {
                let to = format!("::/{f}");
                run(Command::new("mcopy").args(["-i", i]).arg(t.join(f)).arg(&to));
            }
        }
    }
    let data = std::fs::read(&img).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    data
}

/// Where the file's block is: the one sector-aligned place in `fs` holding `env`.
fn locate(fs: &[u8], env: &[u8], what: &str) -> usize {
    let at: Vec<usize> = (0..fs.len() - env.len()).step_by(512).filter(|&p| &fs[p..p + env.len()] == env).collect();
    assert_eq!(at.len(), 1, "{what}: the grubenv block found at {at:?}");
    at[0]
}

/// The grubenv file as the tools see it in `fs`, where the block was at `at`, and the
/// tools' fsck verdict.
fn tools_view(l: &Layout, fs: &[u8], at: usize, tag: &str) -> (Vec<u8>, Result<(), String>) {
    let p = tmp().join(format!("check-{tag}.img"));
    std::fs::write(&p, fs).unwrap();
    let (env, fsck) = match l.kind {
        Kind::Xfs => {
            // One AG: xfs_repair wants to be told it cannot cross-check the geometry.
            let r = sbin("xfs_repair").args(["-n", "-f", "-o", "force_geometry"]).arg(&p).output().unwrap();
            (fs[at..at + grubenv::BLOCK_SIZE].to_vec(), r)
        }
        Kind::Fat => {
            let cat = run(Command::new("mtype").args(["-i", p.to_str().unwrap(), &format!("::{ENV}")]));
            let r = sbin("fsck.vfat").arg("-n").arg(&p).output().unwrap();
            (cat.into_bytes(), r)
        }
    };
    let _ = std::fs::remove_file(&p);
    let verdict = if fsck.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&fsck.stdout), String::from_utf8_lossy(&fsck.stderr)))
    };
    (env, verdict)
}

/// The grubenv file as the loader reads it from `fs`.
fn loader_view(fs: &[u8], sector: u32) -> Vec<u8> {
    let dev = rxen_loader::block::VecDisk::new(fs.to_vec(), sector);
    let mut f = rxen_loader::fs::mount(Box::new(dev)).unwrap();
    let n = f.lookup(ENV).unwrap();
    let mut b = vec![0u8; n.size as usize];
    assert_eq!(f.read_at(&n, 0, &mut b).unwrap(), b.len());
    b
}

/// Every power cut of the update of `vars` (old -> new) on layout `l`. Returns the runs.
fn power_cuts(test: &str, l: &Layout, old: &[u8], vars: &[(String, Option<String>)], new: &[u8]) -> usize {
    let name = format!("{test}-{}", l.name);
    let disk = mkfs(test, l, old);
    let at = locate(&disk, old, &name);
    let (cat, fsck) = tools_view(l, &disk, at, &format!("{name}-before"));
    same(&cat, old, &format!("{name}: the tools' view before the update"));
    fsck.unwrap_or_else(|e| panic!("{name}: fsck before the update: {e}"));
    let sector = l.sector as usize;
    let (done, issued, r) = update(&disk, l.sector, ENV, vars, usize::MAX, Cut::Error);
    assert!(r.as_ref().is_ok_and(|m| m.contains(": saved ")), "{name}: {r:?}");
    assert_eq!(issued.len(), 1, "{name}: one sector write, not {issued:?}");
    same(&loader_view(&done, l.sector), new, &format!("{name}: the loader, after"));
    let fs = match l.kind {
        Kind::Xfs => "xfs",
        Kind::Fat => "fat",
    };
    let mut runs = 0;
    for cut in [Cut::Error, Cut::LosePower] {
        for n in 0..=issued.len() {
            let tag = format!("{name}-{cut:?}-{n}");
            let (medium, got, r) = update(&disk, l.sector, ENV, vars, n, cut);
            runs += 1;
            assert_eq!(got, issued, "{tag}: the sectors asked for");
            // Nothing but the one sector of the file's block changed, at any byte.
            let (lo, hi) = (issued[0] as usize * sector, (issued[0] as usize + 1) * sector);
            assert!(lo <= at + grubenv::BLOCK_SIZE && hi > at && (lo >= at || sector > 512), "{tag}: sector {lo:#x}");
            assert!(medium[..lo] == disk[..lo] && medium[hi..] == disk[hi..], "{tag}: bytes outside the sector");
            let want = if n >= issued.len() { new } else { old };
            same(&loader_view(&medium, l.sector), want, &format!("{tag}: the loader's reader"));
            let (cat, fsck) = tools_view(l, &medium, at, &tag);
            same(&cat, want, &format!("{tag}: the tools' view"));
            fsck.unwrap_or_else(|e| panic!("{tag}: fsck: {e}"));
            match (n >= issued.len(), cut) {
                (true, _) => assert!(r.as_ref().is_ok_and(|m| m.contains(": saved ")), "{tag}: {r:?}"),
                (false, Cut::Error) => {
                    let e = r.unwrap_err();
                    assert!(e.contains(&format!("not saved: {fs}: ")) && e.contains("I/O error"), "{tag}: {e}");
                }
                (false, Cut::LosePower) => {
                    let e = r.unwrap_err();
                    assert!(e.contains(&format!("not saved: {fs}: ")) && e.contains("read back differ"), "{tag}: {e}");
                }
            }
        }
    }
    runs
}

/// Ubuntu's boot once (next_entry cleared, recordfail set: the first sector) and RHEL's
/// boot_success behind long kernelopts (the second sector), on every layout.
#[test]
fn power_cuts_leave_old_or_new() {
    let once = env_block(&[("saved_entry", "gnulinux-advanced-4d2a1b5c"), ("next_entry", "1")]);
    let once_vars = changes(&[("next_entry", Some("")), ("recordfail", Some("1"))]);
    let opts = "root=/dev/mapper/rhel-root ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M rhgb quiet ".repeat(6);
    let rhel =
        env_block(&[("saved_entry", "0b1e2d3c-5.14.0-362.el9.x86_64"), ("kernelopts", &opts), ("boot_success", "0")]);
    let rhel_vars = changes(&[("boot_success", Some("1"))]);
    let mut runs = 0;
    for (test, old, vars, sector) in [("once", &once, &once_vars, 0), ("second", &rhel, &rhel_vars, 1)] {
        let new = grubenv::update(old, vars).unwrap();
        for (s, (a, b)) in old.chunks(512).zip(new.chunks(512)).enumerate() {
            assert_eq!(a != b, s == sector, "{test}: sector {s} of the block");
        }
        for l in LAYOUTS {
            runs += power_cuts(test, l, old, vars, &new);
        }
    }
    eprintln!("{runs} power-cut runs over {} layouts", LAYOUTS.len());
}

/// A change in both halves of the block is refused on XFS and FAT, nothing written.
#[test]
fn a_change_spanning_two_sectors_is_refused() {
    let old = env_block(&[("next_entry", "once"), ("kernelopts", &"quiet splash ".repeat(40))]);
    let vars = changes(&[("next_entry", None)]);
    let new = grubenv::update(&old, &vars).unwrap();
    assert!(old[..512] != new[..512] && old[512..] != new[512..]);
    for l in LAYOUTS.iter().filter(|l| l.sector == 512) {
        let disk = mkfs("two", l, &old);
        let (medium, issued, r) = update(&disk, l.sector, ENV, &vars, usize::MAX, Cut::Error);
        let e = r.unwrap_err();
        assert!(e.contains("the change spans 2 disk sectors"), "{}: {e}", l.name);
        assert!(issued.is_empty() && medium == disk, "{}: written: {issued:?}", l.name);
    }
}

/// The update on `disk` must be refused with `want` in its message, nothing written.
fn refused(disk: &[u8], env: &str, want: &str, what: &str) {
    let vars = changes(&[("next_entry", Some(""))]);
    let (medium, issued, r) = update(disk, 512, env, &vars, usize::MAX, Cut::Error);
    let e = r.expect_err(what);
    assert!(e.contains("not saved: xfs: ") && e.contains(want), "{what}: {e}");
    assert!(issued.is_empty() && medium == disk, "{what}: written: {issued:?}");
}

/// `xfs_db -x` commands `cmds` run on a copy of `fs`.
fn xfs_db(fs: &[u8], cmds: &[&str], tag: &str) -> Vec<u8> {
    let p = tmp().join(format!("db-{tag}.img"));
    std::fs::write(&p, fs).unwrap();
    let mut c = sbin("xfs_db");
    c.arg("-x");
    for cmd in cmds {
        c.args(["-c", cmd]);
    }
    run(c.arg(&p));
    let out = std::fs::read(&p).unwrap();
    let _ = std::fs::remove_file(&p);
    out
}

#[test]
fn xfs_refuses_what_it_cannot_write_safely() {
    let old = env_block(&[("saved_entry", "0"), ("next_entry", "1")]);
    let l = &LAYOUTS[0];
    let disk = mkfs("refuse", l, &old);
    // The inode number (an XFS node's id), to address it with xfs_db.
    let ino = {
        let dev = rxen_loader::block::VecDisk::new(disk.clone(), 512);
        rxen_loader::fs::mount(Box::new(dev)).unwrap().lookup(ENV).unwrap().id
    };
    let inode = format!("inode {ino}");
    let cases: &[(&[&str], &str)] = &[
        (&[&inode, "write core.immutable 1"], "immutable file"),
        (&[&inode, "write core.append 1"], "append-only file"),
        (&[&inode, "write v3.reflink 1"], "reflinked file"),
        // -d: past xfs_db's own verifier, which (like Linux) allows such a filesystem
        // read-only only.
        (&["sb 0", "write -d features_ro_compat 0x8000000d"], "read-only-compatible feature newer than this writer"),
    ];
    for (cmds, want) in cases {
        let bad = xfs_db(&disk, cmds, want.split(' ').next().unwrap());
        assert!(bad != disk, "{cmds:?} changed nothing");
        refused(&bad, ENV, want, want);
    }
    // The untouched copy is written.
    let (_, issued, r) = update(&disk, 512, ENV, &changes(&[("next_entry", Some(""))]), usize::MAX, Cut::Error);
    assert!(r.is_ok() && issued.len() == 1, "{r:?} {issued:?}");
    // A dirty log (scripts/build-xfs-fixtures): read, never written.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    run(&mut Command::new(root.join("scripts/build-xfs-fixtures")));
    let dirty = std::fs::read(root.join(".cache/xfs/hostile-dirty-log.img")).unwrap();
    refused(&dirty, "/grub2/grubenv", "the log is not known to be clean", "dirty log");
}

#[test]
fn btrfs_writes_nothing() {
    let old = env_block(&[("saved_entry", "0"), ("next_entry", "1")]);
    let dir = tmp().join("btrfs");
    std::fs::create_dir_all(&dir).unwrap();
    let t = tree(&dir, &old);
    let img = dir.join("fs.img");
    let _ = std::fs::remove_file(&img);
    run(Command::new("truncate").args(["-s", "128M"]).arg(&img));
    run(sbin("mkfs.btrfs").args(["-q", "-f", "--rootdir"]).arg(&t).arg(&img));
    let disk = std::fs::read(&img).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let (medium, issued, r) = update(&disk, 512, ENV, &changes(&[("next_entry", Some(""))]), usize::MAX, Cut::Error);
    let e = r.unwrap_err();
    assert!(e.contains("not saved: btrfs: writing in place is not supported"), "{e}");
    assert!(issued.is_empty() && medium == disk, "written: {issued:?}");
}
