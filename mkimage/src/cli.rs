// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `rxen-mkimage` command line: `build`, `inspect`, `verify`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};

use crate::assemble::{self, MEMDISK_VOLUME, Memdisk, POLICY_PATH};
use crate::image::{self, ImageInfo};
use crate::symbols;
use rxen_loader::config::policy::{Policy, StepKind};

/// Where the loader is looked for when `--loader` is not given, after `pvh-boot` next to
/// the `rxen-mkimage` executable.
pub const SYSTEM_LOADER: &str = "/usr/lib/rxen/pvh-boot.bin";

/// Build, inspect and verify rxen boot images.
#[derive(Parser, Debug)]
#[command(name = "rxen-mkimage", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a boot image: the loader plus a memdisk holding a boot policy and files.
    Build(BuildArgs),
    /// Build a fleet's images from a TOML manifest ([defaults], then one [[image]] table
    /// each: name, kernel, initrd, cmdline or config, add), in parallel, into DIR with a
    /// SHA256SUMS; all or nothing: a failing image names its manifest line and the
    /// previous set stays.
    Batch {
        /// The manifest.
        manifest: PathBuf,
        /// The output directory (replaced atomically).
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// Threads (default: every core).
        #[arg(short, long, value_name = "N")]
        jobs: Option<usize>,
        /// Do not syncfs the new set before it replaces the old one.
        #[arg(long)]
        no_sync: bool,
        /// Leave out the loader's function names (as `build --no-symbols`).
        #[arg(long)]
        no_symbols: bool,
    },
    /// Describe an image (or a plain loader): ELF, Xen notes, image header, memdisk, policy.
    Inspect {
        /// The image.
        image: PathBuf,
    },
    /// Check an image: ELF layout, header, memdisk checksum, archive, policy, kernels.
    Verify {
        /// The image.
        image: PathBuf,
    },
    /// Say what a guest would boot from these disks: volumes, steps, the kernel, initrds and
    /// command line, computed by the loader's own code. Read-only; for a person on dom0.
    Explain(ExplainArgs),
    /// Make an ed25519 key pair for verified boot: NAME.key (secret, mode 0600) and
    /// NAME.pub (give it to `build --trust-key`). Never overwrites a key.
    Keygen {
        /// The key files' path without extension.
        #[arg(value_name = "NAME")]
        name: PathBuf,
        /// The public key's comment (default: NAME's file name).
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
    },
    /// Sign files for verified boot: FILE.sig beside each FILE (a guest's kernel and
    /// initrds, or its grub.cfg), by the secret key KEY.
    Sign {
        /// The secret key (NAME.key from keygen).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// The files to sign.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Name the loader functions at addresses an exception report printed (`at RIP 0x...`):
    /// from an image's own .rxen/symbols, or from the link map LOADER.map next to a plain
    /// loader (cargo writes target/release/pvh-boot.map).
    Symbolize {
        /// The image or plain loader that printed the report.
        #[arg(long, value_name = "PATH")]
        loader: Option<PathBuf>,
        /// Addresses, hexadecimal (0x optional).
        #[arg(required = true, value_name = "ADDR")]
        addrs: Vec<String>,
    },
}

/// `rxen-mkimage explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// A disk image, in the guest's order (xvda first). Repeat for more disks.
    #[arg(long = "disk", value_name = "IMG", required = true)]
    pub disks: Vec<PathBuf>,
    /// The rxen image the guest boots (default: the plain loader's generic policy).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<PathBuf>,
    /// The domain command line (xl extra=).
    #[arg(long, value_name = "STR", default_value = "")]
    pub cmdline: String,
    /// Name disks vda, vdb, ... (virtio) instead of xvda, xvdb, ... (Xen).
    #[arg(long)]
    pub virtio: bool,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Parse the disks in this process, unconfined: for debugging explain itself only (a
    /// hostile disk then meets dom0's full rights).
    #[arg(long)]
    pub no_sandbox: bool,
    /// The confined parser's CPU time limit, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = crate::sandbox::Limits::DEFAULT.cpu_secs,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub cpu_limit: u64,
    /// The confined parser's wall-clock limit, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = crate::sandbox::Limits::DEFAULT.wall_secs,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub time_limit: u64,
    /// The confined parser's address-space limit, in MiB (the kernel and initrds it reads
    /// are held in memory).
    #[arg(long, value_name = "MIB", default_value_t = crate::sandbox::Limits::DEFAULT.mem_mib,
          value_parser = clap::value_parser!(u64).range(64..))]
    pub mem_limit: u64,
}

