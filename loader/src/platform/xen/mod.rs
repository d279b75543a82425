// SPDX-License-Identifier: MIT OR Apache-2.0
//! Xen, from inside a PVH domain: hypercalls, HVM parameters, shared_info, event channels,
//! time, shutdown, and the drivers built on them ([`console`], [`xenstore`], [`gnttab`],
//! [`blkfront`]).
//!
//! How a PVH guest reaches Xen (XEN-PROTOCOLS.md 2.2): CPUID finds Xen's leaves, leaf
//! base+2 names the MSR that makes Xen write the hypercall page, and everything else is a
//! call into that page. All hypercall buffers are plain loader memory: the loader's page
//! tables map guest-physical 0..4 GiB one to one, so a pointer is a guest address.
//!
//! Pages the loader maps over guest-physical addresses (shared_info, the grant table)
//! go into a hole of the memory map, not RAM, and [`Xen::reserved`] names them so the
//! kernel is told they are taken.

pub mod blkfront;
pub mod console;
pub mod gnttab;
pub mod pv;
pub mod xenstore;

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};

use crate::abi::xen::*;
pub use crate::abi::xen::{SHUTDOWN_CRASH, SHUTDOWN_POWEROFF};
use crate::mem::{E820Entry, PAGE};
use crate::platform::time::rdtsc;
use crate::platform::{cpuid, xen_cpuid_base};

/// The page Xen fills with hypercall stubs (32 bytes per hypercall).
#[repr(C, align(4096))]
struct HypercallPage([u8; 4096]);

/// Executed, never written by Rust: on PVH Xen writes it when we name its address in the
/// hypercall MSR; on PV the domain builder fills it before we run (pv-boot's
/// XEN_ELFNOTE_HYPERCALL_PAGE names this symbol, arch/x86_64/pv.S). In .bss, inside the
/// loader image, mapped and executable (neither loader's page tables set NX).
#[unsafe(export_name = "rxen_hypercall_page")]
static mut HYPERCALL_PAGE: HypercallPage = HypercallPage([0; 4096]);
pub(crate) static HYPERCALLS_READY: AtomicBool = AtomicBool::new(false);

/// The hypercall page's address (pv-boot copies a stub from it, and the page itself into
/// a PV kernel that asks for one).
pub fn hypercall_page() -> u64 {
    (&raw const HYPERCALL_PAGE) as u64
}

/// Where shared_info is mapped (0 = not yet).
static SHARED_INFO: AtomicU64 = AtomicU64::new(0);

/// Why Xen could not be brought up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XenError {
    NotXen,
    NoHypercallPage,
    /// A hypercall failed: which, and Xen's (negative) errno.
    Hypercall(&'static str, i64),
    NoHole,
    NoConsole,
}

impl core::fmt::Display for XenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            XenError::NotXen => f.write_str("not running on Xen"),
            XenError::NoHypercallPage => f.write_str("Xen offers no hypercall page (CPUID leaf base+2)"),
            XenError::Hypercall(what, rc) => write!(f, "{what} failed: {} ({rc})", errno_name(*rc)),
            XenError::NoHole => f.write_str("no hole below 4 GiB in the memory map for shared_info and grant frames"),
            XenError::NoConsole => f.write_str("the domain has no PV console (HVM_PARAM_CONSOLE_PFN)"),
        }
    }
}

/// Xen's errno values (xen/include/public/errno.h) as names, for messages. Allocates
/// nothing (used before the heap exists).
pub fn errno_name(rc: i64) -> &'static str {
    match -rc {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        5 => "EIO",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        19 => "ENODEV",
        22 => "EINVAL",
        28 => "ENOSPC",
        38 => "ENOSYS",
        _ => "error",
    }
}

