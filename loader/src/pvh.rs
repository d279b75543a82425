// SPDX-License-Identifier: MIT OR Apache-2.0
//! The PVH loader's hardware side of the boot session: the console (the Xen PV console,
//! else COM1 and port 0xe9), the [`Platform`] (disks, clock, guest memory, power), the
//! start of a boot from `hvm_start_info` to [`session::run`], and carrying out the
//! [`LaunchPlan`]'s copies. The binary adds the entry, heap, panic handler and jump.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rxen_memdisk::ImageHeader;

use crate::block::cache::CachedDevice;
use crate::boot::{LOW_MEMORY_END, Memdisk, ModuleData, size_str};
use crate::bootinfo::{PhysMem, StartInfo};
use crate::cmdline::Crash;
use crate::mem::{E820Entry, RegionAllocator};
use crate::platform::traps::{self, TrapFrame};
use crate::platform::xen::{self, blkfront, xenstore::Xenstore};
use crate::platform::{acpi, io, serial::SerialConsole, time, xen_cpuid_base};
use crate::say;
use crate::session::plan::{LaunchPlan, Source};
use crate::session::{self, BootEnv, Console, Outcome, Platform, Trace};
use crate::volume::Disk;

/// The heap: policy, configs, file lists. Kernels and initrds never go through it.
pub const HEAP_SIZE: u64 = 8 << 20;
const GIB4: u64 = 1 << 32;

static COM1: AtomicBool = AtomicBool::new(true);
static RSDP: AtomicU64 = AtomicU64::new(0);

/// Where messages go: the Xen PV console once it is up (what `xl console` shows), else
/// Xen's log, else COM1 and port 0xe9. Keys come from the same place.
#[derive(Clone, Copy, Debug, Default)]
pub struct HwConsole;

impl core::fmt::Write for HwConsole {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        Console::write_str(self, s);
        Ok(())
    }
}

impl HwConsole {
    fn try_getc(&self) -> Option<u8> {
        if xen::console::ready() {
            xen::console::try_getc()
        } else if xen::pv::is_pv() {
            None // no ports in a PV guest
        } else {
            SerialConsole::init_quiet(COM1.load(Ordering::Relaxed)).try_getc()
        }
    }

    /// Wait a little for input without burning the CPU on Xen.
    fn wait_a_little(&self) {
        if xen::console::ready() {
            xen::console::wait_input();
        } else {
            time::delay_us(1000);
        }
    }
}

/// `rxen.debug`: every console line starts with the loader's own clock, seconds since
/// [`boot`] began (`[  1.234] `): the boot's timeline.
static STAMPS: AtomicBool = AtomicBool::new(false);
static T0_US: AtomicU64 = AtomicU64::new(0);
static AT_LINE_START: AtomicBool = AtomicBool::new(true);

impl HwConsole {
    fn write_raw(&mut self, s: &str) {
        if xen::console::ready() {
            for (i, part) in s.split('\n').enumerate() {
                if i > 0 {
                    xen::console::write(b"\r\n");
                }
                xen::console::write(part.as_bytes());
            }
        } else if xen::hypercalls_ready() && xen::console_io_write(s.as_bytes()) {
            // Xen without a PV console (yet): the hypervisor's log (`xl dmesg`).
        } else if xen::pv::is_pv() {
            // Nowhere else to write: a PV guest has no ports.
        } else {
            let _ = core::fmt::Write::write_str(&mut SerialConsole::init_quiet(COM1.load(Ordering::Relaxed)), s);
        }
    }

    /// The timeline stamp for a line starting now.
    fn stamp(&mut self) {
        let ms = time::now_us().saturating_sub(T0_US.load(Ordering::Relaxed)) / 1000;
        let mut b = LineBuf { buf: [0; 240], len: 0 };
        let _ = core::fmt::Write::write_fmt(&mut b, format_args!("[{:4}.{:03}] ", ms / 1000, ms % 1000));
        self.write_raw(core::str::from_utf8(&b.buf[..b.len]).unwrap_or(""));
    }
}

