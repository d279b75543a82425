// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the btrfs reader: mount any bytes through the registry's btrfs driver (the
//! superblock is at 64 KiB: inputs shorter than that are placed after a zeroed head),
//! resolve the paths the loader asks for (Fedora's BLS /boot, GRUB's /@/boot among them),
//! list what is found and read (up to 1 MiB of) it, read symlinks; then the same bytes
//! as a two-device filesystem and through `open_subvol`, and as one compressed extent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::block::{BlockDevice, SparseDisk, VecDisk};
use rxen_loader::fs::btrfs::Btrfs;
use rxen_loader::fs::{Filesystem, NodeKind};

/// The input as a disk: `SPRS` then SparseDisk records (the seeds: whole mkfs.btrfs
/// images, whose chunks lie megabytes apart), else the bytes themselves.
fn disk(data: &[u8]) -> Box<dyn BlockDevice> {
    if let Some(records) = data.strip_prefix(b"SPRS") {
        return Box::new(SparseDisk::from_records(records));
    }
    let mut buf = data.to_vec();
    // Short inputs: the fuzzer's bytes are the superblock and what follows it.
    if buf.len() < 0x11000 {
        let mut head = vec![0u8; 0x10000];
        head.extend_from_slice(&buf);
        buf = head;
    }
    buf.resize(buf.len().div_ceil(512) * 512, 0);
    Box::new(VecDisk::new(buf, 512))
}

fn exercise(fs: &mut dyn Filesystem) {
    let _ = (fs.uuid(), fs.label(), fs.warnings());
    let mut out = vec![0u8; 1 << 20];
    for p in ["/", "/boot/loader/entries", "/boot/grub2/grub.cfg", "/@/boot/grub/grub.cfg", "/vmlinuz", "/links/kernel"]
    {
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
}

fuzz_target!(|data: &[u8]| {
    // The decompressors alone: the first byte picks zlib, lzo or zstd and the cap.
    if let Some((&sel, rest)) = data.split_first() {
        let cap = [4096u64, 65536, 131072][usize::from(sel >> 4) % 3];
        if let Ok(v) = rxen_loader::fs::btrfs::decompress_extent(1 + sel % 3, rest, cap, 4096) {
            assert_eq!(v.len() as u64, cap, "a decompressed extent is exactly ram_bytes long");
        }
    }
    if let Ok(mut fs) = rxen_loader::fs::btrfs::mount(disk(data)) {
        exercise(&mut *fs);
    }
    let two: Vec<Box<dyn BlockDevice>> = vec![disk(data), disk(data)];
    let _ = Btrfs::open_multi(two);
    let one: Box<dyn BlockDevice> = disk(data);
    if let Ok(mut b) = Btrfs::open(one) {
        for sel in ["5", "256", "/@", "/root"] {
            if b.open_subvol(sel).is_ok() {
                let mut fs: Box<dyn Filesystem> = Box::new(b);
                exercise(&mut *fs);
                return;
            }
        }
    }
});
