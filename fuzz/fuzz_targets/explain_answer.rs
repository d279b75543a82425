// SPDX-License-Identifier: MIT OR Apache-2.0
//! The sandboxed explain child's answer as its parent reads it (mkimage/src/answer.rs,
//! included by path: the child parsed guest data, so these bytes are hostile). Decoding
//! never panics; what decodes encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../mkimage/src/answer.rs"]
mod answer;

fuzz_target!(|data: &[u8]| {
    if let Some(a) = answer::Answer::decode(data) {
        assert_eq!(a.encode(), data, "a decoded answer must encode to the bytes it came from");
    }
});
