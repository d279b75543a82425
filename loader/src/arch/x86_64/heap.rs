// SPDX-License-Identifier: MIT OR Apache-2.0
//! The loaders' global allocator (included by both binaries): the loader's own heap and
//! a second one for RAM the session lends while a decompressor runs.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, Ordering};

use linked_list_allocator::{Heap, LockedHeap};

/// Two heaps: the loader's own (8 MiB, for the whole boot) and, while a decompressor
/// runs, RAM the session lends (Platform::scratch_heap): big allocations go there first.
pub struct LoaderHeap {
    pub main: LockedHeap,
    scratch: LockedHeap,
    /// The lent range [start, end); 0..0 when none.
    start: AtomicU64,
    end: AtomicU64,
}

/// Allocations this large try the lent RAM first.
const BIG: usize = 256 << 10;

// SAFETY: both heaps are linked_list_allocator's (sound GlobalAllocs behind a spinlock);
// a block is freed to the heap whose range holds it, which is the heap it came from.
unsafe impl GlobalAlloc for LoaderHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= BIG && self.end.load(Ordering::Acquire) != 0 {
            // SAFETY: forwarded GlobalAlloc contract.
            let p = unsafe { self.scratch.alloc(layout) };
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: forwarded GlobalAlloc contract.
        unsafe { self.main.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let a = ptr as u64;
        if a >= self.start.load(Ordering::Acquire) && a < self.end.load(Ordering::Acquire) {
            // SAFETY: the block lies in the lent range, so the scratch heap gave it.
            unsafe { self.scratch.dealloc(ptr, layout) }
        } else {
            // SAFETY: any other block came from the main heap.
            unsafe { self.main.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
pub static HEAP: LoaderHeap = LoaderHeap {
    main: LockedHeap::empty(),
    scratch: LockedHeap::empty(),
    start: AtomicU64::new(0),
    end: AtomicU64::new(0),
};

/// Lend the scratch heap `Some((at, len))`, or take it back (`None`: only when nothing of
/// it is allocated; the answer says whether the RAM is free again).
///
/// # Safety
/// `Some`: free RAM, mapped, unused by anyone else until taken back.
pub unsafe fn scratch_heap(region: Option<(u64, u64)>) -> bool {
    let mut h = HEAP.scratch.lock();
    match region {
        Some((at, len)) => {
            if HEAP.end.load(Ordering::Acquire) != 0 {
                return false;
            }
            *h = Heap::empty();
            // SAFETY: per the caller: [at, at + len) is free RAM for this heap alone.
            unsafe { h.init(at as usize as *mut u8, len as usize) };
            HEAP.start.store(at, Ordering::Release);
            HEAP.end.store(at + len, Ordering::Release);
            true
        }
        None => {
            if h.used() != 0 {
                return false; // something still lives there: the RAM stays lent
            }
            HEAP.end.store(0, Ordering::Release);
            HEAP.start.store(0, Ordering::Release);
            *h = Heap::empty();
            true
        }
    }
}
