// SPDX-License-Identifier: MIT OR Apache-2.0
//! End to end: rxen images holding Debian's real kernel and a busybox initramfs boot under
//! QEMU TCG, on microvm and q35; the guest's /init prints a marker and /proc/cmdline.

use rxen_e2e::*;
use rxen_memdisk::{HEADER_MAGIC, ImageHeader};

/// A standalone image: kernel + initramfs + the sample cmdline in the memdisk.
fn standalone(dir: &Scratch) -> std::path::PathBuf {
    let img = dir.path("guest.img");
    let (l, k, i) = (loader(), kernel(), initramfs());
    mkimage_ok(&[
        "build",
        "-o",
        img.to_str().unwrap(),
        "--loader",
        l.to_str().unwrap(),
        "--kernel",
        k.to_str().unwrap(),
        "--initrd",
        i.to_str().unwrap(),
        "--cmdline",
        &sample_cmdline(),
    ]);
    img
}

/// An image whose memdisk holds `policy` as its rxen.toml and each `(GUEST, HOST)` file.
fn image_with_policy(dir: &Scratch, policy: &str, files: &[(&str, &std::path::Path)]) -> std::path::PathBuf {
    let toml = dir.path("rxen.toml");
    std::fs::write(&toml, policy).unwrap();
    let (img, l) = (dir.path("guest.img"), loader());
    let mut args: Vec<String> =
        ["build", "-o", img.to_str().unwrap(), "--loader", l.to_str().unwrap()].map(String::from).into();
    args.extend(["--config".into(), toml.to_str().unwrap().into()]);
    for (guest, host) in files {
        args.extend(["--add".into(), format!("{guest}={}", host.display())]);
    }
    mkimage_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    img
}

fn boots_standalone_on(machine: &str) {
    let dir = Scratch::new(&format!("standalone-{machine}"));
    let img = standalone(&dir);
    let mut q = Qemu::new(machine, &img);
    q.append = Some("dom-extra=1 rxen.debug".into());
    let run = q.run();
    assert!(run.serial.contains(MARKER), "no marker:\n{}", run.dump());
    // The rule: the policy's cmdline, then the domain's words minus rxen.*.
    let want = format!("{} dom-extra=1", sample_cmdline());
    assert_eq!(run.guest_cmdline(), Some(want.as_str()), "{}", run.dump());
    // rxen.debug was seen by the loader (and printed to 0xe9 too).
    assert!(run.debugcon.contains("rxen: hvm_start_info v1"), "{}", run.dump());
    assert!(run.debugcon.contains("sha256 ok"), "{}", run.dump());
    // rxen.debug's timeline: each loader line starts with the loader's clock, and the last
    // one before the kernel says the copies are done.
    let stamped = |l: &str| {
        l.strip_prefix('[').and_then(|r| r.split_once("] rxen: ")).is_some_and(|(t, _)| {
            t.trim().split_once('.').is_some_and(|(s, ms)| s.parse::<u32>().is_ok() && ms.len() == 3)
        })
    };
    let ours: Vec<&str> = run.serial.lines().filter(|l| l.contains("rxen: ") && !l.starts_with("rxen 0.")).collect();
    assert!(!ours.is_empty() && ours.iter().all(|l| stamped(l)), "{ours:#?}");
    assert!(ours.iter().any(|l| l.contains("copies (") && l.ends_with("done; jumping to the kernel")), "{ours:#?}");
    // The default (kaslr = false): the loader decompresses the bzImage's xz payload and
    // enters vmlinux at its PVH entry, as xl's direct boot does.
    assert!(ours.iter().any(|l| l.contains("xz payload, ") && l.contains(" decompressed in ")), "{ours:#?}");
    assert!(ours.iter().any(|l| l.contains("booting PVH kernel at 0x")), "{ours:#?}");
    assert!(!run.timed_out, "{}", run.dump());
    if std::env::var_os("RXEN_E2E_SHOW").is_some() {
        println!("{}", run.dump());
    }
}

