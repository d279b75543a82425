// SPDX-License-Identifier: MIT OR Apache-2.0
//! The multiboot (version 1) information structure a multiboot kernel finds at `%ebx`
//! (Multiboot Specification 0.6.96, section 3.3), built with the `multiboot` crate: the
//! memory bounds and the memory map (from the domain's e820), the command line, the
//! modules, and the loader's name. Everything lives in one blob placed at one physical
//! address below 4 GiB: the structure first, then what it points at.

use alloc::vec::Vec;

use multiboot::information::{MemoryEntry, MemoryManagement, MemoryType, Module, Multiboot, MultibootInfo, PAddr};

use crate::mem::{E820_ACPI, E820_NVS, E820_RAM, E820_UNUSABLE, E820Entry};

/// The fixed part (`struct multiboot_info`).
pub const INFO_LEN: usize = 120;
const _: () = assert!(core::mem::size_of::<MultibootInfo>() == INFO_LEN);
const ENTRY_LEN: usize = 24;
const _: () = assert!(core::mem::size_of::<MemoryEntry>() == ENTRY_LEN);

/// A bump allocator over the blob after the fixed part: what the crate allocates
/// (strings, the module array) gets the blob's physical address. 8-byte aligned, because
/// the crate writes its module array through a typed pointer.
struct Blob {
    base: u64,
    /// u64 words, so the storage itself is 8-byte aligned.
    words: Vec<u64>,
    used: usize,
}

impl Blob {
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: u64 storage seen as bytes: every bit pattern is a valid u8, the length
        // is the storage's size in bytes, and the borrow of `self.words` is exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.words.len() * 8) }
    }
    /// `len` bytes: their physical address and offset. The storage never grows (the
    /// crate writes through a slice it got earlier while it allocates the next one), so
    /// `build_info` sizes it for everything first; `None` past that.
    fn take(&mut self, len: usize) -> Option<(u64, usize)> {
        let at = self.used;
        let end = (at + len).next_multiple_of(8);
        if end > self.words.len() * 8 {
            return None;
        }
        self.used = end;
        Some((self.base + at as u64, at))
    }
}

impl MemoryManagement for Blob {
    unsafe fn paddr_to_slice(&self, _addr: PAddr, _length: usize) -> Option<&'static [u8]> {
        // Only ever written: nothing is read back through physical addresses.
        None
    }
    unsafe fn allocate(&mut self, length: usize) -> Option<(PAddr, &mut [u8])> {
        let (paddr, at) = self.take(length)?;
        Some((paddr, &mut self.bytes()[at..at + length]))
    }
    unsafe fn deallocate(&mut self, _addr: PAddr) {
        // A bump allocator: the crate frees only what a second `set_*` call replaces,
        // and each is called once.
    }
}

fn memory_type(kind: u32) -> MemoryType {
    match kind {
        E820_RAM => MemoryType::Available,
        E820_ACPI => MemoryType::ACPI,
        E820_NVS => MemoryType::NVS,
        E820_UNUSABLE => MemoryType::Defect,
        _ => MemoryType::Reserved,
    }
}

/// `mem_lower` and `mem_upper` in KiB: RAM from 0 (at most 640 KiB) and the RAM run that
/// starts at 1 MiB (contiguous entries merged; capped to what fits 32 bits).
pub fn memory_bounds(e820: &[E820Entry]) -> (u32, u32) {
    let ram = |e: &&E820Entry| e.kind == E820_RAM;
    let lower = e820.iter().filter(ram).find(|e| e.addr == 0).map_or(0, |e| e.size.min(640 << 10) >> 10);
    let mut end = 0x10_0000u64;
    // Extend through adjacent or overlapping RAM entries (a map may split one run).
    for _ in 0..e820.len() {
        match e820.iter().filter(ram).find(|e| e.addr <= end && e.addr.saturating_add(e.size) > end) {
            Some(e) => end = e.addr.saturating_add(e.size),
            None => break,
        }
    }
    let upper = ((end - 0x10_0000) >> 10).min(u64::from(u32::MAX));
    (lower as u32, upper as u32)
}

