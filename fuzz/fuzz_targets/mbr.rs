// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the partition table reader on 512-byte-block disks (MBR and EBR chains, and GPT
//! behind a protective MBR): scan never panics or hangs, every partition it reports lies
//! inside the disk, its first block reads through a PartitionDevice, and a CachedDevice
//! in front of the disk changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::block::cache::{CacheConfig, CachedDevice};
use rxen_loader::block::{BlockDevice, SliceDisk};
use rxen_loader::part::{PartitionDevice, scan};

fuzz_target!(|data: &[u8]| {
    let mut disk = SliceDisk::new(data, 512);
    check(&mut disk);
    // The read cache must not change what the reader sees (tiny cache: eviction happens).
    let cfg = CacheConfig { entries: 2, chunk_bytes: 2048, bypass_blocks: 2 };
    let mut cached = CachedDevice::with_config(SliceDisk::new(data, 512), cfg);
    assert_eq!(scan(&mut cached), scan(&mut disk));
});

fn check(disk: &mut SliceDisk<'_>) {
    let blocks = disk.num_blocks();
    let bs = disk.block_size() as usize;
    match scan(disk) {
        Ok(t) => {
            for p in &t.partitions {
                assert!(p.num_blocks > 0 && p.start_lba.checked_add(p.num_blocks).is_some_and(|e| e <= blocks));
                let _ = (p.name(), p.part_uuid_string());
                let mut view = PartitionDevice::new(&mut *disk, p.start_lba, p.num_blocks);
                assert_eq!(view.num_blocks(), p.num_blocks);
                let mut b = vec![0u8; bs];
                view.read_blocks(0, &mut b).unwrap();
                assert!(view.read_blocks(p.num_blocks, &mut b).is_err());
            }
            assert!(t.warnings.len() <= 64);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
