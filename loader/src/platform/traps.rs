// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU exceptions, as `arch/x86_64/traps.S` hands them over: the frame it saves, the
//! names of the vectors (Intel SDM vol. 3, table 6-1; AMD APM vol. 2, 8.2) and the report
//! the loader prints before it ends the domain. No hardware access here: the entry code
//! and the handler that reads CR2 and powers off live in the loader's platform (`pvh`).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// What traps.S leaves on the trap stack: the general registers it pushed (r15 at the
/// lowest address), then its vector and the error code (0 where the CPU pushes none), then
/// the CPU's own interrupt frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Where `rxen-mkimage` stores the loader's function table in an image's memdisk (read by
/// the exception handler, written by `rxen-mkimage build`).
pub const SYMBOLS_PATH: &str = ".rxen/symbols";

/// traps.S's limit on stray interrupts before it calls them a storm (STRAY_LIMIT).
pub const STRAY_LIMIT: u32 = 1_000_000;

// What traps.S records of the stray interrupts (NMI, vectors >= 32) it returned from: how
// many, and the last one's vector and RIP. Written only by traps.S (atomically: `lock inc`,
// aligned stores), read by the loader.
#[allow(non_upper_case_globals)]
#[unsafe(no_mangle)]
pub static rxen_stray_count: AtomicU32 = AtomicU32::new(0);
#[allow(non_upper_case_globals)]
#[unsafe(no_mangle)]
pub static rxen_stray_vector: AtomicU32 = AtomicU32::new(0);
#[allow(non_upper_case_globals)]
#[unsafe(no_mangle)]
pub static rxen_stray_rip: AtomicU64 = AtomicU64::new(0);

/// The stray interrupts survived so far, in words; `None` when there were none.
pub fn stray_report() -> Option<alloc::string::String> {
    let n = rxen_stray_count.load(Ordering::Relaxed);
    (n > 0).then(|| {
        let v = rxen_stray_vector.load(Ordering::Relaxed);
        let (mn, _) = vector_name(u64::from(v));
        alloc::format!(
            "{n} unexpected interrupt(s) ignored (the loader unmasks none); the last: {mn} vector {v} at RIP {:#x}",
            rxen_stray_rip.load(Ordering::Relaxed)
        )
    })
}

/// The mnemonic and name of an exception vector; vectors of 32 and up are interrupts.
pub fn vector_name(vector: u64) -> (&'static str, &'static str) {
    match vector {
        0 => ("#DE", "divide error"),
        1 => ("#DB", "debug"),
        2 => ("NMI", "non-maskable interrupt"),
        3 => ("#BP", "breakpoint"),
        4 => ("#OF", "overflow"),
        5 => ("#BR", "bound range exceeded"),
        6 => ("#UD", "invalid opcode"),
        7 => ("#NM", "device not available"),
        8 => ("#DF", "double fault"),
        9 => ("#CSO", "coprocessor segment overrun"),
        10 => ("#TS", "invalid TSS"),
        11 => ("#NP", "segment not present"),
        12 => ("#SS", "stack-segment fault"),
        13 => ("#GP", "general protection"),
        14 => ("#PF", "page fault"),
        16 => ("#MF", "x87 floating-point error"),
        17 => ("#AC", "alignment check"),
        18 => ("#MC", "machine check"),
        19 => ("#XM", "SIMD floating-point exception"),
        20 => ("#VE", "virtualization exception"),
        21 => ("#CP", "control protection"),
        28 => ("#HV", "hypervisor injection"),
        29 => ("#VC", "VMM communication"),
        30 => ("#SX", "security exception"),
        15 | 22..=27 | 31 => ("#??", "reserved vector"),
        _ => ("INT", "interrupt"),
    }
}

/// Whether the CPU pushes an error code for `vector` (traps.S's list).
pub fn has_error_code(vector: u64) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// A page fault's error code, in words.
fn page_fault_cause(e: u64) -> impl fmt::Display {
    fmt::from_fn(move |f| {
        f.write_str(if e & 1 != 0 { "protection" } else { "not present" })?;
        f.write_str(if e & 2 != 0 { ", write" } else { ", read" })?;
        if e & 0x10 != 0 {
            f.write_str(", instruction fetch")?;
        }
        if e & 8 != 0 {
            f.write_str(", reserved bit")?;
        }
        Ok(())
    })
}

