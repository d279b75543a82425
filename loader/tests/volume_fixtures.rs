// SPDX-License-Identifier: MIT OR Apache-2.0
//! md RAID1 arrays and LVM2 logical volumes made by the real mdadm and lvm2
//! (`scripts/build-volume-fixtures`, in a QEMU guest): `volume::scan` over the fixture
//! disks must name them as GRUB does and read their filesystems byte for byte; a missing
//! RAID1 member still gives the volume; hostile metadata gives a named message.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{FileDisk, compare_tree};
use rxen_loader::block::BlockDevice;
use rxen_loader::crc::crc32_raw;
use rxen_loader::volume::{self, Disk, SearchKey, Volume};

fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let st = std::process::Command::new(root.join("scripts/build-volume-fixtures")).status().expect("run script");
        assert!(st.success(), "scripts/build-volume-fixtures failed");
        root.join(".cache/volumes")
    })
}

fn scan_paths(paths: &[PathBuf]) -> (Vec<Volume>, Vec<String>) {
    let names = ["vda", "vdb", "vdc", "vdd"];
    let disks: Vec<Disk> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| Disk::new(names[i].into(), "file".into(), Box::new(FileDisk::open(p, 0, 512))))
        .collect();
    let mut log = Vec::new();
    let vols = volume::scan(&disks, &mut |m| log.push(m));
    (vols, log)
}

fn scan(imgs: &[&str]) -> (Vec<Volume>, Vec<String>) {
    scan_paths(&imgs.iter().map(|i| dir().join(i)).collect::<Vec<_>>())
}

fn vol<'a>(vols: &'a mut [Volume], name: &str) -> &'a mut Volume {
    let names: Vec<String> = vols.iter().map(|v| v.name.clone()).collect();
    vols.iter_mut().find(|v| v.name == name).unwrap_or_else(|| panic!("no {name} in {names:?}"))
}

fn take(mut vols: Vec<Volume>, name: &str) -> Volume {
    let i = vols.iter().position(|v| v.name == name).unwrap_or_else(|| panic!("no {name}"));
    vols.remove(i)
}

fn check(v: &mut Volume, uuid: &str, label: &str, tree: &str) {
    check_fs(v, "ext4", uuid, label, tree);
}

fn check_fs(v: &mut Volume, fs: &str, uuid: &str, label: &str, tree: &str) {
    assert_eq!((v.info.fs, v.fs_uuid.as_str(), v.label.as_str()), (fs, uuid, label), "{}", v.name);
    let n = compare_tree(&mut *v.fs, &dir().join(tree), "", &["lost+found"]);
    assert!(n >= 2, "{}: {n} files", v.name);
}

#[test]
fn rhel_disk_boot_partition_and_root_lv() {
    let (mut vols, log) = scan(&["rhel.img"]);
    let names: Vec<&str> = vols.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["vda,gpt1", "lvm/rhel-root"], "{log:?}");
    check_fs(vol(&mut vols, "vda,gpt1"), "xfs", "11111111-0000-4000-8000-000000000001", "rxen-boot", "tree-boot");
    let root = vol(&mut vols, "lvm/rhel-root");
    assert!(root.layout.as_deref() == Some("lvm over (vda,gpt2)"), "{:?}", root.layout);
    // Block 0 of the LV: the PV's partition at 41 MiB, pe_start 2048 sectors.
    assert_eq!((root.disk, root.start_lba, root.num_blocks), (0, 41 * 2048 + 2048, 24 * 2048));
    check(root, "11111111-0000-4000-8000-000000000002", "rhel-root", "tree-root");
    assert!(log.iter().any(|m| m.starts_with("(lvm/rhel-swap): ")), "{log:?}");
    let found = volume::search(&[], &mut vols, &SearchKey::File("/etc/hostname".into()));
    assert_eq!(found.ok().map(|i| vols[i].name.as_str()), Some("lvm/rhel-root"));
    let found = volume::search(&[], &mut vols, &SearchKey::FsUuid("11111111-0000-4000-8000-000000000002".into()));
    assert_eq!(found.ok().map(|i| vols[i].name.as_str()), Some("lvm/rhel-root"));
}

