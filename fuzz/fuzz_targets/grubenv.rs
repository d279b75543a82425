// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz the GRUB environment block: parse any bytes; apply changes derived from the input
//! and check the block keeps its size and reads back with the new values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::config::grubenv::{self, EnvBlock};

fuzz_target!(|data: &[u8]| {
    let _ = grubenv::parse(data);
    // A real-looking block: the signature, the input as its body, padding to 1024 bytes.
    let (body, change) = data.split_at(data.len() / 2);
    let mut block = grubenv::SIGNATURE.to_vec();
    block.extend_from_slice(body);
    if block.len() < grubenv::BLOCK_SIZE {
        block.resize(grubenv::BLOCK_SIZE, b'#');
    }
    let _ = grubenv::parse(&block);
    let text = String::from_utf8_lossy(change);
    let mut it = text.splitn(2, '=');
    let name = it.next().unwrap_or("").to_string();
    let value = it.next().map(String::from);
    let changes = vec![(name.clone(), value.clone())];
    if let Ok(out) = grubenv::update(&block, &changes) {
        assert_eq!(out.len(), block.len());
        if let Ok(EnvBlock { vars, broken: None }) = grubenv::parse(&out) {
            let got = vars.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
            if value.is_some() && !name.contains('\u{fffd}') {
                assert_eq!(got, value, "{name:?}");
            }
        }
    }
    if let Ok(fresh) = grubenv::create(grubenv::BLOCK_SIZE, &[(name.clone(), value.clone().unwrap_or_default())]) {
        assert_eq!(fresh.len(), grubenv::BLOCK_SIZE);
    }
});