/// `rxen-mkimage build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Write the image here (atomically: a temporary file in the same directory, renamed).
    #[arg(short, long, value_name = "IMAGE")]
    pub output: PathBuf,
    /// The plain loader (pvh-boot). Default: pvh-boot next to rxen-mkimage, else
    /// /usr/lib/rxen/pvh-boot.bin.
    #[arg(long, value_name = "PATH")]
    pub loader: Option<PathBuf>,
    /// Boot policy; stored as rxen.toml in the memdisk. A FILE named *.cfg is a GRUB
    /// script instead (a pvgrub2 memdisk config): stored as grub.cfg, with a policy whose
    /// config step runs it.
    #[arg(long, value_name = "FILE", conflicts_with = "kernel")]
    pub config: Option<PathBuf>,
    /// Add host file HOST to the memdisk at path GUEST (e.g. boot/vmlinuz=/tmp/vmlinuz).
    #[arg(long = "add", value_name = "GUEST=HOST", value_parser = parse_add)]
    pub add: Vec<AddSpec>,
    /// Shortcut: add HOST as vmlinuz and generate an rxen.toml booting it.
    #[arg(long, value_name = "HOST")]
    pub kernel: Option<PathBuf>,
    /// With --kernel: an initrd (initrd.img; several: initrd0.img, initrd1.img, ...).
    #[arg(long, value_name = "HOST", requires = "kernel")]
    pub initrd: Vec<PathBuf>,
    /// With --kernel: the kernel command line.
    #[arg(long, value_name = "STR", requires = "kernel")]
    pub cmdline: Option<String>,
    /// Leave out the loader's function names (.rxen/symbols, from the link map LOADER.map
    /// next to the loader), which its exception reports use to name RIP.
    #[arg(long)]
    pub no_symbols: bool,
    /// Trust this public key (NAME.pub from keygen) for the policy's [trust] rules: files
    /// from the guest's disks must carry a FILE.sig by one of these keys. Repeatable.
    #[arg(long = "trust-key", value_name = "PUB")]
    pub trust_key: Vec<PathBuf>,
}

/// One `--add GUEST=HOST`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddSpec {
    /// Path in the memdisk.
    pub guest: String,
    /// Host file.
    pub host: PathBuf,
}

fn parse_add(s: &str) -> Result<AddSpec, String> {
    let (guest, host) = s.split_once('=').ok_or("expected GUEST=HOST")?;
    if host.is_empty() {
        return Err("expected GUEST=HOST: HOST is empty".into());
    }
    let guest = assemble::normalize_path(guest).map_err(|e| e.to_string())?;
    Ok(AddSpec { guest, host: PathBuf::from(host) })
}

/// Run the tool with `args` (`args[0]` is the program name); returns the exit code.
/// Usage errors are reported by clap (exit code 2).
pub fn main_with_args(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let cli = Cli::parse_from(args);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rxen-mkimage: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Build(args) => build(&args),
        Command::Batch { manifest, output, jobs, no_sync, no_symbols } => {
            let threads = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let r = crate::batch::batch(&manifest, &output, threads, !no_sync, !no_symbols, &|| find_loader(None))?;
            eprintln!(
                "rxen-mkimage: {} images, {}, in {} (SHA256SUMS)",
                r.images,
                image::size_str(r.bytes),
                r.out.display()
            );
            Ok(())
        }
        Command::Inspect { image } => {
            let bytes = read(&image)?;
            let text = inspect(&image.display().to_string(), &bytes)?;
            print!("{text}");
            Ok(())
        }
        Command::Explain(a) => crate::explain::command(&a),
        Command::Keygen { name, comment } => {
            let (id, sec, publ) = crate::sign::keygen(&name, comment.as_deref())?;
            println!("key {id}: secret {} (keep it off the dom0s), public {}", sec.display(), publ.display());
            Ok(())
        }
        Command::Sign { key, files } => {
            for p in crate::sign::sign(&key, &files)? {
                println!("{}", p.display());
            }
            Ok(())
        }
        Command::Symbolize { loader, addrs } => {
            let path = find_loader(loader.as_deref())?;
            let table = function_table(&path)?;
            for a in addrs {
                let x = u64::from_str_radix(a.trim_start_matches("0x"), 16)
                    .map_err(|_| anyhow!("{a:?}: not a hexadecimal address"))?;
                match rxen_loader::platform::traps::symbolize(&table, x) {
                    Some((name, off)) => println!("{x:#x} {name}+{off:#x}"),
                    None => println!("{x:#x} ? (in no function of {})", path.display()),
                }
            }
            Ok(())
        }
        Command::Verify { image } => {
            let bytes = read(&image)?;
            let name = image.display().to_string();
            let note = verify(&bytes).map_err(|e| anyhow!("{name}: {e:#}"))?;
            println!("{name}: ok{note}");
            Ok(())
        }
    }
}

