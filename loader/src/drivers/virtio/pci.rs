// SPDX-License-Identifier: MIT OR Apache-2.0
//! The virtio-pci transport (virtio 1.1 §4.1): the modern interface through the vendor
//! capabilities (§4.1.4: common, notify, ISR and device configuration in memory BARs)
//! and the legacy interface in I/O BAR 0 (§4.1.4.8) that transitional devices offer.
//! BARs are used where the firmware put them; nothing is assigned.

use alloc::vec::Vec;

use super::queue::{QUEUE_ALIGN, VirtQueue};
use super::{InitError, MmioRegion, Transport};
use crate::platform::io::IoPorts;
use crate::platform::paging::map_mmio;
use crate::platform::pci::{Bar, CAP_MSIX, CAP_VENDOR, COMMAND_BUS_MASTER, COMMAND_IO, COMMAND_MEMORY, PciAddr};

pub const VENDOR_VIRTIO: u16 = 0x1af4;
/// Transitional block device (§4.1.2.3, legacy device ID 0x1001).
pub const DEVICE_BLOCK_TRANSITIONAL: u16 = 0x1001;
/// Modern block device: 0x1040 + device ID 2 (§4.1.2.1).
pub const DEVICE_BLOCK_MODERN: u16 = 0x1042;

// virtio_pci_cap.cfg_type (§4.1.4).
const CAP_COMMON_CFG: u8 = 1;
const CAP_NOTIFY_CFG: u8 = 2;
const CAP_DEVICE_CFG: u8 = 4;

// struct virtio_pci_common_cfg (§4.1.4.3).
const COMMON_DFSELECT: usize = 0;
const COMMON_DF: usize = 4;
const COMMON_GFSELECT: usize = 8;
const COMMON_GF: usize = 12;
const COMMON_STATUS: usize = 20;
const COMMON_CFGGENERATION: usize = 21;
const COMMON_Q_SELECT: usize = 22;
const COMMON_Q_SIZE: usize = 24;
const COMMON_Q_ENABLE: usize = 28;
const COMMON_Q_NOFF: usize = 30;
const COMMON_Q_DESC: usize = 32;
const COMMON_Q_AVAIL: usize = 40;
const COMMON_Q_USED: usize = 48;
const COMMON_LEN: usize = 56;

// Legacy I/O BAR 0 layout (§4.1.4.8).
const LEGACY_HOST_FEATURES: u16 = 0;
const LEGACY_GUEST_FEATURES: u16 = 4;
const LEGACY_QUEUE_PFN: u16 = 8;
const LEGACY_QUEUE_SIZE: u16 = 12;
const LEGACY_QUEUE_SELECT: u16 = 14;
const LEGACY_QUEUE_NOTIFY: u16 = 16;
const LEGACY_STATUS: u16 = 18;
/// Device configuration starts here, or 4 bytes later while MSI-X is enabled.
const LEGACY_CONFIG: u16 = 20;
/// The part of I/O BAR 0 the driver touches: the header (24 bytes with MSI-X) and the
/// first 40 bytes of device configuration (virtio-blk reads up to `blk_size` at 20..24).
/// Every legacy BAR 0 is at least that large: it holds the header and the whole device
/// configuration (60 bytes for virtio-blk), and QEMU rounds it up to a power of two.
const LEGACY_WINDOW: u16 = 64;

/// One virtio PCI function.
#[derive(Debug)]
pub enum PciTransport {
    Legacy {
        pci: PciAddr,
        io: IoPorts,
        config: u16,
    },
    Modern {
        pci: PciAddr,
        common: MmioRegion,
        notify: MmioRegion,
        notify_multiplier: u32,
        device: MmioRegion,
        /// (queue index, offset in `notify`) of the queues set up.
        queue_notify: Vec<(u16, usize)>,
    },
}

/// A capability region as a memory window: BAR base + offset, `length` bytes.
fn cap_region(pci: PciAddr, cap: u8) -> Result<MmioRegion, InitError> {
    let bar = pci.read8(cap + 4);
    let offset = pci.read32(cap + 8);
    let length = pci.read32(cap + 12);
    match pci.bar(bar) {
        Some(Bar::Mem(base)) => {
            let start = base.checked_add(u64::from(offset)).ok_or(InitError("capability beyond 2^64"))?;
            if start.checked_add(u64::from(length)).is_none() || base < (1 << 20) {
                return Err(InitError("capability BAR at an impossible address"));
            }
            // 64-bit BARs may sit above 4 GiB (SeaBIOS's high window, Cloud Hypervisor):
            // identity-map them like the low 4 GiB.
            map_mmio(start, u64::from(length)).map_err(|_| {
                InitError("capability BAR beyond the CPU's physical address space, or no memory to map it")
            })?;
            // SAFETY: a memory BAR the firmware programmed for this virtio function,
            // identity mapped (below 4 GiB by pvh.S, above by map_mmio just now); the
            // window is the capability's own register block, whose accesses only have
            // the spec's side effects.
            Ok(unsafe { MmioRegion::new(start, length as usize) })
        }
        _ => Err(InitError("virtio capability in an unassigned or I/O BAR")),
    }
}