/// Install the hypercall page. Idempotent. Returns the CPUID base.
pub fn init_hypercalls() -> Result<u32, XenError> {
    let base = xen_cpuid_base().ok_or(XenError::NotXen)?;
    if HYPERCALLS_READY.load(Ordering::Relaxed) {
        return Ok(base);
    }
    let (pages, msr, ..) = cpuid(base + 2);
    if pages == 0 {
        return Err(XenError::NoHypercallPage);
    }
    let page = (&raw const HYPERCALL_PAGE) as u64;
    // SAFETY: the MSR Xen named in CPUID leaf base+2 takes the guest-physical address of a
    // page to fill with hypercall stubs (arch-x86/cpuid.h); HYPERCALL_PAGE is such a page,
    // page aligned, identity mapped, and used for nothing else.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") msr, in("eax") page as u32, in("edx") (page >> 32) as u32,
            options(nostack, preserves_flags));
    }
    HYPERCALLS_READY.store(true, Ordering::Release);
    Ok(base)
}

/// Whether hypercalls can be made.
pub fn hypercalls_ready() -> bool {
    HYPERCALLS_READY.load(Ordering::Acquire)
}

/// A hypercall with up to five arguments (64-bit ABI: rdi, rsi, rdx, r10, r8; result in
/// rax). Arguments that are pointers must point at live, identity-mapped memory of the
/// layout the hypercall expects.
///
/// # Safety
/// `nr` and the arguments must form a valid hypercall whose memory effects (on the
/// buffers named by pointer arguments) the caller accounts for. [`init_hypercalls`] must
/// have succeeded.
unsafe fn hypercall(nr: u32, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    debug_assert!(hypercalls_ready());
    let entry = (&raw const HYPERCALL_PAGE) as u64 + u64::from(nr) * 32;
    let rax: i64;
    // SAFETY: the caller guarantees the hypercall is valid; the stub at `entry` was
    // written by Xen (init_hypercalls) and returns with `ret`. Xen may clobber the
    // argument registers (debug builds poison them), so all are outputs too. No
    // `nostack`: the call pushes a return address, and without it the compiler keeps
    // the red zone free and the stack aligned.
    unsafe {
        core::arch::asm!("call {entry}",
            entry = in(reg) entry,
            inlateout("rdi") a1 => _, inlateout("rsi") a2 => _, inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _, inlateout("r8") a5 => _, lateout("rax") rax,
            lateout("rcx") _, lateout("r11") _);
    }
    rax
}

/// Hypercall `nr` with sub-command `cmd` and its argument structure `arg` (the common
/// two-argument form: `HYPERVISOR_xxx_op(cmd, &arg)`). Returns Xen's result (0 or a
/// negative errno).
///
/// # Safety
/// `T` must be the `#[repr(C)]` structure (from `abi::xen`) that `nr`/`cmd` takes, with
/// every pointer and handle inside it naming live, identity-mapped memory of the size and
/// layout Xen will read or write; and the hypercall's effects beyond `arg` (pages mapped
/// over guest-physical addresses, ports closed, the domain shut down) must be ones the
/// caller accounts for. [`init_hypercalls`] must have succeeded.
unsafe fn hypercall_ptr<T>(nr: u32, cmd: u32, arg: &mut T) -> i64 {
    // SAFETY: the caller guarantees the (nr, cmd, T) triple and its effects; `arg` is an
    // exclusive borrow, so Xen writing it back is no aliasing violation.
    unsafe { hypercall(nr, u64::from(cmd), arg as *mut T as u64, 0, 0, 0) }
}

/// Xen's version (major, minor).
pub fn version() -> (u16, u16) {
    // SAFETY: XENVER_version takes no buffer.
    let v = unsafe { hypercall(HYPERVISOR_XEN_VERSION, u64::from(XENVER_VERSION), 0, 0, 0, 0) };
    ((v >> 16) as u16, v as u16)
}

/// Write to Xen's own console (`xl dmesg`; shown for domUs only with guest_loglvl).
/// Release builds of Xen refuse domUs (EPERM): the result says whether it worked.
pub fn console_io_write(s: &[u8]) -> bool {
    if !hypercalls_ready() {
        return false;
    }
    // SAFETY: CONSOLEIO_write reads `count` bytes from the buffer, which is live.
    let rc = unsafe {
        hypercall(HYPERVISOR_CONSOLE_IO, u64::from(CONSOLEIO_WRITE), s.len() as u64, s.as_ptr() as u64, 0, 0)
    };
    rc >= 0
}

