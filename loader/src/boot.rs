// SPDX-License-Identifier: MIT OR Apache-2.0
//! The pieces of one boot attempt, pure: where files come from ([`Files`]: the memdisk,
//! the domain's modules, the guest's volumes), a kernel step's files and command line
//! ([`prepare_kernel_step`]), and where a kernel and its companions go in guest RAM
//! ([`place_linux`], [`place_pvh`]). The boot session strings them together.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use rxen_memdisk::ustar::{Archive, UstarError};

use crate::cmdline::{DomainCmdline, kernel_cmdline};
use crate::config::policy::{FilePath, KernelStep};
use crate::handoff::HandoffError;
use crate::handoff::boot_params::kernel_placement;
use crate::kernel::bzimage::BzImage;
use crate::kernel::elf::PvhElf;
use crate::kernel::multiboot::MultibootKernel;
use crate::kernel::pv::PvElf;
use crate::kernel::{Kernel, KernelError, detect};
use crate::mem::{PAGE, RegionAllocator};
use crate::trust::{Refusal, Trust};
use crate::volume::{Disk, FileError, GuestMemory, SearchKey, Volume};
use alloc::rc::Rc;

/// Below this the loader never places anything (BIOS data, firmware tables, start info).
pub const LOW_MEMORY_END: u64 = 0x10_0000;
/// Everything the loader places for the kernel lies below 4 GiB (identity map; 32-bit
/// boot protocol pointers).
pub const PLACE_LIMIT: u64 = 1 << 32;

/// Why a file named by a policy or an entry could not be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    NoMemdisk { file: String },
    Memdisk { file: String, cause: UstarError },
    BadModule { file: String },
    ModuleWithPath { file: String, module: String },
    NoModule { file: String, given: usize },
    NoVolume { file: String, volume: String, known: Vec<String> },
    Volume(FileError),
}

impl ReadError {
    /// The file is not there (an optional initrd may be skipped), as opposed to broken.
    pub fn is_not_found(&self) -> bool {
        match self {
            ReadError::Memdisk { cause, .. } => *cause == UstarError::NotFound,
            ReadError::NoModule { .. } => true,
            ReadError::Volume(e) => e.is_not_found(),
            _ => false,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NoMemdisk { file } => write!(f, "{file}: this image has no memdisk"),
            ReadError::Memdisk { file, cause } => write!(f, "{file}: {cause}"),
            ReadError::BadModule { file } => write!(f, "{file}: bad module name"),
            ReadError::ModuleWithPath { file, module } => {
                write!(f, "{file}: a module is a whole file; write ({module}) without a path")
            }
            ReadError::NoModule { file, given } => write!(f, "{file}: the domain was given {given} module(s)"),
            ReadError::NoVolume { file, volume, known } => write!(
                f,
                "{file}: no volume ({volume}); volumes: {}",
                if known.is_empty() { "none".to_string() } else { known.join(" ") }
            ),
            ReadError::Volume(e) => e.fmt(f),
        }
    }
}

/// Why a kernel could not be placed in guest RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlaceError {
    KernelNoRam {
        need: u64,
        align: u64,
        above: u64,
    },
    KernelFixed {
        at: u64,
        need: u64,
    },
    InitrdNoRam {
        len: u64,
        below: u64,
    },
    /// `what` (cmdline, boot_params, setup_data, start info, initrd) found no free RAM.
    NoRam {
        what: &'static str,
    },
    PvhSegment {
        paddr: u64,
        memsz: u64,
    },
    PvhStaging {
        len: u64,
    },
    /// The PV kernel's start-of-day region (it lives at fixed frames) is not free RAM.
    PvRegion {
        start: u64,
        end: u64,
    },
    /// A PV kernel, but the loader is not a PV guest (or the other way round).
    PvMismatch,
    Handoff(HandoffError),
}

impl fmt::Display for PlaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PlaceError::KernelNoRam { need, align, above } => {
                write!(f, "kernel: no free RAM for {need:#x} bytes aligned to {align:#x} above {above:#x}")
            }
            PlaceError::KernelFixed { at, need } => {
                write!(f, "kernel: not relocatable and {at:#x}+{need:#x} is not free RAM")
            }
            PlaceError::InitrdNoRam { len, below } => write!(f, "initrd: no free RAM for {len} bytes below {below:#x}"),
            PlaceError::NoRam { what } => write!(f, "{what}: no free RAM"),
            PlaceError::PvhSegment { paddr, memsz } => write!(
                f,
                "PVH kernel: segment {paddr:#x}+{memsz:#x} is not free RAM (it overlaps the loader or firmware, or is beyond RAM)"
            ),
            PlaceError::PvhStaging { len } => {
                write!(f, "PVH kernel: no free RAM to stage {} while its segments overwrite the memdisk", size_str(len))
            }
            PlaceError::PvRegion { start, end } => write!(
                f,
                "PV kernel: its start of day at {start:#x}-{end:#x} is not free RAM (the loader, its memdisk or the \
                 files read are there, or the domain is too small)"
            ),
            PlaceError::PvMismatch => f.write_str("a PV kernel can only be booted by pv-boot, in a PV domain"),
            PlaceError::Handoff(e) => e.fmt(f),
        }
    }
}

