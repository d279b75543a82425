// SPDX-License-Identifier: MIT OR Apache-2.0
//! Partition tables: MBR (with extended/logical partitions) and GPT.
//!
//! [`scan`] reads LBA 0 and decides what the disk holds:
//!
//! - no `0x55AA` boot signature: no table at all. This is the common Xen case of a
//!   filesystem on the whole disk (`root=/dev/xvda`), so it is not an error;
//! - a protective (or hybrid) MBR with a type `0xEE` entry: GPT ([`gpt`]), falling back to
//!   the backup header when the primary is damaged;
//! - otherwise an MBR ([`mbr`]), following extended partitions' EBR chains.
//!
//! The disk is untrusted input (the domain's owner writes it), so every offset is checked,
//! every loop is bounded, and damage that still leaves a usable table becomes a warning in
//! [`Table::warnings`] rather than an error: a boot loader should boot a slightly broken
//! disk and say what it saw. Partition numbers follow the names users write in
//! `rxen.toml` and GRUB habits: `msdos1`..`msdos4` are the primary slots, `msdos5`.. the
//! logical partitions in chain order, `gptN` the N-th entry of the GPT entry array.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::block::{BlockDevice, BlockError, check_request};

pub mod gpt;
pub mod mbr;

pub use gpt::GptFault;

/// Which kind of table a partition came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// DOS/MBR partition table (primary slots plus logical partitions in EBRs).
    Mbr,
    /// GUID Partition Table (UEFI spec, chapter 5).
    Gpt,
}

/// One partition, in device blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub scheme: Scheme,
    /// 1-based: `msdos1..4` primary slots, `msdos5..` logical partitions in chain order;
    /// `gptN` is entry index N-1 of the GPT entry array.
    pub index: u32,
    /// First block, in device blocks from the start of the disk.
    pub start_lba: u64,
    /// Length in device blocks (never zero; the partition lies inside the disk).
    pub num_blocks: u64,
    /// MBR system id (`0x83` Linux, ...); 0 for GPT.
    pub mbr_type: u8,
    /// GPT partition type GUID, raw on-disk bytes.
    pub type_guid: Option<[u8; 16]>,
    /// GPT unique partition GUID, raw on-disk bytes.
    pub part_uuid: Option<[u8; 16]>,
    /// GPT partition name (UTF-16LE on disk), `None` when empty.
    pub label: Option<String>,
    /// MBR disk signature (bytes 440..444 of LBA 0), kept here so an MBR partition can
    /// name itself the way Linux's `root=PARTUUID=xxxxxxxx-NN` does. `None` for GPT.
    pub mbr_signature: Option<u32>,
}

impl Partition {
    /// `msdos5`, `gpt2`: the name users write in the boot policy.
    pub fn name(&self) -> String {
        match self.scheme {
            Scheme::Mbr => format!("msdos{}", self.index),
            Scheme::Gpt => format!("gpt{}", self.index),
        }
    }

    /// PARTUUID as blkid prints it (and Linux accepts in `root=PARTUUID=`): for GPT the
    /// unique GUID in the usual mixed-endian text form, lowercase; for MBR
    /// `<disk signature as 8 hex digits>-<partition number as 2 hex digits>`. `None` when
    /// the disk has no identity (GPT entry without GUID, MBR signature 0: blkid prints none
    /// either).
    pub fn part_uuid_string(&self) -> Option<String> {
        match self.scheme {
            Scheme::Gpt => self.part_uuid.as_ref().map(guid_string),
            Scheme::Mbr => match self.mbr_signature {
                Some(sig) if sig != 0 => Some(format!("{sig:08x}-{:02x}", self.index)),
                _ => None,
            },
        }
    }
}

/// Text form of a GUID stored the way UEFI stores it: the first three fields little-endian,
/// the last eight bytes in order (UEFI spec, appendix A).
pub fn guid_string(g: &[u8; 16]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

/// What [`scan`] found on a disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// `None`: no partition table; the whole disk is (probably) one filesystem.
    pub scheme: Option<Scheme>,
    /// Usable partitions, in table order (MBR: primaries then logicals; GPT: entry order).
    pub partitions: Vec<Partition>,
    /// Damage that was worked around, one sentence each (for `rxen.debug` and the menu).
    pub warnings: Vec<String>,
    /// GPT disk GUID, raw on-disk bytes.
    pub disk_guid: Option<[u8; 16]>,
    /// MBR disk signature (for MBR tables only).
    pub mbr_signature: Option<u32>,
}

