// SPDX-License-Identifier: MIT OR Apache-2.0
//! Multiboot kernels on the PVH path, under QEMU TCG: the test kernel (tests/multiboot,
//! scripts/build-multiboot-kernel) checks the entry state and the information structure
//! rxen built and prints what it found ("MBTEST: " lines on COM1 and port 0xe9), then
//! exits QEMU with status 99. And the guest's own PVH second stage,
//! `/boot/xen/pvhboot-x86_64.elf` (configs/generic.toml), booted before its grub.cfg.

use std::path::{Path, PathBuf};
use std::process::Command;

use rxen_e2e::*;

/// What mbtest exits QEMU with after "MBTEST: done" (isa-debug-exit: 0x31 << 1 | 1).
const MBTEST_DONE: i32 = 99;

fn mbtest_lines(run: &Run) -> Vec<String> {
    run.serial.lines().filter_map(|l| l.trim_end_matches('\r').strip_prefix("MBTEST: ")).map(String::from).collect()
}

fn value<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// The checks every multiboot boot passes: magic, zeroed bss, memory facts, done.
fn assert_multiboot_entry(run: &Run, lines: &[String]) {
    assert_eq!(run.exit_code, Some(MBTEST_DONE), "{}", run.dump());
    for want in ["magic ok", "bss zero", "done"] {
        assert!(lines.iter().any(|l| l == want), "no {want:?}: {lines:#?}\n{}", run.dump());
    }
    assert!(value(lines, "loader").is_some_and(|n| n.starts_with("rxen ")), "{lines:#?}");
    // A 512 MiB machine: the RAM from 1 MiB up is most of it; the map has RAM entries.
    let upper = u32::from_str_radix(value(lines, "mem_upper_kib").expect("mem_upper"), 16).unwrap();
    assert!((400 << 10..512 << 10).contains(&upper), "mem_upper {upper} KiB: {lines:#?}");
    let ram = u32::from_str_radix(value(lines, "mmap_ram").expect("mmap"), 16).unwrap();
    assert!(ram >= 1, "{lines:#?}");
    // The same lines went to port 0xe9.
    assert!(run.debugcon.contains("MBTEST: done"), "{}", run.dump());
}

fn image(dir: &Scratch, kernel: &Path, extra: &[&str]) -> PathBuf {
    let img = dir.path("guest.img");
    let mut args = vec!["build", "-o", img.to_str().unwrap(), "--loader"];
    let l = loader();
    args.push(l.to_str().unwrap());
    args.extend(["--kernel", kernel.to_str().unwrap()]);
    args.extend(extra);
    mkimage_ok(&args);
    img
}

/// An ELF multiboot kernel from a standalone image, with a module: the command line,
/// the module's bytes on a page of their own, the memory map, the loader's name.
#[test]
fn elf_multiboot_kernel_gets_its_info_and_module() {
    let dir = Scratch::new("mb-elf");
    let (elf, _) = multiboot_kernels();
    let module = dir.path("module.txt");
    std::fs::write(&module, "rxen-module-ok: the first line\nthe second line\n").unwrap();
    let img = image(&dir, &elf, &["--initrd", module.to_str().unwrap(), "--cmdline", "mbtest one=1"]);
    let mut q = Qemu::new("microvm", &img);
    q.append = Some("two=2".into());
    q.timeout = std::time::Duration::from_secs(60);
    let run = q.run();
    let lines = mbtest_lines(&run);
    assert_multiboot_entry(&run, &lines);
    assert!(run.serial.contains("rxen: booting multiboot kernel at 0x100000c: mbtest one=1 two=2"), "{}", run.dump());
    assert_eq!(value(&lines, "cmdline"), Some("mbtest one=1 two=2"), "{lines:#?}");
    assert_eq!(value(&lines, "mods"), Some("00000001"), "{lines:#?}");
    assert_eq!(value(&lines, "mod0"), Some("rxen-module-ok: the first line"), "{lines:#?}");
    assert_eq!(value(&lines, "mod0_page_aligned"), Some("yes"), "{lines:#?}");
}

