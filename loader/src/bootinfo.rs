// SPDX-License-Identifier: MIT OR Apache-2.0
//! Reading the start of day information a PVH loader is handed: `hvm_start_info` (v0 and
//! v1), its module list, memory map and command line.
//!
//! Firmware structures may be unaligned and in low memory (qboot on microvm put the module
//! list at 0x7b7c), so everything is read byte-wise through [`PhysMem`] and copied out.
//! Reading is split in two: [`StartInfo::read`] and [`StartInfo::for_each_memmap`] need no
//! heap (the heap is carved from that very memory map); [`StartInfo::parse`] then builds the
//! owned [`BootInfo`].

use alloc::string::String;
use alloc::vec::Vec;

use crate::abi::hvm_start_info::{
    HVM_START_INFO_V0_SIZE, HvmMemmapTableEntry, HvmModlistEntry, HvmStartInfo, XEN_HVM_START_MAGIC_VALUE,
};
use crate::mem::E820Entry;

/// Most modules we accept.
pub const MAX_MODULES: u32 = 64;
/// Most memory map entries we accept.
pub const MAX_MEMMAP: u32 = 1024;
/// Longest command line we read (bytes, without the NUL).
pub const MAX_CMDLINE: usize = 4095;

/// Byte-wise access to guest-physical memory.
pub trait PhysMem {
    /// Fill `buf` from `paddr`; `Err` when the range is not readable (e.g. above 4 GiB).
    /// The caller names the object it was reading, so the error carries nothing more.
    #[allow(clippy::result_unit_err)]
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), ()>;
}

/// What is wrong with the start info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// Address 0 or unreadable.
    Unreadable(&'static str, u64),
    /// Magic is not `XEN_HVM_START_MAGIC_VALUE`.
    BadMagic(u32),
    /// Too many modules or memory map entries.
    TooMany(&'static str, u32),
    /// No memory map (version 0, or an empty v1 map).
    NoMemoryMap,
    /// A command line without its NUL within the limit.
    CmdlineTooLong(&'static str),
}

impl core::fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootInfoError::Unreadable(what, a) => write!(f, "start info: {what} at {a:#x} is not readable"),
            BootInfoError::BadMagic(m) => {
                write!(f, "start info: magic {m:#x} is not {XEN_HVM_START_MAGIC_VALUE:#x}: not entered by a PVH loader")
            }
            BootInfoError::TooMany(what, n) => write!(f, "start info: {n} {what} is more than rxen accepts"),
            BootInfoError::NoMemoryMap => {
                write!(f, "start info: no memory map (hvm_start_info v0 or 0 entries): cannot find RAM")
            }
            BootInfoError::CmdlineTooLong(what) => {
                write!(f, "start info: {what} command line longer than {MAX_CMDLINE} bytes")
            }
        }
    }
}

/// A module the domain was given (xl `ramdisk=`, QEMU `-initrd`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub paddr: u64,
    pub size: u64,
    pub cmdline: String,
}

/// Everything the loader keeps from the start info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootInfo {
    pub version: u32,
    pub flags: u32,
    pub cmdline: String,
    pub rsdp_paddr: u64,
    pub memmap: Vec<E820Entry>,
    pub modules: Vec<Module>,
}

/// The fixed part of `hvm_start_info`, copied out of guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    pub paddr: u64,
    pub raw: HvmStartInfo,
}

fn read_u32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn read_u64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

impl StartInfo {
    /// Read and check the fixed part at `paddr`. Needs no heap.
    pub fn read(mem: &dyn PhysMem, paddr: u64) -> Result<StartInfo, BootInfoError> {
        if paddr == 0 {
            return Err(BootInfoError::Unreadable("hvm_start_info", 0));
        }
        let mut b = [0u8; 56];
        mem.read(paddr, &mut b[..HVM_START_INFO_V0_SIZE])
            .map_err(|_| BootInfoError::Unreadable("hvm_start_info", paddr))?;
        let magic = read_u32(&b, 0);
        if magic != XEN_HVM_START_MAGIC_VALUE {
            return Err(BootInfoError::BadMagic(magic));
        }
        let version = read_u32(&b, 4);
        if version >= 1 {
            mem.read(paddr + HVM_START_INFO_V0_SIZE as u64, &mut b[HVM_START_INFO_V0_SIZE..])
                .map_err(|_| BootInfoError::Unreadable("hvm_start_info", paddr))?;
        }
        let raw = HvmStartInfo {
            magic,
            version,
            flags: read_u32(&b, 8),
            nr_modules: read_u32(&b, 12),
            modlist_paddr: read_u64(&b, 16),
            cmdline_paddr: read_u64(&b, 24),
            rsdp_paddr: read_u64(&b, 32),
            memmap_paddr: if version >= 1 { read_u64(&b, 40) } else { 0 },
            memmap_entries: if version >= 1 { read_u32(&b, 48) } else { 0 },
            reserved: 0,
        };
        if raw.nr_modules > MAX_MODULES {
            return Err(BootInfoError::TooMany("modules", raw.nr_modules));
        }
        if raw.memmap_entries > MAX_MEMMAP {
            return Err(BootInfoError::TooMany("memory map entries", raw.memmap_entries));
        }
        Ok(StartInfo { paddr, raw })
    }

