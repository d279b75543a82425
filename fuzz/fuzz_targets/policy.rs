// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the policy parser (TOML subset + schema) and the domain command-line split: any
//! text yields a policy or an error with a place; never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::cmdline::{kernel_cmdline, parse_domain_cmdline};
use rxen_loader::config::policy::parse_policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_policy(text) {
        Ok(p) => {
            let order = p.order();
            assert_eq!(order.len(), p.steps.len());
            if let Some(d) = p.default {
                assert_eq!(order[0], d);
            }
        }
        Err(e) => {
            // Places are 1-based and inside the text (+1 for an error at EOF).
            assert!(e.line >= 1 && e.col >= 1);
            assert!(e.line as usize <= text.lines().count() + 1, "{e}");
            let _ = e.in_file("rxen.toml");
        }
    }
    let d = parse_domain_cmdline(text);
    assert!(!d.kernel_part.split_ascii_whitespace().any(|w| w.starts_with("rxen.")) || d.kernel_part.contains('"'));
    let _ = kernel_cmdline("console=hvc0", &d);
});
