// SPDX-License-Identifier: MIT OR Apache-2.0
//! The policy's `config` step: read the guest's own boot configuration (grub.cfg, BLS,
//! extlinux.conf, menu.lst) from its volumes with the readers in [`crate::config`], choose
//! the entry GRUB would choose, and turn an entry into a kernel to boot.
//!
//! GRUB names devices `hd0,gpt2`; rxen names volumes `xvda,gpt2`. [`VolumeFs`] maps one to
//! the other (`hdN` is the Nth disk) so a configuration's `set root='hd0,gpt2'` and
//! `search --fs-uuid` both land on the right volume. Pure: no hardware, runs on the host.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::boot::{BootError, Files, Prepared, Root, prepare_kernel_step};
use crate::cmdline::DomainCmdline;
use crate::config::configfs::{ConfigFs, SearchBy, Stat};
use crate::config::discover::{self, Source};
use crate::config::grub;
use crate::config::grubenv;
use crate::config::menu::{self, Env, EnvWrite, Menu, Selection, Via};
use crate::config::policy::{ConfigStep, FilePath, KernelStep, Pins};
use crate::fs::NodeKind;
use crate::trust::{self, Trust};
use crate::volume::SearchKey;
use crate::volume::{self, Disk, GuestMemory, Volume};
use alloc::rc::Rc;
use rxen_memdisk::ustar::Archive;

/// The guest's volumes (and the image's memdisk, device `memdisk`) as GRUB's
/// configuration readers see them.
pub struct VolumeFs<'x, 'a> {
    pub disks: &'x [Disk],
    pub volumes: &'x mut [Volume],
    pub memdisk: Option<Archive<'a>>,
    /// Where the configuration came from (`dev == None`).
    pub current: Root,
    /// Verified boot (`configs = true`: every file read from a disk must be signed).
    pub trust: Rc<Trust>,
    /// Files refused by verified boot while the configuration was read.
    pub refusals: Vec<BootError>,
}

impl<'x, 'a> VolumeFs<'x, 'a> {
    /// The config readers' view of a step's files, `current` standing for `dev == None`.
    pub fn of(files: &'x mut Files<'_, 'a>, current: Root) -> Self {
        VolumeFs {
            disks: files.disks,
            volumes: &mut *files.volumes,
            memdisk: files.memdisk.map(|m| m.archive()),
            current,
            trust: files.trust.clone(),
            refusals: Vec::new(),
        }
    }
}

/// Largest file the memdisk device hands the config readers.
fn memdisk_read(md: &Archive<'_>, path: &str, limit: usize) -> Result<Vec<u8>, String> {
    let data = md.file(path.trim_start_matches('/')).map_err(|e| format!("(memdisk){path}: {e}"))?;
    if data.len() > limit {
        return Err(format!("(memdisk){path}: {} bytes is more than the {limit}-byte limit", data.len()));
    }
    Ok(data.to_vec())
}

/// The volume GRUB's device name `dev` means: one of ours by name (`xvda,gpt2`), or
/// GRUB's `hdN[,part]` with `hdN` the Nth disk and `part` as `gpt2`, `msdos5` or a bare
/// number. Parentheses are allowed.
pub fn map_device(dev: &str, disks: &[Disk], volumes: &[Volume]) -> Option<usize> {
    let dev = dev.trim_start_matches('(').trim_end_matches(')');
    if let Some(i) = volumes.iter().position(|v| v.name == dev) {
        return Some(i);
    }
    let rest = dev.strip_prefix("hd")?;
    let (num, part) = match rest.split_once(',') {
        Some((n, p)) => (n, Some(p)),
        None => (rest, None),
    };
    let disk = disks.get(num.parse::<usize>().ok()?)?;
    match part {
        None => volumes.iter().position(|v| v.name == disk.name),
        Some(p) => {
            let want = format!("{},{p}", disk.name);
            if let Some(i) = volumes.iter().position(|v| v.name == want) {
                return Some(i);
            }
            // A bare partition number: any scheme.
            let n: u32 = p.parse().ok()?;
            volumes.iter().position(|v| {
                v.name.strip_prefix(&format!("{},", disk.name)).is_some_and(|q| {
                    let digits = q.trim_start_matches(|c: char| c.is_ascii_alphabetic());
                    digits.parse::<u32>().ok() == Some(n)
                })
            })
        }
    }
}

/// Variables to set (`Some`) or unset (`None`), in order.
type EnvChanges = Vec<(String, Option<String>)>;

