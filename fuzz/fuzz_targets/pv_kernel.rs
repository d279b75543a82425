// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the PV kernel path pv-boot runs on a guest's kernel file: take a PV ELF out of it
//! (itself, or a bzImage's payload decompressed into 1 MiB), parse its Xen notes and
//! segments, lay out its start of day in a 256 MiB domain and build the page tables.
//! Nothing may panic; every refusal is an error with a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::handoff::pv::{PvLayoutInput, layout, page_tables};
use rxen_loader::kernel::pv::{parse_pv, pv_kernel_image};

fuzz_target!(|data: &[u8]| {
    let mut out = vec![0u8; 1 << 20];
    let image = match pv_kernel_image(data, &mut out) {
        Ok(i) => i,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let elf = match parse_pv(image) {
        Ok(e) => e,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(elf.virt_kstart <= elf.entry && elf.entry < elf.virt_kend);
    let nr = 65536;
    let input =
        PvLayoutInput { elf: &elf, initrd_len: 1 << 20, nr_pages: nr, cmdline: "console=hvc0", trampoline_pfn: 0x180 };
    match layout(&input) {
        Ok(l) => {
            assert!(l.end_pfn <= nr);
            let p2m: Vec<u64> = (0..nr).map(|p| p + 0x10_0000).collect();
            let t = page_tables(&input, &l, &p2m, &|_| false).expect("tables for a layout that fits");
            assert_eq!(t.len() as u64, l.pt_frames * 4096);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
