// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the multiboot header reader (kernel::multiboot: the guest's kernel file) and the
//! information structure built for what it accepts. Nothing may panic, whatever the
//! bytes; an accepted kernel's segments lie in the file and below 4 GiB, with the entry
//! inside one of them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::handoff::multiboot::{INFO_LEN, build_info};
use rxen_loader::kernel::multiboot::parse;
use rxen_loader::mem::{E820_RAM, E820_RESERVED, E820Entry};

const E820: [E820Entry; 3] = [
    E820Entry { addr: 0, size: 0x9_fc00, kind: E820_RAM },
    E820Entry { addr: 0xf_0000, size: 0x1_0000, kind: E820_RESERVED },
    E820Entry { addr: 0x10_0000, size: 0x3ff0_0000, kind: E820_RAM },
];

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(Some(k)) => {
            for s in &k.segments {
                assert!(s.filesz <= s.memsz);
                assert!(s.offset + s.filesz <= data.len() as u64);
                assert!(s.paddr + s.memsz <= 1 << 32);
            }
            let e = u64::from(k.entry);
            assert!(k.segments.iter().any(|s| s.paddr <= e && e < s.paddr + s.memsz));
            let _ = k.to_string();
            // The command line and module names come from the guest too.
            let text = String::from_utf8_lossy(&data[..data.len().min(300)]);
            let info = build_info(0x7000_0000, &text, &[(0x100_0000, 0x100_1000, &text)], &E820);
            assert!(info.len() >= INFO_LEN);
        }
        Ok(None) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
