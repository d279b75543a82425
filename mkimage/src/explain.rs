// SPDX-License-Identifier: MIT OR Apache-2.0
//! `rxen-mkimage explain`: run the loader's own boot session on the host against disk
//! images, and say what the guest would boot and why. A diagnostic for
//! a person on dom0: it opens the images read-only and never writes anything.
//!
//! The disks get the names the guest gives them (`xvda`, `xvdb`, ... as on Xen, or `vda`
//! ... with `--virtio`), so policy paths like `(xvda,gpt2)/boot/vmlinuz` mean the same here.
//!
//! The disks are guest-controlled: [`command`] opens every input in dom0's process, then
//! parses them in a confined child ([`crate::sandbox`]) whose only output is its
//! [`Answer`], the text the command prints and its error.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};

pub use crate::answer::Answer;
use anyhow::{Context, Result, anyhow, bail};
use rxen_loader::block::{BlockDevice, BlockError, check_request};
use rxen_loader::boot::{self, Memdisk};
use rxen_loader::mem::{E820_RAM, E820Entry, RegionAllocator};
use rxen_loader::session::console::QuietConsole;
use rxen_loader::session::host::HostPlatform;
use rxen_loader::session::{self, BootEnv, Trace};
use rxen_loader::volume::Disk;

use crate::cli::ExplainArgs;
use crate::sandbox::{self, Failure, Limits, SelfTest};

/// The policy a plain loader (no memdisk) runs.
pub use rxen_loader::session::GENERIC_POLICY;

/// A disk image file, read with `pread`, 512-byte blocks (a partial last block is left out,
/// as a block device would).
pub struct FileDisk {
    file: File,
    blocks: u64,
}

impl FileDisk {
    /// Open `path` read-only (a file or a block device such as an LV).
    pub fn open(path: &Path) -> Result<FileDisk> {
        let name = || path.display().to_string();
        let mut file = File::open(path).with_context(name)?;
        let meta = file.metadata().with_context(name)?;
        // A block device's metadata says 0 bytes: its size is where its end is.
        let len = if meta.file_type().is_block_device() {
            file.seek(SeekFrom::End(0)).with_context(name)?
        } else {
            meta.len()
        };
        Ok(FileDisk { file, blocks: len / 512 })
    }
}

