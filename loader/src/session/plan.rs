// SPDX-License-Identifier: MIT OR Apache-2.0
//! The launch plan: what the binary copies where and how it enters the kernel, once the
//! session has placed everything and nothing can fail any more.
//!
//! Sources are guest-physical addresses, not slices: when the plan is carried out, no
//! Rust reference into guest memory (the memdisk, files read from disk, modules) is
//! alive, so a PVH kernel's segments may be copied over the memdisk they came from. Copies
//! run in order with `memmove` semantics.

use alloc::string::String;
use alloc::vec::Vec;

use crate::boot::{self, BootError, FileData, PlaceError, Prepared};
use crate::handoff::boot_params::{BootParamsConfig, build as build_boot_params};
use crate::handoff::multiboot::build_info as build_multiboot_info;
use crate::handoff::pv as pvh;
use crate::handoff::start_info::build_start_info;
use crate::kernel::elf::Segment;
use crate::mem::{E820Entry, PAGE, RegionAllocator};
use crate::session::PvTarget;

/// Where a copy's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Guest memory at this address (identity mapped in the loader).
    Phys(u64),
    /// Bytes built on the loader's heap (boot_params, start info, command line).
    Bytes(Vec<u8>),
    /// Zeros (a segment's bss).
    Zero,
}

/// One step of the plan: `len` bytes to `dst`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    pub dst: u64,
    pub len: u64,
    pub src: Source,
}

/// How the kernel is entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jump {
    /// Linux 64-bit boot protocol: long mode, `%rsi` = boot_params, entry = load + 0x200.
    Linux64 { entry: u64, boot_params: u64 },
    /// Linux 32-bit boot protocol: protected mode, `%esi` = boot_params.
    Linux32 { entry: u32, boot_params: u32 },
    /// PVH: 32-bit protected mode, `%ebx` = hvm_start_info.
    Pvh { entry: u32, start_info: u32 },
    /// Multiboot: 32-bit protected mode, `%eax` = 0x2BADB002, `%ebx` = multiboot_info.
    Multiboot { entry: u32, info: u32 },
    /// Xen PV start of day (xen.h): the page tables at `pt_pfn` (`pt_frames` of them, L4
    /// first) pinned and loaded, `%rsp` = `stack`, `%rsi` = `start_info` (virtual
    /// addresses in the kernel's map); the loader's hypercall page copied to pfn
    /// `hypercall_page` when the kernel names one.
    Pv { entry: u64, stack: u64, start_info: u64, pt_pfn: u64, pt_frames: u64, hypercall_page: Option<u64> },
}

/// What the session decided, for messages and `explain`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootSummary {
    pub step: String,
    /// The configuration entry, for a config step.
    pub entry: Option<String>,
    pub kind: String,
    pub kernel_bytes: u64,
    pub initrds: Vec<u64>,
    pub cmdline: String,
}

/// Everything the binary does after the session: copies in order, then the jump.
/// The disks were already handed back (`quiesced` names them).
#[derive(Clone, Debug)]
pub struct LaunchPlan {
    pub copies: Vec<Copy>,
    pub jump: Jump,
    pub quiesced: Vec<String>,
    pub summary: BootSummary,
}

impl LaunchPlan {
    /// Every destination and source lies below `limit` (the identity map).
    pub fn within(&self, limit: u64) -> bool {
        let end_ok = |a: u64, l: u64| a.checked_add(l).is_some_and(|e| e <= limit);
        self.copies.iter().all(|c| {
            end_ok(c.dst, c.len)
                && match &c.src {
                    Source::Phys(s) => end_ok(*s, c.len),
                    Source::Bytes(b) => b.len() as u64 == c.len,
                    Source::Zero => true,
                }
        })
    }
}

fn parts(copies: &mut Vec<Copy>, mut dst: u64, files: &[FileData]) {
    for f in files {
        copies.push(Copy { dst, len: f.data.len() as u64, src: Source::Phys(f.paddr) });
        dst += f.data.len() as u64;
    }
}

/// Fixed-address segments (a PVH ELF's, a multiboot kernel's) from `image`: staged first
/// at `staging` when they overwrite the memdisk the file is in, then each copied to its
/// address and its bss zeroed.
fn segments(copies: &mut Vec<Copy>, image: &FileData, staging: Option<u64>, segs: &[Segment]) {
    let from = match staging {
        Some(at) => {
            copies.push(Copy { dst: at, len: image.data.len() as u64, src: Source::Phys(image.paddr) });
            at
        }
        None => image.paddr,
    };
    for s in segs {
        copies.push(Copy { dst: s.paddr, len: s.filesz, src: Source::Phys(from + s.offset) });
        copies.push(Copy { dst: s.paddr + s.filesz, len: s.memsz - s.filesz, src: Source::Zero });
    }
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut c = Vec::from(s.as_bytes());
    c.push(0);
    c
}

