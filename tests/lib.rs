// SPDX-License-Identifier: MIT OR Apache-2.0
//! Harness for the end-to-end tests in `tests/e2e/`: the release-built `pvh-boot` and
//! `rxen-mkimage`, the cached Debian kernel and busybox initramfs, and QEMU (TCG) runs
//! that always end: the guest powers off, exits through `isa-debug-exit`, or is killed
//! at the deadline (which the caller sees as `timed_out`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The marker the sample initramfs prints once Linux runs its /init.
pub const MARKER: &str = "RXEN-GUEST-MARKER: booted";
/// The prefix of the line the sample /init prints with `/proc/cmdline`.
pub const CMDLINE_PREFIX: &str = "RXEN-CMDLINE: ";

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Runs a fixture script that prints one directory on stdout, and checks that it did.
fn script_dir(script: &str) -> PathBuf {
    let out = run_ok(&mut Command::new(root().join(script)));
    let dir = PathBuf::from(&out);
    assert!(dir.is_dir(), "{script} must print one directory on stdout, printed {out:?}");
    dir
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::inherit()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `target/release`, built once per test process (the loader must be the release build:
/// the debug one is slow under TCG).
pub fn release_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run_ok(Command::new(cargo).current_dir(root()).args([
            "build",
            "--release",
            "-p",
            "rxen-loader",
            "-p",
            "rxen-mkimage",
            "-p",
            "rxen-toolstack",
        ]));
        let dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
        dir.join("release")
    })
}

/// The plain loader.
pub fn loader() -> PathBuf {
    release_dir().join("pvh-boot")
}

/// The toolstack module, `rxen`.
pub fn rxen_tool() -> PathBuf {
    release_dir().join("rxen")
}

/// The mkimage tool.
pub fn mkimage() -> PathBuf {
    release_dir().join("rxen-mkimage")
}

/// The cached Debian bzImage (`scripts/fetch-kernel` downloads it).
pub fn kernel() -> PathBuf {
    static K: OnceLock<PathBuf> = OnceLock::new();
    K.get_or_init(|| PathBuf::from(run_ok(&mut Command::new(root().join("scripts/fetch-kernel"))))).clone()
}

/// The ELF vmlinux inside the cached bzImage (a PVH kernel: Debian builds CONFIG_PVH).
pub fn vmlinux() -> PathBuf {
    static V: OnceLock<PathBuf> = OnceLock::new();
    V.get_or_init(|| {
        let out = kernel().with_file_name("vmlinux");
        if !out.exists() {
            run_ok(Command::new(root().join("scripts/extract-vmlinux")).arg(kernel()).arg(&out));
        }
        out
    })
    .clone()
}

/// The multiboot test kernels (`scripts/build-multiboot-kernel`, tests/multiboot):
/// `(ELF, flat binary with address fields)`.
pub fn multiboot_kernels() -> (PathBuf, PathBuf) {
    static M: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    M.get_or_init(|| {
        let out = run_ok(&mut Command::new(root().join("scripts/build-multiboot-kernel")));
        let mut it = out.split_whitespace().map(PathBuf::from);
        (it.next().expect("mbtest.elf"), it.next().expect("mbtest.bin"))
    })
    .clone()
}

/// The sample busybox initramfs (`scripts/build-initramfs`).
pub fn initramfs() -> PathBuf {
    static I: OnceLock<PathBuf> = OnceLock::new();
    I.get_or_init(|| PathBuf::from(run_ok(&mut Command::new(root().join("scripts/build-initramfs"))))).clone()
}

/// The host TSC frequency in kHz: Debian's kernel on microvm under TCG cannot calibrate
/// its clock without `tsc_early_khz=`.
pub fn tsc_khz() -> u64 {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("cpu MHz")?.split(':').nth(1)?.trim().parse::<f64>().ok())
        .map_or(2_000_000, |mhz| (mhz * 1000.0) as u64)
}

/// The bootable guest disks (`scripts/build-boot-disks`): `NAME.img` in this directory.
pub fn boot_disks() -> PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| script_dir("scripts/build-boot-disks")).clone()
}

/// Disks made from the config corpus (`scripts/build-config-disks`): `NAME.img` here.
pub fn config_disks() -> PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| script_dir("scripts/build-config-disks")).clone()
}

/// The LVM2 and md RAID disks (`scripts/build-volume-fixtures`, made with lvm2 and mdadm
/// in a QEMU guest): `rhel.img`, `md1.img`, ... in this directory.
pub fn volume_disks() -> PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        run_ok(&mut Command::new(root().join("scripts/build-volume-fixtures")));
        root().join(".cache/volumes")
    })
    .clone()
}

/// The btrfs disks only a kernel can write (`scripts/build-btrfs-kernel-fixtures`, Debian's
/// kernel in a QEMU guest): compressed extents, subvolumes, `suse-boot.img`.
pub fn btrfs_kernel_disks() -> PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        run_ok(&mut Command::new(root().join("scripts/build-btrfs-kernel-fixtures")));
        root().join(".cache/btrfs-kernel")
    })
    .clone()
}

/// The filesystem fixtures (`scripts/build-disk-fixtures`): `NAME.img` in this directory.
pub fn disk_fixtures() -> PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        run_ok(&mut Command::new(root().join("scripts/build-disk-fixtures")));
        root().join(".cache/disks")
    })
    .clone()
}

/// QEMU arguments attaching `disk` (read-only snapshot) as a virtio-blk device: on the
/// virtio-mmio bus on microvm, as virtio-blk-pci otherwise.
pub fn virtio_disk(machine: &str, id: usize, disk: &Path) -> Vec<String> {
    virtio_disk_sectors(machine, id, disk, 512)
}