/// An HVM parameter of this domain.
pub fn hvm_param(index: u32) -> Result<u64, XenError> {
    let mut p = XenHvmParam { domid: DOMID_SELF, _pad: 0, index, value: 0 };
    // SAFETY: HVMOP_get_param takes a xen_hvm_param (hvm/hvm_op.h), holds no pointers and
    // only writes `value`; reading a parameter of our own domain has no other effect.
    match unsafe { hypercall_ptr(HYPERVISOR_HVM_OP, HVMOP_GET_PARAM, &mut p) } {
        0 => Ok(p.value),
        rc => Err(XenError::Hypercall("HVMOP_get_param", rc)),
    }
}

/// Shut the domain down (poweroff or crash); Xen then does what `on_poweroff`/`on_crash`
/// say. Returns only if Xen refused.
pub fn shutdown(reason: u32) {
    if hypercalls_ready() {
        let mut s = SchedShutdown { reason };
        // SAFETY: SCHEDOP_shutdown takes a sched_shutdown (sched.h) with no pointers; ending
        // the domain is what the caller asks for.
        unsafe { hypercall_ptr(HYPERVISOR_SCHED_OP, SCHEDOP_SHUTDOWN, &mut s) };
    }
}

/// Give the CPU to someone else (the backend in dom0) for a while.
pub fn yield_cpu() {
    // SAFETY: SCHEDOP_yield takes no buffer.
    unsafe { hypercall(HYPERVISOR_SCHED_OP, u64::from(SCHEDOP_YIELD), 0, 0, 0, 0) };
}

// ---- event channels ---------------------------------------------------------------------------

/// A new unbound port that `remote` may bind to.
pub fn evtchn_alloc_unbound(remote: u16) -> Result<u32, XenError> {
    let mut a = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: remote, port: 0 };
    // SAFETY: EVTCHNOP_alloc_unbound takes an evtchn_alloc_unbound (event_channel.h), no
    // pointers; it only allocates a new port and writes its number back.
    match unsafe { hypercall_ptr(HYPERVISOR_EVENT_CHANNEL_OP, EVTCHNOP_ALLOC_UNBOUND, &mut a) } {
        0 => Ok(a.port),
        rc => Err(XenError::Hypercall("EVTCHNOP_alloc_unbound", rc)),
    }
}

/// Notify the other end of `port`.
pub fn evtchn_send(port: u32) {
    let mut p = EvtchnPort { port };
    // SAFETY: EVTCHNOP_send takes an evtchn_send (one port number, no pointers); it only
    // raises an event at the other end.
    unsafe { hypercall_ptr(HYPERVISOR_EVENT_CHANNEL_OP, EVTCHNOP_SEND, &mut p) };
}

/// Close `port`.
pub fn evtchn_close(port: u32) {
    let mut p = EvtchnPort { port };
    // SAFETY: EVTCHNOP_close takes an evtchn_close (one port number, no pointers); closing
    // a port touches no guest memory (a stale port number only fails).
    unsafe { hypercall_ptr(HYPERVISOR_EVENT_CHANNEL_OP, EVTCHNOP_CLOSE, &mut p) };
}

fn shared_info() -> Option<*mut SharedInfoHead> {
    match SHARED_INFO.load(Ordering::Acquire) {
        0 => None,
        a => Some(a as usize as *mut SharedInfoHead),
    }
}

/// Clear `port`'s pending bit (before looking for work, so no event is lost).
pub fn evtchn_clear(port: u32) {
    let Some(si) = shared_info() else { return };
    if port >= 4096 {
        return;
    }
    // SAFETY: shared_info is mapped (SHARED_INFO != 0) at an identity-mapped address;
    // the word is shared with Xen, which sets bits atomically: clear ours atomically too.
    unsafe {
        let word = (&raw mut (*si).evtchn_pending[(port / 64) as usize]).cast::<AtomicU64>();
        (*word).fetch_and(!(1u64 << (port % 64)), Ordering::SeqCst);
    }
}