/// Place `p` in `alloc` and build the plan's copies and jump (and, for Linux, where it
/// went, for the console). `memdisk` is the memdisk's range, which a PVH kernel may overwrite.
pub fn build(
    p: &Prepared,
    alloc: &mut RegionAllocator,
    e820: &[E820Entry],
    rsdp: u64,
    memdisk: Option<(u64, u64)>,
    pv: Option<&PvTarget>,
) -> Result<(Vec<Copy>, Jump, Option<String>), BootError> {
    let mut copies = Vec::new();
    let handoff = |e| BootError::Place(PlaceError::Handoff(e));
    match p {
        Prepared::Pv { image, elf, initrd, cmdline, .. } => {
            let t = pv.ok_or(BootError::Place(PlaceError::PvMismatch))?;
            let input = pvh::PvLayoutInput {
                elf,
                initrd_len: initrd.iter().map(|f| f.data.len() as u64).sum(),
                nr_pages: t.nr_pages,
                cmdline,
                trampoline_pfn: t.trampoline_pfn,
            };
            let l = pvh::layout(&input).map_err(handoff)?;
            let (start, end) = (l.kernel_pfn * PAGE, l.end_pfn * PAGE);
            // The kernel's frames are fixed: they must all be free (the loader, its
            // memdisk, its page tables and the files read are reserved).
            if !alloc.alloc_at(start, end - start) {
                return Err(BootError::Place(PlaceError::PvRegion { start, end }));
            }
            let read_only = |pfn: u64| t.tables.iter().any(|&(a, n)| pfn >= a && pfn < a + n);
            let tables = pvh::page_tables(&input, &l, t.p2m, &read_only).map_err(handoff)?;
            let si = pvh::start_info(
                &l,
                &pvh::PvStartInfo {
                    nr_pages: t.nr_pages,
                    shared_info: t.shared_info,
                    flags: t.flags,
                    store_mfn: t.store_mfn,
                    store_evtchn: t.store_evtchn,
                    console_mfn: t.console_mfn,
                    console_evtchn: t.console_evtchn,
                    cmdline,
                },
            );
            // Everything but the kernel's own frames is zero first (padding included:
            // the stack and what Linux takes for its early allocations).
            copies.push(Copy { dst: start, len: end - start, src: Source::Zero });
            for s in &elf.segments {
                let dst = elf.pfn(s.vaddr) * PAGE + s.vaddr % PAGE;
                copies.push(Copy { dst, len: s.filesz, src: Source::Phys(image.paddr + s.offset) });
            }
            if let Some((pfn, _)) = l.initrd {
                parts(&mut copies, pfn * PAGE, initrd);
            }
            let p2m_bytes = t.nr_pages * 8;
            copies.push(Copy { dst: l.p2m_pfn * PAGE, len: p2m_bytes, src: Source::Phys(t.p2m.as_ptr() as u64) });
            copies.push(Copy { dst: l.start_info_pfn * PAGE, len: si.len() as u64, src: Source::Bytes(si) });
            copies.push(Copy { dst: l.pt_pfn * PAGE, len: tables.len() as u64, src: Source::Bytes(tables) });
            let msg = alloc::format!(
                "PV kernel at {:#x} (frames {:#x}-{:#x}), initrd {}, {} page-table frames, entry {:#x}",
                elf.virt_kstart,
                l.kernel_pfn,
                l.end_pfn,
                match l.initrd {
                    Some((pfn, len)) => alloc::format!("{} at frame {pfn:#x}", boot::size_str(len)),
                    None => String::from("none"),
                },
                l.pt_frames,
                elf.entry
            );
            let jump = Jump::Pv {
                entry: elf.entry,
                stack: l.va(l.stack_pfn + 1),
                start_info: l.va(l.start_info_pfn),
                pt_pfn: l.pt_pfn,
                pt_frames: l.pt_frames,
                hypercall_page: elf.hypercall_page.map(|va| elf.pfn(va)),
            };
            Ok((copies, jump, Some(msg)))
        }
        Prepared::Linux { kernel, kernel_paddr, initrd, cmdline } => {
            let setup_len = if e820.len() > 128 { 16 + (e820.len() as u64 - 128) * 20 } else { 0 };
            let pl = boot::place_linux(alloc, kernel, initrd, cmdline.len(), setup_len)?;
            let msg = alloc::format!(
                "Linux {}, kernel at {:#x}, initrd {}",
                boot::size_str(kernel.protected_mode().len() as u64),
                pl.load_addr,
                match pl.initrd {
                    Some((a, l)) => alloc::format!("{} at {a:#x}", boot::size_str(l)),
                    None => String::from("none"),
                }
            );
            let bp = build_boot_params(&BootParamsConfig {
                kernel,
                load_addr: pl.load_addr,
                e820,
                cmdline_paddr: pl.cmdline_paddr,
                cmdline_len: cmdline.len(),
                initrd: pl.initrd,
                rsdp_paddr: rsdp,
                setup_data_paddr: pl.setup_data_paddr,
            })
            .map_err(|e| BootError::Place(PlaceError::Handoff(e)))?;
            let pm_len = kernel.protected_mode().len() as u64;
            copies.push(Copy { dst: pl.load_addr, len: pm_len, src: Source::Phys(*kernel_paddr) });
            if let (Some((addr, _)), true) = (pl.initrd, pl.initrd_copy) {
                parts(&mut copies, addr, initrd);
            }
            let c = nul_terminated(cmdline);
            copies.push(Copy { dst: pl.cmdline_paddr, len: c.len() as u64, src: Source::Bytes(c) });
            let zp = bp.zero_page.to_vec();
            copies.push(Copy { dst: pl.boot_params_paddr, len: zp.len() as u64, src: Source::Bytes(zp) });
            if !bp.setup_data.is_empty() {
                let sd = bp.setup_data;
                copies.push(Copy { dst: pl.setup_data_paddr, len: sd.len() as u64, src: Source::Bytes(sd) });
            }
            let jump = if kernel.supports_64bit_entry() {
                Jump::Linux64 { entry: pl.load_addr + 0x200, boot_params: pl.boot_params_paddr }
            } else {
                Jump::Linux32 { entry: pl.load_addr as u32, boot_params: pl.boot_params_paddr as u32 }
            };
            Ok((copies, jump, Some(msg)))
        }
        Prepared::Pvh { image, elf, initrd, cmdline, .. } => {
            let modules_len = if initrd.is_empty() { 0 } else { 1 };
            // Size the blob with placeholder addresses, then build it for real.
            let probe = build_start_info(0, cmdline, &[(0, 0)][..modules_len], e820, rsdp);
            let image_len = image.data.len() as u64;
            let pl = boot::place_pvh(alloc, elf, image_len, initrd, probe.len() as u64, memdisk)?;
            let mods: Vec<(u64, u64)> = pl.initrd.into_iter().collect();
            let blob = build_start_info(pl.start_info_paddr, cmdline, &mods, e820, rsdp);
            // Order matters when segments overwrite the memdisk: initrd, staging, segments.
            if let (Some((addr, _)), true) = (pl.initrd, pl.initrd_copy) {
                parts(&mut copies, addr, initrd);
            }
            segments(&mut copies, image, pl.staging, &elf.segments);
            copies.push(Copy { dst: pl.start_info_paddr, len: blob.len() as u64, src: Source::Bytes(blob) });
            let jump = Jump::Pvh { entry: elf.entry, start_info: pl.start_info_paddr as u32 };
            Ok((copies, jump, None))
        }
        Prepared::Multiboot { image, kernel, initrd, cmdline } => {
            if pv.is_some() {
                return Err(BootError::Place(PlaceError::PvMismatch));
            }
            let names: Vec<String> = (0..initrd.len()).map(|i| alloc::format!("module{i}")).collect();
            let probe_mods: Vec<(u64, u64, &str)> = names.iter().map(|n| (0, 0, n.as_str())).collect();
            let info_len = build_multiboot_info(0, cmdline, &probe_mods, e820).len() as u64;
            // The segments go where the kernel says (as a PVH ELF's do); each module on a
            // page of its own (flag 0 asks for that; it costs nothing); the info high.
            let loadable = kernel.as_loadable();
            let pl = boot::place_pvh(alloc, &loadable, image.data.len() as u64, &[], info_len, memdisk)?;
            let mut mods = Vec::new();
            for (f, n) in initrd.iter().zip(&names) {
                let len = f.data.len() as u64;
                let at = alloc
                    .alloc_top(len.max(1), PAGE, boot::PLACE_LIMIT)
                    .ok_or(BootError::Place(PlaceError::NoRam { what: "a multiboot module" }))?;
                copies.push(Copy { dst: at, len, src: Source::Phys(f.paddr) });
                mods.push((at, at + len, n.as_str()));
            }
            let blob = build_multiboot_info(pl.start_info_paddr, cmdline, &mods, e820);
            segments(&mut copies, image, pl.staging, &loadable.segments);
            copies.push(Copy { dst: pl.start_info_paddr, len: blob.len() as u64, src: Source::Bytes(blob) });
            let msg = alloc::format!("{kernel}, {} module(s), info at {:#x}", mods.len(), pl.start_info_paddr);
            let jump = Jump::Multiboot { entry: kernel.entry, info: pl.start_info_paddr as u32 };
            Ok((copies, jump, Some(msg)))
        }
    }
}
