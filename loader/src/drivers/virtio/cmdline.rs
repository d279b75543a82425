// SPDX-License-Identifier: MIT OR Apache-2.0
//! `virtio_mmio.device=SIZE@BASE[:IRQ[:ID]]` on the domain command line: how Firecracker
//! (and any VMM that puts virtio-mmio devices where no firmware table describes them)
//! tells a guest where its devices are. Parsed as Linux parses it
//! (`drivers/virtio/virtio_mmio.c`, `vm_cmdline_set`): SIZE is a number with an optional
//! K/M/G/T/P/E suffix (`memparse`), BASE a C integer (`0x` hex, leading `0` octal, else
//! decimal, as `%lli` reads it), IRQ and ID decimal. Linux insists on the IRQ; the loader
//! polls, so a word without one is accepted too. Several words may be given; words after
//! `--` belong to init and are not looked at.
//!
//! Pure: host-tested and fuzzed (`fuzz/fuzz_targets/virtio_mmio_cmdline.rs`). A malformed
//! word is an error for that word only, naming it and the cause; the rest still count.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::cmdline::words;

/// The parameter's name (`virtio_mmio` module, `device` parameter).
pub const PARAM: &str = "virtio_mmio.device=";

/// The smallest window the driver can use: the register block (0x100 bytes, §4.2.2) and
/// the first 0x20 bytes of device configuration (virtio-blk reads up to `blk_size`).
pub const MIN_SIZE: u64 = 0x120;

/// One device a `virtio_mmio.device=` word names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdlineDevice {
    /// Size of the register window in bytes.
    pub size: u64,
    /// Guest-physical base of the register window.
    pub base: u64,
    /// The interrupt line (unused: the loader polls).
    pub irq: Option<u32>,
    /// The platform device id Linux would give it.
    pub id: Option<i32>,
}

/// A `virtio_mmio.device=` word that could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdlineError {
    /// The word as written.
    pub word: String,
    pub why: &'static str,
}

impl fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {} (want virtio_mmio.device=SIZE@BASE[:IRQ[:ID]], e.g. 4K@0xd0000000:5)", self.word, self.why)
    }
}

/// Every `virtio_mmio.device=` word of `cmdline`, in order, each parsed or rejected.
pub fn parse(cmdline: &str) -> Vec<Result<CmdlineDevice, CmdlineError>> {
    words(cmdline)
        .take_while(|w| *w != "--")
        .filter_map(|w| w.strip_prefix(PARAM).map(|v| (w, v)))
        .map(|(w, v)| parse_value(unquote(v)).map_err(|why| CmdlineError { word: w.to_string(), why }))
        .collect()
}

/// Linux drops the quotes around a parameter's value (`next_arg`).
fn unquote(v: &str) -> &str {
    let v = v.strip_prefix('"').unwrap_or(v);
    v.strip_suffix('"').unwrap_or(v)
}

/// `SIZE@BASE[:IRQ[:ID]]`.
pub fn parse_value(v: &str) -> Result<CmdlineDevice, &'static str> {
    let (size, rest) = v.split_once('@').ok_or("no '@' between size and base address")?;
    let size = memparse(size)?;
    let mut parts = rest.split(':');
    let base = parse_c_integer(parts.next().unwrap_or("")).ok_or("the base address is not a number")?;
    let irq = match parts.next() {
        None => None,
        Some(s) => Some(parse_decimal(s).filter(|&i| i != 0).ok_or("the IRQ is not a non-zero decimal number")?),
    };
    let id = match parts.next() {
        None => None,
        Some(s) => Some(parse_id(s).ok_or("the device id is not a decimal number")?),
    };
    if parts.next().is_some() {
        return Err("text after the device id");
    }
    if size < MIN_SIZE {
        return Err("the window is smaller than the virtio-mmio registers (0x120 bytes)");
    }
    if base % 4 != 0 {
        return Err("the base address is not 4-byte aligned");
    }
    if base.checked_add(size).is_none_or(|end| end > 1 << 52) {
        return Err("the window ends beyond the physical address space");
    }
    Ok(CmdlineDevice { size, base, irq, id })
}

/// `memparse`: a C integer and an optional binary suffix (K, M, G, T, P, E).
fn memparse(s: &str) -> Result<u64, &'static str> {
    let (num, shift) = match s.as_bytes().last().map(u8::to_ascii_uppercase) {
        Some(b'K') => (&s[..s.len() - 1], 10),
        Some(b'M') => (&s[..s.len() - 1], 20),
        Some(b'G') => (&s[..s.len() - 1], 30),
        Some(b'T') => (&s[..s.len() - 1], 40),
        Some(b'P') => (&s[..s.len() - 1], 50),
        Some(b'E') => (&s[..s.len() - 1], 60),
        _ => (s, 0),
    };
    let n = parse_c_integer(num).ok_or("the size is not a number (digits and an optional K/M/G suffix)")?;
    n.checked_mul(1u64 << shift).ok_or("the size does not fit in 64 bits")
}

