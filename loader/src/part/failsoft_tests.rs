// SPDX-License-Identifier: MIT OR Apache-2.0
//! Damaged and hostile tables fail soft, as Linux's `block/partitions` code does: a GPT
//! primary header that fails any check gives way to the backup (validated as strictly),
//! an EBR chain that loops, runs outside its extended partition or past the disk, or
//! exceeds the budget keeps the logical partitions found before, and overlapping
//! partitions are named. Every message names the structure and the cause.

use super::testutil::*;
use super::*;
use crate::block::SliceDisk;
use std::string::ToString;

const LINUX: [u8; 16] = guid_bytes("0fc63daf-8483-4772-8e79-3d69d8477de4");

/// A 256-block GPT disk: entry arrays at 2 and 223 (32 blocks each), usable 34..=222,
/// the backup header at 255; `gpt1` = 40..=79, `gpt3` = 80..=199.
fn disk() -> Vec<u8> {
    let parts = [
        GptPart { slot: 0, type_guid: LINUX, uuid: [1; 16], start: 40, end: 79, name: "boot" },
        GptPart { slot: 2, type_guid: LINUX, uuid: [3; 16], start: 80, end: 199, name: "root" },
    ];
    build_gpt(512, 256, &parts)
}

/// Overwrite header fields of the header at `lba` (offset, little-endian value, width)
/// and recompute its CRC, so only the field itself is wrong.
fn patch(img: &mut [u8], lba: usize, fields: &[(usize, u64, usize)]) {
    let h = &mut img[lba * 512..][..512];
    for &(off, v, width) in fields {
        h[off..off + width].copy_from_slice(&v.to_le_bytes()[..width]);
    }
    reseal(h);
}

fn names(t: &Table) -> Vec<(String, u64, u64)> {
    t.partitions.iter().map(|p| (p.name(), p.start_lba, p.num_blocks)).collect()
}

/// Header fields to overwrite: (offset, value, width in bytes).
type Fields = Vec<(usize, u64, usize)>;

/// Each way a header can be wrong, with its CRC right: (fields, the cause named).
fn header_faults() -> Vec<(Fields, &'static str)> {
    vec![
        (vec![(84, 17, 4)], "entry size 17 is not a multiple of 128"),
        (vec![(84, 8192, 4)], "entry size 8192 is outside 128..=4096"),
        (vec![(84, 0, 4)], "entry size 0 is outside 128..=4096"),
        (vec![(80, 1_000_000, 4)], "entry count 1000000 is above 4096"),
        (
            vec![(80, 4096, 4), (84, 512, 4)],
            "partition entry array of 4096 entries of 512 bytes (2097152 bytes) is above the 1048576-byte budget",
        ),
        (vec![(12, 600, 4)], "header size 600 is outside 92..=512 (the block size)"),
        (vec![(40, 300, 8)], "usable LBAs 300..=222 are an empty range (first after last)"),
        (vec![(48, 256, 8)], "usable LBAs 34..=256 reach past the disk (256 blocks)"),
        (vec![(48, u64::MAX, 8)], "usable LBAs 34..=18446744073709551615 reach past the disk (256 blocks)"),
        (vec![(40, 1, 8)], "usable LBAs 1..=222 cover the protective MBR or the primary header"),
        (vec![(72, 0, 8)], "partition entry array at LBA 0 (32 blocks) is on the protective MBR"),
        (vec![(72, 250, 8)], "partition entry array at LBA 250 (32 blocks) lies past the end of the disk (256 blocks)"),
        (
            vec![(72, u64::MAX - 3, 8)],
            "partition entry array at LBA 18446744073709551612 (32 blocks) lies past the end of the disk (256 blocks)",
        ),
        (vec![(72, 100, 8)], "partition entry array at LBA 100 (32 blocks) overlaps the usable LBAs 34..=222"),
    ]
}

#[test]
fn every_primary_fault_falls_back_to_the_backup() {
    let mut faults = header_faults();
    faults.push((vec![(24, 7, 8)], "header says it is at LBA 7, found at 1"));
    faults.push((vec![(72, 1, 8)], "partition entry array at LBA 1 (32 blocks) covers its header at LBA 1"));
    let clean = scan(&mut SliceDisk::new(&disk(), 512)).unwrap();
    for (fields, cause) in faults {
        let mut img = disk();
        patch(&mut img, 1, &fields);
        let t = scan(&mut SliceDisk::new(&img, 512)).unwrap_or_else(|e| panic!("{cause}: {e}"));
        assert_eq!(names(&t), names(&clean), "{cause}");
        assert_eq!(t.disk_guid, Some(DISK_GUID));
        assert_eq!(
            t.warnings,
            [format!("primary GPT header damaged ({cause}); using the backup header at LBA 255")],
            "{fields:?}"
        );
    }
}