impl Table {
    /// The partition called `name` (`"msdos5"`, `"gpt2"`), if present.
    pub fn get(&self, name: &str) -> Option<&Partition> {
        let (scheme, num) = if let Some(n) = name.strip_prefix("msdos") {
            (Scheme::Mbr, n)
        } else if let Some(n) = name.strip_prefix("gpt") {
            (Scheme::Gpt, n)
        } else {
            return None;
        };
        let index: u32 = num.parse().ok()?;
        self.partitions.iter().find(|p| p.scheme == scheme && p.index == index)
    }

    /// The partition whose PARTUUID (as [`Partition::part_uuid_string`]) is `uuid`,
    /// compared case-insensitively.
    pub fn by_part_uuid(&self, uuid: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.part_uuid_string().is_some_and(|s| s.eq_ignore_ascii_case(uuid)))
    }
}

/// Why a disk's partition table could not be read at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartError {
    /// Reading LBA 0 failed.
    Io(BlockError),
    /// The device reports a block size the tables cannot live in (below 512 bytes, not a
    /// power of two, or absurdly large).
    BlockSize(u32),
    /// A protective MBR announced a GPT, but neither the primary nor the backup GPT is
    /// intact. Booting from a guessed table could pick the wrong filesystem, so we stop.
    /// `backup_lba`: where the backup that failed was read (`None`: the disk has no room
    /// for one).
    GptBothDamaged { primary: GptFault, backup: GptFault, backup_lba: Option<u64> },
}

impl fmt::Display for PartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartError::Io(e) => write!(f, "partition table: reading LBA 0: {e}"),
            PartError::BlockSize(bs) => write!(f, "partition table: unsupported block size {bs}"),
            PartError::GptBothDamaged { primary, backup, backup_lba } => {
                write!(f, "GPT: both headers damaged (primary header at LBA 1: {primary}; backup header")?;
                if let Some(lba) = backup_lba {
                    write!(f, " at LBA {lba}")?;
                }
                write!(f, ": {backup}); no partitions read")
            }
        }
    }
}

impl core::error::Error for PartError {}

impl From<BlockError> for PartError {
    fn from(e: BlockError) -> Self {
        PartError::Io(e)
    }
}

/// Largest block size we allocate buffers for: well above any real device (4096).
const MAX_BLOCK_SIZE: u32 = 64 * 1024;

/// Read the partition table of `dev`. See the module documentation for what is an error
/// and what only a warning.
pub fn scan<D: BlockDevice + ?Sized>(dev: &mut D) -> Result<Table, PartError> {
    let bs = dev.block_size();
    if bs < 512 || !bs.is_power_of_two() || bs > MAX_BLOCK_SIZE {
        return Err(PartError::BlockSize(bs));
    }
    let mut lba0 = alloc::vec![0u8; bs as usize];
    dev.read_blocks(0, &mut lba0)?;
    let mut table = Table::default();
    let Some(m) = mbr::Mbr::parse(&lba0[..512]) else {
        return Ok(table);
    };
    if !m.looks_like_table() {
        // 0x55AA but not a partition table: a FAT/NTFS boot sector on the whole disk.
        return Ok(table);
    }
    if m.has_protective() {
        if m.is_hybrid() {
            table.warnings.push(String::from(
                "hybrid MBR (type 0xEE plus other entries): using the GPT, ignoring the MBR entries",
            ));
        }
        gpt::scan(dev, &mut table)?;
        table.scheme = Some(Scheme::Gpt);
    } else {
        mbr::scan(dev, &m, &mut table);
        table.scheme = Some(Scheme::Mbr);
        table.mbr_signature = Some(m.signature);
    }
    warn_overlaps(&mut table);
    Ok(table)
}