#[test]
fn striped_raid1_and_linear_lvs_over_two_pvs() {
    let (mut vols, log) = scan(&["vg1.img", "vg2.img"]);
    assert_eq!(vols.len(), 3, "{log:?}");
    check(vol(&mut vols, "lvm/vg--data-striped"), "11111111-0000-4000-8000-000000000003", "striped", "tree-striped");
    check(vol(&mut vols, "lvm/vg--data-mirrored"), "11111111-0000-4000-8000-000000000004", "mirrored", "tree-mirrored");
    check(vol(&mut vols, "lvm/vg--data-spans"), "11111111-0000-4000-8000-000000000005", "spans", "tree-spans");
    // One PV gone: the raid1 LV still reads from its other image; the rest are skipped.
    for (img, other) in [("vg1.img", "vg2.img"), ("vg2.img", "vg1.img")] {
        let (mut vols, log) = scan(&[img]);
        let names: Vec<&str> = vols.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["lvm/vg--data-mirrored"], "without {other}: {log:?}");
        assert!(log.iter().any(|m| m.contains("is missing")), "{log:?}");
        assert!(log.iter().any(|m| m.starts_with("(lvm/vg--data-striped): PV pv")), "{log:?}");
        check(&mut vols[0], "11111111-0000-4000-8000-000000000004", "mirrored", "tree-mirrored");
    }
}

