// SPDX-License-Identifier: MIT OR Apache-2.0
//! Build the Linux `boot_params` ("zero page") for a bzImage, as a boot loader that skips
//! the kernel's real-mode setup does (Documentation/arch/x86/boot.rst, "32-bit/64-bit boot
//! protocol"): a zeroed page, the image's setup header copied in at 0x1f1, and the fields a
//! loader must fill.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::HandoffError;
use crate::abi::boot_params::*;
use crate::kernel::bzimage::BzImage;
use crate::mem::E820Entry;

const FOUR_GIB: u64 = 1 << 32;
/// Fallback alignment for a kernel whose `kernel_alignment` is unusable (not relocatable).
const PAGE: u64 = 4096;

/// Everything [`build`] needs; every address is physical.
#[derive(Clone, Copy, Debug)]
pub struct BootParamsConfig<'a> {
    pub kernel: &'a BzImage<'a>,
    /// Where `protected_mode()` was placed; becomes `code32_start`.
    pub load_addr: u64,
    /// The guest memory map.
    pub e820: &'a [E820Entry],
    /// The NUL-terminated command line, already placed by the caller; `cmdline_len`
    /// excludes the NUL and must be `<= cmdline_size`. Below 4 GiB unless the kernel has
    /// `XLF_CAN_BE_LOADED_ABOVE_4G`.
    pub cmdline_paddr: u64,
    pub cmdline_len: usize,
    /// `(paddr, size)` of the initrd.
    pub initrd: Option<(u64, u64)>,
    /// The ACPI RSDP (0: none; the kernel then searches for it).
    pub rsdp_paddr: u64,
    /// Where the caller will place [`BootParams::setup_data`] if it is not empty (maps
    /// with more than 128 entries).
    pub setup_data_paddr: u64,
}

/// The zero page, and the `setup_data` chain it links to.
#[derive(Clone, Debug)]
pub struct BootParams {
    pub zero_page: Box<[u8; BOOT_PARAMS_SIZE]>,
    /// Empty if not needed; else `setup_data` nodes (one `SETUP_E820_EXT` node) to place at
    /// `setup_data_paddr`, already linked from `hdr.setup_data`.
    pub setup_data: Vec<u8>,
}

/// Bytes of `setup_data` [`build`] produces for a map of `entries` entries (0 if the zero
/// page holds them all).
pub fn setup_data_len(entries: usize) -> usize {
    match entries.checked_sub(E820_MAX_ENTRIES_ZEROPAGE) {
        None | Some(0) => 0,
        Some(extra) => SETUP_DATA_HEADER_SIZE.saturating_add(extra.saturating_mul(E820_ENTRY_SIZE)),
    }
}

/// Where and how a bzImage's protected-mode part may be loaded:
/// `(preferred address, alignment, bytes needed from the load address, relocatable)`.
///
/// The alignment is `kernel_alignment` (always a power of two); the size is the larger of
/// `init_size` (the kernel's whole footprint while it decompresses and sets itself up) and
/// the protected-mode image.
pub fn kernel_placement(k: &BzImage) -> (u64, u64, u64, bool) {
    let align = u64::from(k.kernel_alignment());
    let align = if align.is_power_of_two() { align } else { PAGE };
    let need = u64::from(k.init_size()).max(k.protected_mode().len() as u64);
    (k.pref_address(), align, need, k.relocatable())
}

fn put(page: &mut [u8], off: usize, v: &[u8]) {
    if let Some(dst) = off.checked_add(v.len()).and_then(|end| page.get_mut(off..end)) {
        dst.copy_from_slice(v);
    }
}

fn put_e820(out: &mut [u8], e: &E820Entry) {
    put(out, E820_ENTRY_ADDR, &e.addr.to_le_bytes());
    put(out, E820_ENTRY_SIZE_FIELD, &e.size.to_le_bytes());
    put(out, E820_ENTRY_TYPE, &e.kind.to_le_bytes());
}