/// Why a step (or a configuration entry) did not boot: stage, object and cause. Shown
/// on the console; the next step runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootError {
    Read(ReadError),
    /// Verified boot refused a file.
    Refused {
        file: String,
        cause: Refusal,
    },
    Kernel {
        file: String,
        cause: KernelError,
    },
    Place(PlaceError),
    Search {
        key: SearchKey,
        volumes: usize,
        disks: usize,
        /// Volumes that could not be looked in, and why ([`crate::volume::search`]).
        unreadable: Vec<String>,
    },
    UnknownStep {
        name: String,
    },
    NoConfigVolume,
    /// Reading or interpreting the guest's boot configuration.
    Config(String),
    NoConfigAnywhere {
        errors: Vec<String>,
    },
    NoEntry {
        file: String,
    },
    EntryIndex {
        index: usize,
    },
    EntryDevice {
        spec: String,
        device: String,
    },
    EntryUnsupported {
        title: String,
        why: String,
    },
    EntryNoKernel {
        title: String,
    },
    Entry {
        title: String,
        cause: Box<BootError>,
    },
    /// A key on the console stopped work done during the menu's countdown.
    Interrupted,
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Read(e) => e.fmt(f),
            BootError::Refused { file, cause } => write!(f, "{file}: refused: {cause}"),
            BootError::Kernel { file, cause } => write!(f, "{file}: {cause}"),
            BootError::Place(e) => e.fmt(f),
            BootError::Search { key, volumes, disks, unreadable } => {
                write!(f, "search {key}: no volume matches ({volumes} volume(s) on {disks} disk(s))")?;
                if !unreadable.is_empty() {
                    write!(f, "; could not look in {}", unreadable.join("; "))?;
                }
                Ok(())
            }
            BootError::UnknownStep { name } => write!(f, "rxen.step={name}: the policy has no step of that name"),
            BootError::NoConfigVolume => f.write_str("no volume to read a boot configuration from"),
            BootError::Config(e) => f.write_str(e),
            BootError::NoConfigAnywhere { errors } => {
                write!(f, "no boot configuration on any volume ({})", errors.join("; "))
            }
            BootError::NoEntry { file } => write!(f, "{file}: no entry to boot"),
            BootError::EntryIndex { index } => write!(f, "no entry {index}"),
            BootError::EntryDevice { spec, device } => write!(f, "{spec}: no device ({device}) among the volumes"),
            BootError::EntryUnsupported { title, why } => {
                write!(f, "entry {title:?}: {why} is not something rxen boots")
            }
            BootError::EntryNoKernel { title } => write!(f, "entry {title:?} loads no kernel"),
            BootError::Entry { title, cause } => write!(f, "entry {title:?}: {cause}"),
            BootError::Interrupted => f.write_str("stopped by a key on the console"),
        }
    }
}

impl BootError {
    /// Whether verified boot refused a file here (`require = true` stops the boot).
    pub fn is_refusal(&self) -> bool {
        match self {
            BootError::Refused { .. } => true,
            BootError::Entry { cause, .. } => cause.is_refusal(),
            _ => false,
        }
    }
    /// Whether a key stopped the work ([`Files::poll`]).
    pub fn is_interrupted(&self) -> bool {
        match self {
            BootError::Interrupted => true,
            BootError::Entry { cause, .. } => cause.is_interrupted(),
            _ => false,
        }
    }
}

impl From<ReadError> for BootError {
    fn from(e: ReadError) -> Self {
        BootError::Read(e)
    }
}

impl From<PlaceError> for BootError {
    fn from(e: PlaceError) -> Self {
        BootError::Place(e)
    }
}

/// A module the domain was given, as bytes in memory.
#[derive(Clone, Copy, Debug)]
pub struct ModuleData<'a> {
    pub paddr: u64,
    pub data: &'a [u8],
}

/// The image's memdisk: the archive and where its bytes lie in guest memory.
#[derive(Clone, Copy, Debug)]
pub struct Memdisk<'a> {
    pub bytes: &'a [u8],
    pub paddr: u64,
}

