// SPDX-License-Identifier: MIT OR Apache-2.0
//! CRC-32 (IEEE 802.3, used by GPT) and CRC-32C (Castagnoli, used by ext4
//! `metadata_csum`), table-driven, tables built at compile time.

const fn table(poly: u32) -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { poly ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static IEEE: [u32; 256] = table(0xedb8_8320);
static CASTAGNOLI: [u32; 256] = table(0x82f6_3b78);

fn update(t: &[u32; 256], mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = t[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// CRC-32 (IEEE) of `data`, as GPT stores it.
pub fn crc32(data: &[u8]) -> u32 {
    !update(&IEEE, !0, data)
}

/// Raw CRC-32 (IEEE) register update, no pre/post inversion: LVM2 checksums its label,
/// metadata area header and metadata text this way, from the seed 0xf597a6cf.
pub fn crc32_raw(seed: u32, data: &[u8]) -> u32 {
    update(&IEEE, seed, data)
}

/// Raw CRC-32C register update, no pre/post inversion: ext4 chains
/// `crc32c_le(seed, ...)` calls this way (seed `!0` for the first, then the previous value).
pub fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    update(&CASTAGNOLI, seed, data)
}

/// CRC-32C (Castagnoli) of `data`, standard form (init `!0`, final inversion).
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_raw(!0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values() {
        // The standard check input "123456789".
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32(b""), 0);
    }
}
