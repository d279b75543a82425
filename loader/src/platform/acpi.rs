// SPDX-License-Identifier: MIT OR Apache-2.0
//! Just enough ACPI to power the machine off: RSDP → XSDT/RSDT → FADT, then either the
//! hardware-reduced SLEEP_CONTROL_REG (QEMU microvm's GED) or PM1a_CNT (pc, q35).
//! Table layouts: ACPI 6.4 spec, sections 5.2.5 (RSDP), 5.2.7/8 (RSDT/XSDT), 5.2.9 (FADT).
//! The tables come from the hypervisor, not from the guest; the walk is bounded anyway.

use crate::bootinfo::PhysMem;

/// How to ask for S5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerOff {
    /// Write `SLP_EN | SLP_TYP` to the PM1a control I/O port.
    Pm1aCnt(u16),
    /// Write `SLP_EN | SLP_TYP << 2` to this hardware-reduced sleep control register
    /// (a one-byte register in I/O space (`true`) or memory).
    SleepControl { addr: u64, io: bool },
}

fn read<const N: usize>(mem: &dyn PhysMem, paddr: u64) -> Option<[u8; N]> {
    let mut b = [0u8; N];
    mem.read(paddr, &mut b).ok()?;
    Some(b)
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Find the FADT through the RSDP at `rsdp` and say how to power off.
pub fn find_poweroff(mem: &dyn PhysMem, rsdp: u64) -> Option<PowerOff> {
    let r: [u8; 36] = read(mem, rsdp)?;
    if &r[0..8] != b"RSD PTR " {
        return None;
    }
    let (table, entry_size) =
        if r[15] >= 2 && u64_at(&r, 24) != 0 { (u64_at(&r, 24), 8) } else { (u32_at(&r, 16) as u64, 4) };
    let hdr: [u8; 36] = read(mem, table)?;
    if &hdr[0..4] != b"XSDT" && &hdr[0..4] != b"RSDT" {
        return None;
    }
    let len = u32_at(&hdr, 4) as u64;
    let count = (len.saturating_sub(36) / entry_size).min(64);
    for i in 0..count {
        let p: [u8; 8] = read(mem, table + 36 + i * entry_size)?;
        let addr = if entry_size == 8 { u64_at(&p, 0) } else { u32_at(&p, 0) as u64 };
        let sig: [u8; 4] = read(mem, addr)?;
        if &sig == b"FACP" {
            let fadt: [u8; 256] = read(mem, addr).or_else(|| {
                // A short FADT (ACPI 1.0: 116 bytes) at the very end of RAM.
                let short: [u8; 116] = read(mem, addr)?;
                let mut b = [0u8; 256];
                b[..116].copy_from_slice(&short);
                Some(b)
            })?;
            return poweroff_from_fadt(&fadt);
        }
    }
    None
}

/// Decide from the FADT bytes (zero-padded to 256).
pub fn poweroff_from_fadt(fadt: &[u8; 256]) -> Option<PowerOff> {
    let len = u32_at(fadt, 4) as usize;
    // SLEEP_CONTROL_REG: a Generic Address Structure at offset 244 (ACPI 5.0+).
    if len >= 256 {
        let space = fadt[244];
        let addr = u64_at(fadt, 248);
        if addr != 0 && (space == 0 || space == 1) {
            return Some(PowerOff::SleepControl { addr, io: space == 1 });
        }
    }
    let pm1a = u32_at(fadt, 64);
    if pm1a != 0 && pm1a <= 0xffff {
        return Some(PowerOff::Pm1aCnt(pm1a as u16));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fadt_prefers_sleep_control_register() {
        let mut f = [0u8; 256];
        f[0..4].copy_from_slice(b"FACP");
        f[4..8].copy_from_slice(&276u32.to_le_bytes());
        f[64..68].copy_from_slice(&0x604u32.to_le_bytes());
        assert_eq!(poweroff_from_fadt(&f), Some(PowerOff::Pm1aCnt(0x604)));
        f[244] = 0; // system memory
        f[248..256].copy_from_slice(&0xfea0_0000u64.to_le_bytes());
        assert_eq!(poweroff_from_fadt(&f), Some(PowerOff::SleepControl { addr: 0xfea0_0000, io: false }));
    }

    #[test]
    fn walks_rsdp_xsdt_fadt() {
        use crate::bootinfo::tests::FakeMem;
        let mut m = FakeMem::new(0x1000, 0x1000);
        let mut rsdp = [0u8; 36];
        rsdp[0..8].copy_from_slice(b"RSD PTR ");
        rsdp[15] = 2;
        rsdp[24..32].copy_from_slice(&0x1100u64.to_le_bytes());
        m.put(0x1000, &rsdp);
        let mut xsdt = [0u8; 44];
        xsdt[0..4].copy_from_slice(b"XSDT");
        xsdt[4..8].copy_from_slice(&44u32.to_le_bytes());
        xsdt[36..44].copy_from_slice(&0x1200u64.to_le_bytes());
        m.put(0x1100, &xsdt);
        let mut fadt = [0u8; 256];
        fadt[0..4].copy_from_slice(b"FACP");
        fadt[4..8].copy_from_slice(&244u32.to_le_bytes());
        fadt[64..68].copy_from_slice(&0xb004u32.to_le_bytes());
        m.put(0x1200, &fadt);
        assert_eq!(find_poweroff(&m, 0x1000), Some(PowerOff::Pm1aCnt(0xb004)));
        assert_eq!(find_poweroff(&m, 0x1100), None);
    }
}