#[test]
fn the_backup_is_validated_as_strictly() {
    let mut faults = header_faults();
    faults.push((vec![(24, 254, 8)], "header says it is at LBA 254, found at 255"));
    faults.push((vec![(48, 255, 8)], "usable LBAs 34..=255 cover the header at LBA 255"));
    faults.push((
        vec![(72, 240, 8)],
        "partition entry array at LBA 240 (32 blocks) lies past the end of the disk (256 blocks)",
    ));
    for (fields, cause) in faults {
        let mut img = disk();
        img[512 + 16] ^= 0xff; // the primary's header CRC
        patch(&mut img, 255, &fields);
        let e = scan(&mut SliceDisk::new(&img, 512)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "GPT: both headers damaged (primary header at LBA 1: header CRC mismatch; backup header at LBA 255: \
                 {cause}); no partitions read"
            )
        );
    }
}

#[test]
fn primary_alternate_lba_wrong_backup_still_found_at_the_end() {
    // The primary is damaged and its AlternateLBA names a block of zeros: the backup at
    // the last LBA is used all the same.
    let mut img = disk();
    patch(&mut img, 1, &[(32, 210, 8), (84, 17, 4)]);
    let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
    assert_eq!(t.partitions.len(), 2);
    assert_eq!(
        t.warnings,
        ["primary GPT header damaged (entry size 17 is not a multiple of 128); using the backup header at LBA 255"]
    );
    // No room for a backup at all.
    let e = scan(&mut SliceDisk::new(&img[..3 * 512], 512)).unwrap_err();
    assert!(matches!(e, PartError::GptBothDamaged { backup_lba: Some(2), .. }), "{e:?}");
    let e = scan(&mut SliceDisk::new(&img[..2 * 512], 512)).unwrap_err();
    assert_eq!(
        e,
        PartError::GptBothDamaged { primary: GptFault::EntrySize(17), backup: GptFault::NoBackup, backup_lba: None }
    );
    assert_eq!(
        e.to_string(),
        "GPT: both headers damaged (primary header at LBA 1: entry size 17 is not a multiple of 128; backup header: \
         disk too small for a backup header); no partitions read"
    );
}

#[test]
fn overlapping_gpt_partitions_are_named_and_kept() {
    let parts = [
        GptPart { slot: 0, type_guid: LINUX, uuid: [1; 16], start: 40, end: 99, name: "" },
        GptPart { slot: 1, type_guid: LINUX, uuid: [2; 16], start: 60, end: 70, name: "" },
        GptPart { slot: 2, type_guid: LINUX, uuid: [3; 16], start: 90, end: 120, name: "" },
        GptPart { slot: 3, type_guid: LINUX, uuid: [4; 16], start: 121, end: 130, name: "" },
    ];
    let img = build_gpt(512, 256, &parts);
    let t = scan(&mut SliceDisk::new(&img, 512)).unwrap();
    assert_eq!(t.partitions.len(), 4);
    assert_eq!(
        t.warnings,
        [
            "gpt1 (blocks 40..=99) overlaps gpt2 (blocks 60..=70); both kept",
            "gpt1 (blocks 40..=99) overlaps gpt3 (blocks 90..=120); both kept"
        ]
    );
}

/// An MBR disk of `blocks` blocks with an extended partition (type 0x0f) at 4096.
fn mbr_disk(blocks: usize, ext_size: u32) -> Vec<u8> {
    let mut img = vec![0u8; 512 * blocks];
    mbr_record(&mut img, 0, 0, 0x83, 2048, 1024);
    mbr_record(&mut img, 1, 0, 0x0f, 4096, ext_size);
    img
}

fn mbr_scan(img: &[u8]) -> (Vec<(String, u64, u64)>, Vec<String>) {
    let t = scan(&mut SliceDisk::new(img, 512)).unwrap();
    assert_eq!(t.scheme, Some(Scheme::Mbr));
    (names(&t), t.warnings)
}

#[test]
fn self_referencing_ebr_keeps_its_logical_partition() {
    let mut img = mbr_disk(8192, 4096);
    // The first EBR's link is 0: the extended partition's start, itself.
    ebr(&mut img, 512, 4096, (0x83, 16, 100), Some((0x05, 0, 100)));
    let (parts, warnings) = mbr_scan(&img);
    assert_eq!(parts, [("msdos1".into(), 2048, 1024), ("msdos5".into(), 4112, 100)]);
    assert_eq!(
        warnings,
        ["EBR chain of the extended partition at LBA 4096: EBR at LBA 4096 links back to itself (a loop); chain \
          stopped, keeping the logical partition msdos5 found before it"]
    );
}

