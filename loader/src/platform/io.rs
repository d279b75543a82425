// SPDX-License-Identifier: MIT OR Apache-2.0
//! Port I/O and raw physical memory access. Every caller in the loader goes through these
//! few functions.
//!
//! Port I/O can do anything a device can: reprogram an interrupt controller, start a DMA
//! engine, reset the machine. So the raw accessors are `unsafe fn`s, and drivers reach
//! their ports through an [`IoPorts`] window that is created unsafely once per device,
//! where the caller says why those ports are that device's, and is then used safely
//! (every access is checked to stay inside the window).

use core::arch::asm;

/// Write a byte to an I/O port.
///
/// # Safety
/// `port` must belong to a device the caller drives (or be known to be unclaimed), and
/// writing `v` there must not make any device touch memory or machine state the loader
/// relies on (DMA into live memory, a reset, a remapped interrupt).
pub unsafe fn outb(port: u16, v: u8) {
    // SAFETY: the caller vouches for the port and value; `out` itself has no effect on
    // memory visible to Rust.
    unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack, preserves_flags)) }
}

/// Read a byte from an I/O port.
///
/// # Safety
/// As for [`outb`]: some device registers act on reads (clear-on-read status, FIFOs).
pub unsafe fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: as for `outb`.
    unsafe { asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack, preserves_flags)) };
    v
}

/// Write a 16-bit word to an I/O port.
///
/// # Safety
/// As for [`outb`].
pub unsafe fn outw(port: u16, v: u16) {
    // SAFETY: as for `outb`.
    unsafe { asm!("out dx, ax", in("dx") port, in("ax") v, options(nomem, nostack, preserves_flags)) }
}

/// Read a 16-bit word from an I/O port.
///
/// # Safety
/// As for [`inb`].
pub unsafe fn inw(port: u16) -> u16 {
    let v: u16;
    // SAFETY: as for `outb`.
    unsafe { asm!("in ax, dx", out("ax") v, in("dx") port, options(nomem, nostack, preserves_flags)) };
    v
}

/// Write a 32-bit value to an I/O port.
///
/// # Safety
/// As for [`outb`].
pub unsafe fn outl(port: u16, v: u32) {
    // SAFETY: as for `outb`.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") v, options(nomem, nostack, preserves_flags)) }
}

/// Read a 32-bit value from an I/O port.
///
/// # Safety
/// As for [`inb`].
pub unsafe fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: as for `outb`.
    unsafe { asm!("in eax, dx", out("eax") v, in("dx") port, options(nomem, nostack, preserves_flags)) };
    v
}

/// A device's window of I/O ports, `base .. base + len`. Created once per device with
/// [`IoPorts::new`]; reads and writes inside it are then safe (offsets are checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoPorts {
    base: u16,
    len: u16,
}

impl IoPorts {
    /// # Safety
    /// `base .. base + len` must be the registers of one device the holder drives, and
    /// any access of any width and value the holder's (safe) code makes there must be
    /// harmless to the loader's memory and the machine: the holder is then the one
    /// place that decides what is written to them.
    pub const unsafe fn new(base: u16, len: u16) -> IoPorts {
        IoPorts { base, len }
    }

    /// The first port.
    pub fn base(&self) -> u16 {
        self.base
    }

    fn port(&self, offset: u16, width: u16) -> u16 {
        assert!(offset.checked_add(width).is_some_and(|end| end <= self.len), "I/O port access outside its window");
        self.base + offset
    }

    pub fn read8(&self, offset: u16) -> u8 {
        // SAFETY: inside the window `new`'s caller vouched for (checked by `port`).
        unsafe { inb(self.port(offset, 1)) }
    }
    pub fn read16(&self, offset: u16) -> u16 {
        // SAFETY: as for read8.
        unsafe { inw(self.port(offset, 2)) }
    }
    pub fn read32(&self, offset: u16) -> u32 {
        // SAFETY: as for read8.
        unsafe { inl(self.port(offset, 4)) }
    }
    pub fn write8(&self, offset: u16, v: u8) {
        // SAFETY: as for read8.
        unsafe { outb(self.port(offset, 1), v) }
    }
    pub fn write16(&self, offset: u16, v: u16) {
        // SAFETY: as for read8.
        unsafe { outw(self.port(offset, 2), v) }
    }
    pub fn write32(&self, offset: u16, v: u32) {
        // SAFETY: as for read8.
        unsafe { outl(self.port(offset, 4), v) }
    }
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