#[test]
fn standalone_image_boots_linux_on_microvm() {
    boots_standalone_on("microvm");
}

#[test]
fn standalone_image_boots_linux_on_q35() {
    boots_standalone_on("q35");
}

/// A PVH ELF kernel (vmlinux with XEN_ELFNOTE_PHYS32_ENTRY) gets a fresh hvm_start_info
/// with the cmdline and the initrd as module 0. The 64 MiB vmlinux lands on top of the
/// memdisk it came from, so this also covers the staging copy.
#[test]
fn pvh_elf_kernel_boots_on_microvm() {
    let dir = Scratch::new("pvh-elf");
    let img = dir.path("guest.img");
    let (l, k, i) = (loader(), vmlinux(), initramfs());
    mkimage_ok(&[
        "build",
        "-o",
        img.to_str().unwrap(),
        "--loader",
        l.to_str().unwrap(),
        "--kernel",
        k.to_str().unwrap(),
        "--initrd",
        i.to_str().unwrap(),
        "--cmdline",
        &sample_cmdline(),
    ]);
    let mut q = Qemu::new("microvm", &img);
    q.append = Some("pvh-extra rxen.debug".into());
    let run = q.run();
    assert!(run.serial.contains("rxen: booting PVH kernel at"), "{}", run.dump());
    assert!(run.serial.contains(MARKER), "{}", run.dump());
    let want = format!("{} pvh-extra", sample_cmdline());
    assert_eq!(run.guest_cmdline(), Some(want.as_str()), "{}", run.dump());
}

/// The initrd comes from the domain (QEMU -initrd, like xl ramdisk=) when the policy
/// names none: module 0.
#[test]
fn module_zero_is_the_initrd() {
    let dir = Scratch::new("module-initrd");
    let img = dir.path("guest.img");
    let (l, k) = (loader(), kernel());
    mkimage_ok(&[
        "build",
        "-o",
        img.to_str().unwrap(),
        "--loader",
        l.to_str().unwrap(),
        "--kernel",
        k.to_str().unwrap(),
        "--cmdline",
        &sample_cmdline(),
    ]);
    let mut q = Qemu::new("microvm", &img);
    q.initrd = Some(initramfs());
    let run = q.run();
    assert!(run.serial.contains(MARKER), "{}", run.dump());
    assert_eq!(run.guest_cmdline(), Some(sample_cmdline().as_str()), "{}", run.dump());
}

/// A flipped byte in the memdisk: the loader says so and powers off by itself.
#[test]
fn corrupted_memdisk_is_refused() {
    let dir = Scratch::new("corrupt");
    let img = standalone(&dir);
    let mut bytes = std::fs::read(&img).unwrap();
    let at = bytes.windows(8).position(|w| w == HEADER_MAGIC).expect("image header");
    let hdr = ImageHeader::from_bytes(&bytes[at..at + 96]).expect("header parses");
    let off = memdisk_file_offset(&bytes, hdr.memdisk_paddr);
    let victim = off + (hdr.memdisk_len / 2) as usize;
    bytes[victim] ^= 0x40;
    let bad = dir.path("bad.img");
    std::fs::write(&bad, &bytes).unwrap();

    let run = Qemu::new("microvm", &bad).run();
    assert!(
        run.serial.contains("memdisk sha256 does not match the image header: the image is corrupt"),
        "{}",
        run.dump()
    );
    assert!(!run.serial.contains("Linux version"), "{}", run.dump());
    // isa-debug-exit: (1 << 1) | 1 — the loader's fatal exit, not a hang or a kill.
    assert_eq!(run.exit_code, Some(3), "{}", run.dump());
}

