// SPDX-License-Identifier: MIT OR Apache-2.0
//! What rxen hands a kernel: a Linux `boot_params` zero page ([`boot_params`]) or a fresh
//! PVH `hvm_start_info` ([`start_info`]). Pure byte builders; the caller places the
//! results and jumps (see docs/linux-handoff.md).

pub mod boot_params;
pub mod multiboot;
pub mod pv;
pub mod start_info;

use core::fmt;

/// Why a `boot_params` could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoffError {
    /// The load address does not fit `code32_start` (32 bits).
    LoadAddrAbove4G(u64),
    /// The command line is longer than the kernel's `cmdline_size`.
    CmdlineTooLong { len: usize, max: u32 },
    /// The command line lies (partly) above 4 GiB and the kernel lacks
    /// `XLF_CAN_BE_LOADED_ABOVE_4G`.
    CmdlineAbove4G(u64),
    /// `paddr + size` of the initrd overflows.
    InitrdOverflow { paddr: u64, size: u64 },
    /// The initrd's last byte is above `initrd_addr_max` and the kernel lacks
    /// `XLF_CAN_BE_LOADED_ABOVE_4G`.
    InitrdAboveMax { end: u64, max: u64 },
    /// More than 128 e820 entries, but the kernel predates `setup_data` (protocol 2.09).
    SetupDataUnsupported { entries: usize },
    /// More than 128 e820 entries, but no address for the `setup_data` blob was given.
    SetupDataNoAddress,
    /// More e820 entries than a `setup_data` node can describe.
    E820TooLarge { entries: usize },
    /// PV: the start-of-day layout needs more of the domain than it has.
    PvTooSmall { need_pages: u64, have_pages: u64 },
    /// PV: the command line is longer than start_info's 1023 bytes.
    PvCmdlineTooLong { len: usize },
    /// PV: the trampoline page's address falls inside the kernel's mapping.
    PvTrampolineClash { va: u64 },
}

impl fmt::Display for HandoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HandoffError::*;
        match *self {
            LoadAddrAbove4G(a) => write!(f, "boot_params: load address {a:#x} does not fit code32_start (above 4 GiB)"),
            CmdlineTooLong { len, max } => {
                write!(f, "boot_params: command line is {len} bytes, the kernel takes at most {max} (cmdline_size)")
            }
            CmdlineAbove4G(a) => write!(
                f,
                "boot_params: command line at {a:#x} is above 4 GiB and the kernel lacks XLF_CAN_BE_LOADED_ABOVE_4G"
            ),
            InitrdOverflow { paddr, size } => write!(f, "boot_params: initrd {paddr:#x}+{size:#x} overflows"),
            InitrdAboveMax { end, max } => write!(
                f,
                "boot_params: initrd ends at {end:#x}, above the kernel's initrd_addr_max {max:#x} \
                 (and it lacks XLF_CAN_BE_LOADED_ABOVE_4G)"
            ),
            SetupDataUnsupported { entries } => write!(
                f,
                "boot_params: {entries} e820 entries need setup_data, which this kernel's boot protocol (< 2.09) lacks"
            ),
            SetupDataNoAddress => {
                f.write_str("boot_params: more than 128 e820 entries but no address for the setup_data blob")
            }
            E820TooLarge { entries } => write!(f, "boot_params: {entries} e820 entries are too many"),
            PvTooSmall { need_pages, have_pages } => write!(
                f,
                "PV layout: the kernel's start of day needs {} MiB of the domain's {} MiB (give it more memory)",
                need_pages >> 8,
                have_pages >> 8
            ),
            PvCmdlineTooLong { len } => {
                write!(f, "PV start_info: the command line is {len} bytes, start_info holds at most 1023")
            }
            PvTrampolineClash { va } => {
                write!(f, "PV layout: the loader's trampoline at {va:#x} falls inside the kernel's mapping")
            }
        }
    }
}
