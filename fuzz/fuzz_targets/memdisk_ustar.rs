// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the memdisk ustar reader: walking, lookups and Display never panic or hang, and
//! every entry's data lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_memdisk::ustar::{Archive, EntryKind};

fuzz_target!(|data: &[u8]| {
    let ar = Archive::new(data);
    let range = data.as_ptr_range();
    let mut n = 0usize;
    for e in ar.entries() {
        match e {
            Ok(e) => {
                let d = e.data().as_ptr_range();
                assert!(e.data().is_empty() || (range.start <= d.start && d.end <= range.end));
                assert!(e.offset() % 512 == 0 && e.offset() < data.len());
                let path = e.path().to_string();
                assert!(e.path().matches(&path));
                if e.kind() == EntryKind::File {
                    let _ = ar.file(&path);
                }
            }
            Err(err) => {
                let _ = err.to_string();
            }
        }
        n += 1;
        // Each entry takes at least one 512-byte block.
        assert!(n <= data.len() / 512 + 1);
    }
    for p in ["rxen.toml", "/vmlinuz", "boot/initrd.img", ""] {
        let _ = ar.file(p).map_err(|e| e.to_string());
    }
});