/// [`virtio_disk`] with `sector` bytes as the device's logical (and physical) block size.
pub fn virtio_disk_sectors(machine: &str, id: usize, disk: &Path, sector: u32) -> Vec<String> {
    let dev = if machine == "microvm" { "virtio-blk-device" } else { "virtio-blk-pci" };
    vec![
        "-drive".into(),
        format!("file={},format=raw,if=none,id=d{id},snapshot=on", disk.display()),
        "-device".into(),
        format!("{dev},drive=d{id},logical_block_size={sector},physical_block_size={sector}"),
    ]
}

/// The kernel command line the sample images carry.
pub fn sample_cmdline() -> String {
    format!("console=ttyS0 tsc_early_khz={} panic=-1", tsc_khz())
}

/// Run `rxen-mkimage ARGS`, which must succeed.
pub fn mkimage_ok(args: &[&str]) {
    let out = Command::new(mkimage()).args(args).output().expect("run rxen-mkimage");
    assert!(out.status.success(), "rxen-mkimage {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("rxen-e2e-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The lines of a loader log without the `rxen.debug` timeline stamp (`[   1.234] `) that
/// starts each of them in debug mode.
pub fn loader_lines(log: &str) -> impl Iterator<Item = &str> {
    log.lines().map(|l| {
        l.strip_prefix('[')
            .and_then(|r| r.split_once("] "))
            .filter(|(t, _)| t.trim().parse::<f64>().is_ok())
            .map_or(l, |(_, rest)| rest)
    })
}

/// One QEMU run.
#[derive(Debug, Clone)]
pub struct Qemu {
    pub machine: String,
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub append: Option<String>,
    pub memory_mib: u32,
    pub timeout: Duration,
    /// More QEMU arguments (disks, `-global`s), appended last.
    pub extra_args: Vec<String>,
    /// Bytes typed on the serial console (COM1 on stdio instead of a file).
    pub serial_input: Option<Vec<u8>>,
    /// Type them this long after QEMU starts (default: at once).
    pub serial_input_delay: Option<Duration>,
}

/// What a run produced.
#[derive(Debug)]
pub struct Run {
    /// COM1.
    pub serial: String,
    /// Port 0xe9.
    pub debugcon: String,
    /// QEMU's exit code (isa-debug-exit: `(code << 1) | 1`); `None` when killed.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// What QEMU itself printed on stderr (bad arguments, a missing file).
    pub qemu_stderr: String,
}

impl Run {
    /// The guest's `/proc/cmdline`, as its /init printed it.
    pub fn guest_cmdline(&self) -> Option<&str> {
        self.serial.lines().find_map(|l| l.trim_end_matches('\r').strip_prefix(CMDLINE_PREFIX))
    }
    /// Both outputs, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "exit {:?}, timed out {}, {:?}\n--- qemu stderr ---\n{}\n--- serial ---\n{}\n--- debugcon ---\n{}",
            self.exit_code, self.timed_out, self.elapsed, self.qemu_stderr, self.serial, self.debugcon
        )
    }
}

impl Qemu {
    /// `-M machine -kernel kernel`, 512 MiB, 120 s.
    pub fn new(machine: &str, kernel: &Path) -> Qemu {
        Qemu {
            machine: machine.into(),
            kernel: kernel.into(),
            initrd: None,
            append: None,
            memory_mib: 512,
            timeout: Duration::from_secs(120),
            extra_args: Vec::new(),
            serial_input: None,
            serial_input_delay: None,
        }
    }

    /// Boot and wait for QEMU to exit (or kill it at the deadline).
    pub fn run(&self) -> Run {
        let dir = Scratch::new(&format!("qemu-{}", self.machine));
        let (serial, debugcon) = (dir.path("serial.log"), dir.path("debugcon.log"));
        let stderr_log = dir.path("qemu-stderr.log");
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-M", &self.machine, "-accel", "tcg", "-m", &self.memory_mib.to_string()])
            .args(["-display", "none", "-monitor", "none", "-no-reboot"])
            .arg("-serial")
            .arg(if self.serial_input.is_some() { "stdio".to_string() } else { format!("file:{}", serial.display()) })
            .arg("-debugcon")
            .arg(format!("file:{}", debugcon.display()))
            .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
            .arg("-kernel")
            .arg(&self.kernel)
            .stdin(if self.serial_input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(match self.serial_input {
                Some(_) => Stdio::from(std::fs::File::create(&serial).expect("serial log")),
                None => Stdio::null(),
            })
            // A file, not a pipe: a pipe nobody reads fills up and stalls QEMU.
            .stderr(Stdio::from(std::fs::File::create(&stderr_log).expect("stderr log")));
        if let Some(i) = &self.initrd {
            cmd.arg("-initrd").arg(i);
        }
        if let Some(a) = &self.append {
            cmd.arg("-append").arg(a);
        }
        cmd.args(&self.extra_args);
        let start = Instant::now();
        let mut child = cmd.spawn().expect("qemu-system-x86_64 (apt-get install qemu-system-x86)");
        if let (Some(input), Some(mut stdin)) = (self.serial_input.clone(), child.stdin.take()) {
            let delay = self.serial_input_delay.unwrap_or_default();
            std::thread::spawn(move || {
                use std::io::Write;
                std::thread::sleep(delay);
                // A guest that already ended has closed the pipe: nothing to type into.
                let _ = stdin.write_all(&input);
                // Dropping stdin closes it; QEMU keeps what it has not delivered yet.
            });
        }
        let (status, timed_out) = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break (Some(s), false);
            }
            if start.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                break (None, true);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let elapsed = start.elapsed();
        let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        Run {
            serial: read(&serial),
            debugcon: read(&debugcon),
            exit_code: status.and_then(|s| s.code()),
            timed_out,
            elapsed,
            qemu_stderr: read(&stderr_log),
        }
    }
}
