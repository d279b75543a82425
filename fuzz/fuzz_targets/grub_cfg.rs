// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the GRUB script interpreter: the input, split at NUL bytes, is grub.cfg, a grubenv,
//! a file it may `source`/`configfile` and a BLS entry, on an in-memory filesystem. Any
//! input ends (within the step budget) in a menu or an error with a place; never a panic,
//! a hang or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::config::configfs::MemFs;
use rxen_loader::config::grub::{self, Limits, Options};
use rxen_loader::config::menu::{Env, fallback_entries, select_default};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0);
    let cfg = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let mut fs = MemFs::new("hd0,gpt2");
    fs.add_device("hd0,gpt2", "1111-2222", "root");
    fs.add_device("hd0,gpt1", "AAAA-BBBB", "boot");
    for path in ["/boot/grub/grubenv", "/boot/grub/custom.cfg", "/loader/entries/m-6.1.0-1.fc40.x86_64.conf"] {
        if let Some(p) = parts.next() {
            fs.add_file("hd0,gpt2", path, p.to_vec());
        }
    }
    let opts = Options { limits: Limits { steps: 20_000, ..Limits::default() }, dialect: None };
    let env = grub::initial_env("hd0,gpt2", "/boot/grub/grub.cfg");
    match grub::evaluate(&cfg, "(hd0,gpt2)/boot/grub/grub.cfg", &mut fs, &env, &opts) {
        Ok(menu) => {
            if let Some(s) = select_default(&menu, &Env::new()) {
                assert!(s.entry < menu.entries.len());
                let _ = menu.entries[s.entry].grub_cmdline();
            }
            for i in fallback_entries(&menu) {
                assert!(i < menu.entries.len());
            }
            for e in &menu.entries {
                assert!(!e.path.is_empty());
            }
        }
        Err(e) => {
            assert!(e.line as usize <= cfg.lines().count() + 1 || e.file != "(hd0,gpt2)/boot/grub/grub.cfg", "{e}");
            let _ = e.to_string();
        }
    }
});