    /// Bytes the fixed part occupies.
    pub fn size(&self) -> u64 {
        if self.raw.version >= 1 { 56 } else { HVM_START_INFO_V0_SIZE as u64 }
    }

    /// Call `f` for every non-empty memory map entry. Needs no heap.
    pub fn for_each_memmap(&self, mem: &dyn PhysMem, mut f: impl FnMut(E820Entry)) -> Result<(), BootInfoError> {
        if self.raw.memmap_paddr == 0 || self.raw.memmap_entries == 0 {
            return Err(BootInfoError::NoMemoryMap);
        }
        for i in 0..self.raw.memmap_entries as u64 {
            let at = self.raw.memmap_paddr + i * core::mem::size_of::<HvmMemmapTableEntry>() as u64;
            let mut b = [0u8; 24];
            mem.read(at, &mut b).map_err(|_| BootInfoError::Unreadable("memory map", at))?;
            let e = E820Entry { addr: read_u64(&b, 0), size: read_u64(&b, 8), kind: read_u32(&b, 16) };
            // microvm's map ends with an all-zero entry: skip empty ones.
            if e.size != 0 {
                f(e);
            }
        }
        Ok(())
    }

    /// The module list, read without the heap: `(paddr, size, cmdline_paddr)` each.
    pub fn for_each_module(&self, mem: &dyn PhysMem, mut f: impl FnMut(HvmModlistEntry)) -> Result<(), BootInfoError> {
        if self.raw.modlist_paddr == 0 {
            return Ok(());
        }
        for i in 0..self.raw.nr_modules as u64 {
            let at = self.raw.modlist_paddr + i * core::mem::size_of::<HvmModlistEntry>() as u64;
            let mut b = [0u8; 32];
            mem.read(at, &mut b).map_err(|_| BootInfoError::Unreadable("module list", at))?;
            f(HvmModlistEntry {
                paddr: read_u64(&b, 0),
                size: read_u64(&b, 8),
                cmdline_paddr: read_u64(&b, 16),
                reserved: read_u64(&b, 24),
            });
        }
        Ok(())
    }

    /// Build the owned [`BootInfo`] (needs the heap).
    pub fn parse(&self, mem: &dyn PhysMem) -> Result<BootInfo, BootInfoError> {
        let mut memmap = Vec::new();
        match self.for_each_memmap(mem, |e| memmap.push(e)) {
            Ok(()) | Err(BootInfoError::NoMemoryMap) => {}
            Err(e) => return Err(e),
        }
        let mut raw_modules = Vec::new();
        self.for_each_module(mem, |m| raw_modules.push(m))?;
        let mut modules = Vec::new();
        for m in raw_modules {
            let cmdline = read_cstr(mem, m.cmdline_paddr, "module")?;
            modules.push(Module { paddr: m.paddr, size: m.size, cmdline });
        }
        Ok(BootInfo {
            version: self.raw.version,
            flags: self.raw.flags,
            cmdline: read_cstr(mem, self.raw.cmdline_paddr, "domain")?,
            rsdp_paddr: self.raw.rsdp_paddr,
            memmap,
            modules,
        })
    }
}

