// SPDX-License-Identifier: MIT OR Apache-2.0
//! `rxen-mkimage batch MANIFEST -o DIR`: a fleet's images from one manifest, in parallel,
//! reproducible, all or nothing.
//!
//! ```toml
//! [defaults]                 # every key optional; an image's own keys win
//! loader = "/usr/lib/rxen/pvh-boot.bin"
//! kernel = "vmlinuz"         # paths relative to the manifest's directory
//! initrd = ["initrd.img"]
//! cmdline = "console=hvc0"
//! add = { "etc/motd" = "motd" }   # memdisk path = host file
//! trust_key = ["fleet.pub"]  # keys for a policy's [trust] rules (build --trust-key)
//!
//! [[image]]
//! name = "web1"              # DIR/web1.img
//! cmdline = "console=hvc0 root=/dev/xvda1 fleet.host=web1"
//!
//! [[image]]
//! name = "db1"
//! config = "db1.toml"        # a policy (or a GRUB script, *.cfg) instead of kernel/cmdline
//! ```
//!
//! Each image is what `rxen-mkimage build` makes from the same inputs, byte for byte. Every
//! input file is read once. The memdisk ends with its policy (the writer puts `rxen.toml`
//! last), so images that differ only in their policy share the archive and the SHA-256
//! state up to it: the shared part is hashed once, each image hashes its policy and is
//! written from the shared bytes. The set is built in `DIR.new-PID` and swapped in
//! atomically (renameat2 RENAME_EXCHANGE) with a `SHA256SUMS`; a failing image names its
//! manifest line and leaves the previous set as it was.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::assemble::{self, Memdisk, POLICY_PATH};
use crate::image;

/// The manifest's keys, for defaults and images alike.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: Option<String>,
    loader: Option<PathBuf>,
    kernel: Option<PathBuf>,
    initrd: Option<Vec<PathBuf>>,
    cmdline: Option<String>,
    config: Option<PathBuf>,
    #[serde(default)]
    add: BTreeMap<String, PathBuf>,
    /// Public keys for the policy's [trust] rules (`build --trust-key`).
    trust_key: Option<Vec<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    defaults: Spec,
    #[serde(default)]
    image: Vec<toml::Spanned<Spec>>,
}

/// What an image's memdisk holds besides its policy: loader, kernel, initrds, added files,
/// trusted keys.
type SharedKey = (PathBuf, Option<PathBuf>, Vec<PathBuf>, BTreeMap<String, PathBuf>, Vec<PathBuf>);
/// An image's SHA-256 and size, once built.
type Built = Result<([u8; 32], u64)>;

/// One image to build: its defaults applied, paths made absolute.
#[derive(Clone, Debug)]
struct Job {
    line: usize,
    name: String,
    loader: PathBuf,
    kernel: Option<PathBuf>,
    initrd: Vec<PathBuf>,
    cmdline: String,
    config: Option<PathBuf>,
    add: BTreeMap<String, PathBuf>,
    trust_key: Vec<PathBuf>,
}

impl Job {
    /// What the memdisk holds besides the policy: images with the same key share it.
    fn shared_key(&self) -> Option<SharedKey> {
        // A GRUB script goes in as grub.cfg, not only rxen.toml: built on its own.
        if self.config.as_ref().is_some_and(|c| c.extension().is_some_and(|e| e == "cfg")) {
            return None;
        }
        Some((self.loader.clone(), self.kernel.clone(), self.initrd.clone(), self.add.clone(), self.trust_key.clone()))
    }
}