/// Build the zero page (and, for long memory maps, a `setup_data` chain).
pub fn build(cfg: &BootParamsConfig) -> Result<BootParams, HandoffError> {
    let k = cfg.kernel;
    let above_4g_ok = k.can_be_loaded_above_4g();

    let load_addr = u32::try_from(cfg.load_addr).map_err(|_| HandoffError::LoadAddrAbove4G(cfg.load_addr))?;

    if cfg.cmdline_len > k.cmdline_size() as usize {
        return Err(HandoffError::CmdlineTooLong { len: cfg.cmdline_len, max: k.cmdline_size() });
    }
    let cmdline_end = (cfg.cmdline_len as u64)
        .checked_add(1)
        .and_then(|n| cfg.cmdline_paddr.checked_add(n))
        .ok_or(HandoffError::CmdlineAbove4G(cfg.cmdline_paddr))?;
    if cmdline_end > FOUR_GIB && !above_4g_ok {
        return Err(HandoffError::CmdlineAbove4G(cfg.cmdline_paddr));
    }

    let (initrd_addr, initrd_size) = cfg.initrd.unwrap_or((0, 0));
    if let Some((paddr, size)) = cfg.initrd {
        let end = paddr.checked_add(size).ok_or(HandoffError::InitrdOverflow { paddr, size })?;
        // initrd_addr_max is the address of the last byte the initrd may occupy.
        if size > 0 && end - 1 > k.initrd_addr_max() && !above_4g_ok {
            return Err(HandoffError::InitrdAboveMax { end, max: k.initrd_addr_max() });
        }
    }

    let n = cfg.e820.len();
    let (in_page, extra) = cfg.e820.split_at(n.min(E820_MAX_ENTRIES_ZEROPAGE));
    let mut setup_data = Vec::new();
    if !extra.is_empty() {
        if k.version() < proto::V2_09 {
            return Err(HandoffError::SetupDataUnsupported { entries: n });
        }
        if cfg.setup_data_paddr == 0 {
            return Err(HandoffError::SetupDataNoAddress);
        }
        let len = extra
            .len()
            .checked_mul(E820_ENTRY_SIZE)
            .and_then(|l| u32::try_from(l).ok())
            .ok_or(HandoffError::E820TooLarge { entries: n })?;
        setup_data = Vec::with_capacity(setup_data_len(n));
        setup_data.extend_from_slice(&0u64.to_le_bytes()); // next: end of the list
        setup_data.extend_from_slice(&SETUP_E820_EXT.to_le_bytes());
        setup_data.extend_from_slice(&len.to_le_bytes());
        for e in extra {
            let mut raw = [0u8; E820_ENTRY_SIZE];
            put_e820(&mut raw, e);
            setup_data.extend_from_slice(&raw);
        }
    }

    let mut bp = Box::new([0u8; BOOT_PARAMS_SIZE]);
    let page = &mut bp[..];

    // The setup header, exactly as the image has it; then the loader's fields.
    put(page, BP_HDR, k.header_bytes());
    // Header fields past the image's header end do not exist for this protocol version.
    let hdr_end = k.header_end();
    let mut set = |off: usize, v: &[u8]| {
        if off + v.len() <= hdr_end {
            put(page, off, v);
        }
    };
    set(HDR_TYPE_OF_LOADER, &[LOADER_TYPE_UNDEFINED]);
    set(HDR_LOADFLAGS, &[k.loadflags() | LOADED_HIGH]);
    set(HDR_VID_MODE, &VID_MODE_NORMAL.to_le_bytes());
    set(HDR_CODE32_START, &load_addr.to_le_bytes());
    set(HDR_RAMDISK_IMAGE, &(initrd_addr as u32).to_le_bytes());
    set(HDR_RAMDISK_SIZE, &(initrd_size as u32).to_le_bytes());
    set(HDR_CMD_LINE_PTR, &(cfg.cmdline_paddr as u32).to_le_bytes());
    set(HDR_HARDWARE_SUBARCH, &0u32.to_le_bytes());
    set(HDR_HARDWARE_SUBARCH_DATA, &0u64.to_le_bytes());
    // Ours or none: whatever the image carried there means nothing in this guest.
    let sd = if setup_data.is_empty() { 0 } else { cfg.setup_data_paddr };
    set(HDR_SETUP_DATA, &sd.to_le_bytes());

    put(page, BP_EXT_RAMDISK_IMAGE, &((initrd_addr >> 32) as u32).to_le_bytes());
    put(page, BP_EXT_RAMDISK_SIZE, &((initrd_size >> 32) as u32).to_le_bytes());
    put(page, BP_EXT_CMD_LINE_PTR, &((cfg.cmdline_paddr >> 32) as u32).to_le_bytes());
    put(page, BP_ACPI_RSDP_ADDR, &cfg.rsdp_paddr.to_le_bytes());

    page[BP_E820_ENTRIES] = in_page.len() as u8; // <= 128
    for (i, e) in in_page.iter().enumerate() {
        let at = BP_E820_TABLE + i * E820_ENTRY_SIZE;
        put_e820(&mut page[at..at + E820_ENTRY_SIZE], e);
    }
    page[BP_SENTINEL] = 0;

    Ok(BootParams { zero_page: bp, setup_data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::bzimage::{self, tests::synthetic};
    use crate::mem::{E820_RAM, E820_RESERVED};

    proptest::proptest! {
        /// Placement of any bzImage the parser accepts never panics (moved here from
        /// kernel/: handoff builds on kernel, not the other way round).
        #[test]
        fn placement_of_mutated_bzimages_never_panics(
            muts in proptest::collection::vec((0x1f0usize..0x280, proptest::num::u8::ANY), 0..16),
            cut in 0usize..12_000,
        ) {
            let mut img = synthetic();
            for (o, v) in muts { img[o] = v; }
            img.truncate(cut);
            if let Ok(k) = bzimage::parse(&img) {
                let _ = kernel_placement(&k);
            }
        }
    }

    fn u16_at(p: &[u8], o: usize) -> u16 {
        u16::from_le_bytes(p[o..o + 2].try_into().unwrap())
    }
    fn u32_at(p: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(p[o..o + 4].try_into().unwrap())
    }
    fn u64_at(p: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(p[o..o + 8].try_into().unwrap())
    }

    fn e820(n: usize) -> Vec<E820Entry> {
        (0..n)
            .map(|i| E820Entry {
                addr: i as u64 * 0x10_0000,
                size: 0x8_0000 + i as u64,
                kind: if i % 3 == 0 { E820_RESERVED } else { E820_RAM },
            })
            .collect()
    }

    fn cfg<'a>(k: &'a BzImage<'a>, map: &'a [E820Entry]) -> BootParamsConfig<'a> {
        BootParamsConfig {
            kernel: k,
            load_addr: 0x100_0000,
            e820: map,
            cmdline_paddr: 0x9_0000,
            cmdline_len: 20,
            initrd: Some((0x3000_0000, 0x12_3456)),
            rsdp_paddr: 0xe_0000,
            setup_data_paddr: 0x8_0000,
        }
    }

    /// Offsets `build` writes inside the header (start, len).
    const WRITTEN: &[(usize, usize)] = &[
        (HDR_VID_MODE, 2),
        (HDR_TYPE_OF_LOADER, 1),
        (HDR_LOADFLAGS, 1),
        (HDR_CODE32_START, 4),
        (HDR_RAMDISK_IMAGE, 4),
        (HDR_RAMDISK_SIZE, 4),
        (HDR_CMD_LINE_PTR, 4),
        (HDR_HARDWARE_SUBARCH, 12),
        (HDR_SETUP_DATA, 8),
    ];

    #[test]
    fn fields_at_their_offsets() {
        let img = synthetic();
        let k = bzimage::parse(&img).unwrap();
        let map = e820(5);
        let bp = build(&cfg(&k, &map)).unwrap();
        let p = &bp.zero_page[..];
        assert!(bp.setup_data.is_empty());
        assert_eq!(p[HDR_TYPE_OF_LOADER], 0xff);
        assert_eq!(p[HDR_LOADFLAGS], LOADED_HIGH);
        assert_eq!(u16_at(p, HDR_VID_MODE), 0xffff);
        assert_eq!(u32_at(p, HDR_CODE32_START), 0x100_0000);
        assert_eq!(u32_at(p, HDR_RAMDISK_IMAGE), 0x3000_0000);
        assert_eq!(u32_at(p, HDR_RAMDISK_SIZE), 0x12_3456);
        assert_eq!(u32_at(p, BP_EXT_RAMDISK_IMAGE), 0);
        assert_eq!(u32_at(p, BP_EXT_RAMDISK_SIZE), 0);
        assert_eq!(u32_at(p, HDR_CMD_LINE_PTR), 0x9_0000);
        assert_eq!(u32_at(p, BP_EXT_CMD_LINE_PTR), 0);
        assert_eq!(u64_at(p, BP_ACPI_RSDP_ADDR), 0xe_0000);
        assert_eq!(u32_at(p, HDR_HARDWARE_SUBARCH), 0);
        assert_eq!(u64_at(p, HDR_SETUP_DATA), 0);
        assert_eq!(p[BP_E820_ENTRIES], 5);
        assert_eq!(p[BP_SENTINEL], 0);
        for (i, e) in map.iter().enumerate() {
            let at = BP_E820_TABLE + i * 20;
            assert_eq!(u64_at(p, at), e.addr);
            assert_eq!(u64_at(p, at + 8), e.size);
            assert_eq!(u32_at(p, at + 16), e.kind);
        }
        assert!(p[BP_E820_TABLE + 5 * 20..].iter().all(|&b| b == 0));
        // The rest of the header is the image's.
        assert_eq!(&p[HDR_HEADER..HDR_HEADER + 4], b"HdrS");
        for off in BP_HDR..k.header_end() {
            if !WRITTEN.iter().any(|&(s, l)| (s..s + l).contains(&off)) {
                assert_eq!(p[off], img[off], "header byte {off:#x}");
            }
        }
        // Nothing but the header between the fields we set and the e820 table.
        assert!(p[k.header_end()..BP_E820_TABLE].iter().all(|&b| b == 0));
        assert!(p[..BP_ACPI_RSDP_ADDR].iter().all(|&b| b == 0));
    }

    #[test]
    fn high_addresses_use_ext_fields() {
        let img = synthetic(); // has XLF_CAN_BE_LOADED_ABOVE_4G
        let k = bzimage::parse(&img).unwrap();
        let map = e820(1);
        let mut c = cfg(&k, &map);
        c.initrd = Some((0x1_2345_6000, 0x2_0000_1000));
        c.cmdline_paddr = 0x5_0000_2000;
        let p = build(&c).unwrap().zero_page;
        assert_eq!(u32_at(&p[..], HDR_RAMDISK_IMAGE), 0x2345_6000);
        assert_eq!(u32_at(&p[..], BP_EXT_RAMDISK_IMAGE), 1);
        assert_eq!(u32_at(&p[..], HDR_RAMDISK_SIZE), 0x1000);
        assert_eq!(u32_at(&p[..], BP_EXT_RAMDISK_SIZE), 2);
        assert_eq!(u32_at(&p[..], HDR_CMD_LINE_PTR), 0x2000);
        assert_eq!(u32_at(&p[..], BP_EXT_CMD_LINE_PTR), 5);
    }

    #[test]
    fn initrd_limits() {
        let mut img = synthetic();
        img[HDR_XLOADFLAGS] = XLF_KERNEL_64 as u8; // not above 4G
        let k = bzimage::parse(&img).unwrap();
        let map = e820(1);
        let mut c = cfg(&k, &map);
        // Last byte exactly at initrd_addr_max: fine.
        c.initrd = Some((0x7fff_f000, 0x1000));
        assert!(build(&c).is_ok());
        c.initrd = Some((0x7fff_f000, 0x1001));
        assert_eq!(build(&c).unwrap_err(), HandoffError::InitrdAboveMax { end: 0x8000_0001, max: 0x7fff_ffff });
        c.initrd = Some((u64::MAX, 2));
        assert_eq!(build(&c).unwrap_err(), HandoffError::InitrdOverflow { paddr: u64::MAX, size: 2 });
        c.initrd = None;
        let p = build(&c).unwrap().zero_page;
        assert_eq!(u32_at(&p[..], HDR_RAMDISK_IMAGE), 0);
        assert_eq!(u32_at(&p[..], HDR_RAMDISK_SIZE), 0);
        c.cmdline_paddr = 0xffff_fff0;
        c.cmdline_len = 15;
        assert!(build(&c).is_ok());
        c.cmdline_len = 16;
        assert_eq!(build(&c).unwrap_err(), HandoffError::CmdlineAbove4G(0xffff_fff0));
        assert!(HandoffError::InitrdAboveMax { end: 1, max: 0 }.to_string().contains("initrd_addr_max"));
    }

    #[test]
    fn other_errors() {
        let img = synthetic();
        let k = bzimage::parse(&img).unwrap();
        let map = e820(1);
        let mut c = cfg(&k, &map);
        c.cmdline_len = 0x7ff;
        assert!(build(&c).is_ok());
        c.cmdline_len = 0x800;
        assert_eq!(build(&c).unwrap_err(), HandoffError::CmdlineTooLong { len: 0x800, max: 0x7ff });
        c.cmdline_len = 1;
        c.load_addr = 1 << 32;
        assert_eq!(build(&c).unwrap_err(), HandoffError::LoadAddrAbove4G(1 << 32));
        c.load_addr = 0x100_0000;
        let big = e820(129);
        c.e820 = &big;
        c.setup_data_paddr = 0;
        assert_eq!(build(&c).unwrap_err(), HandoffError::SetupDataNoAddress);
        // Protocol 2.06 kernels have no setup_data.
        let mut old = synthetic();
        old[HDR_VERSION] = 0x06;
        let ko = bzimage::parse(&old).unwrap();
        let mut c = cfg(&ko, &big);
        assert_eq!(build(&c).unwrap_err(), HandoffError::SetupDataUnsupported { entries: 129 });
        // ...but small maps are fine, and the 2.06 header gets no fields past its end.
        c.e820 = &map;
        let p = build(&c).unwrap().zero_page;
        assert_eq!(u32_at(&p[..], HDR_CODE32_START), 0x100_0000);
        assert!(p[BP_HDR + ko.header_bytes().len()..BP_E820_TABLE].iter().all(|&b| b == 0));
    }

    #[test]
    fn long_map_goes_to_setup_data() {
        let img = synthetic();
        let k = bzimage::parse(&img).unwrap();
        let map = e820(200);
        let mut c = cfg(&k, &map);
        c.setup_data_paddr = 0x7_f000;
        let bp = build(&c).unwrap();
        let p = &bp.zero_page[..];
        assert_eq!(p[BP_E820_ENTRIES], 128);
        assert_eq!(u64_at(p, HDR_SETUP_DATA), 0x7_f000);
        let at = BP_E820_TABLE + 127 * 20;
        assert_eq!(u64_at(p, at), map[127].addr);
        assert_eq!(u64_at(p, at + 8), map[127].size);
        assert_eq!(u32_at(p, at + 16), map[127].kind);
        let sd = &bp.setup_data;
        assert_eq!(sd.len(), 16 + 72 * 20);
        assert_eq!(sd.len(), setup_data_len(200));
        assert_eq!(u64_at(sd, 0), 0, "next");
        assert_eq!(u32_at(sd, 8), SETUP_E820_EXT);
        assert_eq!(u32_at(sd, 12), 72 * 20);
        for i in 0..72 {
            let at = 16 + i * 20;
            let e = map[128 + i];
            assert_eq!((u64_at(sd, at), u64_at(sd, at + 8), u32_at(sd, at + 16)), (e.addr, e.size, e.kind));
        }
        assert_eq!(setup_data_len(128), 0);
        assert_eq!(setup_data_len(0), 0);
        // Exactly 128: all in the zero page.
        let map = e820(128);
        let bp = build(&cfg(&k, &map)).unwrap();
        assert!(bp.setup_data.is_empty());
        assert_eq!(bp.zero_page[BP_E820_ENTRIES], 128);
    }

    #[test]
    fn placement() {
        let img = synthetic();
        let k = bzimage::parse(&img).unwrap();
        assert_eq!(kernel_placement(&k), (0x100_0000, 0x20_0000, 0x2_0000, true));
        // init_size smaller than the image: the image wins.
        let mut small = img.clone();
        small[HDR_INIT_SIZE..HDR_INIT_SIZE + 4].copy_from_slice(&0x10u32.to_le_bytes());
        small[HDR_RELOCATABLE_KERNEL] = 0;
        small[HDR_KERNEL_ALIGNMENT..HDR_KERNEL_ALIGNMENT + 4].copy_from_slice(&0u32.to_le_bytes());
        let k = bzimage::parse(&small).unwrap();
        assert_eq!(kernel_placement(&k), (0x100_0000, PAGE, 4096, false));
    }

    proptest::proptest! {
        #[test]
        fn build_never_panics(load in proptest::num::u64::ANY, cl in 0usize..0x1000, cp in proptest::num::u64::ANY,
                              ia in proptest::num::u64::ANY, is in proptest::num::u64::ANY, n in 0usize..300,
                              sdp in proptest::num::u64::ANY) {
            let img = synthetic();
            let k = bzimage::parse(&img).unwrap();
            let map = e820(n);
            let c = BootParamsConfig { kernel: &k, load_addr: load, e820: &map, cmdline_paddr: cp, cmdline_len: cl,
                                       initrd: Some((ia, is)), rsdp_paddr: 0, setup_data_paddr: sdp };
            if let Ok(bp) = build(&c) {
                proptest::prop_assert_eq!(bp.setup_data.len(), setup_data_len(n));
            }
        }
    }

    #[test]
    fn empty_map() {
        let img = synthetic();
        let k = bzimage::parse(&img).unwrap();
        let c = BootParamsConfig { e820: &[], ..cfg(&k, &[]) };
        let bp = build(&c).unwrap();
        assert_eq!(bp.zero_page[BP_E820_ENTRIES], 0);
    }
}