impl Console for HwConsole {
    fn write_str(&mut self, s: &str) {
        if !STAMPS.load(Ordering::Relaxed) {
            return self.write_raw(s);
        }
        for piece in s.split_inclusive('\n') {
            if AT_LINE_START.load(Ordering::Relaxed) {
                self.stamp();
            }
            self.write_raw(piece);
            AT_LINE_START.store(piece.ends_with('\n'), Ordering::Relaxed);
        }
    }

    fn read_key(&mut self, timeout_ms: Option<u64>) -> Option<u8> {
        if !self.interactive() {
            return None;
        }
        let deadline = timeout_ms.map(time::Deadline::after_ms);
        loop {
            if let Some(c) = self.try_getc() {
                return Some(c);
            }
            if deadline.as_ref().is_some_and(time::Deadline::expired) {
                return None;
            }
            self.wait_a_little();
        }
    }

    /// COM1 off Xen, the PV console on Xen.
    fn interactive(&self) -> bool {
        xen::console::ready() || COM1.load(Ordering::Relaxed)
    }
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

/// Stop the guest: Xen's shutdown, then QEMU isa-debug-exit, then ACPI S5, then a triple
/// fault (QEMU `-no-reboot` exits on it; Xen destroys or restarts the domain per its
/// config). Code 0x7f is a crash (a panic).
pub fn poweroff(code: u8) -> ! {
    if xen::hypercalls_ready() {
        // Xen: the domain's on_poweroff / on_crash settings decide what happens next.
        xen::shutdown(if code == 0x7f { xen::SHUTDOWN_CRASH } else { xen::SHUTDOWN_POWEROFF });
    }
    if xen::pv::is_pv() {
        // No ports, no ACPI, no triple fault: ask again, as a crash, until Xen obliges.
        loop {
            xen::shutdown(xen::SHUTDOWN_CRASH);
            xen::yield_cpu();
        }
    }
    // SAFETY: 0xf4 is QEMU's isa-debug-exit (the e2e tests' exit path); elsewhere nothing
    // claims it and the write is dropped. We are powering off: nothing runs after this.
    unsafe { io::outb(0xf4, code) };
    let rsdp = RSDP.load(Ordering::Relaxed);
    if rsdp != 0 {
        match acpi::find_poweroff(&Phys, rsdp) {
            // SAFETY: the FADT's PM1a control port; SLP_EN with S5's SLP_TYP is its
            // documented use (power off), and we are powering off.
            Some(acpi::PowerOff::Pm1aCnt(port)) => unsafe { io::outw(port, 1 << 13) }, // SLP_EN, SLP_TYP 0 (QEMU's \_S5)
            Some(acpi::PowerOff::SleepControl { addr, io: true }) if addr <= 0xffff => {
                // SAFETY: the FADT's sleep control register, in I/O space; writing SLP_EN
                // with SLP_TYP S5 is its documented use, and we are powering off.
                unsafe { io::outb(addr as u16, (1 << 5) | (5 << 2)) } // SLP_EN | SLP_TYP=5 (S5)
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

pub fn fatal(msg: impl core::fmt::Display) -> ! {
    say!(&mut HwConsole, "fatal: {msg}");
    say!(&mut HwConsole, "powering off");
    poweroff(1)
}

/// The hardware [`Platform`]: Xen blkfront or virtio disks, the TSC clock, guest RAM
/// by identity map.
/// The binary's second heap: lend it a region, or take it back (Platform::scratch_heap).
pub type ScratchHook = unsafe fn(Option<(u64, u64)>) -> bool;

pub struct HwPlatform {
    pub xen: Option<xen::Xen>,
    /// Guest RAM the loader maps one to one ends here (4 GiB on PVH: pvh.S's map).
    pub ram_end: u64,
    /// The binary's second heap: see Platform::scratch_heap.
    pub scratch: Option<ScratchHook>,
}

impl Platform for HwPlatform {
    fn clock(&self) -> fn() -> u64 {
        time::now_us
    }

    fn probe_disks(&mut self, cmdline: &str, log: &mut dyn FnMut(String)) -> Vec<Disk> {
        let mut disks = Vec::new();
        if self.xen.is_some() {
            match Xenstore::open() {
                Ok(xs) => {
                    let xs = alloc::rc::Rc::new(core::cell::RefCell::new(xs));
                    for (name, desc, dev) in blkfront::probe(&xs) {
                        match dev {
                            Ok(d) => disks.push(Disk::new(name, desc, Box::new(CachedDevice::new(d)))),
                            Err(e) => log(alloc::format!("{name}: {desc}: {e}")),
                        }
                    }
                }
                Err(e) => log(alloc::format!("{e}; no disks")),
            }
        } else {
            for (name, desc, dev) in crate::drivers::probe_block_devices(cmdline, &mut |m| log(m.into())) {
                disks.push(Disk::new(name, desc, Box::new(CachedDevice::new(dev))));
            }
        }
        disks
    }

    unsafe fn map_guest(&mut self, paddr: u64, len: u64) -> Option<&'static mut [u8]> {
        if paddr.checked_add(len)? > self.ram_end {
            return None;
        }
        // SAFETY: below ram_end (identity mapped by pvh.S, or one to one by
        // xen::pv::extend_map); the caller guarantees the range is free RAM handed out once.
        Some(unsafe { io::phys_slice_mut(paddr, len as usize) })
    }

    unsafe fn scratch_heap(&mut self, region: Option<(u64, u64)>) -> bool {
        match (self.scratch, region) {
            (None, _) => false,
            (Some(_), Some((at, len))) if at.checked_add(len).is_none_or(|e| e > self.ram_end) => false,
            // SAFETY: the caller's contract (free RAM, unused until the loan ends), and the
            // range is inside the one-to-one map (checked above).
            (Some(f), r) => unsafe { f(r) },
        }
    }

    fn crash(&mut self, how: Crash) {
        match how {
            Crash::Panic => panic!("rxen.crash={how}: panicking on purpose"),
            Crash::Fault => {
                say!(&mut HwConsole, "rxen.crash=fault: reading {FAULT_ADDR:#x}, which is not mapped");
                // SAFETY: not a valid read: FAULT_ADDR is outside every mapping the loader
                // makes (pvh.S maps 0..4 GiB; map_mmio maps device windows), so the CPU
                // raises #PF before any byte is read, and the page-fault handler reports it
                // and ends the domain. That is the purpose of the hook.
                let _ = unsafe { core::ptr::read_volatile(FAULT_ADDR as usize as *const u8) };
                fatal("rxen.crash=fault: the read of an unmapped address did not fault");
            }
            Crash::Interrupt if xen::pv::is_pv() => {
                say!(&mut HwConsole, "rxen.crash=interrupt: a PV guest takes no stray vectors; nothing raised");
            }
            Crash::Interrupt => {
                // SAFETY: vector 0x40's gate is one of traps.S's stubs, which counts the
                // interrupt and returns with every register restored (on its own stack, so
                // the red zone survives); nothing else changes.
                unsafe { core::arch::asm!("int 0x40") };
                say!(&mut HwConsole, "rxen.crash=interrupt: raised vector 0x40 and went on");
            }
        }
    }

    fn after_release(&mut self) -> Option<String> {
        let left = xen::gnttab::outstanding();
        (xen::hypercalls_ready() && left > 0).then(|| alloc::format!("{left} grant(s) still held at handoff"))
    }
}

/// Where `rxen.crash=fault` reads: canonical, far above anything mapped.
const FAULT_ADDR: u64 = 0x7ead_0000_0000;

/// Set once the exception report started: a fault inside it ends the domain at once
/// instead of recursing on the trap stack.
static IN_TRAP: AtomicBool = AtomicBool::new(false);

/// The image's function table (`.rxen/symbols` in its memdisk, written by rxen-mkimage
/// from the loader's link map), while the memdisk is in place.
static SYMBOLS: AtomicU64 = AtomicU64::new(0);
static SYMBOLS_LEN: AtomicU64 = AtomicU64::new(0);

fn symbols() -> Option<&'static str> {
    let len = SYMBOLS_LEN.load(Ordering::Acquire);
    if len == 0 {
        return None;
    }
    // SAFETY: SYMBOLS/SYMBOLS_LEN name a file inside the verified memdisk, which stays in
    // place and unwritten until SYMBOLS_LEN is set back to 0 before the plan's copies.
    let b = unsafe { core::slice::from_raw_parts(SYMBOLS.load(Ordering::Relaxed) as usize as *const u8, len as usize) };
    core::str::from_utf8(b).ok()
}

/// A line of at most 240 bytes, built without the heap (for Xen's log).
struct LineBuf {
    buf: [u8; 240],
    len: usize,
}

impl core::fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if b == b'\n' || self.len == self.buf.len() {
                return Err(core::fmt::Error);
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// A CPU exception in the loader (called by the binary's `rxen_trap`, from traps.S on its
/// own stack): report it on the console and in Xen's log, then crash the domain. Uses
/// neither the heap nor a lock, since whatever faulted may hold them.
pub fn exception(frame: &TrapFrame) -> ! {
    if IN_TRAP.swap(true, Ordering::SeqCst) {
        poweroff(0x7f);
    }
    let cr2 = match xen::pv_cr2() {
        Some(a) => a, // PV: Xen puts the #PF address in vcpu_info (a guest cannot read CR2)
        None => {
            let cr2: u64;
            // SAFETY: reading CR2 (the faulting address of the last #PF) at CPL 0 has no
            // effect.
            unsafe { core::arch::asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack, preserves_flags)) };
            cr2
        }
    };
    let symbol = symbols().and_then(|t| traps::symbolize(t, frame.rip));
    let _ = traps::write_report(&mut HwConsole, frame, cr2, symbol);
    if xen::console::ready() && xen::pv::is_pv() {
        // No debug port on PV: Xen's own console (refused to a domU by default, but tried).
        let mut line = LineBuf { buf: [0; 240], len: 0 };
        let _ = traps::write_report(&mut line, frame, cr2, symbol);
        let _ = xen::console_io_write(&line.buf[..line.len]);
    } else if xen::console::ready() {
        // The PV console may have nobody reading it: the first line into Xen's log too, by
        // the HVM debug port 0xe9, which Xen logs as "(dN) ..." (Xen's default policy
        // refuses console_io to a domU: measured on 4.17, tests/xen rxen-x-fault).
        let mut line = LineBuf { buf: [0; 240], len: 0 };
        let _ = traps::write_report(&mut line, frame, cr2, symbol);
        let text = core::str::from_utf8(&line.buf[..line.len]).unwrap_or("rxen: EXCEPTION");
        let _ = core::fmt::Write::write_fmt(&mut SerialConsole::init_quiet(false), format_args!("{text}\n"));
    }
    poweroff(0x7f)
}

/// The loader image's own placement and its memdisk header.
#[derive(Clone, Copy, Debug)]
pub struct Image {
    pub start: u64,
    pub end: u64,
    pub header: ImageHeader,
}

/// Boot from `hvm_start_info` at `start_info_paddr` to a launch plan: platform and
/// memory first, `init_heap(addr, len)` once free RAM is known, then the session.
/// Returns only a plan to carry out; every other end powers off.
pub fn boot(
    start_info_paddr: u32,
    image: Image,
    init_heap: &mut dyn FnMut(u64, usize),
    scratch: ScratchHook,
) -> LaunchPlan {
    T0_US.store(time::now_us(), Ordering::Relaxed);
    let con = &mut HwConsole;
    let on_xen = xen_cpuid_base().is_some();
    COM1.store(!on_xen, Ordering::Relaxed);
    let _ = SerialConsole::init(!on_xen);
    let mut xen_err = None;
    if on_xen {
        // The hypercall page first: the PV console, shutdown and everything else need it.
        match xen::init_hypercalls() {
            Ok(_) if !xen::console::init() => xen_err = Some(xen::XenError::NoConsole),
            Ok(_) => {}
            Err(e) => xen_err = Some(e),
        }
    }
    let _ = core::fmt::Write::write_fmt(
        con,
        format_args!("rxen {} pvh-boot{}\n", env!("CARGO_PKG_VERSION"), if on_xen { " (Xen)" } else { "" }),
    );
    if let Some(e) = xen_err {
        say!(con, "Xen: {e}");
    }

    let si = StartInfo::read(&Phys, u64::from(start_info_paddr)).unwrap_or_else(|e| fatal(e));
    RSDP.store(si.raw.rsdp_paddr, Ordering::Relaxed);

    // Free RAM, minus everything that must survive until the jump.
    let mut entries = [E820Entry { addr: 0, size: 0, kind: 0 }; 128];
    let mut n = 0;
    if let Err(e) = si.for_each_memmap(&Phys, |e| {
        if n < entries.len() {
            entries[n] = e;
            n += 1;
        }
    }) {
        fatal(e);
    }
    let mut ram = RegionAllocator::from_e820(entries[..n].iter().copied(), GIB4);
    ram.reserve(0, LOW_MEMORY_END);
    ram.reserve(image.start, image.end - image.start);
    let hdr = image.header;
    if hdr.memdisk_len > 0 && !ram.is_free(hdr.memdisk_paddr, hdr.memdisk_len) {
        fatal(format_args!(
            "image header: memdisk at {:#x}+{:#x} is not in free RAM",
            hdr.memdisk_paddr, hdr.memdisk_len
        ));
    }
    ram.reserve(hdr.memdisk_paddr, hdr.memdisk_len);
    ram.reserve(si.paddr, si.size());
    let _ = si.for_each_module(&Phys, |m| ram.reserve(m.paddr, m.size));
    let heap = ram.alloc_top(HEAP_SIZE, 1 << 21, GIB4).unwrap_or_else(|| fatal("no free RAM for an 8 MiB heap"));
    init_heap(heap, HEAP_SIZE as usize);

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
                say!(con, "Xen: {e}; the guest's disks are out of reach");
                None
            }
        }
    } else {
        None
    };
    if crate::cmdline::parse_domain_cmdline(&bi.cmdline).options.debug {
        STAMPS.store(true, Ordering::Relaxed);
        say!(con, "timeline: [seconds since the loader's entry] on every line (rxen.debug)");
        say!(con, "hvm_start_info v{} at {:#x}, cmdline {:?}", bi.version, si.paddr, bi.cmdline);
        for e in &bi.memmap {
            say!(con, "  memmap {:#012x}-{:#012x} type {}", e.addr, e.addr + e.size, e.kind);
        }
        say!(con, "  loader {:#x}-{:#x}, heap {:#x}", image.start, image.end, heap);
        if let Some(x) = &xen_up {
            let (at, len) = x.reserved();
            say!(
                con,
                "Xen {}.{} (CPUID base {:#x}), shared_info and {} grant frames at {:#x}+{:#x}",
                x.version.0,
                x.version.1,
                x.cpuid_base,
                x.grant_frames,
                at,
                len
            );
        }
    }

    // The memdisk and the modules are borrowed only inside this block: once the session
    // returns its plan, no slice over them is alive, so the plan may copy over them.
    let mut platform = HwPlatform { xen: xen_up, ram_end: GIB4, scratch: Some(scratch) };
    let outcome = {
        let memdisk = if hdr.memdisk_len == 0 {
            None
        } else {
            let end = hdr.memdisk_paddr.checked_add(hdr.memdisk_len);
            if hdr.memdisk_paddr < image.end || end.is_none_or(|e| e > GIB4) {
                fatal(format_args!(
                    "image header: memdisk at {:#x}+{:#x} is not where an image puts it",
                    hdr.memdisk_paddr, hdr.memdisk_len
                ));
            }
            // SAFETY: the ELF loader placed the memdisk PT_LOAD here (below 4 GiB, checked
            // above); nothing writes it while this borrow lives (reserved in `ram`; the
            // plan that may overwrite it runs after this block).
            let bytes = unsafe { io::phys_slice(hdr.memdisk_paddr, hdr.memdisk_len as usize) };
            if let Err(e) = hdr.check(bytes) {
                fatal(format_args!("{e}"));
            }
            say!(con, "memdisk {} at {:#x}, sha256 ok", size_str(hdr.memdisk_len), hdr.memdisk_paddr);
            let md = Memdisk { bytes, paddr: hdr.memdisk_paddr };
            if let Ok(t) = md.archive().file(traps::SYMBOLS_PATH) {
                // The memdisk stays in place until the plan is carried out (cleared below).
                SYMBOLS.store(t.as_ptr() as u64, Ordering::Relaxed);
                SYMBOLS_LEN.store(t.len() as u64, Ordering::Release);
            }
            Some(md)
        };
        let modules: Vec<ModuleData> = bi
            .modules
            .iter()
            .filter(|m| m.paddr.checked_add(m.size).is_some_and(|e| e <= GIB4))
            // SAFETY: the domain builder loaded each module there (below 4 GiB, checked);
            // it is reserved in `ram`, so nothing overwrites it while the session runs.
            .map(|m| ModuleData { paddr: m.paddr, data: unsafe { io::phys_slice(m.paddr, m.size as usize) } })
            .collect();
        let env = BootEnv {
            cmdline: &bi.cmdline,
            memdisk,
            modules: &modules,
            ram,
            e820: &handoff_map,
            rsdp: bi.rsdp_paddr,
            pv: None,
        };
        // The trace is for explain; the loader's console already showed it all.
        session::run(env, &mut platform, con, &mut Trace::default())
    };
    if let Some(msg) = traps::stray_report() {
        say!(con, "{msg}");
    }
    // The plan may copy over the memdisk: the exception handler forgets its symbols.
    SYMBOLS_LEN.store(0, Ordering::Release);
    match outcome {
        Outcome::Boot(plan) if plan.within(GIB4) => plan,
        Outcome::Boot(_) => fatal("launch plan reaches above 4 GiB"),
        Outcome::PowerOff { code } => poweroff(code),
    }
}