/// What `batch` did.
#[derive(Debug)]
pub struct BatchReport {
    pub images: usize,
    pub bytes: u64,
    pub out: PathBuf,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

fn parse(manifest: &Path, default_loader: &dyn Fn() -> Result<PathBuf>) -> Result<Vec<Job>> {
    let mname = manifest.display().to_string();
    let text = fs::read_to_string(manifest).with_context(|| mname.clone())?;
    let m: Manifest = toml::from_str(&text).map_err(|e| {
        let at = e.span().map(|s| format!(":{}", line_of(&text, s.start))).unwrap_or_default();
        anyhow!("{mname}{at}: {}", e.message())
    })?;
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let abs = |p: &PathBuf| if p.is_absolute() { p.clone() } else { dir.join(p) };
    if m.image.is_empty() {
        bail!("{mname}: no [[image]] tables");
    }
    let d = &m.defaults;
    let mut jobs = Vec::new();
    let mut names = HashMap::new();
    for s in &m.image {
        let line = line_of(&text, s.span().start);
        let at = |msg: String| anyhow!("{mname}:{line}: {msg}");
        let i = s.get_ref();
        let name = i.name.clone().ok_or_else(|| at("image without a name".into()))?;
        if name.is_empty() || name.starts_with('.') || name.contains('/') || name == "SHA256SUMS" {
            return Err(at(format!("image name {name:?}: not a plain file name")));
        }
        if let Some(prev) = names.insert(name.clone(), line) {
            return Err(at(format!("image {name:?} is also at line {prev}")));
        }
        let config = i.config.as_ref().map(&abs);
        // An image's config replaces the default kernel/cmdline, and the other way round.
        let (kernel, initrd, cmdline, config) = if config.is_some() {
            (None, Vec::new(), String::new(), config)
        } else if let Some(k) = i.kernel.as_ref().or(if i.config.is_none() { d.kernel.as_ref() } else { None }) {
            let initrd = i.initrd.as_ref().or(d.initrd.as_ref()).cloned().unwrap_or_default();
            let cmdline = i.cmdline.as_ref().or(d.cmdline.as_ref()).cloned().unwrap_or_default();
            (Some(abs(k)), initrd.iter().map(&abs).collect(), cmdline, None)
        } else if let Some(c) = d.config.as_ref() {
            (None, Vec::new(), String::new(), Some(abs(c)))
        } else {
            return Err(at(format!("image {name:?}: no kernel and no config (here or in [defaults])")));
        };
        let loader = match i.loader.as_ref().or(d.loader.as_ref()) {
            Some(l) => abs(l),
            None => default_loader()?,
        };
        let mut add: BTreeMap<String, PathBuf> = d.add.iter().map(|(k, v)| (k.clone(), abs(v))).collect();
        add.extend(i.add.iter().map(|(k, v)| (k.clone(), abs(v))));
        let trust_key = i.trust_key.as_ref().or(d.trust_key.as_ref()).map(|v| v.iter().map(&abs).collect());
        let trust_key = trust_key.unwrap_or_default();
        jobs.push(Job { line, name, loader, kernel, initrd, cmdline, config, add, trust_key });
    }
    Ok(jobs)
}

/// Files read once each, shared by every image that names them.
#[derive(Default)]
struct Inputs {
    files: Mutex<HashMap<PathBuf, Arc<Vec<u8>>>>,
}

impl Inputs {
    fn get(&self, p: &Path) -> Result<Arc<Vec<u8>>> {
        if let Some(d) = self.files.lock().unwrap().get(p) {
            return Ok(d.clone());
        }
        let d = Arc::new(fs::read(p).with_context(|| p.display().to_string())?);
        Ok(self.files.lock().unwrap().entry(p.to_owned()).or_insert(d).clone())
    }
}

/// The memdisk of `job` without its policy, as `build` would assemble it.
fn memdisk_without_policy(job: &Job, inputs: &Inputs) -> Result<Memdisk> {
    let mut md = Memdisk::new();
    if let Some(k) = &job.kernel {
        md.add("vmlinuz", inputs.get(k)?.to_vec(), k.display().to_string())?;
        for (n, h) in assemble::initrd_names(job.initrd.len()).iter().zip(&job.initrd) {
            md.add(n, inputs.get(h)?.to_vec(), h.display().to_string())?;
        }
    }
    if let Some(c) = &job.config
        && c.extension().is_some_and(|e| e == "cfg")
    {
        md.add("grub.cfg", inputs.get(c)?.to_vec(), c.display().to_string())?;
    }
    for (g, h) in &job.add {
        md.add(g, inputs.get(h)?.to_vec(), h.display().to_string())?;
    }
    if !job.trust_key.is_empty() {
        let (_, text) = crate::sign::keys_file(&job.trust_key)?;
        md.add(rxen_loader::trust::KEYS_FILE, text.into_bytes(), "trust_key")?;
    }
    Ok(md)
}

/// The policy text of `job` and how to name it.
fn policy(job: &Job, inputs: &Inputs) -> Result<(Vec<u8>, String)> {
    match &job.config {
        Some(c) if c.extension().is_some_and(|e| e == "cfg") => {
            Ok((assemble::GRUB_CFG_POLICY.as_bytes().to_vec(), "rxen.toml (generated for grub.cfg)".into()))
        }
        Some(c) => Ok((inputs.get(c)?.to_vec(), c.display().to_string())),
        None => {
            let names = assemble::initrd_names(job.initrd.len());
            let text = assemble::generated_policy(&names, &job.cmdline)?;
            Ok((text.into_bytes(), "rxen.toml (generated)".into()))
        }
    }
}

/// A group's shared part: the loader, the memdisk archive before the policy, its hash
/// state, and the files for checking each policy.
struct Shared {
    loader: Arc<Vec<u8>>,
    loader_path: PathBuf,
    prefix: Vec<u8>,
    state: Sha256,
    files: Memdisk,
}

fn shared(job: &Job, inputs: &Inputs, symbols: bool) -> Result<Shared> {
    let loader = inputs.get(&job.loader)?;
    image::read_image(&loader).with_context(|| job.loader.display().to_string())?;
    let mut md = memdisk_without_policy(job, inputs)?;
    let files = md.clone();
    // The loader's function names, as `build` adds them.
    if symbols {
        crate::cli::add_symbols(&mut md, &job.loader, &loader);
    }
    let mut prefix = md.finish()?;
    // finish() ends the archive with two zero blocks; the policy's entry goes before them.
    prefix.truncate(prefix.len().saturating_sub(1024));
    let mut state = Sha256::new();
    state.update(&prefix);
    Ok(Shared { loader, loader_path: job.loader.clone(), prefix, state, files })
}

/// Build `job` on top of `sh` into `dir`: the image's SHA-256 and size.
fn build_one(job: &Job, sh: &Shared, inputs: &Inputs, dir: &Path) -> Result<([u8; 32], u64)> {
    let (text, source) = policy(job, inputs)?;
    let pol = assemble::parse_policy_bytes(&text, &source)?;
    assemble::check_policy_files(&pol, &source, |p| sh.files.get(p).map(|f| (&f.data[..], f.source.clone())))?;
    crate::sign::check_trust(&pol, sh.files.get(rxen_loader::trust::KEYS_FILE).is_some())?;
    // The policy's archive entry and the end blocks: an archive of just the policy.
    let mut tail_md = rxen_memdisk_writer::MemdiskBuilder::new();
    tail_md.add_file(POLICY_PATH, text).map_err(|e| anyhow!("{POLICY_PATH}: {e}"))?;
    let tail = tail_md.finish();
    let md_len = (sh.prefix.len() + tail.len()) as u64;
    let mut st = sh.state.clone();
    st.update(&tail);
    let parts = image::image_parts(&sh.loader, md_len, st.finalize().into(), image::MEMDISK_LIMIT)
        .with_context(|| sh.loader_path.display().to_string())?;
    let path = dir.join(format!("{}.img", job.name));
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o755).open(&path)?;
    let mut sum = Sha256::new();
    for piece in [&parts.head[..], &sh.prefix, &tail, &parts.tail] {
        f.write_all(piece)?;
        sum.update(piece);
    }
    f.set_permissions(fs::Permissions::from_mode(0o755))?;
    let len = (parts.head.len() + sh.prefix.len() + tail.len() + parts.tail.len()) as u64;
    Ok((sum.finalize().into(), len))
}

