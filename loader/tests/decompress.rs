// SPDX-License-Identifier: MIT OR Apache-2.0
//! The kernel payload decompressors against the real C tools: data compressed by
//! `gzip`, `bzip2`, `xz` (as Linux builds kernels: `--check=crc32 --x86 --lzma2`), `xz
//! --format=lzma`, `lzop`, `lz4 -l` and `zstd` decompresses to the exact bytes; cut,
//! corrupted or too-large streams give the error naming the format and the cause; and
//! Debian's bzImage payload decompresses to the vmlinux `scripts/extract-vmlinux` gives.
//!
//! The data is the first 16 MiB of Debian's vmlinux (extracted from
//! `.cache/kernel/vmlinuz`, cached by `scripts/fetch-kernel`; the whole 60-odd MiB with
//! `RXEN_DECOMP_FULL=1`), or 16 MiB of seeded pseudo-random text when there is no kernel.
//! The compressed files are cached in `.cache/decompress/`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use rxen_loader::kernel::bzimage;
use rxen_loader::kernel::decompress::{DecompressError, Format, decompress, decompress_into, detect, size_trailer};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `cmd` with `args`, `input` on stdin; its stdout.
fn pipe(cmd: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (scripts/setup installs it)"));
    let mut stdin = child.stdin.take().unwrap();
    let out = std::thread::scope(|s| {
        s.spawn(move || {
            stdin.write_all(input).unwrap();
        });
        child.wait_with_output().unwrap()
    });
    assert!(out.status.success(), "{cmd} {args:?} failed");
    out.stdout
}

/// How each format is made: the tool and its arguments (compress to stdout).
fn compressor(f: Format) -> (&'static str, &'static [&'static str]) {
    match f {
        Format::Gzip => ("gzip", &["-9", "-n", "-c"]),
        Format::Bzip2 => ("bzip2", &["-9", "-c"]),
        Format::Xz => ("xz", &["--check=crc32", "--x86", "--lzma2=preset=9", "-c"]),
        Format::Lzma => ("xz", &["--format=lzma", "-9", "-c"]),
        Format::Lzop => ("lzop", &["-9", "-c"]),
        Format::Lz4 => ("lz4", &["-l", "-9", "-c"]),
        Format::Zstd => ("zstd", &["-19", "-q", "-c"]),
    }
}

/// The formats rxen decodes: all of them.
const DECODED: [Format; 7] = Format::ALL;

fn compress(f: Format, data: &[u8]) -> Vec<u8> {
    let (cmd, args) = compressor(f);
    pipe(cmd, args, data)
}

/// 16 MiB of seeded pseudo-random bytes and text (when there is no kernel).
fn synthetic(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let words: [&[u8]; 8] = [b"kernel ", b"xen ", b"boot ", b"page ", b"\x00\x00\x00\x00", b"\n", b"grant ", b"event "];
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x & 3 == 0 {
            v.extend_from_slice(&x.to_le_bytes());
        } else {
            v.extend_from_slice(words[(x >> 8) as usize & 7]);
        }
    }
    v.truncate(len);
    v
}

/// The vmlinux inside Debian's bzImage, as `scripts/extract-vmlinux` gives it.
fn vmlinux() -> Option<Vec<u8>> {
    let dir = root().join(".cache/kernel");
    let out = dir.join("vmlinux");
    if !out.exists() {
        if !dir.join("vmlinuz").exists() {
            return None;
        }
        let st = Command::new(root().join("scripts/extract-vmlinux"))
            .arg(dir.join("vmlinuz"))
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .ok()?;
        if !st.success() {
            return None;
        }
    }
    std::fs::read(out).ok()
}

fn data() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| match vmlinux() {
        Some(mut v) => {
            if std::env::var_os("RXEN_DECOMP_FULL").is_none() {
                v.truncate(16 << 20);
            }
            v
        }
        None => {
            eprintln!("no .cache/kernel/vmlinuz: using 16 MiB of synthetic data");
            synthetic(16 << 20)
        }
    })
}

/// `data()` compressed as `f`, cached in `.cache/decompress/` (by format and data hash).
fn compressed(f: Format) -> &'static [u8] {
    static C: OnceLock<std::sync::Mutex<std::collections::HashMap<Format, &'static [u8]>>> = OnceLock::new();
    let map = C.get_or_init(Default::default);
    if let Some(v) = map.lock().unwrap().get(&f) {
        return v;
    }
    let d = data();
    let key = {
        // FNV-1a over the length and a sample: enough to tell the data sets apart.
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in (d.len() as u64).to_le_bytes().iter().chain(d.iter().step_by(4093)) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        h
    };
    let dir = root().join(".cache/decompress");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("data-{key:016x}.{}", f.name()));
    let v = match std::fs::read(&path) {
        Ok(v) => v,
        Err(_) => {
            let v = compress(f, d);
            std::fs::write(&path, &v).unwrap();
            v
        }
    };
    let v: &'static [u8] = Vec::leak(v);
    map.lock().unwrap().insert(f, v);
    v
}