/// Say which partitions share blocks. Both stay usable (Linux reads overlapping
/// partitions too, and a filesystem that mounts is still worth booting from), but a
/// hostile or damaged table should not pass unremarked. Sorting makes this O(n log n) in
/// the partition count (at most 4 + [`mbr::MAX_LOGICAL`] or [`gpt::MAX_ENTRIES`]).
fn warn_overlaps(table: &mut Table) {
    let mut order: Vec<usize> = (0..table.partitions.len()).collect();
    order.sort_unstable_by_key(|&i| (table.partitions[i].start_lba, table.partitions[i].index));
    // The partition reaching furthest among those seen so far.
    let mut widest: Option<usize> = None;
    let mut found = Vec::new();
    for i in order {
        let p = &table.partitions[i];
        let end = p.start_lba + (p.num_blocks - 1);
        if let Some(w) = widest {
            let q = &table.partitions[w];
            let q_end = q.start_lba + (q.num_blocks - 1);
            if p.start_lba <= q_end && found.len() < 64 {
                found.push(format!(
                    "{} (blocks {}..={}) overlaps {} (blocks {}..={}); both kept",
                    q.name(),
                    q.start_lba,
                    q_end,
                    p.name(),
                    p.start_lba,
                    end
                ));
            }
            if end <= q_end {
                continue;
            }
        }
        widest = Some(i);
    }
    for w in found {
        warn(table, w);
    }
}

/// Push a warning and move on; the helpers use it for every tolerated defect.
pub(crate) fn warn(table: &mut Table, msg: String) {
    // Bounded: a pathological table cannot make the list grow without limit.
    const MAX_WARNINGS: usize = 64;
    if table.warnings.len() < MAX_WARNINGS {
        table.warnings.push(msg);
    }
}

/// A [`BlockDevice`] view of blocks `[start_lba, start_lba + num_blocks)` of another device:
/// what a filesystem reader is handed for a partition. Block 0 of the view is `start_lba` of
/// the disk; reads outside the view fail with [`BlockError::OutOfRange`] in view blocks.
#[derive(Debug)]
pub struct PartitionDevice<D> {
    dev: D,
    start_lba: u64,
    num_blocks: u64,
}

impl<D: BlockDevice> PartitionDevice<D> {
    /// A view of `num_blocks` blocks from `start_lba` of `dev` (`dev` may be `&mut X`).
    /// The view is clipped to the device, so it never reaches past the disk.
    pub fn new(dev: D, start_lba: u64, num_blocks: u64) -> Self {
        let num_blocks = num_blocks.min(dev.num_blocks().saturating_sub(start_lba));
        PartitionDevice { dev, start_lba, num_blocks }
    }

    /// The view of partition `p`.
    pub fn for_partition(dev: D, p: &Partition) -> Self {
        Self::new(dev, p.start_lba, p.num_blocks)
    }

    /// First disk block of the view.
    pub fn start_lba(&self) -> u64 {
        self.start_lba
    }

    /// The underlying device.
    pub fn into_inner(self) -> D {
        self.dev
    }
}

impl<D: BlockDevice> BlockDevice for PartitionDevice<D> {
    fn block_size(&self) -> u32 {
        self.dev.block_size()
    }
    fn num_blocks(&self) -> u64 {
        self.num_blocks
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let disk_lba = self.disk_lba(lba, buf.len())?;
        self.dev.read_blocks(disk_lba, buf)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        let disk_lba = self.disk_lba(lba, buf.len())?;
        self.dev.write_blocks(disk_lba, buf)
    }
    fn unusable(&self) -> Option<&'static str> {
        self.dev.unusable()
    }
}

impl<D: BlockDevice> PartitionDevice<D> {
    /// The disk block of view block `lba`, for a request of `len` bytes inside the view.
    fn disk_lba(&self, lba: u64, len: usize) -> Result<u64, BlockError> {
        let blocks = check_request(self.dev.block_size(), self.num_blocks, lba, len)?;
        // `new` clipped the view to the device, so this cannot overflow; stay checked anyway.
        self.start_lba.checked_add(lba).ok_or(BlockError::OutOfRange { lba, blocks, device_blocks: self.num_blocks })
    }
}

/// Table builders shared by the MBR and GPT tests.
#[cfg(test)]
pub(crate) mod testutil {
    use alloc::vec;
    use alloc::vec::Vec;

    use crate::crc::crc32;