impl<'a> Memdisk<'a> {
    pub fn archive(&self) -> Archive<'a> {
        Archive::new(self.bytes)
    }

    /// The guest-physical address of `data`, a slice of the memdisk.
    fn paddr_of(&self, data: &[u8]) -> u64 {
        self.paddr + (data.as_ptr() as u64).wrapping_sub(self.bytes.as_ptr() as u64)
    }
}

/// Where files come from during one boot.
pub struct Files<'x, 'a> {
    /// The image's memdisk, when it has one.
    pub memdisk: Option<Memdisk<'a>>,
    /// PVH modules: `(module0)`, `(module1)`, ...
    pub modules: &'a [ModuleData<'a>],
    /// The guest's disks and the volumes (mounted) found on them.
    pub disks: &'x [Disk],
    pub volumes: &'x mut [Volume],
    /// Files read from disk: (what, bytes, microseconds), for `rxen.debug`.
    pub reads: Vec<(String, u64, u64)>,
    /// A microsecond clock for those timings.
    pub clock: fn() -> u64,
    /// The loader is a Xen PV guest: kernels are PV kernels (a bzImage's payload is
    /// decompressed here).
    pub pv: bool,
    /// A PVH boot decompresses a bzImage's payload itself and enters the kernel at its
    /// PVH entry (policy `kaslr = false`, the default); false: the bzImage decompresses
    /// itself (with KASLR).
    pub pvh_entry: bool,
    /// Verified boot: the policy's rules and the image's keys.
    pub trust: Rc<Trust>,
    /// Work done during a menu's countdown: a long decompression calls this now and then
    /// and stops ([`BootError::Interrupted`]) when it returns true (a key was pressed).
    pub poll: Option<&'x mut dyn FnMut() -> bool>,
}

/// A file's bytes and where they lie in guest memory. `in_place`: they could be used
/// where they are (a module, or a file read from disk into its own pages).
#[derive(Clone, Copy, Debug)]
pub struct FileData<'a> {
    pub data: &'a [u8],
    pub paddr: u64,
    pub in_place: bool,
}

/// The root volume: `memdisk`, or a disk volume chosen by a `search` step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Root {
    Memdisk,
    Volume(usize),
}

impl<'a> Files<'_, 'a> {
    /// Read `path`; a path without a volume is looked up on `root`. Disk files are read
    /// into fresh pages from `mem`.
    pub fn read(&mut self, path: &FilePath, root: &Root, mem: &mut dyn GuestMemory) -> Result<FileData<'a>, ReadError> {
        let volume = match (&path.volume, root) {
            (Some(v), _) => v.clone(),
            (None, Root::Memdisk) => "memdisk".into(),
            (None, Root::Volume(i)) => self.volumes.get(*i).map_or("memdisk".into(), |v| v.name.clone()),
        };
        let file = || path.to_string();
        if volume == "memdisk" {
            let Some(md) = self.memdisk else { return Err(ReadError::NoMemdisk { file: file() }) };
            return match md.archive().file(&path.path) {
                Ok(data) => Ok(FileData { data, paddr: md.paddr_of(data), in_place: false }),
                Err(cause) => Err(ReadError::Memdisk { file: file(), cause }),
            };
        }
        if let Some(n) = volume.strip_prefix("module").filter(|n| n.bytes().all(|c| c.is_ascii_digit())) {
            let Ok(i) = n.parse::<usize>() else { return Err(ReadError::BadModule { file: file() }) };
            return match self.modules.get(i) {
                Some(m) if path.path.is_empty() || path.path == "/" => {
                    Ok(FileData { data: m.data, paddr: m.paddr, in_place: true })
                }
                Some(_) => Err(ReadError::ModuleWithPath { file: file(), module: volume.clone() }),
                None => Err(ReadError::NoModule { file: file(), given: self.modules.len() }),
            };
        }
        let Some(vol) = self.volumes.iter_mut().find(|v| v.name == volume) else {
            let known = self.volumes.iter().map(|v| v.name.clone()).collect();
            return Err(ReadError::NoVolume { file: file(), volume, known });
        };
        let t0 = (self.clock)();
        let (paddr, data) = vol.read_file(&path.path, mem).map_err(ReadError::Volume)?;
        let us = (self.clock)().saturating_sub(t0);
        self.reads.push((format!("({}){}", vol.name, path.path), data.len() as u64, us));
        Ok(FileData { data, paddr, in_place: true })
    }
}

