// SPDX-License-Identifier: MIT OR Apache-2.0
//! virtio (Virtual I/O Device specification 1.1, "the spec" below): the transports
//! (virtio-mmio §4.2, virtio-pci §4.1, both legacy and modern), the split virtqueue
//! (§2.6) and the block device (§5.2). Polled only: the loader runs with interrupts off.

pub mod blk;
pub mod cmdline;
pub mod mmio;
pub mod pci;
pub mod queue;

use queue::VirtQueue;

/// Device status bits (§2.1).
pub mod status {
    pub const ACKNOWLEDGE: u8 = 1;
    pub const DRIVER: u8 = 2;
    pub const DRIVER_OK: u8 = 4;
    pub const FEATURES_OK: u8 = 8;
    pub const DEVICE_NEEDS_RESET: u8 = 64;
    pub const FAILED: u8 = 128;
}

/// VIRTIO_F_VERSION_1 (§6): the device (and driver) follow the 1.x (modern) layout.
pub const F_VERSION_1: u64 = 1 << 32;

/// Device IDs (§5).
pub const DEVICE_ID_BLOCK: u32 = 2;

/// Why a device could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitError(pub &'static str);

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}

/// What the block driver needs from a transport. Implemented by [`mmio::MmioTransport`]
/// and [`pci::PciTransport`]; device configuration offsets are relative to the
/// device-specific configuration space.
pub trait Transport {
    /// Whether this is a modern (1.x) interface; legacy ones have 32 feature bits, no
    /// FEATURES_OK step, and page-frame queue addresses.
    fn is_modern(&self) -> bool;
    /// Write 0 to the status register (§2.1.2: the device forgets everything, stops
    /// using the queues) and wait until it reads back 0. False if it never did: the
    /// device may still be using its queues and buffers.
    fn reset(&mut self) -> bool;
    /// Stop the device's DMA whatever state it is in, when the transport can (PCI: clear
    /// bus mastering). Used when a reset was not acknowledged. False if it cannot.
    fn stop_dma(&mut self) -> bool {
        false
    }
    fn status(&mut self) -> u8;
    fn set_status(&mut self, status: u8);
    /// The device's feature bits (bits 32.. are 0 on legacy interfaces).
    fn device_features(&mut self) -> u64;
    fn set_driver_features(&mut self, features: u64);
    /// The largest size queue `index` may have (0: no such queue).
    fn max_queue_size(&mut self, index: u16) -> u16;
    /// Whether the driver may choose a queue smaller than [`Transport::max_queue_size`]
    /// (not on the legacy PCI interface).
    fn can_shrink_queue(&self) -> bool {
        true
    }
    /// Hand queue `index` to the device (its size is `q.size()`).
    fn setup_queue(&mut self, index: u16, q: &VirtQueue) -> Result<(), InitError>;
    /// Tell the device that queue `index` has new buffers.
    fn notify(&mut self, index: u16);
    /// The configuration generation (§2.4.1); constant 0 where the interface has none.
    fn config_generation(&mut self) -> u32;
    fn read_config8(&mut self, offset: u16) -> u8;
    fn read_config32(&mut self, offset: u16) -> u32;

    /// A 64-bit configuration field, read consistently (§2.4.1: retry while the
    /// generation changes).
    fn read_config64(&mut self, offset: u16) -> u64 {
        loop {
            let before = self.config_generation();
            let lo = self.read_config32(offset);
            let hi = self.read_config32(offset + 4);
            if self.config_generation() == before {
                return u64::from(lo) | (u64::from(hi) << 32);
            }
        }
    }
}

/// The device initialisation sequence up to feature negotiation (§3.1.1 steps 1-6):
/// reset, ACKNOWLEDGE, DRIVER, negotiate, FEATURES_OK (modern only). Returns the
/// negotiated features: `wanted & offered`, plus VERSION_1 on modern interfaces (and
/// failure if a modern device does not offer it). On error the device is marked FAILED
/// and reset.
pub fn negotiate<T: Transport + ?Sized>(t: &mut T, wanted: u64) -> Result<u64, InitError> {
    t.reset();
    t.set_status(status::ACKNOWLEDGE);
    t.set_status(status::ACKNOWLEDGE | status::DRIVER);
    let offered = t.device_features();
    let mut accepted = offered & wanted & 0xffff_ffff;
    if t.is_modern() {
        if offered & F_VERSION_1 == 0 {
            t.set_status(status::FAILED);
            t.reset();
            return Err(InitError("modern interface without VIRTIO_F_VERSION_1"));
        }
        accepted |= F_VERSION_1;
    }
    t.set_driver_features(accepted);
    if t.is_modern() {
        t.set_status(status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        if t.status() & status::FEATURES_OK == 0 {
            t.set_status(status::FAILED);
            t.reset();
            return Err(InitError("the device rejected our features (FEATURES_OK not set)"));
        }
    }
    Ok(accepted)
}

/// The one place device memory is touched: a window of MMIO registers, identity mapped.
/// Accesses are volatile and of exactly the width asked for (§4.1.3.1, §4.2.2: fields
/// are accessed with their natural width).
#[derive(Clone, Copy, Debug)]
pub struct MmioRegion {
    base: usize,
    len: usize,
}

impl MmioRegion {
    /// # Safety
    /// `base .. base + len` must be device registers (no RAM the loader uses), identity
    /// mapped (below 4 GiB by pvh.S; above it by [`crate::platform::paging::map_mmio`]),
    /// and accessing them must be free of side effects beyond the device's documented
    /// ones.
    pub unsafe fn new(base: u64, len: usize) -> MmioRegion {
        MmioRegion { base: base as usize, len }
    }

    pub fn base(&self) -> u64 {
        self.base as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn at<T>(&self, offset: usize) -> *mut T {
        let size = core::mem::size_of::<T>();
        assert!(offset.is_multiple_of(size) && offset + size <= self.len, "MMIO access outside its window");
        (self.base + offset) as *mut T
    }

    pub fn read8(&self, offset: usize) -> u8 {
        // SAFETY: inside the window `new`'s caller vouched for; naturally aligned (checked).
        unsafe { self.at::<u8>(offset).read_volatile() }
    }
    pub fn read16(&self, offset: usize) -> u16 {
        // SAFETY: as for read8.
        unsafe { self.at::<u16>(offset).read_volatile() }
    }
    pub fn read32(&self, offset: usize) -> u32 {
        // SAFETY: as for read8.
        unsafe { self.at::<u32>(offset).read_volatile() }
    }
    pub fn write8(&self, offset: usize, v: u8) {
        // SAFETY: as for read8.
        unsafe { self.at::<u8>(offset).write_volatile(v) }
    }
    pub fn write16(&self, offset: usize, v: u16) {
        // SAFETY: as for read8.
        unsafe { self.at::<u16>(offset).write_volatile(v) }
    }
    pub fn write32(&self, offset: usize, v: u32) {
        // SAFETY: as for read8.
        unsafe { self.at::<u32>(offset).write_volatile(v) }
    }
    /// A 64-bit field as two 32-bit halves, low first (allowed by §4.1.3.1 and §4.2.2).
    pub fn write64(&self, offset: usize, v: u64) {
        self.write32(offset, v as u32);
        self.write32(offset + 4, (v >> 32) as u32);
    }
}