/// Read a whole file; errors name the file and give the OS error.
fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| path.display().to_string())
}

/// The loader to use: `--loader`, else `pvh-boot` next to this executable, else
/// [`SYSTEM_LOADER`].
fn find_loader(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    let mut tried = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().as_deref().and_then(Path::parent) {
        let p = dir.join("pvh-boot");
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p);
    }
    let p = PathBuf::from(SYSTEM_LOADER);
    if p.is_file() {
        return Ok(p);
    }
    tried.push(p);
    let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "pvh-boot: no loader found (tried {}): give --loader PATH \
         (cargo build --release -p rxen-loader builds target/release/pvh-boot)",
        tried.join(", ")
    )
}

/// Add host file `host` to the memdisk at `guest`, keeping the memdisk under its limit.
fn add_host_file(md: &mut Memdisk, guest: &str, host: &Path) -> Result<()> {
    let data = read(host)?;
    let total = md.content_len() + data.len() as u64;
    if total > image::MEMDISK_LIMIT {
        // Fail before reading more: the archive can only be larger than its contents.
        image::check_memdisk_size(total, image::MEMDISK_LIMIT).with_context(|| host.display().to_string())?;
    }
    md.add(guest, data, host.display().to_string())
}

/// The link map of `loader` (`LOADER.map`, which the loader's build writes), if there is
/// one that matches it: its function table goes into the memdisk. A missing map is
/// silently fine; one of another build is reported and left out.
pub(crate) fn add_symbols(md: &mut Memdisk, loader_path: &Path, loader: &[u8]) {
    let map_path = link_map_path(loader_path);
    let Ok(map) = fs::read_to_string(&map_path) else { return };
    let table = symbols::table_for(&map, loader);
    match table.and_then(|t| md.add(symbols::SYMBOLS_PATH, t.into_bytes(), map_path.display().to_string())) {
        Ok(()) => {}
        Err(e) => eprintln!("rxen-mkimage: {}: {e:#}; the image carries no function names", map_path.display()),
    }
}

/// The function table of an image (its .rxen/symbols) or of a plain loader (from its
/// link map, checked against it).
fn function_table(path: &Path) -> Result<String> {
    let name = path.display().to_string();
    let bytes = read(path)?;
    let info = image::read_image(&bytes).context(name.clone())?;
    if let Some(md) = info.memdisk
        && let Some(t) = lookup(&memdisk_entries(md.bytes)?, symbols::SYMBOLS_PATH)
    {
        return String::from_utf8(t.to_vec()).map_err(|_| anyhow!("{name}: {}: not UTF-8", symbols::SYMBOLS_PATH));
    }
    let map_path = link_map_path(path);
    let map = fs::read_to_string(&map_path).with_context(|| {
        format!("{name}: no {} in its memdisk, and no link map {}", symbols::SYMBOLS_PATH, map_path.display())
    })?;
    symbols::table_for(&map, &bytes).context(map_path.display().to_string())
}

/// Where the loader's build puts the link map of `loader`: `LOADER.map` beside it.
fn link_map_path(loader: &Path) -> PathBuf {
    let mut p = loader.as_os_str().to_owned();
    p.push(".map");
    PathBuf::from(p)
}

