// SPDX-License-Identifier: MIT OR Apache-2.0
//! The x86 Linux boot protocol's `struct boot_params` (the "zero page") and
//! `struct setup_header`, as byte offsets.
//!
//! Layout facts transcribed from the kernel's `arch/x86/include/uapi/asm/bootparam.h`,
//! `Documentation/arch/x86/boot.rst` (setup header, §"The real-mode kernel header") and
//! `Documentation/arch/x86/zero-page.rst` (the rest of the zero page). The structures are
//! packed and little-endian, so rxen reads and writes them as bytes at these offsets
//! rather than as Rust structs. Every offset below is from the start of the zero page,
//! which is also the offset in a bzImage file (the setup header sits at 0x1f1 in both).

// ---------------------------------------------------------------------------------------
// struct boot_params (zero-page.rst)
// ---------------------------------------------------------------------------------------

/// Size of `struct boot_params`: one 4 KiB page.
pub const BOOT_PARAMS_SIZE: usize = 4096;

/// `acpi_rsdp_addr` (u64): physical address of the ACPI RSDP (honoured since Linux 5.0).
pub const BP_ACPI_RSDP_ADDR: usize = 0x070;
/// `ext_ramdisk_image` (u32): bits 63..32 of the initrd address.
pub const BP_EXT_RAMDISK_IMAGE: usize = 0x0c0;
/// `ext_ramdisk_size` (u32): bits 63..32 of the initrd size.
pub const BP_EXT_RAMDISK_SIZE: usize = 0x0c4;
/// `ext_cmd_line_ptr` (u32): bits 63..32 of the command line address.
pub const BP_EXT_CMD_LINE_PTR: usize = 0x0c8;
/// `e820_entries` (u8): number of valid entries in `e820_table`.
pub const BP_E820_ENTRIES: usize = 0x1e8;
/// `sentinel` (u8): must be 0. The kernel takes a non-zero value as a sign that the
/// loader copied stale bytes over the zero page and clears fields it cannot trust.
pub const BP_SENTINEL: usize = 0x1ef;
/// `hdr` (`struct setup_header`): copied from the bzImage at the same offset.
pub const BP_HDR: usize = 0x1f1;
/// `edd_mbr_sig_buffer` (u32 × 16): the first byte after the setup header's area.
pub const BP_EDD_MBR_SIG_BUFFER: usize = 0x290;
/// `e820_table` (`struct boot_e820_entry` × [`E820_MAX_ENTRIES_ZEROPAGE`]).
pub const BP_E820_TABLE: usize = 0x2d0;
/// Capacity of `e820_table` (`E820_MAX_ENTRIES_ZEROPAGE`); the rest goes to
/// `SETUP_E820_EXT` setup_data.
pub const E820_MAX_ENTRIES_ZEROPAGE: usize = 128;
/// `struct boot_e820_entry` is packed: `{ u64 addr; u64 size; u32 type; }`.
pub const E820_ENTRY_SIZE: usize = 20;
/// Offset of `addr` in a `boot_e820_entry`.
pub const E820_ENTRY_ADDR: usize = 0;
/// Offset of `size` in a `boot_e820_entry`.
pub const E820_ENTRY_SIZE_FIELD: usize = 8;
/// Offset of `type` in a `boot_e820_entry`.
pub const E820_ENTRY_TYPE: usize = 16;
/// `eddbuf`: the field after `e820_table` (table end check).
pub const BP_EDDBUF: usize = 0xd00;

const _: () = assert!(BP_E820_TABLE + E820_MAX_ENTRIES_ZEROPAGE * E820_ENTRY_SIZE <= BP_EDDBUF);
const _: () = assert!(BP_EDDBUF < BOOT_PARAMS_SIZE);

// ---------------------------------------------------------------------------------------
// struct setup_header (boot.rst, "The real-mode kernel header"); (protocol) = first
// boot protocol version defining the field.
// ---------------------------------------------------------------------------------------