/// The information structure to be placed at `paddr`, with `modules` as
/// `(start, end, name)`; its bytes. Call once with any address to learn the length (it
/// does not depend on the address).
pub fn build_info(paddr: u64, cmdline: &str, modules: &[(u64, u64, &str)], e820: &[E820Entry]) -> Vec<u8> {
    const NAME: &str = concat!("rxen ", env!("CARGO_PKG_VERSION"));
    // Everything the structure points at, each piece rounded up to 8 bytes: the map, the
    // command line, the name, the module array (16 bytes a module) and the modules' names.
    let pieces = [e820.len() * ENTRY_LEN, cmdline.len() + 1, NAME.len() + 1, modules.len() * 16];
    let len = INFO_LEN
        + pieces.iter().map(|n| n.next_multiple_of(8)).sum::<usize>()
        + modules.iter().map(|m| (m.2.len() + 1).next_multiple_of(8)).sum::<usize>();
    let mut blob = Blob { base: paddr, words: alloc::vec![0; len / 8], used: INFO_LEN };
    // The memory map first, as the crate takes it: an address and a count.
    let (mmap_paddr, mmap_at) = blob.take(e820.len() * ENTRY_LEN).expect("sized above");
    for (i, e) in e820.iter().enumerate() {
        let entry = MemoryEntry::new(e.addr, e.size, memory_type(e.kind));
        // SAFETY: MemoryEntry is repr(C, packed) of four integers: no padding, every byte
        // initialised; reading it as ENTRY_LEN bytes (asserted above) is sound.
        let bytes: [u8; ENTRY_LEN] = unsafe { core::mem::transmute(entry) };
        blob.bytes()[mmap_at + i * ENTRY_LEN..][..ENTRY_LEN].copy_from_slice(&bytes);
    }
    // SAFETY: MultibootInfo is repr(C) of integers and unions of integers: all zeros is a
    // valid value, and zeroing it first also gives its padding bytes a defined value, so
    // the byte copy below reads only initialised memory (it is never moved meanwhile).
    let mut info: MultibootInfo = unsafe { core::mem::MaybeUninit::zeroed().assume_init() };
    {
        let mut mb = Multiboot::from_ref(&mut info, &mut blob);
        mb.set_memory_bounds(Some(memory_bounds(e820)));
        mb.set_command_line(Some(cmdline));
        let mods: Vec<Module> = modules.iter().map(|&(s, e, n)| Module::new(s, e, Some(n))).collect();
        mb.set_modules(if mods.is_empty() { None } else { Some(&mods) });
        mb.set_memory_regions(Some((mmap_paddr, e820.len())));
        mb.set_boot_loader_name(Some(NAME));
    }
    // SAFETY: `info` is a live, fully initialised (zeroed, then written field by field)
    // value of INFO_LEN bytes (asserted above); it is read as bytes only.
    let head = unsafe { core::slice::from_raw_parts((&raw const info).cast::<u8>(), INFO_LEN) };
    debug_assert_eq!(blob.used, len);
    let bytes = blob.bytes();
    bytes[..INFO_LEN].copy_from_slice(head);
    bytes.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::E820_RESERVED;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn cstr(b: &[u8], base: u64, paddr: u32) -> &str {
        let at = (u64::from(paddr) - base) as usize;
        let end = b[at..].iter().position(|&c| c == 0).unwrap();
        core::str::from_utf8(&b[at..at + end]).unwrap()
    }

    #[test]
    fn the_structure_points_inside_itself() {
        let e820 = [
            E820Entry { addr: 0, size: 0x9fc00, kind: E820_RAM },
            E820Entry { addr: 0xf0000, size: 0x10000, kind: E820_RESERVED },
            E820Entry { addr: 0x10_0000, size: 0x1ff0_0000, kind: E820_RAM },
        ];
        let base = 0x7ff_0000;
        let b = build_info(base, "console=ttyS0 mb=1", &[(0x600_0000, 0x600_0010, "/boot/mod0")], &e820);
        assert_eq!(
            b.len(),
            build_info(0, "console=ttyS0 mb=1", &[(0x600_0000, 0x600_0010, "/boot/mod0")], &e820).len()
        );
        let flags = u32_at(&b, 0);
        // mem_*, cmdline, mods, mmap, boot_loader_name.
        assert_eq!(flags, 1 | 1 << 2 | 1 << 3 | 1 << 6 | 1 << 9, "{flags:#x}");
        assert_eq!(u32_at(&b, 4), 639, "mem_lower");
        assert_eq!(u32_at(&b, 8), 0x1ff0_0000 >> 10, "mem_upper");
        assert_eq!(cstr(&b, base, u32_at(&b, 16)), "console=ttyS0 mb=1");
        assert_eq!(u32_at(&b, 20), 1, "mods_count");
        let m = (u64::from(u32_at(&b, 24)) - base) as usize;
        assert_eq!((u32_at(&b, m), u32_at(&b, m + 4)), (0x600_0000, 0x600_0010));
        assert_eq!(cstr(&b, base, u32_at(&b, m + 8)), "/boot/mod0");
        assert_eq!(u32_at(&b, 44), 3 * 24, "mmap_length");
        let mm = (u64::from(u32_at(&b, 48)) - base) as usize;
        // The second entry: size 20, base 0xf0000, length 0x10000, type 2.
        let e = &b[mm + 24..mm + 48];
        assert_eq!(u32_at(e, 0), 20);
        assert_eq!(u64::from_le_bytes(e[4..12].try_into().unwrap()), 0xf0000);
        assert_eq!(u64::from_le_bytes(e[12..20].try_into().unwrap()), 0x10000);
        assert_eq!(u32_at(e, 20), 2);
        assert!(cstr(&b, base, u32_at(&b, 64)).starts_with("rxen "));
    }

    #[test]
    fn no_modules_no_mods_flag_and_split_ram_runs_merge() {
        let e820 = [
            E820Entry { addr: 0x10_0000, size: 0x10_0000, kind: E820_RAM },
            E820Entry { addr: 0x20_0000, size: 0x20_0000, kind: E820_RAM },
        ];
        let b = build_info(0x1000, "", &[], &e820);
        assert_eq!(u32_at(&b, 0) & 1 << 3, 0);
        assert_eq!(memory_bounds(&e820), (0, 0x30_0000 >> 10));
    }
}
