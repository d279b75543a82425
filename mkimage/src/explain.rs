// SPDX-License-Identifier: MIT OR Apache-2.0
//! `rxen-mkimage explain`: run the loader's own disk, volume, search and step code on the
//! host against disk images, and say what the guest would boot and why. A diagnostic for
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
use rxen_loader::boot::{self, Files, Prepared, Root, StepOutcome};
use rxen_loader::cmdline::parse_domain_cmdline;
use rxen_loader::config::policy::{Policy, parse_policy};
use rxen_loader::volume::{self, Disk, GuestMemory};
use rxen_memdisk::ustar::Archive;

/// The policy a plain loader (no memdisk) runs.
pub const GENERIC_POLICY: &str = include_str!("../../configs/generic.toml");

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

/// Host memory standing in for guest RAM: files "read into the guest" land in leaked
/// buffers (the process ends right after), at made-up addresses.
struct HostMemory {
    next: u64,
}

impl GuestMemory for HostMemory {
    fn alloc(&mut self, len: u64) -> Option<(u64, &'static mut [u8])> {
        let buf: &'static mut [u8] = Box::leak(vec![0u8; usize::try_from(len).ok()?].into_boxed_slice());
        let at = self.next;
        self.next = self.next.checked_add(len.next_multiple_of(4096))?;
        Some((at, buf))
    }
}

/// What `explain` found, for text or JSON output.
#[derive(Debug, Default)]
pub struct Explanation {
    pub disks: Vec<(String, String)>,
    pub volumes: Vec<String>,
    pub messages: Vec<String>,
    /// Each step tried: (label, outcome).
    pub steps: Vec<(String, String)>,
    pub files_read: Vec<(String, u64)>,
    /// The guest configuration's entries, when a config step read one: (title, kernel,
    /// initrds, command line, is it the default).
    pub entries: Vec<ConfigEntry>,
    pub boot: Option<BootChoice>,
}

/// An entry of the guest's boot configuration.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ConfigEntry {
    pub title: String,
    pub kernel: String,
    pub initrds: Vec<String>,
    pub cmdline: String,
    pub default: bool,
}

/// The kernel the guest would boot.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BootChoice {
    pub step: String,
    /// The configuration entry, for a config step.
    pub entry: Option<String>,
    pub kind: String,
    pub kernel_bytes: u64,
    pub initrds: Vec<u64>,
    pub cmdline: String,
}

