// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the GRUB legacy menu.lst reader (and its `default` file for `default saved`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::config::configfs::MemFs;
use rxen_loader::config::menu::{Env, fallback_entries, select_default};
use rxen_loader::config::menulst;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(2, '\0');
    let cfg = parts.next().unwrap_or("");
    let mut fs = MemFs::new("hd0,1");
    fs.add_file("hd0,1", "/grub/default", parts.next().unwrap_or("0").as_bytes().to_vec());
    let _ = menulst::legacy_device(cfg.lines().next().unwrap_or(""));
    if let Ok(menu) = menulst::evaluate(cfg, "/grub/menu.lst", "hd0,1", &mut fs) {
        if let Some(s) = select_default(&menu, &Env::new()) {
            assert!(s.entry < menu.entries.len());
        }
        assert!(fallback_entries(&menu).iter().all(|&i| i < menu.entries.len()));
    }
});
