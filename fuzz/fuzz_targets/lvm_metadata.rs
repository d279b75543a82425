// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzz LVM: the first byte picks the mode. Even: the input is metadata text for two
//! PVs (the uuids `pv0`/`pv1` of zeroed 4 MiB devices) and every LV it describes is
//! activated and read. Odd: the input is a PV device whose label and metadata areas are
//! probed. Nothing panics or hangs; every LV read inside it either works or fails cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxen_loader::block::{BlockDevice, SharedDisk, VecDisk};
use rxen_loader::volume::lvm::{FoundPv, PvLabel, activate, parse_text, probe};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    if sel & 1 == 1 {
        let mut d = VecDisk::new(rest.to_vec(), 512);
        if let Ok(Some(l)) = probe(&mut d) {
            for t in &l.texts {
                let _ = parse_text(t);
            }
        }
        return;
    }
    if parse_text(rest).is_err() {
        return;
    }
    let pvs: Vec<FoundPv> = (0..2)
        .map(|i| FoundPv {
            name: format!("d{i}"),
            label: PvLabel {
                uuid: format!("pv{i}"),
                device_size: 4 << 20,
                texts: if i == 0 { vec![rest.to_vec()] } else { Vec::new() },
                warnings: Vec::new(),
            },
            dev: SharedDisk::new(Box::new(VecDisk::new(vec![0u8; 4 << 20], 512))),
            start: 0,
            blocks: 8192,
        })
        .collect();
    for mut lv in activate(&pvs, &mut |m| drop(m)) {
        let n = lv.dev.num_blocks();
        let mut b = vec![0u8; 4096];
        if n >= 8 {
            let _ = lv.dev.read_blocks(0, &mut b);
            let _ = lv.dev.read_blocks(n - 8, &mut b);
        }
        assert!(lv.dev.read_blocks(n, &mut b[..512]).is_err());
    }
});