impl Files<'_, '_> {
    /// Verified boot for a file just read from `path` (`data`): a file from a guest disk
    /// must match its pin, or (`signatures = true`) carry a valid `FILE.sig`. The memdisk
    /// and the modules come from dom0: only a pin is checked for them.
    pub fn verify(
        &mut self,
        path: &FilePath,
        root: &Root,
        data: &[u8],
        pin: Option<&[u8; 32]>,
        log: &mut dyn FnMut(String),
    ) -> Result<(), BootError> {
        let volume = match (&path.volume, root) {
            (Some(v), _) => Some(v.clone()),
            (None, Root::Memdisk) => None,
            (None, Root::Volume(i)) => self.volumes.get(*i).map(|v| v.name.clone()),
        };
        let from_disk = volume.as_deref().is_some_and(|v| v != "memdisk" && !v.starts_with("module"));
        let file = match &volume {
            Some(v) => format!("({v}){}", path.path),
            None => path.to_string(),
        };
        if !(pin.is_some() || from_disk && self.trust.rules.signatures) {
            return Ok(());
        }
        let sig_path = format!("{}{}", path.path, crate::trust::SIG_SUFFIX);
        let sig: Result<Vec<u8>, String> = if pin.is_some() || !from_disk {
            Err(String::new())
        } else {
            match self.volumes.iter_mut().find(|v| Some(&v.name) == volume.as_ref()) {
                Some(v) => v.read_small(&sig_path, crate::trust::MAX_SIG_FILE).map_err(|e| e.to_string()),
                None => Err(format!("{sig_path}: no volume")),
            }
        };
        let t0 = (self.clock)();
        let r = crate::trust::check(data, pin, sig.as_deref().map_err(Clone::clone), &self.trust.keys);
        let us = (self.clock)().saturating_sub(t0);
        match r {
            Ok(how) => {
                log(format!("{file}: verified: {how} ({} hashed in {} ms)", size_str(data.len() as u64), us / 1000));
                Ok(())
            }
            Err(cause) => Err(BootError::Refused { file, cause }),
        }
    }
}

/// A kernel ready to be placed.
#[derive(Debug)]
pub enum Prepared<'a> {
    /// bzImage by the x86 boot protocol.
    Linux { kernel: BzImage<'a>, kernel_paddr: u64, initrd: Vec<FileData<'a>>, cmdline: String },
    /// An ELF with `XEN_ELFNOTE_PHYS32_ENTRY`. `from_bz`: it is a bzImage's payload,
    /// decompressed here into `image`; the bzImage (and its protected-mode part's
    /// address) boots instead, by the boot protocol, if the ELF cannot be placed.
    Pvh {
        image: FileData<'a>,
        elf: PvhElf,
        initrd: Vec<FileData<'a>>,
        cmdline: String,
        from_bz: Option<(BzImage<'a>, u64)>,
    },
    /// A Xen PV kernel (pv-boot): `image` is its ELF (a bzImage's payload, decompressed),
    /// `file_len` the kernel file's size.
    Pv { image: FileData<'a>, elf: PvElf, file_len: u64, initrd: Vec<FileData<'a>>, cmdline: String },
    /// A multiboot (version 1) kernel: the initrds are its modules.
    Multiboot { image: FileData<'a>, kernel: MultibootKernel, initrd: Vec<FileData<'a>>, cmdline: String },
}

impl Prepared<'_> {
    /// (kind, kernel file bytes, initrd sizes, command line), for messages and explain.
    pub fn summary(&self) -> (&'static str, u64, Vec<u64>, &str) {
        let sizes = |i: &[FileData]| i.iter().map(|f| f.data.len() as u64).collect();
        match self {
            Prepared::Linux { kernel, initrd, cmdline, .. } => {
                ("Linux bzImage", kernel.image().len() as u64, sizes(initrd), cmdline)
            }
            Prepared::Pvh { initrd, cmdline, from_bz: Some((bz, _)), .. } => {
                ("Linux bzImage at its PVH entry", bz.image().len() as u64, sizes(initrd), cmdline)
            }
            Prepared::Pvh { image, initrd, cmdline, .. } => {
                ("PVH ELF", image.data.len() as u64, sizes(initrd), cmdline)
            }
            Prepared::Pv { file_len, initrd, cmdline, .. } => ("PV kernel", *file_len, sizes(initrd), cmdline),
            Prepared::Multiboot { image, initrd, cmdline, .. } => {
                ("multiboot kernel", image.data.len() as u64, sizes(initrd), cmdline)
            }
        }
    }
}

