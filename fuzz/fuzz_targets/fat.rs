// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the FAT12/16/32 reader: open any bytes as a filesystem, list the root (and the
//! directories in it), resolve the paths the loader asks for on an ESP or /boot and read
//! (up to 1 MiB of) whatever is found; then the grubenv update (`write_in_place`): it must
//! refuse or write bytes that read back identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::block::VecDisk;
use rxen_loader::fs::NodeKind;
use rxen_loader::fs::fat::Fat;

fuzz_target!(|data: &[u8]| {
    // VecDisk ignores a partial last block: pad to a whole number of 512-byte sectors.
    let mut buf = data.to_vec();
    buf.resize(data.len().div_ceil(512) * 512, 0);
    let Ok(mut fs) = Fat::open(VecDisk::new(buf, 512)) else { return };
    let _ = (fs.uuid_string(), fs.label().len(), fs.fat_kind());
    if let Ok(root) = fs.lookup("/") {
        if let Ok(entries) = fs.entries(&root) {
            for e in entries.iter().take(16) {
                if let Ok(n) = fs.lookup(&format!("/{}", e.name)) {
                    if n.kind == NodeKind::Dir {
                        let _ = fs.entries(&n);
                    }
                }
            }
        }
    }
    let mut out = vec![0u8; 1 << 20];
    for p in ["/", "/loader/entries", "/loader/loader.conf", "/EFI/BOOT/BOOTX64.EFI", "/vmlinuz", "/grub/grub.cfg"] {
        if let Ok(n) = fs.lookup(p) {
            match n.kind {
                NodeKind::Dir => {
                    let _ = fs.entries(&n);
                }
                _ => {
                    let _ = fs.read_at(&n, 0, &mut out);
                    let _ = fs.read_at(&n, 4095, &mut out[..5000]);
                }
            }
        }
    }
    for p in ["/grub/grubenv", "/boot/grub/grubenv", "/vmlinuz"] {
        let Ok(n) = fs.lookup(p) else { continue };
        let patch = [0x23u8; 1024];
        let len = (n.size.min(1024)) as usize;
        if fs.write_in_place(&n, 0, &patch[..len]).is_ok() {
            let mut back = vec![0u8; len];
            let got = fs.read_at(&n, 0, &mut back).expect("a file just written reads back");
            assert_eq!(&back[..got], &patch[..got], "{p}: written bytes must read back");
        }
    }
});
