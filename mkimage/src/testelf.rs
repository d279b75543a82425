// SPDX-License-Identifier: MIT OR Apache-2.0
//! Synthetic inputs for tests: a minimal loader ELF shaped like `pvh-boot` and a minimal
//! bzImage that `rxen_loader::kernel::detect` accepts. Not part of the tool's interface.

use rxen_memdisk::{HEADER_PADDR, ImageHeader};

/// File offset of the program header table in [`loader_elf`].
pub const PHOFF: usize = 64;
/// File offset of the `PT_LOAD` segment (and of the image header) in [`loader_elf`].
pub const HEADER_OFFSET: usize = 0x1000;
/// Entry point (`e_entry` and `XEN_ELFNOTE_PHYS32_ENTRY`) of [`loader_elf`].
pub const ENTRY: u64 = HEADER_PADDR + 0x80;
/// `p_memsz` of the loader's `PT_LOAD`: file bytes plus a `.bss`.
pub const LOAD_MEMSZ: u64 = 0x3000;

const NOTE_OFF: usize = 0x60;
const CODE_OFF: usize = 0x80;
const SEG_FILESZ: usize = 0x90;

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

#[allow(clippy::too_many_arguments)]
fn phdr(b: &mut [u8], off: usize, ty: u32, flags: u32, offset: u64, paddr: u64, filesz: u64, memsz: u64, align: u64) {
    put(b, off, &ty.to_le_bytes());
    put(b, off + 4, &flags.to_le_bytes());
    put(b, off + 8, &offset.to_le_bytes());
    put(b, off + 16, &paddr.to_le_bytes());
    put(b, off + 24, &paddr.to_le_bytes());
    put(b, off + 32, &filesz.to_le_bytes());
    put(b, off + 40, &memsz.to_le_bytes());
    put(b, off + 48, &align.to_le_bytes());
}

#[allow(clippy::too_many_arguments)]
fn shdr(b: &mut [u8], off: usize, name: u32, ty: u32, flags: u64, addr: u64, offset: u64, size: u64, align: u64) {
    put(b, off, &name.to_le_bytes());
    put(b, off + 4, &ty.to_le_bytes());
    put(b, off + 8, &flags.to_le_bytes());
    put(b, off + 16, &addr.to_le_bytes());
    put(b, off + 24, &offset.to_le_bytes());
    put(b, off + 32, &size.to_le_bytes());
    put(b, off + 48, &align.to_le_bytes());
}

