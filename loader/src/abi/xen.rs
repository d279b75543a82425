// SPDX-License-Identifier: MIT OR Apache-2.0
//! Xen's guest ABI as rxen uses it, transcribed from Xen's public headers (MIT), as
//! installed by Debian's libxen-dev under /usr/include/xen (Xen 4.17). Each item names
//! the header it comes from. Shared-memory layouts are given as `#[repr(C)]` structs with
//! their sizes asserted; the drivers access them with volatile reads and writes.

// ---- xen.h: hypercall numbers, domain ids, sched_op and console_io commands ----------

/// `__HYPERVISOR_memory_op`.
pub const HYPERVISOR_MEMORY_OP: u32 = 12;
/// `__HYPERVISOR_xen_version`.
pub const HYPERVISOR_XEN_VERSION: u32 = 17;
/// `__HYPERVISOR_console_io`.
pub const HYPERVISOR_CONSOLE_IO: u32 = 18;
/// `__HYPERVISOR_grant_table_op`.
pub const HYPERVISOR_GRANT_TABLE_OP: u32 = 20;
/// `__HYPERVISOR_sched_op`.
pub const HYPERVISOR_SCHED_OP: u32 = 29;
/// `__HYPERVISOR_event_channel_op`.
pub const HYPERVISOR_EVENT_CHANNEL_OP: u32 = 32;
/// `__HYPERVISOR_hvm_op`.
pub const HYPERVISOR_HVM_OP: u32 = 34;

/// `DOMID_SELF`.
pub const DOMID_SELF: u16 = 0x7ff0;

/// `CONSOLEIO_write`.
pub const CONSOLEIO_WRITE: u32 = 0;

/// `XENVER_version` (xen/version.h): returns major << 16 | minor.
pub const XENVER_VERSION: u32 = 0;

// ---- sched.h ----------------------------------------------------------------------------

/// `SCHEDOP_yield`.
pub const SCHEDOP_YIELD: u32 = 0;
/// `SCHEDOP_shutdown`.
pub const SCHEDOP_SHUTDOWN: u32 = 2;
/// `SCHEDOP_poll`.
pub const SCHEDOP_POLL: u32 = 3;
/// `SHUTDOWN_poweroff`.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// `SHUTDOWN_crash`.
pub const SHUTDOWN_CRASH: u32 = 3;

/// `struct sched_shutdown`.
#[repr(C)]
pub struct SchedShutdown {
    pub reason: u32,
}
const _: () = assert!(core::mem::size_of::<SchedShutdown>() == 4);

/// `struct sched_poll` (x86_64: the guest handle is a plain pointer).
#[repr(C)]
pub struct SchedPoll {
    pub ports: u64,
    pub nr_ports: u32,
    pub _pad: u32,
    /// Absolute Xen system time in ns; 0 = no timeout.
    pub timeout: u64,
}
const _: () = assert!(core::mem::size_of::<SchedPoll>() == 24);

// ---- memory.h -----------------------------------------------------------------------------

/// `XENMEM_add_to_physmap`.
pub const XENMEM_ADD_TO_PHYSMAP: u32 = 7;
/// `XENMEM_remove_from_physmap`.
pub const XENMEM_REMOVE_FROM_PHYSMAP: u32 = 15;
/// `XENMAPSPACE_shared_info`.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;

/// `struct xen_add_to_physmap`.
#[repr(C)]
pub struct XenAddToPhysmap {
    pub domid: u16,
    pub size: u16,
    pub space: u32,
    pub idx: u64,
    pub gpfn: u64,
}
const _: () = assert!(core::mem::size_of::<XenAddToPhysmap>() == 24);

/// `struct xen_remove_from_physmap`.
#[repr(C)]
pub struct XenRemoveFromPhysmap {
    pub domid: u16,
    pub _pad: [u16; 3],
    pub gpfn: u64,
}
const _: () = assert!(core::mem::size_of::<XenRemoveFromPhysmap>() == 16);

