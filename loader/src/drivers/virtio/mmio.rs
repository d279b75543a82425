// SPDX-License-Identifier: MIT OR Apache-2.0
//! The virtio-mmio transport (virtio 1.1 §4.2): version 2 (modern, §4.2.2) and version 1
//! (legacy, §4.2.4), as QEMU's microvm places them: 24 slots of 0x200 bytes from
//! 0xfeb00000 (hw/i386/microvm.c; see ../shared/design/TOOLCHAIN.md), and wherever a
//! `virtio_mmio.device=` word on the command line says ([`super::cmdline`]).

use super::queue::{QUEUE_ALIGN, VirtQueue};
use super::{InitError, MmioRegion, Transport};

/// microvm's virtio-mmio window: slot `n` at `MICROVM_BASE + n * MICROVM_SLOT_SIZE`.
pub const MICROVM_BASE: u64 = 0xfeb0_0000;
pub const MICROVM_SLOT_SIZE: u64 = 0x200;
pub const MICROVM_SLOTS: u32 = 24;

/// "virt" in little-endian (§4.2.2).
const MAGIC: u32 = 0x7472_6976;

// Register offsets (§4.2.2 table "MMIO Device Register Layout"; legacy-only ones §4.2.4).
const MAGIC_VALUE: usize = 0x000;
const VERSION: usize = 0x004;
const DEVICE_ID: usize = 0x008;
const DEVICE_FEATURES: usize = 0x010;
const DEVICE_FEATURES_SEL: usize = 0x014;
const DRIVER_FEATURES: usize = 0x020;
const DRIVER_FEATURES_SEL: usize = 0x024;
const LEGACY_GUEST_PAGE_SIZE: usize = 0x028;
const QUEUE_SEL: usize = 0x030;
const QUEUE_NUM_MAX: usize = 0x034;
const QUEUE_NUM: usize = 0x038;
const LEGACY_QUEUE_ALIGN: usize = 0x03c;
const LEGACY_QUEUE_PFN: usize = 0x040;
const QUEUE_READY: usize = 0x044;
const QUEUE_NOTIFY: usize = 0x050;
const STATUS: usize = 0x070;
const QUEUE_DESC: usize = 0x080;
const QUEUE_DRIVER: usize = 0x090;
const QUEUE_DEVICE: usize = 0x0a0;
const CONFIG_GENERATION: usize = 0x0fc;
const CONFIG: usize = 0x100;

/// One virtio-mmio device.
#[derive(Debug)]
pub struct MmioTransport {
    regs: MmioRegion,
    version: u32,
}

impl MmioTransport {
    /// The device behind `regs`, if it is one: magic, a known version, and a device ID
    /// (0 means an empty slot). Returns (transport, device ID).
    pub fn probe(regs: MmioRegion) -> Option<(MmioTransport, u32)> {
        if regs.read32(MAGIC_VALUE) != MAGIC {
            return None;
        }
        let version = regs.read32(VERSION);
        if version != 1 && version != 2 {
            return None;
        }
        let id = regs.read32(DEVICE_ID);
        (id != 0).then_some((MmioTransport { regs, version }, id))
    }

    /// The register window's base address.
    pub fn base(&self) -> u64 {
        self.regs.base()
    }
}

impl Transport for MmioTransport {
    fn is_modern(&self) -> bool {
        self.version == 2
    }

    fn reset(&mut self) -> bool {
        self.regs.write32(STATUS, 0);
        // §4.2.3.1: reads return 0 once the reset is done (immediate on QEMU); bounded.
        for _ in 0..1_000_000 {
            if self.regs.read32(STATUS) == 0 {
                return true;
            }
            core::hint::spin_loop();
        }
        false
    }

    fn status(&mut self) -> u8 {
        self.regs.read32(STATUS) as u8
    }

    fn set_status(&mut self, status: u8) {
        self.regs.write32(STATUS, u32::from(status));
    }

    fn device_features(&mut self) -> u64 {
        self.regs.write32(DEVICE_FEATURES_SEL, 0);
        let lo = self.regs.read32(DEVICE_FEATURES);
        let hi = if self.is_modern() {
            self.regs.write32(DEVICE_FEATURES_SEL, 1);
            self.regs.read32(DEVICE_FEATURES)
        } else {
            0
        };
        u64::from(lo) | (u64::from(hi) << 32)
    }

    fn set_driver_features(&mut self, features: u64) {
        self.regs.write32(DRIVER_FEATURES_SEL, 0);
        self.regs.write32(DRIVER_FEATURES, features as u32);
        if self.is_modern() {
            self.regs.write32(DRIVER_FEATURES_SEL, 1);
            self.regs.write32(DRIVER_FEATURES, (features >> 32) as u32);
        }
    }

    fn max_queue_size(&mut self, index: u16) -> u16 {
        self.regs.write32(QUEUE_SEL, u32::from(index));
        if self.is_modern() && self.regs.read32(QUEUE_READY) != 0 {
            return 0; // in use already: should not happen right after a reset
        }
        if !self.is_modern() && self.regs.read32(LEGACY_QUEUE_PFN) != 0 {
            return 0;
        }
        self.regs.read32(QUEUE_NUM_MAX).min(32768) as u16
    }

    fn setup_queue(&mut self, index: u16, q: &VirtQueue) -> Result<(), InitError> {
        self.regs.write32(QUEUE_SEL, u32::from(index));
        self.regs.write32(QUEUE_NUM, u32::from(q.size()));
        if self.is_modern() {
            // §4.2.3.2
            self.regs.write64(QUEUE_DESC, q.desc_addr());
            self.regs.write64(QUEUE_DRIVER, q.avail_addr());
            self.regs.write64(QUEUE_DEVICE, q.used_addr());
            self.regs.write32(QUEUE_READY, 1);
        } else {
            // §4.2.4.1: page size first (once is enough, but it is harmless to repeat),
            // then alignment and the page frame of the whole queue.
            let pfn = u32::try_from(q.desc_addr() / QUEUE_ALIGN as u64)
                .map_err(|_| InitError("virtqueue above the legacy interface's reach"))?;
            self.regs.write32(LEGACY_GUEST_PAGE_SIZE, QUEUE_ALIGN as u32);
            self.regs.write32(LEGACY_QUEUE_ALIGN, QUEUE_ALIGN as u32);
            self.regs.write32(LEGACY_QUEUE_PFN, pfn);
        }
        Ok(())
    }

    fn notify(&mut self, index: u16) {
        self.regs.write32(QUEUE_NOTIFY, u32::from(index));
    }

    fn config_generation(&mut self) -> u32 {
        if self.is_modern() { self.regs.read32(CONFIG_GENERATION) } else { 0 }
    }

    fn read_config8(&mut self, offset: u16) -> u8 {
        self.regs.read8(CONFIG + usize::from(offset))
    }

    fn read_config32(&mut self, offset: u16) -> u32 {
        self.regs.read32(CONFIG + usize::from(offset))
    }
}