impl<'x, 'a> VolumeFs<'x, 'a> {
    fn device(&self, dev: Option<&str>) -> Result<Root, String> {
        match dev.map(|d| d.trim_start_matches('(').trim_end_matches(')')) {
            None => Ok(self.current.clone()),
            Some("memdisk") => Ok(Root::Memdisk),
            Some(d) => map_device(d, self.disks, self.volumes)
                .map(Root::Volume)
                .ok_or_else(|| format!("({d}): no such device")),
        }
    }

    fn volume(&self, dev: Option<&str>) -> Result<usize, String> {
        match self.device(dev)? {
            Root::Volume(v) => Ok(v),
            Root::Memdisk => Err("(memdisk): not a disk volume".into()),
        }
    }

    /// Carry out grubenv writes in place (GRUB's `save_env`): for each file, every
    /// variable the writes set or unset, applied in order to the file's current block,
    /// which keeps its size; the new bytes are written over the old ones where they are.
    /// Returns one line per file for the console. Nothing is written to a file whose
    /// block or filesystem does not allow it (the error says why).
    pub fn write_grubenv(&mut self, writes: &[&EnvWrite]) -> Vec<Result<String, String>> {
        // One update per file, in the order the writes came.
        // (device, path, changes)
        let mut files: Vec<(Option<String>, String, EnvChanges)> = Vec::new();
        for w in writes {
            match files.iter_mut().find(|(d, p, _)| *d == w.device && *p == w.path) {
                Some((_, _, vars)) => vars.extend(w.vars.iter().cloned()),
                None => files.push((w.device.clone(), w.path.clone(), w.vars.clone())),
            }
        }
        files.into_iter().map(|(dev, path, vars)| self.update_env_file(dev.as_deref(), &path, &vars)).collect()
    }

    fn update_env_file(
        &mut self,
        dev: Option<&str>,
        path: &str,
        vars: &[(String, Option<String>)],
    ) -> Result<String, String> {
        let v = self.volume(dev).map_err(|e| format!("{path}: {e}: grubenv is written only on disk volumes"))?;
        let vol = &mut self.volumes[v];
        let name = format!("({}){path}", vol.name);
        let fs = &mut *vol.fs;
        let ino = fs.lookup(path).map_err(|e| format!("{name}: {e}"))?;
        if ino.size > grubenv::MAX_BLOCK as u64 {
            return Err(format!("{name}: {} bytes is not a grubenv block", ino.size));
        }
        let mut old = vec![0u8; ino.size as usize];
        let n = crate::fs::read_exact(fs, &ino, &mut old).map_err(|e| format!("{name}: {e}"))?;
        old.truncate(n);
        let new = grubenv::update(&old, vars).map_err(|e| format!("{name}: not saved: {e}"))?;
        let what = grubenv::describe_changes(vars);
        if new == old {
            return Ok(format!("{name}: already {what}"));
        }
        // Old or new, never half of each: the change must lie in one 512-byte sector (a
        // disk writes a sector whole). ext4's writer checks this itself, with the disk's
        // real sector size, and writes only that sector. The others are given only the
        // changed bytes, inside that one 512-byte piece of the file: the file's blocks start
        // on a sector boundary (XFS blocks and FAT clusters are whole sectors), so the write
        // is one sector, read, patched and written whole, which a power cut cannot tear.
        let changed = old.chunks(512).zip(new.chunks(512)).filter(|(a, b)| a != b).count();
        if fs.kind() == "ext4" {
            fs.write_in_place(&ino, 0, &new).map_err(|e| format!("{name}: not saved: {e}"))?;
            return Ok(format!("{name}: saved {what}"));
        }
        if changed > 1 {
            return Err(format!(
                "{name}: not saved: the change spans {changed} disk sectors, and a power cut between two sector \
                 writes would leave half of each"
            ));
        }
        // `new != old`, same length: there is a first and a last differing byte.
        let lo = old.iter().zip(&new).position(|(a, b)| a != b).unwrap_or(0);
        let hi = old.iter().zip(&new).rposition(|(a, b)| a != b).map_or(new.len(), |i| i + 1);
        fs.write_in_place(&ino, lo as u64, &new[lo..hi]).map_err(|e| format!("{name}: not saved: {e}"))?;
        Ok(format!("{name}: saved {what}"))
    }

    fn memdisk(&self, dev: Option<&str>) -> Option<Archive<'a>> {
        match self.device(dev) {
            Ok(Root::Memdisk) => self.memdisk,
            _ => None,
        }
    }
}

