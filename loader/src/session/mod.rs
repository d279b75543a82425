// SPDX-License-Identifier: MIT OR Apache-2.0
//! One boot session, from the policy to a launch plan: [`run`].
//!
//! The session reads the policy (the memdisk's `rxen.toml`, else the generic one), asks
//! the [`Platform`] for the guest's disks when a step can use them, mounts every volume
//! once, tries the policy's steps in order (search, kernel, config — with the menu on
//! the [`Console`]), places the chosen kernel in guest RAM, carries out the grubenv
//! writes the policy allows, hands the disks back, and returns a [`LaunchPlan`] for the
//! binary to copy and jump. When nothing boots it offers the step chooser (when the
//! policy or `rxen.prompt` asks and a person is there) and returns [`Outcome::PowerOff`].
//!
//! `pvh-boot` runs it over the hardware platform (`pvh`); `rxen-mkimage
//! explain` runs the very same function over disk images with a host platform and a
//! console that never waits, so explain shows the loader's own decision.

pub mod console;
pub mod host;
pub mod menu;
pub mod plan;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::block::BlockDevice;
use crate::boot::{self, BootError, Files, Memdisk, ModuleData, Prepared, Root};
use crate::bootcfg::{self, ConfigChoice, VolumeFs};

use crate::cmdline::{Crash, DomainCmdline, parse_domain_cmdline};
use crate::config::menu::EnvWrite;
use crate::config::policy::{OnFailure, Policy, Step, StepKind, parse_policy};
use crate::mem::{E820Entry, PAGE, RegionAllocator};
use crate::say;
use crate::volume::{self, Disk, GuestMemory, Volume};
pub use console::Console;
pub use plan::{BootSummary, LaunchPlan};

/// The shipped generic policy, used when the image has no memdisk.
pub const GENERIC_POLICY: &str = include_str!("../../../configs/generic.toml");
/// pv-boot's policy without a memdisk: the guest's second stage first.
pub const GENERIC_PV_POLICY: &str = include_str!("../../../configs/generic-pv.toml");

/// Guest RAM the loader places things in lies below this (identity map).
const GUEST_LIMIT: u64 = 1 << 32;

/// What the session needs of the machine it runs on.
pub trait Platform {
    /// A microsecond clock (read timings for `rxen.debug`): a plain function, so file
    /// reads can time themselves while the platform is lent out for guest pages.
    fn clock(&self) -> fn() -> u64;
    /// The guest's disks (Xen blkfront, or virtio). `cmdline` is the domain's command
    /// line (it may describe devices). Problems go to `log`.
    fn probe_disks(&mut self, cmdline: &str, log: &mut dyn FnMut(String)) -> Vec<Disk>;
    /// A slice over guest RAM `[paddr, paddr + len)`.
    ///
    /// # Safety
    /// The range must be free RAM below 4 GiB that no one else uses, handed to this
    /// function once per boot.
    unsafe fn map_guest(&mut self, paddr: u64, len: u64) -> Option<&'static mut [u8]>;
    /// After the disks were handed back: what is still held (Xen grants), if anything.
    fn after_release(&mut self) -> Option<String> {
        None
    }
    /// `rxen.crash=`: die on purpose the way asked (a test hook). Only
    /// [`Crash::Interrupt`] may return, once the platform survived its stray interrupt;
    /// a platform without CPU exceptions of its own panics for every kind.
    fn crash(&mut self, how: Crash) {
        panic!("rxen.crash={how}: panicking on purpose");
    }
    /// Lend `Some((addr, len))` of free RAM to the loader's heap, or take the loan back
    /// (`None`: true only when nothing allocated from it is still alive, so the RAM can be
    /// reused). Platforms without a second heap return false.
    ///
    /// # Safety
    /// `Some`: the range must be free RAM no one else uses until the loan ends.
    unsafe fn scratch_heap(&mut self, _region: Option<(u64, u64)>) -> bool {
        false
    }
    /// Decide, never act (`explain`): grubenv writes are described, not done.
    fn dry_run(&self) -> bool {
        false
    }
}

