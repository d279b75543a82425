// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz kernel detection and everything built from a parsed kernel: bzImage placement
//! and `boot_params`, PVH ELF notes. Nothing may panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::handoff::boot_params::{BootParamsConfig, build, kernel_placement};
use rxen_loader::kernel::{Kernel, detect, elf};
use rxen_loader::mem::{E820_RAM, E820_RESERVED, E820Entry};

const E820: [E820Entry; 3] = [
    E820Entry { addr: 0, size: 0x9_fc00, kind: E820_RAM },
    E820Entry { addr: 0xf_0000, size: 0x1_0000, kind: E820_RESERVED },
    E820Entry { addr: 0x10_0000, size: 0x3ff0_0000, kind: E820_RAM },
];

fuzz_target!(|data: &[u8]| {
    match detect(data) {
        Ok(Kernel::BzImage(k)) => {
            let (pref, align, need, _) = kernel_placement(&k);
            assert!(align.is_power_of_two());
            assert!(need >= k.protected_mode().len() as u64);
            let _ = k.header_bytes();
            let _ = k.payload();
            let _ = k.to_string();
            let cmdline_len = (k.cmdline_size() as usize).min(64);
            let _ = build(&BootParamsConfig {
                kernel: &k,
                load_addr: pref,
                e820: &E820,
                cmdline_paddr: 0x2_0000,
                cmdline_len,
                initrd: Some((0x3000_0000, 0x10_0000)),
                rsdp_paddr: 0xf_ffe0,
                setup_data_paddr: 0,
            });
        }
        Ok(Kernel::PvhElf(e)) => {
            for s in &e.segments {
                assert!(s.filesz <= s.memsz);
                assert!(s.offset + s.filesz <= data.len() as u64);
                assert!(s.paddr + s.memsz <= 1 << 32);
            }
            let _ = e.to_string();
            let _ = elf::xen_notes(data);
        }
        Ok(Kernel::Multiboot(k)) => {
            assert!(k.segments.iter().any(|s| s.paddr <= u64::from(k.entry) && u64::from(k.entry) < s.paddr + s.memsz));
            let _ = k.to_string();
        }
        Err(err) => {
            let _ = err.to_string();
            if data.starts_with(elf::ELF_MAGIC) {
                let _ = elf::xen_notes(data);
            }
        }
    }
});
