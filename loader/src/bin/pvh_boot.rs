// SPDX-License-Identifier: MIT OR Apache-2.0
//! `pvh-boot`: rxen's loader for PVH domains (Xen `type = "pvh"`, and QEMU `-kernel`).
//! Thin on purpose: the entry asm, the heap, the panic handler and the final jump. The
//! hardware platform is `rxen_loader::pvh`; the boot itself is
//! `rxen_loader::session::run`, which returns the plan this file carries out.
#![no_std]
#![no_main]

extern crate alloc;

use rxen_loader::platform::traps::TrapFrame;
use rxen_loader::pvh;
use rxen_loader::session::plan::Jump;
use rxen_memdisk::ImageHeader;

#[path = "../arch/x86_64/rt.rs"]
mod rt;

#[path = "../arch/x86_64/heap.rs"]
mod heap;
use heap::{HEAP, scratch_heap};

core::arch::global_asm!(include_str!("../arch/x86_64/pvh.S"), options(att_syntax));
core::arch::global_asm!(include_str!("../arch/x86_64/traps.S"), options(att_syntax));

unsafe extern "C" {
    /// Leave long mode and jump to a 32-bit entry with %ebx, %esi and %eax as given
    /// (pvh.S).
    fn rxen_enter32(entry: u32, ebx: u32, esi: u32, eax: u32) -> !;
    /// Load an empty IDT (traps.S): the kernel starts without handlers of ours.
    fn rxen_traps_off();
    static __image_start: u8;
    static __image_end: u8;
}

/// Filled in by rxen-mkimage (memdisk/src/header.rs); placed at 0x100000 by the linker
/// script. Always read through [`image_header`]: the compiler must not fold the constant.
#[used]
#[unsafe(link_section = ".rxen.header")]
static RXEN_HEADER: ImageHeader = ImageHeader::EMPTY;

fn image_header() -> ImageHeader {
    // SAFETY: RXEN_HEADER is a 96-byte static; a volatile read sees the bytes mkimage
    // wrote into the image rather than the constant the compiler knows.
    let bytes: [u8; 96] = unsafe { core::ptr::read_volatile((&raw const RXEN_HEADER).cast::<[u8; 96]>()) };
    ImageHeader::from_bytes(&bytes).unwrap_or(ImageHeader::EMPTY)
}

#[unsafe(no_mangle)]
extern "C" fn rxen_pvh_main(start_info_paddr: u32) -> ! {
    // Linker-defined symbols: only their addresses are taken.
    let image = pvh::Image {
        start: &raw const __image_start as u64,
        end: &raw const __image_end as u64,
        header: image_header(),
    };
    let plan = pvh::boot(
        start_info_paddr,
        image,
        &mut |at, len| {
            // SAFETY: [at, at + len) is free RAM below 4 GiB, identity mapped, reserved in
            // the boot's allocator for the heap and used by nothing else; called once.
            unsafe { HEAP.main.lock().init(at as usize as *mut u8, len) }
        },
        scratch_heap,
    );
    // SAFETY: pvh::boot returned the plan after the session ended, so no reference into
    // guest memory is alive; every destination was reserved by its placement and lies
    // below 4 GiB (checked by pvh::boot).
    unsafe { pvh::carry_out(&plan) };
    // SAFETY: only loads IDTR with a null table; from here to the jump nothing faults,
    // and the kernel installs its own before it enables anything.
    unsafe { rxen_traps_off() };
    match plan.jump {
        // Linux 64-bit boot protocol: long mode, identity map covering the kernel,
        // boot_params and cmdline (all below 4 GiB), CS = __BOOT_CS (0x10), DS/ES/SS =
        // __BOOT_DS (0x18) as pvh.S set them, interrupts off, %rsi = boot_params.
        // SAFETY: the kernel image, boot_params and cmdline are in place as the protocol
        // requires; control never returns.
        Jump::Linux64 { entry, boot_params } => unsafe {
            core::arch::asm!("cli", "jmp {entry}", entry = in(reg) entry, in("rsi") boot_params, options(noreturn))
        },
        // SAFETY: 32-bit boot protocol: entry at code32_start, %esi = boot_params, below
        // 4 GiB, all in place; rxen_enter32 never returns.
        Jump::Linux32 { entry, boot_params } => unsafe { rxen_enter32(entry, 0, boot_params, 0) },
        // SAFETY: segments, start info and initrd are placed; PVH ABI entry with %ebx =
        // hvm_start_info; never returns.
        Jump::Pvh { entry, start_info } => unsafe { rxen_enter32(entry, start_info, 0, 0) },
        // SAFETY: segments, modules and the information structure are placed (below
        // 4 GiB); multiboot entry: %eax = the bootloader magic, %ebx = multiboot_info;
        // never returns.
        Jump::Multiboot { entry, info } => unsafe {
            rxen_enter32(entry, info, 0, rxen_loader::kernel::multiboot::BOOTLOADER_MAGIC)
        },
        Jump::Pv { .. } => pvh::fatal("a PV kernel's plan in the PVH loader"),
    }
}

/// traps.S calls this for every CPU exception, on the trap stack, with the saved frame.
#[unsafe(no_mangle)]
extern "C" fn rxen_trap(frame: &TrapFrame) -> ! {
    pvh::exception(frame)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    pvh::panic(info)
}
