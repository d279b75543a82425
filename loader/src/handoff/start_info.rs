// SPDX-License-Identifier: MIT OR Apache-2.0
//! A fresh `hvm_start_info` (version 1) for a PVH ELF kernel: the start info, its module
//! list, memory map and command line in one contiguous blob, every pointer in it
//! absolute for the address the blob will be copied to.

use alloc::vec::Vec;

use crate::abi::hvm_start_info::{HvmMemmapTableEntry, HvmModlistEntry, HvmStartInfo, XEN_HVM_START_MAGIC_VALUE};
use crate::mem::E820Entry;

const SI_SIZE: usize = core::mem::size_of::<HvmStartInfo>();
const MOD_SIZE: usize = core::mem::size_of::<HvmModlistEntry>();
const MAP_SIZE: usize = core::mem::size_of::<HvmMemmapTableEntry>();

fn align8(n: usize) -> usize {
    n.saturating_add(7) & !7
}

fn pad8(v: &mut Vec<u8>) {
    v.resize(align8(v.len()), 0);
}

/// Build the blob for `base_paddr`: `HvmStartInfo` (version 1), then the module list
/// (`modules` as `(paddr, size)`, no per-module command lines), the memory map and the
/// NUL-terminated `cmdline`, each 8-byte aligned. An empty list gets a 0 pointer.
///
/// The blob's size does not depend on `base_paddr`, so a caller can size it with a
/// placeholder address first. Addresses wrap rather than panic if `base_paddr` is absurd.
pub fn build_start_info(
    base_paddr: u64,
    cmdline: &str,
    modules: &[(u64, u64)],
    memmap: &[E820Entry],
    rsdp_paddr: u64,
) -> Vec<u8> {
    let mod_off = align8(SI_SIZE);
    let map_off = align8(mod_off.saturating_add(modules.len().saturating_mul(MOD_SIZE)));
    let cmd_off = align8(map_off.saturating_add(memmap.len().saturating_mul(MAP_SIZE)));
    let at = |off: usize| base_paddr.wrapping_add(off as u64);

    let si = HvmStartInfo {
        magic: XEN_HVM_START_MAGIC_VALUE,
        version: 1,
        flags: 0,
        nr_modules: modules.len() as u32,
        modlist_paddr: if modules.is_empty() { 0 } else { at(mod_off) },
        cmdline_paddr: at(cmd_off),
        rsdp_paddr,
        memmap_paddr: if memmap.is_empty() { 0 } else { at(map_off) },
        memmap_entries: memmap.len() as u32,
        reserved: 0,
    };
    let mut b = Vec::with_capacity(align8(cmd_off.saturating_add(cmdline.len()).saturating_add(1)));
    b.extend_from_slice(&si.magic.to_le_bytes());
    b.extend_from_slice(&si.version.to_le_bytes());
    b.extend_from_slice(&si.flags.to_le_bytes());
    b.extend_from_slice(&si.nr_modules.to_le_bytes());
    b.extend_from_slice(&si.modlist_paddr.to_le_bytes());
    b.extend_from_slice(&si.cmdline_paddr.to_le_bytes());
    b.extend_from_slice(&si.rsdp_paddr.to_le_bytes());
    b.extend_from_slice(&si.memmap_paddr.to_le_bytes());
    b.extend_from_slice(&si.memmap_entries.to_le_bytes());
    b.extend_from_slice(&si.reserved.to_le_bytes());
    debug_assert_eq!(b.len(), SI_SIZE);
    pad8(&mut b);

    for &(paddr, size) in modules {
        let m = HvmModlistEntry { paddr, size, cmdline_paddr: 0, reserved: 0 };
        for v in [m.paddr, m.size, m.cmdline_paddr, m.reserved] {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    pad8(&mut b);

    for e in memmap {
        let m = HvmMemmapTableEntry { addr: e.addr, size: e.size, kind: e.kind, reserved: 0 };
        b.extend_from_slice(&m.addr.to_le_bytes());
        b.extend_from_slice(&m.size.to_le_bytes());
        b.extend_from_slice(&m.kind.to_le_bytes());
        b.extend_from_slice(&m.reserved.to_le_bytes());
    }
    pad8(&mut b);

    debug_assert_eq!(b.len(), cmd_off);
    b.extend_from_slice(cmdline.as_bytes());
    b.push(0);
    pad8(&mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{E820_RAM, E820_RESERVED};
    use alloc::vec;

    fn u32_at(p: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(p[o..o + 4].try_into().unwrap())
    }
    fn u64_at(p: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(p[o..o + 8].try_into().unwrap())
    }

    /// Read the blob back as a kernel would, following its pointers.
    fn parse(base: u64, b: &[u8]) -> (HvmStartInfo, Vec<HvmModlistEntry>, Vec<HvmMemmapTableEntry>, Vec<u8>) {
        let si = HvmStartInfo {
            magic: u32_at(b, 0),
            version: u32_at(b, 4),
            flags: u32_at(b, 8),
            nr_modules: u32_at(b, 12),
            modlist_paddr: u64_at(b, 16),
            cmdline_paddr: u64_at(b, 24),
            rsdp_paddr: u64_at(b, 32),
            memmap_paddr: u64_at(b, 40),
            memmap_entries: u32_at(b, 48),
            reserved: u32_at(b, 52),
        };
        let off = |p: u64| {
            assert_eq!(p % 8, 0, "8-aligned");
            (p - base) as usize
        };
        let mods = (0..si.nr_modules as usize)
            .map(|i| {
                let o = off(si.modlist_paddr) + i * 32;
                HvmModlistEntry {
                    paddr: u64_at(b, o),
                    size: u64_at(b, o + 8),
                    cmdline_paddr: u64_at(b, o + 16),
                    reserved: u64_at(b, o + 24),
                }
            })
            .collect();
        let map = (0..si.memmap_entries as usize)
            .map(|i| {
                let o = off(si.memmap_paddr) + i * 24;
                HvmMemmapTableEntry {
                    addr: u64_at(b, o),
                    size: u64_at(b, o + 8),
                    kind: u32_at(b, o + 16),
                    reserved: u32_at(b, o + 20),
                }
            })
            .collect();
        let c = &b[off(si.cmdline_paddr)..];
        let nul = c.iter().position(|&x| x == 0).expect("NUL-terminated");
        (si, mods, map, c[..nul].to_vec())
    }

    #[test]
    fn round_trip() {
        let base = 0x7fe0_0000;
        let map = vec![
            E820Entry { addr: 0, size: 0xa_0000, kind: E820_RAM },
            E820Entry { addr: 0xf_0000, size: 0x1_0000, kind: E820_RESERVED },
            E820Entry { addr: 0x10_0000, size: 0x7ff0_0000, kind: E820_RAM },
        ];
        let mods = [(0x7000_0000u64, 0x12_3457u64)];
        let blob = build_start_info(base, "console=hvc0 root=/dev/xvda1", &mods, &map, 0xf_a000);
        assert_eq!(blob.len() % 8, 0);
        let (si, m, mm, cmd) = parse(base, &blob);
        assert_eq!(si.magic, XEN_HVM_START_MAGIC_VALUE);
        assert_eq!(si.version, 1);
        assert_eq!(si.flags, 0);
        assert_eq!(si.rsdp_paddr, 0xf_a000);
        assert_eq!(si.reserved, 0);
        assert_eq!(m, vec![HvmModlistEntry { paddr: 0x7000_0000, size: 0x12_3457, cmdline_paddr: 0, reserved: 0 }]);
        assert_eq!(mm.len(), 3);
        for (a, b) in mm.iter().zip(&map) {
            assert_eq!((a.addr, a.size, a.kind, a.reserved), (b.addr, b.size, b.kind, 0));
        }
        assert_eq!(cmd, b"console=hvc0 root=/dev/xvda1");
        // Pointers lie inside the blob, in order.
        assert_eq!(si.modlist_paddr, base + 56);
        assert_eq!(si.memmap_paddr, base + 56 + 32);
        assert_eq!(si.cmdline_paddr, base + 56 + 32 + 3 * 24);
    }

    #[test]
    fn empty_lists_are_null_and_size_is_address_independent() {
        let blob = build_start_info(0x1000, "", &[], &[], 0);
        let (si, m, mm, cmd) = parse(0x1000, &blob);
        assert_eq!((si.nr_modules, si.modlist_paddr, si.memmap_entries, si.memmap_paddr), (0, 0, 0, 0));
        assert!(m.is_empty() && mm.is_empty() && cmd.is_empty());
        assert_eq!(si.cmdline_paddr, 0x1000 + 56);
        assert_eq!(blob.len(), 64);
        let map = [E820Entry { addr: 0, size: 1, kind: 1 }];
        assert_eq!(
            build_start_info(0, "abc", &[(0, 0)], &map, 0).len(),
            build_start_info(0xdead_b000, "abc", &[(5, 6)], &map, 7).len()
        );
        // No panic on an absurd base.
        let _ = build_start_info(u64::MAX, "x", &[(1, 2)], &map, 0);
    }
}
