// SPDX-License-Identifier: MIT OR Apache-2.0
//! `rxen-mkimage explain`: run the loader's own boot session on the host against disk
//! images, and say what the guest would boot and why. A diagnostic for
//! a person on dom0: it opens the images read-only and never writes anything.
//!
//! The disks get the names the guest gives them (`xvda`, `xvdb`, ... as on Xen, or `vda`
//! ... with `--virtio`), so policy paths like `(xvda,gpt2)/boot/vmlinuz` mean the same here.

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use rxen_loader::block::{BlockDevice, BlockError, check_request};
use rxen_loader::boot::{self, Memdisk};
use rxen_loader::mem::{E820_RAM, E820Entry, RegionAllocator};
use rxen_loader::session::console::QuietConsole;
use rxen_loader::session::host::HostPlatform;
use rxen_loader::session::{self, BootEnv, Trace};
use rxen_loader::volume::Disk;

/// The policy a plain loader (no memdisk) runs.
pub use rxen_loader::session::GENERIC_POLICY;

/// A disk image file, read with `pread`, 512-byte blocks (a partial last block is left out,
/// as a block device would).
pub struct FileDisk {
    file: File,
    blocks: u64,
}

impl FileDisk {
    /// Open `path` read-only.
    pub fn open(path: &Path) -> Result<FileDisk> {
        let file = File::open(path).with_context(|| path.display().to_string())?;
        let len = file.metadata().with_context(|| path.display().to_string())?.len();
        Ok(FileDisk { file, blocks: len / 512 })
    }
}

impl BlockDevice for FileDisk {
    fn block_size(&self) -> u32 {
        512
    }
    fn num_blocks(&self) -> u64 {
        self.blocks
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_request(512, self.blocks, lba, buf.len())?;
        self.file.read_exact_at(buf, lba * 512).map_err(|_| BlockError::Device { status: 1 })
    }
}

/// What `explain` found, for text or JSON output: the trace of the loader's own boot
/// session.
#[derive(Debug, Default)]
pub struct Explanation(pub Trace);

impl std::ops::Deref for Explanation {
    type Target = Trace;
    fn deref(&self) -> &Trace {
        &self.0
    }
}

/// Guest RAM as explain pretends it: 4 GiB, the first MiB and a memdisk taken.
const FAKE_RAM: u64 = 4 << 30;
const FAKE_MEMDISK_AT: u64 = 0x20_0000;

/// Run the policy of `image` (or the generic one) against `disks`: the loader's own
/// boot session ([`session::run`]) over a host platform.
pub fn explain(disks: &[PathBuf], image: Option<&[u8]>, virtio: bool, domain_cmdline: &str) -> Result<Explanation> {
    let memdisk_bytes: Option<Vec<u8>> = match image {
        Some(img) => {
            let info = crate::image::read_image(img)?;
            match info.memdisk {
                Some(m) => {
                    info.header.check(m.bytes).map_err(|e| anyhow!("image: {e}"))?;
                    Some(m.bytes.to_vec())
                }
                None => None,
            }
        }
        None => None,
    };
    let mut disk_list = Vec::new();
    for (i, p) in disks.iter().enumerate() {
        let dev = FileDisk::open(p)?;
        disk_list.push(Disk::new(disk_name(i, virtio), p.display().to_string(), Box::new(dev)));
    }
    let mut ram = RegionAllocator::from_e820([E820Entry { addr: 0, size: FAKE_RAM, kind: E820_RAM }], FAKE_RAM);
    ram.reserve(0, boot::LOW_MEMORY_END);
    let memdisk = memdisk_bytes.as_deref().map(|bytes| {
        ram.reserve(FAKE_MEMDISK_AT, bytes.len() as u64);
        Memdisk { bytes, paddr: FAKE_MEMDISK_AT }
    });
    let e820 = [E820Entry { addr: 0, size: FAKE_RAM, kind: E820_RAM }];
    let env = BootEnv { cmdline: domain_cmdline, memdisk, modules: &[], ram, e820: &e820, rsdp: 0, pv: None };
    let mut trace = Trace::default();
    // Grubenv writes are described (dry run): explain never writes a disk. What would
    // boot is in the trace.
    let mut platform = HostPlatform { disks: disk_list, dry_run: true };
    let _ = session::run(env, &mut platform, &mut QuietConsole::default(), &mut trace);
    match trace.fatal.take() {
        Some(e) => Err(anyhow!("image memdisk: {e}")),
        None => Ok(Explanation(trace)),
    }
}