/// Resolve a kernel step's files and its command line.
///
/// When the step names no initrd (or only an optional one that is missing) and the domain
/// was given a module (xl `ramdisk=`, QEMU `-initrd`), module 0 is the initrd.
pub fn prepare_kernel_step<'a>(
    step: &KernelStep,
    files: &mut Files<'_, 'a>,
    root: &Root,
    domain: &DomainCmdline,
    mem: &mut dyn GuestMemory,
    log: &mut dyn FnMut(String),
) -> Result<Prepared<'a>, BootError> {
    let kfile = files.read(&step.kernel, root, mem)?;
    files.verify(&step.kernel, root, kfile.data, step.pins.kernel.as_ref(), log)?;
    let mut initrd = Vec::new();
    for (n, p) in step.initrd.iter().enumerate() {
        match files.read(p, root, mem) {
            Ok(f) => {
                files.verify(p, root, f.data, step.pins.initrd.get(n), log)?;
                initrd.push(f)
            }
            Err(e) if e.is_not_found() && step.initrd_optional => log(format!("{e} (optional initrd, skipped)")),
            Err(e) => return Err(e.into()),
        }
    }
    // Module 0 (xl `ramdisk=`) stands in for a missing initrd, unless it is the kernel
    // itself: when the step names none, or names only optional ones that are not there.
    if initrd.is_empty()
        && step.kernel.volume.as_deref().is_none_or(|v| !v.starts_with("module"))
        && let Some(m) = files.modules.first()
    {
        initrd.push(FileData { data: m.data, paddr: m.paddr, in_place: true });
    }
    let cmdline = kernel_cmdline(&step.cmdline, domain);
    let file_name = |files: &Files| match (&step.kernel.volume, root) {
        (None, Root::Volume(i)) => match files.volumes.get(*i) {
            Some(v) => format!("({}){}", v.name, step.kernel.path),
            None => step.kernel.to_string(),
        },
        _ => step.kernel.to_string(),
    };
    let kerr = |files: &Files, cause| BootError::Kernel { file: file_name(files), cause };
    if files.pv {
        let image = if kfile.data.starts_with(crate::kernel::elf::ELF_MAGIC) {
            kfile
        } else {
            let bz = crate::kernel::bzimage::parse(kfile.data).map_err(|e| kerr(files, e))?;
            let name = file_name(files);
            decompress_payload(&bz, &name, files.clock, files.poll.as_deref_mut(), mem, log)?
        };
        let elf = crate::kernel::pv::parse_pv(image.data).map_err(|e| kerr(files, e))?;
        return Ok(Prepared::Pv { image, elf, file_len: kfile.data.len() as u64, initrd, cmdline });
    }
    match detect(kfile.data) {
        Ok(Kernel::BzImage(kernel)) => {
            // The protected-mode part's address: the file's, past the real-mode setup.
            let off = (kernel.protected_mode().as_ptr() as u64).wrapping_sub(kfile.data.as_ptr() as u64);
            let kernel_paddr = kfile.paddr + off;
            if files.pvh_entry && kernel.payload_format().is_some() {
                // As xl's direct boot: the payload's ELF at its PVH entry. Anything in the
                // way (no PVH note, a payload this loader cannot decode, too little RAM)
                // and the bzImage boots itself, as it would with `kaslr = true`.
                let name = file_name(files);
                match decompress_payload(&kernel, &name, files.clock, files.poll.as_deref_mut(), mem, log) {
                    Ok(image) => match crate::kernel::elf::parse_pvh(image.data) {
                        Ok(elf) => {
                            let from_bz = Some((kernel, kernel_paddr));
                            return Ok(Prepared::Pvh { image, elf, initrd, cmdline, from_bz });
                        }
                        Err(e) => {
                            mem.free(image.paddr, payload_alloc_len(&kernel));
                            log(format!("{name}: its payload is no PVH kernel ({e}): the bzImage decompresses itself"))
                        }
                    },
                    Err(e) if e.is_interrupted() => return Err(e),
                    Err(e) => log(format!("{e}: the bzImage decompresses itself")),
                }
            }
            Ok(Prepared::Linux { kernel, kernel_paddr, initrd, cmdline })
        }
        Ok(Kernel::PvhElf(elf)) => Ok(Prepared::Pvh { image: kfile, elf, initrd, cmdline, from_bz: None }),
        Ok(Kernel::Multiboot(kernel)) => Ok(Prepared::Multiboot { image: kfile, kernel, initrd, cmdline }),
        Err(cause) => Err(kerr(files, cause)),
    }
}

/// The RAM [`decompress_payload`] takes for `bz`'s payload: its size trailer's, else
/// `init_size` (at most the decoders' cap).
pub fn payload_alloc_len(bz: &BzImage) -> u64 {
    crate::kernel::pv::pv_output_size(bz) as u64
}