/// What the boot starts from.
pub struct BootEnv<'a> {
    /// The domain's command line (xl `extra=`).
    pub cmdline: &'a str,
    pub memdisk: Option<Memdisk<'a>>,
    pub modules: &'a [ModuleData<'a>],
    /// Free guest RAM (everything the loader and firmware use already reserved).
    pub ram: RegionAllocator,
    /// The memory map the kernel is handed.
    pub e820: &'a [E820Entry],
    pub rsdp: u64,
    /// Set when the loader runs as a Xen PV guest (pv-boot): kernels are then booted
    /// as PV kernels, by the start-of-day ABI, from what this says about the domain.
    pub pv: Option<PvTarget<'a>>,
}

/// The facts of a PV domain a PV kernel's start of day needs (pv-boot fills it in).
#[derive(Clone, Debug)]
pub struct PvTarget<'a> {
    pub nr_pages: u64,
    /// pfn -> mfn for every frame of the domain.
    pub p2m: &'a [u64],
    /// Machine address of shared_info.
    pub shared_info: u64,
    /// start_info flags to pass on.
    pub flags: u32,
    pub store_mfn: u64,
    pub store_evtchn: u32,
    pub console_mfn: u64,
    pub console_evtchn: u32,
    /// The loader page the next kernel's tables must map at its own address.
    pub trampoline_pfn: u64,
    /// The loader's live page-table frames (first pfn, count): the next kernel's tables
    /// map them read-only, and nothing may be placed over them.
    pub tables: Vec<(u64, u64)>,
}

/// How the session ended.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per boot, moved once
pub enum Outcome {
    Boot(LaunchPlan),
    /// Nothing booted (code 2), or the policy could not be read (code 1).
    PowerOff {
        code: u8,
    },
}

/// An entry of the guest's boot configuration, for `explain`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryInfo {
    pub title: String,
    pub kernel: String,
    pub initrds: Vec<String>,
    pub cmdline: String,
    pub default: bool,
}

/// What happened, step by step, for `explain` (the console shows the same as text).
#[derive(Debug, Default)]
pub struct Trace {
    /// (name, description).
    pub disks: Vec<(String, String)>,
    pub volumes: Vec<String>,
    /// Notes: scan problems, command-line warnings, step logs, grubenv writes.
    pub messages: Vec<String>,
    /// (step label, outcome).
    pub steps: Vec<(String, String)>,
    /// (file, bytes) read from disks.
    pub files_read: Vec<(String, u64)>,
    pub entries: Vec<EntryInfo>,
    pub boot: Option<BootSummary>,
    /// Why the session could not start (the policy), when it could not.
    pub fatal: Option<String>,
}

/// A step's name for messages: its `name`, or `#N (line L)`.
pub fn step_label(policy: &Policy, i: usize) -> String {
    let s = &policy.steps[i];
    match &s.name {
        Some(n) => n.clone(),
        None => format!("#{i} (line {})", s.line),
    }
}

/// Whether a step reads from the root volume (a path without a volume).
pub fn step_uses_root(step: &Step) -> bool {
    match &step.kind {
        StepKind::Kernel(k) => core::iter::once(&k.kernel).chain(&k.initrd).any(|p| p.volume.is_none()),
        // A config step reads the root volume when there is one, else looks at them all.
        StepKind::Search(_) | StepKind::Config(_) => false,
    }
}

/// The order to try steps in: `rxen.step=NAME` from the domain first, then the policy's.
pub fn step_order(policy: &Policy, domain: &DomainCmdline) -> Result<Vec<usize>, BootError> {
    let mut order = policy.order();
    if let Some(want) = &domain.options.step {
        let Some(i) = policy.steps.iter().position(|s| s.name.as_deref() == Some(want.as_str())) else {
            return Err(BootError::UnknownStep { name: want.clone() });
        };
        order.retain(|&j| j != i);
        order.insert(0, i);
    }
    Ok(order)
}

/// Whether any step can read from the guest's disks.
pub fn policy_uses_disks(policy: &Policy) -> bool {
    policy.steps.iter().any(|s| match &s.kind {
        StepKind::Search(_) | StepKind::Config(_) => true,
        StepKind::Kernel(k) => core::iter::once(&k.kernel)
            .chain(&k.initrd)
            .any(|p| p.volume.as_deref().is_some_and(|v| v != "memdisk" && !v.starts_with("module"))),
    })
}

