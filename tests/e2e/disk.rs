// SPDX-License-Identifier: MIT OR Apache-2.0
//! End to end from the guest's own disk: the plain loader (no memdisk, so the shipped
//! generic policy) finds Debian's kernel and initramfs on every layout
//! `scripts/build-boot-disks` makes, over virtio-mmio (microvm) and virtio-pci (q35).
//! The generic policy gives the kernel the domain command line as is.

use rxen_e2e::*;

fn boot_from(machine: &str, disks: &[&str]) -> Run {
    let paths: Vec<_> = disks.iter().map(|d| boot_disks().join(format!("{d}.img"))).collect();
    boot_from_paths(machine, &paths)
}

fn boot_from_paths(machine: &str, disks: &[std::path::PathBuf]) -> Run {
    let mut q = Qemu::new(machine, &loader());
    q.append = Some(sample_cmdline());
    // Hostile disks must end the boot attempt by themselves, long before this.
    q.timeout = std::time::Duration::from_secs(60);
    for (i, d) in disks.iter().enumerate() {
        q.extra_args.extend(virtio_disk(machine, i, d));
    }
    q.run()
}

fn assert_booted(run: &Run, root: &str) {
    assert!(run.serial.contains(MARKER), "no marker:\n{}", run.dump());
    assert_eq!(run.guest_cmdline(), Some(sample_cmdline().as_str()), "{}", run.dump());
    let want = format!("rxen: root is now ({root})");
    assert!(run.serial.contains(&want), "want {want:?}:\n{}", run.dump());
}

macro_rules! layout {
    ($test:ident, $disk:literal, $root:literal) => {
        #[test]
        fn $test() {
            assert_booted(&boot_from("microvm", &[$disk]), $root);
        }
    };
}

layout!(ext2_whole_disk, "ext2", "vda");
layout!(ext3_whole_disk, "ext3", "vda");
layout!(ext4_whole_disk_debian_symlinks, "ext4", "vda");
layout!(ext4_64bit_metadata_csum_inline_data, "ext4-feat", "vda");
layout!(gpt_separate_boot_partition, "gpt-bootpart", "vda,gpt1");
layout!(mbr_logical_partition, "mbr-logical", "vda,msdos5");
layout!(xfs_whole_disk_debian_symlinks, "xfs", "vda");
layout!(iso9660_rock_ridge_whole_disk, "iso9660", "vda");

/// A RHEL-style disk (lvm2 and mdadm made it in a QEMU guest): GPT, `/boot` on XFS with
/// BLS entries whose `options $kernelopts` come from the grubenv there, the root on LVM
/// (`lvm/rhel-root`, found and named as GRUB names it).
#[test]
fn rhel_style_xfs_boot_and_lvm_root() {
    let run = boot_from_paths("microvm", &[volume_disks().join("rhel.img")]);
    assert!(run.serial.contains(MARKER), "no marker:\n{}", run.dump());
    assert!(run.serial.contains("rxen: entry \"Rocky Linux (5.14.0-rxen)\""), "{}", run.dump());
    assert!(
        run.serial.contains("rxen: volume (vda,gpt1) xfs uuid 11111111-0000-4000-8000-000000000001"),
        "{}",
        run.dump()
    );
    assert!(
        run.serial.contains("rxen: volume (lvm/rhel-root) ext4 uuid 11111111-0000-4000-8000-000000000002"),
        "{}",
        run.dump()
    );
    let want = format!(
        "BOOT_IMAGE=/vmlinuz-5.14.0-rxen root=/dev/mapper/rhel-root ro rd.lvm.lv=rhel/root console=hvc0 {}",
        sample_cmdline()
    );
    assert_eq!(run.guest_cmdline(), Some(want.as_str()), "{}", run.dump());
}

/// `/boot` on md RAID1 (metadata 1.2) with one of its two members missing: the array is
/// read from the member that is there, degraded, and its Debian-style /vmlinuz boots.
#[test]
fn md_raid1_boot_with_a_member_missing() {
    let run = boot_from_paths("microvm", &[volume_disks().join("md1.img")]);
    assert_booted(&run, "md/boot");
    assert!(run.serial.contains("degraded"), "the missing member is not said:\n{}", run.dump());
}