fn disk_name(i: usize, virtio: bool) -> String {
    let n = rxen_loader::drivers::disk_name(i); // "vd" + letters
    if virtio { n } else { format!("x{n}") }
}

impl Explanation {
    /// For a person.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for (n, p) in &self.disks {
            let _ = writeln!(s, "disk {n}: {p}");
        }
        for v in &self.volumes {
            let _ = writeln!(s, "volume {v}");
        }
        for m in &self.messages {
            let _ = writeln!(s, "note: {m}");
        }
        for (l, o) in &self.steps {
            let _ = writeln!(s, "step {l}: {o}");
        }
        for e in &self.entries {
            let _ = writeln!(
                s,
                "entry{} {:?}: kernel {} initrd [{}] cmdline {:?}",
                if e.default { " (default)" } else { "" },
                e.title,
                e.kernel,
                e.initrds.join(", "),
                e.cmdline
            );
        }
        for (f, n) in &self.files_read {
            let _ = writeln!(s, "read {f}: {n} bytes");
        }
        match &self.boot {
            Some(b) => {
                let _ = writeln!(s, "boots: step {} ({}, {} bytes)", b.step, b.kind, b.kernel_bytes);
                if let Some(e) = &b.entry {
                    let _ = writeln!(s, "entry: {e}");
                }
                for (i, n) in b.initrds.iter().enumerate() {
                    let _ = writeln!(s, "initrd {i}: {n} bytes");
                }
                let _ = writeln!(s, "cmdline: {}", b.cmdline);
            }
            None => s.push_str("boots: nothing (every step failed)\n"),
        }
        s
    }

    /// For scripts: one JSON object.
    pub fn json(&self) -> String {
        let strs = |v: &[String]| format!("[{}]", v.iter().map(|x| json_str(x)).collect::<Vec<_>>().join(","));
        let disks: Vec<String> =
            self.disks.iter().map(|(n, p)| format!("{{\"name\":{},\"path\":{}}}", json_str(n), json_str(p))).collect();
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|(l, o)| format!("{{\"step\":{},\"outcome\":{}}}", json_str(l), json_str(o)))
            .collect();
        let reads: Vec<String> =
            self.files_read.iter().map(|(f, n)| format!("{{\"file\":{},\"bytes\":{n}}}", json_str(f))).collect();
        let entries: Vec<String> = self
            .entries
            .iter()
            .map(|e| {
                format!(
                    "{{\"title\":{},\"kernel\":{},\"initrds\":{},\"cmdline\":{},\"default\":{}}}",
                    json_str(&e.title),
                    json_str(&e.kernel),
                    strs(&e.initrds),
                    json_str(&e.cmdline),
                    e.default
                )
            })
            .collect();
        let boot = match &self.boot {
            Some(b) => format!(
                "{{\"step\":{},\"entry\":{},\"kind\":{},\"kernel_bytes\":{},\"initrd_bytes\":[{}],\"cmdline\":{}}}",
                json_str(&b.step),
                b.entry.as_deref().map_or_else(|| "null".to_string(), json_str),
                json_str(&b.kind),
                b.kernel_bytes,
                b.initrds.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(","),
                json_str(&b.cmdline)
            ),
            None => "null".into(),
        };
        format!(
            "{{\"disks\":[{}],\"volumes\":{},\"messages\":{},\"steps\":[{}],\"entries\":[{}],\"files_read\":[{}],\"boot\":{}}}\n",
            disks.join(","),
            strs(&self.volumes),
            strs(&self.messages),
            steps.join(","),
            entries.join(","),
            reads.join(","),
            boot
        )
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::json_str;

    #[test]
    fn json_strings_escape() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
