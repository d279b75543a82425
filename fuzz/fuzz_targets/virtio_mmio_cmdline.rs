// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the `virtio_mmio.device=SIZE@BASE[:IRQ[:ID]]` parser: any domain command line
//! (the VMM's, or the guest owner's `extra=`) parses without panicking, and every device
//! it accepts is a window the probe can use as is.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::drivers::virtio::cmdline::{self, MIN_SIZE};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // As a whole command line, and as the value of one word.
    for line in [text.to_string(), format!("{}{text}", cmdline::PARAM)] {
        for d in cmdline::parse(&line).into_iter().flatten() {
            assert!(d.size >= MIN_SIZE && d.base % 4 == 0);
            assert!(d.base.checked_add(d.size).is_some_and(|end| end <= 1 << 52));
            assert_ne!(d.irq, Some(0));
        }
    }
    let _ = cmdline::parse_value(&text);
});
