// SPDX-License-Identifier: MIT OR Apache-2.0
//! ISO9660 (CD/DVD images, live and cloud-init seed ISOs), read-only, with Rock Ridge
//! and Joliet names.
//!
//! Format references: ECMA-119 (4th edition: volume descriptors 8, directory records
//! 9.1, identifiers 7.5), the System Use Sharing Protocol (IEEE P1281, SUSP 1.12), the
//! Rock Ridge Interchange Protocol (IEEE P1282, RRIP 1.12) and Microsoft's Joliet
//! specification (UCS-2 names in a supplementary volume descriptor). One file per
//! concern: [`record`] (directory records, descriptors), [`susp`] (SUSP/Rock Ridge
//! entries), [`names`] (Joliet and plain names, labels).
//!
//! Names are chosen as Linux isofs does by default: Rock Ridge when the primary root's
//! `.` record opens with a SUSP `SP` entry, else Joliet when there is a Joliet
//! descriptor, else plain ISO9660 identifiers mapped like `map=normal` (version and a
//! trailing `.` dropped, lower case; lookups then ignore ASCII case).
//!
//! Node ids: the byte offset on the device of the file's (first) directory record; the
//! root's is the root record inside the primary (or, for Joliet names, the Joliet
//! supplementary) volume descriptor. A Rock Ridge relocated directory keeps the id of its
//! `CL` placeholder record. Any id is re-read and re-checked when it comes back.
//!
//! Everything read from the disk is checked before use: descriptors (at most
//! [`MAX_DESCRIPTORS`], to a terminator), record lengths against their logical blocks,
//! extents against the device, directory sizes ([`MAX_DIR_BYTES`]) and records walked
//! ([`MAX_DIR_RECORDS`]) per scan, `CE` chains ([`MAX_CONTINUATIONS`]), extents of one
//! multi-extent file ([`MAX_EXTENTS`]); path components and symlinks are bounded by the
//! shared walker ([`crate::fs::path`]). File data is read straight into the caller's
//! buffer, one device request per extent.

mod names;
mod record;
mod susp;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::block::{BlockDevice, BlockError, read_bytes};
use crate::fs::path::{self, Tree};
use crate::fs::{Filesystem, FsError, Node, NodeKind};
use record::{FLAG_ASSOCIATED, FLAG_MULTI_EXTENT, Record, VD_PRIMARY, VD_ROOT_RECORD, VD_TERMINATOR};
use susp::RockRidge;

/// The registry name.
pub const FS: &str = "iso9660";
/// Volume descriptors are 2048-byte sectors from sector 16 on, whatever the logical
/// block size.
const SECTOR: u64 = 2048;
const VD_FIRST: u64 = 16 * SECTOR;
/// Volume descriptors read before a terminator must have been seen.
pub const MAX_DESCRIPTORS: u64 = 64;
/// Largest directory read (a 32 MiB directory holds some 500000 entries).
pub const MAX_DIR_BYTES: u64 = 32 << 20;
/// Records walked in one directory scan.
pub const MAX_DIR_RECORDS: usize = 1 << 20;
/// `CE` continuation areas followed for one record.
pub const MAX_CONTINUATIONS: usize = 32;
/// Bytes of one continuation area.
const MAX_CE_LEN: u32 = 64 << 10;
/// Extents of one multi-extent file (100 is what xorriso writes for 400 GiB).
pub const MAX_EXTENTS: usize = 4096;
/// Logical blocks read per request while scanning a directory.
const CHUNK_BLOCKS: u64 = 16;

/// Which names the volume is read with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Names {
    /// Rock Ridge (`NM`, `PX`, `SL`), with the `SP` entry's bytes to skip.
    RockRidge {
        skip: u8,
    },
    Joliet,
    Plain,
}

/// A file, directory or symlink: what its directory record(s) say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// See the module docs.
    pub id: u64,
    pub kind: NodeKind,
    pub size: u64,
    /// (byte offset on the device, bytes) in file order.
    extents: Vec<(u64, u64)>,
    /// A symlink's target.
    link: Vec<u8>,
    /// Why this file's data is refused (interleaving, SF, ZF).
    refused: Option<&'static str>,
}

fn io(err: BlockError) -> FsError {
    FsError::Io { fs: FS, err }
}

fn corrupt(what: &'static str, at: u64) -> FsError {
    FsError::Corrupt { fs: FS, what, at }
}