// ---- hvm/hvm_op.h, hvm/params.h -------------------------------------------------------------

/// `HVMOP_get_param`.
pub const HVMOP_GET_PARAM: u32 = 1;
/// `HVM_PARAM_STORE_PFN`.
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// `HVM_PARAM_STORE_EVTCHN`.
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// `HVM_PARAM_CONSOLE_PFN`.
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
/// `HVM_PARAM_CONSOLE_EVTCHN`.
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;

/// `struct xen_hvm_param`.
#[repr(C)]
pub struct XenHvmParam {
    pub domid: u16,
    pub _pad: u16,
    pub index: u32,
    pub value: u64,
}
const _: () = assert!(core::mem::size_of::<XenHvmParam>() == 16);

// ---- event_channel.h --------------------------------------------------------------------------

/// `EVTCHNOP_close`.
pub const EVTCHNOP_CLOSE: u32 = 3;
/// `EVTCHNOP_send`.
pub const EVTCHNOP_SEND: u32 = 4;
/// `EVTCHNOP_alloc_unbound`.
pub const EVTCHNOP_ALLOC_UNBOUND: u32 = 6;

/// `struct evtchn_alloc_unbound`.
#[repr(C)]
pub struct EvtchnAllocUnbound {
    pub dom: u16,
    pub remote_dom: u16,
    /// OUT.
    pub port: u32,
}
const _: () = assert!(core::mem::size_of::<EvtchnAllocUnbound>() == 8);

/// `struct evtchn_send` and `struct evtchn_close`: just the port.
#[repr(C)]
pub struct EvtchnPort {
    pub port: u32,
}

// ---- xen.h: shared_info, vcpu_info, vcpu_time_info (x86_64 layout) ---------------------------

/// `XEN_LEGACY_MAX_VCPUS` on x86.
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;

/// `struct vcpu_time_info`.
#[repr(C)]
pub struct VcpuTimeInfo {
    pub version: u32,
    pub _pad0: u32,
    pub tsc_timestamp: u64,
    pub system_time: u64,
    pub tsc_to_system_mul: u32,
    pub tsc_shift: i8,
    pub flags: u8,
    pub _pad1: [u8; 2],
}
const _: () = assert!(core::mem::size_of::<VcpuTimeInfo>() == 32);

/// `struct vcpu_info` (x86: `arch_vcpu_info` is cr2 + pad).
#[repr(C)]
pub struct VcpuInfo {
    pub evtchn_upcall_pending: u8,
    pub evtchn_upcall_mask: u8,
    pub _pad: [u8; 6],
    pub evtchn_pending_sel: u64,
    pub arch_cr2: u64,
    pub arch_pad: u64,
    pub time: VcpuTimeInfo,
}
const _: () = assert!(core::mem::size_of::<VcpuInfo>() == 64);

/// The start of `struct shared_info`: what rxen touches (the event bitmaps).
#[repr(C)]
pub struct SharedInfoHead {
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    pub evtchn_pending: [u64; 64],
    pub evtchn_mask: [u64; 64],
}
const _: () = assert!(core::mem::offset_of!(SharedInfoHead, evtchn_pending) == 2048);
const _: () = assert!(core::mem::offset_of!(SharedInfoHead, evtchn_mask) == 2560);

// ---- grant_table.h ----------------------------------------------------------------------------

/// `struct grant_entry_v1`: 8 bytes, 512 per 4 KiB frame.
#[repr(C)]
pub struct GrantEntryV1 {
    pub flags: u16,
    pub domid: u16,
    pub frame: u32,
}
const _: () = assert!(core::mem::size_of::<GrantEntryV1>() == 8);
/// `GTF_permit_access`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_readonly`.
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading`.
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing`.
pub const GTF_WRITING: u16 = 1 << 4;
/// `GNTTAB_NR_RESERVED_ENTRIES`: refs 0..8 belong to the toolstack (console, xenstore).
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;

// ---- io/xs_wire.h -------------------------------------------------------------------------------

