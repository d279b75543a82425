// SPDX-License-Identifier: MIT OR Apache-2.0
//! Linux md RAID1 arrays, from their members' superblocks (the layouts of md(4) and the
//! kernel's Documentation/admin-guide/md.rst; written from those descriptions):
//!
//! * 0.90: 4 KiB at the last 64 KiB-aligned 64 KiB of the member, 32-bit words in the
//!   host's order (little-endian here); the data is the member from byte 0, `size` KiB.
//! * 1.x: 1.0 at the end (8 KiB from it, rounded down to 4 KiB), 1.1 at 0, 1.2 at 4 KiB;
//!   little-endian; the data is `data_offset` sectors in; a role per device slot.
//!
//! Both carry magic 0xa92b4efc and a checksum (the superblock's 32-bit words summed into
//! 64 bits and folded; 1.x covers the 256-byte header and the role table). Members are
//! grouped by array UUID; the members with the highest event count are current, and of
//! those the ones in an active role (not faulty, spare or mid-recovery) are read, the
//! first one first. Only RAID1 is assembled: any other level is named in a message and
//! its members are left alone (not mounted as filesystems either).
//!
//! Naming follows GRUB: `md/NAME` for a 1.x array (the `homehost:` prefix stripped),
//! `mdN` for 0.90 (its preferred minor).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::compose::{Area, Composed, Map, Segment};
use crate::block::{BlockDevice, BlockError, read_bytes};

pub const MAGIC: u32 = 0xa92b_4efc;
/// Size of a 0.90 superblock, and of what is read for a 1.x one.
pub const SB_BYTES: usize = 4096;
/// Most device slots in a 1.x role table that fit in [`SB_BYTES`].
pub const MAX_DEVS_1X: usize = (SB_BYTES - 256) / 2;
/// Most members of an array the loader assembles.
pub const MAX_MEMBERS: usize = 64;

const ROLE_SPARE: u16 = 0xffff;
const ROLE_FAULTY: u16 = 0xfffe;
const FEATURE_RECOVERY: u32 = 2;
const FEATURE_RESHAPE: u32 = 4;

/// Superblock versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V090,
    V10,
    V11,
    V12,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V090 => "0.90",
            Version::V10 => "1.0",
            Version::V11 => "1.1",
            Version::V12 => "1.2",
        })
    }
}

/// How a member sees itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Active(u32),
    Spare,
    Faulty,
    /// Being rebuilt (1.x recovery_offset): not yet a full copy.
    Recovering,
}

/// One member's superblock, as far as the loader uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    pub version: Version,
    pub uuid: [u8; 16],
    /// 1.x set name (with any `homehost:` prefix); empty for 0.90.
    pub set_name: String,
    /// 0.90 preferred minor.
    pub minor: u32,
    pub level: i32,
    pub raid_disks: u32,
    pub events: u64,
    pub role: Role,
    /// Faulty slots as the superblock records them (0.90 disk table, 1.x roles).
    pub faulty_slots: Vec<u32>,
    /// Where the data starts on the member, and how long it is, in 512-byte sectors.
    pub data_offset: u64,
    pub data_sectors: u64,
    pub reshaping: bool,
}

/// Why a superblock is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MdError {
    Io(BlockError),
    BadVersion { major: u32, minor: u32 },
    Checksum { stored: u32, computed: u32 },
    BadOffset { stored: u64, found: u64 },
    TooManyDevices(u32),
    DataPastEnd { end: u64, device: u64 },
}

impl fmt::Display for MdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MdError::Io(e) => write!(f, "md superblock: {e}"),
            MdError::BadVersion { major, minor } => write!(f, "md superblock version {major}.{minor} is not known"),
            MdError::Checksum { stored, computed } => {
                write!(f, "md superblock checksum 0x{stored:08x} is wrong (computed 0x{computed:08x})")
            }
            MdError::BadOffset { stored, found } => {
                write!(f, "md superblock says it is at sector {stored}, found at sector {found}")
            }
            MdError::TooManyDevices(n) => write!(f, "md superblock has {n} device slots (at most {MAX_DEVS_1X})"),
            MdError::DataPastEnd { end, device } => {
                write!(f, "md data ends at sector {end}, past the end of the member ({device} sectors)")
            }
        }
    }
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The md checksum of `b` with the 32-bit word at `csum_at` taken as zero: words summed
/// into 64 bits (a trailing half word as 16 bits), folded to 32.
pub fn checksum(b: &[u8], csum_at: usize) -> u32 {
    let mut sum: u64 = 0;
    let mut i = 0;
    while i + 4 <= b.len() {
        if i != csum_at {
            sum += u64::from(u32le(b, i));
        }
        i += 4;
    }
    if i + 2 <= b.len() {
        sum += u64::from(u16::from_le_bytes([b[i], b[i + 1]]));
    }
    (sum as u32).wrapping_add((sum >> 32) as u32)
}