impl AsRawFd for FileDisk {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
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
/// boot session ([`session::run`]) over a host platform. Unconfined: [`command`] runs
/// [`explain_opened`] in the sandbox.
pub fn explain(disks: &[PathBuf], image: Option<&[u8]>, virtio: bool, domain_cmdline: &str) -> Result<Explanation> {
    explain_opened(open_disks(disks)?, image, virtio, domain_cmdline)
}

/// Open the disks read-only: (the name explain shows, the disk).
pub fn open_disks(disks: &[PathBuf]) -> Result<Vec<(String, FileDisk)>> {
    disks.iter().map(|p| Ok((p.display().to_string(), FileDisk::open(p)?))).collect()
}

/// [`explain`] on disks already open: the part that reads guest bytes.
pub fn explain_opened(
    disks: Vec<(String, FileDisk)>,
    image: Option<&[u8]>,
    virtio: bool,
    domain_cmdline: &str,
) -> Result<Explanation> {
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
    for (i, (path, dev)) in disks.into_iter().enumerate() {
        disk_list.push(Disk::new(disk_name(i, virtio), path, Box::new(dev)));
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

/// `rxen-mkimage explain`: open the inputs, parse them in the sandbox (unless
/// `--no-sandbox`), print the answer. Exit status 1 (an error) when nothing would boot
/// or the parser did not finish.
pub fn command(a: &ExplainArgs) -> Result<()> {
    // Every input is opened here, before any guest byte is read; the image (the host's
    // own file) is read into memory, the disks stay open read-only.
    let image = a.image.as_deref().map(|p| std::fs::read(p).with_context(|| p.display().to_string())).transpose()?;
    let disks = open_disks(&a.disks)?;
    let (virtio, json) = (a.virtio, a.json);
    let answer = if a.no_sandbox {
        Answer::of(explain_opened(disks, image.as_deref(), virtio, &a.cmdline), json)
    } else {
        // The test hooks are read here, in the parent: the child reads no environment.
        let selftest = SelfTest::from_env()?;
        let limits = Limits { cpu_secs: a.cpu_limit, wall_secs: a.time_limit, mem_mib: a.mem_limit };
        let keep: Vec<RawFd> = disks.iter().map(|(_, d)| d.as_raw_fd()).collect();
        let cmdline = a.cmdline.as_str();
        let work = move || Answer::of(explain_opened(disks, image.as_deref(), virtio, cmdline), json).encode();
        let what = parsing_what(&a.disks, a.image.as_deref());
        match sandbox::run_confined(limits, &keep, selftest, work)? {
            Ok(bytes) => Answer::decode(&bytes)
                .ok_or_else(|| anyhow!("explain: the disk parser's answer is malformed while parsing {what}"))?,
            Err(Failure::Setup(m)) => {
                bail!(
                    "explain: {} (--no-sandbox parses unconfined, for debugging only)",
                    Failure::Setup(m).cause(&limits)
                )
            }
            Err(f) => bail!("explain: {} while parsing {what}", f.cause(&limits)),
        }
    };
    print!("{}", answer.stdout);
    match answer.error {
        Some(e) => Err(anyhow!(e)),
        None => Ok(()),
    }
}

/// "DISK, DISK2 (with image IMAGE)", for the sandbox's messages.
fn parsing_what(disks: &[PathBuf], image: Option<&Path>) -> String {
    let mut s = disks.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    if let Some(i) = image {
        let _ = write!(s, " (with image {})", i.display());
    }
    s
}

impl Answer {
    /// The command's answer for an explain result.
    pub fn of(r: Result<Explanation>, json: bool) -> Answer {
        match r {
            Ok(ex) => Answer {
                stdout: if json { ex.json() } else { ex.text() },
                error: ex.boot.is_none().then(|| "nothing would boot".to_owned()),
            },
            Err(e) => Answer { stdout: String::new(), error: Some(format!("{e:#}")) },
        }
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
        terminal_safe(&s)
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

/// Whether `c` must not reach a terminal raw: control characters (C0 but newline, DEL,
/// C1: a terminal acts on them, e.g. ESC and CSI sequences) and the bidirectional
/// overrides that make text display in another order than it reads.
fn dangerous(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every [`dangerous`] character written as `\xNN` or `\u{NNNN}`: the disk
/// names, file names, titles and command lines explain prints come from the guest.
pub fn terminal_safe(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if !dangerous(c) {
            o.push(c);
        } else if (c as u32) < 0x100 {
            let _ = write!(o, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(o, "\\u{{{:04x}}}", c as u32);
        }
    }
    o
}

/// A JSON string literal (control characters, C1 and bidi overrides escaped as `\uNNNN`).
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
            c if dangerous(c) => {
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
    use super::{Answer, json_str, terminal_safe};

    #[test]
    fn json_strings_escape() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        assert_eq!(json_str("\u{9b}2J\u{7f}\u{202e}"), "\"\\u009b2J\\u007f\\u202e\"");
    }

    /// A guest's menu title or file name cannot drive the dom0 terminal (ESC and CSI
    /// sequences, a bidi override), and the lines stay lines.
    #[test]
    fn text_output_is_terminal_safe() {
        assert_eq!(
            terminal_safe("entry \u{1b}]0;owned\u{7}\u{9b}2J x\u{202e}y\ttab\nnext\r\n"),
            "entry \\x1b]0;owned\\x07\\x9b2J x\\u{202e}y\\x09tab\nnext\\x0d\n"
        );
    }

    #[test]
    fn answers_round_trip_and_junk_is_refused() {
        for a in [
            Answer { stdout: "boots: x\n".into(), error: None },
            Answer { stdout: String::new(), error: Some("nothing would boot".into()) },
            Answer { stdout: "{}".into(), error: Some(String::new()) },
        ] {
            let b = a.encode();
            assert_eq!(Answer::decode(&b).as_ref(), Some(&a));
            for cut in 0..b.len() {
                assert_eq!(Answer::decode(&b[..cut]), None, "cut at {cut}");
            }
            let mut longer = b.clone();
            longer.push(0);
            assert_eq!(Answer::decode(&longer), None);
        }
        let mut b = Answer { stdout: "x".into(), error: None }.encode();
        b[8] = 7;
        assert_eq!(Answer::decode(&b), None);
    }
}