/// PV: the last page fault's address, which Xen keeps in vcpu 0's `arch.cr2` (a PV
/// guest's CR2 is virtual). None on PVH or before shared_info is mapped.
pub fn pv_cr2() -> Option<u64> {
    if !pv::is_pv() {
        return None;
    }
    let si = shared_info()?;
    // SAFETY: shared_info is mapped; Xen writes vcpu_info[0].arch_cr2 before delivering a
    // #PF, and we read it with a volatile read.
    Some(unsafe { core::ptr::read_volatile(&raw const (*si).vcpu_info[0].arch_cr2) })
}

/// Xen's system time in ns (from vcpu 0's time info), if shared_info is mapped.
pub fn system_time_ns() -> Option<u64> {
    let si = shared_info()?;
    // SAFETY: shared_info is mapped; Xen updates vcpu_info[0].time under a version
    // counter (odd = update in progress), read like a seqlock with volatile reads.
    unsafe {
        let t = &raw const (*si).vcpu_info[0].time;
        for _ in 0..1000 {
            let v0 = core::ptr::read_volatile(&raw const (*t).version);
            fence(Ordering::Acquire);
            let stamp = core::ptr::read_volatile(&raw const (*t).tsc_timestamp);
            let sys = core::ptr::read_volatile(&raw const (*t).system_time);
            let mul = core::ptr::read_volatile(&raw const (*t).tsc_to_system_mul);
            let shift = core::ptr::read_volatile(&raw const (*t).tsc_shift);
            fence(Ordering::Acquire);
            let v1 = core::ptr::read_volatile(&raw const (*t).version);
            if v0 & 1 == 0 && v0 == v1 {
                let mut delta = rdtsc().wrapping_sub(stamp);
                if shift >= 0 {
                    delta <<= shift;
                } else {
                    delta >>= -shift;
                }
                return Some(sys.wrapping_add(((u128::from(delta) * u128::from(mul)) >> 32) as u64));
            }
        }
        None
    }
}

/// Block until `port` is pending or about `max_us` passed (SCHEDOP_poll with a timeout);
/// without shared_info, just yield. Callers re-check their condition either way.
pub fn wait_event(port: u32, max_us: u64) {
    let Some(now) = system_time_ns() else {
        yield_cpu();
        return;
    };
    let ports = [port];
    let mut p = SchedPoll {
        ports: ports.as_ptr() as u64,
        nr_ports: 1,
        _pad: 0,
        timeout: now.saturating_add(max_us.saturating_mul(1000)).max(1),
    };
    // SAFETY: SCHEDOP_poll takes a sched_poll (sched.h) whose handle names `nr_ports`
    // (1) port numbers: `ports`, which lives until after the call; Xen only reads it.
    if unsafe { hypercall_ptr(HYPERVISOR_SCHED_OP, SCHEDOP_POLL, &mut p) } != 0 {
        yield_cpu();
    }
}

/// Sleep about `us` microseconds, giving the CPU back to Xen (dom0's backends need it more
/// than a spinning loader): SCHEDOP_poll on no port with a timeout; a yield when shared_info
/// (and so Xen's clock) is not there yet.
pub fn sleep_us(us: u64) {
    let Some(now) = system_time_ns() else {
        yield_cpu();
        return;
    };
    let mut p =
        SchedPoll { ports: 0, nr_ports: 0, _pad: 0, timeout: now.saturating_add(us.saturating_mul(1000)).max(1) };
    // SAFETY: SCHEDOP_poll with nr_ports = 0: Xen reads no port list (the null handle is
    // never dereferenced) and only sleeps until the timeout.
    if unsafe { hypercall_ptr(HYPERVISOR_SCHED_OP, SCHEDOP_POLL, &mut p) } != 0 {
        yield_cpu();
    }
}

// ---- the platform: shared_info and grant frames in a hole of the memory map ------------------