/// Parse a 0.90 superblock (4 KiB). `member_sectors` bounds the data.
pub fn parse_090(b: &[u8], member_sectors: u64) -> Result<Option<Superblock>, MdError> {
    if b.len() < SB_BYTES || u32le(b, 0) != MAGIC {
        return Ok(None);
    }
    let w = |i: usize| u32le(b, i * 4);
    let (major, minor) = (w(1), w(2));
    if major != 0 || minor != 90 {
        return Err(MdError::BadVersion { major, minor });
    }
    let stored = w(32 + 6);
    let computed = checksum(&b[..SB_BYTES], (32 + 6) * 4);
    if stored != computed {
        return Err(MdError::Checksum { stored, computed });
    }
    let mut uuid = [0u8; 16];
    for (k, word) in [5usize, 13, 14, 15].into_iter().enumerate() {
        uuid[k * 4..k * 4 + 4].copy_from_slice(&w(word).to_be_bytes());
    }
    let events = u64::from(w(32 + 8)) << 32 | u64::from(w(32 + 7));
    // Disk descriptors: 32 words each, 27 of them from word 128; this_disk at word 992.
    // Each: number, major, minor, raid_disk, state (bit 0 faulty, 1 active, 2 sync).
    let desc = |base: usize| (w(base), w(base + 3), w(base + 4));
    let mut faulty_slots = Vec::new();
    for d in 0..27 {
        let (_, raid_disk, state) = desc(128 + 32 * d);
        if state & 1 != 0 && raid_disk < 27 {
            faulty_slots.push(raid_disk);
        }
    }
    let (_, raid_disk, state) = desc(992);
    let role = if state & 1 != 0 {
        Role::Faulty
    } else if state & 0b110 == 0b110 {
        Role::Active(raid_disk)
    } else {
        Role::Spare
    };
    let data_sectors = u64::from(w(8)) * 2;
    let sb_sector = sb_090_sector(member_sectors).unwrap_or(0);
    if data_sectors > sb_sector {
        return Err(MdError::DataPastEnd { end: data_sectors, device: sb_sector });
    }
    Ok(Some(Superblock {
        version: Version::V090,
        uuid,
        set_name: String::new(),
        minor: w(11),
        level: w(7) as i32,
        raid_disks: w(10),
        events,
        role,
        faulty_slots,
        data_offset: 0,
        data_sectors,
        reshaping: false,
    }))
}