/// A bzImage's payload decompressed into RAM of its own (the ELF inside; the RAM is
/// [`payload_alloc_len`] bytes from its address), timed and logged. The dictionary decoders keep their window on the heap: it is lent RAM for the
/// decompression (decompress::working_memory), or the decompression is refused by name
/// when the domain has not that much free: a failed allocation must never happen inside
/// a decoder.
fn decompress_payload<'a, 'q>(
    bz: &BzImage,
    name: &str,
    clock: fn() -> u64,
    poll: Option<&mut (dyn FnMut() -> bool + 'q)>,
    mem: &mut dyn GuestMemory,
    log: &mut dyn FnMut(String),
) -> Result<FileData<'a>, BootError> {
    let cap = payload_alloc_len(bz) as usize;
    let format = bz.payload_format();
    let lend = match (format, bz.payload()) {
        (Some(f), Some(p)) => crate::kernel::decompress::working_memory(f, p, cap as u64),
        _ => 0,
    };
    const MAIN_HEAP_SPARE: u64 = 2 << 20;
    let (paddr, buf) =
        mem.alloc(cap as u64).ok_or(BootError::Place(PlaceError::NoRam { what: "the decompressed kernel" }))?;
    if lend > MAIN_HEAP_SPARE && !mem.scratch(lend) {
        mem.free(paddr, cap as u64);
        log(format!(
            "{name}: the {} decoder needs {} of working memory; the domain has not that much free",
            format.map(|f| f.name()).unwrap_or("?"),
            size_str(lend)
        ));
        return Err(BootError::Place(PlaceError::NoRam { what: "the kernel decoder's window" }));
    }
    let lent = lend > MAIN_HEAP_SPARE;
    let t0 = clock();
    let mut never = || false;
    let poll = poll.unwrap_or(&mut never);
    let n = crate::kernel::pv::payload_image(bz, &mut *buf, poll);
    let us = clock().saturating_sub(t0);
    if lent {
        mem.end_scratch();
    }
    match n {
        Ok(n) => {
            log(format!(
                "{name}: {} payload, {} decompressed in {} ms",
                format.map(|f| f.name()).unwrap_or("?"),
                size_str(n as u64),
                us / 1000
            ));
            let buf: &'static [u8] = buf;
            Ok(FileData { data: &buf[..n], paddr, in_place: true })
        }
        Err(cause) => {
            mem.free(paddr, cap as u64);
            match cause {
                KernelError::PvPayload(e) if e.is_interrupted() => Err(BootError::Interrupted),
                cause => Err(BootError::Kernel { file: name.into(), cause }),
            }
        }
    }
}

/// Where a bzImage and its companions go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinuxPlacement {
    /// Physical address of the protected-mode kernel.
    pub load_addr: u64,
    /// Bytes reserved from `load_addr` (init_size or the image, whichever is larger).
    pub load_len: u64,
    /// Initrd address and length; `copy` when its bytes must be copied there.
    pub initrd: Option<(u64, u64)>,
    pub initrd_copy: bool,
    pub cmdline_paddr: u64,
    pub boot_params_paddr: u64,
    /// Where a `setup_data` chain goes (e820 maps over 128 entries).
    pub setup_data_paddr: u64,
}

fn initrd_len(initrd: &[FileData]) -> u64 {
    initrd.iter().map(|f| f.data.len() as u64).sum()
}

/// Plan a bzImage boot.
pub fn place_linux(
    alloc: &mut RegionAllocator,
    kernel: &BzImage,
    initrd: &[FileData],
    cmdline_len: usize,
    setup_data_len: u64,
) -> Result<LinuxPlacement, PlaceError> {
    let (pref, align, need, relocatable) = kernel_placement(kernel);
    let align = align.max(PAGE);
    let load_addr = if alloc.alloc_at(pref, need) {
        pref
    } else if relocatable {
        // A relocatable x86_64 kernel still decompresses at or above LOAD_PHYSICAL_ADDR
        // (= pref_address), so never place it lower than that.
        match alloc.alloc_bottom(need, align, pref.max(LOW_MEMORY_END)) {
            Some(a) => a,
            None => {
                return Err(PlaceError::KernelNoRam { need, align, above: pref });
            }
        }
    } else {
        return Err(PlaceError::KernelFixed { at: pref, need });
    };

    // initrd_addr_max is the address of the last byte the initrd may occupy.
    let initrd_max_end = kernel.initrd_addr_max().saturating_add(1).min(PLACE_LIMIT);
    let mut initrd_copy = false;
    let initrd_place = match initrd {
        [] => None,
        [one]
            if (one.in_place).then_some(one.paddr).is_some_and(|p| {
                p % PAGE == 0
                    && p + one.data.len() as u64 <= initrd_max_end
                    && !ranges_overlap(p, one.data.len() as u64, load_addr, need)
            }) =>
        {
            Some((one.paddr, one.data.len() as u64))
        }
        parts => {
            let len = initrd_len(parts);
            initrd_copy = true;
            match alloc.alloc_top(len, PAGE, initrd_max_end) {
                Some(a) => Some((a, len)),
                None => return Err(PlaceError::InitrdNoRam { len, below: initrd_max_end }),
            }
        }
    };
    let cmdline_paddr =
        alloc.alloc_top(cmdline_len as u64 + 1, PAGE, PLACE_LIMIT).ok_or(PlaceError::NoRam { what: "cmdline" })?;
    let boot_params_paddr =
        alloc.alloc_top(PAGE, PAGE, PLACE_LIMIT).ok_or(PlaceError::NoRam { what: "boot_params" })?;
    let setup_data_paddr = if setup_data_len > 0 {
        alloc.alloc_top(setup_data_len, PAGE, PLACE_LIMIT).ok_or(PlaceError::NoRam { what: "setup_data" })?
    } else {
        0
    };
    Ok(LinuxPlacement {
        load_addr,
        load_len: need,
        initrd: initrd_place,
        initrd_copy,
        cmdline_paddr,
        boot_params_paddr,
        setup_data_paddr,
    })
}