/// `setup_sects` (u8): size of the real-mode setup in 512-byte sectors, not counting
/// the boot sector; 0 means 4.
pub const HDR_SETUP_SECTS: usize = 0x1f1;
/// `syssize` (u32, 2.04): size of the protected-mode code in 16-byte paragraphs.
pub const HDR_SYSSIZE: usize = 0x1f4;
/// `vid_mode` (u16): video mode; 0xffff = "normal".
pub const HDR_VID_MODE: usize = 0x1fa;
/// `boot_flag` (u16): 0xAA55.
pub const HDR_BOOT_FLAG: usize = 0x1fe;
/// `jump` (2 bytes): a short `jmp` (0xEB, rel8); 0x202 + the rel8 is the header's end.
pub const HDR_JUMP: usize = 0x200;
/// `header` (u32): the magic "HdrS".
pub const HDR_HEADER: usize = 0x202;
/// `version` (u16, 2.00): boot protocol version, major in the high byte.
pub const HDR_VERSION: usize = 0x206;
/// `type_of_loader` (u8): the boot loader's id; 0xff = undefined.
pub const HDR_TYPE_OF_LOADER: usize = 0x210;
/// `loadflags` (u8).
pub const HDR_LOADFLAGS: usize = 0x211;
/// `code32_start` (u32, 2.00): 32-bit entry = where the protected-mode code was loaded.
pub const HDR_CODE32_START: usize = 0x214;
/// `ramdisk_image` (u32): initrd address (bits 31..0).
pub const HDR_RAMDISK_IMAGE: usize = 0x218;
/// `ramdisk_size` (u32): initrd size (bits 31..0).
pub const HDR_RAMDISK_SIZE: usize = 0x21c;
/// `heap_end_ptr` (u16, 2.01).
pub const HDR_HEAP_END_PTR: usize = 0x224;
/// `cmd_line_ptr` (u32, 2.02): command line address (bits 31..0).
pub const HDR_CMD_LINE_PTR: usize = 0x228;
/// `initrd_addr_max` (u32, 2.03): highest address the initrd may occupy (its last byte).
pub const HDR_INITRD_ADDR_MAX: usize = 0x22c;
/// `kernel_alignment` (u32, 2.05): physical alignment a relocatable kernel needs.
pub const HDR_KERNEL_ALIGNMENT: usize = 0x230;
/// `relocatable_kernel` (u8, 2.05): non-zero if the kernel may be loaded anywhere
/// suitably aligned.
pub const HDR_RELOCATABLE_KERNEL: usize = 0x234;
/// `min_alignment` (u8, 2.10): log2 of the minimum alignment.
pub const HDR_MIN_ALIGNMENT: usize = 0x235;
/// `xloadflags` (u16, 2.12).
pub const HDR_XLOADFLAGS: usize = 0x236;
/// `cmdline_size` (u32, 2.06): maximum command line length, without the NUL.
pub const HDR_CMDLINE_SIZE: usize = 0x238;
/// `hardware_subarch` (u32, 2.07): 0 = normal PC.
pub const HDR_HARDWARE_SUBARCH: usize = 0x23c;
/// `hardware_subarch_data` (u64, 2.07).
pub const HDR_HARDWARE_SUBARCH_DATA: usize = 0x240;
/// `payload_offset` (u32, 2.08): compressed payload, from the protected-mode start.
pub const HDR_PAYLOAD_OFFSET: usize = 0x248;
/// `payload_length` (u32, 2.08).
pub const HDR_PAYLOAD_LENGTH: usize = 0x24c;
/// `setup_data` (u64, 2.09): physical address of the first `struct setup_data`.
pub const HDR_SETUP_DATA: usize = 0x250;
/// `pref_address` (u64, 2.10): preferred load address.
pub const HDR_PREF_ADDRESS: usize = 0x258;
/// `init_size` (u32, 2.10): bytes of contiguous memory the kernel needs from its
/// runtime start address before it can look at the memory map.
pub const HDR_INIT_SIZE: usize = 0x260;
/// `handover_offset` (u32, 2.11): EFI handover entry, from the protected-mode start.
pub const HDR_HANDOVER_OFFSET: usize = 0x264;
/// `kernel_info_offset` (u32, 2.15): `struct kernel_info`, from the protected-mode start.
pub const HDR_KERNEL_INFO_OFFSET: usize = 0x268;
/// End of the 2.15 setup header.
pub const HDR_END_2_15: usize = 0x26c;

