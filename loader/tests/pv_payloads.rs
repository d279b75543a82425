// SPDX-License-Identifier: MIT OR Apache-2.0
//! pv-boot's path for a kernel file, on real kernels: Debian 12's bzImage with its payload
//! rebuilt in every format Xen's domain builder reads (scripts/recompress-kernel, into
//! .cache/pv-payloads) and Debian 13's own (zstd; scripts/fetch-kernel-trixie). Each must
//! decompress to exactly the vmlinux the C tools produce, parse as a PV kernel, lay out in
//! a 256 MiB domain, and a payload cut in half must fail naming its format.

use std::path::PathBuf;

use rxen_loader::handoff::pv::{PvLayoutInput, layout};
use rxen_loader::kernel::KernelError;
use rxen_loader::kernel::bzimage;
use rxen_loader::kernel::pv::{parse_pv, pv_kernel_image, pv_output_size};

fn cache(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache").join(p)
}

fn read(p: &str) -> Vec<u8> {
    let p = cache(p);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!("{}: {e}: scripts/test makes it (scripts/recompress-kernel, scripts/fetch-kernel-trixie)", p.display())
    })
}

/// Decompress `file`'s payload as pv-boot does; check the PV kernel it holds.
fn check(file: &[u8], format: &str) -> Vec<u8> {
    let bz = bzimage::parse(file).expect("bzImage");
    assert_eq!(bz.payload_format().map(|f| f.name()), Some(format));
    let mut out = vec![0u8; pv_output_size(&bz)];
    let n = pv_kernel_image(file, &mut out).unwrap_or_else(|e| panic!("{format}: {e}")).len();
    out.truncate(n);
    let elf = parse_pv(&out).unwrap_or_else(|e| panic!("{format}: {e}"));
    assert_eq!(elf.virt_base, 0xffff_ffff_8000_0000);
    assert_eq!(elf.guest_os, "linux");
    let input = PvLayoutInput { elf: &elf, initrd_len: 32 << 20, nr_pages: 65536, cmdline: "", trampoline_pfn: 0x180 };
    let l = layout(&input).unwrap_or_else(|e| panic!("{format}: {e}"));
    assert_eq!(l.kernel_pfn, 0x1000);
    out
}

#[test]
fn every_format_gives_back_the_same_vmlinux() {
    let vmlinux = read("pv-payloads/vmlinux");
    for f in ["gzip", "bzip2", "xz", "lzma", "lzo", "lz4", "zstd"] {
        let file = read(&format!("pv-payloads/vmlinuz.{}", f));
        let name = if f == "lzo" { "lzop" } else { f };
        let got = check(&file, name);
        assert!(got == vmlinux, "{f}: {} bytes, not the {} bytes of vmlinux", got.len(), vmlinux.len());
        // Half the payload: an error that names the format, never a panic.
        let bz = bzimage::parse(&file).unwrap();
        let pm = file.len() - bz.protected_mode().len();
        let (off, len) = (bz.payload_offset() as usize, bz.payload_length() as usize);
        let mut cut = file.clone();
        let half = pm + off + len / 2;
        cut[half..pm + off + len].fill(0);
        let mut out = vec![0u8; 80 << 20];
        match pv_kernel_image(&cut, &mut out) {
            Err(KernelError::PvPayload(e)) => assert_eq!(e.format, name, "{e}"),
            Err(e) => panic!("{f}: cut payload: {e}"),
            Ok(_) => panic!("{f}: a payload zeroed from its middle decompressed"),
        }
    }
}

#[test]
fn debian_13_zstd_kernel() {
    let file = read("kernel-trixie/vmlinuz");
    let elf = check(&file, "zstd");
    assert!(elf.len() > 30 << 20);
}

#[test]
fn working_memory_of_real_payloads() {
    use rxen_loader::kernel::decompress::working_memory;
    let file = read("kernel-trixie/vmlinuz");
    let bz = bzimage::parse(&file).unwrap();
    let need = working_memory(bz.payload_format().unwrap(), bz.payload().unwrap(), pv_output_size(&bz) as u64);
    println!("trixie zstd: {} MiB", need >> 20);
    assert!(need >= 128 << 20, "ruzstd keeps the 128 MiB window: {need}");
    let file = read("pv-payloads/vmlinuz.lzma");
    let bz = bzimage::parse(&file).unwrap();
    let need = working_memory(bz.payload_format().unwrap(), bz.payload().unwrap(), pv_output_size(&bz) as u64);
    println!("lzma: {} MiB", need >> 20);
    assert!(need >= 64 << 20);
}
