// SPDX-License-Identifier: MIT OR Apache-2.0
//! One boot, from a policy step to a placed kernel: pure logic over byte slices and the
//! [`RegionAllocator`]. The freestanding bin does the copies this module plans and the
//! final jump; host tests run everything else.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use rxen_memdisk::ustar::{Archive, UstarError};

use crate::cmdline::{DomainCmdline, kernel_cmdline};
use crate::config::policy::{FilePath, KernelStep, Policy, Step, StepKind};
use crate::handoff::boot_params::kernel_placement;
use crate::kernel::bzimage::BzImage;
use crate::kernel::elf::PvhElf;
use crate::kernel::{Kernel, detect};
use crate::mem::{PAGE, RegionAllocator};
use crate::volume::{self, Disk, GuestMemory, Volume};

/// Below this the loader never places anything (BIOS data, firmware tables, start info).
pub const LOW_MEMORY_END: u64 = 0x10_0000;
/// Everything the loader places for the kernel lies below 4 GiB (identity map; 32-bit
/// boot protocol pointers).
pub const PLACE_LIMIT: u64 = 1 << 32;

/// A step that failed, with why. Shown on the console; the next step runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootError(pub String);

impl core::fmt::Display for BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, BootError> {
    Err(BootError(msg.into()))
}

/// A module the domain was given, as bytes in memory.
#[derive(Clone, Copy, Debug)]
pub struct ModuleData<'a> {
    pub paddr: u64,
    pub data: &'a [u8],
}

/// Where files come from during one boot.
pub struct Files<'a> {
    /// The image's memdisk, when it has one.
    pub memdisk: Option<Archive<'a>>,
    /// PVH modules: `(module0)`, `(module1)`, ...
    pub modules: &'a [ModuleData<'a>],
    /// The guest's disks and the volumes found on them.
    pub disks: &'a mut [Disk],
    pub volumes: &'a [Volume],
    /// Files read from disk: (what, bytes, microseconds), for `rxen.debug`.
    pub reads: Vec<(String, u64, u64)>,
    /// A microsecond clock for those timings (the TSC in the loader; this module never
    /// touches hardware itself, so it also runs on the host).
    pub clock: fn() -> u64,
}

/// A file's bytes and, when they already sit in guest memory where they could be used in
/// place (a module, or a file read from disk into its own pages), their physical address.
#[derive(Clone, Copy, Debug)]
pub struct FileData<'a> {
    pub data: &'a [u8],
    pub module_paddr: Option<u64>,
}

/// The root volume: `memdisk`, or a disk volume chosen by a `search` step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Root {
    Memdisk,
    Volume(usize),
}

/// Whether a read failed because the file is not there (an optional initrd) or for
/// another reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    NotFound(String),
    Other(String),
}

impl ReadError {
    fn msg(self) -> String {
        match self {
            ReadError::NotFound(m) | ReadError::Other(m) => m,
        }
    }
}

impl<'a> Files<'a> {
    /// Read `path`; a path without a volume is looked up on `root`. Disk files are read
    /// into fresh pages from `mem`.
    pub fn read(&mut self, path: &FilePath, root: &Root, mem: &mut dyn GuestMemory) -> Result<FileData<'a>, ReadError> {
        let volume = match (&path.volume, root) {
            (Some(v), _) => v.as_str(),
            (None, Root::Memdisk) => "memdisk",
            (None, Root::Volume(i)) => self.volumes.get(*i).map_or("memdisk", |v| v.name.as_str()),
        };
        let other = |m: String| Err(ReadError::Other(m));
        if volume == "memdisk" {
            let Some(md) = &self.memdisk else { return other(format!("{path}: this image has no memdisk")) };
            return match md.file(&path.path) {
                Ok(data) => Ok(FileData { data, module_paddr: None }),
                Err(e @ UstarError::NotFound) => Err(ReadError::NotFound(format!("{path}: {e}"))),
                Err(e) => other(format!("{path}: {e}")),
            };
        }
        if let Some(n) = volume.strip_prefix("module").filter(|n| n.bytes().all(|c| c.is_ascii_digit())) {
            let Ok(i) = n.parse::<usize>() else { return other(format!("{path}: bad module name")) };
            return match self.modules.get(i) {
                Some(m) if path.path.is_empty() || path.path == "/" => {
                    Ok(FileData { data: m.data, module_paddr: Some(m.paddr) })
                }
                Some(_) => other(format!("{path}: a module is a whole file; write ({volume}) without a path")),
                None => {
                    Err(ReadError::NotFound(format!("{path}: the domain was given {} module(s)", self.modules.len())))
                }
            };
        }
        let Some(vol) = self.volumes.iter().find(|v| v.name == volume) else {
            let known: Vec<&str> = self.volumes.iter().map(|v| v.name.as_str()).collect();
            return other(format!(
                "{path}: no volume ({volume}); volumes: {}",
                if known.is_empty() { "none".to_string() } else { known.join(" ") }
            ));
        };
        let vol = vol.clone();
        let t0 = (self.clock)();
        match volume::read_file(self.disks, &vol, &path.path, mem) {
            Ok((paddr, data)) => {
                let us = (self.clock)().saturating_sub(t0);
                self.reads.push((format!("({}){}", vol.name, path.path), data.len() as u64, us));
                Ok(FileData { data, module_paddr: Some(paddr) })
            }
            Err(volume::ReadFileError::NotFound(m)) => Err(ReadError::NotFound(m)),
            Err(volume::ReadFileError::Other(m)) => other(m),
        }
    }
}