fn assert_names(e: &DecompressError, f: Format, cause: &str) {
    let s = e.to_string();
    assert_eq!(e.format, f.name(), "{s}");
    assert!(s.starts_with(&format!("{}: ", f.name())), "{s}");
    assert!(s.contains(cause), "{f}: expected {cause:?} in {s:?}");
    assert!(s.contains("at input offset"), "{s}");
}

#[test]
fn detects_every_tool() {
    for f in Format::ALL {
        assert_eq!(detect(&compress(f, b"hello")), Some(f), "{f}");
    }
}

#[test]
fn round_trip_kernel_data() {
    let d = data();
    for f in DECODED {
        let c = compressed(f);
        let t = std::time::Instant::now();
        let out = decompress(f, c, d.len()).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{f}: {} -> {} bytes in {:?}", c.len(), out.len(), t.elapsed());
        assert!(out == d, "{f}: output differs");
        // Into a larger buffer: the same bytes, the count returned.
        let mut big = vec![0u8; d.len() + 4096];
        assert_eq!(decompress_into(f, c, &mut big), Ok(d.len()), "{f}");
    }
}

#[test]
fn cap_one_byte_short() {
    let d = data();
    for f in DECODED {
        let e = decompress(f, compressed(f), d.len() - 1).unwrap_err();
        assert!(e.is_too_large(), "{e}");
        assert_names(&e, f, &format!("output larger than {} bytes", d.len() - 1));
    }
}

#[test]
fn small_edge_inputs() {
    for f in DECODED {
        for input in [&b""[..], b"x", b"\x00", &[0xffu8; 3][..]] {
            let c = compress(f, input);
            assert_eq!(decompress(f, &c, 16).unwrap_or_else(|e| panic!("{e}")), input, "{f} {input:?}");
            assert_eq!(decompress(f, &c, input.len()).unwrap(), input, "{f}: exact cap");
            if !input.is_empty() {
                let e = decompress(f, &c, input.len() - 1).unwrap_err();
                assert!(e.is_too_large(), "{f}: {e}");
            }
        }
    }
}

#[test]
fn truncated_streams() {
    let d = data();
    for f in DECODED {
        let c = compressed(f);
        for cut in [0, 1, 5, c.len() / 2, c.len() - 1] {
            let e = decompress(f, &c[..cut], d.len()).unwrap_err();
            eprintln!("{f} cut at {cut}: {e}");
            assert_eq!(e.format, f.name(), "{e}");
            assert!(e.offset <= cut as u64, "{f}: offset {} past the cut {cut}", e.offset);
        }
        // Cut in the middle: the cause is the truncation for these, whose decoders see
        // the end of the input (not a checksum first).
        let e = decompress(f, &c[..c.len() / 2], d.len()).unwrap_err();
        let cause = match f {
            Format::Xz | Format::Lzma | Format::Zstd => "",
            _ => "truncated",
        };
        assert_names(&e, f, cause);
    }
}

#[test]
fn corrupted_streams() {
    let d = data();
    for f in DECODED {
        let c = compressed(f);
        for at in [c.len() / 3, c.len() / 2, c.len() - 12] {
            let mut bad = c.to_vec();
            bad[at] ^= 0x55;
            match decompress(f, &bad, d.len()) {
                Err(e) => {
                    eprintln!("{f} flipped at {at}: {e}");
                    assert_names(&e, f, "");
                }
                // lz4's legacy frame and .lzma have no checksum: a flip may only change
                // the output.
                Ok(out) => {
                    assert!(matches!(f, Format::Lz4 | Format::Lzma) && out != d, "{f}: flip at {at} not detected")
                }
            }
        }
    }
    // Checksummed formats name the checksum when a literal byte changes near the end.
    let mut g = compressed(Format::Gzip).to_vec();
    let n = g.len();
    g[n - 8] ^= 1; // the CRC32 itself
    assert_names(&decompress(Format::Gzip, &g, d.len()).unwrap_err(), Format::Gzip, "CRC32 mismatch");
    let mut g = compressed(Format::Gzip).to_vec();
    g[n - 1] ^= 1; // ISIZE
    assert_names(&decompress(Format::Gzip, &g, d.len()).unwrap_err(), Format::Gzip, "ISIZE");
}

#[test]
fn wrong_format_is_an_error() {
    let g = compressed(Format::Gzip);
    for f in DECODED {
        if f != Format::Gzip {
            let e = decompress(f, g, 1 << 20).unwrap_err();
            assert_eq!(e.format, f.name(), "{e}");
        }
    }
}

