// SPDX-License-Identifier: MIT OR Apache-2.0
//! `rxen-mkimage explain` parses guest disks in a confined child (mkimage/src/sandbox.rs):
//! the same answer as unconfined, and each way out of the confinement ends in a
//! one-line error naming its cause and the disk. The confinement is proved with the
//! child's test hooks (RXEN_EXPLAIN_SANDBOX_SELFTEST), which act once the child is
//! confined. The fixture disk is an ext4 made by mkfs.ext4 -d (e2fsprogs, which
//! scripts/setup installs).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rxen_mkimage::sandbox::SELFTEST_ENV;
use rxen_mkimage::testelf;

const BIN: &str = env!("CARGO_BIN_EXE_rxen-mkimage");

#[derive(Debug, PartialEq, Eq)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A temporary directory with `disk.img` (ext4: a GRUB config booting /vmlinuz with
/// /initrd.img), `blank.img` (zeros) and `web.img` (an rxen image with its kernel in its
/// memdisk, built from the synthetic loader).
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let f = Fixture { dir: tempfile::tempdir().unwrap() };
        let tree = f.path("tree");
        fs::create_dir_all(tree.join("boot/grub")).unwrap();
        fs::write(tree.join("vmlinuz"), testelf::bzimage(8192, 1)).unwrap();
        fs::write(tree.join("initrd.img"), b"an initrd\n").unwrap();
        fs::write(
            tree.join("boot/grub/grub.cfg"),
            "set default=0\nset timeout=0\nmenuentry 'Fixture Linux' {\n  linux /vmlinuz root=/dev/xvda console=hvc0\n  \
             initrd /initrd.img\n}\n",
        )
        .unwrap();
        let disk = f.path("disk.img");
        fs::File::create(&disk).unwrap().set_len(16 << 20).unwrap();
        let out = ["mkfs.ext4", "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"]
            .iter()
            .find_map(|m| Command::new(m).args(["-q", "-F", "-L", "fixture", "-d"]).arg(&tree).arg(&disk).output().ok())
            .expect("mkfs.ext4 (e2fsprogs; scripts/setup installs it)");
        assert!(out.status.success(), "mkfs.ext4: {}", String::from_utf8_lossy(&out.stderr));
        fs::File::create(f.path("blank.img")).unwrap().set_len(4 << 20).unwrap();

        fs::write(f.path("pvh-boot"), testelf::loader_elf()).unwrap();
        fs::write(f.path("kernel"), testelf::bzimage(8192, 1)).unwrap();
        let out = Command::new(BIN)
            .args(["build", "--loader", &f.p("pvh-boot"), "-o", &f.p("web.img"), "--kernel", &f.p("kernel")])
            .output()
            .unwrap();
        assert!(out.status.success(), "build: {}", String::from_utf8_lossy(&out.stderr));
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }
}

/// `rxen-mkimage explain ARGS...` with the test hook `hook` (none: the variable is
/// removed), and how long it took.
fn explain(args: &[&str], hook: Option<&str>) -> (Run, Duration) {
    let mut cmd = Command::new(BIN);
    cmd.arg("explain").args(args);
    match hook {
        Some(h) => cmd.env(SELFTEST_ENV, h),
        None => cmd.env_remove(SELFTEST_ENV),
    };
    let start = Instant::now();
    let Output { status, stdout, stderr } = cmd.output().expect("run rxen-mkimage");
    let took = start.elapsed();
    let run = Run {
        code: status.code().expect("an exit code, not a signal: the parent never dies of the child"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    };
    (run, took)
}

/// The one-line error of a parser that did not finish: exit status 1, nothing on stdout.
fn sandbox_error(r: &Run, disk: &str) -> String {
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.is_empty(), "the child's output reached stdout: {r:?}");
    assert!(r.stderr.starts_with("rxen-mkimage: explain: "), "{r:?}");
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "one line: {r:?}");
    assert!(r.stderr.contains(&format!("while parsing {disk}")), "names the disk: {r:?}");
    r.stderr.clone()
}