/// A policy whose only step cannot be satisfied: every step is tried, each failure is
/// named, and the guest powers off with "nothing to boot" (exit code 2).
#[test]
fn nothing_to_boot_names_each_failure() {
    let dir = Scratch::new("nothing");
    let img = image_with_policy(
        &dir,
        "version = 1\n[[step]]\ntype = \"kernel\"\nname = \"from-module\"\nkernel = \"(module0)\"\n",
        &[],
    );
    let run = Qemu::new("microvm", &img).run();
    assert!(
        run.serial.contains("rxen: step from-module failed: (module0): the domain was given 0 module(s)"),
        "{}",
        run.dump()
    );
    assert!(run.serial.contains("rxen: nothing to boot"), "{}", run.dump());
    assert_eq!(run.exit_code, Some(5), "{}", run.dump());
}

/// The plain loader (no memdisk) boots a kernel handed over as module 0 (generic policy),
/// with the domain command line.
#[test]
fn plain_loader_boots_module_kernel() {
    let mut q = Qemu::new("microvm", &loader());
    q.initrd = Some(kernel());
    q.append = Some(format!("{} rdinit=/nonexistent", sample_cmdline()));
    let run = q.run();
    assert!(run.serial.contains("rxen: step module"), "{}", run.dump());
    let want = format!("Command line: {} rdinit=/nonexistent", sample_cmdline());
    assert!(run.serial.contains(&want), "{}", run.dump());
}

/// File offset of the PT_LOAD whose p_paddr is `paddr` (ELF64 little-endian).
fn memdisk_file_offset(elf: &[u8], paddr: u64) -> usize {
    load_segments(elf).iter().find(|l| l.paddr == paddr).map(|l| l.offset as usize).expect("memdisk PT_LOAD")
}

/// One `PT_LOAD` of an ELF64 image.
struct Load {
    flags: u32,
    offset: u64,
    paddr: u64,
    memsz: u64,
}

/// The image's `PT_LOAD` program headers, in order.
fn load_segments(elf: &[u8]) -> Vec<Load> {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    (0..phnum)
        .map(|i| phoff + i * phentsize)
        .filter(|&p| u32_at(p) == 1)
        .map(|p| Load { flags: u32_at(p + 4), offset: u64_at(p + 8), paddr: u64_at(p + 0x18), memsz: u64_at(p + 0x28) })
        .collect()
}

/// `on_failure = "prompt"`: after every step failed, the loader waits on the serial
/// console; a step can be retried by number, an unknown one is named, `off` powers off.
#[test]
fn prompt_after_failure_retries_and_powers_off() {
    let dir = Scratch::new("prompt");
    let img = image_with_policy(
        &dir,
        "version = 1\non_failure = \"prompt\"\n[[step]]\ntype = \"kernel\"\nname = \"broken\"\nkernel = \"(module0)\"\n",
        &[],
    );
    let mut q = Qemu::new("microvm", &img);
    // The first byte may arrive before the loader programs the UART: start with a newline.
    q.serial_input = Some(b"\nnope\n1\noff\n".to_vec());
    q.timeout = std::time::Duration::from_secs(60);
    let run = q.run();
    let serial = run.serial.replace('\r', "");
    assert!(serial.contains("rxen> step number or name to try, or 'off' to power off:"), "{}", run.dump());
    assert!(serial.contains("rxen: no step \"nope\""), "{}", run.dump());
    assert_eq!(serial.matches("rxen: step broken failed").count(), 2, "{}", run.dump());
    assert_eq!(run.exit_code, Some(5), "{}", run.dump());
}

/// The standalone image (in scratch directory `name`) booted on microvm with domain command
/// line `append`: the directory (the image lives while it does), the image and the run.
fn standalone_with(name: &str, append: &str) -> (Scratch, std::path::PathBuf, Run) {
    let dir = Scratch::new(name);
    let img = standalone(&dir);
    let mut q = Qemu::new("microvm", &img);
    q.append = Some(append.into());
    let run = q.run();
    (dir, img, run)
}