/// A gzip member with every optional header field.
#[test]
fn gzip_header_fields() {
    let plain = compress(Format::Gzip, b"hello, header fields");
    // Rebuild the header: FTEXT | FHCRC | FEXTRA | FNAME | FCOMMENT.
    let mut h = vec![0x1f, 0x8b, 8, 0x1f, 0, 0, 0, 0, 0, 3];
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(b"AB\x00\x00");
    h.extend_from_slice(b"name.txt\x00");
    h.extend_from_slice(b"a comment\x00");
    let crc = crc32(&h);
    h.extend_from_slice(&(crc as u16).to_le_bytes());
    h.extend_from_slice(&plain[10..]);
    assert_eq!(decompress(Format::Gzip, &h, 64).unwrap(), b"hello, header fields");
    let mut bad = h.clone();
    bad[4] ^= 1; // MTIME: the header CRC16 no longer matches
    assert_names(&decompress(Format::Gzip, &bad, 64).unwrap_err(), Format::Gzip, "header CRC16");
    let mut bad = h.clone();
    bad[3] |= 0x80;
    assert_names(&decompress(Format::Gzip, &bad, 64).unwrap_err(), Format::Gzip, "reserved header flags");
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// Linux appends the uncompressed size to every payload: the decoders ignore it.
#[test]
fn size_trailer_is_ignored() {
    for f in DECODED {
        let mut c = compress(f, b"payload with a size trailer");
        c.extend_from_slice(&27u32.to_le_bytes());
        assert_eq!(size_trailer(&c), Some(27));
        assert_eq!(decompress(f, &c, 27).unwrap_or_else(|e| panic!("{e}")), b"payload with a size trailer", "{f}");
    }
}

#[test]
fn bzip2_checks_its_crcs() {
    let mut c = compress(Format::Bzip2, b"hello hello hello hello");
    let n = c.len();
    c[n - 2] ^= 1; // inside the combined CRC (the stream ends on a bit, padded)
    let e = decompress(Format::Bzip2, &c, 64).unwrap_err();
    assert_names(&e, Format::Bzip2, "CRC mismatch");
    let mut c = compress(Format::Bzip2, b"hello hello hello hello");
    c[10] ^= 0xff; // the block CRC
    assert_names(&decompress(Format::Bzip2, &c, 64).unwrap_err(), Format::Bzip2, "block CRC mismatch");
}

fn kernel_path() -> PathBuf {
    root().join(".cache/kernel/vmlinuz")
}

/// Debian's 6.1 bzImage: its xz payload decompresses to the ELF vmlinux, byte for byte
/// what `scripts/extract-vmlinux` (the xz tool) gives, and of the size the trailer says.
#[test]
fn debian_bzimage_payload() {
    let p = kernel_path();
    let img = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}: run scripts/fetch-kernel first", p.display()));
    let k = bzimage::parse(&img).unwrap();
    assert!(k.version() >= 0x0208);
    let payload = k.payload().expect("a payload");
    assert_eq!(k.payload_format(), Some(Format::Xz));
    let size = k.payload_uncompressed_size().unwrap() as usize;
    assert!(size > 1 << 20 && size <= k.init_size() as usize, "size {size:#x}, init_size {:#x}", k.init_size());
    let mut out = vec![0u8; size];
    let t = std::time::Instant::now();
    let n = k.decompress_payload(&mut out).unwrap().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("xz payload {} -> {n} bytes in {:?}", payload.len(), t.elapsed());
    assert_eq!(n, size);
    assert_eq!(&out[..4], b"\x7fELF");
    if let Some(v) = vmlinux() {
        assert_eq!(v.len(), n, "extract-vmlinux's size");
        assert!(v == out, "differs from extract-vmlinux's vmlinux");
    }
    // One byte short of the declared size: the named error.
    let e = k.decompress_payload(&mut out[..size - 1]).unwrap().unwrap_err();
    assert_names(&e, Format::Xz, &format!("output larger than {} bytes", size - 1));
}

/// Valid small streams with random flips, cuts and splices (seeded): no decoder panics,
/// writes past its buffer or fails to name its format.
#[test]
fn mutated_streams_never_panic() {
    let text: Vec<u8> = synthetic(20_000);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for f in DECODED {
        let c = compress(f, &text);
        for _ in 0..400 {
            let mut m = c.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % m.len();
                match next() % 3 {
                    0 => m[at] ^= 1 << (next() % 8),
                    1 => m[at] = next() as u8,
                    _ => m.truncate(at.max(1)),
                }
            }
            let cap = [0usize, 100, 19_999, 20_000, 1 << 16][(next() % 5) as usize];
            let mut out = vec![0u8; cap];
            match decompress_into(f, &m, &mut out) {
                Ok(n) => assert!(n <= cap),
                Err(e) => {
                    assert_eq!(e.format, f.name(), "{e}");
                    assert!(e.offset <= m.len() as u64, "{f}: {e} past the input's {} bytes", m.len());
                }
            }
        }
    }
}
