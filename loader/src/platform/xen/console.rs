// SPDX-License-Identifier: MIT OR Apache-2.0
//! The PV console (`public/io/console.h`, `docs/misc/console.txt`): what `xl console`
//! shows and types into. The page and event channel come from HVM_PARAM_CONSOLE_PFN /
//! HVM_PARAM_CONSOLE_EVTCHN; the backend (xenconsoled) consumes `out` and fills `in`.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use crate::abi::xen::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN, XenconsInterface};
use crate::platform::time::Deadline;

static PAGE: AtomicU64 = AtomicU64::new(0);
static PORT: AtomicU32 = AtomicU32::new(0);

/// Find the console page. False when the domain has none.
pub fn init() -> bool {
    if let Some((va, port)) = super::pv::console_ring() {
        // PV: start_info's console mfn, mapped one to one (pv::init).
        PORT.store(port, Ordering::Relaxed);
        PAGE.store(va, Ordering::Release);
        return true;
    }
    let (Ok(pfn), Ok(port)) = (super::hvm_param(HVM_PARAM_CONSOLE_PFN), super::hvm_param(HVM_PARAM_CONSOLE_EVTCHN))
    else {
        return false;
    };
    if pfn == 0 || pfn >= (1 << 20) {
        return false; // absent, or above 4 GiB where the loader maps nothing
    }
    PORT.store(port as u32, Ordering::Relaxed);
    PAGE.store(pfn << 12, Ordering::Release);
    true
}

/// Whether the PV console is up.
pub fn ready() -> bool {
    PAGE.load(Ordering::Acquire) != 0
}

fn iface() -> Option<*mut XenconsInterface> {
    match PAGE.load(Ordering::Acquire) {
        0 => None,
        a => Some(a as usize as *mut XenconsInterface),
    }
}

/// Write all of `s`, waiting (up to a second per stall) for the backend to drain the
/// ring; a backend that never reads loses output rather than hanging the boot.
pub fn write(s: &[u8]) {
    let Some(c) = iface() else { return };
    let port = PORT.load(Ordering::Relaxed);
    let mut rest = s;
    while !rest.is_empty() {
        // SAFETY: the console page is mapped (HVM param), identity mapped, shared with
        // the backend: indices are read and written volatile, with fences between the
        // data and the index that publishes it.
        let (cons, prod) = unsafe {
            (core::ptr::read_volatile(&raw const (*c).out_cons), core::ptr::read_volatile(&raw const (*c).out_prod))
        };
        if prod.wrapping_sub(cons) > 2048 {
            return; // the ring is corrupt: drop the output rather than write garbage
        }
        fence(Ordering::Acquire);
        let free = 2048 - prod.wrapping_sub(cons);
        if free == 0 {
            super::evtchn_send(port);
            let d = Deadline::after_ms(1000);
            // SAFETY: as above.
            while unsafe { core::ptr::read_volatile(&raw const (*c).out_cons) } == cons {
                if d.expired() {
                    return;
                }
                super::wait_event(port, 10_000);
            }
            continue;
        }
        let n = (free as usize).min(rest.len());
        for (i, &b) in rest[..n].iter().enumerate() {
            let at = (prod.wrapping_add(i as u32) & 2047) as usize;
            // SAFETY: as above; `at` < 2048 indexes the `out` ring.
            unsafe { core::ptr::write_volatile(&raw mut (*c).output[at], b) };
        }
        fence(Ordering::Release);
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(&raw mut (*c).out_prod, prod.wrapping_add(n as u32)) };
        rest = &rest[n..];
    }
    super::evtchn_send(port);
}

/// A byte typed on `xl console`, if any.
pub fn try_getc() -> Option<u8> {
    let c = iface()?;
    // SAFETY: as in `write`; `in` is filled by the backend up to in_prod.
    unsafe {
        let cons = core::ptr::read_volatile(&raw const (*c).in_cons);
        let prod = core::ptr::read_volatile(&raw const (*c).in_prod);
        if cons == prod || prod.wrapping_sub(cons) > 1024 {
            return None; // nothing typed, or a corrupt ring (no key is read from it)
        }
        fence(Ordering::Acquire);
        let b = core::ptr::read_volatile(&raw const (*c).input[(cons & 1023) as usize]);
        fence(Ordering::Release);
        core::ptr::write_volatile(&raw mut (*c).in_cons, cons.wrapping_add(1));
        super::evtchn_send(PORT.load(Ordering::Relaxed));
        Some(b)
    }
}

/// Wait a little for input (blocks on the console event channel instead of spinning).
pub fn wait_input() {
    super::wait_event(PORT.load(Ordering::Relaxed), 50_000);
    super::evtchn_clear(PORT.load(Ordering::Relaxed));
}