/// `XS_DIRECTORY`.
pub const XS_DIRECTORY: u32 = 1;
/// `XS_READ`.
pub const XS_READ: u32 = 2;
/// `XS_TRANSACTION_START`.
pub const XS_TRANSACTION_START: u32 = 6;
/// `XS_TRANSACTION_END`.
pub const XS_TRANSACTION_END: u32 = 7;
/// `XS_WRITE`.
pub const XS_WRITE: u32 = 11;
/// `XS_RM`.
pub const XS_RM: u32 = 13;
/// `XS_WATCH_EVENT`.
pub const XS_WATCH_EVENT: u32 = 15;
/// `XS_ERROR`.
pub const XS_ERROR: u32 = 16;

/// `struct xsd_sockmsg`: the header before every xenstore payload.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XsdSockmsg {
    pub ty: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub len: u32,
}
const _: () = assert!(core::mem::size_of::<XsdSockmsg>() == 16);

/// `XENSTORE_RING_SIZE`.
pub const XENSTORE_RING_SIZE: u32 = 1024;
/// `XENSTORE_PAYLOAD_MAX`.
pub const XENSTORE_PAYLOAD_MAX: u32 = 4096;

/// `struct xenstore_domain_interface`.
#[repr(C)]
pub struct XenstoreDomainInterface {
    pub req: [u8; 1024],
    pub rsp: [u8; 1024],
    pub req_cons: u32,
    pub req_prod: u32,
    pub rsp_cons: u32,
    pub rsp_prod: u32,
    pub server_features: u32,
    pub connection: u32,
    pub error: u32,
}
const _: () = assert!(core::mem::size_of::<XenstoreDomainInterface>() == 2076);

// ---- io/console.h --------------------------------------------------------------------------------

/// `struct xencons_interface`.
#[repr(C)]
pub struct XenconsInterface {
    pub input: [u8; 1024],
    pub output: [u8; 2048],
    pub in_cons: u32,
    pub in_prod: u32,
    pub out_cons: u32,
    pub out_prod: u32,
}
const _: () = assert!(core::mem::size_of::<XenconsInterface>() == 3088);

// ---- io/xenbus.h ------------------------------------------------------------------------------------

/// `enum xenbus_state`.
pub mod xenbus_state {
    pub const UNKNOWN: u32 = 0;
    pub const INITIALISING: u32 = 1;
    pub const INIT_WAIT: u32 = 2;
    pub const INITIALISED: u32 = 3;
    pub const CONNECTED: u32 = 4;
    pub const CLOSING: u32 = 5;
    pub const CLOSED: u32 = 6;
}

// ---- io/ring.h, io/blkif.h (x86_64) ---------------------------------------------------------------

/// Bytes before the first ring entry in a shared ring (`req_prod, req_event, rsp_prod,
/// rsp_event`, the private pad and `__pad[44]`).
pub const SRING_HEADER: usize = 64;