/// Files read from disk go into pages of the boot's one allocator, each handed out once
/// for the whole boot (never again in a later attempt).
struct Pages<'p> {
    ram: &'p mut RegionAllocator,
    platform: &'p mut dyn Platform,
    /// RAM lent to the loader's allocator ([`GuestMemory::scratch`]).
    scratch: Option<(u64, u64)>,
}

impl GuestMemory for Pages<'_> {
    fn alloc(&mut self, len: u64) -> Option<(u64, &'static mut [u8])> {
        let at = self.ram.alloc_top(len, PAGE, GUEST_LIMIT)?;
        // SAFETY: [at, at + len) was just taken from the boot's allocator, which holds
        // only free RAM below 4 GiB and never hands a range out twice (nothing releases
        // it), so no one else uses it.
        let buf = unsafe { self.platform.map_guest(at, len) }?;
        Some((at, buf))
    }

    fn free(&mut self, paddr: u64, len: u64) {
        self.ram.release(paddr, len);
    }

    fn scratch(&mut self, len: u64) -> bool {
        if self.scratch.is_some() {
            return false;
        }
        let Some(at) = self.ram.alloc_top(len, 1 << 21, GUEST_LIMIT) else { return false };
        // SAFETY: [at, at + len) was just taken from the boot's allocator (free RAM no one
        // uses) and goes back to it only after end_scratch's platform call says the heap
        // no longer holds any of it.
        if unsafe { self.platform.scratch_heap(Some((at, len))) } {
            self.scratch = Some((at, len));
            true
        } else {
            self.ram.release(at, len);
            false
        }
    }

    fn end_scratch(&mut self) {
        if let Some((at, len)) = self.scratch.take() {
            // SAFETY: None withdraws the loan; the platform refuses while allocations live.
            if unsafe { self.platform.scratch_heap(None) } {
                self.ram.release(at, len);
            }
        }
    }
}

/// One boot: the session's state between steps.
struct Session<'s, 'a> {
    con: &'s mut dyn Console,
    platform: &'s mut dyn Platform,
    trace: &'s mut Trace,
    policy: Policy,
    domain: DomainCmdline,
    env: BootEnv<'a>,
    root: Root,
    search_failed: bool,
    tried: Vec<String>,
    /// Verified boot: the policy's rules and the image's keys.
    trust: alloc::rc::Rc<crate::trust::Trust>,
    /// A refused file under `require = true`: no further step or entry is tried.
    halted: bool,
}