impl ConfigFs for VolumeFs<'_, '_> {
    fn read(&mut self, dev: Option<&str>, path: &str, limit: usize) -> Result<Vec<u8>, String> {
        if let Ok(Root::Memdisk) = self.device(dev) {
            return match self.memdisk {
                Some(md) => memdisk_read(&md, path, limit),
                None => Err(format!("(memdisk){path}: this image has no memdisk")),
            };
        }
        let v = self.volume(dev)?;
        let data = self.volumes[v].read_small(path, limit).map_err(|e| e.to_string())?;
        // grubenv is the configuration's own mutable state: read unsigned (docs/security.md).
        if self.trust.rules.configs && !path.ends_with("/grubenv") {
            let sig = self.volumes[v]
                .read_small(&format!("{path}{}", trust::SIG_SUFFIX), trust::MAX_SIG_FILE)
                .map_err(|e| e.to_string());
            let file = format!("({}){path}", self.volumes[v].name);
            if let Err(cause) = trust::check(&data, None, sig.as_deref().map_err(Clone::clone), &self.trust.keys) {
                let e = BootError::Refused { file, cause };
                let msg = e.to_string();
                self.refusals.push(e);
                return Err(msg);
            }
        }
        Ok(data)
    }

    fn list(&mut self, dev: Option<&str>, dir: &str) -> Result<Vec<String>, String> {
        if let Some(md) = self.memdisk(dev) {
            let prefix = format!("{}/", dir.trim_matches('/'));
            let mut names: Vec<String> = Vec::new();
            for e in md.entries().flatten() {
                let p = e.path().to_string();
                let p = p.trim_start_matches('/');
                let rest = if prefix == "/" { Some(p) } else { p.strip_prefix(prefix.as_str()) };
                if let Some(name) = rest.and_then(|r| r.split('/').next()).filter(|n| !n.is_empty())
                    && !names.iter().any(|n| n == name)
                {
                    names.push(name.to_string());
                }
            }
            return Ok(names);
        }
        let v = self.volume(dev)?;
        let vol = &mut self.volumes[v];
        let ino = vol.fs.lookup(dir).map_err(|e| format!("({}){dir}: {e}", vol.name))?;
        let entries = vol.fs.read_dir(&ino).map_err(|e| format!("({}){dir}: {e}", vol.name))?;
        Ok(entries.into_iter().filter(|n| n != "." && n != "..").collect())
    }

    fn stat(&mut self, dev: Option<&str>, path: &str) -> Option<Stat> {
        if let Some(md) = self.memdisk(dev) {
            return md.file(path.trim_start_matches('/')).ok().map(|d| Stat { dir: false, size: d.len() as u64 });
        }
        let v = self.volume(dev).ok()?;
        let ino = self.volumes[v].fs.lookup(path).ok()?;
        match ino.kind {
            NodeKind::Dir => Some(Stat { dir: true, size: 0 }),
            NodeKind::File => Some(Stat { dir: false, size: ino.size }),
            _ => None,
        }
    }

    fn search(&mut self, by: SearchBy, value: &str) -> Option<String> {
        let key = match by {
            SearchBy::FsUuid => SearchKey::FsUuid(value.to_string()),
            SearchBy::Label => SearchKey::Label(value.to_string()),
            SearchBy::File => SearchKey::File(value.to_string()),
        };
        volume::search(self.disks, self.volumes, &key).ok().map(|i| self.volumes[i].name.clone())
    }
}

/// A configuration read and the entry GRUB would boot.
#[derive(Clone, Debug)]
pub struct ConfigChoice {
    /// Where it came from: the memdisk or a volume (index into the volumes).
    pub source: Root,
    pub menu: Menu,
    /// grubenv's variables (for `saved_entry`, `next_entry`).
    pub env: Env,
    /// The entry to boot when nobody picks one.
    pub selection: Option<Selection>,
    /// `max_timeout` of the step: the menu waits at most this long.
    pub max_timeout: u32,
    /// `write_grubenv` of the step: carry out the configuration's grubenv writes.
    pub write_grubenv: bool,
    /// The step's sha256 pins for the entry that boots.
    pub pins: Pins,
    /// The policy's `lock_cmdline`: no menu edits.
    pub lock_cmdline: bool,
}

impl ConfigChoice {
    /// Seconds the menu waits: the configuration's timeout (none = forever) capped by the
    /// policy's `max_timeout`.
    pub fn timeout(&self) -> u32 {
        match self.menu.timeout {
            Some(t) if t <= 0 => 0,
            Some(t) => (t.min(i64::from(u32::MAX)) as u32).min(self.max_timeout),
            None => self.max_timeout,
        }
    }

