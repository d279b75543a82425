// SPDX-License-Identifier: MIT OR Apache-2.0
//! `pvh-boot`: rxen's loader for PVH domains (Xen `type = "pvh"`, and QEMU, Firecracker,
//! Cloud Hypervisor `-kernel`). Thin on purpose: entry asm, heap, console, panic, and the
//! copies and jump that [`rxen_loader::boot`] plans.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use alloc::boxed::Box;
use linked_list_allocator::LockedHeap;
use rxen_loader::block::cache::CachedDevice;
use rxen_loader::boot::{self, FileData, Files, ModuleData, Prepared, Root, StepOutcome};
use rxen_loader::bootinfo::{PhysMem, StartInfo};
use rxen_loader::cmdline::parse_domain_cmdline;
use rxen_loader::config::policy::parse_policy;
use rxen_loader::config::policy::{OnFailure, Policy, StepKind};
use rxen_loader::handoff::boot_params::{BootParamsConfig, build as build_boot_params};
use rxen_loader::handoff::start_info::build_start_info;
use rxen_loader::mem::{E820Entry, RegionAllocator};
use rxen_loader::platform::xen::{self, blkfront, xenstore::Xenstore};
use rxen_loader::platform::{acpi, io, serial::SerialConsole, xen_cpuid_base};
use rxen_loader::volume::{self, Disk, GuestMemory};
use rxen_memdisk::ImageHeader;
use rxen_memdisk::ustar::Archive;

#[path = "../arch/x86_64/rt.rs"]
mod rt;

core::arch::global_asm!(include_str!("../arch/x86_64/pvh.S"), options(att_syntax));

unsafe extern "C" {
    /// Leave long mode and jump to a 32-bit entry (pvh.S).
    fn rxen_enter32(entry: u32, ebx: u32, esi: u32) -> !;
    static __image_start: u8;
    static __image_end: u8;
}

/// Filled in by rxen-mkimage (memdisk/src/header.rs); placed at 0x100000 by the linker
/// script. Always read through [`image_header`]: the compiler must not fold the constant.
#[used]
#[unsafe(link_section = ".rxen.header")]
static RXEN_HEADER: ImageHeader = ImageHeader::EMPTY;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The heap: policy, configs, file lists. Kernels and initrds never go through it.
const HEAP_SIZE: u64 = 8 << 20;
const GIB4: u64 = 1 << 32;

static COM1: AtomicBool = AtomicBool::new(true);
static RSDP: AtomicU64 = AtomicU64::new(0);

/// Where messages go: the Xen PV console once it is up (what `xl console` shows), else
/// COM1 and port 0xe9.
struct Console;

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        if xen::console::ready() {
            for (i, part) in s.split('\n').enumerate() {
                if i > 0 {
                    xen::console::write(b"\r\n");
                }
                xen::console::write(part.as_bytes());
            }
            Ok(())
        } else if xen::hypercalls_ready() && xen::console_io_write(s.as_bytes()) {
            // Xen without a PV console (yet): the hypervisor's log (`xl dmesg`).
            Ok(())
        } else {
            SerialConsole::init_quiet(COM1.load(Ordering::Relaxed)).write_str(s)
        }
    }
}

fn console() -> Console {
    Console
}

/// A byte typed on the console, if any.
fn try_getc() -> Option<u8> {
    if xen::console::ready() {
        xen::console::try_getc()
    } else {
        SerialConsole::init_quiet(COM1.load(Ordering::Relaxed)).try_getc()
    }
}

/// Whether a person can answer a prompt: COM1 off Xen, the PV console on Xen.
fn console_has_input() -> bool {
    xen::console::ready() || COM1.load(Ordering::Relaxed)
}

macro_rules! say {
    ($($t:tt)*) => {{ let _ = writeln!(console(), $($t)*); }};
}

/// Print without a newline (prompt echo).
fn say_raw(s: &str) {
    let _ = console().write_str(s);
}

/// Physical memory below 4 GiB, identity mapped by pvh.S.
struct Phys;
impl PhysMem for Phys {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), ()> {
        match paddr.checked_add(buf.len() as u64) {
            Some(end) if end <= GIB4 => {
                // SAFETY: the range is below 4 GiB (identity mapped by pvh.S) and `buf` is
                // loader memory, distinct from the firmware structure being read.
                unsafe { io::read_phys(paddr, buf) };
                Ok(())
            }
            _ => Err(()),
        }
    }
}