/// Run a boot from the policy to a launch plan (or a power-off), over `platform` and
/// `con`; `trace` receives what happened.
pub fn run(env: BootEnv<'_>, platform: &mut dyn Platform, con: &mut dyn Console, trace: &mut Trace) -> Outcome {
    let domain = parse_domain_cmdline(env.cmdline);
    if let Some(c) = domain.options.crash {
        if platform.dry_run() {
            trace.messages.push(format!("rxen.crash={c}: the loader would crash here on purpose"));
        } else {
            // The test hook (tests/xen/selftest, tests/e2e): only the domain it runs in
            // goes down.
            platform.crash(c);
        }
    }
    for w in &domain.warnings {
        note(con, trace, w.clone());
    }
    let policy_text = match &env.memdisk {
        Some(md) => match md.archive().file("rxen.toml") {
            Ok(b) => core::str::from_utf8(b).map_err(|_| "rxen.toml: not UTF-8".to_string()),
            Err(e) => Err(format!("rxen.toml: {e}")),
        },
        None if env.pv.is_some() => Ok(GENERIC_PV_POLICY),
        None => Ok(GENERIC_POLICY),
    };
    let policy = policy_text
        .and_then(|t| parse_policy(t).map_err(|e| e.in_file("rxen.toml").to_string()))
        .and_then(|p| load_trust(&p, env.memdisk.as_ref()).map(|t| (p, t)));
    let (policy, trust) = match policy {
        Ok(pt) => pt,
        Err(e) => {
            say!(con, "fatal: {e}");
            say!(con, "powering off");
            trace.fatal = Some(e);
            return Outcome::PowerOff { code: 1 };
        }
    };
    if policy.trust.any() {
        note(
            con,
            trace,
            format!(
                "trust: {}; {} key(s){}",
                policy.trust,
                trust.keys.len(),
                trust.keys.iter().map(|k| format!(" {}", k.id)).collect::<String>()
            ),
        );
    }
    let mut domain = domain;
    if policy.trust.lock_cmdline && (!domain.kernel_part.is_empty() || domain.options.replace_cmdline) {
        note(
            con,
            trace,
            format!(
                "trust: the policy locks the command line (lock_cmdline): the domain's {:?}{} not passed on",
                domain.kernel_part,
                if domain.options.replace_cmdline { " and rxen.cmdline=replace are" } else { " is" }
            ),
        );
        domain.kernel_part.clear();
        domain.options.replace_cmdline = false;
    }

    // Disks are probed only when the policy can use them (or to show them with
    // rxen.debug): a standalone image with its kernel in the memdisk never touches them.
    let mut disks = Vec::new();
    if policy_uses_disks(&policy) || domain.options.debug {
        let mut notes = Vec::new();
        disks = platform.probe_disks(env.cmdline, &mut |m| notes.push(m));
        for m in notes {
            note(con, trace, m);
        }
    }
    for d in &disks {
        trace.disks.push((d.name.clone(), d.desc.clone()));
        if domain.options.debug {
            let mut dev = d.dev.clone();
            let mut sector0 = alloc::vec![0u8; dev.block_size() as usize];
            let crc = match dev.read_blocks(0, &mut sector0) {
                Ok(()) => format!("0x{:08x}", crate::crc::crc32(&sector0)),
                Err(e) => format!("unreadable ({e})"),
            };
            say!(
                con,
                "disk {}: {}, {} sectors of {} bytes, sector0 crc32 {crc}",
                d.name,
                d.desc,
                dev.num_blocks(),
                dev.block_size()
            );
        }
    }
    let mut notes = Vec::new();
    let mut volumes = volume::scan(&disks, &mut |m| notes.push(m));
    for m in notes {
        note(con, trace, m);
    }
    for v in &volumes {
        say!(con, "volume {}", v.describe());
        trace.volumes.push(v.describe());
    }

    let order = step_order(&policy, &domain).unwrap_or_else(|e| {
        say!(con, "{e}");
        policy.order()
    });
    let prompt_now = domain.options.prompt && con.interactive();
    if domain.options.prompt && !prompt_now {
        say!(con, "rxen.prompt: no console to prompt on; trying the steps");
    }
    let on_failure = policy.on_failure;
    let mut s = Session {
        con,
        platform,
        trace,
        policy,
        domain,
        env,
        root: Root::Memdisk,
        search_failed: false,
        tried: Vec::new(),
        trust: alloc::rc::Rc::new(trust),
        halted: false,
    };
    if !prompt_now {
        for i in order {
            if let Some(plan) = s.attempt(i, &disks, &mut volumes) {
                return Outcome::Boot(plan);
            }
            if s.halted {
                say!(s.con, "trust: a file was refused and the policy sets require = true: no other step is tried");
                s.trace.messages.push("trust: require = true stopped the boot at the first refusal".into());
                say!(s.con, "powering off");
                return Outcome::PowerOff { code: 2 };
            }
        }
    }
    if !volumes.is_empty() || !disks.is_empty() {
        say!(s.con, "{} disk(s), {} volume(s) found", disks.len(), volumes.len());
    }
    if !prompt_now {
        say!(s.con, "nothing to boot; tried:");
        for t in &s.tried {
            say!(s.con, "  {t}");
        }
    }
    if (on_failure == OnFailure::Prompt || prompt_now) && s.con.interactive() && !s.halted {
        loop {
            say!(s.con, "steps:");
            for i in 0..s.policy.steps.len() {
                say!(s.con, "  {}. {}", i + 1, step_label(&s.policy, i));
            }
            s.con.write_str("rxen> step number or name to try, or 'off' to power off:\n");
            let Some(line) = console::read_line(s.con, "", console::PROMPT_LINE_MAX) else { break };
            let want = line.trim();
            if want == "off" {
                break;
            }
            if want.is_empty() {
                continue;
            }
            let steps = &s.policy.steps;
            let pick = want
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .filter(|&n| n < steps.len())
                .or_else(|| steps.iter().position(|st| st.name.as_deref() == Some(want)));
            match pick {
                Some(i) => {
                    if let Some(plan) = s.attempt(i, &disks, &mut volumes) {
                        return Outcome::Boot(plan);
                    }
                }
                None => say!(s.con, "no step {want:?}"),
            }
        }
    }
    say!(s.con, "powering off");
    Outcome::PowerOff { code: 2 }
}

