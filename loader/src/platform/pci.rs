// SPDX-License-Identifier: MIT OR Apache-2.0
//! PCI configuration space through configuration mechanism #1 (ports 0xcf8/0xcfc; PCI
//! Local Bus Specification 3.0 §3.2.2.3.2), as on QEMU pc/q35. microvm and Xen PVH have
//! no such ports: [`present`] says so and nothing else here should then be called.
//!
//! Nothing is assigned: BARs are read as the firmware (SeaBIOS) programmed them.

use alloc::vec::Vec;
use core::fmt;

use super::io::IoPorts;

// SAFETY: 0xcf8..0xd00 are configuration mechanism #1's address (0xcf8) and data
// (0xcfc..0xd00) ports on pc/q35 (and Cloud Hypervisor); elsewhere (microvm, Xen PVH)
// nothing claims them and [`present`] sees so. This module is their only user: it
// selects a register and reads it, and writes configuration space only through the
// `unsafe` [`PciAddr::write16`] and [`PciAddr::enable`].
const CONFIG: IoPorts = unsafe { IoPorts::new(0xcf8, 8) };
const CONFIG_ADDRESS: u16 = 0;
const CONFIG_DATA: u16 = 4;

/// Command register bits (offset 0x04).
pub const COMMAND_IO: u16 = 1 << 0;
pub const COMMAND_MEMORY: u16 = 1 << 1;
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;

/// Capability IDs (PCI Code and ID Assignment Specification).
pub const CAP_MSIX: u8 = 0x11;
pub const CAP_VENDOR: u8 = 0x09;

/// A PCI function's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PciAddr {
    pub bus: u8,
    pub dev: u8,
    pub func: u8,
}

impl fmt::Display for PciAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.dev, self.func)
    }
}

impl PciAddr {
    fn select(&self, offset: u8) {
        let addr = 0x8000_0000
            | (u32::from(self.bus) << 16)
            | (u32::from(self.dev & 0x1f) << 11)
            | (u32::from(self.func & 7) << 8)
            | u32::from(offset & 0xfc);
        CONFIG.write32(CONFIG_ADDRESS, addr);
    }

    /// The aligned dword at `offset`. Configuration reads have no side effects (PCI Local
    /// Bus Specification 3.0 §6.1), so this is safe.
    pub fn read32(&self, offset: u8) -> u32 {
        self.select(offset);
        CONFIG.read32(CONFIG_DATA)
    }

    pub fn read16(&self, offset: u8) -> u16 {
        (self.read32(offset) >> ((offset & 2) * 8)) as u16
    }

    pub fn read8(&self, offset: u8) -> u8 {
        (self.read32(offset) >> ((offset & 3) * 8)) as u8
    }

    /// Write the 16-bit register at `offset`.
    ///
    /// # Safety
    /// Configuration writes move BARs, switch decoding and bus mastering on and off: the
    /// caller must drive this function and the value must not make it decode over memory
    /// the loader uses or DMA into it.
    pub unsafe fn write16(&self, offset: u8, v: u16) {
        self.select(offset);
        CONFIG.write16(CONFIG_DATA + u16::from(offset & 2), v);
    }

    pub fn vendor_id(&self) -> u16 {
        self.read16(0x00)
    }

    pub fn device_id(&self) -> u16 {
        self.read16(0x02)
    }

    /// Set `bits` in the command register (I/O, memory decoding, bus mastering).
    ///
    /// # Safety
    /// The caller drives this function, and it is quiescent (reset, or set up by the
    /// caller): with bus mastering on, a device DMAs wherever its driver told it to.
    pub unsafe fn enable(&self, bits: u16) {
        let cmd = self.read16(0x04);
        if cmd & bits != bits {
            // SAFETY: only decoding of the BARs the firmware assigned and bus mastering
            // for a device the caller vouches for (see above).
            unsafe { self.write16(0x04, cmd | bits) };
        }
    }

    /// Clear `bits` in the command register: with [`COMMAND_BUS_MASTER`] the function can
    /// no longer DMA, whatever state it is in (PCI Local Bus Specification 3.0 §6.2.2).
    /// Safe: turning decoding or mastering off only takes capabilities away.
    pub fn disable(&self, bits: u16) {
        let cmd = self.read16(0x04);
        if cmd & bits != 0 {
            // SAFETY: clearing command bits stops the device decoding or mastering; it
            // cannot make it touch memory.
            unsafe { self.write16(0x04, cmd & !bits) };
        }
    }

    /// Base address register `index` (0..=5) as the firmware programmed it.
    pub fn bar(&self, index: u8) -> Option<Bar> {
        if index > 5 {
            return None;
        }
        let off = 0x10 + index * 4;
        let lo = self.read32(off);
        if lo & 1 != 0 {
            let port = lo & 0xffff_fffc;
            return u16::try_from(port).ok().filter(|&p| p != 0).map(Bar::Io);
        }
        let addr = match (lo >> 1) & 3 {
            0 => u64::from(lo & 0xffff_fff0),
            2 if index < 5 => u64::from(lo & 0xffff_fff0) | (u64::from(self.read32(off + 4)) << 32),
            _ => return None,
        };
        (addr != 0).then_some(Bar::Mem(addr))
    }

    /// The capability list: (capability ID, config-space offset) pairs, bounded so a
    /// looping list cannot hang the walk.
    pub fn capabilities(&self) -> Vec<(u8, u8)> {
        let mut caps = Vec::new();
        if self.read16(0x06) & (1 << 4) == 0 {
            return caps; // no capability list
        }
        let mut ptr = self.read8(0x34) & 0xfc;
        while ptr >= 0x40 && caps.len() < 48 {
            let id = self.read8(ptr);
            caps.push((id, ptr));
            ptr = self.read8(ptr + 1) & 0xfc;
        }
        caps
    }
}

/// A programmed base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    Io(u16),
    Mem(u64),
}

/// Whether configuration mechanism #1 answers (write an enable address, read it back).
pub fn present() -> bool {
    let saved = CONFIG.read32(CONFIG_ADDRESS);
    CONFIG.write32(CONFIG_ADDRESS, 0x8000_0000);
    let ok = CONFIG.read32(CONFIG_ADDRESS) == 0x8000_0000;
    CONFIG.write32(CONFIG_ADDRESS, saved);
    ok
}

/// A function found by [`enumerate`].
#[derive(Clone, Copy, Debug)]
pub struct PciFunction {
    pub addr: PciAddr,
    pub vendor: u16,
    pub device: u16,
}

/// Every function on every bus, in bus/device/function order. A brute-force scan of all
/// 256 buses (8192 config reads for the empty ones): cheap, and needs no bridge logic.
pub fn enumerate() -> Vec<PciFunction> {
    let mut found = Vec::new();
    for bus in 0..=255u8 {
        for dev in 0..32u8 {
            let f0 = PciAddr { bus, dev, func: 0 };
            if f0.vendor_id() == 0xffff {
                continue;
            }
            let multi = f0.read8(0x0e) & 0x80 != 0;
            for func in 0..if multi { 8 } else { 1 } {
                let a = PciAddr { bus, dev, func };
                let vendor = a.vendor_id();
                if vendor != 0xffff {
                    found.push(PciFunction { addr: a, vendor, device: a.device_id() });
                }
            }
        }
    }
    found
}