/// A flat binary loaded by its header's address fields (the "a.out kludge"), handed to
/// the plain loader as QEMU's -initrd (module 0: the generic policy's first step); its
/// bss (bss_end_addr) is zeroed; no modules.
#[test]
fn flat_multiboot_kernel_loads_by_its_address_fields() {
    let (_, bin) = multiboot_kernels();
    let mut q = Qemu::new("microvm", &loader());
    q.initrd = Some(bin);
    q.append = Some("flat=1".into());
    q.timeout = std::time::Duration::from_secs(60);
    let run = q.run();
    let lines = mbtest_lines(&run);
    assert_multiboot_entry(&run, &lines);
    assert!(run.serial.contains("multiboot kernel (address fields)"), "{}", run.dump());
    assert_eq!(value(&lines, "cmdline"), Some("flat=1"), "{lines:#?}");
    assert_eq!(value(&lines, "mods"), None, "no module: flag 3 clear: {lines:#?}");
}

/// A guest disk carrying its own second stage at /boot/xen/pvhboot-x86_64.elf (here the
/// multiboot test kernel) and a grub.cfg: the plain loader boots the second stage, with
/// the domain's command line, and never reads the grub.cfg.
#[test]
fn the_guests_second_stage_boots_before_its_config() {
    let dir = Scratch::new("pvh-stage2");
    let (elf, _) = multiboot_kernels();
    let tree = dir.path("tree");
    std::fs::create_dir_all(tree.join("boot/xen")).unwrap();
    std::fs::create_dir_all(tree.join("boot/grub")).unwrap();
    std::fs::copy(&elf, tree.join("boot/xen/pvhboot-x86_64.elf")).unwrap();
    std::fs::write(tree.join("boot/grub/grub.cfg"), "menuentry never { linux /boot/vmlinuz }\n").unwrap();
    let disk = dir.path("disk.img");
    let st = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&tree)
        .arg(&disk)
        .arg("16M")
        .env("E2FSPROGS_FAKE_TIME", "1")
        .status()
        .expect("mkfs.ext4 (apt-get install e2fsprogs)");
    assert!(st.success());
    let mut q = Qemu::new("microvm", &loader());
    q.append = Some("stage2=yes".into());
    q.timeout = std::time::Duration::from_secs(60);
    q.extra_args.extend(virtio_disk("microvm", 0, &disk));
    let run = q.run();
    let lines = mbtest_lines(&run);
    assert_multiboot_entry(&run, &lines);
    assert!(loader_lines(&run.serial).any(|l| l.trim_end() == "rxen: step second-stage"), "{}", run.dump());
    assert!(!run.serial.contains("grub.cfg"), "the config was read: {}", run.dump());
    assert_eq!(value(&lines, "cmdline"), Some("stage2=yes"), "{lines:#?}");
}

/// A multiboot kernel whose header asks for what rxen cannot give (a video mode) is
/// refused by name, and the loader ends cleanly (nothing else to boot).
#[test]
fn a_multiboot_requirement_rxen_cannot_meet_is_refused_by_name() {
    let dir = Scratch::new("mb-video");
    let (_, bin) = multiboot_kernels();
    let mut k = std::fs::read(bin).unwrap();
    // Flags += video (bit 2); fix the checksum so only the requirement is wrong.
    let flags = u32::from_le_bytes(k[4..8].try_into().unwrap()) | 1 << 2;
    k[4..8].copy_from_slice(&flags.to_le_bytes());
    k[8..12].copy_from_slice(&0u32.wrapping_sub(0x1BAD_B002u32.wrapping_add(flags)).to_le_bytes());
    let path = dir.path("video.bin");
    std::fs::write(&path, k).unwrap();
    let mut q = Qemu::new("microvm", &loader());
    q.initrd = Some(path);
    q.timeout = std::time::Duration::from_secs(60);
    let run = q.run();
    assert!(
        run.serial.contains("rxen: step module failed: (module0): multiboot header at 0x0: requirement flags 0x4"),
        "{}",
        run.dump()
    );
    assert!(run.serial.contains("rxen: nothing to boot"), "{}", run.dump());
    assert_eq!(run.exit_code, Some(5), "{}", run.dump());
}
