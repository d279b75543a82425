// SPDX-License-Identifier: MIT OR Apache-2.0
//! The hostile-disk suite: every image `scripts/build-hostile-disks` makes (one parser,
//! one named hostile structure each: partition tables, ext4, FAT, ISO9660, XFS, btrfs,
//! boot configurations, kernels) goes through
//!
//! 1. `rxen-mkimage explain` (the loader's own code on the host): it ends within a
//!    deadline, says nothing would boot (exit status 1), prints the message the manifest
//!    names for the structure, and does not panic;
//! 2. a QEMU (TCG) boot of the plain loader with the image as its only disk, with
//!    `rxen.debug`: the guest powers off by itself ("nothing to boot", isa-debug-exit code
//!    5), its last timeline stamp (the loader's own clock, seconds since its entry) is at
//!    most 10 s, the serial output has the same message, and no panic or exception.
//!
//! The manifest's regexes are Python `re` expressions (the script that writes them is
//! Python); they are matched by `python3`, which the fixture script needs anyway. All the
//! QEMU boots run in one test, one guest per image (a second disk would change which
//! volume the steps pick, and the messages name `vda`), within a total budget.

use rxen_e2e::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Guest time a hostile disk may take, by the loader's own timeline.
const GUEST_BUDGET_S: f64 = 10.0;
/// Wall-clock deadline of one QEMU boot: generous for TCG on a loaded 2-core host; every
/// image ends in well under a second of guest time.
const QEMU_DEADLINE: Duration = Duration::from_secs(60);
/// All the QEMU boots together.
const QEMU_TOTAL: Duration = Duration::from_secs(20 * 60);
/// One `rxen-mkimage explain`.
const EXPLAIN_DEADLINE: Duration = Duration::from_secs(30);

struct Case {
    name: String,
    image: PathBuf,
    regex: String,
    what: String,
}

/// The images and their manifest (`.cache/hostile-disks`, rebuilt when the script changes).
fn cases() -> &'static [Case] {
    static C: OnceLock<Vec<Case>> = OnceLock::new();
    C.get_or_init(|| {
        let dir = root().join(".cache/hostile-disks");
        let out = Command::new(root().join("scripts/build-hostile-disks"))
            .arg(&dir)
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/build-hostile-disks");
        assert!(out.status.success(), "scripts/build-hostile-disks failed: {}", out.status);
        let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).expect("manifest.tsv");
        let cases: Vec<Case> = manifest
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                assert_eq!(f.len(), 4, "manifest line {l:?}");
                Case { name: f[0].into(), image: dir.join(f[1]), regex: f[2].into(), what: f[3].into() }
            })
            .collect();
        assert!(cases.len() >= 40, "only {} hostile images", cases.len());
        cases
    })
}

/// Does `text` contain a match of the Python regex `re`?
fn matches(re: &str, text: &str) -> bool {
    let mut child = Command::new("python3")
        .args(["-c", "import re, sys; sys.exit(0 if re.search(sys.argv[1], sys.stdin.read()) else 1)", re])
        .stdin(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    child.wait().unwrap().success()
}

/// Run `cmd` with stdout and stderr to files (a pipe nobody reads could stall it), killed
/// at `deadline`: (exit code, None if killed or signalled; stdout and stderr).
fn run_with_deadline(cmd: &mut Command, deadline: Duration, scratch: &Path) -> (Option<i32>, String) {
    let (o, e) = (scratch.join("stdout"), scratch.join("stderr"));
    cmd.stdout(std::fs::File::create(&o).unwrap()).stderr(std::fs::File::create(&e).unwrap());
    let mut child = cmd.spawn().unwrap_or_else(|err| panic!("{cmd:?}: {err}"));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    (status, read(&o) + &read(&e))
}

/// The last `[   1.234] ` stamp of the loader's `rxen.debug` timeline, in seconds.
fn last_stamp(serial: &str) -> Option<f64> {
    serial.lines().filter_map(|l| l.strip_prefix('[')?.split_once("] ")?.0.trim().parse::<f64>().ok()).next_back()
}

fn looks_crashed(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("panic") || t.contains("exception")
}

#[test]
fn explain_names_every_hostile_structure() {
    let scratch = Scratch::new("hostile-explain");
    let mut failed = Vec::new();
    for c in cases() {
        let mut cmd = Command::new(mkimage());
        cmd.args(["explain", "--virtio", "--cmdline", "rxen.debug", "--disk"]).arg(&c.image);
        let t = Instant::now();
        let (code, out) = run_with_deadline(&mut cmd, EXPLAIN_DEADLINE, &scratch.0);
        let why = if code.is_none() {
            format!("did not end within {EXPLAIN_DEADLINE:?} (or died of a signal)")
        } else if code != Some(1) {
            format!("exit status {code:?}, not 1 (nothing would boot)")
        } else if looks_crashed(&out) {
            "output mentions a panic or exception".into()
        } else if !matches(&c.regex, &out) {
            format!("no match for {:?}", c.regex)
        } else {
            continue;
        };
        failed.push(format!("{} ({}), {:.1} s: {why}\n{out}", c.name, c.what, t.elapsed().as_secs_f64()));
    }
    assert!(failed.is_empty(), "{} of {} hostile images:\n{}", failed.len(), cases().len(), failed.join("\n"));
}

#[test]
fn qemu_boot_of_every_hostile_disk_ends_cleanly() {
    let start = Instant::now();
    let mut failed = Vec::new();
    let mut slowest = (0.0f64, "");
    for c in cases() {
        assert!(
            start.elapsed() < QEMU_TOTAL,
            "the hostile QEMU boots took more than {QEMU_TOTAL:?}; failures so far:\n{}",
            failed.join("\n")
        );
        let mut q = Qemu::new("microvm", &loader());
        q.append = Some("rxen.debug".into());
        q.timeout = QEMU_DEADLINE;
        q.extra_args.extend(virtio_disk("microvm", 0, &c.image));
        let run = q.run();
        let stamp = last_stamp(&run.serial);
        if let Some(s) = stamp
            && s > slowest.0
        {
            slowest = (s, &c.name);
        }
        let why = if run.timed_out {
            format!("still running after {QEMU_DEADLINE:?}")
        } else if run.exit_code != Some(5) || !run.serial.contains("rxen: nothing to boot") {
            "did not end in \"nothing to boot\" (isa-debug-exit code 5)".into()
        } else if looks_crashed(&run.serial) {
            "the serial output mentions a panic or exception".into()
        } else if stamp.is_none_or(|s| s > GUEST_BUDGET_S) {
            format!("the loader's last timeline stamp is {stamp:?} s, over {GUEST_BUDGET_S} s")
        } else if !matches(&c.regex, &run.serial) {
            format!("no match for {:?}", c.regex)
        } else {
            continue;
        };
        failed.push(format!("{} ({}): {why}\n{}", c.name, c.what, run.dump()));
    }
    println!(
        "{} hostile boots in {:.1} s; the slowest guest: {} at {:.3} s",
        cases().len(),
        start.elapsed().as_secs_f64(),
        slowest.1,
        slowest.0
    );
    assert!(failed.is_empty(), "{} of {} hostile images:\n{}", failed.len(), cases().len(), failed.join("\n"));
}