/// openSUSE's btrfs: the default subvolume is `@/.snapshots/1/snapshot` (set-default),
/// `/boot` inside it with grub.cfg and a kernel and initrd the kernel wrote
/// zstd-compressed (compress-force=zstd).
#[test]
fn btrfs_suse_default_subvolume_zstd() {
    let run = boot_from_paths("microvm", &[btrfs_kernel_disks().join("suse-boot.img")]);
    assert!(run.serial.contains(MARKER), "no marker:\n{}", run.dump());
    assert!(run.serial.contains("rxen: entry \"openSUSE Tumbleweed\""), "{}", run.dump());
    assert!(
        run.serial.contains("rxen: volume (vda) btrfs uuid 5d3c8e7a-1b2f-4a6d-9c0e-f1a2b3c4d505"),
        "{}",
        run.dump()
    );
    let want = format!(
        "BOOT_IMAGE=/boot/vmlinuz-6.1.0-rxen root=UUID=5d3c8e7a-1b2f-4a6d-9c0e-f1a2b3c4d505 \
         rootflags=subvol=@/.snapshots/1/snapshot quiet {}",
        sample_cmdline()
    );
    assert_eq!(run.guest_cmdline(), Some(want.as_str()), "{}", run.dump());
}

/// Fedora's btrfs: subvolumes `root` and `home`, the default subvolume the top level,
/// `/boot` inside `root` with BLS entries (written compress=zstd:1): the configuration
/// search finds nothing at the default root and reads subvolume `/root`.
#[test]
fn btrfs_fedora_boot_inside_root_subvolume() {
    let run = boot_from_paths("microvm", &[btrfs_kernel_disks().join("fedora-boot.img")]);
    assert!(run.serial.contains(MARKER), "no marker:\n{}", run.dump());
    assert!(
        run.serial.contains("rxen: (vda): no configuration at the default root; reading subvolume /root"),
        "{}",
        run.dump()
    );
    assert!(run.serial.contains("rxen: entry \"Fedora Linux (6.1.0-rxen) 41 (Cloud Edition)\""), "{}", run.dump());
    let want = format!(
        "BOOT_IMAGE=/boot/vmlinuz-6.1.0-rxen root=UUID=5d3c8e7a-1b2f-4a6d-9c0e-f1a2b3c4d506 ro rootflags=subvol=root \
         console=hvc0 {}",
        sample_cmdline()
    );
    assert_eq!(run.guest_cmdline(), Some(want.as_str()), "{}", run.dump());
}

/// Live and installer media: no /vmlinuz, but /isolinux/isolinux.cfg names the kernel
/// and (in `initrd=`) the initrd, as syslinux reads it.
#[test]
fn iso9660_live_media_isolinux_cfg() {
    let run = boot_from("microvm", &["iso-live"]);
    assert!(run.serial.contains(MARKER), "no marker:\n{}", run.dump());
    assert!(run.serial.contains("rxen: entry \"Live system\""), "{}", run.dump());
    let want =
        format!("BOOT_IMAGE=/live/vmlinuz initrd=/live/initrd.img boot=live components quiet {}", sample_cmdline());
    assert_eq!(run.guest_cmdline(), Some(want.as_str()), "{}", run.dump());
}

/// A disk of 4 KiB logical sectors (virtio-blk blk_size 4096): the GPT's LBAs count
/// 4 KiB blocks, every read is whole blocks. Over virtio-mmio and virtio-pci.
#[test]
fn gpt_on_4k_sectors() {
    for machine in ["microvm", "q35"] {
        let mut q = Qemu::new(machine, &loader());
        q.append = Some(format!("{} rxen.debug", sample_cmdline()));
        q.timeout = std::time::Duration::from_secs(60);
        q.extra_args.extend(virtio_disk_sectors(machine, 0, &boot_disks().join("gpt-4k.img"), 4096));
        let run = q.run();
        assert_booted(&run, "vda,gpt1");
        assert!(run.serial.contains("sectors of 4096 bytes"), "{machine}: {}", run.dump());
    }
}

#[test]
fn gpt_damaged_primary_uses_backup() {
    let run = boot_from("microvm", &["gpt-damaged"]);
    assert_booted(&run, "vda,gpt1");
    assert!(
        run.serial.contains("primary GPT header damaged (header CRC mismatch); using the backup"),
        "{}",
        run.dump()
    );
}