/// (a) The answer through the sandbox is the unconfined one, byte for byte, for text
/// and JSON, several disks, an image, nothing to boot, and an input that cannot be opened.
#[test]
fn same_answer_as_without_the_sandbox() {
    let f = Fixture::new();
    let (disk, blank, img) = (f.p("disk.img"), f.p("blank.img"), f.p("web.img"));
    let missing = f.p("missing.img");
    let cases: Vec<Vec<&str>> = vec![
        vec!["--disk", &disk],
        vec!["--json", "--disk", &disk],
        vec!["--virtio", "--cmdline", "console=hvc0 rxen.debug", "--disk", &blank, "--disk", &disk],
        vec!["--image", &img, "--disk", &blank],
        vec!["--json", "--disk", &blank],
        vec!["--disk", &missing],
        vec!["--image", &missing, "--disk", &disk],
    ];
    for args in &cases {
        let (confined, _) = explain(args, None);
        let mut plain_args = vec!["--no-sandbox"];
        plain_args.extend_from_slice(args);
        let (plain, _) = explain(&plain_args, None);
        assert_eq!(confined, plain, "explain {args:?}");
    }

    let (r, _) = explain(&["--disk", &disk], None);
    assert_eq!(r.code, 0, "{r:?}");
    for want in [
        "volume (xvda) ext4",
        "boots: step config (Linux bzImage",
        "initrd 0: 10 bytes",
        "\ncmdline: BOOT_IMAGE=/vmlinuz root=/dev/xvda console=hvc0\n",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?} in:\n{}", r.stdout);
    }
    let (r, _) = explain(&["--image", &img, "--disk", &blank], None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("boots: step standalone (Linux bzImage"), "{}", r.stdout);
    let (r, _) = explain(&["--json", "--disk", &blank], None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains(r#""boot":null"#) && r.stderr == "rxen-mkimage: nothing would boot\n", "{r:?}");
    let (r, _) = explain(&["--disk", &missing], None);
    assert!(r.code == 1 && r.stderr.contains(&missing) && r.stderr.contains("No such file"), "{r:?}");
}

/// The real work fits well inside tight limits.
#[test]
fn explain_fits_tight_limits() {
    let f = Fixture::new();
    let (r, _) =
        explain(&["--mem-limit", "256", "--cpu-limit", "5", "--time-limit", "20", "--disk", &f.p("disk.img")], None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("boots: step config"), "{}", r.stdout);
}

/// (b) A system call outside the allowlist (open) kills the child; the message says so.
#[test]
fn forbidden_system_call_is_killed() {
    let f = Fixture::new();
    let disk = f.p("disk.img");
    let (r, _) = explain(&["--disk", &disk], Some("open"));
    let e = sandbox_error(&r, &disk);
    assert!(e.contains("the disk parser tried a forbidden system call (seccomp killed it)"), "{e}");
    // The hooks act only in the sandbox: unconfined, the variable is ignored.
    let (r, _) = explain(&["--no-sandbox", "--disk", &disk], Some("open"));
    assert_eq!(r.code, 0, "{r:?}");
    // An unknown hook is refused before anything runs.
    let (r, _) = explain(&["--disk", &disk], Some("nonsense"));
    assert!(r.code == 1 && r.stderr.contains(SELFTEST_ENV), "{r:?}");
}

/// (c) A parser that spins hits the CPU limit, in about that time.
#[test]
fn cpu_limit_ends_a_spinning_parser() {
    let f = Fixture::new();
    let disk = f.p("disk.img");
    let (r, took) = explain(&["--cpu-limit", "1", "--disk", &disk], Some("loop"));
    let e = sandbox_error(&r, &disk);
    assert!(e.contains("CPU limit of 1 s hit"), "{e}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(20), "took {took:?}");
}

/// (d) The wall-clock limit, below the CPU limit: the parent kills the child.
#[test]
fn wall_clock_limit_ends_a_parser() {
    let f = Fixture::new();
    let disk = f.p("disk.img");
    let (r, took) = explain(&["--cpu-limit", "60", "--time-limit", "1", "--disk", &disk], Some("loop"));
    let e = sandbox_error(&r, &disk);
    assert!(e.contains("wall-clock limit of 1 s hit"), "{e}");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(20), "took {took:?}");
}

/// (e) Allocating without bound hits the memory limit (the default one and a lower
/// one), also when RUST_BACKTRACE asks std for a backtrace after the failed allocation.
#[test]
fn memory_limit_ends_a_hoarding_parser() {
    let f = Fixture::new();
    let disk = f.p("disk.img");
    let (r, _) = explain(&["--mem-limit", "256", "--disk", &disk], Some("alloc"));
    assert!(sandbox_error(&r, &disk).contains("memory limit of 256 MiB hit"), "{r:?}");
    let mut cmd = Command::new(BIN);
    cmd.args(["explain", "--disk", &disk]).env(SELFTEST_ENV, "alloc").env("RUST_BACKTRACE", "1");
    let Output { status, stdout, stderr } = cmd.output().unwrap();
    let r = Run {
        code: status.code().unwrap(),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    };
    assert!(sandbox_error(&r, &disk).contains("memory limit of 2048 MiB hit"), "{r:?}");
}

/// A panic and a stack overflow are crashes, named as such, with the child's words.
#[test]
fn crashes_are_reported_as_crashes() {
    let f = Fixture::new();
    let disk = f.p("disk.img");
    let (r, _) = explain(&["--disk", &disk], Some("panic"));
    let e = sandbox_error(&r, &disk);
    assert!(e.contains("the parser crashed (panic: ") && e.contains("sandbox selftest"), "{e}");
    let (r, _) = explain(&["--disk", &disk], Some("stack"));
    let e = sandbox_error(&r, &disk);
    assert!(e.contains("the parser crashed (signal 6 SIGABRT") && e.contains("overflowed its stack"), "{e}");
}