/// "HdrS" at [`HDR_HEADER`].
pub const HDRS_MAGIC: [u8; 4] = *b"HdrS";
/// [`HDR_BOOT_FLAG`] value.
pub const BOOT_FLAG_MAGIC: u16 = 0xaa55;
/// Short `jmp` opcode at [`HDR_JUMP`].
pub const JMP_SHORT_OPCODE: u8 = 0xeb;
/// `type_of_loader` for a loader without an assigned id.
pub const LOADER_TYPE_UNDEFINED: u8 = 0xff;
/// `vid_mode` "normal" (`NORMAL_VGA`).
pub const VID_MODE_NORMAL: u16 = 0xffff;

/// `loadflags` bit 0: protected-mode code is loaded at 0x100000 or higher (bzImage).
pub const LOADED_HIGH: u8 = 1 << 0;
/// `loadflags` bit 1: set by the kernel when KASLR is enabled.
pub const KASLR_FLAG: u8 = 1 << 1;
/// `loadflags` bit 5: suppress early messages.
pub const QUIET_FLAG: u8 = 1 << 5;
/// `loadflags` bit 7: `heap_end_ptr` is valid.
pub const CAN_USE_HEAP: u8 = 1 << 7;

/// `xloadflags` bit 0: the kernel has the 64-bit entry point at load address + 0x200.
pub const XLF_KERNEL_64: u16 = 1 << 0;
/// `xloadflags` bit 1: kernel, boot_params, cmdline and initrd may be above 4 GiB.
pub const XLF_CAN_BE_LOADED_ABOVE_4G: u16 = 1 << 1;
/// `xloadflags` bit 2: 32-bit EFI handover entry.
pub const XLF_EFI_HANDOVER_32: u16 = 1 << 2;
/// `xloadflags` bit 3: 64-bit EFI handover entry.
pub const XLF_EFI_HANDOVER_64: u16 = 1 << 3;
/// `xloadflags` bit 4: EFI kexec support.
pub const XLF_EFI_KEXEC: u16 = 1 << 4;

/// Offset of the 64-bit entry point from the load address (`XLF_KERNEL_64`).
pub const ENTRY64_OFFSET: u64 = 0x200;
/// Load address of a non-relocatable bzImage without `pref_address` (< 2.10).
pub const DEFAULT_LOAD_ADDR: u64 = 0x10_0000;
/// `initrd_addr_max` of kernels older than protocol 2.03.
pub const DEFAULT_INITRD_ADDR_MAX: u32 = 0x37ff_ffff;

// ---------------------------------------------------------------------------------------
// struct setup_data (bootparam.h): a singly linked list, headed by hdr.setup_data.
// ---------------------------------------------------------------------------------------

/// `struct setup_data { u64 next; u32 type; u32 len; u8 data[]; }`: header size.
pub const SETUP_DATA_HEADER_SIZE: usize = 16;
/// Offset of `next` (physical address of the next node; 0 ends the list).
pub const SETUP_DATA_NEXT: usize = 0;
/// Offset of `type`.
pub const SETUP_DATA_TYPE: usize = 8;
/// Offset of `len` (bytes of `data`).
pub const SETUP_DATA_LEN: usize = 12;
/// `SETUP_E820_EXT`: more `boot_e820_entry`s than the zero page holds.
pub const SETUP_E820_EXT: u32 = 1;

/// Boot protocol versions (major << 8 | minor) that gate fields rxen reads or writes.
pub mod proto {
    /// Oldest protocol rxen boots: `cmdline_size`, `relocatable_kernel`.
    pub const V2_06: u16 = 0x0206;
    /// `payload_offset`/`payload_length`.
    pub const V2_08: u16 = 0x0208;
    /// `setup_data`.
    pub const V2_09: u16 = 0x0209;
    /// `pref_address`, `init_size`, `min_alignment`.
    pub const V2_10: u16 = 0x020a;
    /// `handover_offset`.
    pub const V2_11: u16 = 0x020b;
    /// `xloadflags`.
    pub const V2_12: u16 = 0x020c;
    /// `kernel_info_offset`.
    pub const V2_15: u16 = 0x020f;
}
