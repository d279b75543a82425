// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the XFS reader: mount any bytes (as SparseDisk records) with the XFS driver, resolve the
//! paths the loader asks for (RHEL's BLS /boot among them), list what is found and read
//! (up to 1 MiB of) it, read symlinks; then the grubenv update (`write_in_place`): it must
//! refuse or write bytes that read back identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::block::SparseDisk;
use rxen_loader::fs::NodeKind;

fuzz_target!(|data: &[u8]| {
    // A 64 MiB disk from a few 4 KiB chunks (SparseDisk records), so that the seeds can be
    // whole filesystems made by mkfs.xfs (scripts/fuzz-seeds).
    let Ok(mut fs) = rxen_loader::fs::xfs::mount(Box::new(SparseDisk::from_records(data))) else { return };
    let _ = (fs.uuid(), fs.label(), fs.warnings());
    let mut out = vec![0u8; 1 << 20];
    for p in ["/", "/loader/entries", "/grub2/grub.cfg", "/vmlinuz", "/boot/vmlinuz", "/links/kernel"] {
        let Ok(n) = fs.lookup(p) else { continue };
        match n.kind {
            NodeKind::Dir => {
                if let Ok(names) = fs.read_dir(&n) {
                    for name in names.iter().take(16) {
                        let child = format!("{}/{name}", p.trim_end_matches('/'));
                        let _ = fs.read_link(&child);
                        if let Ok(c) = fs.lookup(&child) {
                            let _ = fs.read_at(&c, 0, &mut out[..4096]);
                        }
                    }
                }
            }
            _ => {
                let _ = fs.read_at(&n, 0, &mut out);
                let _ = fs.read_at(&n, 4095, &mut out[..5000]);
            }
        }
    }
    for p in ["/grub2/grubenv", "/grub/grubenv", "/vmlinuz"] {
        let Ok(n) = fs.lookup(p) else { continue };
        let patch = [0x23u8; 1024];
        let len = n.size.min(1024) as usize;
        if fs.write_in_place(&n, 0, &patch[..len]).is_ok() {
            let mut back = vec![0u8; len];
            let got = fs.read_at(&n, 0, &mut back).expect("a file just written reads back");
            assert_eq!(&back[..got], &patch[..got], "{p}: written bytes must read back");
        }
    }
});
