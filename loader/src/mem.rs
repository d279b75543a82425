// SPDX-License-Identifier: MIT OR Apache-2.0
//! The guest's physical memory map, and a region allocator over it.

/// e820 / hvm_memmap_entry type: usable RAM.
pub const E820_RAM: u32 = 1;
/// Reserved.
pub const E820_RESERVED: u32 = 2;
/// ACPI reclaimable.
pub const E820_ACPI: u32 = 3;
/// ACPI NVS.
pub const E820_NVS: u32 = 4;
/// Unusable.
pub const E820_UNUSABLE: u32 = 5;

/// One memory-map entry (same meaning as `hvm_memmap_table_entry` and `boot_e820_entry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}