fn ranges_overlap(a: u64, alen: u64, b: u64, blen: u64) -> bool {
    a < b.saturating_add(blen) && b < a.saturating_add(alen)
}

/// Where a PVH ELF kernel and its start info go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvhPlacement {
    pub initrd: Option<(u64, u64)>,
    /// The initrd's bytes must be copied to `initrd` (false: they are there already).
    pub initrd_copy: bool,
    pub start_info_paddr: u64,
    pub start_info_len: u64,
    /// When the kernel's segments land on the memdisk it is read from: where to copy the
    /// kernel file first (after the initrd is copied out), so the segments can be copied
    /// from there over the memdisk.
    pub staging: Option<u64>,
}

/// Plan a PVH ELF boot: every PT_LOAD at its own physical address (which must be free),
/// the initrd and the start info blob high.
///
/// `memdisk` is the memdisk's range: segments may overwrite it (a big vmlinux in a
/// memdisk right after the loader usually does), in which case the plan stages the kernel
/// file elsewhere first. Copy order for the caller: initrd, staging, segments, start info.
pub fn place_pvh(
    alloc: &mut RegionAllocator,
    elf: &PvhElf,
    image_len: u64,
    initrd: &[FileData],
    start_info_len: u64,
    memdisk: Option<(u64, u64)>,
) -> Result<PvhPlacement, PlaceError> {
    let loads = || elf.segments.iter().filter(|s| s.memsz > 0);
    let over_memdisk = memdisk.filter(|&(a, l)| loads().any(|s| ranges_overlap(s.paddr, s.memsz, a, l)));
    if let Some((a, l)) = over_memdisk {
        alloc.release(a, l);
    }
    for s in loads() {
        if !alloc.alloc_at(s.paddr, s.memsz) {
            return Err(PlaceError::PvhSegment { paddr: s.paddr, memsz: s.memsz });
        }
    }
    // Until everything is copied out, the memdisk's bytes are still needed.
    if let Some((a, l)) = over_memdisk {
        alloc.reserve(a, l);
    }
    // One initrd already in pages of its own (read from a disk, or a module), clear of
    // every segment and of the memdisk the segments may overwrite, stays where it is.
    let mut initrd_copy = true;
    let initrd = match initrd {
        [] => None,
        [one]
            if one.in_place
                && one.paddr % PAGE == 0
                && one.paddr.saturating_add(one.data.len() as u64) <= PLACE_LIMIT
                && !loads().any(|s| ranges_overlap(one.paddr, one.data.len() as u64, s.paddr, s.memsz))
                && over_memdisk.is_none_or(|(a, l)| !ranges_overlap(one.paddr, one.data.len() as u64, a, l)) =>
        {
            initrd_copy = false;
            Some((one.paddr, one.data.len() as u64))
        }
        parts => match initrd_len(parts) {
            0 => None,
            len => Some((alloc.alloc_top(len, PAGE, PLACE_LIMIT).ok_or(PlaceError::NoRam { what: "initrd" })?, len)),
        },
    };
    let staging = match over_memdisk {
        None => None,
        Some(_) => {
            Some(alloc.alloc_top(image_len, PAGE, PLACE_LIMIT).ok_or(PlaceError::PvhStaging { len: image_len })?)
        }
    };
    let start_info_paddr =
        alloc.alloc_top(start_info_len, PAGE, PLACE_LIMIT).ok_or(PlaceError::NoRam { what: "start info" })?;
    Ok(PvhPlacement { initrd, initrd_copy, start_info_paddr, start_info_len, staging })
}