/// Parse a 1.x superblock read at sector `found` of a member of `member_sectors`.
pub fn parse_1x(b: &[u8], version: Version, found: u64, member_sectors: u64) -> Result<Option<Superblock>, MdError> {
    if b.len() < SB_BYTES || u32le(b, 0) != MAGIC {
        return Ok(None);
    }
    let major = u32le(b, 4);
    if major != 1 {
        return Err(MdError::BadVersion { major, minor: 0 });
    }
    let max_dev = u32le(b, 220);
    if max_dev as usize > MAX_DEVS_1X {
        return Err(MdError::TooManyDevices(max_dev));
    }
    let len = 256 + 2 * max_dev as usize;
    let stored = u32le(b, 216);
    let computed = checksum(&b[..len], 216);
    if stored != computed {
        return Err(MdError::Checksum { stored, computed });
    }
    let super_offset = u64le(b, 144);
    if super_offset != found {
        return Err(MdError::BadOffset { stored: super_offset, found });
    }
    let feature = u32le(b, 8);
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&b[16..32]);
    let name = &b[32..64];
    let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(32)];
    let set_name = String::from_utf8_lossy(name).into_owned();
    let raid_disks = u32le(b, 92);
    let data_offset = u64le(b, 128);
    let size = u64le(b, 80);
    let data_size = u64le(b, 136);
    // RAID1's array size is `size`; a member's data is at most data_size of it.
    let data_sectors = if size == 0 { data_size } else { size };
    let end = data_offset.saturating_add(data_sectors);
    if end > member_sectors {
        return Err(MdError::DataPastEnd { end, device: member_sectors });
    }
    let dev_number = u32le(b, 160);
    let role_of = |slot: u32| -> Option<u16> {
        (slot < max_dev).then(|| u16::from_le_bytes([b[256 + 2 * slot as usize], b[257 + 2 * slot as usize]]))
    };
    let faulty_slots = (0..max_dev).filter(|&s| role_of(s) == Some(ROLE_FAULTY)).collect::<Vec<_>>();
    let role = match role_of(dev_number) {
        None | Some(ROLE_FAULTY) => Role::Faulty,
        Some(ROLE_SPARE) => Role::Spare,
        Some(r) if r >= 0xff00 => Role::Spare,
        Some(_) if feature & FEATURE_RECOVERY != 0 => Role::Recovering,
        Some(r) => Role::Active(u32::from(r)),
    };
    Ok(Some(Superblock {
        version,
        uuid,
        set_name,
        minor: 0,
        level: u32le(b, 72) as i32,
        raid_disks,
        events: u64le(b, 200),
        role,
        faulty_slots,
        data_offset,
        data_sectors,
        reshaping: feature & FEATURE_RESHAPE != 0,
    }))
}

/// Sector of a 0.90 superblock on a member of `sectors`.
fn sb_090_sector(sectors: u64) -> Option<u64> {
    (sectors & !127).checked_sub(128)
}

/// Look for an md superblock on `dev` (1.2, 1.1, 1.0, then 0.90). `Ok(None)`: none.
pub fn probe(dev: &mut dyn BlockDevice) -> Result<Option<Superblock>, MdError> {
    let bs = u64::from(dev.block_size());
    let sectors = dev.size_bytes() / 512;
    let mut buf = alloc::vec![0u8; SB_BYTES];
    let mut at = |sector: u64, buf: &mut [u8]| -> Result<bool, MdError> {
        if !(sector * 512).is_multiple_of(bs)
            || sector.saturating_mul(512).saturating_add(SB_BYTES as u64) > dev.size_bytes()
        {
            return Ok(false);
        }
        read_bytes(dev, sector * 512, buf).map_err(MdError::Io)?;
        Ok(u32le(buf, 0) == MAGIC)
    };
    let end_10 = sectors.checked_sub(16).map(|s| s & !7);
    for (v, sector) in [(Version::V12, Some(8)), (Version::V11, Some(0)), (Version::V10, end_10)] {
        let Some(sector) = sector else { continue };
        if at(sector, &mut buf)? && u32le(&buf, 4) == 1 {
            return parse_1x(&buf, v, sector, sectors);
        }
    }
    if let Some(sector) = sb_090_sector(sectors)
        && at(sector, &mut buf)?
    {
        return parse_090(&buf, sectors);
    }
    Ok(None)
}

/// The array's UUID as mdadm prints it (`xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx`).
pub fn uuid_string(u: &[u8; 16]) -> String {
    let mut s = String::new();
    for (i, b) in u.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            s.push(':');
        }
        s += &format!("{b:02x}");
    }
    s
}

/// The GRUB name of the array a superblock belongs to.
pub fn array_name(sb: &Superblock) -> String {
    if sb.version == Version::V090 {
        return format!("md{}", sb.minor);
    }
    let n = sb.set_name.split_once(':').map_or(sb.set_name.as_str(), |(_, n)| n);
    if n.is_empty() { format!("md/{}", uuid_string(&sb.uuid)) } else { format!("md/{n}") }
}

/// A member: its name (for messages), superblock and device.
pub struct Member {
    pub name: String,
    pub sb: Superblock,
    pub dev: Box<dyn BlockDevice>,
}

/// An assembled array.
pub struct Array {
    pub name: String,
    pub uuid: String,
    pub dev: Composed,
    /// Index into the members passed to [`assemble`] of the member read first, and the
    /// block of it where the array's data starts.
    pub first: usize,
    pub first_offset: u64,
    /// `raid1 over (vdd,gpt1) (vde,gpt1)`, and `degraded` when a leg is missing.
    pub layout: String,
}

