// SPDX-License-Identifier: MIT OR Apache-2.0
//! `pv-boot`: rxen's loader for Xen PV domains (`type = "pv"`). Thin on purpose, like
//! pvh-boot: the entry asm, the heap, the trap table, the panic handler and the final
//! page-table switch. The boot is `rxen_loader::pv::boot`, which runs the same
//! `rxen_loader::session` as pvh-boot and returns the plan this file carries out.
#![no_std]
#![no_main]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, Ordering};

use linked_list_allocator::{Heap, LockedHeap};
use rxen_loader::abi::xen::{FLAT_KERNEL_CS, MmuextOp, TrapInfo};
use rxen_loader::platform::traps::TrapFrame;
use rxen_loader::platform::xen::pv;
use rxen_loader::{pv as pvboot, pvh};
use rxen_memdisk::ImageHeader;

#[path = "../arch/x86_64/rt.rs"]
mod rt;

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

/// Two heaps: the loader's own (8 MiB, for the whole boot) and, while a decompressor
/// runs, RAM the session lends (Platform::scratch_heap): big allocations go there first.
struct PvHeap {
    main: LockedHeap,
    scratch: LockedHeap,
    /// The lent range [start, end); 0..0 when none.
    start: AtomicU64,
    end: AtomicU64,
}

/// Allocations this large try the lent RAM first.
const BIG: usize = 256 << 10;

// SAFETY: both heaps are linked_list_allocator's (sound GlobalAllocs behind a spinlock);
// a block is freed to the heap whose range holds it, which is the heap it came from.
unsafe impl GlobalAlloc for PvHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= BIG && self.end.load(Ordering::Acquire) != 0 {
            // SAFETY: forwarded GlobalAlloc contract.
            let p = unsafe { self.scratch.alloc(layout) };
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: forwarded GlobalAlloc contract.
        unsafe { self.main.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let a = ptr as u64;
        if a >= self.start.load(Ordering::Acquire) && a < self.end.load(Ordering::Acquire) {
            // SAFETY: the block lies in the lent range, so the scratch heap gave it.
            unsafe { self.scratch.dealloc(ptr, layout) }
        } else {
            // SAFETY: any other block came from the main heap.
            unsafe { self.main.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static HEAP: PvHeap = PvHeap {
    main: LockedHeap::empty(),
    scratch: LockedHeap::empty(),
    start: AtomicU64::new(0),
    end: AtomicU64::new(0),
};

/// Lend the scratch heap `Some((at, len))`, or take it back (`None`: only when nothing of
/// it is allocated; the answer says whether the RAM is free again).
///
/// # Safety
/// `Some`: free RAM, mapped, unused by anyone else until taken back.
unsafe fn scratch_heap(region: Option<(u64, u64)>) -> bool {
    let mut h = HEAP.scratch.lock();
    match region {
        Some((at, len)) => {
            if HEAP.end.load(Ordering::Acquire) != 0 {
                return false;
            }
            *h = Heap::empty();
            // SAFETY: per the caller: [at, at + len) is free RAM for this heap alone.
            unsafe { h.init(at as usize as *mut u8, len as usize) };
            HEAP.start.store(at, Ordering::Release);
            HEAP.end.store(at + len, Ordering::Release);
            true
        }
        None => {
            if h.used() != 0 {
                return false; // something still lives there: the RAM stays lent
            }
            HEAP.end.store(0, Ordering::Release);
            HEAP.start.store(0, Ordering::Release);
            *h = Heap::empty();
            true
        }
    }
}

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