#[test]
fn ebr_cycle_to_an_earlier_ebr_keeps_what_came_before() {
    let mut img = mbr_disk(8192, 4096);
    ebr(&mut img, 512, 4096, (0x83, 16, 100), Some((0x05, 1024, 1024)));
    ebr(&mut img, 512, 5120, (0x83, 16, 100), Some((0x05, 2048, 1024)));
    ebr(&mut img, 512, 6144, (0x83, 16, 100), Some((0x05, 1024, 1024))); // back to 5120
    let (parts, warnings) = mbr_scan(&img);
    let want: Vec<(String, u64, u64)> = vec![
        ("msdos1".into(), 2048, 1024),
        ("msdos5".into(), 4112, 100),
        ("msdos6".into(), 5136, 100),
        ("msdos7".into(), 6160, 100),
    ];
    assert_eq!(parts, want);
    assert_eq!(
        warnings,
        ["EBR chain of the extended partition at LBA 4096: EBR at LBA 6144 links back to the earlier EBR at LBA \
          5120 (a loop); chain stopped, keeping the 3 logical partitions msdos5..msdos7 found before it"]
    );
}

#[test]
fn ebr_link_outside_the_extended_partition_or_past_the_disk() {
    let mut img = mbr_disk(16384, 4096);
    ebr(&mut img, 512, 4096, (0x83, 16, 100), Some((0x05, 5000, 100)));
    let (parts, warnings) = mbr_scan(&img);
    assert_eq!(parts.len(), 2);
    assert_eq!(
        warnings,
        ["EBR at LBA 4096 links to LBA 9096, outside its extended partition (LBA 4096..8192); chain stopped, \
          keeping the logical partition msdos5 found before it"]
    );
    // The extended partition claims far more than the disk: clipped, and a link past the
    // end of the disk ends the chain.
    let mut img = mbr_disk(8192, u32::MAX);
    ebr(&mut img, 512, 4096, (0x83, 16, 100), Some((0x05, 1024, 100)));
    ebr(&mut img, 512, 5120, (0x83, 16, 100), Some((0x05, u32::MAX, 100)));
    let (parts, warnings) = mbr_scan(&img);
    assert_eq!(parts.len(), 3);
    assert_eq!(
        warnings,
        [format!(
            "EBR at LBA 5120 links to LBA {}, past the end of the disk (8192 blocks); chain stopped, keeping the 2 \
             logical partitions msdos5..msdos6 found before it",
            4096 + u64::from(u32::MAX)
        )]
    );
}

#[test]
fn ebr_without_signature_and_empty_chains() {
    let mut img = mbr_disk(8192, 4096);
    ebr(&mut img, 512, 4096, (0x83, 16, 100), Some((0x05, 1024, 100)));
    let (parts, warnings) = mbr_scan(&img);
    assert_eq!(parts.len(), 2);
    assert_eq!(
        warnings,
        ["EBR at LBA 5120 has no 55AA signature; chain stopped, keeping the logical partition msdos5 found before it"]
    );
    // The extended partition's first EBR is blank.
    let img = mbr_disk(8192, 4096);
    let (parts, warnings) = mbr_scan(&img);
    assert_eq!(parts.len(), 1);
    assert_eq!(
        warnings,
        ["EBR at LBA 4096 has no 55AA signature; chain stopped, no logical partition found before it"]
    );
}

#[test]
fn two_extended_partitions_sharing_a_chain() {
    let mut img = mbr_disk(8192, 4096);
    mbr_record(&mut img, 2, 0, 0x05, 4096, 4096);
    ebr(&mut img, 512, 4096, (0x83, 16, 100), None);
    let (parts, warnings) = mbr_scan(&img);
    assert_eq!(parts, [("msdos1".into(), 2048, 1024), ("msdos5".into(), 4112, 100)]);
    assert_eq!(warnings, ["extended partition at LBA 4096: its EBRs were already read through another one; skipped"]);
}

#[test]
fn overlapping_mbr_partitions_are_named_and_kept() {
    let mut img = mbr_disk(8192, 4096);
    mbr_record(&mut img, 2, 0, 0x83, 2560, 1024); // inside msdos1's 2048..=3071 and past it
    // A logical partition reaching back into the primary msdos1 (start relative to the EBR).
    ebr(&mut img, 512, 4096, (0x83, 16, 100), None);
    let (parts, warnings) = mbr_scan(&img);
    assert_eq!(parts.len(), 3);
    assert_eq!(warnings, ["msdos1 (blocks 2048..=3071) overlaps msdos3 (blocks 2560..=3583); both kept"]);
}

#[test]
fn kept_counts_only_the_partitions_kept() {
    // msdos5 starts at its own EBR (skipped), msdos6 is kept, then the chain loops.
    let mut img = mbr_disk(8192, 4096);
    ebr(&mut img, 512, 4096, (0x83, 0, 100), Some((0x05, 1024, 1024)));
    ebr(&mut img, 512, 5120, (0x83, 16, 100), Some((0x05, 1024, 1024)));
    let (parts, warnings) = mbr_scan(&img);
    assert_eq!(parts, [("msdos1".into(), 2048, 1024), ("msdos6".into(), 5136, 100)]);
    assert_eq!(
        warnings,
        [
            "msdos5: starts at its own EBR (LBA 4096); skipped",
            "EBR chain of the extended partition at LBA 4096: EBR at LBA 5120 links back to itself (a loop); chain \
             stopped, keeping the logical partition msdos6 found before it"
        ]
    );
}
