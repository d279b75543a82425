// SPDX-License-Identifier: MIT OR Apache-2.0
//! A monotonic clock for driver timeouts: the TSC, with its frequency taken from the
//! hypervisor or CPUID when they state it, else measured once against PIT channel 2.
//!
//! The loader runs with interrupts off, so nothing here sleeps: [`Deadline`] is polled.
//! Precision does not matter much (timeouts of seconds); never hanging does: every loop
//! here is bounded even when the PIT is absent.

use core::sync::atomic::{AtomicU64, Ordering};

use super::io::IoPorts;
use super::{cpuid, xen_cpuid_base};

/// The TSC frequency in kHz, 0 until first measured.
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);

/// Used when nothing states or measures the frequency: deliberately high, so timeouts
/// come late (a 5 s deadline lasts 5 s at 4 GHz, longer on slower CPUs) rather than early.
const FALLBACK_KHZ: u64 = 4_000_000;

/// The PIT's input clock, Hz (i8254 datasheet: 1.193182 MHz).
const PIT_HZ: u64 = 1_193_182;
/// PIT ticks to measure over: ~10 ms.
const PIT_TICKS: u64 = PIT_HZ / 100;

// SAFETY: 0x40..0x44 are the i8254 PIT's counters and mode register on every PC (absent
// on Xen PVH, which `pit_calibrate` never probes). Only channel 2 (no interrupt; it gates
// the speaker only) is programmed, and only here; the PIT does no DMA.
const PIT: IoPorts = unsafe { IoPorts::new(0x40, 4) };
const PIT_CH2: u16 = 2;
const PIT_CMD: u16 = 3;
// SAFETY: port 0x61 is system control port B: bit 0 gates PIT channel 2, bit 1 drives
// the speaker. Written only by `pit_calibrate`, which restores the value it read.
const PORT_B: IoPorts = unsafe { IoPorts::new(0x61, 1) };

/// The raw time stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads a counter (CR4.TSD is clear: pvh.S never sets it, so it is
    // allowed at CPL 0 anyway); no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The TSC frequency in kHz, determined on first use (the PIT measurement takes ~10 ms).
pub fn tsc_khz() -> u64 {
    // Host unit tests (drivers against fake devices) must not touch the PIT's ports.
    #[cfg(test)]
    return FALLBACK_KHZ;
    #[allow(unreachable_code)]
    let khz = TSC_KHZ.load(Ordering::Relaxed);
    if khz != 0 {
        return khz;
    }
    let khz = stated_khz().or_else(pit_calibrate).unwrap_or(FALLBACK_KHZ);
    TSC_KHZ.store(khz, Ordering::Relaxed);
    khz
}

/// Microseconds on the TSC's time line (arbitrary origin, monotonic).
pub fn now_us() -> u64 {
    ticks_to_us(rdtsc(), tsc_khz())
}

fn ticks_to_us(ticks: u64, khz: u64) -> u64 {
    (u128::from(ticks) * 1000 / u128::from(khz.max(1))) as u64
}

fn us_to_ticks(us: u64, khz: u64) -> u64 {
    (u128::from(us) * u128::from(khz) / 1000).min(u128::from(u64::MAX)) as u64
}

/// The frequency as the platform states it: Xen's TSC leaf, then CPUID 0x15 (TSC/crystal
/// ratio, Intel SDM vol. 2A "CPUID"), then 0x16 (base frequency in MHz).
fn stated_khz() -> Option<u64> {
    if let Some(base) = xen_cpuid_base() {
        // xen/include/public/arch-x86/cpuid.h: leaf base+3, subleaf 0, ECX = TSC kHz.
        let (max, ..) = cpuid(base);
        if max >= base + 3 {
            let (_, _, khz, _) = cpuid(base + 3);
            if khz != 0 {
                return Some(u64::from(khz));
            }
        }
    }
    let (max_leaf, ..) = cpuid(0);
    if max_leaf >= 0x15 {
        let (denom, numer, crystal_hz, _) = cpuid(0x15);
        if denom != 0 && numer != 0 && crystal_hz != 0 {
            return Some(u64::from(crystal_hz) * u64::from(numer) / u64::from(denom) / 1000);
        }
    }
    if max_leaf >= 0x16 {
        let (base_mhz, ..) = cpuid(0x16);
        if base_mhz & 0xffff != 0 {
            return Some(u64::from(base_mhz & 0xffff) * 1000);
        }
    }
    None
}

/// Read PIT channel 2's current count (counter latch command, then low and high byte).
fn pit_ch2_count() -> u16 {
    PIT.write8(PIT_CMD, 0b1000_0000); // channel 2, counter latch
    let lo = PIT.read8(PIT_CH2);
    let hi = PIT.read8(PIT_CH2);
    u16::from_le_bytes([lo, hi])
}

/// Count TSC ticks while PIT channel 2 counts [`PIT_TICKS`] down in mode 0. `None` when
/// the PIT does not count (absent: e.g. Xen PVH) or the result is implausible.
fn pit_calibrate() -> Option<u64> {
    if xen_cpuid_base().is_some() {
        return None; // PVH domains have no PIT; HVM ones state the frequency above.
    }
    let port_b = PORT_B.read8(0);
    PORT_B.write8(0, (port_b & !0x02) | 0x01); // gate channel 2 on, speaker off
    PIT.write8(PIT_CMD, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
    PIT.write8(PIT_CH2, 0xff);
    PIT.write8(PIT_CH2, 0xff);
    let mut result = None;
    // The new count is loaded on the next PIT clock edge: start from the first read.
    let (c0, t0) = (pit_ch2_count(), rdtsc());
    // Bounded: ~10 ms of polling takes far fewer reads than this even under emulation.
    for _ in 0..5_000_000u32 {
        let c = pit_ch2_count();
        let t = rdtsc();
        let elapsed = u64::from(c0.wrapping_sub(c));
        if elapsed >= PIT_TICKS {
            let khz = (t - t0).saturating_mul(PIT_HZ) / elapsed / 1000;
            // 10 MHz .. 100 GHz: anything else means the PIT lied.
            result = Some(khz).filter(|k| (10_000..=100_000_000).contains(k));
            break;
        }
    }
    PORT_B.write8(0, port_b);
    result
}

/// A point in time to poll against: `Deadline::after_ms(5000).expired()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    end_tsc: u64,
}

impl Deadline {
    /// `us` microseconds from now.
    pub fn after_us(us: u64) -> Deadline {
        let ticks = us_to_ticks(us, tsc_khz());
        Deadline { end_tsc: rdtsc().saturating_add(ticks) }
    }

    /// `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Deadline {
        Deadline::after_us(ms.saturating_mul(1000))
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        rdtsc() >= self.end_tsc
    }

    /// Microseconds left (0 once expired).
    pub fn remaining_us(&self) -> u64 {
        ticks_to_us(self.end_tsc.saturating_sub(rdtsc()), tsc_khz())
    }
}

/// Busy-wait `us` microseconds.
pub fn delay_us(us: u64) {
    let d = Deadline::after_us(us);
    while !d.expired() {
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(ticks_to_us(3_000_000, 3_000_000), 1000);
        assert_eq!(us_to_ticks(1000, 3_000_000), 3_000_000);
        assert_eq!(us_to_ticks(u64::MAX, 100_000_000), u64::MAX);
        assert_eq!(ticks_to_us(u64::MAX, 1_000_000), u64::MAX / 1000);
    }
}
