// SPDX-License-Identifier: MIT OR Apache-2.0
//! rxen: start Xen guests that boot with rxen, from one xl-style config, on three
//! backends: `xl` on a dom0, QEMU for local runs, libvirt XML (the libxl driver) for
//! fleets. See docs/toolstack.md.

pub mod libvirt;
pub mod qemu;
pub mod xlcfg;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand, ValueEnum};

/// Start Xen guests that boot with rxen: through xl on a dom0, under QEMU, or as libvirt XML.
#[derive(Parser, Debug)]
#[command(name = "rxen", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// xl on this dom0.
    Xl,
    /// QEMU on this machine (microvm or q35; KVM when usable, else TCG).
    Qemu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Accel {
    /// QEMU's TCG: works everywhere.
    Tcg,
    /// KVM (/dev/kvm must work: a nested or broken KVM can hang the guest).
    Kvm,
    /// KVM when /dev/kvm opens, else TCG.
    Auto,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start the guest a config describes (xl.cfg syntax).
    Create {
        cfg: PathBuf,
        /// Attach to its console (xl create -c; always, under QEMU).
        #[arg(short = 'c')]
        console: bool,
        #[arg(long, value_enum, default_value = "xl")]
        backend: Backend,
        /// QEMU machine.
        #[arg(long, default_value = "microvm")]
        machine: String,
        /// QEMU accelerator.
        #[arg(long, value_enum, default_value = "tcg")]
        accel: Accel,
    },
    /// Attach to a running guest's console (xl console).
    Console { name: String },
    /// Stop a guest at once (xl destroy).
    Destroy { name: String },
    /// List the running guests (xl list).
    List,
    /// Print libvirt domain XML (libxl driver) for a config.
    LibvirtXml { cfg: PathBuf },
    /// Boot an image under QEMU: the one-liner for trying it.
    Run {
        /// The rxen image (or plain pvh-boot.bin).
        #[arg(long, value_name = "IMG")]
        image: PathBuf,
        /// A disk image for the guest (virtio-blk; repeat for more).
        #[arg(long = "disk", value_name = "FILE")]
        disks: Vec<PathBuf>,
        /// The domain command line.
        #[arg(long, default_value = "console=ttyS0")]
        cmdline: String,
        /// An initrd for the domain (module 0).
        #[arg(long, value_name = "FILE")]
        initrd: Option<PathBuf>,
        /// Memory in MiB.
        #[arg(long, default_value_t = 512)]
        memory: u64,
        #[arg(long, default_value = "microvm")]
        machine: String,
        /// QEMU accelerator.
        #[arg(long, value_enum, default_value = "tcg")]
        accel: Accel,
    },
}

type Res<T> = Result<T, String>;

fn load(cfg: &Path) -> Res<xlcfg::XlConfig> {
    let name = cfg.display();
    let text = std::fs::read_to_string(cfg).map_err(|e| format!("{name}: {e}"))?;
    xlcfg::parse(&text).map_err(|e| format!("{name}:{e}"))
}

fn warn_unknown(cfg: &Path, c: &xlcfg::XlConfig, what: &str) {
    for (line, key) in &c.unknown {
        eprintln!("rxen: {}:{line}: {key}: {what}", cfg.display());
    }
}

/// On a dom0 with xl: Ok; else why not, plainly.
fn dom0() -> Res<()> {
    let caps = std::fs::read_to_string("/proc/xen/capabilities").unwrap_or_default();
    if !caps.contains("control_d") {
        return Err("not on a Xen dom0 (no control_d in /proc/xen/capabilities): use `rxen create --backend qemu`, \
                    or `rxen libvirt-xml` for a libvirt host"
            .into());
    }
    if Command::new("xl").arg("info").output().is_err() {
        return Err("xl is not installed here (apt install xen-utils)".into());
    }
    Ok(())
}

fn status(mut cmd: Command) -> Res<ExitCode> {
    let prog = format!("{:?}", cmd.get_program());
    let s = cmd.status().map_err(|e| format!("{prog}: {e}"))?;
    Ok(match s.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(c.clamp(1, 255) as u8),
        None => ExitCode::from(1),
    })
}

fn xl(args: &[&str]) -> Res<ExitCode> {
    dom0()?;
    let mut c = Command::new("xl");
    c.args(args);
    status(c)
}

/// Run QEMU for `c`; the guest's fate, in words, on stderr; QEMU's status as ours.
fn run_qemu(c: &xlcfg::XlConfig, machine: &str, accel: Accel) -> Res<ExitCode> {
    let kvm = match accel {
        Accel::Tcg => false,
        Accel::Kvm => true,
        Accel::Auto => qemu::kvm_usable(),
    };
    let argv = qemu::command(c, machine, kvm)?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    let s = cmd.status().map_err(|e| format!("{}: {e} (apt install qemu-system-x86)", argv[0]))?;
    let code = s.code().unwrap_or(1);
    eprintln!("rxen: {}: {}", c.name, qemu::describe_exit(code));
    Ok(if code == 0 { ExitCode::SUCCESS } else { ExitCode::from(code.clamp(1, 255) as u8) })
}

/// Run a parsed command line; errors are one line for stderr.
pub fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Cmd::Create { cfg, console, backend: Backend::Xl, .. } => {
            let c = load(&cfg)?;
            warn_unknown(&cfg, &c, "not read by rxen; xl reads it");
            let path = cfg.to_str().ok_or("the config's path is not UTF-8")?;
            if console { xl(&["create", "-c", path]) } else { xl(&["create", path]) }
        }
        Cmd::Create { cfg, backend: Backend::Qemu, machine, accel, .. } => {
            let c = load(&cfg)?;
            warn_unknown(&cfg, &c, "ignored under QEMU");
            run_qemu(&c, &machine, accel)
        }
        Cmd::Console { name } => xl(&["console", &name]),
        Cmd::Destroy { name } => xl(&["destroy", &name]),
        Cmd::List => xl(&["list"]),
        Cmd::LibvirtXml { cfg } => {
            let c = load(&cfg)?;
            warn_unknown(&cfg, &c, "not in the libvirt XML");
            let is_block = |p: &str| {
                use std::os::unix::fs::FileTypeExt;
                std::fs::metadata(p).is_ok_and(|m| m.file_type().is_block_device()) || p.starts_with("/dev/")
            };
            let x = libvirt::domain_xml(&c, &is_block).map_err(|e| format!("{}: {e}", cfg.display()))?;
            print!("{x}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run { image, disks, cmdline, initrd, memory, machine, accel } => {
            let s = |p: &Path| p.to_str().map(str::to_owned).ok_or(format!("{}: path is not UTF-8", p.display()));
            if !image.is_file() {
                return Err(format!("{}: no such image", image.display()));
            }
            let mut c = xlcfg::XlConfig {
                name: image.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                kind: "pvh".into(),
                kernel: Some(s(&image)?),
                ramdisk: initrd.as_deref().map(s).transpose()?,
                cmdline,
                memory_mib: memory,
                vcpus: 1,
                ..Default::default()
            };
            for (i, d) in disks.iter().enumerate() {
                let vdev = format!("xvd{}", (b'a' + (i as u8 % 26)) as char);
                c.disks.push(xlcfg::Disk { target: s(d)?, format: "raw".into(), vdev, readonly: true, cdrom: false });
            }
            run_qemu(&c, &machine, accel)
        }
    }
}