/// A CPU exception in the loader (here a page fault on purpose, `rxen.crash=fault`) is
/// reported with its vector, error code, RIP, RSP and CR2, and ends the guest as a crash
/// (exit code 0x7f), not as a silent triple fault.
#[test]
fn cpu_exception_is_reported_and_crashes_the_guest() {
    let (_dir, img, run) = standalone_with("fault", "rxen.crash=fault");
    let line =
        run.serial.lines().find(|l| l.starts_with("rxen: EXCEPTION")).unwrap_or_else(|| panic!("{}", run.dump()));
    assert!(
        line.starts_with("rxen: EXCEPTION #PF (page fault, vector 14, error 0x0: not present, read) at RIP 0x"),
        "{line}"
    );
    assert!(line.contains(" CR2 0x7ead00000000 "), "{line}");
    // rxen-mkimage stored the loader's function names (from pvh-boot.map): RIP is named.
    assert!(line.contains(" <<rxen_loader::pvh::HwPlatform as rxen_loader::session::Platform>::crash+0x"), "{line}");
    let rip = u64::from_str_radix(line.split("RIP 0x").nth(1).unwrap().split([' ', '<']).next().unwrap(), 16).unwrap();
    // And on dom0, from the same image: `rxen-mkimage symbolize`.
    let out = std::process::Command::new(mkimage())
        .args(["symbolize", "--loader", img.to_str().unwrap(), &format!("{rip:#x}")])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("HwPlatform as rxen_loader::session::Platform>::crash+0x"), "{said}");
    let elf = std::fs::read(&img).unwrap();
    let text = exec_range(&elf);
    assert!(text.contains(&rip), "RIP {rip:#x} is not in the loader's code {text:x?}");
    assert!(run.serial.contains("rxen:   rax 0x"), "{}", run.dump());
    assert!(!run.serial.contains("Linux version"), "{}", run.dump());
    // isa-debug-exit (0x7f << 1) | 1: the crash exit, the same as a panic's.
    assert_eq!(run.exit_code, Some(0xff), "{}", run.dump());
}

/// An interrupt nobody asked for (`rxen.crash=interrupt` raises vector 0x40) is counted and
/// returned from on the trap stack: the boot goes on to the kernel and says what it saw.
#[test]
fn stray_interrupt_is_survived_and_named() {
    let (_dir, _, run) = standalone_with("stray", "rxen.crash=interrupt");
    assert!(run.serial.contains("rxen.crash=interrupt: raised vector 0x40 and went on"), "{}", run.dump());
    assert!(
        run.serial.contains(
            "rxen: 1 unexpected interrupt(s) ignored (the loader unmasks none); the last: INT vector 64 at RIP 0x"
        ),
        "{}",
        run.dump()
    );
    assert!(run.serial.contains(MARKER), "{}", run.dump());
}

/// The span of the image's executable `PT_LOAD`s (physical = virtual in pvh-boot).
fn exec_range(elf: &[u8]) -> std::ops::Range<u64> {
    let exec: Vec<Load> = load_segments(elf).into_iter().filter(|l| l.flags & 1 != 0).collect();
    let lo = exec.iter().map(|l| l.paddr).min().unwrap_or(u64::MAX);
    let hi = exec.iter().map(|l| l.paddr + l.memsz).max().unwrap_or(0);
    lo..hi
}

/// `kaslr = true`: the loader hands the bzImage over by the boot protocol and Linux's own
/// decompressor runs (and randomizes); the loader decompresses nothing.
#[test]
fn kaslr_policy_boots_the_bzimage_itself() {
    let dir = Scratch::new("kaslr");
    let policy = format!(
        "version = 1\nkaslr = true\n[[step]]\ntype = \"kernel\"\nkernel = \"/vmlinuz\"\ninitrd = \"/initrd.img\"\ncmdline = \"{}\"\n",
        sample_cmdline()
    );
    let img = image_with_policy(&dir, &policy, &[("vmlinuz", &kernel()), ("initrd.img", &initramfs())]);
    let run = Qemu::new("microvm", &img).run();
    assert!(run.serial.contains(MARKER), "no marker:\n{}", run.dump());
    assert!(run.serial.contains("rxen: booting: "), "{}", run.dump());
    assert!(!run.serial.contains("decompressed in"), "{}", run.dump());
    assert!(!run.serial.contains("booting PVH kernel"), "{}", run.dump());
}
