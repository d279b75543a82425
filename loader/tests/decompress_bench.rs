// SPDX-License-Identifier: MIT OR Apache-2.0
//! Throughput of the kernel payload decoders against the C tools, on the same files:
//! run by `scripts/bench-decompress` (ignored otherwise), which compresses the data into
//! `BENCH_DIR` as `data.FORMAT` (and `data` itself). Prints one line per format: the
//! compressed size, rxen's MiB/s and the tool's (of uncompressed output, best of
//! `BENCH_RUNS`), and the ratio.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rxen_loader::kernel::decompress::{Format, decompress_into};

fn tool(f: Format) -> &'static str {
    match f {
        Format::Gzip => "gzip",
        Format::Bzip2 => "bzip2",
        Format::Xz | Format::Lzma => "xz",
        Format::Lzop => "lzop",
        Format::Lz4 => "lz4",
        Format::Zstd => "zstd",
    }
}

fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
#[ignore = "a benchmark: scripts/bench-decompress runs it"]
fn bench_decompress() {
    let dir = PathBuf::from(std::env::var_os("BENCH_DIR").expect("BENCH_DIR (run scripts/bench-decompress)"));
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let data = std::fs::read(dir.join("data")).unwrap();
    let mib = data.len() as f64 / f64::from(1 << 20);
    println!("data: {} bytes ({mib:.1} MiB), best of {runs}", data.len());
    println!("{:<6} {:>12} {:>12} {:>12} {:>8}", "format", "compressed", "rxen MiB/s", "tool MiB/s", "rxen/C");
    let mut out = vec![0u8; data.len()];
    for f in Format::ALL {
        let path = dir.join(format!("data.{}", f.name()));
        let Ok(c) = std::fs::read(&path) else { continue };
        let rxen = {
            let n = decompress_into(f, &c, &mut out).unwrap_or_else(|e| panic!("{e}"));
            assert!(n == data.len() && out == data, "{f}: wrong output");
            Some(best(runs, || {
                decompress_into(f, &c, &mut out).unwrap();
            }))
        };
        let c_tool = best(runs, || {
            let st = Command::new(tool(f))
                .args(["-d", "-c"])
                .args(if f == Format::Lzma { &["--format=lzma"][..] } else { &[] })
                .stdin(std::fs::File::open(&path).unwrap())
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "{} -d", tool(f));
        });
        let rate = |d: Duration| mib / d.as_secs_f64();
        let r = rxen.map(rate);
        let t = rate(c_tool);
        println!(
            "{:<6} {:>12} {:>12} {:>12.1} {:>8}",
            f.name(),
            c.len(),
            r.map_or("n/a".into(), |r| format!("{r:.1}")),
            t,
            r.map_or("n/a".into(), |r| format!("{:.2}", r / t)),
        );
    }
}
