// SPDX-License-Identifier: MIT OR Apache-2.0
//! Decompression bombs: 1 GiB of zeros, compressed by the C tools to a few KiB or MiB
//! (cached in `.cache/decompress/`), against a 64 MiB buffer: every decoder stops with
//! "output larger than 67108864 bytes", quickly, and allocates little beyond the buffer
//! (measured by a counting global allocator: this file is its own test binary, and its one
//! test runs the formats in turn).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rxen_loader::kernel::decompress::{Format, decompress_into};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for alloc.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

const GIB: u64 = 1 << 30;
const CAP: usize = 64 << 20;

fn bomb(f: Format) -> Vec<u8> {
    let tool = match f {
        Format::Gzip => "gzip -1 -c",
        Format::Xz => "xz --check=crc32 --x86 --lzma2=preset=0 -c",
        Format::Lzma => "xz --format=lzma -0 -c",
        Format::Lzop => "lzop -1 -c",
        Format::Lz4 => "lz4 -l -1 -c",
        Format::Zstd => "zstd -1 -q -c",
        Format::Bzip2 => "bzip2 -1 -c",
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/decompress");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("bomb-1g.{}", f.name()));
    if let Ok(v) = std::fs::read(&path) {
        return v;
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("head -c {GIB} /dev/zero | {tool}"))
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{tool}");
    std::fs::write(&path, &out.stdout).unwrap();
    out.stdout
}

#[test]
fn bombs_stop_at_the_cap() {
    let formats = Format::ALL;
    // Make the bombs first (in parallel: the tools take a while on 1 GiB).
    let bombs: Vec<Vec<u8>> = std::thread::scope(|s| {
        formats.map(|f| s.spawn(move || bomb(f))).into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut out = vec![0u8; CAP];
    for (f, b) in formats.into_iter().zip(&bombs) {
        let base = CURRENT.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let t = Instant::now();
        let e = decompress_into(f, b, &mut out).unwrap_err();
        let took = t.elapsed();
        let extra = PEAK.load(Ordering::Relaxed) - base;
        eprintln!("{f}: {} byte bomb: {e} in {took:?}, {} KiB allocated beyond the buffer", b.len(), extra >> 10);
        assert!(e.is_too_large(), "{f}: {e}");
        assert!(e.to_string().starts_with(&format!("{}: output larger than {CAP} bytes", f.name())), "{e}");
        assert!(took < Duration::from_secs(5), "{f}: {took:?}");
        // The decoder's own state: a window or dictionary of a few MiB at these presets
        // (zstd -1 and the xz/lzma -0 presets), never a copy of the output.
        assert!(extra < 16 << 20, "{f}: {extra} bytes allocated beyond the buffer");
    }
}