/// Is there an ISO9660 volume descriptor (`CD001` at byte 32769) on `dev`?
pub fn probe<D: BlockDevice + ?Sized>(dev: &mut D) -> bool {
    let mut m = [0u8; 5];
    read_bytes(dev, VD_FIRST + 1, &mut m).is_ok() && &m == b"CD001"
}

/// The registry's mount function.
pub fn mount(dev: Box<dyn BlockDevice>) -> Result<Box<dyn Filesystem>, FsError> {
    Ok(Box::new(Iso9660::open(dev)?))
}

/// A mounted (read-only) ISO9660 volume.
pub struct Iso9660<D: BlockDevice> {
    dev: D,
    /// Logical block size (from the primary descriptor).
    bs: u64,
    names: Names,
    root: Entry,
    uuid: String,
    label: String,
    warnings: Vec<String>,
    /// The entry last re-read from its id (sequential `read_at` calls).
    last: Option<Entry>,
}

impl<D: BlockDevice> Iso9660<D> {
    /// Walk the volume descriptor set, choose the names, check the root directory.
    pub fn open(mut dev: D) -> Result<Self, FsError> {
        let mut vd = vec![0u8; SECTOR as usize];
        // (byte offset, bytes) of the primary and the Joliet descriptor.
        let mut pvd: Option<(u64, Vec<u8>)> = None;
        let mut svd: Option<(u64, Vec<u8>)> = None;
        let mut terminated = false;
        for i in 0..MAX_DESCRIPTORS {
            let at = VD_FIRST + i * SECTOR;
            read_bytes(&mut dev, at, &mut vd)
                .map_err(|_| corrupt("volume descriptor set has no terminator before the end of the device", at))?;
            if vd.get(1..6) != Some(b"CD001") {
                if i == 0 {
                    return Err(FsError::NotOurs { fs: FS, why: "no CD001 volume descriptor at sector 16" });
                }
                return Err(corrupt("volume descriptor set has no terminator (a sector without CD001)", at));
            }
            match vd.first().copied() {
                Some(VD_TERMINATOR) => {
                    terminated = true;
                    break;
                }
                Some(VD_PRIMARY) if pvd.is_none() => pvd = Some((at, vd.clone())),
                _ if svd.is_none() && record::is_joliet(&vd) => svd = Some((at, vd.clone())),
                _ => {}
            }
        }
        if !terminated {
            return Err(FsError::Budget { fs: FS, what: "volume descriptors without a terminator (64 read)" });
        }
        let (pvd_at, pvd) = pvd.ok_or(corrupt("no primary volume descriptor", VD_FIRST))?;
        let bs = record::logical_block_size(&pvd, pvd_at)?;
        if let Some((at, s)) = &svd
            && record::logical_block_size(s, *at)? != bs
        {
            return Err(corrupt("Joliet and primary descriptors disagree on the logical block size", *at));
        }
        let uuid = record::vd_date(pvd.get(830..847).unwrap_or(&[]))
            .or_else(|| record::vd_date(pvd.get(813..830).unwrap_or(&[])))
            .unwrap_or_default();
        let label = names::label(pvd.get(40..72).unwrap_or(&[]), svd.as_ref().and_then(|(_, s)| s.get(40..72)));
        let placeholder =
            Entry { id: 0, kind: NodeKind::Dir, size: 0, extents: Vec::new(), link: Vec::new(), refused: None };
        let mut warnings = Vec::new();
        let volume_blocks = u64::from(record::le32(&pvd, 80));
        if volume_blocks.saturating_mul(u64::from(bs)) > dev.size_bytes() {
            warnings.push(format!(
                "iso9660: the volume ({volume_blocks} blocks of {bs} bytes) is larger than the device ({} bytes): a truncated image?",
                dev.size_bytes()
            ));
        }
        let mut fs = Iso9660 {
            dev,
            bs: u64::from(bs),
            names: Names::Plain,
            root: placeholder,
            uuid,
            label,
            warnings,
            last: None,
        };
        let root = fs.entry_at(pvd_at + VD_ROOT_RECORD as u64)?;
        if root.kind != NodeKind::Dir {
            return Err(corrupt("the root directory record is not a directory", pvd_at));
        }
        // Rock Ridge: `SP` opens the system use area of the root's `.` record.
        let mut skip = None;
        let (start, len) = root.extents.first().copied().unwrap_or((0, 0));
        fs.scan(start, start + len, |_, _, rec| {
            skip = if rec.is_dot() { susp::sp_skip(rec.su) } else { None };
            Ok(false)
        })?;
        if let Some(skip) = skip {
            fs.names = Names::RockRidge { skip };
            fs.root = root;
        } else if let Some((at, _)) = svd {
            fs.names = Names::Joliet;
            fs.root = fs.entry_at(at + VD_ROOT_RECORD as u64)?;
            if fs.root.kind != NodeKind::Dir {
                return Err(corrupt("the Joliet root directory record is not a directory", at));
            }
        } else {
            fs.root = root;
        }
        fs.last = None;
        Ok(fs)
    }

