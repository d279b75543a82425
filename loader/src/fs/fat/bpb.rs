// SPDX-License-Identifier: MIT OR Apache-2.0
//! The boot sector's BIOS Parameter Block (fatgen103 §3): the probe's sanity checks, the
//! FAT type by cluster count (§3.5) and the layout every later read relies on.

use crate::fs::FsError;

use super::FS;

/// Bytes of the boot sector the reader looks at (the BPB and the 0x55AA at 510).
pub(super) const BOOT_SECTOR: usize = 512;

/// FAT12, FAT16 or FAT32: the width of a FAT entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatKind {
    Fat12,
    Fat16,
    Fat32,
}

/// The layout of a FAT volume, from its BPB, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Bpb {
    pub bytes_per_sector: u32,
    pub sectors_per_cluster: u32,
    pub reserved_sectors: u32,
    pub fats: u32,
    /// Entries of the fixed FAT12/16 root directory (0 on FAT32).
    pub root_entries: u32,
    pub total_sectors: u32,
    /// Sectors of one FAT.
    pub fat_sectors: u32,
    /// The FAT that is read: 0, or FAT32's active FAT when mirroring is off.
    pub active_fat: u32,
    /// FAT32's root directory cluster (0 on FAT12/16).
    pub root_cluster: u32,
    pub kind: FatKind,
    /// Data clusters: cluster numbers are 2..clusters + 2.
    pub clusters: u32,
    /// `BS_VolID` when the extended boot signature (0x28/0x29) says it is there.
    pub serial: Option<u32>,
    /// `BS_VolLab` when the extended boot signature 0x29 says it is there.
    pub label: Option<[u8; 11]>,
}

fn le16(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 2).map_or(0, |s| u32::from(u16::from_le_bytes([s[0], s[1]])))
}

fn le32(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn byte(b: &[u8], o: usize) -> u32 {
    b.get(o).map_or(0, |&v| u32::from(v))
}

/// The probe's test: the 0x55AA signature and BPB fields in their legal ranges. A
/// partition table sector has the signature too, but zeros (or boot code) where the BPB is.
pub(super) fn sane(b: &[u8]) -> Result<(), &'static str> {
    if b.get(510..512) != Some(&[0x55, 0xAA][..]) {
        return Err("no 0x55AA boot sector signature");
    }
    let bps = le16(b, 11);
    if !bps.is_power_of_two() || !(512..=4096).contains(&bps) {
        return Err("bytes per sector is not a power of two in 512..4096");
    }
    let spc = byte(b, 13);
    if !spc.is_power_of_two() || spc > 128 {
        return Err("sectors per cluster is not a power of two in 1..128");
    }
    if le16(b, 14) == 0 {
        return Err("no reserved sectors");
    }
    if !(1..=4).contains(&byte(b, 16)) {
        return Err("number of FATs is not 1..4");
    }
    if le16(b, 19) == 0 && le32(b, 32) == 0 {
        return Err("total sector count is zero");
    }
    let media = byte(b, 21);
    if media != 0xF0 && media < 0xF8 {
        return Err("media descriptor is not 0xF0 or 0xF8..0xFF");
    }
    Ok(())
}

fn corrupt(what: &'static str, at: u64) -> FsError {
    FsError::Corrupt { fs: FS, what, at }
}