/// Two disks; the kernel is on the second. q35: virtio-pci.
#[test]
fn kernel_on_second_disk_q35() {
    let run = boot_from("q35", &["data-disk", "ext4"]);
    assert_booted(&run, "vdb");
    assert!(run.serial.contains("rxen: volume (vda) ext4 uuid 00000000-0000-4000-8000-0000000000e1"), "{}", run.dump());
}

/// The same on microvm (virtio-mmio), with a partitioned second disk.
#[test]
fn kernel_on_second_disk_microvm() {
    let run = boot_from("microvm", &["data-disk", "gpt-bootpart"]);
    assert_booted(&run, "vdb,gpt1");
}

/// The plain loader, a disk with a kernel but no initrd, and the initramfs handed to the
/// domain as its module (QEMU -initrd; xl `ramdisk=` on Xen): the generic policy's
/// optional initrd is missing, so module 0 is the initrd.
#[test]
fn domain_module_is_the_initrd_when_the_disk_has_none() {
    let mut q = Qemu::new("microvm", &loader());
    q.append = Some(sample_cmdline());
    q.timeout = std::time::Duration::from_secs(60);
    q.initrd = Some(initramfs());
    q.extra_args.extend(virtio_disk("microvm", 0, &boot_disks().join("kernel-only.img")));
    let run = q.run();
    assert_booted(&run, "vda");
    assert!(run.serial.contains("(optional initrd, skipped)"), "{}", run.dump());
}

/// No disk holds a kernel: every step says why, the loader lists what it found and
/// powers off by itself (exit code 2: nothing to boot).
#[test]
fn no_kernel_anywhere_powers_off() {
    let run = boot_from("microvm", &["data-disk"]);
    assert!(
        run.serial.contains("rxen: step find-vmlinuz failed: search file /vmlinuz: no volume matches"),
        "{}",
        run.dump()
    );
    assert!(run.serial.contains("rxen: step vmlinuz skipped: the search before it found nothing"), "{}", run.dump());
    assert!(run.serial.contains("rxen: nothing to boot"), "{}", run.dump());
    assert_eq!(run.exit_code, Some(5), "{}", run.dump());
}

// Hostile disks. Each must make its step fail with a message naming the cause, and the
// loader fall through: to the good second disk when one is attached, else to a clean
// poweroff ("nothing to boot", isa-debug-exit code 5). None may hang or crash the loader.

fn assert_clean_failure(run: &Run, why: &str) {
    assert!(run.serial.contains(why), "want {why:?}:\n{}", run.dump());
    assert!(run.serial.contains("rxen: nothing to boot"), "{}", run.dump());
    assert_eq!(run.exit_code, Some(5), "{}", run.dump());
}

/// A filesystem cut in half: refused as a volume; the kernel is found on vdb.
#[test]
fn hostile_truncated_fs_falls_through_to_second_disk() {
    let run = boot_from_paths("microvm", &[disk_fixtures().join("truncated.img"), boot_disks().join("ext4.img")]);
    assert!(run.serial.contains("rxen: (vda): ext2/3/4 filesystem not usable"), "{}", run.dump());
    assert_booted(&run, "vdb");
}

/// s_blocks_per_group = 0 (a 0-block group count): refused; the kernel is found on vdb.
#[test]
fn hostile_zero_groups_falls_through_to_second_disk() {
    let run = boot_from_paths("microvm", &[disk_fixtures().join("zero-groups.img"), boot_disks().join("ext4.img")]);
    assert!(run.serial.contains("rxen: (vda): ext2/3/4 filesystem not usable"), "{}", run.dump());
    assert_booted(&run, "vdb");
}

/// /vmlinuz is a symlink loop: the search skips the volume; the kernel is found on vdb.
#[test]
fn hostile_symlink_loop_falls_through_to_second_disk() {
    assert_booted(&boot_from("microvm", &["hostile-symlink-loop", "ext4"]), "vdb");
}

/// A directory hard-linked into its own child (and into itself): the walk ends, the
/// random "kernel" of the fixture tree is refused, the guest powers off.
#[test]
fn hostile_directory_loop_ends_cleanly() {
    let run = boot_from_paths("microvm", &[disk_fixtures().join("dirloop.img")]);
    assert_clean_failure(&run, "rxen: step vmlinuz failed: (vda)/vmlinuz");
}

