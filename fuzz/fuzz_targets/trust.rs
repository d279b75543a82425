// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz verified boot's parsers of guest bytes: a detached signature file (`FILE.sig` on
//! the guest's disk) checked against a file, and a keys file. Nothing may panic; an
//! accepted signature must really be by the trusted key over this file's digest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::trust::{self, Accepted};

fuzz_target!(|data: &[u8]| {
    // The first half is the signature file, the rest the file it signs.
    let (sig, file) = data.split_at(data.len() / 2);
    let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32]));
    let keys = trust::parse_keys(&trust::public_key_line(&kp.pk, "fuzz")).unwrap();
    match trust::check(file, None, Ok(sig), &keys) {
        Ok(Accepted::Signed { key, .. }) => {
            assert_eq!(key, keys[0].id);
            let s = trust::parse_signature(sig).unwrap();
            assert_eq!(s.digest, rxen_memdisk::sha256(file));
        }
        Ok(Accepted::Pinned) => unreachable!("no pin was given"),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = trust::parse_keys(text);
    }
});