impl PciTransport {
    /// Where the modern interface's common configuration is (None on the legacy one).
    pub fn common_config_addr(&self) -> Option<u64> {
        match self {
            PciTransport::Modern { common, .. } => Some(common.base()),
            PciTransport::Legacy { .. } => None,
        }
    }

    /// The modern interface of `pci` (§4.1.4): find the common, notify and device
    /// configuration capabilities (the first of each type, §4.1.4.1).
    pub fn modern(pci: PciAddr) -> Result<PciTransport, InitError> {
        let (mut common, mut notify, mut device) = (None, None, None);
        for (id, off) in pci.capabilities() {
            if id != CAP_VENDOR {
                continue;
            }
            match pci.read8(off + 3) {
                CAP_COMMON_CFG if common.is_none() => common = Some(off),
                CAP_NOTIFY_CFG if notify.is_none() => notify = Some(off),
                CAP_DEVICE_CFG if device.is_none() => device = Some(off),
                _ => {}
            }
        }
        let (Some(common), Some(notify), Some(device)) = (common, notify, device) else {
            return Err(InitError("virtio PCI capabilities missing"));
        };
        let notify_multiplier = pci.read32(notify + 16);
        let t = PciTransport::Modern {
            pci,
            common: cap_region(pci, common)?,
            notify: cap_region(pci, notify)?,
            notify_multiplier,
            device: cap_region(pci, device)?,
            queue_notify: Vec::new(),
        };
        if let PciTransport::Modern { common, .. } = &t
            && common.len() < COMMON_LEN
        {
            return Err(InitError("virtio common configuration too short"));
        }
        // SAFETY: our virtio function; `negotiate` resets it before any queue exists, and
        // until then a virtio device starts no DMA (§2.1.2, §3.1.1).
        unsafe { pci.enable(COMMAND_MEMORY | COMMAND_BUS_MASTER) };
        Ok(t)
    }

    /// The legacy interface in I/O BAR 0 of a transitional device (§4.1.4.8).
    pub fn legacy(pci: PciAddr) -> Result<PciTransport, InitError> {
        let Some(Bar::Io(io)) = pci.bar(0) else {
            return Err(InitError("transitional device without an I/O BAR 0"));
        };
        // The device configuration moves by 4 bytes while MSI-X is enabled (firmware
        // leaves it off, but the loader should not assume).
        let msix_on =
            pci.capabilities().iter().any(|&(id, off)| id == CAP_MSIX && pci.read16(off + 2) & (1 << 15) != 0);
        // SAFETY: as in `modern`: a virtio function that does no DMA before it has queues.
        unsafe { pci.enable(COMMAND_IO | COMMAND_BUS_MASTER) };
        // SAFETY: I/O BAR 0 of this transitional virtio function, as the firmware assigned
        // it, holds the legacy registers (§4.1.4.8), at least LEGACY_WINDOW ports of them;
        // this transport is the only user and writes them only as the spec describes.
        let io = unsafe { IoPorts::new(io, LEGACY_WINDOW) };
        Ok(PciTransport::Legacy { pci, io, config: if msix_on { LEGACY_CONFIG + 4 } else { LEGACY_CONFIG } })
    }
}

impl Transport for PciTransport {
    fn is_modern(&self) -> bool {
        matches!(self, PciTransport::Modern { .. })
    }

    fn reset(&mut self) -> bool {
        self.set_status(0);
        // §4.1.4.3.2: wait until device_status reads back 0; bounded.
        for _ in 0..1_000_000 {
            if self.status() == 0 {
                return true;
            }
            core::hint::spin_loop();
        }
        false
    }

    fn stop_dma(&mut self) -> bool {
        let (PciTransport::Legacy { pci, .. } | PciTransport::Modern { pci, .. }) = self;
        pci.disable(COMMAND_BUS_MASTER);
        pci.read16(0x04) & COMMAND_BUS_MASTER == 0
    }

    fn status(&mut self) -> u8 {
        match self {
            PciTransport::Legacy { io, .. } => io.read8(LEGACY_STATUS),
            PciTransport::Modern { common, .. } => common.read8(COMMON_STATUS),
        }
    }