fn image_header() -> ImageHeader {
    // SAFETY: RXEN_HEADER is a 96-byte static; a volatile read sees the bytes mkimage
    // wrote into the image rather than the constant the compiler knows.
    let bytes: [u8; 96] = unsafe { core::ptr::read_volatile((&raw const RXEN_HEADER).cast::<[u8; 96]>()) };
    ImageHeader::from_bytes(&bytes).unwrap_or(ImageHeader::EMPTY)
}

/// Stop the guest: QEMU isa-debug-exit, then ACPI S5, then a triple fault (QEMU
/// `-no-reboot` exits on it; Xen destroys or restarts the domain per its config).
fn poweroff(code: u8) -> ! {
    if xen::hypercalls_ready() {
        // Xen: the domain's on_poweroff / on_crash settings decide what happens next.
        xen::shutdown(if code == 0x7f { xen::SHUTDOWN_CRASH } else { xen::SHUTDOWN_POWEROFF });
    }
    io::outb(0xf4, code);
    let rsdp = RSDP.load(Ordering::Relaxed);
    if rsdp != 0 {
        match acpi::find_poweroff(&Phys, rsdp) {
            Some(acpi::PowerOff::Pm1aCnt(port)) => io::outw(port, 1 << 13), // SLP_EN, SLP_TYP 0 (QEMU's \_S5)
            Some(acpi::PowerOff::SleepControl { addr, io: true }) if addr <= 0xffff => {
                io::outb(addr as u16, (1 << 5) | (5 << 2)) // SLP_EN | SLP_TYP=5 (S5)
            }
            Some(acpi::PowerOff::SleepControl { addr, io: false }) if addr < GIB4 => {
                // SAFETY: a one-byte MMIO register below 4 GiB (identity mapped) named by
                // the FADT; writing SLP_EN|SLP_TYP is its documented use.
                unsafe { core::ptr::write_volatile(addr as usize as *mut u8, (1 << 5) | (5 << 2)) }
            }
            _ => {}
        }
    }
    let null_idt = [0u16; 5];
    // SAFETY: loading an empty IDT and raising an exception triple-faults the CPU, which
    // resets or stops the machine; nothing runs after this.
    unsafe { core::arch::asm!("lidt [{}]", "int3", in(reg) &null_idt, options(noreturn)) }
}

fn fatal(msg: impl core::fmt::Display) -> ! {
    say!("rxen: fatal: {msg}");
    say!("rxen: powering off");
    poweroff(1)
}