/// `0x1f` (hex), `017` (octal), `15` (decimal); no sign, no empty digits.
fn parse_c_integer(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

fn parse_decimal(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// `%d`: an optional minus sign and decimal digits.
fn parse_id(s: &str) -> Option<i32> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(size: u64, base: u64, irq: Option<u32>, id: Option<i32>) -> Result<CmdlineDevice, &'static str> {
        Ok(CmdlineDevice { size, base, irq, id })
    }

    #[test]
    fn linux_forms() {
        // Firecracker's form, QEMU microvm's, an explicit id, upper-case suffix, decimal
        // and octal bases, no IRQ (the loader polls).
        assert_eq!(parse_value("4K@0xd0000000:5"), dev(4096, 0xd000_0000, Some(5), None));
        assert_eq!(parse_value("512@0xfeb02e00:12"), dev(512, 0xfeb0_2e00, Some(12), None));
        assert_eq!(parse_value("0x1000@0xd0001000:6:3"), dev(4096, 0xd000_1000, Some(6), Some(3)));
        assert_eq!(parse_value("1M@4096:7:-1"), dev(1 << 20, 4096, Some(7), Some(-1)));
        assert_eq!(parse_value("4k@010000000000"), dev(4096, 0o10000000000, None, None));
        assert_eq!(parse_value("1G@0x100000000"), dev(1 << 30, 1 << 32, None, None));
    }

    #[test]
    fn malformed_values_say_why() {
        for (v, why) in [
            ("", "no '@'"),
            ("4K", "no '@'"),
            ("@0xd0000000", "size is not a number"),
            ("4Q@0xd0000000", "size is not a number"),
            ("-4K@0xd0000000", "size is not a number"),
            ("4K@", "base address is not a number"),
            ("4K@0x", "base address is not a number"),
            ("4K@0xd000zz00", "base address is not a number"),
            ("4K@0xd0000000:", "IRQ"),
            ("4K@0xd0000000:0", "IRQ"),
            ("4K@0xd0000000:five", "IRQ"),
            ("4K@0xd0000000:5:", "device id"),
            ("4K@0xd0000000:5:x", "device id"),
            ("4K@0xd0000000:5:1:2", "after the device id"),
            ("16@0xd0000000", "smaller than"),
            ("4K@0xd0000002", "aligned"),
            ("16E@0x1000", "does not fit"),
            ("1P@0xfffffffffffff000", "beyond"),
            ("4K@0xffffffffffffffff", "aligned"),
            ("4K@99999999999999999999999", "base address is not a number"),
            ("4K@089", "base address is not a number"),
        ] {
            let e = parse_value(v).expect_err(v);
            assert!(e.contains(why), "{v:?}: {e:?} should mention {why:?}");
        }
    }

    #[test]
    fn every_word_in_order_and_only_those() {
        let line = "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 root=/dev/vda \
                    virtio_mmio.device=bogus virtio_mmio.device=\"512@0xfeb00000:12\" \
                    xvirtio_mmio.device=4K@0x1000:1 -- virtio_mmio.device=4K@0xe0000000:9";
        let got = parse(line);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], Ok(CmdlineDevice { size: 4096, base: 0xd000_0000, irq: Some(5), id: None }));
        let e = got[1].clone().unwrap_err();
        assert_eq!(e.word, "virtio_mmio.device=bogus");
        assert!(e.to_string().contains("no '@'") && e.to_string().contains("SIZE@BASE"), "{e}");
        assert_eq!(got[2], Ok(CmdlineDevice { size: 512, base: 0xfeb0_0000, irq: Some(12), id: None }));
        assert!(parse("").is_empty() && parse("virtio_mmio.device").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,80}") {
            let _ = parse(&s);
            let _ = parse_value(&s);
        }

        #[test]
        fn round_trips(size in MIN_SIZE..(1u64 << 40), base in 0u64..(1u64 << 50), irq in 1u32.., id in proptest::option::of(-1i32..1000)) {
            let base = base & !3;
            let mut w = alloc::format!("{size}@{base:#x}:{irq}");
            if let Some(id) = id {
                w += &alloc::format!(":{id}");
            }
            proptest::prop_assert_eq!(parse_value(&w), Ok(CmdlineDevice { size, base, irq: Some(irq), id }));
        }
    }
}