/// Xen brought up: the pages it mapped, and where.
#[derive(Clone, Copy, Debug)]
pub struct Xen {
    pub cpuid_base: u32,
    pub version: (u16, u16),
    /// Guest-physical address of shared_info, followed by the grant frames.
    pub hole: u64,
    pub grant_frames: u32,
}

/// Grant frames mapped: 8 x 512 = 4096 grants, enough for 4 disks with 1 MiB requests
/// in flight.
pub const GRANT_FRAMES: u32 = 8;

impl Xen {
    /// Map shared_info and [`GRANT_FRAMES`] grant frames into a hole of `memmap`.
    pub fn init(memmap: &[E820Entry]) -> Result<Xen, XenError> {
        let cpuid_base = init_hypercalls()?;
        let version = version();
        let pages = 1 + u64::from(GRANT_FRAMES);
        let hole = find_hole(memmap, pages * PAGE).ok_or(XenError::NoHole)?;
        // SAFETY: `hole` is page aligned and lies in a gap of the memory map (find_hole):
        // no RAM, nothing of the loader's is there, so mapping Xen's page over it hides
        // nothing in use.
        unsafe { add_to_physmap(XENMAPSPACE_SHARED_INFO, 0, hole / PAGE) }
            .map_err(|rc| XenError::Hypercall("mapping shared_info", rc))?;
        SHARED_INFO.store(hole, Ordering::Release);
        for i in 0..GRANT_FRAMES {
            // SAFETY: as above: the pages after shared_info are in the same hole (find_hole
            // found room for all 1 + GRANT_FRAMES of them).
            unsafe { add_to_physmap(XENMAPSPACE_GRANT_TABLE, u64::from(i), hole / PAGE + 1 + u64::from(i)) }
                .map_err(|rc| XenError::Hypercall("mapping grant frames", rc))?;
        }
        GRANT_TABLE.store(hole + PAGE, Ordering::Release);
        NR_GRANT_FRAMES.store(GRANT_FRAMES, Ordering::Release);
        Ok(Xen { cpuid_base, version, hole, grant_frames: GRANT_FRAMES })
    }

    /// PV: map shared_info (at its machine address from `start_info`) and
    /// [`GRANT_FRAMES`] grant frames (GNTTABOP_setup_table) into the virtual window past
    /// RAM that [`pv::extend_map`] left; no guest frame is taken.
    pub fn init_pv(si: &pv::PvStart, map: &pv::PvMap) -> Result<Xen, XenError> {
        let version = version();
        let (va, n) = map.window;
        if n < 1 + u64::from(GRANT_FRAMES) {
            return Err(XenError::NoHole);
        }
        // SAFETY: `va` is the first page of the unused window; shared_info is Xen's page
        // for this domain, named by start_info.
        unsafe { pv::map_xen_page(va, si.shared_info >> 12) }
            .map_err(|rc| XenError::Hypercall("mapping shared_info", rc))?;
        SHARED_INFO.store(va, Ordering::Release);
        let mut frames = [0u64; GRANT_FRAMES as usize];
        pv::grant_frames(&mut frames)?;
        for (i, &mfn) in frames.iter().enumerate() {
            // SAFETY: the pages after shared_info's in the window are unused; the frames
            // are this domain's grant table, as Xen just said.
            unsafe { pv::map_xen_page(va + (1 + i as u64) * PAGE, mfn) }
                .map_err(|rc| XenError::Hypercall("mapping grant frames", rc))?;
        }
        GRANT_TABLE.store(va + PAGE, Ordering::Release);
        NR_GRANT_FRAMES.store(GRANT_FRAMES, Ordering::Release);
        Ok(Xen { cpuid_base: xen_cpuid_base().unwrap_or(0), version, hole: va, grant_frames: GRANT_FRAMES })
    }

    /// The pages taken from the guest-physical space, to report as reserved.
    pub fn reserved(&self) -> (u64, u64) {
        (self.hole, (1 + u64::from(self.grant_frames)) * PAGE)
    }
}