/// Group `members` into arrays and assemble the RAID1 ones. Everything refused is said
/// in `log`, naming the array.
pub fn assemble(members: Vec<Member>, log: &mut dyn FnMut(String)) -> Vec<Array> {
    let mut groups: Vec<([u8; 16], Vec<usize>)> = Vec::new();
    for (i, m) in members.iter().enumerate() {
        match groups.iter_mut().find(|g| g.0 == m.sb.uuid) {
            Some(g) => g.1.push(i),
            None => groups.push((m.sb.uuid, alloc::vec![i])),
        }
    }
    let mut slots: Vec<Option<Member>> = members.into_iter().map(Some).collect();
    let mut out = Vec::new();
    for (uuid, idx) in groups {
        let first = slots[idx[0]].as_ref().unwrap();
        let name = array_name(&first.sb);
        let names = |idx: &[usize], slots: &[Option<Member>]| {
            idx.iter().map(|&i| format!("({})", slots[i].as_ref().unwrap().name)).collect::<Vec<_>>().join(" ")
        };
        if first.sb.level != 1 {
            let level = match first.sb.level {
                -4 => String::from("multipath"),
                -1 => String::from("linear"),
                l => format!("raid{l}"),
            };
            log(format!(
                "({name}): md {level} array is not supported (only raid1); members {} skipped",
                names(&idx, &slots)
            ));
            continue;
        }
        if idx.len() > MAX_MEMBERS {
            log(format!("({name}): {} members, more than the {MAX_MEMBERS} read", idx.len()));
            continue;
        }
        let events = idx.iter().map(|&i| slots[i].as_ref().unwrap().sb.events).max().unwrap_or(0);
        let mut legs = Vec::new();
        let mut faulty: Vec<u32> = Vec::new();
        for &i in &idx {
            let sb = &slots[i].as_ref().unwrap().sb;
            if sb.events == events {
                faulty.extend(&sb.faulty_slots);
            }
        }
        let sb0 = idx.iter().map(|&i| &slots[i].as_ref().unwrap().sb).find(|s| s.events == events).unwrap().clone();
        if sb0.reshaping {
            log(format!("({name}): md array is being reshaped; not read"));
            continue;
        }
        let mut seen_roles = Vec::new();
        for &i in &idx {
            let m = slots[i].as_ref().unwrap();
            let why = if m.sb.events < events {
                Some(format!("stale (events {} < {events})", m.sb.events))
            } else if m.sb.version != sb0.version {
                Some(format!("superblock {} differs from the array's {}", m.sb.version, sb0.version))
            } else {
                match m.sb.role {
                    Role::Active(r) if faulty.contains(&r) => Some(String::from("marked faulty")),
                    Role::Active(r) if r >= sb0.raid_disks => Some(format!("role {r} is not below raid_disks")),
                    Role::Active(r) if seen_roles.contains(&r) => Some(format!("second member in role {r}")),
                    Role::Active(_) if m.sb.data_sectors < sb0.data_sectors => {
                        Some(String::from("shorter than the array"))
                    }
                    Role::Active(r) => {
                        seen_roles.push(r);
                        None
                    }
                    Role::Faulty => Some(String::from("faulty")),
                    Role::Spare => Some(String::from("a spare")),
                    Role::Recovering => Some(String::from("still being rebuilt")),
                }
            };
            match why {
                Some(w) => log(format!("({name}): member ({}) not read: {w}", m.name)),
                None => legs.push(i),
            }
        }
        if legs.is_empty() {
            log(format!("({name}): md raid1 array has no usable member"));
            continue;
        }
        let bs = slots[legs[0]].as_ref().unwrap().dev.block_size();
        let per = u64::from(bs / 512);
        if legs.iter().any(|&i| slots[i].as_ref().unwrap().dev.block_size() != bs)
            || legs.iter().any(|&i| !slots[i].as_ref().unwrap().sb.data_offset.is_multiple_of(per))
        {
            log(format!("({name}): members differ in block size or are not aligned to it; not read"));
            continue;
        }
        let complete = legs.len() as u32 == sb0.raid_disks;
        let mut layout = format!("md raid1 over {}", names(&legs, &slots));
        if !complete {
            layout += &format!(", degraded ({} of {} members): read-only", legs.len(), sb0.raid_disks);
            log(format!("({name}): {layout}"));
        }
        let first = legs[0];
        let first_offset = slots[first].as_ref().unwrap().sb.data_offset / per;
        let areas = legs
            .iter()
            .map(|&i| {
                let m = slots[i].take().unwrap();
                Area { start: m.sb.data_offset / per, dev: m.dev }
            })
            .collect();
        let len = sb0.data_sectors / per;
        let dev = Composed::new(bs, alloc::vec![Segment { start: 0, len, map: Map::Mirror { areas, complete } }]);
        out.push(Array { name, uuid: uuid_string(&uuid), dev, first, first_offset, layout });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::block::SliceDisk;

    /// A 1.x superblock (4 KiB) for a RAID1 member with `devs` slots.
    pub fn sb_1x(
        super_offset: u64,
        data_offset: u64,
        size: u64,
        dev_number: u32,
        roles: &[u16],
        events: u64,
    ) -> Vec<u8> {
        let mut b = alloc::vec![0u8; SB_BYTES];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        b[16..32].copy_from_slice(&[0x5a; 16]);
        b[32..41].copy_from_slice(b"rxen:boot");
        b[72..76].copy_from_slice(&1u32.to_le_bytes());
        b[80..88].copy_from_slice(&size.to_le_bytes());
        b[92..96].copy_from_slice(&2u32.to_le_bytes());
        b[128..136].copy_from_slice(&data_offset.to_le_bytes());
        b[136..144].copy_from_slice(&size.to_le_bytes());
        b[144..152].copy_from_slice(&super_offset.to_le_bytes());
        b[160..164].copy_from_slice(&dev_number.to_le_bytes());
        b[200..208].copy_from_slice(&events.to_le_bytes());
        b[220..224].copy_from_slice(&(roles.len() as u32).to_le_bytes());
        for (i, r) in roles.iter().enumerate() {
            b[256 + 2 * i..258 + 2 * i].copy_from_slice(&r.to_le_bytes());
        }
        let c = checksum(&b[..256 + 2 * roles.len()], 216);
        b[216..220].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// A member disk of `sectors` with a 1.2 superblock and data `fill` from sector 16.
    pub fn member_12(sectors: u64, dev_number: u32, roles: &[u16], events: u64, fill: u8) -> Vec<u8> {
        let mut d = alloc::vec![fill; sectors as usize * 512];
        d[4096..8192].copy_from_slice(&sb_1x(8, 16, sectors - 16, dev_number, roles, events));
        d
    }

    #[test]
    fn finds_each_version_and_checks_the_checksum() {
        let d = member_12(256, 0, &[0, 1], 5, 0);
        let sb = probe(&mut SliceDisk::new(&d, 512)).unwrap().unwrap();
        assert_eq!((sb.version, sb.role, sb.events, sb.data_offset), (Version::V12, Role::Active(0), 5, 16));
        assert_eq!(array_name(&sb), "md/boot");
        let mut bad = d.clone();
        bad[4096 + 200] ^= 1;
        assert!(matches!(probe(&mut SliceDisk::new(&bad, 512)), Err(MdError::Checksum { .. })));
        // 1.0 at the end: 256 sectors → (256 - 16) & !7 = 240.
        let mut e = alloc::vec![0u8; 256 * 512];
        e[240 * 512..240 * 512 + 4096].copy_from_slice(&sb_1x(240, 0, 240, 1, &[0, 1], 5));
        let sb = probe(&mut SliceDisk::new(&e, 512)).unwrap().unwrap();
        assert_eq!((sb.version, sb.role), (Version::V10, Role::Active(1)));
        // Claims to be elsewhere.
        e[240 * 512..240 * 512 + 4096].copy_from_slice(&sb_1x(8, 0, 240, 1, &[0, 1], 5));
        assert!(matches!(probe(&mut SliceDisk::new(&e, 512)), Err(MdError::BadOffset { .. })));
        assert_eq!(probe(&mut SliceDisk::new(&[0u8; 8192], 512)), Ok(None));
    }

    #[test]
    fn parses_090() {
        let sectors = 1024u64;
        let mut d = alloc::vec![0u8; sectors as usize * 512];
        let at = (sectors as usize & !127) * 512 - 65536;
        let mut w = alloc::vec![0u32; 1024];
        w[0] = MAGIC;
        w[2] = 90;
        w[5] = 0x01020304;
        w[7] = 1;
        w[8] = 400; // KiB
        w[10] = 2;
        w[11] = 3;
        w[32 + 7] = 9;
        w[992 + 3] = 1;
        w[992 + 4] = 0b110;
        let mut b: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
        let c = checksum(&b, 38 * 4);
        b[152..156].copy_from_slice(&c.to_le_bytes());
        d[at..at + 4096].copy_from_slice(&b);
        let sb = probe(&mut SliceDisk::new(&d, 512)).unwrap().unwrap();
        assert_eq!((sb.version, sb.role, sb.events, sb.data_sectors), (Version::V090, Role::Active(1), 9, 800));
        assert_eq!(array_name(&sb), "md3");
        assert_eq!(&uuid_string(&sb.uuid)[..9], "01020304:");
    }

    fn member(name: &str, d: Vec<u8>) -> Member {
        let leaked: &'static [u8] = alloc::vec::Vec::leak(d);
        let mut dev: Box<dyn BlockDevice> = Box::new(SliceDisk::new(leaked, 512));
        let sb = probe(&mut *dev).unwrap().unwrap();
        Member { name: name.into(), sb, dev }
    }

    #[test]
    fn assembles_raid1_skipping_stale_and_faulty_members() {
        let mut log = Vec::new();
        let a = member("a", member_12(64, 0, &[0, 1], 7, 0xaa));
        let b = member("b", member_12(64, 1, &[0, 1], 7, 0xbb));
        let arrays = assemble(alloc::vec![a, b], &mut |m| log.push(m));
        assert_eq!(arrays.len(), 1);
        assert!(log.is_empty(), "{log:?}");
        let mut arr = arrays.into_iter().next().unwrap();
        assert_eq!((arr.name.as_str(), arr.dev.num_blocks(), arr.first), ("md/boot", 48, 0));
        let mut blk = [0u8; 512];
        arr.dev.read_blocks(0, &mut blk).unwrap();
        assert_eq!(blk[0], 0xaa);
        arr.dev.write_blocks(0, &blk).unwrap_err(); // SliceDisk: read-only, but tried

        // b is stale: a is read, and the array is degraded (no writes).
        let a = member("a", member_12(64, 0, &[0, 1], 8, 0xaa));
        let b = member("b", member_12(64, 1, &[0, 1], 7, 0xbb));
        let mut log = Vec::new();
        let mut arr = assemble(alloc::vec![b, a], &mut |m| log.push(m)).pop().unwrap();
        assert!(log.iter().any(|m| m == "(md/boot): member (b) not read: stale (events 7 < 8)"), "{log:?}");
        arr.dev.read_blocks(0, &mut blk).unwrap();
        assert_eq!(blk[0], 0xaa);
        assert_eq!(arr.dev.write_blocks(0, &blk), Err(super::super::compose::MIRROR_DEGRADED));

        // a's own superblock marks b faulty.
        let a = member("a", member_12(64, 0, &[0, ROLE_FAULTY], 9, 0xaa));
        let b = member("b", member_12(64, 1, &[0, 1], 9, 0xbb));
        let mut log = Vec::new();
        let arr = assemble(alloc::vec![b, a], &mut |m| log.push(m)).pop().unwrap();
        assert!(log.iter().any(|m| m == "(md/boot): member (b) not read: marked faulty"), "{log:?}");
        assert!(arr.layout.contains("degraded (1 of 2"), "{}", arr.layout);

        // raid5: named, skipped.
        let mut d = member_12(64, 0, &[0, 1], 1, 0);
        d[4096 + 72..4096 + 76].copy_from_slice(&5u32.to_le_bytes());
        let c = checksum(&d[4096..4096 + 260], 216);
        d[4096 + 216..4096 + 220].copy_from_slice(&c.to_le_bytes());
        let mut log = Vec::new();
        assert!(assemble(alloc::vec![member("a", d)], &mut |m| log.push(m)).is_empty());
        assert_eq!(log, ["(md/boot): md raid5 array is not supported (only raid1); members (a) skipped"]);
    }
}
