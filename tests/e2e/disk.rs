// SPDX-License-Identifier: MIT OR Apache-2.0
//! End to end from the guest's own disk: the plain loader (no memdisk, so the shipped
//! generic policy) finds Debian's kernel and initramfs on every layout
//! `scripts/build-boot-disks` makes, over virtio-mmio (microvm) and virtio-pci (q35).
//! The generic policy gives the kernel the domain command line as is.

use rxen_e2e::*;

fn boot_from(machine: &str, disks: &[&str]) -> Run {
    let dir = boot_disks();
    let mut q = Qemu::new(machine, &loader());
    q.append = Some(sample_cmdline());
    for (i, d) in disks.iter().enumerate() {
        q.extra_args.extend(virtio_disk(machine, i, &dir.join(format!("{d}.img"))));
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
