// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the kernel payload decompressors: the first byte picks the format, the rest is
//! the compressed input, the buffer is 1 MiB. Nothing may panic, no decoder may claim
//! more bytes than the buffer holds, and every error names its format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::kernel::decompress::{Format, decompress_into, detect};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else { return };
    let f = Format::ALL[usize::from(pick) % Format::ALL.len()];
    let _ = detect(input);
    let mut out = vec![0u8; 1 << 20];
    match decompress_into(f, input, &mut out) {
        Ok(n) => assert!(n <= out.len()),
        Err(e) => {
            assert_eq!(e.format, f.name());
            assert!(e.offset <= input.len() as u64, "{e}");
            let _ = e.to_string();
        }
    }
});