/// Carry out the plan's copies, in order.
///
/// # Safety
/// Every destination must be guest RAM the plan's placement reserved (checked below
/// 4 GiB by [`boot`]), and no Rust reference into guest memory (memdisk, modules, files
/// read) may be alive: the copies may overwrite any of them.
pub unsafe fn carry_out(plan: &LaunchPlan) {
    for c in &plan.copies {
        let dst = c.dst as usize as *mut u8;
        match &c.src {
            // SAFETY: per this function's contract, both ranges are identity-mapped guest
            // RAM below 4 GiB with no live reference; `copy` is memmove (they may overlap).
            Source::Phys(src) => unsafe { core::ptr::copy(*src as usize as *const u8, dst, c.len as usize) },
            // SAFETY: as above; the bytes are on the loader's heap, which no plan targets.
            Source::Bytes(b) => unsafe { core::ptr::copy_nonoverlapping(b.as_ptr(), dst, b.len()) },
            // SAFETY: as above.
            Source::Zero => unsafe { core::ptr::write_bytes(dst, 0, c.len as usize) },
        }
    }
    if STAMPS.load(Ordering::Relaxed) {
        let bytes: u64 = plan.copies.iter().map(|c| c.len).sum();
        say!(&mut HwConsole, "{} copies ({}) done; jumping to the kernel", plan.copies.len(), size_str(bytes));
    }
}

/// Report a panic on the console (and Xen's log) and crash the domain.
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    say!(&mut HwConsole, "PANIC: {info}");
    if xen::console::ready() && !xen::pv::is_pv() {
        // Also into Xen's log, in case nobody reads the PV console: the HVM debug port,
        // which Xen logs as "(dN) ..." (Xen's default policy refuses console_io to a domU:
        // measured on 4.17, tests/xen rxen-x-fault).
        let _ = core::fmt::Write::write_str(
            &mut SerialConsole::init_quiet(false),
            "rxen: PANIC (see the domain console)\n",
        );
    }
    poweroff(0x7f)
}
