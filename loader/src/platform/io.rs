// SPDX-License-Identifier: MIT OR Apache-2.0
//! Port I/O and raw physical memory access. Every caller in the loader goes through these
//! few functions.

use core::arch::asm;

/// Write a byte to an I/O port.
pub fn outb(port: u16, v: u8) {
    // SAFETY: port writes have no memory effects visible to Rust; the ports the loader
    // uses (COM1, 0xe9, isa-debug-exit, ACPI PM1a) are harmless when absent.
    unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack, preserves_flags)) }
}

/// Read a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: as for `outb`: no Rust-visible memory effects.
    unsafe { asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack, preserves_flags)) };
    v
}

/// Write a 16-bit word to an I/O port.
pub fn outw(port: u16, v: u16) {
    // SAFETY: as for `outb`.
    unsafe { asm!("out dx, ax", in("dx") port, in("ax") v, options(nomem, nostack, preserves_flags)) }
}

/// Read `buf.len()` bytes of guest-physical memory at `paddr`.
///
/// # Safety
/// Only meaningful inside the loader, where the first 4 GiB are identity mapped:
/// `paddr .. paddr + buf.len()` must be below 4 GiB and not overlap `buf`.
pub unsafe fn read_phys(paddr: u64, buf: &mut [u8]) {
    // SAFETY: the caller guarantees the range is identity mapped and disjoint from `buf`;
    // a byte copy has no alignment requirement.
    unsafe { core::ptr::copy_nonoverlapping(paddr as usize as *const u8, buf.as_mut_ptr(), buf.len()) }
}

/// A byte slice over guest-physical memory.
///
/// # Safety
/// The range must be below 4 GiB (identity mapped), hold initialised memory, and not be
/// written by anyone while the slice lives.
pub unsafe fn phys_slice<'a>(paddr: u64, len: usize) -> &'a [u8] {
    // SAFETY: guaranteed by the caller as documented above.
    unsafe { core::slice::from_raw_parts(paddr as usize as *const u8, len) }
}

/// A mutable byte slice over guest-physical memory the loader has allocated for itself.
///
/// # Safety
/// As for [`phys_slice`], and no other reference to the range may exist.
pub unsafe fn phys_slice_mut<'a>(paddr: u64, len: usize) -> &'a mut [u8] {
    // SAFETY: guaranteed by the caller as documented above.
    unsafe { core::slice::from_raw_parts_mut(paddr as usize as *mut u8, len) }
}
