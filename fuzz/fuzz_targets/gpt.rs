// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the GPT reader: the first input byte picks 512- or 4096-byte blocks, the rest is
//! the disk. scan never panics or hangs, every partition lies inside the disk and its first
//! block reads through a PartitionDevice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::block::{BlockDevice, SliceDisk};
use rxen_loader::part::{PartitionDevice, Scheme, scan};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, disk)) = data.split_first() else { return };
    let bs = if sel & 1 == 0 { 512 } else { 4096 };
    let mut disk = SliceDisk::new(disk, bs);
    let blocks = disk.num_blocks();
    match scan(&mut disk) {
        Ok(t) => {
            for p in &t.partitions {
                assert!(p.num_blocks > 0 && p.start_lba.checked_add(p.num_blocks).is_some_and(|e| e <= blocks));
                if p.scheme == Scheme::Gpt {
                    assert!(p.type_guid.is_some() && p.mbr_type == 0);
                }
                let _ = (p.name(), p.part_uuid_string(), p.label.as_deref());
                let mut view = PartitionDevice::new(&mut disk, p.start_lba, p.num_blocks);
                let mut b = vec![0u8; bs as usize];
                view.read_blocks(0, &mut b).unwrap();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
