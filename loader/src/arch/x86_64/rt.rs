// SPDX-License-Identifier: MIT OR Apache-2.0
//! The few symbols a freestanding binary on the host target must supply itself
//! (../shared/design/TOOLCHAIN.md): the host sysroot's compiler_builtins exports no
//! mem* functions. `rep movs`/`rep stos` keep the optimiser from turning a loop back
//! into a call to itself, and are fast under both hardware and TCG.

use core::arch::asm;

/// # Safety
/// `dst` and `src` valid for `n` bytes, not overlapping (C `memcpy` contract).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // Quadwords first, then the tail: TCG emulates each `rep` iteration, so moving 8 bytes
    // per iteration makes the multi-MiB kernel and initrd copies ~8x cheaper there.
    // SAFETY: the caller upholds memcpy's contract; movsq copies (n / 8) * 8 bytes
    // forward, movsb the remaining n % 8, together exactly n bytes.
    unsafe {
        asm!("rep movsq", "mov rcx, {tail}", "rep movsb",
             tail = in(reg) n % 8,
             inout("rcx") n / 8 => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// `dst` and `src` valid for `n` bytes (C `memmove` contract); they may overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if n == 0 {
        return dst;
    }
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // No harmful overlap: a forward copy is correct.
        // SAFETY: as above; forward copying is safe when dst does not start inside src.
        unsafe { memcpy(dst, src, n) }
    } else {
        // dst starts inside src: copy backwards (direction flag set, then cleared again).
        // SAFETY: both ranges are valid for n bytes; the last byte of each is at +n-1.
        unsafe {
            asm!("std", "rep movsb", "cld",
                 inout("rcx") n => _, inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
                 options(nostack));
        }
        dst
    }
}

/// # Safety
/// `dst` valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // Quadwords, then the tail byte-wise (see memcpy); rax holds the byte in all 8 lanes.
    // SAFETY: the caller guarantees dst is valid for n bytes; stosq writes (n / 8) * 8
    // bytes, stosb the remaining n % 8.
    unsafe {
        asm!("rep stosq", "mov rcx, {tail}", "rep stosb",
             tail = in(reg) n % 8,
             inout("rcx") n / 8 => _, inout("rdi") dst => _, in("rax") (c as u8 as u64) * 0x0101_0101_0101_0101,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// `a` and `b` valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and both pointers are valid for n bytes; volatile keeps this loop
        // from being recognised as memcmp and compiled into a call to itself.
        let (x, y) = unsafe { (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i))) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// # Safety
/// As for [`memcmp`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// The precompiled linux-gnu `core` carries `DW.ref.rust_eh_personality` references; with
/// panic=abort it is never called, but dev builds do not link without the symbol.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

/// With LTO the precompiled (panic=unwind) `core` keeps landing pads that call
/// `_Unwind_Resume`. Our panics abort in the panic handler before any unwinding could
/// start, so this is unreachable; if it ever ran, `ud2` faults (no IDT: triple fault and
/// reset, which QEMU's `-no-reboot` and Xen's `on_reboot` turn into a stop, never a hang).
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    // SAFETY: ud2 raises #UD; nothing after it runs.
    unsafe { core::arch::asm!("ud2", options(noreturn, nomem, nostack)) }
}