/// A minimal `pvh-boot` look-alike: ELF64 x86_64 ET_EXEC; one RWX `PT_LOAD` at physical
/// 0x100000 (file offset 0x1000) starting with [`ImageHeader::EMPTY`], then a "Xen" note of
/// type 18 (PHYS32_ENTRY = [`ENTRY`]) covered by a `PT_NOTE`, then `hlt; jmp .-1`, and a
/// `.bss` (memsz [`LOAD_MEMSZ`]); section headers (`.text`, `.shstrtab`) at the end.
pub fn loader_elf() -> Vec<u8> {
    let shstrtab: &[u8] = b"\0.text\0.shstrtab\0";
    let shstr_off = HEADER_OFFSET + SEG_FILESZ;
    let shoff = (shstr_off + shstrtab.len()).next_multiple_of(8);
    let mut b = vec![0u8; shoff + 3 * 64];

    // ELF header.
    put(&mut b, 0, b"\x7fELF");
    b[4] = 2; // ELFCLASS64
    b[5] = 1; // ELFDATA2LSB
    b[6] = 1; // EV_CURRENT
    put(&mut b, 16, &2u16.to_le_bytes()); // ET_EXEC
    put(&mut b, 18, &62u16.to_le_bytes()); // EM_X86_64
    put(&mut b, 20, &1u32.to_le_bytes());
    put(&mut b, 24, &ENTRY.to_le_bytes());
    put(&mut b, 32, &(PHOFF as u64).to_le_bytes());
    put(&mut b, 40, &(shoff as u64).to_le_bytes());
    put(&mut b, 52, &64u16.to_le_bytes()); // e_ehsize
    put(&mut b, 54, &56u16.to_le_bytes()); // e_phentsize
    put(&mut b, 56, &2u16.to_le_bytes()); // e_phnum
    put(&mut b, 58, &64u16.to_le_bytes()); // e_shentsize
    put(&mut b, 60, &3u16.to_le_bytes()); // e_shnum
    put(&mut b, 62, &2u16.to_le_bytes()); // e_shstrndx

    // Program headers.
    let seg = HEADER_OFFSET as u64;
    phdr(&mut b, PHOFF, 1, 7, seg, HEADER_PADDR, SEG_FILESZ as u64, LOAD_MEMSZ, 0x1000);
    phdr(&mut b, PHOFF + 56, 4, 4, seg + NOTE_OFF as u64, HEADER_PADDR + NOTE_OFF as u64, 20, 20, 4);

    // The segment: header, note, code.
    put(&mut b, HEADER_OFFSET, &ImageHeader::EMPTY.to_bytes());
    let n = HEADER_OFFSET + NOTE_OFF;
    put(&mut b, n, &4u32.to_le_bytes());
    put(&mut b, n + 4, &4u32.to_le_bytes());
    put(&mut b, n + 8, &18u32.to_le_bytes());
    put(&mut b, n + 12, b"Xen\0");
    put(&mut b, n + 16, &(ENTRY as u32).to_le_bytes());
    put(&mut b, HEADER_OFFSET + CODE_OFF, &[0xf4, 0xeb, 0xfd]);

    // Section headers: null, .text, .shstrtab.
    put(&mut b, shstr_off, shstrtab);
    shdr(&mut b, shoff + 64, 1, 1, 6, HEADER_PADDR, seg, SEG_FILESZ as u64, 16);
    shdr(&mut b, shoff + 128, 7, 3, 0, 0, shstr_off as u64, shstrtab.len() as u64, 1);
    b
}

/// A minimal bzImage (boot protocol 2.15, LOADED_HIGH, 4 setup sectors) with `pm_len`
/// bytes of protected-mode "kernel" (rounded up to 16) filled from `seed`.
pub fn bzimage(pm_len: usize, seed: u8) -> Vec<u8> {
    let pm_len = pm_len.next_multiple_of(16);
    let setup_sects = 4u8;
    let setup = (usize::from(setup_sects) + 1) * 512;
    let mut b = vec![0u8; setup + pm_len];
    for (i, x) in b[setup..].iter_mut().enumerate() {
        *x = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    b[0x1f1] = setup_sects;
    put(&mut b, 0x1f4, &((pm_len / 16) as u32).to_le_bytes()); // syssize
    put(&mut b, 0x1fe, &0xaa55u16.to_le_bytes()); // boot_flag
    put(&mut b, 0x200, &[0xeb, (0x26c - 0x202) as u8]); // jmp over the header
    put(&mut b, 0x202, b"HdrS");
    put(&mut b, 0x206, &0x020fu16.to_le_bytes()); // version 2.15
    b[0x211] = 1; // loadflags: LOADED_HIGH
    put(&mut b, 0x214, &0x10_0000u32.to_le_bytes()); // code32_start
    put(&mut b, 0x22c, &0x7fff_ffffu32.to_le_bytes()); // initrd_addr_max
    put(&mut b, 0x230, &0x20_0000u32.to_le_bytes()); // kernel_alignment
    b[0x234] = 1; // relocatable_kernel
    put(&mut b, 0x236, &3u16.to_le_bytes()); // xloadflags: KERNEL_64 | CAN_BE_LOADED_ABOVE_4G
    put(&mut b, 0x238, &0x7ffu32.to_le_bytes()); // cmdline_size
    put(&mut b, 0x258, &0x100_0000u64.to_le_bytes()); // pref_address
    put(&mut b, 0x260, &0x2_0000u32.to_le_bytes()); // init_size
    b
}
