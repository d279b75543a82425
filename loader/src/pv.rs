// SPDX-License-Identifier: MIT OR Apache-2.0
//! The PV loader's side of the boot session (pv-boot): from the domain builder's
//! `start_info` to [`session::run`], and the PV handoff after it. Everything above the
//! platform (policy, disks, filesystems, configs, menu, grubenv) is the session's, shared
//! with pvh-boot; the console, the platform and the exception report are pvh.rs's, which
//! know when they run in a PV guest (no ports, no ACPI, no IDT).
//!
//! Memory: [`xen::pv::extend_map`] maps every frame one to one (virtual = pseudo-physical),
//! so guest addresses in the session and the plan are pfn << 12, as on PVH.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::abi::xen::{MMUEXT_NEW_BASEPTR, MMUEXT_PIN_L4_TABLE, MMUEXT_UNPIN_TABLE, MmuextOp};
use crate::boot::{Memdisk, ModuleData, size_str};
use crate::mem::{E820_RAM, E820Entry, PAGE, RegionAllocator};
use crate::platform::xen::{self, pv};
use crate::pvh::{HEAP_SIZE, HwConsole, HwPlatform, Image, fatal, poweroff};
use crate::say;
use crate::session::plan::{Jump, LaunchPlan};
use crate::session::{self, BootEnv, Outcome, PvTarget, Trace};

/// Virtual pages past RAM kept for Xen's pages: shared_info and the grant frames.
const WINDOW: u64 = 16;

/// The builder's start_info, kept for the handoff.
static OLD_PT_BASE: AtomicU64 = AtomicU64::new(0);

