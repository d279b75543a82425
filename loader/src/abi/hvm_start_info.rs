// SPDX-License-Identifier: MIT OR Apache-2.0
//! `struct hvm_start_info` and friends, transcribed from Xen's public header
//! `xen/include/public/arch-x86/hvm/start_info.h` (MIT). All fields little-endian; an
//! address of 0 means "absent".

/// `XEN_HVM_START_MAGIC_VALUE`.
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;

/// `struct hvm_start_info` (version 1 layout; version 0 ends after `rsdp_paddr`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmStartInfo {
    pub magic: u32,
    pub version: u32,
    pub flags: u32,
    pub nr_modules: u32,
    pub modlist_paddr: u64,
    pub cmdline_paddr: u64,
    pub rsdp_paddr: u64,
    /// Version >= 1.
    pub memmap_paddr: u64,
    /// Version >= 1; must be checked for non-zero.
    pub memmap_entries: u32,
    pub reserved: u32,
}
const _: () = assert!(core::mem::size_of::<HvmStartInfo>() == 56);
/// Size of the version-0 structure (up to and including `rsdp_paddr`).
pub const HVM_START_INFO_V0_SIZE: usize = 40;

/// `struct hvm_modlist_entry`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmModlistEntry {
    pub paddr: u64,
    pub size: u64,
    pub cmdline_paddr: u64,
    pub reserved: u64,
}
const _: () = assert!(core::mem::size_of::<HvmModlistEntry>() == 32);

/// `struct hvm_memmap_table_entry`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmMemmapTableEntry {
    pub addr: u64,
    pub size: u64,
    /// `XEN_HVM_MEMMAP_TYPE_*` (= e820 types).
    pub kind: u32,
    pub reserved: u32,
}
const _: () = assert!(core::mem::size_of::<HvmMemmapTableEntry>() == 24);