    /// [`ConfigChoice::timeout`] when the domain asked for the menu (`rxen.menu`): a
    /// configuration that shows none (timeout 0) counts down from `max_timeout` instead.
    /// The menu's countdown in seconds, `None` to wait for a key: a menu asked for with
    /// `rxen.menu` counts down from `max_timeout` when the configuration's timeout is 0,
    /// and waits for a person when `max_timeout` is 0 too (the fleet setting: no delay
    /// unless someone asks for the menu, and then it stays).
    pub fn timeout_for(&self, menu_forced: bool) -> Option<u32> {
        match self.timeout() {
            0 if menu_forced && self.max_timeout == 0 => None,
            0 if menu_forced => Some(self.max_timeout),
            t => Some(t),
        }
    }

    /// Entries to try in order: the selection, then the configuration's fallbacks.
    pub fn try_order(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.selection.map(|s| s.entry).into_iter().collect();
        for f in menu::fallback_entries(&self.menu) {
            if !v.contains(&f) {
                v.push(f);
            }
        }
        v
    }
}

fn sources(files: &[String]) -> Vec<Source> {
    if files.is_empty() {
        return discover::default_order();
    }
    files
        .iter()
        .map(|f| {
            let lower = f.to_ascii_lowercase();
            if f == "bls" {
                Source::Bls
            } else if lower.ends_with("menu.lst") || lower.ends_with("grub.conf") {
                Source::MenuLst(f.clone())
            } else if lower.ends_with("extlinux.conf")
                || lower.ends_with("syslinux.cfg")
                || lower.ends_with("isolinux.cfg")
            {
                Source::Extlinux(f.clone())
            } else {
                Source::Grub(f.clone())
            }
        })
        .collect()
}