#[unsafe(no_mangle)]
extern "C" fn rxen_pvh_main(start_info_paddr: u32) -> ! {
    let on_xen = xen_cpuid_base().is_some();
    COM1.store(!on_xen, Ordering::Relaxed);
    let _ = SerialConsole::init(!on_xen);
    let mut xen_err = None;
    if on_xen {
        // The hypercall page first: the PV console, shutdown and everything else need it.
        match xen::init_hypercalls() {
            Ok(_) => {
                if !xen::console::init() {
                    xen_err = Some(xen::XenError::NoConsole);
                }
            }
            Err(e) => xen_err = Some(e),
        }
    }
    say!("rxen {VERSION} pvh-boot{}", if on_xen { " (Xen)" } else { "" });
    if let Some(e) = xen_err {
        say!("rxen: Xen: {e}");
    }

    let si = StartInfo::read(&Phys, start_info_paddr as u64).unwrap_or_else(|e| fatal(e));
    RSDP.store(si.raw.rsdp_paddr, Ordering::Relaxed);

    // Free RAM, minus everything that must survive until the jump.
    let mut ram_err = None;
    let mut alloc = {
        let mut entries = [E820Entry { addr: 0, size: 0, kind: 0 }; 128];
        let mut n = 0;
        if let Err(e) = si.for_each_memmap(&Phys, |e| {
            if n < entries.len() {
                entries[n] = e;
                n += 1;
            }
        }) {
            ram_err = Some(e);
        }
        RegionAllocator::from_e820(entries[..n].iter().copied(), GIB4)
    };
    if let Some(e) = ram_err {
        fatal(e);
    }
    alloc.reserve(0, boot::LOW_MEMORY_END);
    // Linker-defined symbols: only their addresses are taken.
    let (img_start, img_end) = (&raw const __image_start as u64, &raw const __image_end as u64);
    alloc.reserve(img_start, img_end - img_start);
    let hdr = image_header();
    if hdr.memdisk_len > 0 && !alloc.is_free(hdr.memdisk_paddr, hdr.memdisk_len) {
        fatal(format_args!(
            "image header: memdisk at {:#x}+{:#x} is not in free RAM",
            hdr.memdisk_paddr, hdr.memdisk_len
        ));
    }
    alloc.reserve(hdr.memdisk_paddr, hdr.memdisk_len);
    alloc.reserve(si.paddr, si.size());
    let _ = si.for_each_module(&Phys, |m| alloc.reserve(m.paddr, m.size));

    let heap = alloc.alloc_top(HEAP_SIZE, 1 << 21, GIB4).unwrap_or_else(|| fatal("no free RAM for an 8 MiB heap"));
    // SAFETY: [heap, heap + HEAP_SIZE) is free RAM below 4 GiB, identity mapped, now
    // reserved in the allocator, and used by nothing else.
    unsafe { HEAP.lock().init(heap as usize as *mut u8, HEAP_SIZE as usize) };

    let bi = si.parse(&Phys).unwrap_or_else(|e| fatal(e));

    // Xen: shared_info and the grant table go into a hole of the memory map; the kernel is
    // told those pages are reserved.
    let mut handoff_map = bi.memmap.clone();
    let xen_up = if on_xen && xen::hypercalls_ready() {
        match xen::Xen::init(&bi.memmap) {
            Ok(x) => {
                let (at, len) = x.reserved();
                handoff_map = xen::with_reserved(&bi.memmap, at, len);
                Some(x)
            }
            Err(e) => {
                say!("rxen: Xen: {e}; the guest's disks are out of reach");
                None
            }
        }
    } else {
        None
    };
    let domain = parse_domain_cmdline(&bi.cmdline);
    if let Some(c) = domain.options.crash {
        panic!("rxen.crash={c}: panicking on purpose");
    }
    for w in &domain.warnings {
        say!("rxen: {w}");
    }
    if domain.options.debug {
        say!("rxen: hvm_start_info v{} at {:#x}, cmdline {:?}", bi.version, si.paddr, bi.cmdline);
        for e in &bi.memmap {
            say!("rxen:   memmap {:#012x}-{:#012x} type {}", e.addr, e.addr + e.size, e.kind);
        }
        say!("rxen:   loader {:#x}-{:#x}, heap {:#x}", img_start, img_end, heap);
        if let Some(x) = &xen_up {
            let (at, len) = x.reserved();
            say!(
                "rxen: Xen {}.{} (CPUID base {:#x}), shared_info and {} grant frames at {:#x}+{:#x}",
                x.version.0,
                x.version.1,
                x.cpuid_base,
                x.grant_frames,
                at,
                len
            );
        }
    }

    // The memdisk: checked before anything in it is believed.
    let memdisk = if hdr.memdisk_len == 0 {
        None
    } else {
        let end = hdr.memdisk_paddr.checked_add(hdr.memdisk_len);
        if hdr.memdisk_paddr < img_end || end.is_none_or(|e| e > GIB4) {
            fatal(format_args!(
                "image header: memdisk at {:#x}+{:#x} is not where an image puts it",
                hdr.memdisk_paddr, hdr.memdisk_len
            ));
        }
        // SAFETY: the ELF loader placed the memdisk PT_LOAD here (below 4 GiB, checked
        // above); nothing writes it while the loader runs (reserved in the allocator).
        let bytes = unsafe { io::phys_slice(hdr.memdisk_paddr, hdr.memdisk_len as usize) };
        if let Err(e) = hdr.check(bytes) {
            fatal(format_args!("{e}"));
        }
        say!("rxen: memdisk {} at {:#x}, sha256 ok", boot::size_str(hdr.memdisk_len), hdr.memdisk_paddr);
        Some(Archive::new(bytes))
    };

    let modules: Vec<ModuleData> = bi
        .modules
        .iter()
        .filter(|m| m.paddr.checked_add(m.size).is_some_and(|e| e <= GIB4))
        // SAFETY: the domain builder loaded each module there (below 4 GiB, checked); it
        // is reserved in the allocator, so nothing overwrites it.
        .map(|m| ModuleData { paddr: m.paddr, data: unsafe { io::phys_slice(m.paddr, m.size as usize) } })
        .collect();
    let policy_text = match &memdisk {
        Some(md) => match md.file("rxen.toml") {
            Ok(b) => core::str::from_utf8(b).unwrap_or_else(|_| fatal("rxen.toml: not UTF-8")),
            Err(e) => fatal(e),
        },
        None => GENERIC_POLICY,
    };
    let policy = parse_policy(policy_text).unwrap_or_else(|e| fatal(e.in_file("rxen.toml")));

    // Disks are probed only when the policy can use them (or to show them with rxen.debug):
    // a standalone image with its kernel in the memdisk never touches the guest's disks.
    let mut disks: Vec<Disk> = Vec::new();
    if policy_uses_disks(&policy) || domain.options.debug {
        if xen_up.is_some() {
            match Xenstore::open() {
                Ok(xs) => {
                    let xs = alloc::rc::Rc::new(core::cell::RefCell::new(xs));
                    for (name, desc, dev) in blkfront::probe(&xs) {
                        match dev {
                            Ok(d) => disks.push(Disk { name, desc, dev: Box::new(CachedDevice::new(d)) }),
                            Err(e) => say!("rxen: {name}: {desc}: {e}"),
                        }
                    }
                }
                Err(e) => say!("rxen: {e}; no disks"),
            }
        } else {
            for (name, desc, dev) in rxen_loader::drivers::probe_block_devices() {
                disks.push(Disk { name, desc, dev: Box::new(CachedDevice::new(dev)) });
            }
        }
    }
    if domain.options.debug {
        for d in &mut disks {
            let mut sector0 = alloc::vec![0u8; d.dev.block_size() as usize];
            let crc = match d.dev.read_blocks(0, &mut sector0) {
                Ok(()) => alloc::format!("0x{:08x}", rxen_loader::crc::crc32(&sector0)),
                Err(e) => alloc::format!("unreadable ({e})"),
            };
            say!(
                "rxen: disk {}: {}, {} sectors of {} bytes, sector0 crc32 {crc}",
                d.name,
                d.desc,
                d.dev.num_blocks(),
                d.dev.block_size()
            );
        }
    }
    let volumes = volume::scan(&mut disks, &mut |m| say!("rxen: {m}"));
    for v in &volumes {
        say!("rxen: volume {}", v.describe());
    }
    let disks_len = disks.len();
    let mut files = Files {
        memdisk,
        modules: &modules,
        disks: &mut disks,
        volumes: &volumes,
        reads: Vec::new(),
        clock: rxen_loader::platform::time::now_us,
    };

    let order = boot::step_order(&policy, &domain).unwrap_or_else(|e| {
        say!("rxen: {e}");
        policy.order()
    });

    let mut tried: Vec<String> = Vec::new();
    let mut root = Root::Memdisk;
    let mut search_failed = false;
    // One attempt at step `i`; returns only when it did not boot.
    let mut attempt = |i: usize, root: &mut Root, search_failed: &mut bool, tried: &mut Vec<String>| {
        let step = &policy.steps[i];
        let label = boot::step_label(&policy, i);
        if *search_failed && boot::step_uses_root(step) {
            say!("rxen: step {label} skipped: the search before it found nothing");
            return;
        }
        say!("rxen: step {label}");
        let mut a = alloc.clone();
        let outcome = {
            let mut mem = PhysAlloc(&mut a);
            boot::run_step(step, &mut files, root, &domain, &mut mem, &mut |m| say!("rxen: {m}"))
        };
        report_reads(&mut files.reads, domain.options.debug);
        let result = match outcome {
            Ok(StepOutcome::Root(v)) => {
                say!("rxen: root is now ({})", volumes[v].name);
                *root = Root::Volume(v);
                *search_failed = false;
                return;
            }
            Ok(StepOutcome::Config(choice)) => {
                say!("rxen: {}: {} entries", choice.menu.file, choice.menu.entries.len());
                let picked = {
                    let mut fs = rxen_loader::bootcfg::VolumeFs::of(&mut files, choice.source.clone());
                    boot_menu(&choice, &mut fs, domain.options.menu)
                };
                let mut order: Vec<(usize, Option<String>)> = Vec::new();
                if let Some(p) = picked {
                    order.push(p);
                }
                for i in choice.try_order() {
                    if !order.iter().any(|(j, _)| *j == i) {
                        order.push((i, None));
                    }
                }
                let mut last = boot::BootError(alloc::format!("{}: no entry to boot", choice.menu.file));
                for (idx, edited) in order {
                    let title = choice.menu.entries[idx].display_title();
                    say!("rxen: entry {title:?}");
                    let writes: Vec<&rxen_loader::config::menu::EnvWrite> = choice.menu.env_writes_for(idx).collect();
                    if !choice.write_grubenv {
                        for w in &writes {
                            let vars: Vec<&str> = w.vars.iter().map(|(k, _)| k.as_str()).collect();
                            say!(
                                "rxen: {}: not saving {} to {}: the policy does not allow grubenv writes (write_grubenv)",
                                w.at,
                                vars.join(" "),
                                w.file
                            );
                        }
                    }
                    let mut a2 = alloc.clone();
                    let prepared = {
                        let mut mem = PhysAlloc(&mut a2);
                        rxen_loader::bootcfg::prepare_entry(
                            &choice,
                            idx,
                            edited.as_deref(),
                            &mut files,
                            &domain,
                            &mut mem,
                            &mut |m| say!("rxen: {m}"),
                        )
                    };
                    report_reads(&mut files.reads, domain.options.debug);
                    let r = match prepared {
                        Ok(p) => {
                            // The entry loaded: now its grubenv writes (a boot-once's
                            // next_entry is cleared only by a boot that happens).
                            if choice.write_grubenv && !writes.is_empty() {
                                let mut fs = rxen_loader::bootcfg::VolumeFs::of(&mut files, choice.source.clone());
                                for r in fs.write_grubenv(&writes) {
                                    match r {
                                        Ok(m) => say!("rxen: grubenv: {m}"),
                                        Err(e) => say!("rxen: grubenv: {e}"),
                                    }
                                }
                            }
                            let disks = &mut *files.disks;
                            let mut release = || release_disks(disks);
                            launch(p, &mut a2, &handoff_map, bi.rsdp_paddr, &mut release)
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(e) = r {
                        say!("rxen: {e}");
                        last = e;
                    }
                }
                Err(last)
            }
            // launch() only returns on failure.
            Ok(StepOutcome::Boot(p)) => {
                let disks = &mut *files.disks;
                let mut release = || release_disks(disks);
                launch(p, &mut a, &handoff_map, bi.rsdp_paddr, &mut release)
            }
            Err(e) => {
                *search_failed = matches!(step.kind, StepKind::Search(_));
                Err(e)
            }
        };
        if let Err(e) = result {
            say!("rxen: step {label} failed: {e}");
            tried.push(alloc::format!("{label}: {e}"));
        }
    };
    let prompt_now = domain.options.prompt && console_has_input();
    if domain.options.prompt && !prompt_now {
        say!("rxen: rxen.prompt: no console to prompt on; trying the steps");
    }
    if !prompt_now {
        for i in order {
            attempt(i, &mut root, &mut search_failed, &mut tried);
        }
    }
    if !volumes.is_empty() || disks_len != 0 {
        say!("rxen: {disks_len} disk(s), {} volume(s) found", volumes.len());
    }
    if !prompt_now {
        say!("rxen: nothing to boot; tried:");
        for t in &tried {
            say!("rxen:   {t}");
        }
    }
    if (policy.on_failure == OnFailure::Prompt || prompt_now) && console_has_input() {
        loop {
            say!("rxen: steps:");
            for i in 0..policy.steps.len() {
                say!("rxen:   {}. {}", i + 1, boot::step_label(&policy, i));
            }
            say!("rxen> step number or name to try, or 'off' to power off:");
            let line = read_line();
            let want = line.trim();
            if want == "off" {
                break;
            }
            if want.is_empty() {
                continue;
            }
            let pick = want
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .filter(|&n| n < policy.steps.len())
                .or_else(|| policy.steps.iter().position(|s| s.name.as_deref() == Some(want)));
            match pick {
                Some(i) => attempt(i, &mut root, &mut search_failed, &mut tried),
                None => say!("rxen: no step {want:?}"),
            }
        }
    }
    say!("rxen: powering off");
    poweroff(2)
}

/// The shipped generic policy, used when the image has no memdisk.
const GENERIC_POLICY: &str = include_str!("../../../configs/generic.toml");

/// Place and enter a prepared kernel; returns only on failure.
fn launch(
    p: Prepared,
    alloc: &mut RegionAllocator,
    e820: &[E820Entry],
    rsdp: u64,
    release: &mut dyn FnMut(),
) -> Result<(), boot::BootError> {
    match p {
        Prepared::Linux { kernel, initrd, cmdline } => {
            let setup_len = if e820.len() > 128 { 16 + (e820.len() as u64 - 128) * 20 } else { 0 };
            let pl = boot::place_linux(alloc, &kernel, &initrd, cmdline.len(), setup_len)?;
            say!(
                "rxen: Linux {}, kernel at {:#x}, initrd {}",
                boot::size_str(kernel.protected_mode().len() as u64),
                pl.load_addr,
                match pl.initrd {
                    Some((a, l)) => alloc::format!("{} at {a:#x}", boot::size_str(l)),
                    None => String::from("none"),
                }
            );
            let bp = build_boot_params(&BootParamsConfig {
                kernel: &kernel,
                load_addr: pl.load_addr,
                e820,
                cmdline_paddr: pl.cmdline_paddr,
                cmdline_len: cmdline.len(),
                initrd: pl.initrd,
                rsdp_paddr: rsdp,
                setup_data_paddr: pl.setup_data_paddr,
            })
            .map_err(|e| boot::BootError(alloc::format!("boot_params: {e}")))?;
            // Nothing can fail from here on: hand the disks back, copy and jump.
            release();
            copy_to(pl.load_addr, kernel.protected_mode());
            if let (Some((addr, _)), true) = (pl.initrd, pl.initrd_copy) {
                copy_parts(addr, &initrd);
            }
            let mut c = Vec::from(cmdline.as_bytes());
            c.push(0);
            copy_to(pl.cmdline_paddr, &c);
            copy_to(pl.boot_params_paddr, &bp.zero_page[..]);
            if !bp.setup_data.is_empty() {
                copy_to(pl.setup_data_paddr, &bp.setup_data);
            }
            say!("rxen: booting: {cmdline}");
            if kernel.supports_64bit_entry() {
                // Linux 64-bit boot protocol: long mode, identity map covering the kernel,
                // boot_params and cmdline (all below 4 GiB), CS = __BOOT_CS (0x10),
                // DS/ES/SS = __BOOT_DS (0x18) as pvh.S set them, interrupts off,
                // %rsi = boot_params; entry at load address + 0x200.
                // SAFETY: the kernel image, boot_params and cmdline are in place as the
                // protocol requires; control never returns.
                unsafe {
                    core::arch::asm!("cli", "jmp {entry}",
                        entry = in(reg) pl.load_addr + 0x200, in("rsi") pl.boot_params_paddr,
                        options(noreturn))
                }
            }
            // SAFETY: 32-bit boot protocol: entry at code32_start (= load address),
            // %esi = boot_params, below 4 GiB; rxen_enter32 never returns.
            unsafe { rxen_enter32(pl.load_addr as u32, 0, pl.boot_params_paddr as u32) }
        }
        Prepared::Pvh { image, elf, initrd, cmdline } => {
            let modules_len = if initrd.is_empty() { 0 } else { 1 };
            // Size the blob with placeholder addresses, then build it for real.
            let probe = build_start_info(0, &cmdline, &[(0, 0)][..modules_len], e820, rsdp);
            let hdr = image_header();
            let memdisk = (hdr.memdisk_len > 0).then_some((hdr.memdisk_paddr, hdr.memdisk_len));
            let pl = boot::place_pvh(alloc, &elf, image.len() as u64, &initrd, probe.len() as u64, memdisk)?;
            let mods: Vec<(u64, u64)> = pl.initrd.into_iter().collect();
            let blob = build_start_info(pl.start_info_paddr, &cmdline, &mods, e820, rsdp);
            release();
            // Order matters when segments overwrite the memdisk: initrd, staging, segments.
            if let Some((addr, _)) = pl.initrd {
                copy_parts(addr, &initrd);
            }
            let image = match pl.staging {
                Some(at) => {
                    copy_to(at, image);
                    // SAFETY: [at, at + image.len()) was just allocated and filled; nothing
                    // else uses it until the kernel runs.
                    unsafe { io::phys_slice(at, image.len()) }
                }
                None => image,
            };
            for s in &elf.segments {
                let file = &image[s.offset as usize..(s.offset + s.filesz) as usize];
                copy_to(s.paddr, file);
                zero(s.paddr + s.filesz, s.memsz - s.filesz);
            }
            copy_to(pl.start_info_paddr, &blob);
            say!("rxen: booting PVH kernel at {:#x}: {cmdline}", elf.entry);
            // SAFETY: segments, start info and initrd are placed; PVH ABI entry with
            // %ebx = hvm_start_info; never returns.
            unsafe { rxen_enter32(elf.entry, pl.start_info_paddr as u32, 0) }
        }
    }
}

/// A line from the console, echoed; backspace edits. Waits as long as it takes: the
/// policy asked for a prompt.
fn read_line() -> String {
    let mut line = String::new();
    loop {
        let Some(c) = try_getc() else {
            if xen::console::ready() {
                xen::console::wait_input();
            } else {
                core::hint::spin_loop();
            }
            continue;
        };
        match c {
            b'\r' | b'\n' => {
                say!("");
                return line;
            }
            0x08 | 0x7f if line.pop().is_some() => say_raw("\x08 \x08"),
            c if (0x20..0x7f).contains(&c) && line.len() < 256 => {
                line.push(c as char);
                say_raw(core::str::from_utf8(&[c]).unwrap_or(""));
            }
            _ => {}
        }
    }
}

/// With `rxen.debug`, print each file a step read from a disk: its size, the time and the
/// rate. Always empties the list.
fn report_reads(reads: &mut Vec<(String, u64, u64)>, debug: bool) {
    for (what, bytes, us) in reads.drain(..) {
        if debug {
            let rate = bytes.saturating_mul(1_000_000) / us.max(1) / (1 << 20);
            say!(
                "rxen: read {what}: {} in {}.{:03} s ({rate} MiB/s)",
                boot::size_str(bytes),
                us / 1_000_000,
                us / 1000 % 1000
            );
        }
    }
}

/// Hand every disk back before the kernel starts (Xen blkfront: the kernel's own driver
/// must find the backend ready to connect). A failure is reported, not fatal: the kernel
/// may not need that disk.
fn release_disks(disks: &mut [Disk]) {
    for d in disks {
        if let Err(e) = d.dev.release() {
            say!("rxen: warning: {}: could not hand the disk back: {e}", d.name);
        }
    }
    let left = xen::gnttab::outstanding();
    if xen::hypercalls_ready() && left > 0 {
        say!("rxen: warning: {left} grant(s) still held at handoff");
    }
}

/// The boot menu of a guest configuration: the entries, the default marked, a countdown
/// that any key stops; then arrows or j/k and Enter, a number, or `e` to edit the command
/// line. Returns the entry (and an edited command line) a person chose, or `None` when the
/// countdown ran out (boot the default) or nobody can answer.
fn boot_menu(
    choice: &rxen_loader::bootcfg::ConfigChoice,
    fs: &mut dyn rxen_loader::config::configfs::ConfigFs,
    menu_forced: bool,
) -> Option<(usize, Option<String>)> {
    let entries = &choice.menu.entries;
    let default = choice.selection.map(|s| s.entry);
    let show = |sel: Option<usize>| {
        for (i, e) in entries.iter().enumerate() {
            let mark = if Some(i) == sel {
                '>'
            } else if Some(i) == default {
                '*'
            } else {
                ' '
            };
            say!("rxen: {mark} {:2}. {}", i + 1, e.display_title());
        }
    };
    show(None);
    let timeout = choice.timeout_for(menu_forced);
    if let Some(d) = default {
        say!("rxen: default: {:?}", entries[d].display_title());
    }
    if timeout == 0 || !console_has_input() || entries.is_empty() {
        return None;
    }
    say!("rxen: booting the default in {timeout} s; press a key for the menu");
    let deadline = rxen_loader::platform::time::Deadline::after_ms(u64::from(timeout) * 1000);
    let first = loop {
        if let Some(c) = try_getc() {
            break c;
        }
        if deadline.expired() {
            return None;
        }
        wait_for_key();
    };
    let mut sel = default.unwrap_or(0);
    let mut key = Some(first);
    say!("rxen: menu: up/down or j/k, Enter to boot, a number to pick, e to edit the command line, c for a prompt");
    loop {
        let c = match key.take() {
            Some(c) => c,
            None => read_key(),
        };
        match c {
            b'\r' | b'\n' => return Some((sel, None)),
            b'j' | b'B' => sel = (sel + 1).min(entries.len() - 1),
            b'k' | b'A' => sel = sel.saturating_sub(1),
            b'1'..=b'9' if usize::from(c - b'1') < entries.len() => return Some((usize::from(c - b'1'), None)),
            b'e' => {
                let current = entries[sel].grub_cmdline();
                say!("rxen: command line for {:?} (Enter to boot):", entries[sel].display_title());
                let line = read_line_with(&current);
                return Some((sel, Some(line)));
            }
            b'c' if command_prompt(fs) => return Some((sel, None)),
            0x1b | b'[' => continue, // the start of an arrow key's escape sequence
            _ => {}
        }
        show(Some(sel));
    }
}

/// The menu's `c` prompt: `ls [(dev)][/dir]`, `cat [(dev)]/file`, `set [root=DEV]` (the
/// device `ls` and `cat` use when a path names none), `boot` (the highlighted entry),
/// `exit` (back to the menu). Read-only. Returns whether to boot.
fn command_prompt(fs: &mut dyn rxen_loader::config::configfs::ConfigFs) -> bool {
    say!("rxen: commands: ls [(dev)][/dir], cat [(dev)]/file, set [root=DEV], boot, exit");
    let mut root: Option<String> = None;
    loop {
        say_raw("rxen> ");
        let line = read_line_with("");
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let arg = words.next().unwrap_or("/");
        let (dev, path) = match arg.strip_prefix('(').and_then(|r| r.split_once(')')) {
            Some((d, p)) => (Some(d), if p.is_empty() { "/" } else { p }),
            None => (root.as_deref(), arg),
        };
        match cmd {
            "" => {}
            "boot" => return true,
            "exit" | "menu" => return false,
            "ls" => match fs.list(dev, path) {
                Ok(names) => say!("{}", names.join("  ")),
                Err(e) => say!("rxen: {e}"),
            },
            "cat" => match fs.read(dev, path, 64 << 10) {
                Ok(b) => say!("{}", String::from_utf8_lossy(&b)),
                Err(e) => say!("rxen: {e}"),
            },
            "set" if line.split_whitespace().nth(1).is_none() => {
                say!(
                    "root={}",
                    root.as_deref()
                        .map_or_else(|| "(the configuration's own volume)".into(), |r| alloc::format!("({r})"))
                );
            }
            "set" => match arg.split_once('=') {
                Some(("root", v)) => {
                    let v = v.trim_start_matches('(').trim_end_matches(')');
                    match fs.list(Some(v), "/") {
                        Ok(_) => {
                            say!("root=({v})");
                            root = Some(v.into());
                        }
                        Err(e) => say!("rxen: root unchanged: {e}"),
                    }
                }
                Some((name, _)) => say!("rxen: only root can be set here, not {name:?}"),
                None => say!("rxen: usage: set root=DEV"),
            },
            other => say!("rxen: unknown command {other:?}"),
        }
    }
}

/// Block for a key (no timeout).
fn read_key() -> u8 {
    loop {
        if let Some(c) = try_getc() {
            return c;
        }
        wait_for_key();
    }
}

/// Wait a little for input without burning the CPU on Xen.
fn wait_for_key() {
    if xen::console::ready() {
        xen::console::wait_input();
    } else {
        rxen_loader::platform::time::delay_us(1000);
    }
}

/// [`read_line`] starting from `initial` (shown, editable with backspace).
fn read_line_with(initial: &str) -> String {
    say_raw(initial);
    let mut line = String::from(initial);
    loop {
        match read_key() {
            b'\r' | b'\n' => {
                say!("");
                return line;
            }
            0x08 | 0x7f if line.pop().is_some() => say_raw("\x08 \x08"),
            c if (0x20..0x7f).contains(&c) && line.len() < 4096 => {
                line.push(c as char);
                say_raw(core::str::from_utf8(&[c]).unwrap_or(""));
            }
            _ => {}
        }
    }
}

/// Whether any step can read from the guest's disks.
fn policy_uses_disks(policy: &Policy) -> bool {
    policy.steps.iter().any(|s| match &s.kind {
        StepKind::Search(_) | StepKind::Config(_) => true,
        StepKind::Kernel(k) => core::iter::once(&k.kernel)
            .chain(&k.initrd)
            .any(|p| p.volume.as_deref().is_some_and(|v| v != "memdisk" && !v.starts_with("module"))),
    })
}

/// Guest RAM for files read from disk: page-aligned, high, below 4 GiB, from the step's
/// allocator, so kernel placement avoids it and an initrd can be used where it lies.
struct PhysAlloc<'x>(&'x mut RegionAllocator);

impl GuestMemory for PhysAlloc<'_> {
    fn alloc(&mut self, len: u64) -> Option<(u64, &'static mut [u8])> {
        let at = self.0.alloc_top(len, rxen_loader::mem::PAGE, GIB4)?;
        // SAFETY: [at, at + len) is free RAM below 4 GiB (identity mapped), now reserved in
        // this attempt's allocator and handed out once.
        Some((at, unsafe { io::phys_slice_mut(at, len as usize) }))
    }
}

fn copy_to(paddr: u64, data: &[u8]) {
    // SAFETY: `paddr` was handed out by the RegionAllocator for at least `data.len()`
    // bytes: free RAM below 4 GiB, identity mapped, referenced by nothing else.
    unsafe { io::phys_slice_mut(paddr, data.len()) }.copy_from_slice(data);
}

fn zero(paddr: u64, len: u64) {
    // SAFETY: as for copy_to: allocator-owned RAM below 4 GiB.
    unsafe { io::phys_slice_mut(paddr, len as usize) }.fill(0);
}

fn copy_parts(mut paddr: u64, parts: &[FileData]) {
    for p in parts {
        copy_to(paddr, p.data);
        paddr += p.data.len() as u64;
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    say!("rxen: PANIC: {info}");
    if xen::console::ready() {
        // Also into Xen's log, in case nobody reads the PV console.
        let _ = xen::console_io_write(b"rxen: PANIC (see the domain console)\n");
    }
    poweroff(0x7f)
}