/// Run the policy of `image` (or the generic one) against `disks`.
pub fn explain(disks: &[PathBuf], image: Option<&[u8]>, virtio: bool, domain_cmdline: &str) -> Result<Explanation> {
    let mut ex = Explanation::default();
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
    let memdisk = memdisk_bytes.as_deref().map(Archive::new);
    let policy_text = match &memdisk {
        Some(md) => {
            String::from_utf8(md.file("rxen.toml").map_err(|e| anyhow!("image memdisk: rxen.toml: {e}"))?.to_vec())
                .map_err(|_| anyhow!("image memdisk: rxen.toml is not UTF-8"))?
        }
        None => GENERIC_POLICY.to_string(),
    };
    let policy: Policy = parse_policy(&policy_text).map_err(|e| anyhow!("{}", e.in_file("rxen.toml")))?;

    let mut disk_list = Vec::new();
    for (i, p) in disks.iter().enumerate() {
        let name = disk_name(i, virtio);
        let dev = FileDisk::open(p)?;
        ex.disks.push((name.clone(), p.display().to_string()));
        disk_list.push(Disk { name, desc: p.display().to_string(), dev: Box::new(dev) });
    }
    let vols = volume::scan(&mut disk_list, &mut |m| ex.messages.push(m));
    ex.volumes = vols.iter().map(|v| v.describe()).collect();

    let domain = parse_domain_cmdline(domain_cmdline);
    ex.messages.extend(domain.warnings.iter().cloned());
    let order = boot::step_order(&policy, &domain).map_err(|e| anyhow!("{e}"))?;
    let mut files =
        Files { memdisk, modules: &[], disks: &mut disk_list, volumes: &vols, reads: Vec::new(), clock: || 0 };
    let mut mem = HostMemory { next: 0x100_0000 };
    let mut root = Root::Memdisk;
    let mut search_failed = false;
    for i in order {
        let step = &policy.steps[i];
        let label = boot::step_label(&policy, i);
        if search_failed && boot::step_uses_root(step) {
            ex.steps.push((label, "skipped: the search before it found nothing".into()));
            continue;
        }
        let mut log = Vec::new();
        let r = boot::run_step(step, &mut files, &root, &domain, &mut mem, &mut |m| log.push(m));
        ex.messages.extend(log);
        for (what, bytes, _) in files.reads.drain(..) {
            ex.files_read.push((what, bytes));
        }
        match r {
            Ok(StepOutcome::Root(v)) => {
                ex.steps.push((label, format!("root is now ({})", vols[v].name)));
                root = Root::Volume(v);
                search_failed = false;
            }
            Ok(StepOutcome::Boot(p)) => {
                let (kind, kernel_bytes, initrd, cmdline) = match p {
                    Prepared::Linux { kernel, initrd, cmdline } => {
                        ("Linux bzImage", kernel.image().len() as u64, initrd, cmdline)
                    }
                    Prepared::Pvh { image, initrd, cmdline, .. } => ("PVH ELF", image.len() as u64, initrd, cmdline),
                };
                ex.steps.push((label.clone(), "boots".into()));
                ex.boot = Some(BootChoice {
                    step: label,
                    entry: None,
                    kind: kind.into(),
                    kernel_bytes,
                    initrds: initrd.iter().map(|f| f.data.len() as u64).collect(),
                    cmdline,
                });
                break;
            }
            Ok(StepOutcome::Config(choice)) => {
                let default = choice.selection.map(|s| s.entry);
                for (i, e) in choice.menu.entries.iter().enumerate() {
                    ex.entries.push(ConfigEntry {
                        title: e.display_title(),
                        kernel: e.kernel.as_ref().map(|k| k.to_string()).unwrap_or_default(),
                        initrds: e.initrds.iter().map(|p| p.to_string()).collect(),
                        cmdline: e.grub_cmdline(),
                        default: Some(i) == default,
                    });
                }
                let mut booted = None;
                let mut why = Vec::new();
                for idx in choice.try_order() {
                    let mut log = Vec::new();
                    let r = rxen_loader::bootcfg::prepare_entry(
                        &choice,
                        idx,
                        None,
                        &mut files,
                        &domain,
                        &mut mem,
                        &mut |m| log.push(m),
                    );
                    ex.messages.extend(log);
                    for (what, bytes, _) in files.reads.drain(..) {
                        ex.files_read.push((what, bytes));
                    }
                    match r {
                        Ok(p) => {
                            booted = Some((idx, p));
                            break;
                        }
                        Err(e) => why.push(e.to_string()),
                    }
                }
                match booted {
                    Some((idx, p)) => {
                        let (kind, kernel_bytes, initrd, cmdline) = match p {
                            Prepared::Linux { kernel, initrd, cmdline } => {
                                ("Linux bzImage", kernel.image().len() as u64, initrd, cmdline)
                            }
                            Prepared::Pvh { image, initrd, cmdline, .. } => {
                                ("PVH ELF", image.len() as u64, initrd, cmdline)
                            }
                        };
                        let title = choice.menu.entries[idx].display_title();
                        ex.steps.push((label.clone(), format!("{}: boots entry {title:?}", choice.menu.file)));
                        for w in choice.menu.env_writes_for(idx) {
                            ex.messages.push(format!(
                                "{}: the config saves {} to {}: {}",
                                w.at,
                                rxen_loader::config::grubenv::describe_changes(&w.vars),
                                w.file,
                                if choice.write_grubenv {
                                    "the loader would write it (write_grubenv)"
                                } else {
                                    "not written (the policy does not set write_grubenv)"
                                }
                            ));
                        }
                        ex.boot = Some(BootChoice {
                            step: label,
                            entry: Some(title),
                            kind: kind.into(),
                            kernel_bytes,
                            initrds: initrd.iter().map(|f| f.data.len() as u64).collect(),
                            cmdline,
                        });
                        break;
                    }
                    None => {
                        let w = if why.is_empty() { "no entry to boot".to_string() } else { why.join("; ") };
                        ex.steps.push((label, format!("failed: {}: {w}", choice.menu.file)));
                    }
                }
            }
            Err(e) => {
                search_failed = matches!(step.kind, rxen_loader::config::policy::StepKind::Search(_));
                ex.steps.push((label, format!("failed: {e}")));
            }
        }
    }
    Ok(ex)
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
