// SPDX-License-Identifier: MIT OR Apache-2.0
//! The virtio-blk driver under QEMU TCG: the plain loader (no memdisk: its generic policy
//! fails fast and it powers off) with `rxen.debug` prints one line per disk it found,
//! with its name, transport, size and the CRC-32 of block 0. Two raw disks of different
//! sizes and contents, on every transport: virtio-mmio legacy and modern (microvm),
//! virtio-pci transitional (legacy I/O interface) and modern (q35).

use std::time::Duration;

use rxen_e2e::*;

/// CRC-32 (IEEE), bitwise: the loader prints `rxen_loader::crc::crc32`.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// A disk image of `mib` MiB whose first 8 KiB are a pattern seeded by `seed`.
struct TestDisk {
    path: std::path::PathBuf,
    data_head: Vec<u8>,
    bytes: u64,
}

fn make_disk(dir: &Scratch, name: &str, mib: u64, seed: u8) -> TestDisk {
    let head: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(7) as u8) ^ seed ^ (i >> 9) as u8).collect();
    let path = dir.path(name);
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(mib << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &head, 0).unwrap();
    // A marker at the very end, so a wrong capacity would not go unnoticed by readers.
    std::os::unix::fs::FileExt::write_all_at(&f, b"END!", (mib << 20) - 4).unwrap();
    TestDisk { path, data_head: head, bytes: mib << 20 }
}

impl TestDisk {
    fn expected_line(&self, name: &str, desc: &str, block_size: u64) -> String {
        format!(
            "rxen: disk {name}: {desc}, {} sectors of {block_size} bytes, sector0 crc32 0x{:08x}",
            self.bytes / block_size,
            crc32(&self.data_head[..block_size as usize])
        )
    }
}

/// Boot the plain loader on `machine` with `args`; return the disk lines it printed.
fn disk_lines(machine: &str, args: &[String]) -> (Vec<String>, Run) {
    let mut q = Qemu::new(machine, &loader());
    q.append = Some("rxen.debug".into());
    q.timeout = Duration::from_secs(60);
    q.extra_args = args.to_vec();
    let run = q.run();
    assert!(!run.timed_out, "the loader hung:\n{}", run.dump());
    assert!(!run.debugcon.contains("PANIC"), "{}", run.dump());
    assert!(run.debugcon.contains("rxen: powering off"), "{}", run.dump());
    let lines = loader_lines(&run.debugcon).filter(|l| l.starts_with("rxen: disk ")).map(str::to_string).collect();
    (lines, run)
}

fn drive(disk: &TestDisk, id: &str, device: &str) -> Vec<String> {
    vec![
        "-drive".into(),
        format!("file={},format=raw,if=none,id={id}", disk.path.display()),
        "-device".into(),
        format!("{device},drive={id}"),
    ]
}

fn microvm(force_modern: bool) {
    let dir = Scratch::new("virtio-mmio");
    let (a, b) = (make_disk(&dir, "a.img", 2, 0x11), make_disk(&dir, "b.img", 5, 0x5a));
    let mut args = Vec::new();
    if force_modern {
        args.extend(["-global".to_string(), "virtio-mmio.force-legacy=false".to_string()]);
    }
    args.extend(drive(&a, "d0", "virtio-blk-device"));
    args.extend(drive(&b, "d1", "virtio-blk-device"));
    let (lines, run) = disk_lines("microvm", &args);
    let kind = if force_modern { "modern" } else { "legacy" };
    // QEMU fills microvm's slots from the highest down: the first disk given is slot 23.
    let want = vec![
        a.expected_line("vda", &format!("virtio-blk mmio slot 23 ({kind})"), 512),
        b.expected_line("vdb", &format!("virtio-blk mmio slot 22 ({kind})"), 512),
    ];
    assert_eq!(lines, want, "{}", run.dump());
}

#[test]
fn virtio_mmio_legacy_disks_on_microvm() {
    microvm(false);
}

#[test]
fn virtio_mmio_modern_disks_on_microvm() {
    microvm(true);
}

#[test]
fn virtio_pci_modern_disks_on_q35() {
    let dir = Scratch::new("virtio-pci-modern");
    let (a, b) = (make_disk(&dir, "a.img", 3, 0x22), make_disk(&dir, "b.img", 1, 0x77));
    let mut args = drive(&a, "d0", "virtio-blk-pci,disable-legacy=on,addr=05.0");
    // A 4 KiB-block disk: blk_size (VIRTIO_BLK_F_BLK_SIZE) becomes the block size.
    args.extend(drive(
        &b,
        "d1",
        "virtio-blk-pci,disable-legacy=on,addr=06.0,logical_block_size=4096,physical_block_size=4096",
    ));
    let (lines, run) = disk_lines("q35", &args);
    let want = vec![
        a.expected_line("vda", "virtio-blk pci 00:05.0 (modern)", 512),
        b.expected_line("vdb", "virtio-blk pci 00:06.0 (modern)", 4096),
    ];
    assert_eq!(lines, want, "{}", run.dump());
}