impl Bpb {
    /// Parse and check the boot sector `b` (at least [`BOOT_SECTOR`] bytes) of a device of
    /// `device_bytes`.
    pub fn parse(b: &[u8], device_bytes: u64) -> Result<Bpb, FsError> {
        sane(b).map_err(|why| FsError::NotOurs { fs: FS, why })?;
        let bytes_per_sector = le16(b, 11);
        let sectors_per_cluster = byte(b, 13);
        let reserved_sectors = le16(b, 14);
        let fats = byte(b, 16);
        let root_entries = le16(b, 17);
        let total_sectors = if le16(b, 19) != 0 { le16(b, 19) } else { le32(b, 32) };
        if u64::from(total_sectors) * u64::from(bytes_per_sector) > device_bytes {
            return Err(corrupt("filesystem is larger than the device", u64::from(total_sectors)));
        }
        let fat16_size = le16(b, 22);
        let fat_sectors = if fat16_size != 0 { fat16_size } else { le32(b, 36) };
        if fat_sectors == 0 {
            return Err(corrupt("the FAT size is zero", 0));
        }
        let bps = u64::from(bytes_per_sector);
        let root_sectors = (u64::from(root_entries) * 32).div_ceil(bps);
        let meta = u64::from(reserved_sectors) + u64::from(fats) * u64::from(fat_sectors) + root_sectors;
        let data = u64::from(total_sectors)
            .checked_sub(meta)
            .filter(|&d| d >= u64::from(sectors_per_cluster))
            .ok_or(corrupt("the FATs and the root directory leave no room for data clusters", meta))?;
        // At most 0x0FFFFFF5 clusters: the FAT32 entry values above are reserved.
        let clusters = u32::try_from(data / u64::from(sectors_per_cluster))
            .ok()
            .filter(|&c| c <= 0x0FFF_FFF4)
            .ok_or(corrupt("more clusters than FAT32 can number", 0))?;
        // fatgen103 §3.5: the type is the cluster count's, nothing else.
        let kind = match clusters {
            0..4085 => FatKind::Fat12,
            4085..65525 => FatKind::Fat16,
            _ => FatKind::Fat32,
        };
        let entry_bits: u64 = match kind {
            FatKind::Fat12 => 12,
            FatKind::Fat16 => 16,
            FatKind::Fat32 => 32,
        };
        if u64::from(fat_sectors) * bps * 8 < (u64::from(clusters) + 2) * entry_bits {
            return Err(corrupt("the FAT is too small for the cluster count", u64::from(fat_sectors)));
        }
        let (mut active_fat, mut root_cluster, sig_at) = (0, 0, if kind == FatKind::Fat32 { 0x42 } else { 0x26 });
        if kind == FatKind::Fat32 {
            if root_entries != 0 || fat16_size != 0 {
                return Err(corrupt("a FAT32 cluster count with a FAT12/16 root directory or FAT size", 0));
            }
            if le16(b, 42) != 0 {
                return Err(FsError::UnsupportedFeature { fs: FS, name: "FAT32 version other than 0.0" });
            }
            let ext_flags = le16(b, 40);
            if ext_flags & 0x80 != 0 {
                active_fat = ext_flags & 0x0F;
                if active_fat >= fats {
                    return Err(corrupt("the active FAT is not one of the FATs", u64::from(active_fat)));
                }
            }
            root_cluster = le32(b, 44);
            if root_cluster < 2 || root_cluster >= clusters + 2 {
                return Err(corrupt("the root directory's cluster number is outside the filesystem", 0));
            }
        } else if root_entries == 0 {
            return Err(corrupt("a FAT12/16 cluster count with no root directory entries", 0));
        }
        let sig = byte(b, sig_at);
        let serial = (sig == 0x28 || sig == 0x29).then(|| le32(b, sig_at + 1));
        let label = (sig == 0x29).then(|| {
            let mut l = [0u8; 11];
            if let Some(s) = b.get(sig_at + 5..sig_at + 16) {
                l.copy_from_slice(s);
            }
            l
        });
        Ok(Bpb {
            bytes_per_sector,
            sectors_per_cluster,
            reserved_sectors,
            fats,
            root_entries,
            total_sectors,
            fat_sectors,
            active_fat,
            root_cluster,
            kind,
            clusters,
            serial,
            label,
        })
    }

    /// Bytes per cluster.
    pub fn cluster_bytes(&self) -> u64 {
        u64::from(self.sectors_per_cluster) * u64::from(self.bytes_per_sector)
    }

    /// Byte offset of the FAT that is read.
    pub fn fat_offset(&self) -> u64 {
        (u64::from(self.reserved_sectors) + u64::from(self.active_fat) * u64::from(self.fat_sectors))
            * u64::from(self.bytes_per_sector)
    }

    /// Bytes of one FAT.
    pub fn fat_bytes(&self) -> u64 {
        u64::from(self.fat_sectors) * u64::from(self.bytes_per_sector)
    }

    /// Byte offset of the fixed FAT12/16 root directory.
    pub fn root_offset(&self) -> u64 {
        (u64::from(self.reserved_sectors) + u64::from(self.fats) * u64::from(self.fat_sectors))
            * u64::from(self.bytes_per_sector)
    }

    /// Byte offset of data cluster `c` (2 is the first).
    pub fn cluster_offset(&self, c: u32) -> u64 {
        let root = (u64::from(self.root_entries) * 32).next_multiple_of(u64::from(self.bytes_per_sector));
        self.root_offset() + root + u64::from(c.saturating_sub(2)) * self.cluster_bytes()
    }