/// A kernel ready to be placed.
#[derive(Debug)]
pub enum Prepared<'a> {
    /// bzImage by the x86 boot protocol.
    Linux { kernel: BzImage<'a>, initrd: Vec<FileData<'a>>, cmdline: String },
    /// An ELF with `XEN_ELFNOTE_PHYS32_ENTRY`.
    Pvh { image: &'a [u8], elf: PvhElf, initrd: Vec<FileData<'a>>, cmdline: String },
}

/// Resolve a kernel step's files and its command line.
///
/// When the step names no initrd (or only an optional one that is missing) and the domain
/// was given a module (xl `ramdisk=`, QEMU `-initrd`), module 0 is the initrd.
pub fn prepare_kernel_step<'a>(
    step: &KernelStep,
    files: &mut Files<'a>,
    root: &Root,
    domain: &DomainCmdline,
    mem: &mut dyn GuestMemory,
    log: &mut dyn FnMut(String),
) -> Result<Prepared<'a>, BootError> {
    let kfile = files.read(&step.kernel, root, mem).map_err(|e| BootError(e.msg()))?;
    let mut initrd = Vec::new();
    for p in &step.initrd {
        match files.read(p, root, mem) {
            Ok(f) => initrd.push(f),
            Err(ReadError::NotFound(m)) if step.initrd_optional => log(format!("{m} (optional initrd, skipped)")),
            Err(e) => return err(e.msg()),
        }
    }
    // Module 0 (xl `ramdisk=`) stands in for a missing initrd, unless it is the kernel
    // itself: when the step names none, or names only optional ones that are not there.
    if initrd.is_empty()
        && step.kernel.volume.as_deref().is_none_or(|v| !v.starts_with("module"))
        && let Some(m) = files.modules.first()
    {
        initrd.push(FileData { data: m.data, module_paddr: Some(m.paddr) });
    }
    let cmdline = kernel_cmdline(&step.cmdline, domain);
    match detect(kfile.data) {
        Ok(Kernel::BzImage(kernel)) => Ok(Prepared::Linux { kernel, initrd, cmdline }),
        Ok(Kernel::PvhElf(elf)) => Ok(Prepared::Pvh { image: kfile.data, elf, initrd, cmdline }),
        Err(e) => {
            let shown = match (&step.kernel.volume, root) {
                (None, Root::Volume(i)) => match files.volumes.get(*i) {
                    Some(v) => format!("({}){}", v.name, step.kernel.path),
                    None => step.kernel.to_string(),
                },
                _ => step.kernel.to_string(),
            };
            err(format!("{shown}: {e}"))
        }
    }
}

/// What running a step gave.
#[derive(Debug)]
pub enum StepOutcome<'a> {
    /// A kernel to place and enter.
    Boot(Prepared<'a>),
    /// A search found this volume: the root for the steps after.
    Root(usize),
    /// The guest's boot configuration: the caller picks an entry (the default, or a
    /// person at the menu) and loads it with [`crate::bootcfg::prepare_entry`].
    Config(crate::bootcfg::ConfigChoice),
}

/// Run a policy step (a search, or resolving a kernel step's files).
pub fn run_step<'a>(
    step: &Step,
    files: &mut Files<'a>,
    root: &Root,
    domain: &DomainCmdline,
    mem: &mut dyn GuestMemory,
    log: &mut dyn FnMut(String),
) -> Result<StepOutcome<'a>, BootError> {
    match &step.kind {
        StepKind::Kernel(k) => prepare_kernel_step(k, files, root, domain, mem, log).map(StepOutcome::Boot),
        StepKind::Config(c) => crate::bootcfg::load_config(c, files, root, domain, log).map(StepOutcome::Config),
        StepKind::Search(key) => match volume::search(files.disks, files.volumes, key) {
            Some(i) => Ok(StepOutcome::Root(i)),
            None => err(format!(
                "search {key}: no volume matches ({} volume(s) on {} disk(s))",
                files.volumes.len(),
                files.disks.len()
            )),
        },
    }
}