/// The loader's function holding `rip`, from a symbol table of lines
/// `<hex start> <hex size> <name>` sorted by start (what `rxen-mkimage` stores as
/// `.rxen/symbols`): the name and the offset into it. Malformed lines are skipped.
pub fn symbolize(table: &str, rip: u64) -> Option<(&str, u64)> {
    table.lines().find_map(|l| {
        let mut w = l.splitn(3, ' ');
        let start = u64::from_str_radix(w.next()?, 16).ok()?;
        let size = u64::from_str_radix(w.next()?, 16).ok()?;
        let name = w.next()?;
        (rip >= start && rip - start < size.max(1)).then_some((name, rip - start))
    })
}

/// The report of an exception: one line the test harness looks for (`rxen: EXCEPTION`),
/// then the registers. `symbol` is the function holding RIP, when the image says.
pub fn write_report(out: &mut dyn Write, f: &TrapFrame, cr2: u64, symbol: Option<(&str, u64)>) -> fmt::Result {
    let (mn, name) = vector_name(f.vector);
    write!(out, "rxen: EXCEPTION {mn} ({name}, vector {}", f.vector)?;
    if has_error_code(f.vector) {
        write!(out, ", error {:#x}", f.error)?;
        if f.vector == 14 {
            write!(out, ": {}", page_fault_cause(f.error))?;
        }
    }
    write!(out, ") at RIP {:#x}", f.rip)?;
    if let Some((s, off)) = symbol {
        write!(out, " <{s}+{off:#x}>")?;
    }
    write!(out, " RSP {:#x} CR2 {cr2:#x} RFLAGS {:#x}", f.rsp, f.rflags)?;
    if f.vector == 2 || f.vector >= 32 {
        write!(out, " (more than {STRAY_LIMIT} stray interrupts: a storm)")?;
    }
    out.write_char('\n')?;
    write!(
        out,
        "rxen:   rax {:#x} rbx {:#x} rcx {:#x} rdx {:#x} rsi {:#x} rdi {:#x} rbp {:#x}\n\
         rxen:   r8 {:#x} r9 {:#x} r10 {:#x} r11 {:#x} r12 {:#x} r13 {:#x} r14 {:#x} r15 {:#x} cs {:#x} ss {:#x}\n",
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp,
        f.r8,
        f.r9,
        f.r10,
        f.r11,
        f.r12,
        f.r13,
        f.r14,
        f.r15,
        f.cs,
        f.ss
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn frame_layout_matches_traps_s() {
        // traps.S: 15 pushes, then vector, error code and the 5-word CPU frame.
        assert_eq!(core::mem::size_of::<TrapFrame>(), 22 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, vector), 15 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, rip), 17 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, ss), 21 * 8);
    }

    #[test]
    fn page_fault_report_names_everything() {
        let f = TrapFrame {
            vector: 14,
            error: 2,
            rip: 0x10_2345,
            rsp: 0x19_17c0,
            rflags: 0x86,
            cs: 0x10,
            ..Default::default()
        };
        let mut s = String::new();
        write_report(&mut s, &f, 0xdead_0000_0000, Some(("rxen_loader::pvh::fault", 0x12))).unwrap();
        let first = s.lines().next().unwrap();
        assert_eq!(
            first,
            "rxen: EXCEPTION #PF (page fault, vector 14, error 0x2: not present, write) at RIP 0x102345 \
             <rxen_loader::pvh::fault+0x12> RSP 0x1917c0 CR2 0xdead00000000 RFLAGS 0x86"
        );
        assert!(s.contains("cs 0x10"), "{s}");
    }

    #[test]
    fn error_codes_only_where_the_cpu_pushes_them() {
        let mut s = String::new();
        write_report(&mut s, &TrapFrame { vector: 6, error: 0, rip: 1, ..Default::default() }, 0, None).unwrap();
        assert!(s.starts_with("rxen: EXCEPTION #UD (invalid opcode, vector 6) at RIP 0x1 RSP"), "{s}");
        assert!((0..32).filter(|&v| has_error_code(v)).eq([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]));
        s.clear();
        write_report(&mut s, &TrapFrame { vector: 0x40, ..Default::default() }, 0, None).unwrap();
        assert!(s.contains("INT (interrupt, vector 64)") && s.contains("storm"), "{s}");
    }

    #[test]
    fn symbols_found_by_range() {
        let t = "100000 20 pvh_start32\n100020 0 empty\nzz 10 bad\n101000 80 rxen_loader::pvh::boot\n";
        assert_eq!(symbolize(t, 0x100010), Some(("pvh_start32", 0x10)));
        assert_eq!(symbolize(t, 0x100020), Some(("empty", 0)));
        assert_eq!(symbolize(t, 0x10107f), Some(("rxen_loader::pvh::boot", 0x7f)));
        assert_eq!(symbolize(t, 0x101080), None);
        assert_eq!(symbolize("", 5), None);
    }
}