/// Find and read the configuration: on the root volume when a search chose one, else on
/// the first volume that has one.
pub fn load_config(
    step: &ConfigStep,
    files: &mut Files<'_, '_>,
    root: &Root,
    domain: &DomainCmdline,
    log: &mut dyn FnMut(String),
) -> Result<ConfigChoice, BootError> {
    // A configuration in the memdisk (`(memdisk)/grub.cfg`): pvgrub2's memdisk config.
    let in_memdisk: Vec<String> =
        step.files.iter().filter_map(|f| f.strip_prefix("(memdisk)").map(ToString::to_string)).collect();
    let (candidates, order): (Vec<Root>, Vec<Source>) = if !in_memdisk.is_empty() {
        (alloc::vec![Root::Memdisk], sources(&in_memdisk))
    } else {
        let c = match root {
            Root::Volume(i) => alloc::vec![Root::Volume(*i)],
            Root::Memdisk => (0..files.volumes.len()).map(Root::Volume).collect(),
        };
        (c, sources(&step.files))
    };
    if candidates.is_empty() {
        return Err(BootError::NoConfigVolume);
    }
    let opts = grub::Options::default();
    let mut errors = Vec::new();
    for src in candidates {
        let name = match &src {
            Root::Memdisk => "memdisk".to_string(),
            Root::Volume(v) => files.volumes[*v].name.clone(),
        };
        // A disk that gave up: its cached metadata could still find a configuration
        // whose kernel cannot be read.
        if let Root::Volume(v) = src
            && let Some(why) = crate::volume::unusable(files.disks, &files.volumes[v].info)
        {
            errors.push(why);
            continue;
        }
        let mut refusals = Vec::new();
        let mut found = {
            let mut fs = VolumeFs::of(files, src.clone());
            let r = discover::load(&mut fs, &name, &order, &Env::new(), &opts);
            refusals.append(&mut fs.refusals);
            r
        };
        // Nothing at the filesystem's default root: try the others it can show (btrfs
        // subvolumes: Fedora's /boot inside `root`), keeping the first that has one.
        if found.is_err()
            && let Root::Volume(v) = src
        {
            for alt in files.volumes[v].fs.alternate_roots() {
                if files.volumes[v].fs.set_root(&alt).is_err() {
                    continue;
                }
                let mut fs = VolumeFs::of(files, src.clone());
                let r = discover::load(&mut fs, &name, &order, &Env::new(), &opts);
                refusals.append(&mut fs.refusals);
                if let Ok(m) = r {
                    log(format!("({name}): no configuration at the default root; reading subvolume {alt}"));
                    found = Ok(m);
                    break;
                }
            }
            if found.is_err() {
                let _ = files.volumes[v].fs.set_root("");
            }
        }
        let mut fs = VolumeFs::of(files, src.clone());
        // configs = true: a configuration any of whose files was refused is refused whole.
        if let Some(e) = refusals.pop() {
            return Err(e);
        }
        match found {
            Ok(menu) => {
                if let Some(want) = &step.pins.config {
                    check_config_pin(&mut fs, &menu.file, want)?;
                }
                for m in &menu.messages {
                    log(format!("({name}): {m}"));
                }
                let env = discover::read_grubenv(&mut fs, &name);
                let pick = domain.options.entry.as_ref().or(step.entry.as_ref());
                let selection = match pick {
                    Some(want) => match menu::resolve(&menu, want) {
                        Some(entry) => Some(Selection { entry, via: Via::Default }),
                        None => {
                            log(format!("{}: no entry {want:?}; using the configuration's default", menu.file));
                            menu::select_default(&menu, &env)
                        }
                    },
                    None => menu::select_default(&menu, &env),
                };
                return Ok(ConfigChoice {
                    source: src,
                    menu,
                    env,
                    selection,
                    max_timeout: step.max_timeout,
                    write_grubenv: step.write_grubenv,
                    pins: Pins { config: None, ..step.pins.clone() },
                    lock_cmdline: files.trust.rules.lock_cmdline,
                });
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(match errors.len() {
        1 => BootError::Config(errors.remove(0)),
        _ => BootError::NoConfigAnywhere { errors },
    })
}

/// The largest configuration file `config_sha256` can pin.
const MAX_PINNED_CONFIG: usize = 4 << 20;

/// `config_sha256`: the configuration file read (`(dev)/path`) must match.
fn check_config_pin(fs: &mut VolumeFs<'_, '_>, file: &str, want: &[u8; 32]) -> Result<(), BootError> {
    let refused = |cause| BootError::Refused { file: file.to_string(), cause };
    let (dev, path) = match file.strip_prefix('(').and_then(|r| r.split_once(')')) {
        Some((d, p)) => (Some(d), p),
        None => (None, file),
    };
    let data = fs.read(dev, path, MAX_PINNED_CONFIG).map_err(|why| {
        refused(trust::Refusal::Unsigned {
            why: format!("config_sha256 pins one file and this one cannot be read: {why}"),
        })
    })?;
    trust::check(&data, Some(want), Err(String::new()), &[]).map(|_| ()).map_err(refused)
}

fn entry_path(bp: &menu::BootPath, files: &Files<'_, '_>, source: &Root) -> Result<FilePath, BootError> {
    let dev = match &bp.device {
        None => source.clone(),
        Some(d) if d == "memdisk" => Root::Memdisk,
        Some(d) => Root::Volume(
            map_device(d, files.disks, files.volumes)
                .ok_or_else(|| BootError::EntryDevice { spec: bp.spec.clone(), device: d.clone() })?,
        ),
    };
    let volume = match dev {
        Root::Memdisk => "memdisk".to_string(),
        Root::Volume(v) => files.volumes[v].name.clone(),
    };
    Ok(FilePath { volume: Some(volume), path: bp.path.clone() })
}

/// Load entry `idx` of `choice`: its kernel, initrds and command line (GRUB's, with
/// `BOOT_IMAGE=`, then the domain's words by the command-line rule; `cmdline` replaces
/// GRUB's when a person edited it).
pub fn prepare_entry<'a>(
    choice: &ConfigChoice,
    idx: usize,
    cmdline: Option<&str>,
    files: &mut Files<'_, 'a>,
    domain: &DomainCmdline,
    mem: &mut dyn GuestMemory,
    log: &mut dyn FnMut(String),
) -> Result<Prepared<'a>, BootError> {
    let e = choice.menu.entries.get(idx).ok_or(BootError::EntryIndex { index: idx })?;
    let title = e.display_title();
    if let Some(why) = &e.unsupported {
        return Err(BootError::EntryUnsupported { title, why: why.clone() });
    }
    let Some(k) = &e.kernel else {
        return Err(BootError::EntryNoKernel { title });
    };
    let step = KernelStep {
        kernel: entry_path(k, files, &choice.source)?,
        initrd: e.initrds.iter().map(|i| entry_path(i, files, &choice.source)).collect::<Result<_, _>>()?,
        initrd_optional: false,
        cmdline: cmdline.map_or_else(|| e.grub_cmdline(), ToString::to_string),
        pins: choice.pins.clone(),
    };
    prepare_kernel_step(&step, files, &choice.source, domain, mem, log)
        .map_err(|err| BootError::Entry { title, cause: alloc::boxed::Box::new(err) })
}
