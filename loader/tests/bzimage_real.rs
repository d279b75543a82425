// SPDX-License-Identifier: MIT OR Apache-2.0
//! The bzImage parser and boot_params builder against a real kernel: Debian's 6.1
//! x86_64 `vmlinuz`, cached by `scripts/fetch-kernel` (CI runs it before the tests).

use std::path::PathBuf;

use rxen_loader::abi::boot_params::*;
use rxen_loader::handoff::boot_params::{BootParamsConfig, build, kernel_placement};
use rxen_loader::kernel::{Kernel, KernelError, bzimage, detect};
use rxen_loader::mem::{E820_RAM, E820_RESERVED, E820Entry};

fn kernel_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/kernel/vmlinuz")
}

fn real_kernel() -> Vec<u8> {
    let p = kernel_path();
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}: run scripts/fetch-kernel first", p.display()))
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

#[test]
fn debian_header() {
    let img = real_kernel();
    let k = bzimage::parse(&img).expect("Debian's kernel parses");
    assert!(k.version() >= 0x020f, "protocol {:#x}", k.version());
    assert!(k.supports_64bit_entry());
    assert!(k.can_be_loaded_above_4g());
    assert!(k.relocatable());
    assert_eq!(k.pref_address(), 0x100_0000);
    assert!(u64::from(k.init_size()) > img.len() as u64, "init_size {:#x}", k.init_size());
    assert!(k.kernel_alignment().is_power_of_two());
    assert_eq!(k.cmdline_size(), 0x7ff);
    assert_eq!(k.header_end(), HDR_END_2_15);
    assert_eq!(k.setup_bytes().len() + k.protected_mode().len(), img.len());
    assert!(u64::from(k.syssize()) * 16 <= k.protected_mode().len() as u64);
    assert!(k.payload().is_some());
    assert_eq!(kernel_placement(&k), (0x100_0000, u64::from(k.kernel_alignment()), u64::from(k.init_size()), true));
    eprintln!("{k}");
}

#[test]
fn debian_boot_params() {
    let img = real_kernel();
    let k = bzimage::parse(&img).unwrap();
    let map = [
        E820Entry { addr: 0, size: 0x9_fc00, kind: E820_RAM },
        E820Entry { addr: 0xf_0000, size: 0x1_0000, kind: E820_RESERVED },
        E820Entry { addr: 0x10_0000, size: 0x3ff0_0000, kind: E820_RAM },
    ];
    let bp = build(&BootParamsConfig {
        kernel: &k,
        load_addr: 0x100_0000,
        e820: &map,
        cmdline_paddr: 0x2_0000,
        cmdline_len: 40,
        initrd: Some((0x3800_0000, 0x40_0000)),
        rsdp_paddr: 0xf_ffe0,
        setup_data_paddr: 0,
    })
    .unwrap();
    let p = &bp.zero_page[..];
    // The fields the loader fills...
    let written = [
        (HDR_VID_MODE, 2),
        (HDR_TYPE_OF_LOADER, 1),
        (HDR_LOADFLAGS, 1),
        (HDR_CODE32_START, 4),
        (HDR_RAMDISK_IMAGE, 8),
        (HDR_CMD_LINE_PTR, 4),
        (HDR_HARDWARE_SUBARCH, 12),
        (HDR_SETUP_DATA, 8),
    ];
    assert_eq!(p[HDR_TYPE_OF_LOADER], 0xff);
    assert_eq!(p[HDR_LOADFLAGS], img[HDR_LOADFLAGS] | LOADED_HIGH);
    assert_eq!(le32(p, HDR_CODE32_START), 0x100_0000);
    assert_eq!(le32(p, HDR_RAMDISK_IMAGE), 0x3800_0000);
    assert_eq!(le32(p, HDR_RAMDISK_SIZE), 0x40_0000);
    assert_eq!(le32(p, HDR_CMD_LINE_PTR), 0x2_0000);
    assert_eq!(p[BP_E820_ENTRIES], 3);
    // ...and every other header byte is the kernel's own, from 0x1f1 to the header's end.
    for off in BP_HDR..k.header_end() {
        if !written.iter().any(|&(s, l)| (s..s + l).contains(&off)) {
            assert_eq!(p[off], img[off], "setup header byte {off:#x}");
        }
    }
    assert_eq!(&p[BP_HDR..HDR_VID_MODE], &img[BP_HDR..HDR_VID_MODE]);
    assert_eq!(&p[HDR_BOOT_FLAG..HDR_TYPE_OF_LOADER], &img[HDR_BOOT_FLAG..HDR_TYPE_OF_LOADER]);
    assert_eq!(&p[HDR_INITRD_ADDR_MAX..HDR_HARDWARE_SUBARCH], &img[HDR_INITRD_ADDR_MAX..HDR_HARDWARE_SUBARCH]);
    assert_eq!(&p[HDR_PREF_ADDRESS..HDR_END_2_15], &img[HDR_PREF_ADDRESS..HDR_END_2_15]);
}

#[test]
fn detect_real_files() {
    let img = real_kernel();
    match detect(&img) {
        Ok(Kernel::BzImage(k)) => {
            let s = Kernel::BzImage(k).to_string();
            assert!(s.starts_with("bzImage protocol 2."), "{s}");
            assert!(s.contains("64-bit entry, relocatable, pref_address 0x1000000"), "{s}");
        }
        other => panic!("Debian's vmlinuz detected as {other:?}"),
    }
    // An ordinary x86 ELF executable (this test binary) is an ELF but not a PVH kernel.
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert_eq!(detect(&exe).unwrap_err(), KernelError::ElfNoPhys32Entry);
    // A text file is neither.
    assert_eq!(detect(b"#!/bin/sh\necho not a kernel\n").unwrap_err(), KernelError::Unrecognized);
    if let Ok(text) = std::fs::read("/usr/lib/os-release") {
        assert_eq!(detect(&text).unwrap_err(), KernelError::Unrecognized);
    }
}