/// Human-readable size.
pub fn size_str(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{}.{} MiB", n >> 20, ((n & 0xf_ffff) * 10) >> 20)
    } else if n >= 1 << 10 {
        format!("{} KiB", n >> 10)
    } else {
        n.to_string() + " B"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::elf::{PvhElf, Segment};
    use crate::mem::{E820_RAM, E820Entry};

    fn ram(mib: u64) -> RegionAllocator {
        RegionAllocator::from_e820([E820Entry { addr: 0, size: mib << 20, kind: E820_RAM }], 1 << 32)
    }

    fn elf(segs: &[(u64, u64)]) -> PvhElf {
        PvhElf {
            entry: 0x100_0000,
            elf64: true,
            segments: segs.iter().map(|&(paddr, memsz)| Segment { paddr, offset: 0, filesz: memsz, memsz }).collect(),
        }
    }

    /// A search's error names the volumes it could not look in (volume::search).
    #[test]
    fn search_error_names_unreadable_volumes() {
        let key = SearchKey::File("/boot/vmlinuz".into());
        let why = Vec::from(["(xvda,gpt1): ext4: device timed out".to_string()]);
        let text = BootError::Search { key, volumes: 2, disks: 1, unreadable: why }.to_string();
        let want =
            "no volume matches (2 volume(s) on 1 disk(s)); could not look in (xvda,gpt1): ext4: device timed out";
        assert!(text.ends_with(want), "{text}");
    }

    #[test]
    fn pvh_initrd_in_its_own_pages_is_not_copied() {
        static BYTES: [u8; 0x3000] = [0; 0x3000];
        let e = elf(&[(0x100_0000, 0x200_0000)]);
        let at = |paddr, in_place| [FileData { data: &BYTES[..], paddr, in_place }];
        // Read into pages of its own, clear of the segments: used where it is.
        let mut a = ram(256);
        a.reserve(0x800_0000, 0x3000);
        let p = place_pvh(&mut a, &e, 0x10_0000, &at(0x800_0000, true), 0x1000, None).unwrap();
        assert_eq!((p.initrd, p.initrd_copy), (Some((0x800_0000, 0x3000)), false));
        // Not its own pages, or under a segment: copied to fresh RAM.
        for (paddr, in_place) in [(0x800_0000, false), (0x180_0000, true), (0x800_0800, true)] {
            let mut a = ram(256);
            let p = place_pvh(&mut a, &e, 0x10_0000, &at(paddr, in_place), 0x1000, None).unwrap();
            let (to, len) = p.initrd.unwrap();
            assert!(p.initrd_copy && to != paddr && len == 0x3000, "{paddr:#x} {in_place}");
            assert!(!ranges_overlap(to, len, 0x100_0000, 0x200_0000));
        }
    }

    #[test]
    fn pvh_segments_over_the_memdisk_are_staged() {
        let mut a = ram(256);
        let memdisk = (0x13f000, 0x400_0123);
        a.reserve(0, 0x14_0000);
        a.reserve(memdisk.0, memdisk.1);
        let e = elf(&[(0x100_0000, 0x200_0000), (0x300_0000, 0x180_0000)]);
        let p = place_pvh(&mut a, &e, 0x380_0000, &[], 0x1000, Some(memdisk)).unwrap();
        let staging = p.staging.expect("segments overlap the memdisk: staged");
        // The staging copy must overlap neither the memdisk (still being read) nor a segment.
        assert!(!ranges_overlap(staging, 0x380_0000, memdisk.0, memdisk.1));
        for s in &e.segments {
            assert!(!ranges_overlap(staging, 0x380_0000, s.paddr, s.memsz));
            assert!(!ranges_overlap(p.start_info_paddr, 0x1000, s.paddr, s.memsz));
        }
    }

    #[test]
    fn pvh_segments_clear_of_the_memdisk_are_not_staged() {
        let mut a = ram(256);
        a.reserve(0x13f000, 0x10_0000);
        let p =
            place_pvh(&mut a, &elf(&[(0x100_0000, 0x100_0000)]), 0x100_0000, &[], 0x1000, Some((0x13f000, 0x10_0000)))
                .unwrap();
        assert_eq!(p.staging, None);
    }

    #[test]
    fn pvh_segment_over_the_loader_is_an_error() {
        let mut a = ram(256);
        a.reserve(0x10_0000, 0x4_0000); // the loader
        let e = place_pvh(&mut a, &elf(&[(0x10_0000, 0x1000)]), 0x1000, &[], 0x1000, None).unwrap_err();
        assert!(e.to_string().contains("segment 0x100000+0x1000 is not free RAM"), "{e}");
    }
}