/// Read a NUL-terminated string (lossy UTF-8); address 0 is the empty string.
pub fn read_cstr(mem: &dyn PhysMem, paddr: u64, what: &'static str) -> Result<String, BootInfoError> {
    if paddr == 0 {
        return Ok(String::new());
    }
    let mut out = Vec::new();
    let mut chunk = [0u8; 64];
    loop {
        let at = paddr + out.len() as u64;
        // Read byte-wise at the end of readable memory rather than failing the whole chunk.
        let n = if mem.read(at, &mut chunk).is_ok() {
            chunk.len()
        } else {
            mem.read(at, &mut chunk[..1]).map_err(|_| BootInfoError::Unreadable("command line", at))?;
            1
        };
        if let Some(z) = chunk[..n].iter().position(|&c| c == 0) {
            out.extend_from_slice(&chunk[..z]);
            break;
        }
        out.extend_from_slice(&chunk[..n]);
        if out.len() > MAX_CMDLINE {
            return Err(BootInfoError::CmdlineTooLong(what));
        }
    }
    if out.len() > MAX_CMDLINE {
        return Err(BootInfoError::CmdlineTooLong(what));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A window of fake guest-physical memory.
    pub(crate) struct FakeMem {
        base: u64,
        bytes: Vec<u8>,
    }

    impl FakeMem {
        pub(crate) fn new(base: u64, len: usize) -> FakeMem {
            FakeMem { base, bytes: vec![0; len] }
        }
        pub(crate) fn put(&mut self, paddr: u64, data: &[u8]) {
            let o = (paddr - self.base) as usize;
            self.bytes[o..o + data.len()].copy_from_slice(data);
        }
    }

    impl PhysMem for FakeMem {
        fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), ()> {
            let o = paddr.checked_sub(self.base).ok_or(())? as usize;
            let src = self.bytes.get(o..o.checked_add(buf.len()).ok_or(())?).ok_or(())?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }

    fn start_info(version: u32, nr_modules: u32, modlist: u64, cmdline: u64, memmap: u64, entries: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&XEN_HVM_START_MAGIC_VALUE.to_le_bytes());
        b.extend_from_slice(&version.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&nr_modules.to_le_bytes());
        b.extend_from_slice(&modlist.to_le_bytes());
        b.extend_from_slice(&cmdline.to_le_bytes());
        b.extend_from_slice(&0xf5a40u64.to_le_bytes());
        if version >= 1 {
            b.extend_from_slice(&memmap.to_le_bytes());
            b.extend_from_slice(&entries.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
        }
        b
    }

    fn memmap_entry(addr: u64, size: u64, kind: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&addr.to_le_bytes());
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b
    }

    #[test]
    fn v1_unaligned_everything() {
        // Start info, module list and memory map all at odd addresses, as qboot does.
        let mut m = FakeMem::new(0x7000, 0x2000);
        m.put(0x7b7d, &start_info(1, 1, 0x7c03, 0x7d01, 0x7e05, 3));
        let mut modent = Vec::new();
        for v in [0x1234_5000u64, 4096, 0x7f01, 0] {
            modent.extend_from_slice(&v.to_le_bytes());
        }
        m.put(0x7c03, &modent);
        m.put(0x7d01, b"console=ttyS0 rxen.debug\0");
        m.put(0x7f01, b"initrd\0");
        let mut map = memmap_entry(0, 0x9fc00, 1);
        map.extend(memmap_entry(0x10_0000, 0x1ff0_0000, 1));
        map.extend(memmap_entry(0, 0, 0)); // microvm's trailing empty entry
        m.put(0x7e05, &map);

        let si = StartInfo::read(&m, 0x7b7d).unwrap();
        assert_eq!(si.size(), 56);
        let bi = si.parse(&m).unwrap();
        assert_eq!(bi.version, 1);
        assert_eq!(bi.cmdline, "console=ttyS0 rxen.debug");
        assert_eq!(bi.rsdp_paddr, 0xf5a40);
        assert_eq!(
            bi.memmap,
            vec![
                E820Entry { addr: 0, size: 0x9fc00, kind: 1 },
                E820Entry { addr: 0x10_0000, size: 0x1ff0_0000, kind: 1 }
            ]
        );
        assert_eq!(bi.modules, vec![Module { paddr: 0x1234_5000, size: 4096, cmdline: "initrd".into() }]);
    }

    #[test]
    fn v0_has_no_memory_map() {
        let mut m = FakeMem::new(0x1000, 0x1000);
        // A v0 struct followed by garbage that must not be read as memmap fields.
        let mut b = start_info(0, 0, 0, 0, 0, 0);
        b.extend_from_slice(&[0xff; 16]);
        m.put(0x1000, &b);
        let si = StartInfo::read(&m, 0x1000).unwrap();
        assert_eq!(si.size(), 40);
        assert_eq!(si.raw.memmap_paddr, 0);
        assert_eq!(si.for_each_memmap(&m, |_| {}), Err(BootInfoError::NoMemoryMap));
        let bi = si.parse(&m).unwrap();
        assert!(bi.memmap.is_empty());
        assert_eq!(bi.cmdline, "");
    }

    #[test]
    fn errors_name_the_cause() {
        let mut m = FakeMem::new(0x1000, 0x1000);
        m.put(0x1000, &[0x78, 0x56, 0x34, 0x12]);
        let e = StartInfo::read(&m, 0x1000).unwrap_err();
        assert_eq!(e, BootInfoError::BadMagic(0x1234_5678));
        assert!(e.to_string().contains("not entered by a PVH loader"));
        assert_eq!(StartInfo::read(&m, 0).unwrap_err(), BootInfoError::Unreadable("hvm_start_info", 0));
        assert_eq!(StartInfo::read(&m, 0x9000).unwrap_err(), BootInfoError::Unreadable("hvm_start_info", 0x9000));
        m.put(0x1000, &start_info(1, 1000, 0x1100, 0, 0, 0));
        assert_eq!(StartInfo::read(&m, 0x1000).unwrap_err(), BootInfoError::TooMany("modules", 1000));
        // An unterminated command line running to the end of memory.
        m.put(0x1000, &start_info(1, 0, 0, 0x1800, 0, 0));
        m.put(0x1800, &[b'a'; 0x800]);
        let si = StartInfo::read(&m, 0x1000).unwrap();
        assert!(matches!(si.parse(&m), Err(BootInfoError::Unreadable("command line", _))));
        // One longer than the limit.
        let mut big = FakeMem::new(0x1000, 0x3000);
        big.put(0x1000, &start_info(1, 0, 0, 0x1100, 0, 0));
        big.put(0x1100, &[b'a'; 0x1f00]);
        let si = StartInfo::read(&big, 0x1000).unwrap();
        assert_eq!(si.parse(&big), Err(BootInfoError::CmdlineTooLong("domain")));
    }
}
