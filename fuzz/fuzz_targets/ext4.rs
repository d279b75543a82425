// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the ext2/3/4 reader: open any bytes as a filesystem, resolve the paths the loader
//! asks for, list the root and read (up to 1 MiB of) whatever is found; then the grubenv
//! update (`write_in_place`) on whatever those paths are: it must refuse or write bytes
//! that read back identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::block::VecDisk;
use rxen_loader::fs::ext4::{Ext4, FileKind};

fuzz_target!(|data: &[u8]| {
    // SliceDisk ignores a partial last block: pad to a whole number of 512-byte sectors.
    let mut buf = data.to_vec();
    buf.resize(data.len().div_ceil(512) * 512, 0);
    let Ok(mut fs) = Ext4::open(VecDisk::new(buf, 512)) else { return };
    let _ = (fs.uuid_string(), fs.label().len(), fs.warnings().len());
    if let Ok(root) = fs.lookup("/") {
        if let Ok(entries) = fs.read_dir(&root) {
            for e in entries.iter().take(16) {
                if let Ok(i) = fs.lookup_nofollow(&format!("/{}", e.name)) {
                    if i.kind() == FileKind::Symlink {
                        let _ = fs.read_link(&i);
                    }
                }
            }
        }
    }
    let mut out = vec![0u8; 1 << 20];
    for p in ["/", "/vmlinuz", "/boot/vmlinuz", "/boot/grub/grub.cfg", "/etc/hostname"] {
        if let Ok(i) = fs.lookup(p) {
            match i.kind() {
                FileKind::Dir => {
                    let _ = fs.read_dir(&i);
                }
                _ => {
                    let _ = fs.read_at(&i, 0, &mut out);
                    let _ = fs.read_at(&i, 4095, &mut out[..5000]);
                }
            }
        }
    }
    for p in ["/boot/grub/grubenv", "/etc/hostname", "/vmlinuz"] {
        let Ok(i) = fs.lookup(p) else { continue };
        let patch = [0x23u8; 1024];
        let len = (i.size().min(1024)) as usize;
        if fs.write_in_place(&i, 0, &patch[..len]).is_ok() {
            let mut back = vec![0u8; len];
            let n = fs.read_at(&i, 0, &mut back).expect("a file just written reads back");
            assert_eq!(&back[..n], &patch[..n], "{p}: written bytes must read back");
        }
    }
});
