// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the md superblock reader and RAID1 assembly: the input is split into two member
//! devices (512-byte blocks); probe never panics, and an assembled array reads its
//! first and last block (or fails cleanly) and refuses or performs a write without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::block::{BlockDevice, VecDisk};
use rxen_loader::volume::md::{Member, assemble, probe};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let cut = (rest.len() * usize::from(sel) / 255) & !511;
    let mut members = Vec::new();
    for (i, part) in [&rest[..cut], &rest[cut..]].into_iter().enumerate() {
        let mut dev: Box<dyn BlockDevice> = Box::new(VecDisk::new(part.to_vec(), 512));
        match probe(&mut *dev) {
            Ok(Some(sb)) => members.push(Member { name: format!("m{i}"), sb, dev }),
            Ok(None) => {}
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    for mut a in assemble(members, &mut |m| drop(m)) {
        let n = a.dev.num_blocks();
        let mut b = [0u8; 512];
        if n > 0 {
            let _ = a.dev.read_blocks(0, &mut b);
            let _ = a.dev.read_blocks(n - 1, &mut b);
            let _ = a.dev.write_blocks(n - 1, &b);
        }
        assert!(a.dev.read_blocks(n, &mut b).is_err());
    }
});