/// `BLKIF_OP_READ`.
pub const BLKIF_OP_READ: u8 = 0;
/// `BLKIF_OP_WRITE`.
pub const BLKIF_OP_WRITE: u8 = 1;
/// `BLKIF_OP_INDIRECT`.
pub const BLKIF_OP_INDIRECT: u8 = 6;
/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`.
pub const BLKIF_MAX_SEGMENTS_PER_REQUEST: usize = 11;
/// `BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`.
pub const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: usize = 8;
/// Segment descriptors per indirect page (4096 / 8).
pub const BLKIF_SEGS_PER_INDIRECT_FRAME: usize = 512;
/// `BLKIF_RSP_OKAY`.
pub const BLKIF_RSP_OKAY: i16 = 0;
/// `VDISK_CDROM`, `VDISK_REMOVABLE`, `VDISK_READONLY` (the backend's `info` key).
pub const VDISK_CDROM: u32 = 1;
pub const VDISK_REMOVABLE: u32 = 2;
pub const VDISK_READONLY: u32 = 4;

/// `struct blkif_request_segment`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct BlkifRequestSegment {
    pub gref: u32,
    pub first_sect: u8,
    pub last_sect: u8,
    pub _pad: u16,
}
const _: () = assert!(core::mem::size_of::<BlkifRequestSegment>() == 8);

/// `struct blkif_request`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct BlkifRequest {
    pub operation: u8,
    pub nr_segments: u8,
    pub handle: u16,
    pub _pad: u32,
    pub id: u64,
    /// 512-byte units, whatever the disk's sector size.
    pub sector_number: u64,
    pub seg: [BlkifRequestSegment; BLKIF_MAX_SEGMENTS_PER_REQUEST],
}
const _: () = assert!(core::mem::size_of::<BlkifRequest>() == 112);

/// `struct blkif_request_indirect` (x86_64: no trailing pad; the ring slot is 112 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct BlkifRequestIndirect {
    pub operation: u8,
    pub indirect_op: u8,
    pub nr_segments: u16,
    pub _pad: u32,
    pub id: u64,
    pub sector_number: u64,
    pub handle: u16,
    pub _pad2: u16,
    pub indirect_grefs: [u32; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
    pub _pad3: u32,
}
const _: () = assert!(core::mem::size_of::<BlkifRequestIndirect>() == 64);
const _: () = assert!(core::mem::offset_of!(BlkifRequestIndirect, indirect_grefs) == 28);

/// `struct blkif_response`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct BlkifResponse {
    pub id: u64,
    pub operation: u8,
    pub _pad: u8,
    pub status: i16,
    pub _pad2: u32,
}
const _: () = assert!(core::mem::size_of::<BlkifResponse>() == 16);

/// Bytes per ring slot: the union of request and response.
pub const BLKIF_SLOT: usize = 112;

/// Slots in a shared ring of `bytes`: the largest power of two that fits (`__RING_SIZE`).
pub const fn ring_slots(bytes: usize, slot: usize) -> usize {
    let n = (bytes - SRING_HEADER) / slot;
    if n == 0 { 0 } else { 1 << (usize::BITS - 1 - n.leading_zeros()) }
}
const _: () = assert!(ring_slots(4096, BLKIF_SLOT) == 32);
const _: () = assert!(ring_slots(4 * 4096, BLKIF_SLOT) == 128);

/// Linux's name for a Xen virtual block device number (`docs/man/xen-vbd-interface.7`):
/// `202 << 8 | disk << 4 | partition` (xvda..xvdp) or `1 << 28 | disk << 8 | partition`.
/// The partition bits of a whole-disk device are 0; others are not disks rxen reads.
pub fn vbd_name(devid: u32) -> Option<alloc::string::String> {
    let disk = if devid >> 8 == 202 {
        (devid >> 4) & 0xf
    } else if devid & (1 << 28) != 0 {
        (devid >> 8) & 0xfffff
    } else {
        return None;
    };
    let mut letters = alloc::vec::Vec::new();
    let mut n = disk as usize + 1;
    while n > 0 {
        n -= 1;
        letters.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    letters.reverse();
    Some(alloc::format!("xvd{}", core::str::from_utf8(&letters).unwrap_or("?")))
}

#[cfg(test)]
mod tests {
    use super::vbd_name;

    #[test]
    fn vbd_names_follow_linux() {
        assert_eq!(vbd_name(51712).as_deref(), Some("xvda")); // 202 << 8
        assert_eq!(vbd_name(51728).as_deref(), Some("xvdb"));
        assert_eq!(vbd_name((1 << 28) | (26 << 8)).as_deref(), Some("xvdaa"));
        assert_eq!(vbd_name(768), None); // hda: an emulated IDE number
    }
}

// ---- PV guests: xen.h (MMU hypercalls), arch-x86/xen.h (trap table), grant_table.h -------------

/// `__HYPERVISOR_set_trap_table` (xen.h).
pub const HYPERVISOR_SET_TRAP_TABLE: u32 = 0;
/// `__HYPERVISOR_mmu_update` (xen.h).
pub const HYPERVISOR_MMU_UPDATE: u32 = 1;
/// `__HYPERVISOR_fpu_taskswitch` (xen.h).
pub const HYPERVISOR_FPU_TASKSWITCH: u32 = 5;
/// `__HYPERVISOR_update_va_mapping` (xen.h).
pub const HYPERVISOR_UPDATE_VA_MAPPING: u32 = 14;
/// `__HYPERVISOR_mmuext_op` (xen.h).
pub const HYPERVISOR_MMUEXT_OP: u32 = 26;

/// `MMU_NORMAL_PT_UPDATE` (xen.h): `ptr` is the machine address of a page-table entry.
pub const MMU_NORMAL_PT_UPDATE: u64 = 0;
/// `MMU_MACHPHYS_UPDATE` (xen.h): `ptr` is the machine address of a frame, `val` its new pfn.
pub const MMU_MACHPHYS_UPDATE: u64 = 1;

/// `struct mmu_update` (xen.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MmuUpdate {
    pub ptr: u64,
    pub val: u64,
}
const _: () = assert!(core::mem::size_of::<MmuUpdate>() == 16);

/// `MMUEXT_PIN_L4_TABLE` (xen.h).
pub const MMUEXT_PIN_L4_TABLE: u32 = 3;
/// `MMUEXT_UNPIN_TABLE` (xen.h).
pub const MMUEXT_UNPIN_TABLE: u32 = 4;
/// `MMUEXT_NEW_BASEPTR` (xen.h).
pub const MMUEXT_NEW_BASEPTR: u32 = 5;

/// `struct mmuext_op` (xen.h, x86_64: both unions are 8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MmuextOp {
    pub cmd: u32,
    pub _pad: u32,
    /// `arg1.mfn` / `arg1.linear_addr`.
    pub arg1: u64,
    /// `arg2.nr_ents` / `arg2.vcpumask` / `arg2.src_mfn`.
    pub arg2: u64,
}
const _: () = assert!(core::mem::size_of::<MmuextOp>() == 24);

/// `UVMF_INVLPG` (xen.h): flush the one TLB entry (local).
pub const UVMF_INVLPG: u64 = 2;

/// `struct trap_info` (arch-x86/xen.h); the table ends with an entry whose address is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapInfo {
    pub vector: u8,
    /// Bits 0-1: which privilege may raise it by `int` (0: none); bit 2: mask events.
    pub flags: u8,
    pub cs: u16,
    pub _pad: u32,
    pub address: u64,
}
const _: () = assert!(core::mem::size_of::<TrapInfo>() == 16);

/// `FLAT_KERNEL_CS` (arch-x86/xen-x86_64.h): the 64-bit PV kernel's code selector.
pub const FLAT_KERNEL_CS: u16 = 0xe033;
/// `MACH2PHYS_VIRT_START` (arch-x86/xen-x86_64.h): the read-only machine-to-phys table.
pub const MACH2PHYS_VIRT_START: u64 = 0xffff_8000_0000_0000;
/// `MACH2PHYS_VIRT_END` (arch-x86/xen-x86_64.h).
pub const MACH2PHYS_VIRT_END: u64 = 0xffff_8040_0000_0000;

/// `GNTTABOP_setup_table` (grant_table.h).
pub const GNTTABOP_SETUP_TABLE: u32 = 2;

/// `struct gnttab_setup_table` (grant_table.h; the handle is a plain pointer on x86_64).
#[repr(C)]
pub struct GnttabSetupTable {
    pub dom: u16,
    pub _pad0: u16,
    pub nr_frames: u32,
    pub status: i16,
    pub _pad1: [u8; 6],
    pub frame_list: u64,
}
const _: () = assert!(core::mem::size_of::<GnttabSetupTable>() == 24);
const _: () = assert!(core::mem::offset_of!(GnttabSetupTable, frame_list) == 16);