    /// A GUID from its text form, as stored on disk (first three fields little-endian).
    pub const fn guid_bytes(s: &str) -> [u8; 16] {
        const fn hex(c: u8) -> u8 {
            match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => panic!("not a hex digit"),
            }
        }
        let s = s.as_bytes();
        let mut text = [0u8; 16];
        let (mut i, mut n) = (0, 0);
        while i < s.len() {
            if s[i] != b'-' {
                text[n / 2] = text[n / 2] << 4 | hex(s[i]);
                n += 1;
            }
            i += 1;
        }
        assert!(n == 32);
        let o = text;
        [o[3], o[2], o[1], o[0], o[5], o[4], o[7], o[6], o[8], o[9], o[10], o[11], o[12], o[13], o[14], o[15]]
    }

    pub const DISK_GUID: [u8; 16] = guid_bytes("01234567-89ab-cdef-0123-456789abcdef");

    /// Write MBR/EBR record `slot` of the sector at byte 0 of `sector`, and the boot signature.
    pub fn mbr_record(sector: &mut [u8], slot: usize, boot: u8, sys: u8, start: u32, size: u32) {
        let r = &mut sector[446 + 16 * slot..446 + 16 * (slot + 1)];
        r.fill(0);
        r[0] = boot;
        r[4] = sys;
        r[8..12].copy_from_slice(&start.to_le_bytes());
        r[12..16].copy_from_slice(&size.to_le_bytes());
        sector[510] = 0x55;
        sector[511] = 0xaa;
    }

    pub fn set_mbr_sig(img: &mut [u8], sig: u32) {
        img[440..444].copy_from_slice(&sig.to_le_bytes());
    }

    /// An EBR at `lba`: a logical partition `(sys, start relative to this EBR, size)` and an
    /// optional link `(sys, start relative to the extended partition, size)`.
    pub fn ebr(img: &mut [u8], bs: usize, lba: u64, data: (u8, u32, u32), link: Option<(u8, u32, u32)>) {
        let s = &mut img[lba as usize * bs..][..512];
        s.fill(0);
        mbr_record(s, 0, 0, data.0, data.1, data.2);
        if let Some(l) = link {
            mbr_record(s, 1, 0, l.0, l.1, l.2);
        }
    }

    pub struct GptPart {
        pub slot: usize,
        pub type_guid: [u8; 16],
        pub uuid: [u8; 16],
        pub start: u64,
        pub end: u64,
        pub name: &'static str,
    }

    /// Recompute the header CRC of a 92-byte header at the start of `h`.
    pub fn reseal(h: &mut [u8]) {
        h[16..20].fill(0);
        let c = crc32(&h[..92]);
        h[16..20].copy_from_slice(&c.to_le_bytes());
    }

    /// A GPT disk of `blocks` blocks of `bs` bytes: protective MBR, primary header and
    /// 128-entry array at LBA 1 and 2, backup array and header at the end (UEFI spec 5.3.1).
    pub fn build_gpt(bs: usize, blocks: u64, parts: &[GptPart]) -> Vec<u8> {
        let mut img = vec![0u8; bs * blocks as usize];
        mbr_record(&mut img, 0, 0, 0xee, 1, (blocks - 1).min(u64::from(u32::MAX)) as u32);
        let mut array = vec![0u8; 128 * 128];
        for p in parts {
            let e = &mut array[p.slot * 128..][..128];
            e[..16].copy_from_slice(&p.type_guid);
            e[16..32].copy_from_slice(&p.uuid);
            e[32..40].copy_from_slice(&p.start.to_le_bytes());
            e[40..48].copy_from_slice(&p.end.to_le_bytes());
            for (i, u) in p.name.encode_utf16().enumerate() {
                e[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
            }
        }
        let eb = (array.len() / bs) as u64;
        let last = blocks - 1;
        let (first_usable, last_usable) = (2 + eb, last - 1 - eb);
        for (my, alt, entries) in [(1, last, 2), (last, 1, last - eb)] {
            img[entries as usize * bs..][..array.len()].copy_from_slice(&array);
            let h = &mut img[my as usize * bs..][..bs];
            h[..8].copy_from_slice(b"EFI PART");
            h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
            h[12..16].copy_from_slice(&92u32.to_le_bytes());
            h[24..32].copy_from_slice(&my.to_le_bytes());
            h[32..40].copy_from_slice(&alt.to_le_bytes());
            h[40..48].copy_from_slice(&first_usable.to_le_bytes());
            h[48..56].copy_from_slice(&last_usable.to_le_bytes());
            h[56..72].copy_from_slice(&DISK_GUID);
            h[72..80].copy_from_slice(&entries.to_le_bytes());
            h[80..84].copy_from_slice(&128u32.to_le_bytes());
            h[84..88].copy_from_slice(&128u32.to_le_bytes());
            h[88..92].copy_from_slice(&crc32(&array).to_le_bytes());
            reseal(h);
        }
        img
    }
}