#[test]
fn md_raid1_arrays_of_every_superblock_version() {
    let (mut vols, log) = scan(&["md1.img", "md2.img"]);
    let mut names: Vec<&str> = vols.iter().map(|v| v.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["md/boot", "md/data", "md/esp", "md0"], "{log:?}");
    assert!(log.iter().all(|m| !m.contains("md")), "{log:?}");
    check(vol(&mut vols, "md/boot"), "11111111-0000-4000-8000-000000000006", "md-boot", "tree-mdboot");
    check(vol(&mut vols, "md0"), "11111111-0000-4000-8000-000000000007", "md-090", "tree-md090");
    check(vol(&mut vols, "md/esp"), "11111111-0000-4000-8000-000000000008", "md-10", "tree-md10");
    check(vol(&mut vols, "md/data"), "11111111-0000-4000-8000-000000000009", "md-11", "tree-md11");
    // One member missing: every array is still there, degraded.
    for img in ["md1.img", "md2.img"] {
        let (mut vols, log) = scan(&[img]);
        assert_eq!(vols.len(), 4, "{log:?}");
        assert!(log.iter().any(|m| m.contains("degraded (1 of 2 members)")), "{log:?}");
        check(vol(&mut vols, "md/boot"), "11111111-0000-4000-8000-000000000006", "md-boot", "tree-mdboot");
        check(vol(&mut vols, "md/esp"), "11111111-0000-4000-8000-000000000008", "md-10", "tree-md10");
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rxen-volfix-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn grubenv_writes_go_to_every_raid1_member_or_are_refused() {
    let (a, b) = (tmp("w-md1.img"), tmp("w-md2.img"));
    let disks = vec![
        Disk::new("vda".into(), "f".into(), Box::new(FileDisk::copy(&dir().join("md1.img"), &a, 512))),
        Disk::new("vdb".into(), "f".into(), Box::new(FileDisk::copy(&dir().join("md2.img"), &b, 512))),
    ];
    let vols = volume::scan(&disks, &mut |_| {});
    // Through the volume's device: a block of the array lands on both members' data.
    let mut dev = take(vols, "md/boot").fs.into_device();
    dev.write_blocks(100, &[0x5a; 512]).unwrap();
    for p in [&a, &b] {
        let img = std::fs::read(p).unwrap();
        // p1 at 1 MiB; 1.2 data_offset as mdadm chose it.
        let sb = &img[(1 << 20) + 4096..];
        let data_offset = u64::from_le_bytes(sb[128..136].try_into().unwrap()) as usize;
        let at = (1 << 20) + (data_offset + 100) * 512;
        assert_eq!(&img[at..at + 512], &[0x5a; 512][..], "{}", p.display());
    }
    // Degraded: refused, nothing written.
    let disks = vec![Disk::new("vda".into(), "f".into(), Box::new(FileDisk::copy(&a, &tmp("w-md1b.img"), 512)))];
    let vols = volume::scan(&disks, &mut |_| {});
    let mut dev = take(vols, "md/boot").fs.into_device();
    assert!(dev.write_blocks(100, &[0; 512]).is_err());
}

/// Rewrite the current metadata text of the PV at byte `pv` of `img` (one metadata
/// area at 4096), fixing its checksums.
fn rewrite_metadata(img: &mut [u8], pv: usize, f: impl FnOnce(&str) -> String) {
    let mda = pv + 4096;
    let h = &img[mda..mda + 512];
    let off = u64::from_le_bytes(h[40..48].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(h[48..56].try_into().unwrap()) as usize;
    let text = String::from_utf8_lossy(&img[mda + off..mda + off + len]).into_owned();
    let new = f(text.trim_end_matches('\0'));
    let mut bytes = new.into_bytes();
    bytes.push(0);
    img[mda + off..mda + off + bytes.len()].copy_from_slice(&bytes);
    let crc = crc32_raw(0xf597a6cf, &bytes);
    img[mda + 48..mda + 56].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    img[mda + 56..mda + 60].copy_from_slice(&crc.to_le_bytes());
    let hcrc = crc32_raw(0xf597a6cf, &img[mda + 4..mda + 512]);
    img[mda..mda + 4].copy_from_slice(&hcrc.to_le_bytes());
}

fn hostile_rhel(name: &str, f: impl FnOnce(&str) -> String) -> Vec<String> {
    let mut img = std::fs::read(dir().join("rhel.img")).unwrap();
    rewrite_metadata(&mut img, 41 << 20, f);
    let p = tmp(name);
    std::fs::write(&p, &img).unwrap();
    let (vols, log) = scan_paths(&[p]);
    assert!(vols.iter().all(|v| v.name != "lvm/rhel-root") || name == "overlap", "{log:?}");
    log
}

#[test]
fn hostile_lvm_metadata_is_named_not_mounted() {
    let log = hostile_rhel("deep", |t| format!("{}{t}", "x {\n".repeat(10_000)));
    assert!(log.iter().any(|m| m.contains("sections nest deeper than the loader reads")), "{log:?}");
    let log = hostile_rhel("past", |t| t.replacen("\"pv0\", 0", "\"pv0\", 1000", 1));
    assert!(
        log.iter().any(|m| m.starts_with("(lvm/rhel-root): extents 1000..1006 reach past the end of PV pv0")),
        "{log:?}"
    );
    let log = hostile_rhel("overlap", |t| t.replacen("\"pv0\", 6", "\"pv0\", 2", 1));
    assert!(
        log.iter().any(|m| m.starts_with("(lvm/rhel-swap): extents 2..4 of PV pv0 are also used by LV root")),
        "{log:?}"
    );
    let log = hostile_rhel("segs", |t| t.replacen("start_extent = 0", "start_extent = 3", 1));
    assert!(log.iter().any(|m| m.contains("segments overlap or leave a hole")), "{log:?}");
    let log = hostile_rhel("thin", |t| t.replacen("type = \"striped\"", "type = \"thin-pool\"", 1));
    assert!(log.iter().any(|m| m.contains("segment type \"thin-pool\" is not supported")), "{log:?}");
}

#[test]
fn stale_md_member_is_not_read() {
    // Bump the events count of md1's md/boot superblock: md2's member is then stale.
    let mut img = std::fs::read(dir().join("md1.img")).unwrap();
    let sb = (1 << 20) + 4096;
    let ev = u64::from_le_bytes(img[sb + 200..sb + 208].try_into().unwrap());
    img[sb + 200..sb + 208].copy_from_slice(&(ev + 1).to_le_bytes());
    let max_dev = u32::from_le_bytes(img[sb + 220..sb + 224].try_into().unwrap()) as usize;
    let c = rxen_loader::volume::md::checksum(&img[sb..sb + 256 + 2 * max_dev], 216);
    img[sb + 216..sb + 220].copy_from_slice(&c.to_le_bytes());
    let p = tmp("stale-md1.img");
    std::fs::write(&p, &img).unwrap();
    let (mut vols, log) = scan_paths(&[p, dir().join("md2.img")]);
    let want = format!("(md/boot): member (vdb,gpt1) not read: stale (events {ev} < {})", ev + 1);
    assert!(log.contains(&want), "{log:?}");
    check(vol(&mut vols, "md/boot"), "11111111-0000-4000-8000-000000000006", "md-boot", "tree-mdboot");
}
