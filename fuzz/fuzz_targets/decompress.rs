// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the kernel payload decompressors: the first byte picks the format, the rest is
//! the compressed input, the buffer is 1 MiB. Nothing may panic, no decoder may claim
//! more bytes than the buffer holds, every error names its format, and the working memory
//! read from the header (decompress::working_memory) is computed without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::kernel::decompress::{Format, decompress_into, detect, working_memory};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else { return };
    let f = Format::ALL[usize::from(pick) % Format::ALL.len()];
    let _ = detect(input);
    // The decoder's window, from the stream's own header (xz: its first block's LZMA2
    // dictionary): never panics, at least the 2 MiB of tables.
    assert!(working_memory(f, input, 1 << 20) >= 2 << 20);
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