#[cfg(test)]
mod failsoft_tests;

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use crate::block::SliceDisk;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::string::ToString;

    #[test]
    fn partition_device_view() {
        let data: Vec<u8> = (0..512 * 16).map(|i| (i / 512) as u8).collect();
        let mut disk = SliceDisk::new(&data, 512);
        let mut p = PartitionDevice::new(&mut disk, 4, 8);
        assert_eq!((p.block_size(), p.num_blocks(), p.size_bytes()), (512, 8, 4096));
        let mut b = [0u8; 1024];
        p.read_blocks(6, &mut b).unwrap();
        assert_eq!((b[0], b[512]), (10, 11));
        assert_eq!(p.read_blocks(7, &mut b), Err(BlockError::OutOfRange { lba: 7, blocks: 2, device_blocks: 8 }));
        assert!(p.read_blocks(u64::MAX, &mut b[..512]).is_err());
        // Clipped to the disk.
        assert_eq!(PartitionDevice::new(&mut disk, 10, 100).num_blocks(), 6);
        assert_eq!(PartitionDevice::new(&mut disk, u64::MAX, u64::MAX).num_blocks(), 0);
    }

    #[test]
    fn block_size_and_io_errors() {
        assert_eq!(
            scan(&mut SliceDisk::new(&[], 512)),
            Err(PartError::Io(BlockError::OutOfRange { lba: 0, blocks: 1, device_blocks: 0 }))
        );
        struct Odd;
        impl BlockDevice for Odd {
            fn block_size(&self) -> u32 {
                256
            }
            fn num_blocks(&self) -> u64 {
                10
            }
            fn read_blocks(&mut self, _: u64, _: &mut [u8]) -> Result<(), BlockError> {
                Ok(())
            }
        }
        assert_eq!(scan(&mut Odd), Err(PartError::BlockSize(256)));
        assert_eq!(PartError::BlockSize(256).to_string(), "partition table: unsupported block size 256");
    }

    /// The fields of each partition object in `sfdisk --json` output.
    fn sfdisk_json(img: &Path) -> Vec<(u32, Vec<(String, String)>)> {
        let out = Command::new("/usr/sbin/sfdisk").env("LC_ALL", "C").arg("--json").arg(img).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let mut parts = Vec::new();
        for chunk in text.split("\"node\":").skip(1) {
            let mut fields = Vec::new();
            let chunk = chunk.split('}').next().unwrap();
            let mut node = 0;
            for (i, item) in chunk.split(",\n").enumerate() {
                let item = item.trim();
                let (k, v) = if i == 0 { ("node", item) } else { item.split_once(':').unwrap() };
                let (k, v) = (k.trim().trim_matches('"'), v.trim().trim_matches('"'));
                if k == "node" {
                    let digits = v.len() - v.bytes().rev().take_while(u8::is_ascii_digit).count();
                    node = v[digits..].parse().unwrap();
                }
                fields.push((k.to_string(), v.to_string()));
            }
            parts.push((node, fields));
        }
        parts
    }

    fn field<'a>(f: &'a [(String, String)], k: &str) -> &'a str {
        &f.iter().find(|(key, _)| key == k).unwrap().1
    }

    fn run(cmd: &mut Command, stdin: Option<&str>) {
        cmd.env("LC_ALL", "C").stdout(Stdio::null()).stderr(Stdio::piped()).stdin(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(s) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Real tables made by util-linux `sfdisk` and `sgdisk`, checked against `sfdisk --json`.
    #[test]
    fn real_images_from_sfdisk_and_sgdisk() {
        let (sfdisk, sgdisk) = ("/usr/sbin/sfdisk", "/usr/sbin/sgdisk");
        if !Path::new(sfdisk).exists() || !Path::new(sgdisk).exists() {
            std::println!("note: {sfdisk} or {sgdisk} missing; skipping the real-image partition test");
            return;
        }
        let dir = std::env::temp_dir().join(format!("rxen-part-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let size = 64 << 20;

        // MBR: one primary, an extended partition with two logicals.
        let mbr = dir.join("mbr.img");
        std::fs::File::create(&mbr).unwrap().set_len(size).unwrap();
        let script = "label: dos\nlabel-id: 0x1234abcd\nunit: sectors\n\nstart=2048, size=8192, type=83\n\
                      start=10240, size=81920, type=5\nstart=12288, size=8192, type=83\n\
                      start=22528, size=16384, type=82\n";
        run(Command::new(sfdisk).arg(&mbr), Some(script));
        let data = std::fs::read(&mbr).unwrap();
        let t = scan(&mut SliceDisk::new(&data, 512)).unwrap();
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.mbr_signature, Some(0x1234_abcd));
        let want: Vec<_> = sfdisk_json(&mbr)
            .into_iter()
            .filter(|(_, f)| field(f, "type") != "5")
            .map(|(n, f)| {
                let ty = u8::from_str_radix(field(&f, "type"), 16).unwrap();
                (n, field(&f, "start").parse::<u64>().unwrap(), field(&f, "size").parse::<u64>().unwrap(), ty)
            })
            .collect();
        let got: Vec<_> = t.partitions.iter().map(|p| (p.index, p.start_lba, p.num_blocks, p.mbr_type)).collect();
        assert_eq!(got, want);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [1, 5, 6]);
        assert_eq!(t.get("msdos6").unwrap().part_uuid_string().as_deref(), Some("1234abcd-06"));

        // GPT: a named EFI system partition with a fixed GUID, and a Linux partition.
        let gpt = dir.join("gpt.img");
        std::fs::File::create(&gpt).unwrap().set_len(size).unwrap();
        run(
            Command::new(sgdisk)
                .args([
                    "-o",
                    "-n",
                    "1:2048:+1M",
                    "-c",
                    "1:EFI boot",
                    "-t",
                    "1:ef00",
                    "-u",
                    "1:6a4c1b2e-3f5d-4e8a-9b7c-0d1e2f3a4b5c",
                    "-n",
                    "2:0:0",
                    "-t",
                    "2:8300",
                    "-c",
                    "2:root",
                    "-U",
                    "01234567-89ab-cdef-0123-456789abcdef",
                ])
                .arg(&gpt),
            None,
        );
        let mut data = std::fs::read(&gpt).unwrap();
        let check = |t: &Table| {
            assert_eq!(t.scheme, Some(Scheme::Gpt));
            assert_eq!(t.disk_guid, Some(DISK_GUID));
            let want: Vec<_> = sfdisk_json(&gpt)
                .into_iter()
                .map(|(n, f)| {
                    (
                        n,
                        field(&f, "start").parse::<u64>().unwrap(),
                        field(&f, "size").parse::<u64>().unwrap(),
                        guid_string(&guid_bytes(field(&f, "type"))),
                        field(&f, "uuid").to_ascii_lowercase(),
                        field(&f, "name").to_string(),
                    )
                })
                .collect();
            let got: Vec<_> = t
                .partitions
                .iter()
                .map(|p| {
                    let label = p.label.clone().unwrap_or_default();
                    (
                        p.index,
                        p.start_lba,
                        p.num_blocks,
                        guid_string(&p.type_guid.unwrap()),
                        p.part_uuid_string().unwrap(),
                        label,
                    )
                })
                .collect();
            assert_eq!(got, want);
            assert_eq!(got[0].4, "6a4c1b2e-3f5d-4e8a-9b7c-0d1e2f3a4b5c");
            assert_eq!(got[0].5, "EFI boot");
        };
        let t = scan(&mut SliceDisk::new(&data, 512)).unwrap();
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        check(&t);
        // Damage the primary header: the backup sgdisk wrote at the last LBA takes over.
        data[512 + 16] ^= 0xff;
        let t = scan(&mut SliceDisk::new(&data, 512)).unwrap();
        check(&t);
        let last = data.len() / 512 - 1;
        assert_eq!(
            t.warnings,
            [format!("primary GPT header damaged (header CRC mismatch); using the backup header at LBA {last}")]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