static GRANT_TABLE: AtomicU64 = AtomicU64::new(0);
static NR_GRANT_FRAMES: AtomicU32 = AtomicU32::new(0);

/// Map Xen page `idx` of `space` at guest frame `gpfn`.
///
/// # Safety
/// Whatever was at `gpfn` disappears from the guest's view (RAM there is replaced):
/// `gpfn` must be a frame no memory the loader (or the kernel it boots, unless told it
/// is reserved) uses.
unsafe fn add_to_physmap(space: u32, idx: u64, gpfn: u64) -> Result<(), i64> {
    let mut a = XenAddToPhysmap { domid: DOMID_SELF, size: 0, space, idx, gpfn };
    // SAFETY: XENMEM_add_to_physmap takes a xen_add_to_physmap (memory.h), no pointers;
    // the caller vouches for `gpfn` (see above).
    match unsafe { hypercall_ptr(HYPERVISOR_MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, &mut a) } {
        0 => Ok(()),
        rc => Err(rc),
    }
}

/// `len` bytes of guest-physical space, page aligned, that no memory-map entry covers:
/// the first gap above the highest RAM below 4 GiB, at least 1 MiB clear of it, and below
/// 0xf000_0000 (above that sit the LAPIC, IOAPIC, HPET and Xen's special pages).
pub fn find_hole(memmap: &[E820Entry], len: u64) -> Option<u64> {
    const LIMIT: u64 = 0xf000_0000;
    let ram_top = memmap
        .iter()
        .filter(|e| e.kind == 1 && e.addr < LIMIT)
        .map(|e| e.addr.saturating_add(e.size).min(LIMIT))
        .max()?;
    let mut at = ram_top.checked_add(1 << 20)?.next_multiple_of(1 << 20);
    // Step past any entry that overlaps the candidate, until one fits.
    loop {
        let end = at.checked_add(len)?;
        if end > LIMIT {
            return None;
        }
        match memmap
            .iter()
            .filter(|e| e.size > 0 && e.addr < end && e.addr.saturating_add(e.size) > at)
            .map(|e| e.addr + e.size)
            .max()
        {
            Some(next) => at = next.next_multiple_of(1 << 20),
            None => return Some(at),
        }
    }
}

/// `memmap` with `[addr, addr + len)` added as reserved (type 2), in address order.
pub fn with_reserved(memmap: &[E820Entry], addr: u64, len: u64) -> alloc::vec::Vec<E820Entry> {
    let mut v = alloc::vec::Vec::from(memmap);
    let at = v.iter().position(|e| e.addr > addr).unwrap_or(v.len());
    v.insert(at, E820Entry { addr, size: len, kind: 2 });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(addr: u64, size: u64, kind: u32) -> E820Entry {
        E820Entry { addr, size, kind }
    }

    #[test]
    fn hole_is_above_ram_and_clear_of_everything() {
        // A 256 MiB PVH guest as Xen 4.17 describes it.
        let map = [e(0, 0xa0000, 1), e(0x100000, 0xff00000, 1), e(0xfc000000, 0x1000000, 2)];
        let h = find_hole(&map, 9 * PAGE).unwrap();
        assert_eq!(h, 0x10100000);
        // Something reserved right there: step past it.
        let map2 = [e(0, 0x10000000, 1), e(0x10100000, 0x3000, 2)];
        assert_eq!(find_hole(&map2, 9 * PAGE), Some(0x10200000));
        // RAM up to the limit: no hole.
        assert_eq!(find_hole(&[e(0, 0xf0000000, 1)], PAGE), None);
        assert_eq!(find_hole(&[], PAGE), None);
    }

    #[test]
    fn reserved_entry_goes_in_order() {
        let map = [e(0, 0x1000, 1), e(0xfc000000, 0x1000, 2)];
        let v = with_reserved(&map, 0x10100000, 0x9000);
        assert_eq!(v[1], e(0x10100000, 0x9000, 2));
        assert_eq!(v.len(), 3);
    }
}