/// Boot from the builder's `start_info` (virtual address in `%rsi`) to a launch plan;
/// `trampoline` is the page [`carry_out`] switches page tables from.
pub fn boot(
    start_info: u64,
    image: Image,
    trampoline: u64,
    init_heap: &mut dyn FnMut(u64, usize),
    scratch: unsafe fn(Option<(u64, u64)>) -> bool,
) -> LaunchPlan {
    // SAFETY: `start_info` is what the domain builder passed us in %rsi.
    let si = unsafe { pv::PvStart::read(start_info) };
    pv::init(&si);
    let con = &mut HwConsole;
    let console = xen::console::init();
    say!(con, "rxen {} pv-boot (Xen PV, {})", env!("CARGO_PKG_VERSION"), si.magic());
    if !console {
        say!(con, "Xen: start_info names no console ring we can map");
    }
    if si.nr_pages == 0 || si.nr_pages > (1 << 28) {
        fatal(format_args!("start_info: {} pages is not a domain we can boot", si.nr_pages));
    }
    // SAFETY: called once, first, with the builder's start_info; only the builder's
    // region is in use, and extend_map takes frames at the top of RAM, above it.
    let map = unsafe { pv::extend_map(&si, WINDOW) }.unwrap_or_else(|e| fatal(format_args!("PV memory: {e}")));
    OLD_PT_BASE.store(si.pt_base, Ordering::Relaxed);
    let ram_end = si.nr_pages * PAGE;

    // Free RAM: the domain's frames minus the builder's region (our image, memdisk, p2m
    // list, start_info, rings, its page tables, stack), the page-table pool and the heap.
    let e820 = [E820Entry { addr: 0, size: ram_end, kind: E820_RAM }];
    let mut ram = RegionAllocator::from_e820(e820.iter().copied(), ram_end);
    ram.reserve(0, map.builder_end * PAGE);
    ram.reserve(map.pool.0 * PAGE, map.pool.1 * PAGE);
    ram.reserve(image.start, image.end - image.start);
    let hdr = image.header;
    if hdr.memdisk_len > 0 {
        ram.reserve(hdr.memdisk_paddr, hdr.memdisk_len);
    }
    let module = if si.mod_len == 0 {
        None
    } else if si.flags & pv::SIF_MOD_START_PFN != 0 {
        Some((si.mod_start * PAGE, si.mod_len))
    } else {
        Some((si.mod_start, si.mod_len))
    };
    if let Some((at, len)) = module {
        ram.reserve(at, len);
    }
    let heap = ram
        .alloc_top(HEAP_SIZE, 1 << 21, ram_end.min(1 << 32))
        .unwrap_or_else(|| fatal("no free RAM for an 8 MiB heap"));
    init_heap(heap, HEAP_SIZE as usize);

    let xen_up = match xen::Xen::init_pv(&si, &map) {
        Ok(x) => Some(x),
        Err(e) => {
            say!(con, "Xen: {e}; the guest's disks are out of reach");
            None
        }
    };
    let cmdline = alloc::string::String::from(si.cmdline());
    if crate::cmdline::parse_domain_cmdline(&cmdline).options.debug {
        say!(con, "start_info at {:#x}: {} pages, flags {:#x}, cmdline {:?}", si.va, si.nr_pages, si.flags, cmdline);
        say!(
            con,
            "  builder's region below {:#x} (page tables {:#x}+{}), pool {:#x}+{}, heap {:#x}",
            map.builder_end * PAGE,
            map.builder_pt.0 * PAGE,
            map.builder_pt.1,
            map.pool.0 * PAGE,
            map.pool.1,
            heap
        );
        if let Some(x) = &xen_up {
            say!(
                con,
                "Xen {}.{}, shared_info and {} grant frames at {:#x}",
                x.version.0,
                x.version.1,
                x.grant_frames,
                x.hole
            );
        }
    }
    // SAFETY: the p2m list is nr_pages u64s in the builder's region (mapped, reserved).
    let p2m: &[u64] = unsafe { core::slice::from_raw_parts(si.mfn_list as usize as *const u64, si.nr_pages as usize) };
    let target = PvTarget {
        nr_pages: si.nr_pages,
        p2m,
        shared_info: si.shared_info,
        flags: si.flags & !pv::SIF_MOD_START_PFN,
        store_mfn: si.store_mfn,
        store_evtchn: si.store_evtchn,
        console_mfn: si.console_mfn,
        console_evtchn: si.console_evtchn,
        trampoline_pfn: trampoline >> 12,
        tables: Vec::from([map.builder_pt, map.pool, map.boot]),
    };

    let mut platform = HwPlatform { xen: xen_up, ram_end, scratch: Some(scratch) };
    let outcome = {
        let memdisk = if hdr.memdisk_len == 0 {
            None
        } else {
            if hdr.memdisk_paddr < image.end
                || hdr.memdisk_paddr.checked_add(hdr.memdisk_len).is_none_or(|e| e > ram_end)
            {
                fatal(format_args!(
                    "image header: memdisk at {:#x}+{:#x} is not where an image puts it",
                    hdr.memdisk_paddr, hdr.memdisk_len
                ));
            }
            // SAFETY: the builder loaded the memdisk PT_LOAD there (mapped one to one,
            // inside RAM: checked); it is reserved, and nothing writes it while this
            // borrow lives (the plan runs after this block).
            let bytes = unsafe { crate::platform::io::phys_slice(hdr.memdisk_paddr, hdr.memdisk_len as usize) };
            if let Err(e) = hdr.check(bytes) {
                fatal(format_args!("{e}"));
            }
            say!(con, "memdisk {} at {:#x}, sha256 ok", size_str(hdr.memdisk_len), hdr.memdisk_paddr);
            Some(Memdisk { bytes, paddr: hdr.memdisk_paddr })
        };
        let modules: Vec<ModuleData> = module
            .filter(|&(at, len)| at.checked_add(len).is_some_and(|e| e <= ram_end))
            .map(|(at, len)| ModuleData {
                paddr: at,
                // SAFETY: the builder loaded xl's ramdisk= there (inside RAM, checked); it
                // is reserved, so nothing overwrites it while the session runs.
                data: unsafe { crate::platform::io::phys_slice(at, len as usize) },
            })
            .into_iter()
            .collect();
        let env =
            BootEnv { cmdline: &cmdline, memdisk, modules: &modules, ram, e820: &e820, rsdp: 0, pv: Some(target) };
        session::run(env, &mut platform, con, &mut Trace::default())
    };
    match outcome {
        Outcome::Boot(plan) if plan.within(ram_end) => plan,
        Outcome::Boot(_) => fatal("launch plan reaches past the domain's RAM"),
        Outcome::PowerOff { code } => poweroff(code),
    }
}