/// Exchange `a` and `b` atomically (both exist).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two NUL-terminated paths that live across the call; renameat2 only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Build every image of `manifest` into `out` with `jobs` threads.
/// With `sync`, the new set is on disk (syncfs) before it replaces the old one; with
/// `symbols`, each image carries the loader's function names (as `build` without
/// `--no-symbols`).
pub fn batch(
    manifest: &Path,
    out: &Path,
    threads: usize,
    sync: bool,
    symbols: bool,
    default_loader: &dyn Fn() -> Result<PathBuf>,
) -> Result<BatchReport> {
    let jobs = parse(manifest, default_loader)?;
    let mname = manifest.display().to_string();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let base = out.file_name().ok_or_else(|| anyhow!("{}: not a directory name", out.display()))?;
    let tmp = parent.join(format!(".{}.new-{}", base.to_string_lossy(), std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| tmp.display().to_string())?;
    let cleanup = |e: anyhow::Error| {
        let _ = fs::remove_dir_all(&tmp);
        e
    };

    let inputs = Inputs::default();
    // Groups of images sharing everything but their policy: each group's shared part is
    // built once (`firsts[g]` is its first image).
    let mut firsts = Vec::new();
    let mut by_key = HashMap::new();
    let group_of: Vec<usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let new = |firsts: &mut Vec<usize>| {
                firsts.push(i);
                firsts.len() - 1
            };
            match j.shared_key() {
                Some(k) => *by_key.entry(k).or_insert_with(|| new(&mut firsts)),
                None => new(&mut firsts),
            }
        })
        .collect();
    let mut shared_parts = Vec::with_capacity(firsts.len());
    for &first in &firsts {
        let j = &jobs[first];
        let sh = shared(j, &inputs, symbols)
            .map_err(|e| cleanup(anyhow!("{mname}:{}: image {:?}: {e:#}", j.line, j.name)))?;
        shared_parts.push(sh);
    }

    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(jobs.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} images {elapsed_precise} {msg}")
                .expect("a valid template"),
        );
        b
    });
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Vec<Mutex<Option<Built>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs.len() || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = build_one(&jobs[i], &shared_parts[group_of[i]], &inputs, &tmp);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    *results[i].lock().unwrap() = Some(r);
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    match &bar {
                        Some(b) => b.inc(1),
                        None => eprintln!("rxen-mkimage: built {}.img ({n}/{})", jobs[i].name, jobs.len()),
                    }
                }
            });
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut sums = String::new();
    let mut bytes = 0;
    for (j, r) in jobs.iter().zip(results) {
        match r.into_inner().unwrap() {
            Some(Ok((sha, len))) => {
                bytes += len;
                let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
                sums.push_str(&format!("{hex}  {}.img\n", j.name));
            }
            Some(Err(e)) => return Err(cleanup(anyhow!("{mname}:{}: image {:?}: {e:#}", j.line, j.name))),
            None => {} // not built: another image failed first
        }
    }
    if failed.load(Ordering::Relaxed) {
        return Err(cleanup(anyhow!("{mname}: an image failed")));
    }
    fs::write(tmp.join("SHA256SUMS"), sums).map_err(|e| cleanup(e.into()))?;
    // Everything on disk before the set appears: one syncfs for the whole set.
    if sync {
        let d = fs::File::open(&tmp).map_err(|e| cleanup(e.into()))?;
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs on a descriptor this function owns for the call's duration.
        if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
            return Err(cleanup(anyhow!("{}: syncfs: {}", tmp.display(), std::io::Error::last_os_error())));
        }
    }
    if out.exists() {
        exchange(&tmp, out).map_err(|e| cleanup(anyhow!("{}: swapping in the new set: {e}", out.display())))?;
        // `tmp` now holds the previous set.
        fs::remove_dir_all(&tmp).with_context(|| tmp.display().to_string())?;
    } else {
        fs::rename(&tmp, out).map_err(|e| cleanup(anyhow!("{}: {e}", out.display())))?;
    }
    if let Ok(d) = fs::File::open(&parent) {
        let _ = d.sync_all();
    }
    Ok(BatchReport { images: jobs.len(), bytes, out: out.to_owned() })
}
