// SPDX-License-Identifier: MIT OR Apache-2.0
//! Device drivers: virtio-blk over virtio-mmio and virtio-pci.
//!
//! [`probe_block_devices`] finds the disks and names them the way the domain's owner
//! lists them: `vda` is the first disk on the QEMU command line.

pub mod virtio;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::block::BlockDevice;
use crate::platform::paging::map_mmio;
use crate::platform::{pci, xen_cpuid_base};
use virtio::blk::VirtioBlk;
use virtio::mmio::{MICROVM_BASE, MICROVM_SLOT_SIZE, MICROVM_SLOTS, MmioTransport};
use virtio::pci::{DEVICE_BLOCK_MODERN, DEVICE_BLOCK_TRANSITIONAL, PciTransport, VENDOR_VIRTIO};
use virtio::{DEVICE_ID_BLOCK, MmioRegion, Transport};

/// A disk found by [`probe_block_devices`]: (name, description, device).
pub type Disk = (String, String, Box<dyn BlockDevice>);

/// Linux's name for the `index`th virtio disk: vda..vdz, vdaa..vdzz, ...
pub fn disk_name(index: usize) -> String {
    let mut letters = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        n -= 1;
        letters.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    letters.reverse();
    format!("vd{}", String::from_utf8(letters).unwrap_or_default())
}

/// Every virtio block device, ready to read, in the order Linux would name them:
/// first the virtio-mmio devices the domain command line names
/// (`virtio_mmio.device=SIZE@BASE[:IRQ[:ID]]`, as Firecracker describes its devices), in
/// command-line order; then on PCI machines (pc, q35, Cloud Hypervisor) the PCI functions
/// in bus/device/function order, or on microvm (no PCI) its fixed virtio-mmio slots from
/// the highest down, which is how QEMU fills them, less any the command line named
/// already. Names follow position: a device that fails to initialise is left out but
/// keeps its name, so `vdb` is always the second disk given. Every word or device that
/// could not be used is reported to `log`, never fatal. On Xen (no virtio; unmapped MMIO
/// can fault) the list is empty.
pub fn probe_block_devices(cmdline: &str, log: &mut dyn FnMut(&str)) -> Vec<Disk> {
    if xen_cpuid_base().is_some() {
        return Vec::new();
    }
    let mut found: Vec<(String, Probed)> = Vec::new();
    // Register windows already probed (command line first, then microvm's slots).
    let mut seen: Vec<(u64, u64)> = Vec::new();
    for word in virtio::cmdline::parse(cmdline) {
        let d = match word {
            Ok(d) => d,
            Err(e) => {
                log(&format!("virtio-mmio: skipping {e}"));
                continue;
            }
        };
        let what = format!("virtio_mmio.device at {:#x}+{:#x}", d.base, d.size);
        if seen.iter().any(|&(b, l)| d.base < b + l && b < d.base + d.size) {
            log(&format!("{what}: overlaps a device named before it; skipped"));
            continue;
        }
        seen.push((d.base, d.size));
        if let Err(e) = map_mmio(d.base, d.size) {
            log(&format!("{what}: cannot be mapped: {e}; skipped"));
            continue;
        }
        // SAFETY: the VMM named this window as a virtio-mmio device's registers on the
        // command line, which is how it describes them (as Linux trusts it); it is
        // identity mapped (map_mmio above), and probing reads only the identification
        // registers, which have no side effects.
        let regs = unsafe { MmioRegion::new(d.base, d.size as usize) };
        let magic = regs.read32(0);
        let Some((t, id)) = MmioTransport::probe(regs) else {
            log(&format!("{what}: no virtio-mmio device there (magic {magic:#010x}); skipped"));
            continue;
        };
        if id != DEVICE_ID_BLOCK {
            log(&format!("{what}: virtio device type {id}, not a block device; skipped"));
            continue;
        }
        let kind = if t.is_modern() { "modern" } else { "legacy" };
        found.push((format!("virtio-blk mmio {:#x} (virtio_mmio.device=, {kind})", d.base), blk(t)));
    }
    if pci::present() {
        // QEMU only places virtio-mmio transports on microvm, which has no 0xcf8 PCI; on
        // pc/q35 the microvm window may hold some PCI BAR: do not touch it.
        for f in pci::enumerate() {
            let kind = match (f.vendor, f.device) {
                (VENDOR_VIRTIO, DEVICE_BLOCK_MODERN) => "modern",
                (VENDOR_VIRTIO, DEVICE_BLOCK_TRANSITIONAL) => "transitional, legacy interface",
                _ => continue,
            };
            let t = if f.device == DEVICE_BLOCK_MODERN {
                PciTransport::modern(f.addr)
            } else {
                PciTransport::legacy(f.addr)
            };
            let high = t.as_ref().ok().and_then(PciTransport::common_config_addr).filter(|&a| a >= 1 << 32);
            let desc = match high {
                Some(a) => format!("virtio-blk pci {} ({kind}, 64-bit BAR above 4 GiB, registers at {a:#x})", f.addr),
                None => format!("virtio-blk pci {} ({kind})", f.addr),
            };
            found.push((desc, t.and_then(blk)));
        }
    } else {
        for slot in (0..MICROVM_SLOTS).rev() {
            let base = MICROVM_BASE + u64::from(slot) * MICROVM_SLOT_SIZE;
            if seen.iter().any(|&(b, l)| base < b + l && b < base + MICROVM_SLOT_SIZE) {
                continue; // named on the command line: probed (and named) there
            }
            // SAFETY: no PCI and not Xen: this is QEMU microvm (or no device at all, where
            // reads return all ones), whose virtio-mmio slots are these 0x200-byte windows
            // below 4 GiB; reading their identification registers has no side effects.
            let regs = unsafe { MmioRegion::new(base, MICROVM_SLOT_SIZE as usize) };
            let Some((t, id)) = MmioTransport::probe(regs) else { continue };
            if id != DEVICE_ID_BLOCK {
                continue;
            }
            let kind = if t.is_modern() { "modern" } else { "legacy" };
            found.push((format!("virtio-blk mmio slot {slot} ({kind})"), blk(t)));
        }
    }
    let mut disks = Vec::new();
    for (i, (desc, dev)) in found.into_iter().enumerate() {
        let name = disk_name(i);
        match dev {
            Ok(d) => disks.push((name, desc, d)),
            Err(e) => log(&format!("{name}: {desc}: {e}")),
        }
    }
    disks
}

/// A device brought up, or why not.
type Probed = Result<Box<dyn BlockDevice>, virtio::InitError>;

fn blk<T: Transport + 'static>(t: T) -> Probed {
    VirtioBlk::new(t).map(|d| Box::new(d) as Box<dyn BlockDevice>)
}

#[cfg(test)]
mod tests {
    use super::disk_name;

    #[test]
    fn names_like_linux() {
        assert_eq!(disk_name(0), "vda");
        assert_eq!(disk_name(25), "vdz");
        assert_eq!(disk_name(26), "vdaa");
        assert_eq!(disk_name(27), "vdab");
        assert_eq!(disk_name(26 + 26 * 26), "vdaaa");
    }
}
