// SPDX-License-Identifier: MIT OR Apache-2.0
//! Console output when not on Xen: a 16550 UART at COM1 and the Bochs/QEMU debug port
//! 0xe9 (`-debugcon`; on Xen HVM the same port reaches the hypervisor's log).

use super::io::IoPorts;

// SAFETY: 0x3f8..0x400 is COM1, the ISA 16550's eight registers on every PC-compatible
// machine (and unclaimed, reading 0xff and dropping writes, where there is none, as on
// microvm without a serial port or Xen PVH). This module is its only user; it programs
// the line settings and moves bytes, and the UART does no DMA.
const COM1: IoPorts = unsafe { IoPorts::new(0x3f8, 8) };
// SAFETY: port 0xe9 is the Bochs/QEMU debug console (Xen HVM: XEN_HVM_DEBUGCONS_IOPORT,
// the hypervisor's log); where absent, writes are dropped. Only bytes are written to it.
const DEBUGCON: IoPorts = unsafe { IoPorts::new(0xe9, 1) };

/// The early console. `Copy`, stateless: every write goes straight to the ports.
#[derive(Clone, Copy, Debug)]
pub struct SerialConsole {
    com1: bool,
}

impl SerialConsole {
    /// Program COM1 for 115200 8N1 (when `com1`) and return the console.
    pub fn init(com1: bool) -> SerialConsole {
        if com1 {
            COM1.write8(1, 0x00); // IER: no interrupts
            COM1.write8(3, 0x80); // LCR: DLAB on
            COM1.write8(0, 0x01); // divisor 1 = 115200 baud
            COM1.write8(1, 0x00);
            COM1.write8(3, 0x03); // LCR: 8 data bits, no parity, 1 stop bit
            COM1.write8(2, 0xc5); // FCR: FIFO on, transmit FIFO cleared (keep typed-ahead keys), 14-byte threshold
            COM1.write8(4, 0x03); // MCR: DTR | RTS
        }
        SerialConsole { com1 }
    }

    /// The console without reprogramming the UART (after [`SerialConsole::init`]).
    pub const fn init_quiet(com1: bool) -> SerialConsole {
        SerialConsole { com1 }
    }

    /// A byte from COM1 if one has arrived (LSR bit 0, data ready). A missing UART reads
    /// 0xff: treated as no data.
    pub fn try_getc(&self) -> Option<u8> {
        if !self.com1 {
            return None;
        }
        let lsr = COM1.read8(5);
        if lsr == 0xff || lsr & 1 == 0 { None } else { Some(COM1.read8(0)) }
    }

    fn putc(&self, c: u8) {
        if self.com1 {
            // Wait for THR empty, bounded so a missing UART (reads 0xff or 0) cannot hang us.
            let mut spins = 0u32;
            while COM1.read8(5) & 0x20 == 0 && spins < 100_000 {
                spins += 1;
            }
            COM1.write8(0, c);
        }
        DEBUGCON.write8(0, c);
    }
}

impl core::fmt::Write for SerialConsole {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.putc(b'\r');
            }
            self.putc(b);
        }
        Ok(())
    }
}