    /// Is `c` a data cluster's number?
    pub fn valid_cluster(&self, c: u32) -> bool {
        c >= 2 && c - 2 < self.clusters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FAT16 boot sector as mkfs.fat writes it for a 32 MiB image with 2 KiB clusters.
    pub(crate) fn fat16_sector() -> [u8; 512] {
        let mut b = [0u8; 512];
        b[..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
        b[3..11].copy_from_slice(b"mkfs.fat");
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 4;
        b[14..16].copy_from_slice(&4u16.to_le_bytes());
        b[16] = 2;
        b[17..19].copy_from_slice(&512u16.to_le_bytes());
        b[19..21].copy_from_slice(&65535u16.to_le_bytes());
        b[21] = 0xF8;
        b[22..24].copy_from_slice(&64u16.to_le_bytes());
        b[0x26] = 0x29;
        b[0x27..0x2B].copy_from_slice(&0xBEEFu32.to_le_bytes());
        b[0x2B..0x36].copy_from_slice(b"RXEN-FAT16 ");
        b[0x36..0x3E].copy_from_slice(b"FAT16   ");
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn parses_a_fat16_bpb() {
        let bpb = Bpb::parse(&fat16_sector(), u64::MAX).unwrap();
        assert_eq!(bpb.kind, FatKind::Fat16);
        // 65535 - 4 - 2*64 - 32 root sectors = 65371 sectors = 16342 clusters.
        assert_eq!(bpb.clusters, 16342);
        assert_eq!(bpb.serial, Some(0xBEEF));
        assert_eq!(&bpb.label.unwrap(), b"RXEN-FAT16 ");
        assert_eq!(bpb.fat_offset(), 4 * 512);
        assert_eq!(bpb.root_offset(), (4 + 128) * 512);
        assert_eq!(bpb.cluster_offset(2), (4 + 128 + 32) * 512);
        assert_eq!(bpb.cluster_offset(3), (4 + 128 + 32 + 4) * 512);
        assert!(bpb.valid_cluster(2) && bpb.valid_cluster(16343) && !bpb.valid_cluster(16344));
        assert!(!bpb.valid_cluster(0) && !bpb.valid_cluster(1));
    }

    #[test]
    fn type_follows_the_cluster_count() {
        let mut b = fat16_sector();
        // 4084 clusters of 4 sectors: FAT12; one more: FAT16.
        let meta = 4 + 2 * 64 + 32;
        b[19..21].copy_from_slice(&((meta + 4084 * 4) as u16).to_le_bytes());
        assert_eq!(Bpb::parse(&b, u64::MAX).unwrap().kind, FatKind::Fat12);
        b[19..21].copy_from_slice(&((meta + 4085 * 4) as u16).to_le_bytes());
        assert_eq!(Bpb::parse(&b, u64::MAX).unwrap().kind, FatKind::Fat16);
        // 65525 clusters is FAT32 (a FAT of 512+ sectors), which has no fixed root directory.
        b[22..24].copy_from_slice(&600u16.to_le_bytes());
        let meta = 4 + 2 * 600 + 32;
        b[19..21].copy_from_slice(&0u16.to_le_bytes());
        b[32..36].copy_from_slice(&((meta + 65525 * 4) as u32).to_le_bytes());
        let e = Bpb::parse(&b, u64::MAX).unwrap_err();
        assert!(matches!(e, FsError::Corrupt { what, .. } if what.contains("FAT32 cluster count")), "{e}");
    }

    #[test]
    fn rejects_insane_fields() {
        let cases: [(usize, u8, &str); 5] = [
            (12, 0x03, "bytes per sector"),
            (13, 3, "sectors per cluster"),
            (16, 0, "number of FATs"),
            (16, 5, "number of FATs"),
            (21, 0x12, "media descriptor"),
        ];
        for (at, v, why) in cases {
            let mut b = fat16_sector();
            b[at] = v;
            assert!(sane(&b).unwrap_err().contains(why), "{at}={v}");
        }
        let mut b = fat16_sector();
        b[14] = 0;
        assert_eq!(sane(&b), Err("no reserved sectors"));
        b = fat16_sector();
        b[22] = 0;
        b[36..40].fill(0); // the FAT32 size field overlaps FAT12/16's extended BPB
        assert!(matches!(Bpb::parse(&b, u64::MAX), Err(FsError::Corrupt { what: "the FAT size is zero", .. })));
        b = fat16_sector();
        b[22] = 8; // 8 sectors of FAT16 entries cannot number 16342 clusters
        assert!(matches!(Bpb::parse(&b, u64::MAX), Err(FsError::Corrupt { what, .. }) if what.contains("too small")));
        assert!(sane(&[0u8; 100]).is_err());
        b = fat16_sector();
        let e = Bpb::parse(&b, 65534 * 512).unwrap_err();
        assert!(matches!(e, FsError::Corrupt { what: "filesystem is larger than the device", at: 65535, .. }));
    }

    /// What `sfdisk` writes for `label: dos` with two partitions: no boot code, a disk
    /// identifier, the partition entries and 0x55AA.
    #[test]
    fn probe_rejects_an_mbr() {
        let mut mbr = [0u8; 512];
        mbr[440..444].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        let entries: [[u8; 16]; 2] = [
            [0x80, 0x20, 0x21, 0x00, 0x83, 0x8A, 0x08, 0x82, 0x00, 0x08, 0, 0, 0x00, 0x80, 0, 0],
            [0x00, 0x8A, 0x09, 0x82, 0x83, 0xFE, 0xFF, 0xFF, 0x00, 0x90, 0, 0, 0x00, 0x70, 0x02, 0],
        ];
        mbr[446..462].copy_from_slice(&entries[0]);
        mbr[462..478].copy_from_slice(&entries[1]);
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        assert_eq!(sane(&mbr), Err("bytes per sector is not a power of two in 512..4096"));
        // With GRUB-like boot code (a jump, then code bytes where the BPB would be).
        for (i, v) in mbr.iter_mut().enumerate().take(440) {
            *v = (i as u8).wrapping_mul(37).wrapping_add(0x63);
        }
        mbr[..3].copy_from_slice(&[0xEB, 0x63, 0x90]);
        assert!(sane(&mbr).is_err());
        assert!(matches!(Bpb::parse(&mbr, u64::MAX), Err(FsError::NotOurs { .. })));
    }
}