    /// Which names are used.
    pub fn names(&self) -> Names {
        self.names
    }

    /// Volume creation/modification date, as blkid prints it for ISO9660.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Things worth telling that did not stop the mount (a volume larger than its device).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Walk the directory records from byte `start` (inside a logical block) up to `end`,
    /// calling `visit(self, offset, record)` until it returns `false`. A zero length byte
    /// skips to the next logical block.
    fn scan<F>(&mut self, start: u64, end: u64, mut visit: F) -> Result<(), FsError>
    where
        F: FnMut(&mut Self, u64, &Record<'_>) -> Result<bool, FsError>,
    {
        let bs = self.bs;
        let dev_end = self.dev.size_bytes() / bs * bs;
        let end_blocks = end.div_ceil(bs).saturating_mul(bs);
        let (mut pos, mut records, mut chunk) = (start, 0usize, 1u64);
        let mut buf = Vec::new();
        while pos < end {
            let block_start = pos - pos % bs;
            let chunk_end = block_start.saturating_add(chunk * bs).min(end_blocks).min(dev_end);
            if chunk_end <= pos {
                return Err(corrupt("directory runs past the end of the device", pos));
            }
            chunk = CHUNK_BLOCKS;
            buf.resize((chunk_end - block_start) as usize, 0);
            read_bytes(&mut self.dev, block_start, &mut buf).map_err(io)?;
            while pos < chunk_end && pos < end {
                let block_end = (pos / bs + 1) * bs;
                let here = buf.get((pos - block_start) as usize..(block_end - block_start) as usize).unwrap_or(&[]);
                match record::parse_record(here, pos)? {
                    None => pos = block_end,
                    Some(rec) => {
                        records += 1;
                        if records > MAX_DIR_RECORDS {
                            return Err(FsError::Budget { fs: FS, what: "directory records walked" });
                        }
                        if !visit(self, pos, &rec)? {
                            return Ok(());
                        }
                        pos += rec.len as u64;
                    }
                }
            }
        }
        Ok(())
    }

    /// The Rock Ridge entries of `rec`, its `CE` chain followed (nothing unless Rock
    /// Ridge names are in use).
    fn rock_ridge(&mut self, rec: &Record<'_>) -> Result<RockRidge, FsError> {
        let mut rr = RockRidge::default();
        let Names::RockRidge { skip } = self.names else { return Ok(rr) };
        let mut next = rr.parse_area(rec.su.get(usize::from(skip)..).unwrap_or(&[]))?;
        let mut buf = Vec::new();
        let mut followed = 0usize;
        while let Some(ce) = next {
            followed += 1;
            if followed > MAX_CONTINUATIONS {
                return Err(FsError::Budget { fs: FS, what: "SUSP continuation areas (CE) of one record" });
            }
            let at = u64::from(ce.block).saturating_mul(self.bs).saturating_add(u64::from(ce.offset));
            if ce.len > MAX_CE_LEN || at.saturating_add(u64::from(ce.len)) > self.dev.size_bytes() {
                return Err(corrupt("SUSP continuation area (CE) past the end of the device", at));
            }
            buf.resize(ce.len as usize, 0);
            read_bytes(&mut self.dev, at, &mut buf).map_err(io)?;
            next = rr.parse_area(&buf)?;
        }
        Ok(rr)
    }

    /// The name `rec` is listed under.
    fn name_of(&self, rec: &Record<'_>, rr: &RockRidge) -> Vec<u8> {
        if rec.is_dot() {
            return b".".to_vec();
        }
        if rec.is_dotdot() {
            return b"..".to_vec();
        }
        match (self.names, &rr.name) {
            (Names::RockRidge { .. }, Some(n)) => n.clone(),
            (Names::Joliet, _) => names::joliet(rec.name),
            _ => names::plain(rec.name),
        }
    }

    /// Every listed record of directory `dir` as (name, record offset): multi-extent
    /// continuations, associated files and relocated (`RE`) directories left out.
    /// `visit` returns `false` to stop.
    fn each_name<F>(&mut self, dir: &Entry, mut visit: F) -> Result<(), FsError>
    where
        F: FnMut(&[u8], u64) -> bool,
    {
        if dir.kind != NodeKind::Dir {
            return Err(FsError::NotADirectory { fs: FS });
        }
        let (start, len) = dir.extents.first().copied().unwrap_or((0, 0));
        let mut continuing = false;
        self.scan(start, start + len, |fs, at, rec| {
            let multi = rec.flags & FLAG_MULTI_EXTENT != 0 && !rec.is_dir();
            let skip = core::mem::replace(&mut continuing, multi);
            if skip || rec.flags & FLAG_ASSOCIATED != 0 {
                return Ok(true);
            }
            let rr = if rec.is_dot() || rec.is_dotdot() { RockRidge::default() } else { fs.rock_ridge(rec)? };
            if rr.relocated {
                return Ok(true);
            }
            Ok(visit(&fs.name_of(rec, &rr), at))
        })
    }

    /// Re-read the entry whose (first) directory record is at byte `at`.
    fn entry_at(&mut self, at: u64) -> Result<Entry, FsError> {
        if let Some(e) = self.last.as_ref().filter(|e| e.id == at) {
            return Ok(e.clone());
        }
        if self.root.id == at && !self.root.extents.is_empty() {
            return Ok(self.root.clone());
        }
        let bs = self.bs;
        let dev_size = self.dev.size_bytes();
        let mut first: Option<(Vec<u8>, u8, bool, RockRidge)> = None;
        let mut extents: Vec<(u64, u64)> = Vec::new();
        let mut refused = None;
        self.scan(at, dev_size, |fs, _, rec| {
            match &first {
                None => {
                    let rr = if rec.is_dot() || rec.is_dotdot() { RockRidge::default() } else { fs.rock_ridge(rec)? };
                    first = Some((rec.name.to_vec(), rec.flags, rec.is_dir(), rr));
                }
                Some((name, ..)) if name.as_slice() != rec.name => {
                    return Err(corrupt("the records of a multi-extent file have different names", at));
                }
                Some(_) => {}
            }
            if extents.len() >= MAX_EXTENTS {
                return Err(FsError::Budget { fs: FS, what: "extents of one multi-extent file" });
            }
            if rec.unit != 0 || rec.gap != 0 {
                refused = Some("interleaved files (file unit size / interleave gap)");
            }
            let data = (u64::from(rec.lba) + u64::from(rec.xa_len)) * bs;
            extents.push((data, u64::from(rec.size)));
            Ok(rec.flags & FLAG_MULTI_EXTENT != 0 && !rec.is_dir())
        })?;
        let (_, _, is_dir, rr) = first.ok_or(corrupt("no directory record where one was expected", at))?;
        let kind = match rr.mode.map(|m| m & susp::S_IFMT) {
            _ if is_dir || rr.child_link.is_some() => NodeKind::Dir,
            Some(susp::S_IFLNK) => NodeKind::Symlink,
            Some(susp::S_IFREG) | None => NodeKind::File,
            Some(_) => NodeKind::Other,
        };
        let interleaved = refused.is_some();
        let mut e = Entry { id: at, kind, size: 0, extents, link: Vec::new(), refused: refused.or(rr.refused) };
        match kind {
            NodeKind::Dir => {
                if let Some(lba) = rr.child_link {
                    e.extents = vec![self.relocated_dir(u64::from(lba) * bs)?];
                }
                e.extents.truncate(1);
                let (start, len) = e.extents.first().copied().unwrap_or((0, 0));
                if len > MAX_DIR_BYTES {
                    return Err(FsError::Budget { fs: FS, what: "directory size (32 MiB)" });
                }
                if start.saturating_add(len) > dev_size {
                    return Err(corrupt("directory extent past the end of the device", at));
                }
                if interleaved {
                    return Err(FsError::UnsupportedFeature { fs: FS, name: "interleaved directories" });
                }
                e.size = len;
            }
            NodeKind::Symlink => {
                e.link = rr.link.unwrap_or_default();
                e.extents.clear();
                e.size = e.link.len() as u64;
            }
            _ => {
                for &(start, len) in &e.extents {
                    if start.saturating_add(len) > dev_size {
                        return Err(corrupt("file extent past the end of the device", at));
                    }
                    e.size = e.size.saturating_add(len);
                }
            }
        }
        self.last = Some(e.clone());
        Ok(e)
    }

    /// The extent of the directory a Rock Ridge `CL` entry points to: its `.` record's.
    fn relocated_dir(&mut self, start: u64) -> Result<(u64, u64), FsError> {
        let mut found = None;
        self.scan(start, start.saturating_add(self.bs), |_, _, rec| {
            if rec.is_dot() && rec.is_dir() {
                found = Some((start, u64::from(rec.size)));
            }
            Ok(false)
        })?;
        found.ok_or(corrupt("Rock Ridge CL points at no directory", start))
    }

    /// The names in directory `dir` (`.` and `..` first, as stored).
    pub fn list(&mut self, dir: &Entry) -> Result<Vec<String>, FsError> {
        let mut out = Vec::new();
        self.each_name(dir, |name, _| {
            out.push(String::from_utf8_lossy(name).into_owned());
            true
        })?;
        Ok(out)
    }

    /// Resolve `path`, symlinks followed (or not for the last component).
    pub fn resolve(&mut self, path: &str, follow_last: bool) -> Result<Entry, FsError> {
        path::resolve(self, path, follow_last)
    }

    /// Bytes of file `e` from `offset` into `buf`: one device request per extent.
    pub fn read_entry(&mut self, e: &Entry, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        match e.kind {
            NodeKind::Dir => return Err(FsError::IsADirectory { fs: FS }),
            NodeKind::Symlink => {
                let from = e.link.get(usize::try_from(offset).unwrap_or(usize::MAX)..).unwrap_or(&[]);
                let n = from.len().min(buf.len());
                buf.get_mut(..n).unwrap_or(&mut []).copy_from_slice(from.get(..n).unwrap_or(&[]));
                return Ok(n);
            }
            _ => {}
        }
        if let Some(name) = e.refused {
            return Err(FsError::UnsupportedFeature { fs: FS, name });
        }
        let (mut done, mut pos) = (0usize, 0u64);
        for &(start, len) in &e.extents {
            if done == buf.len() {
                break;
            }
            let want = offset.saturating_add(done as u64);
            if want < pos + len {
                let within = want.saturating_sub(pos);
                let n = usize::try_from(len - within).unwrap_or(usize::MAX).min(buf.len() - done);
                let dst = buf.get_mut(done..done + n).unwrap_or(&mut []);
                read_bytes(&mut self.dev, start + within, dst).map_err(io)?;
                done += n;
            }
            pos += len;
        }
        Ok(done)
    }

    pub fn into_inner(self) -> D {
        self.dev
    }
}

impl<D: BlockDevice> Tree for Iso9660<D> {
    type Node = Entry;
    fn fs_name(&self) -> &'static str {
        FS
    }
    fn root(&mut self) -> Result<Entry, FsError> {
        Ok(self.root.clone())
    }
    fn node_kind(&self, node: &Entry) -> NodeKind {
        node.kind
    }
    fn child(&mut self, dir: &Entry, name: &[u8]) -> Result<Entry, FsError> {
        let plain = self.names == Names::Plain;
        let mut found = None;
        self.each_name(dir, |n, at| {
            let hit = if plain { n.eq_ignore_ascii_case(name) } else { n == name };
            if hit {
                found = Some(at);
            }
            !hit
        })?;
        self.entry_at(found.ok_or(FsError::NotFound { fs: FS })?)
    }
    fn link_target(&mut self, link: &Entry) -> Result<Vec<u8>, FsError> {
        Ok(link.link.clone())
    }
}

fn node(e: &Entry) -> Node {
    Node { id: e.id, kind: e.kind, size: e.size }
}

impl Filesystem for Iso9660<Box<dyn BlockDevice>> {
    fn kind(&self) -> &'static str {
        FS
    }
    fn uuid(&self) -> String {
        self.uuid.clone()
    }
    fn label(&self) -> String {
        self.label.clone()
    }
    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
    fn lookup(&mut self, path: &str) -> Result<Node, FsError> {
        Ok(node(&self.resolve(path, true)?))
    }
    fn read_at(&mut self, n: &Node, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let e = self.entry_at(n.id)?;
        self.read_entry(&e, offset, buf)
    }
    fn read_dir(&mut self, n: &Node) -> Result<Vec<String>, FsError> {
        let e = self.entry_at(n.id)?;
        self.list(&e)
    }
    fn read_link(&mut self, path: &str) -> Result<String, FsError> {
        let e = self.resolve(path, false)?;
        if e.kind != NodeKind::Symlink {
            return Err(FsError::NotASymlink { fs: FS });
        }
        Ok(String::from_utf8_lossy(&e.link).into_owned())
    }
    fn into_device(self: Box<Self>) -> Box<dyn BlockDevice> {
        self.into_inner()
    }
}
