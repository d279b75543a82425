// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the extlinux.conf/syslinux.cfg reader: the input (split at a NUL byte) is the
//! configuration and a file it may INCLUDE (itself included, to exercise the depth limit).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::config::configfs::MemFs;
use rxen_loader::config::extlinux;
use rxen_loader::config::menu::{Env, select_default};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(2, '\0');
    let cfg = parts.next().unwrap_or("");
    let mut fs = MemFs::new("d");
    fs.add_file("d", "/boot/extlinux/extlinux.conf", cfg.as_bytes().to_vec());
    fs.add_file("d", "/boot/extlinux/inc.cfg", parts.next().unwrap_or(cfg).as_bytes().to_vec());
    if let Ok(menu) = extlinux::load(&mut fs, "d", "/boot/extlinux/extlinux.conf") {
        assert!(!menu.entries.is_empty());
        if let Some(s) = select_default(&menu, &Env::new()) {
            assert!(s.entry < menu.entries.len());
        }
    }
});