    fn set_status(&mut self, status: u8) {
        match self {
            PciTransport::Legacy { io, .. } => io.write8(LEGACY_STATUS, status),
            PciTransport::Modern { common, .. } => common.write8(COMMON_STATUS, status),
        }
    }

    fn device_features(&mut self) -> u64 {
        match self {
            PciTransport::Legacy { io, .. } => u64::from(io.read32(LEGACY_HOST_FEATURES)),
            PciTransport::Modern { common, .. } => {
                common.write32(COMMON_DFSELECT, 0);
                let lo = common.read32(COMMON_DF);
                common.write32(COMMON_DFSELECT, 1);
                let hi = common.read32(COMMON_DF);
                u64::from(lo) | (u64::from(hi) << 32)
            }
        }
    }

    fn set_driver_features(&mut self, features: u64) {
        match self {
            PciTransport::Legacy { io, .. } => io.write32(LEGACY_GUEST_FEATURES, features as u32),
            PciTransport::Modern { common, .. } => {
                common.write32(COMMON_GFSELECT, 0);
                common.write32(COMMON_GF, features as u32);
                common.write32(COMMON_GFSELECT, 1);
                common.write32(COMMON_GF, (features >> 32) as u32);
            }
        }
    }

    fn max_queue_size(&mut self, index: u16) -> u16 {
        match self {
            PciTransport::Legacy { io, .. } => {
                io.write16(LEGACY_QUEUE_SELECT, index);
                if io.read32(LEGACY_QUEUE_PFN) != 0 {
                    return 0;
                }
                io.read16(LEGACY_QUEUE_SIZE)
            }
            PciTransport::Modern { common, .. } => {
                common.write16(COMMON_Q_SELECT, index);
                if common.read16(COMMON_Q_ENABLE) != 0 {
                    return 0;
                }
                common.read16(COMMON_Q_SIZE)
            }
        }
    }

    fn can_shrink_queue(&self) -> bool {
        // The legacy PCI interface has no way to tell the device a smaller size.
        self.is_modern()
    }

    fn setup_queue(&mut self, index: u16, q: &VirtQueue) -> Result<(), InitError> {
        match self {
            PciTransport::Legacy { io, .. } => {
                let pfn = u32::try_from(q.desc_addr() / QUEUE_ALIGN as u64)
                    .map_err(|_| InitError("virtqueue above the legacy interface's reach"))?;
                io.write16(LEGACY_QUEUE_SELECT, index);
                io.write32(LEGACY_QUEUE_PFN, pfn);
                Ok(())
            }
            PciTransport::Modern { common, notify, notify_multiplier, queue_notify, .. } => {
                // §4.1.5.1.3
                common.write16(COMMON_Q_SELECT, index);
                common.write16(COMMON_Q_SIZE, q.size());
                common.write64(COMMON_Q_DESC, q.desc_addr());
                common.write64(COMMON_Q_AVAIL, q.avail_addr());
                common.write64(COMMON_Q_USED, q.used_addr());
                let off = usize::from(common.read16(COMMON_Q_NOFF)) * *notify_multiplier as usize;
                if off + 2 > notify.len() {
                    return Err(InitError("queue notify address outside the notify capability"));
                }
                queue_notify.push((index, off));
                common.write16(COMMON_Q_ENABLE, 1);
                Ok(())
            }
        }
    }

    fn notify(&mut self, index: u16) {
        match self {
            PciTransport::Legacy { io, .. } => io.write16(LEGACY_QUEUE_NOTIFY, index),
            PciTransport::Modern { notify, queue_notify, .. } => {
                if let Some(&(_, off)) = queue_notify.iter().find(|(q, _)| *q == index) {
                    notify.write16(off, index);
                }
            }
        }
    }

    fn config_generation(&mut self) -> u32 {
        match self {
            PciTransport::Legacy { .. } => 0,
            PciTransport::Modern { common, .. } => u32::from(common.read8(COMMON_CFGGENERATION)),
        }
    }

    fn read_config8(&mut self, offset: u16) -> u8 {
        match self {
            PciTransport::Legacy { io, config, .. } => io.read8(*config + offset),
            PciTransport::Modern { device, .. } => device.read8(usize::from(offset)),
        }
    }

    fn read_config32(&mut self, offset: u16) -> u32 {
        match self {
            PciTransport::Legacy { io, config, .. } => io.read32(*config + offset),
            PciTransport::Modern { device, .. } => device.read32(usize::from(offset)),
        }
    }
}
