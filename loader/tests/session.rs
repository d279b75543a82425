// SPDX-License-Identifier: MIT OR Apache-2.0
//! The boot session end to end on the host: `session::run` over the host platform (no
//! disks, or one that holds no filesystem) and a scripted console.

use rxen_loader::block::SliceDisk;
use rxen_loader::mem::{E820_RAM, E820Entry, RegionAllocator};
use rxen_loader::session::console::{QuietConsole, ScriptedConsole};
use rxen_loader::session::host::HostPlatform;
use rxen_loader::session::{self, BootEnv, Console, Outcome, Trace};
use rxen_loader::volume::Disk;

const RAM: u64 = 1 << 30;

fn run(cmdline: &str, con: &mut dyn Console, disks: Vec<Disk>) -> (Outcome, Trace) {
    let e820 = [E820Entry { addr: 0, size: RAM, kind: E820_RAM }];
    let mut ram = RegionAllocator::from_e820(e820, RAM);
    ram.reserve(0, 0x10_0000);
    let env = BootEnv { cmdline, memdisk: None, modules: &[], ram, e820: &e820, rsdp: 0, pv: None };
    let mut trace = Trace::default();
    let out = session::run(env, &mut HostPlatform { disks, dry_run: false }, con, &mut trace);
    (out, trace)
}

#[test]
fn nothing_to_boot_powers_off_and_names_each_step() {
    let mut con = QuietConsole::default();
    let (out, trace) = run("", &mut con, Vec::new());
    assert!(matches!(out, Outcome::PowerOff { code: 2 }), "{out:?}");
    assert!(con.output.contains("rxen: nothing to boot; tried:"), "{}", con.output);
    assert!(trace.boot.is_none());
    assert!(
        trace.steps.iter().any(|(l, o)| l == "find-vmlinuz" && o.starts_with("failed: search file /vmlinuz")),
        "{:?}",
        trace.steps
    );
}

#[test]
fn rxen_prompt_step_chooser_driven_by_keys() {
    // rxen.prompt: the chooser comes first; a bad name, a step by number, then off.
    let mut con = ScriptedConsole::typing(0, "nope\r1\rfind-vmlinuz\r\roff\r");
    let (out, trace) = run("rxen.prompt", &mut con, Vec::new());
    assert!(matches!(out, Outcome::PowerOff { code: 2 }), "{out:?}");
    let o = &con.output;
    assert!(o.contains("rxen> step number or name to try, or 'off' to power off:"), "{o}");
    assert!(o.contains("rxen: no step \"nope\""), "{o}");
    assert!(o.contains("rxen: step module failed"), "{o}");
    assert!(o.contains("rxen: step find-vmlinuz failed: search file /vmlinuz"), "{o}");
    assert!(!o.contains("nothing to boot"), "the prompt replaces the automatic tries: {o}");
    assert_eq!(trace.steps.len(), 2, "{:?}", trace.steps);
    assert!(o.ends_with("rxen: powering off\n"), "{o}");
}

#[test]
fn rxen_prompt_without_a_console_tries_the_steps() {
    let mut con = QuietConsole::default();
    let (out, _) = run("rxen.prompt", &mut con, Vec::new());
    assert!(matches!(out, Outcome::PowerOff { code: 2 }));
    assert!(con.output.contains("rxen.prompt: no console to prompt on; trying the steps"), "{}", con.output);
}

#[test]
fn a_console_that_goes_quiet_at_the_prompt_powers_off() {
    // The script ends mid-line: the chooser must not wait forever.
    let mut con = ScriptedConsole::typing(0, "fin");
    let (out, _) = run("rxen.prompt", &mut con, Vec::new());
    assert!(matches!(out, Outcome::PowerOff { code: 2 }));
}

#[test]
fn a_disk_that_is_not_a_filesystem_is_named_and_skipped() {
    let bytes: &'static [u8] = Box::leak(vec![0u8; 1 << 20].into_boxed_slice());
    let disk = Disk::new("xvda".into(), "test".into(), Box::new(SliceDisk::new(bytes, 512)));
    let mut con = QuietConsole::default();
    let (out, trace) = run("", &mut con, vec![disk]);
    assert!(matches!(out, Outcome::PowerOff { code: 2 }));
    assert_eq!(trace.disks, vec![("xvda".to_string(), "test".to_string())]);
    assert!(trace.messages.iter().any(|m| m == "(xvda): no filesystem rxen reads"), "{:?}", trace.messages);
}
