// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the ISO9660 reader through the registry: mount any bytes (on 2048-byte device
//! blocks; data shorter than the descriptors at sector 16 is padded), list the root,
//! read the symlinks found there, resolve the paths a boot asks for and read (up to
//! 1 MiB of) whatever they name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::block::VecDisk;
use rxen_loader::fs::{self, NodeKind};

fuzz_target!(|data: &[u8]| {
    // SliceDisk ignores a partial last block: pad to a whole number of 2048-byte sectors.
    let mut buf = data.to_vec();
    buf.resize(data.len().div_ceil(2048) * 2048, 0);
    let Ok(mut fs) = fs::mount(Box::new(VecDisk::new(buf, 2048))) else { return };
    let _ = (fs.uuid().len(), fs.label().len(), fs.warnings().len());
    if let Ok(root) = fs.lookup("/") {
        if let Ok(names) = fs.read_dir(&root) {
            for n in names.iter().filter(|n| *n != "." && *n != "..").take(16) {
                let _ = fs.read_link(&format!("/{n}"));
            }
        }
    }
    let mut out = vec![0u8; 1 << 20];
    for p in ["/", "/boot/grub/grub.cfg", "/isolinux/isolinux.cfg", "/boot/vmlinuz", "/user-data", "/meta-data"] {
        if let Ok(n) = fs.lookup(p) {
            match n.kind {
                NodeKind::Dir => {
                    let _ = fs.read_dir(&n);
                }
                _ => {
                    let _ = fs.read_at(&n, 0, &mut out);
                    let _ = fs.read_at(&n, 2047, &mut out[..5000]);
                    let _ = fs::read_exact(&mut *fs, &n, &mut out[..n.size.min(1 << 20) as usize]);
                }
            }
        }
    }
});
