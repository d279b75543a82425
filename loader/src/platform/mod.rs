// SPDX-License-Identifier: MIT OR Apache-2.0
//! Hardware access: the only place (with `arch/` and the bins) that touches ports, MSRs,
//! CPUID or physical memory by address. Everything here is small and audited; every
//! `unsafe` block says why it is sound.

pub mod acpi;
pub mod io;
pub mod paging;
pub mod pci;
pub mod serial;
pub mod time;
pub mod traps;
pub mod xen;

/// CPUID leaf `leaf`, subleaf 0: (eax, ebx, ecx, edx).
pub fn cpuid(leaf: u32) -> (u32, u32, u32, u32) {
    if xen::pv::is_pv() {
        return pv_cpuid(leaf);
    }
    // CPUID is available on every x86_64 CPU and has no side effects (safe since Rust 1.87).
    let r = core::arch::x86_64::__cpuid_count(leaf, 0);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// The CPUID base of Xen's leaves (0x40000000, or shifted by 0x100 steps when Viridian
/// sits first), if we run on Xen. `xen/include/public/arch-x86/cpuid.h`.
pub fn xen_cpuid_base() -> Option<u32> {
    (0x4000_0000u32..0x4001_0000).step_by(0x100).find(|&base| {
        let (eax, ebx, ecx, edx) = cpuid(base);
        // "XenVMMXenVMM"
        ebx == 0x566e_6558 && ecx == 0x6558_4d4d && edx == 0x4d4d_566e && eax.wrapping_sub(base) >= 2
    })
}

/// CPUID as a PV guest sees Xen's policy (and Xen's own leaves): the forced-emulation
/// prefix `ud2; .ascii "xen"` before `cpuid` makes Xen emulate it (arch-x86/xen.h
/// XEN_CPUID); a plain `cpuid` in a PV guest may show the host's raw values.
fn pv_cpuid(leaf: u32) -> (u32, u32, u32, u32) {
    let (a, b, c, d): (u32, u32, u32, u32);
    // SAFETY: Xen traps the ud2 of this exact sequence in PV guests and emulates the
    // cpuid after it (no #UD reaches us); rbx is saved and restored around it (LLVM
    // reserves it) and nothing else is touched.
    unsafe {
        core::arch::asm!(
            "mov {t:r}, rbx",
            ".byte 0x0f, 0x0b, 0x78, 0x65, 0x6e",
            "cpuid",
            "xchg {t:r}, rbx",
            t = out(reg) b,
            inout("eax") leaf => a,
            inout("ecx") 0u32 => c,
            out("edx") d,
            options(nostack, preserves_flags),
        );
    }
    (a, b, c, d)
}