#[test]
fn virtio_pci_transitional_disks_on_q35() {
    let dir = Scratch::new("virtio-pci-transitional");
    let (a, b) = (make_disk(&dir, "a.img", 4, 0x33), make_disk(&dir, "b.img", 2, 0x44));
    let mut args = drive(&a, "d0", "virtio-blk-pci,addr=05.0");
    args.extend(drive(&b, "d1", "virtio-blk-pci,addr=06.0"));
    let (lines, run) = disk_lines("q35", &args);
    let want = vec![
        a.expected_line("vda", "virtio-blk pci 00:05.0 (transitional, legacy interface)", 512),
        b.expected_line("vdb", "virtio-blk pci 00:06.0 (transitional, legacy interface)", 512),
    ];
    assert_eq!(lines, want, "{}", run.dump());
}

/// No disks: nothing printed, nothing hangs (and on microvm every slot is probed).
#[test]
fn no_disks_on_microvm() {
    let (lines, run) = disk_lines("microvm", &[]);
    assert!(lines.is_empty(), "{}", run.dump());
}

/// Devices named on the command line, as Firecracker names its virtio-mmio devices:
/// microvm with its own command-line additions off, `virtio_mmio.device=` naming the
/// slot the first disk is really in, and a bogus word for a window with no device
/// (`4K@0xd0000000:5`, Firecracker's first slot, empty here) and a malformed one. The
/// named disk is found through the command line (and not a second time as a slot), the
/// second disk still through microvm's slots; the others are reported and skipped.
#[test]
fn virtio_mmio_devices_named_on_the_command_line() {
    let dir = Scratch::new("virtio-mmio-cmdline");
    let (a, b) = (make_disk(&dir, "a.img", 2, 0x19), make_disk(&dir, "b.img", 3, 0x2b));
    let mut args = drive(&a, "d0", "virtio-blk-device");
    args.extend(drive(&b, "d1", "virtio-blk-device"));
    let mut q = Qemu::new("microvm,auto-kernel-cmdline=off", &loader());
    // Slot 23 (where QEMU puts the first disk) is at 0xfeb00000 + 23 * 0x200.
    q.append = Some(
        "rxen.debug virtio_mmio.device=512@0xfeb02e00:28 virtio_mmio.device=4K@0xd0000000:5 \
         virtio_mmio.device=4K@"
            .into(),
    );
    q.timeout = Duration::from_secs(60);
    q.extra_args = args;
    let run = q.run();
    assert!(!run.timed_out, "the loader hung:\n{}", run.dump());
    assert!(run.debugcon.contains("rxen: powering off"), "{}", run.dump());
    let lines: Vec<&str> = loader_lines(&run.debugcon).filter(|l| l.starts_with("rxen: disk ")).collect();
    let want = [
        a.expected_line("vda", "virtio-blk mmio 0xfeb02e00 (virtio_mmio.device=, legacy)", 512),
        b.expected_line("vdb", "virtio-blk mmio slot 22 (legacy)", 512),
    ];
    assert_eq!(lines, want, "{}", run.dump());
    for msg in [
        "rxen: virtio_mmio.device at 0xd0000000+0x1000: no virtio-mmio device there (magic 0x00000000); skipped",
        "rxen: virtio-mmio: skipping \"virtio_mmio.device=4K@\": the base address is not a number",
    ] {
        assert!(run.debugcon.contains(msg), "want {msg:?}:\n{}", run.dump());
    }
}

/// A modern virtio-blk-pci disk whose 64-bit BAR SeaBIOS places above 4 GiB: a
/// pci-testdev with a 2 GiB 64-bit BAR does not fit the 32-bit hole with everything
/// else, so SeaBIOS moves every 64-bit BAR to its high window (0x180000000 for the
/// virtio BAR on QEMU 7.2's q35). The loader maps it and boots Debian's kernel from
/// that disk to the guest marker.
#[test]
fn boot_from_virtio_pci_disk_with_bar_above_4g() {
    let mut q = Qemu::new("q35", &loader());
    q.append = Some(format!("{} rxen.debug", sample_cmdline()));
    q.timeout = Duration::from_secs(90);
    q.extra_args = vec![
        "-drive".into(),
        format!("file={},format=raw,if=none,id=d0,snapshot=on", boot_disks().join("ext4.img").display()),
        "-device".into(),
        "virtio-blk-pci,drive=d0,disable-legacy=on,addr=05.0".into(),
        "-device".into(),
        "pci-testdev,membar=2G,addr=06.0".into(),
    ];
    let run = q.run();
    let line = loader_lines(&run.serial).find(|l| l.starts_with("rxen: disk vda: ")).unwrap_or_default();
    let at = line
        .split("registers at 0x")
        .nth(1)
        .and_then(|r| u64::from_str_radix(r.split(|c: char| !c.is_ascii_hexdigit()).next()?, 16).ok());
    assert!(
        line.contains("virtio-blk pci 00:05.0 (modern, 64-bit BAR above 4 GiB") && at.is_some_and(|a| a >= 1 << 32),
        "the disk's BAR is not above 4 GiB (or not reported):\n{}",
        run.dump()
    );
    assert!(run.serial.contains(MARKER), "no marker:\n{}", run.dump());
    assert!(run.serial.contains("rxen: root is now (vda)"), "{}", run.dump());
}