/// `rxen-mkimage build`.
pub fn build(args: &BuildArgs) -> Result<()> {
    let loader_path = find_loader(args.loader.as_deref())?;
    let loader_name = loader_path.display().to_string();
    let loader = read(&loader_path)?;
    // Refuse a bad loader before reading the inputs.
    image::read_image(&loader).context(loader_name.clone())?;

    let mut md = Memdisk::new();
    if let Some(config) = &args.config {
        if config.extension().is_some_and(|e| e == "cfg") {
            add_host_file(&mut md, "grub.cfg", config)?;
            md.add(POLICY_PATH, assemble::GRUB_CFG_POLICY.as_bytes().to_vec(), "rxen.toml (generated for grub.cfg)")?;
        } else {
            add_host_file(&mut md, POLICY_PATH, config)?;
        }
    }
    if let Some(kernel) = &args.kernel {
        add_host_file(&mut md, "vmlinuz", kernel)?;
        let names = assemble::initrd_names(args.initrd.len());
        for (name, host) in names.iter().zip(&args.initrd) {
            add_host_file(&mut md, name, host)?;
        }
        let text = assemble::generated_policy(&names, args.cmdline.as_deref().unwrap_or(""))?;
        md.add(POLICY_PATH, text.into_bytes(), "rxen.toml (generated)")?;
    }
    for a in &args.add {
        add_host_file(&mut md, &a.guest, &a.host)?;
    }
    if !args.trust_key.is_empty() {
        let (_, text) = crate::sign::keys_file(&args.trust_key)?;
        md.add(rxen_loader::trust::KEYS_FILE, text.into_bytes(), "--trust-key")?;
    }
    let policy = md.check_policy()?;
    crate::sign::check_trust(&policy, md.get(rxen_loader::trust::KEYS_FILE).is_some())?;
    if !args.no_symbols {
        add_symbols(&mut md, &loader_path, &loader);
    }

    let memdisk = md.finish()?;
    let out_name = args.output.display().to_string();
    image::check_memdisk_size(memdisk.len() as u64, image::MEMDISK_LIMIT).context(out_name)?;
    let img = image::build_image(&loader, &memdisk).context(loader_name)?;
    write_atomic(&args.output, &img)
}

/// Write `data` to `path` atomically: `.NAME.tmp.PID` in the same directory, fsync,
/// rename, mode 0755. On error neither the output nor the temporary file is left.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic_mode(path, data, 0o755)
}

/// [`write_atomic`] with file mode `mode`.
pub fn write_atomic_mode(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let name = path.display().to_string();
    let file_name = path.file_name().ok_or_else(|| anyhow!("{name}: not a file name"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp_name = OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);

    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(data)?;
        // The umask may have cleared bits: `mode` regardless.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    };
    // A temporary file of ours from an earlier run with the same pid is stale.
    let _ = fs::remove_file(&tmp);
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e).context(name);
    }
    // Make the rename durable; failing here does not undo the (complete) image.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The memdisk's entries: (path, contents), in archive order.
pub fn memdisk_entries(bytes: &[u8]) -> Result<Vec<(String, &[u8])>> {
    let archive = rxen_memdisk::ustar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries() {
        let entry = entry.map_err(|e| anyhow!("memdisk: {e}"))?;
        out.push((entry.path().to_string(), entry.data()));
    }
    Ok(out)
}

fn lookup<'a>(entries: &[(String, &'a [u8])], path: &str) -> Option<&'a [u8]> {
    let path = path.trim_start_matches('/');
    entries.iter().find(|(p, _)| p.trim_start_matches('/') == path).map(|(_, d)| *d)
}

/// One line describing a kernel step.
fn step_summary(policy: &Policy) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, step) in policy.steps.iter().enumerate() {
        let name = step.name.as_deref().unwrap_or("(unnamed)");
        let what = match &step.kind {
            StepKind::Kernel(k) => {
                let mut s = format!("kernel {}", k.kernel);
                for i in &k.initrd {
                    let _ = write!(s, ", initrd {i}");
                }
                let _ = write!(s, ", cmdline {:?}", k.cmdline);
                pins_summary(&mut s, &k.pins);
                s
            }
            StepKind::Search(key) => format!("search {key} (the root volume for the steps after)"),
            StepKind::Config(c) => {
                let files =
                    if c.files.is_empty() { "the default search order".to_string() } else { c.files.join(", ") };
                let mut s = format!("the guest's boot configuration ({files}), menu at most {} s", c.max_timeout);
                if let Some(e) = &c.entry {
                    let _ = write!(s, ", entry {e:?}");
                }
                s += if c.write_grubenv { ", writes grubenv" } else { ", grubenv read-only" };
                pins_summary(&mut s, &c.pins);
                s
            }
        };
        lines.push(format!("{}. {name} (line {}): {what}", i + 1, step.line));
    }
    lines
}