/// Whether a step reads from the root volume (a path without a volume).
pub fn step_uses_root(step: &Step) -> bool {
    match &step.kind {
        StepKind::Kernel(k) => core::iter::once(&k.kernel).chain(&k.initrd).any(|p| p.volume.is_none()),
        // A config step reads the root volume when there is one, else looks at them all.
        StepKind::Search(_) | StepKind::Config(_) => false,
    }
}

/// The order to try steps in: `rxen.step=NAME` from the domain first, then the policy's.
pub fn step_order(policy: &Policy, domain: &DomainCmdline) -> Result<Vec<usize>, BootError> {
    let mut order = policy.order();
    if let Some(want) = &domain.options.step {
        let Some(i) = policy.steps.iter().position(|s| s.name.as_deref() == Some(want.as_str())) else {
            return err(format!("rxen.step={want}: the policy has no step of that name"));
        };
        order.retain(|&j| j != i);
        order.insert(0, i);
    }
    Ok(order)
}

/// A step's name for messages: its `name`, or `#N (line L)`.
pub fn step_label(policy: &Policy, i: usize) -> String {
    let s = &policy.steps[i];
    match &s.name {
        Some(n) => n.clone(),
        None => format!("#{i} (line {})", s.line),
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
) -> Result<LinuxPlacement, BootError> {
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
                return err(format!("kernel: no free RAM for {need:#x} bytes aligned to {align:#x} above {pref:#x}"));
            }
        }
    } else {
        return err(format!("kernel: not relocatable and {pref:#x}+{need:#x} is not free RAM"));
    };

    // initrd_addr_max is the address of the last byte the initrd may occupy.
    let initrd_max_end = kernel.initrd_addr_max().saturating_add(1).min(PLACE_LIMIT);
    let mut initrd_copy = false;
    let initrd_place = match initrd {
        [] => None,
        [one]
            if one.module_paddr.is_some_and(|p| {
                p % PAGE == 0
                    && p + one.data.len() as u64 <= initrd_max_end
                    && !ranges_overlap(p, one.data.len() as u64, load_addr, need)
            }) =>
        {
            Some((one.module_paddr.unwrap_or_default(), one.data.len() as u64))
        }
        parts => {
            let len = initrd_len(parts);
            initrd_copy = true;
            match alloc.alloc_top(len, PAGE, initrd_max_end) {
                Some(a) => Some((a, len)),
                None => return err(format!("initrd: no free RAM for {len} bytes below {initrd_max_end:#x}")),
            }
        }
    };
    let cmdline_paddr = alloc
        .alloc_top(cmdline_len as u64 + 1, PAGE, PLACE_LIMIT)
        .ok_or_else(|| BootError("cmdline: no free RAM".into()))?;
    let boot_params_paddr =
        alloc.alloc_top(PAGE, PAGE, PLACE_LIMIT).ok_or_else(|| BootError("boot_params: no free RAM".into()))?;
    let setup_data_paddr = if setup_data_len > 0 {
        alloc.alloc_top(setup_data_len, PAGE, PLACE_LIMIT).ok_or_else(|| BootError("setup_data: no free RAM".into()))?
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
) -> Result<PvhPlacement, BootError> {
    let loads = || elf.segments.iter().filter(|s| s.memsz > 0);
    let over_memdisk = memdisk.filter(|&(a, l)| loads().any(|s| ranges_overlap(s.paddr, s.memsz, a, l)));
    if let Some((a, l)) = over_memdisk {
        alloc.release(a, l);
    }
    for s in loads() {
        if !alloc.alloc_at(s.paddr, s.memsz) {
            return err(format!(
                "PVH kernel: segment {:#x}+{:#x} is not free RAM (it overlaps the loader or firmware, or is beyond RAM)",
                s.paddr, s.memsz
            ));
        }
    }
    // Until everything is copied out, the memdisk's bytes are still needed.
    if let Some((a, l)) = over_memdisk {
        alloc.reserve(a, l);
    }
    let initrd = match initrd_len(initrd) {
        0 => None,
        len => {
            Some((alloc.alloc_top(len, PAGE, PLACE_LIMIT).ok_or_else(|| BootError("initrd: no free RAM".into()))?, len))
        }
    };
    let staging = match over_memdisk {
        None => None,
        Some(_) => Some(alloc.alloc_top(image_len, PAGE, PLACE_LIMIT).ok_or_else(|| {
            BootError(format!(
                "PVH kernel: no free RAM to stage {} while its segments overwrite the memdisk",
                size_str(image_len)
            ))
        })?),
    };
    let start_info_paddr = alloc
        .alloc_top(start_info_len, PAGE, PLACE_LIMIT)
        .ok_or_else(|| BootError("start info: no free RAM".into()))?;
    Ok(PvhPlacement { initrd, start_info_paddr, start_info_len, staging })
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
        assert!(e.0.contains("segment 0x100000+0x1000 is not free RAM"), "{}", e.0);
    }
}
