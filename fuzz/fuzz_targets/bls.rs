// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the BLS reader: entries (split at NUL bytes) parsed in both dialects, sorted the
//! way rhboot's blscfg sorts them, read as a menu (the first part also as systemd-boot's
//! loader.conf); the rpm version comparison and loader.conf's glob.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use rxen_loader::config::bls::{self, Dialect};
use rxen_loader::config::configfs::MemFs;
use rxen_loader::config::menu::{Env, select_default};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text.split('\0').take(16).collect();
    let mut fs = MemFs::new("d");
    let mut entries = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let first = p.lines().next().unwrap_or("");
        let name = format!("{}-{i}.conf", first.chars().take(40).collect::<String>().replace('/', "_"));
        entries.push(bls::parse_entry(&name, p, Dialect::Rhboot));
        let _ = bls::parse_entry(&name, p, Dialect::Spec);
        fs.add_file("d", &format!("/loader/entries/{}", name.replace('\n', "_")), p.as_bytes().to_vec());
        // vercmp is antisymmetric.
        if let Some(other) = parts.get(i + 1) {
            let (a, b) = (first, other.lines().next().unwrap_or(""));
            assert_eq!(bls::vercmp(a, b), bls::vercmp(b, a).reverse(), "{a:?} {b:?}");
            assert_eq!(bls::vercmp(a, a), Ordering::Equal);
        }
        let _ = bls::expand_rhboot(Some(p), &|k: &str| (k.len() % 2 == 0).then(|| k.to_string()));
    }
    // systemd-boot's loader.conf (the first part) and its default glob over entry ids.
    if let Some(conf) = parts.first() {
        let c = bls::parse_loader_conf(conf);
        if let (Some(pat), Some(name)) = (c.default.as_deref(), parts.get(1)) {
            let _ = bls::glob(pat, name);
        }
        fs.add_file("d", "/loader/loader.conf", conf.as_bytes().to_vec());
    }
    let n = entries.len();
    assert!(bls::sort_rhboot(entries).len() <= n);
    let mut env = Env::new();
    env.insert("kernelopts".into(), "root=/dev/vda ro".into());
    if let Ok(menu) = bls::load(&mut fs, "d", &env) {
        if let Some(s) = select_default(&menu, &env) {
            assert!(s.entry < menu.entries.len());
        }
    }
});