/// What the binary's trampoline needs: how many mmuext ops it holds, and where to go.
#[derive(Clone, Copy, Debug)]
pub struct Switch {
    pub nr_ops: u64,
    pub entry: u64,
    pub stack: u64,
    pub start_info: u64,
}

/// After the plan's copies: make the new tables read-only in our map, pin the new L4,
/// fill the kernel's hypercall page, drop our trap table, and prepare the trampoline's
/// operations (switch to the new L4, unpin the builder's). `tramp_stub`/`tramp_ops` are
/// the trampoline page's slots.
///
/// # Safety
/// The plan's copies are done; no reference into guest memory is alive; the slots are
/// the trampoline page's (32 and 4 * 24 bytes).
pub unsafe fn prepare_switch(plan: &LaunchPlan, tramp_stub: *mut u8, tramp_ops: *mut MmuextOp) -> Switch {
    let Jump::Pv { entry, stack, start_info, pt_pfn, pt_frames, hypercall_page } = plan.jump else {
        fatal("prepare_switch: not a PV plan");
    };
    if let Some(va_pfn) = hypercall_page {
        // SAFETY: the kernel's hypercall page is a page of its image, placed by the plan;
        // ours is the page Xen filled (position-independent stubs, as GRUB also copies).
        unsafe {
            core::ptr::copy_nonoverlapping(
                xen::hypercall_page() as usize as *const u8,
                (va_pfn * PAGE) as usize as *mut u8,
                PAGE as usize,
            )
        };
    }
    let mfn =
        |pfn: u64| pv::mfn_of(pfn).unwrap_or_else(|| fatal(format_args!("PV handoff: pfn {pfn:#x} has no frame")));
    for pfn in pt_pfn..pt_pfn + pt_frames {
        // SAFETY: the frame holds a new table (written by the plan's copies) and is not
        // written again; Xen validates a table only while no writable mapping exists.
        if let Err(rc) = unsafe { pv::update_va_mapping(pfn * PAGE, (mfn(pfn) << 12) | pv::L1_READ_ONLY) } {
            fatal(format_args!("PV handoff: mapping table frame {pfn:#x} read-only: {}", xen::errno_name(rc)));
        }
    }
    let pin = MmuextOp { cmd: MMUEXT_PIN_L4_TABLE, _pad: 0, arg1: mfn(pt_pfn), arg2: 0 };
    // SAFETY: pinning validates the new tree (Xen checks every entry) and changes nothing
    // we use; on failure nothing changed.
    if let Err(rc) = unsafe { pv::mmuext_op(&[pin]) } {
        fatal(format_args!(
            "PV handoff: Xen refused the kernel's page tables (pin L4 at pfn {pt_pfn:#x}): {} ({rc})",
            xen::errno_name(rc)
        ));
    }
    let old = OLD_PT_BASE.load(Ordering::Relaxed) >> 12;
    let ops = [
        MmuextOp { cmd: MMUEXT_NEW_BASEPTR, _pad: 0, arg1: mfn(pt_pfn), arg2: 0 },
        MmuextOp { cmd: MMUEXT_UNPIN_TABLE, _pad: 0, arg1: mfn(old), arg2: 0 },
    ];
    // SAFETY: per the caller, the slots are the trampoline page's; the stub is the
    // mmuext_op entry of the page Xen filled (32 bytes, position-independent).
    unsafe {
        core::ptr::copy_nonoverlapping(
            (xen::hypercall_page() + 32 * u64::from(crate::abi::xen::HYPERVISOR_MMUEXT_OP)) as usize as *const u8,
            tramp_stub,
            32,
        );
        core::ptr::copy_nonoverlapping(ops.as_ptr(), tramp_ops, ops.len());
    }
    // SAFETY: a null table clears our handlers; from here nothing may fault.
    let _ = unsafe { pv::set_trap_table(core::ptr::null()) };
    Switch { nr_ops: ops.len() as u64, entry, stack, start_info }
}
