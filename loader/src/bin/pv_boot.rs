// SPDX-License-Identifier: MIT OR Apache-2.0
//! `pv-boot`: rxen's loader for Xen PV domains (`type = "pv"`). Thin on purpose, like
//! pvh-boot: the entry asm, the heap, the trap table, the panic handler and the final
//! page-table switch. The boot is `rxen_loader::pv::boot`, which runs the same
//! `rxen_loader::session` as pvh-boot and returns the plan this file carries out.
#![no_std]
#![no_main]

extern crate alloc;

use rxen_loader::abi::xen::{FLAT_KERNEL_CS, MmuextOp, TrapInfo};
use rxen_loader::platform::traps::TrapFrame;
use rxen_loader::platform::xen::pv;
use rxen_loader::{pv as pvboot, pvh};
use rxen_memdisk::ImageHeader;

#[path = "../arch/x86_64/rt.rs"]
mod rt;

#[path = "../arch/x86_64/heap.rs"]
mod heap;
use heap::{HEAP, scratch_heap};

core::arch::global_asm!(include_str!("../arch/x86_64/pv.S"), options(att_syntax));
core::arch::global_asm!(include_str!("../arch/x86_64/traps.S"), options(att_syntax));

unsafe extern "C" {
    /// The trampoline (pv.S): switch page tables by the ops in its page and jump.
    fn rxen_pv_jump(nr_ops: u64, entry: u64, stack: u64, start_info: u64) -> !;
    static rxen_pv_tramp: u8;
    static mut rxen_pv_tramp_stub: [u8; 32];
    static mut rxen_pv_tramp_ops: [MmuextOp; 4];
    /// 32 PV exception entries, 16 bytes apart (pv.S).
    static rxen_pv_trap_stubs: u8;
    static __image_start: u8;
    static __image_end: u8;
}

/// Filled in by rxen-mkimage (memdisk/src/header.rs); placed at 0x100000 by the linker
/// script. Always read through [`image_header`].
#[used]
#[unsafe(link_section = ".rxen.header")]
static RXEN_HEADER: ImageHeader = ImageHeader::EMPTY;

fn image_header() -> ImageHeader {
    // SAFETY: RXEN_HEADER is a 96-byte static; a volatile read sees the bytes mkimage
    // wrote into the image rather than the constant the compiler knows.
    let bytes: [u8; 96] = unsafe { core::ptr::read_volatile((&raw const RXEN_HEADER).cast::<[u8; 96]>()) };
    ImageHeader::from_bytes(&bytes).unwrap_or(ImageHeader::EMPTY)
}

/// Exceptions 0..31 to pv.S's entries (which hand traps.S the frame it expects).
fn install_traps() {
    let base = &raw const rxen_pv_trap_stubs as u64;
    let mut table = [TrapInfo::default(); 33];
    for (v, t) in table.iter_mut().take(32).enumerate() {
        *t = TrapInfo { vector: v as u8, flags: 0, cs: FLAT_KERNEL_CS, _pad: 0, address: base + 16 * v as u64 };
    }
    // SAFETY: each entry is pv.S's stub for its vector (pops %rcx/%r11, then traps.S's
    // report path); the last entry has address 0 and ends the table.
    let _ = unsafe { pv::set_trap_table(table.as_ptr()) };
}

#[unsafe(no_mangle)]
extern "C" fn rxen_pv_main(start_info: u64) -> ! {
    install_traps();
    let image = pvh::Image {
        start: &raw const __image_start as u64,
        end: &raw const __image_end as u64,
        header: image_header(),
    };
    let tramp = &raw const rxen_pv_tramp as u64;
    let plan = pvboot::boot(
        start_info,
        image,
        tramp,
        &mut |at, len| {
            // SAFETY: [at, at + len) is free RAM, mapped one to one, reserved in the boot's
            // allocator for the heap and used by nothing else; called once.
            unsafe { HEAP.main.lock().init(at as usize as *mut u8, len) }
        },
        scratch_heap,
    );
    // SAFETY: pv::boot returned the plan after the session ended, so no reference into
    // guest memory is alive; every destination is free RAM the plan reserved.
    unsafe { pvh::carry_out(&plan) };
    // SAFETY: the copies are done; the slots are the trampoline page's own.
    let sw = unsafe {
        pvboot::prepare_switch(&plan, (&raw mut rxen_pv_tramp_stub).cast(), (&raw mut rxen_pv_tramp_ops).cast())
    };
    // SAFETY: the new tables are pinned and map the trampoline page at its address, the
    // kernel, its start_info and stack; the ops switch to them; control never returns.
    unsafe { rxen_pv_jump(sw.nr_ops, sw.entry, sw.stack, sw.start_info) }
}

/// traps.S calls this for every CPU exception, with the saved frame.
#[unsafe(no_mangle)]
extern "C" fn rxen_trap(frame: &TrapFrame) -> ! {
    pvh::exception(frame)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    pvh::panic(info)
}