/// `, pins: kernel sha256 ..., initrd 1 ...` for a step with pins.
fn pins_summary(s: &mut String, p: &rxen_loader::config::policy::Pins) {
    if p.is_empty() {
        return;
    }
    s.push_str(", pins:");
    if let Some(d) = &p.config {
        let _ = write!(s, " config sha256 {}", hex(d));
    }
    if let Some(d) = &p.kernel {
        let _ = write!(s, " kernel sha256 {}", hex(d));
    }
    for (i, d) in p.initrd.iter().enumerate() {
        let _ = write!(s, " initrd {} sha256 {}", i + 1, hex(d));
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `rxen-mkimage inspect`: a description of `bytes` (an image or a plain loader).
pub fn inspect(name: &str, bytes: &[u8]) -> Result<String> {
    let info = image::read_image(bytes).context(name.to_owned())?;
    let mut o = String::new();
    describe_elf(&mut o, name, &info);

    let _ = writeln!(o, "image header (at {:#x}, file offset {:#x}):", rxen_memdisk::HEADER_PADDR, info.header_offset);
    let Some(md) = info.memdisk else {
        let _ = writeln!(o, "  no memdisk: a plain loader (it boots with its built-in generic policy)");
        return Ok(o);
    };
    let h = &info.header;
    let _ = writeln!(o, "  memdisk paddr {:#x}, {} bytes", h.memdisk_paddr, h.memdisk_len);
    let ok = info.checksum_ok() == Some(true);
    let _ = writeln!(
        o,
        "  sha256 {} ({})",
        hex(&h.sha256),
        if ok { "matches the memdisk" } else { "DOES NOT MATCH the memdisk: the image is corrupt" }
    );

    let entries = match memdisk_entries(md.bytes) {
        Ok(e) => e,
        Err(e) => {
            let _ = writeln!(o, "memdisk: unreadable: {e:#}");
            return Ok(o);
        }
    };
    let _ = writeln!(o, "memdisk ({} files):", entries.len());
    let width = entries.iter().map(|(_, d)| d.len().to_string().len()).max().unwrap_or(1);
    let kernels = policy_kernels(&entries);
    for (path, data) in &entries {
        let _ = write!(o, "  {:>width$}  {path}", data.len());
        match rxen_loader::kernel::detect(data) {
            Ok(k) => {
                let _ = write!(o, "  [{k}]");
            }
            Err(e) if kernels.iter().any(|k| k == path.trim_start_matches('/')) => {
                let _ = write!(o, "  [not a bootable kernel: {e}]");
            }
            Err(_) => {}
        }
        o.push('\n');
    }

    match lookup(&entries, POLICY_PATH) {
        None => {
            let _ = writeln!(o, "policy: no {POLICY_PATH} in the memdisk");
        }
        Some(text) => {
            let _ = writeln!(o, "policy ({POLICY_PATH}):");
            for line in String::from_utf8_lossy(text).lines() {
                let _ = writeln!(o, "  | {line}");
            }
            match assemble::parse_policy_bytes(text, POLICY_PATH) {
                Ok(policy) => {
                    let _ = writeln!(o, "steps:");
                    for line in step_summary(&policy) {
                        let _ = writeln!(o, "  {line}");
                    }
                    describe_trust(&mut o, &policy, lookup(&entries, rxen_loader::trust::KEYS_FILE));
                }
                Err(e) => {
                    let _ = writeln!(o, "policy error: {e:#}");
                }
            }
        }
    }
    Ok(o)
}

/// The memdisk paths the memdisk's policy names as kernels.
fn policy_kernels(entries: &[(String, &[u8])]) -> Vec<String> {
    let Some(policy) = lookup(entries, POLICY_PATH).and_then(|t| assemble::parse_policy_bytes(t, POLICY_PATH).ok())
    else {
        return Vec::new();
    };
    policy
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Kernel(k) => assemble::memdisk_path(&k.kernel).map(str::to_owned),
            _ => None,
        })
        .collect()
}