/// A zero-length kernel.
#[test]
fn hostile_zero_length_kernel_ends_cleanly() {
    let run = boot_from("microvm", &["hostile-zero-length"]);
    assert_clean_failure(&run, "rxen: step vmlinuz failed: (vda)/vmlinuz: kernel: neither a bzImage");
}

/// The kernel's extent tree points past the end of the disk.
#[test]
fn hostile_extent_past_the_disk_ends_cleanly() {
    let run = boot_from("microvm", &["hostile-extent"]);
    assert_clean_failure(&run, "past the end of the filesystem");
}

/// `rxen-mkimage explain` runs the loader's own volume and step code on the host: it names
/// the same root volume and files the guest picks (disks named as on Xen), and says so when
/// nothing would boot (exit status 1).
#[test]
fn explain_names_what_the_guest_would_boot() {
    let disk = |d: &str| boot_disks().join(format!("{d}.img"));
    let out = std::process::Command::new(mkimage())
        .args(["explain", "--cmdline", "console=hvc0 rxen.debug", "--disk"])
        .arg(disk("data-disk"))
        .arg("--disk")
        .arg(disk("gpt-bootpart"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("step find-vmlinuz: root is now (xvdb,gpt1)"), "{text}");
    assert!(text.contains("read (xvdb,gpt1)/initrd.img: "), "{text}");
    assert!(text.contains("boots: step vmlinuz (Linux bzImage"), "{text}");
    assert!(text.contains("\ncmdline: console=hvc0\n"), "{text}");

    let out = std::process::Command::new(mkimage())
        .args(["explain", "--json", "--virtio", "--disk"])
        .arg(disk("data-disk"))
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{json}");
    assert!(json.contains(r#""boot":null"#), "{json}");
    assert!(
        json.contains(r#"{"step":"find-vmlinuz","outcome":"failed: search file /vmlinuz: no volume matches"#),
        "{json}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing would boot"));
}

/// `rxen-mkimage explain` on dom0 gives the answer the guest boots with, on every
/// filesystem and volume kind the e2e boots above use (the same loader code, run on the
/// host): the command line each of those guests got, less the domain's words.
#[test]
fn explain_agrees_on_every_filesystem_and_volume() {
    let cases = [
        (
            volume_disks().join("rhel.img"),
            "BOOT_IMAGE=/vmlinuz-5.14.0-rxen root=/dev/mapper/rhel-root ro rd.lvm.lv=rhel/root console=hvc0",
        ),
        (volume_disks().join("md1.img"), ""),
        (
            btrfs_kernel_disks().join("fedora-boot.img"),
            "BOOT_IMAGE=/boot/vmlinuz-6.1.0-rxen root=UUID=5d3c8e7a-1b2f-4a6d-9c0e-f1a2b3c4d506 ro rootflags=subvol=root console=hvc0",
        ),
        (
            btrfs_kernel_disks().join("suse-boot.img"),
            "BOOT_IMAGE=/boot/vmlinuz-6.1.0-rxen root=UUID=5d3c8e7a-1b2f-4a6d-9c0e-f1a2b3c4d505 rootflags=subvol=@/.snapshots/1/snapshot quiet",
        ),
        (
            boot_disks().join("iso-live.img"),
            "BOOT_IMAGE=/live/vmlinuz initrd=/live/initrd.img boot=live components quiet",
        ),
        (boot_disks().join("xfs.img"), ""),
        (boot_disks().join("iso9660.img"), ""),
    ];
    for (disk, cmdline) in cases {
        let out =
            std::process::Command::new(mkimage()).args(["explain", "--virtio", "--disk"]).arg(&disk).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {text}{}", disk.display(), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("boots: step "), "{}: {text}", disk.display());
        if cmdline.is_empty() {
            // The fleet fallback (/vmlinuz): the kernel gets the domain's line, empty here.
            assert!(text.contains("\ncmdline: \n") || text.ends_with("cmdline: "), "{}: {text}", disk.display());
        } else {
            assert!(text.contains(&format!("\ncmdline: {cmdline}\n")), "{}: {text}", disk.display());
        }
    }
}