/// The boot's trust: the policy's rules and the memdisk's keys file. A policy that asks
/// for signatures from an image without keys is an error (nothing could boot from disk).
fn load_trust(policy: &Policy, memdisk: Option<&Memdisk<'_>>) -> Result<crate::trust::Trust, String> {
    let keys = match memdisk.map(|m| m.archive().file(crate::trust::KEYS_FILE)) {
        Some(Ok(b)) => {
            let text = core::str::from_utf8(b).map_err(|_| format!("{}: not UTF-8", crate::trust::KEYS_FILE))?;
            crate::trust::parse_keys(text).map_err(|e| format!("{}: {e}", crate::trust::KEYS_FILE))?
        }
        _ => Vec::new(),
    };
    let r = &policy.trust;
    if (r.signatures || r.configs) && keys.is_empty() {
        return Err(format!(
            "rxen.toml: [trust] asks for signatures but the image carries no keys ({}; rxen-mkimage build --trust-key)",
            crate::trust::KEYS_FILE
        ));
    }
    Ok(crate::trust::Trust { rules: r.clone(), keys })
}

/// A note: on the console and in the trace.
fn note(con: &mut dyn Console, trace: &mut Trace, m: String) {
    say!(con, "{m}");
    trace.messages.push(m);
}

impl<'a> Session<'_, 'a> {
    fn log(&mut self, m: String) {
        note(self.con, self.trace, m);
    }

    /// Where this attempt's files come from: the memdisk, the modules, `volumes`.
    fn files<'x>(&self, disks: &'x [Disk], volumes: &'x mut [Volume]) -> Files<'x, 'a> {
        let (memdisk, modules, clock) = (self.env.memdisk, self.env.modules, self.platform.clock());
        Files {
            memdisk,
            modules,
            disks,
            volumes,
            reads: Vec::new(),
            clock,
            pv: self.env.pv.is_some(),
            pvh_entry: self.env.pv.is_none() && !self.policy.kaslr,
            trust: self.trust.clone(),
            poll: None,
        }
    }

    /// With `rxen.debug`, print each file read from a disk: its size, the time and the
    /// rate. Always empties the list.
    fn report_reads(&mut self, reads: &mut Vec<(String, u64, u64)>) {
        for (what, bytes, us) in reads.drain(..) {
            if self.domain.options.debug {
                let rate = bytes.saturating_mul(1_000_000) / us.max(1) / (1 << 20);
                say!(
                    self.con,
                    "read {what}: {} in {}.{:03} s ({rate} MiB/s)",
                    boot::size_str(bytes),
                    us / 1_000_000,
                    us / 1000 % 1000
                );
            }
            self.trace.files_read.push((what, bytes));
        }
    }

    /// One attempt at step `i`: a plan when it boots.
    fn attempt(&mut self, i: usize, disks: &[Disk], volumes: &mut [Volume]) -> Option<LaunchPlan> {
        let step = self.policy.steps[i].clone();
        let label = step_label(&self.policy, i);
        if self.search_failed && step_uses_root(&step) {
            say!(self.con, "step {label} skipped: the search before it found nothing");
            self.trace.steps.push((label, "skipped: the search before it found nothing".into()));
            return None;
        }
        say!(self.con, "step {label}");
        let r = self.run_step(&step, &label, disks, volumes);
        match r {
            Ok(Some(plan)) => return Some(plan),
            Ok(None) => {}
            Err(e) => {
                self.search_failed = matches!(step.kind, StepKind::Search(_));
                self.halted |= self.trust.rules.require && e.is_refusal();
                say!(self.con, "step {label} failed: {e}");
                self.trace.steps.push((label.clone(), format!("failed: {e}")));
                self.tried.push(format!("{label}: {e}"));
            }
        }
        None
    }

    fn run_step(
        &mut self,
        step: &Step,
        label: &str,
        disks: &[Disk],
        volumes: &mut [Volume],
    ) -> Result<Option<LaunchPlan>, BootError> {
        let mut logs = Vec::new();
        match &step.kind {
            StepKind::Search(key) => match volume::search(disks, volumes, key) {
                Ok(v) => {
                    say!(self.con, "root is now ({})", volumes[v].name);
                    self.trace.steps.push((label.into(), format!("root is now ({})", volumes[v].name)));
                    self.root = Root::Volume(v);
                    self.search_failed = false;
                    Ok(None)
                }
                Err(unreadable) => {
                    Err(BootError::Search { key: key.clone(), volumes: volumes.len(), disks: disks.len(), unreadable })
                }
            },
            StepKind::Kernel(k) => {
                let mut files = self.files(disks, &mut *volumes);
                let mut mem = Pages { ram: &mut self.env.ram, platform: &mut *self.platform, scratch: None };
                let r =
                    boot::prepare_kernel_step(k, &mut files, &self.root, &self.domain, &mut mem, &mut |m| logs.push(m));
                let mut reads = core::mem::take(&mut files.reads);
                drop(files);
                for m in logs {
                    self.log(m);
                }
                self.report_reads(&mut reads);
                let p = r?;
                let plan = self.launch(&p, label, None, disks, volumes)?;
                self.trace.steps.push((label.into(), "boots".into()));
                Ok(Some(plan))
            }
            StepKind::Config(c) => {
                let mut files = self.files(disks, &mut *volumes);
                let choice = bootcfg::load_config(c, &mut files, &self.root, &self.domain, &mut |m| logs.push(m));
                drop(files);
                for m in logs {
                    self.log(m);
                }
                self.config(&choice?, label, disks, volumes).map(Some)
            }
        }
    }

    /// A configuration was read: the menu, then its entries in order until one boots.
    fn config(
        &mut self,
        choice: &ConfigChoice,
        label: &str,
        disks: &[Disk],
        volumes: &mut [Volume],
    ) -> Result<LaunchPlan, BootError> {
        say!(self.con, "{}: {} entries", choice.menu.file, choice.menu.entries.len());
        let default = choice.selection.map(|s| s.entry);
        for (i, e) in choice.menu.entries.iter().enumerate() {
            self.trace.entries.push(EntryInfo {
                title: e.display_title(),
                kernel: e.kernel.as_ref().map(|k| k.to_string()).unwrap_or_default(),
                initrds: e.initrds.iter().map(|p| p.to_string()).collect(),
                cmdline: e.grub_cmdline(),
                default: Some(i) == default,
            });
        }
        let mut early = None;
        let picked = match menu::begin(choice, self.domain.options.menu, self.con) {
            None => None,
            Some(wait) => {
                let (mut spent_ms, mut key) = (0, None);
                if let (Some(1..), Some(d)) = (wait.timeout, default) {
                    let (p, k, ms) = self.prepare_during_countdown(choice, d, disks, volumes);
                    (spent_ms, key) = (ms, k);
                    early = p.map(|(p, saved)| (d, p, saved));
                }
                let picked = {
                    let mut files = self.files(disks, &mut *volumes);
                    let mut fs = VolumeFs::of(&mut files, choice.source.clone());
                    menu::finish(wait, &mut fs, self.con, spent_ms, key)
                };
                if picked.is_some()
                    && let Some((_, _, saved)) = early.take()
                {
                    // Someone chose at the menu: the RAM what was prepared took is given back.
                    self.env.ram = saved;
                }
                picked
            }
        };
        let mut why = Vec::new();
        let mut order: Vec<(usize, Option<String>)> = picked.into_iter().collect();
        for i in choice.try_order() {
            if !order.iter().any(|(j, _)| *j == i) {
                order.push((i, None));
            }
        }
        for (idx, edited) in order {
            let title = choice.menu.entries[idx].display_title();
            say!(self.con, "entry {title:?}");
            // The default made ready during the countdown (then first in the order, as the
            // countdown ran out), or the entry read now.
            let r = match early.take_if(|(d, ..)| *d == idx) {
                Some((_, p, _)) => Ok(p),
                None => {
                    let mut logs = Vec::new();
                    let mut files = self.files(disks, &mut *volumes);
                    let mut mem = Pages { ram: &mut self.env.ram, platform: &mut *self.platform, scratch: None };
                    let r = bootcfg::prepare_entry(
                        choice,
                        idx,
                        edited.as_deref(),
                        &mut files,
                        &self.domain,
                        &mut mem,
                        &mut |m| logs.push(m),
                    );
                    let mut reads = core::mem::take(&mut files.reads);
                    drop(files);
                    for m in logs {
                        self.log(m);
                    }
                    self.report_reads(&mut reads);
                    r
                }
            };
            let r = r.and_then(|p| self.launch(&p, label, Some((choice, idx)), disks, volumes));
            match r {
                Ok(plan) => {
                    self.trace.steps.push((label.into(), format!("{}: boots entry {title:?}", choice.menu.file)));
                    return Ok(plan);
                }
                Err(e) => {
                    say!(self.con, "{e}");
                    why.push(e.to_string());
                    if self.trust.rules.require && e.is_refusal() {
                        return Err(e);
                    }
                }
            }
        }
        Err(match why.pop() {
            None => BootError::NoEntry { file: choice.menu.file.clone() },
            Some(last) => {
                // Explain lists every entry's failure; the console already showed them.
                let all = if why.is_empty() { last.clone() } else { format!("{}; {last}", why.join("; ")) };
                self.trace.messages.push(format!("{}: {all}", choice.menu.file));
                BootError::Config(last)
            }
        })
    }

    /// The grubenv writes of entry `idx`: done (before the jump, once the boot is sure),
    /// described (`explain`), or refused when the policy does not allow them.
    fn grubenv(&mut self, choice: &ConfigChoice, idx: usize, disks: &[Disk], volumes: &mut [Volume]) {
        let writes: Vec<&EnvWrite> = choice.menu.env_writes_for(idx).collect();
        let dry = self.platform.dry_run();
        for w in &writes {
            let what = crate::config::grubenv::describe_changes(&w.vars);
            let verdict = match (choice.write_grubenv, dry) {
                (true, true) => "the loader would write it (write_grubenv)",
                (true, false) => "written (write_grubenv)",
                (false, _) => "not written (the policy does not set write_grubenv)",
            };
            self.trace.messages.push(format!("{}: the config saves {what} to {}: {verdict}", w.at, w.file));
            if !choice.write_grubenv && !dry {
                let vars: Vec<&str> = w.vars.iter().map(|(k, _)| k.as_str()).collect();
                say!(
                    self.con,
                    "{}: not saving {} to {}: the policy does not allow grubenv writes (write_grubenv)",
                    w.at,
                    vars.join(" "),
                    w.file
                );
            }
        }
        if !choice.write_grubenv || dry || writes.is_empty() {
            return;
        }
        let mut files = self.files(disks, volumes);
        let mut fs = VolumeFs::of(&mut files, choice.source.clone());
        for r in fs.write_grubenv(&writes) {
            match r {
                Ok(m) => say!(self.con, "grubenv: {m}"),
                Err(e) => say!(self.con, "grubenv: {e}"),
            }
        }
    }

    /// While the menu counts down: read, verify and decompress the default entry (`idx`),
    /// stopping at the first key on the console. Returns what was prepared (`None`: a key
    /// came, or it failed, and the RAM it took is given back: the entry is tried again the
    /// ordinary way), with the RAM as it was before (to give back if the menu is used),
    /// that key, and the milliseconds spent.
    fn prepare_during_countdown(
        &mut self,
        choice: &ConfigChoice,
        idx: usize,
        disks: &[Disk],
        volumes: &mut [Volume],
    ) -> (Option<(Prepared<'a>, RegionAllocator)>, Option<u8>, u64) {
        let clock = self.platform.clock();
        let t0 = clock();
        let saved = self.env.ram.clone();
        let mut files = self.files(disks, &mut *volumes);
        let con = &mut *self.con;
        let mut pressed = None;
        let mut poll = || {
            if pressed.is_none() {
                pressed = con.read_key(Some(0));
            }
            pressed.is_some()
        };
        files.poll = Some(&mut poll);
        let mut logs = Vec::new();
        let mut mem = Pages { ram: &mut self.env.ram, platform: &mut *self.platform, scratch: None };
        let r = bootcfg::prepare_entry(choice, idx, None, &mut files, &self.domain, &mut mem, &mut |m| logs.push(m));
        let mut reads = core::mem::take(&mut files.reads);
        drop(files);
        let spent_ms = clock().saturating_sub(t0) / 1000;
        match (r, pressed) {
            (Ok(p), None) => {
                say!(self.con, "entry {:?} made ready during the countdown:", choice.menu.entries[idx].display_title());
                for m in logs {
                    self.log(m);
                }
                self.report_reads(&mut reads);
                (Some((p, saved)), None, spent_ms)
            }
            (_, key) => {
                if key.is_some() {
                    say!(self.con, "a key: the menu (the default's kernel was being made ready; dropped)");
                }
                self.env.ram = saved;
                (None, key, spent_ms)
            }
        }
    }

    /// Place a prepared kernel and build the plan; then (nothing can fail any more) the
    /// entry's grubenv writes and the disks handed back.
    fn launch(
        &mut self,
        p: &Prepared,
        label: &str,
        entry: Option<(&ConfigChoice, usize)>,
        disks: &[Disk],
        volumes: &mut [Volume],
    ) -> Result<LaunchPlan, BootError> {
        // Placement works on a copy: a plan that fails leaves the boot's RAM as it was.
        let mut ram = self.env.ram.clone();
        let memdisk = self.env.memdisk.map(|m| (m.paddr, m.bytes.len() as u64));
        // Pages a device may still write (a timed-out request whose grant could not be
        // ended) are reserved in the kernel's map too; Linux lets a reserved entry win
        // over RAM it overlaps.
        let mut e820 = self.env.e820.to_vec();
        for r in crate::mem::QUARANTINE.ranges() {
            let at = e820.iter().position(|e| e.addr > r.start).unwrap_or(e820.len());
            e820.insert(at, E820Entry { addr: r.start, size: r.end - r.start, kind: crate::mem::E820_RESERVED });
        }
        let mut fallback = None;
        let built = match plan::build(p, &mut ram, &e820, self.env.rsdp, memdisk, self.env.pv.as_ref()) {
            // A bzImage's payload whose segments cannot go where they say: the bzImage
            // itself boots by the boot protocol (its own decompressor relocates it).
            Err(e) if let Prepared::Pvh { image, initrd, cmdline, from_bz: Some((kernel, kernel_paddr)), .. } = p => {
                say!(self.con, "the kernel's ELF cannot be placed ({e}): the bzImage decompresses itself");
                ram = self.env.ram.clone();
                ram.release(image.paddr, boot::payload_alloc_len(kernel));
                let p = fallback.insert(Prepared::Linux {
                    kernel: *kernel,
                    kernel_paddr: *kernel_paddr,
                    initrd: initrd.clone(),
                    cmdline: cmdline.clone(),
                });
                plan::build(p, &mut ram, &e820, self.env.rsdp, memdisk, self.env.pv.as_ref())
            }
            r => r,
        };
        let p = fallback.as_ref().unwrap_or(p);
        let (copies, jump, msg) = built?;
        if let Some(msg) = msg {
            say!(self.con, "{msg}");
        }
        if let Some((choice, idx)) = entry {
            self.grubenv(choice, idx, disks, volumes);
        }
        // Hand every disk back before the kernel starts (Xen blkfront: the kernel's own
        // driver must find the backend ready to connect). A failure is reported, not
        // fatal: the kernel may not need that disk.
        let mut quiesced = Vec::new();
        for d in disks {
            if self.domain.options.debug {
                say!(self.con, "{}: handing the disk back", d.name);
            }
            match d.dev.clone().release() {
                Ok(()) => quiesced.push(d.name.clone()),
                Err(e) => say!(self.con, "warning: {}: could not hand the disk back: {e}", d.name),
            }
        }
        if let Some(w) = self.platform.after_release() {
            say!(self.con, "warning: {w}");
        }
        let (kind, kernel_bytes, initrds, cmdline) = p.summary();
        match jump {
            plan::Jump::Pvh { entry, .. } => say!(self.con, "booting PVH kernel at {entry:#x}: {cmdline}"),
            plan::Jump::Pv { entry, .. } => say!(self.con, "booting PV kernel at {entry:#x}: {cmdline}"),
            plan::Jump::Multiboot { entry, .. } => say!(self.con, "booting multiboot kernel at {entry:#x}: {cmdline}"),
            _ => say!(self.con, "booting: {cmdline}"),
        }
        let summary = BootSummary {
            step: label.into(),
            entry: entry.map(|(c, i)| c.menu.entries[i].display_title()),
            kind: kind.into(),
            kernel_bytes,
            initrds,
            cmdline: cmdline.into(),
        };
        self.trace.boot = Some(summary.clone());
        Ok(LaunchPlan { copies, jump, quiesced, summary })
    }
}