fn describe_elf(o: &mut String, name: &str, info: &ImageInfo<'_>) {
    let _ = writeln!(o, "{name}: ELF64 x86_64 EXEC, entry {:#x}", info.entry);
    let _ = writeln!(o, "program headers ({} at file offset {:#x}):", info.phdrs.len(), info.phoff);
    let _ = writeln!(
        o,
        "  {:<12} {:>10} {:>18} {:>10} {:>10} {:<5}",
        "type", "offset", "paddr", "filesz", "memsz", "flags"
    );
    for (i, p) in info.phdrs.iter().enumerate() {
        let mark = match &info.memdisk {
            Some(m) if m.phdr_index == i => "  (memdisk)",
            _ => "",
        };
        let _ = writeln!(
            o,
            "  {:<12} {:>#10x} {:>#18x} {:>#10x} {:>#10x} {:<5}{mark}",
            image::type_name(p.p_type),
            p.p_offset,
            p.p_paddr,
            p.p_filesz,
            p.p_memsz,
            image::flags_str(p.p_flags)
        );
    }
    match info.entry() {
        Some(e) => {
            let _ = writeln!(o, "entry: {e}");
        }
        None => {
            let _ = writeln!(o, "entry: none (neither PVH nor PV)");
        }
    }
    if info.xen_notes.is_empty() {
        let _ = writeln!(o, "Xen notes: none");
    } else {
        let _ = writeln!(o, "Xen notes:");
        for n in &info.xen_notes {
            let _ = writeln!(o, "  {n}");
        }
    }
}

/// The `trust:` part of inspect: the rules and the keys the image carries.
fn describe_trust(o: &mut String, policy: &Policy, keys: Option<&[u8]>) {
    let t = &policy.trust;
    let keys = keys.map(|k| rxen_loader::trust::parse_keys(&String::from_utf8_lossy(k)));
    if !t.any() && keys.is_none() {
        let _ = writeln!(o, "trust: none (no [trust] table: files from the guest's disks are not verified)");
        return;
    }
    let _ = writeln!(o, "trust: {t}");
    match keys {
        None => {
            let _ = writeln!(o, "  no keys ({})", rxen_loader::trust::KEYS_FILE);
        }
        Some(Err(e)) => {
            let _ = writeln!(o, "  keys: unreadable: {e}");
        }
        Some(Ok(keys)) => {
            for k in keys {
                let _ = writeln!(o, "  key {} ed25519 {} {}", k.id, hex(&k.public), k.comment);
            }
        }
    }
}

/// `rxen-mkimage verify`: `Ok(note)` when `bytes` is a sound image (`note` is appended
/// to "ok"), else the first problem.
pub fn verify(bytes: &[u8]) -> Result<String> {
    let info = image::read_image(bytes)?;
    image::check_image(&info)?;
    let Some(md) = info.memdisk else {
        return Ok(" (a plain loader: no memdisk)".to_owned());
    };
    let entries = memdisk_entries(md.bytes)?;
    let text = lookup(&entries, POLICY_PATH).ok_or_else(|| anyhow!("the memdisk has no {POLICY_PATH}"))?;
    let policy = assemble::parse_policy_bytes(text, POLICY_PATH)?;
    assemble::check_policy_files(&policy, POLICY_PATH, |p| {
        lookup(&entries, p).map(|d| (d, format!("({MEMDISK_VOLUME})/{p}")))
    })?;
    let keys = lookup(&entries, rxen_loader::trust::KEYS_FILE);
    if let Some(k) = keys {
        let text = std::str::from_utf8(k).map_err(|_| anyhow!("{}: not UTF-8", rxen_loader::trust::KEYS_FILE))?;
        rxen_loader::trust::parse_keys(text).map_err(|e| anyhow!("{}: {e}", rxen_loader::trust::KEYS_FILE))?;
    }
    if (policy.trust.signatures || policy.trust.configs) && keys.is_none() {
        bail!("{POLICY_PATH}: [trust] asks for signatures but the memdisk has no {}", rxen_loader::trust::KEYS_FILE);
    }
    Ok(String::new())
}
