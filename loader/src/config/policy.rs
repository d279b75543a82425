// SPDX-License-Identifier: MIT OR Apache-2.0
//! The boot policy, `rxen.toml` version 1: an ordered list of boot steps. The schema is
//! documented in `docs/policy.md`; every key is checked here, and anything unknown or
//! mistyped is an error naming its line and column.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use super::ConfigError;
use super::toml::{self, Section, Spanned, Table, Value};

/// The policy version this loader reads.
pub const POLICY_VERSION: i64 = 1;
/// Longest accepted `timeout`, in seconds (one day).
pub const MAX_TIMEOUT: i64 = 86_400;

/// A parsed policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Always [`POLICY_VERSION`].
    pub version: u32,
    /// Seconds a menu waits before booting the default step (0: boot at once).
    pub timeout: u32,
    /// Index into `steps` of the step named by `default`.
    pub default: Option<usize>,
    /// What to do when every step failed.
    pub on_failure: OnFailure,
    /// The steps, in file order.
    pub steps: Vec<Step>,
    /// `[trust]`: what the loader verifies (docs/security.md).
    pub trust: TrustPolicy,
    /// `kaslr = true`: a bzImage decompresses itself and randomizes its address (Linux's
    /// own decompressor, entered by the boot protocol). Default false: the PVH loader
    /// decompresses the payload itself (while a menu counts down, when one does) and
    /// enters the kernel at its PVH entry, as xl's direct boot does (no KASLR).
    pub kaslr: bool,
}

pub use crate::trust::TrustPolicy;

/// sha256 pins of a step: the kernel, each initrd in order, the configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pins {
    pub kernel: Option<[u8; 32]>,
    pub initrd: Vec<[u8; 32]>,
    pub config: Option<[u8; 32]>,
}

impl Pins {
    pub fn is_empty(&self) -> bool {
        self.kernel.is_none() && self.initrd.is_empty() && self.config.is_none()
    }
}

impl Policy {
    /// The order steps are tried in: the default first, then the others in file order.
    pub fn order(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.default.into_iter().collect();
        v.extend((0..self.steps.len()).filter(|&i| Some(i) != self.default));
        v
    }
}

/// `on_failure`: what the loader does when no step booted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnFailure {
    /// Print what was tried and power the domain off (the default: nothing hangs).
    #[default]
    Poweroff,
    /// Print what was tried and wait at a prompt on the serial console for a step to
    /// retry; where there is no console input (Xen, for now) it powers off.
    Prompt,
}

/// One boot step.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Its `name`, unique in the policy.
    pub name: Option<String>,
    /// The line of its `[[step]]` header.
    pub line: u32,
    /// What it does.
    pub kind: StepKind,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    /// `type = "kernel"`: boot this kernel.
    Kernel(KernelStep),
    /// `type = "search"`: find a volume; it becomes the root volume for the steps after.
    Search(SearchKey),
    /// `type = "config"`: the guest's own boot configuration (grub.cfg, BLS, extlinux,
    /// menu.lst) on the root volume, or on the first volume that has one.
    Config(ConfigStep),
}

/// A `config` step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigStep {
    /// `files`: where to look, in order (default: the generic search order). A path ending
    /// in `menu.lst`/`grub.conf` is GRUB legacy, `extlinux.conf`/`syslinux.cfg`/`isolinux.cfg` extlinux,
    /// any other path a GRUB script; `"bls"` means BLS entries.
    pub files: Vec<String>,
    /// `entry`: boot this entry (index, id, title or `>` path) instead of the default.
    pub entry: Option<String>,
    /// `max_timeout`: the longest a menu waits, in seconds, whatever the configuration
    /// says (GRUB's `timeout=-1` waits forever; a fleet must not). Default 10.
    pub max_timeout: u32,
    /// `write_grubenv = true`: carry out the grubenv writes the configuration asks for
    /// (`save_env`, `savedefault`, clearing `next_entry` after a boot-once) in place, as
    /// GRUB does, just before the chosen entry boots. Default false: the guest's disks
    /// are only read, and the loader says what it did not save.
    pub write_grubenv: bool,
    /// `config_sha256`, `kernel_sha256`, `initrd_sha256`: the configuration file read and
    /// the files of whichever entry boots must match.
    pub pins: Pins,
}

/// Default [`ConfigStep::max_timeout`].
pub const DEFAULT_MAX_MENU_TIMEOUT: u32 = 10;

pub use crate::volume::SearchKey;

/// A fixed kernel, its initrds and command line.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelStep {
    pub kernel: FilePath,
    /// Concatenated in order (Linux unpacks each cpio in turn).
    pub initrd: Vec<FilePath>,
    /// `initrd_optional = true`: an initrd that is not there is skipped, not an error.
    pub initrd_optional: bool,
    pub cmdline: String,
    /// `kernel_sha256`, `initrd_sha256`.
    pub pins: Pins,
}

/// A file: `(VOLUME)/path`, `(VOLUME)` (a whole module), or `/path` on the root volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePath {
    /// `memdisk`, `module0`, ...; `None`: the root volume (the memdisk).
    pub volume: Option<String>,
    /// Absolute path on the volume, or empty for a whole volume.
    pub path: String,
}

impl FilePath {
    /// Parse the policy's path syntax; the error says what is wrong (no place).
    pub fn parse(s: &str) -> Result<FilePath, String> {
        let (volume, path) = if let Some(rest) = s.strip_prefix('(') {
            let Some(end) = rest.find(')') else { return Err("`(` without `)` in a path".to_string()) };
            let vol = &rest[..end];
            if vol.is_empty() || !vol.bytes().all(|c| c.is_ascii_alphanumeric() || b"_-.,:=".contains(&c)) {
                return Err(alloc::format!("`({vol})` is not a volume name (letters, digits, _-.,:=)"));
            }
            (Some(vol.to_string()), &rest[end + 1..])
        } else {
            (None, s)
        };
        if path.is_empty() && volume.is_none() {
            return Err("empty path".to_string());
        }
        if !path.is_empty() && !path.starts_with('/') {
            return Err(alloc::format!("`{s}`: paths are absolute, e.g. \"/vmlinuz\" or \"(memdisk)/vmlinuz\""));
        }
        if path.split('/').any(|c| c == "..") {
            return Err(alloc::format!("`{s}`: `..` is not allowed in paths"));
        }
        if path.bytes().any(|c| c < 0x20) {
            return Err("control character in a path".to_string());
        }
        Ok(FilePath { volume, path: path.to_string() })
    }
}

impl fmt::Display for FilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.volume {
            Some(v) => write!(f, "({v}){}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

fn string<'a>(v: &'a Spanned<Value>, key: &str) -> Result<&'a str, ConfigError> {
    match &v.value {
        Value::String(s) => Ok(s),
        other => Err(v.err(alloc::format!("`{key}` must be a string, not {}", other.type_name()))),
    }
}

fn file_path(v: &Spanned<Value>, key: &str) -> Result<FilePath, ConfigError> {
    FilePath::parse(string(v, key)?).map_err(|m| v.err(alloc::format!("`{key}`: {m}")))
}

fn integer(v: &Spanned<Value>, key: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    match &v.value {
        Value::Integer(i) if (min..=max).contains(i) => Ok(*i),
        Value::Integer(i) => Err(v.err(alloc::format!("`{key}` = {i} is out of range ({min}..={max})"))),
        other => Err(v.err(alloc::format!("`{key}` must be an integer, not {}", other.type_name()))),
    }
}

fn boolean(v: &Spanned<Value>, key: &str) -> Result<bool, ConfigError> {
    match &v.value {
        Value::Boolean(b) => Ok(*b),
        other => Err(v.err(alloc::format!("`{key}` must be a boolean, not {}", other.type_name()))),
    }
}

fn unknown_key(k: &Spanned<String>, known: &[&str], place: &str) -> ConfigError {
    k.err(alloc::format!("unknown key `{}` {place} (known: {})", k.value, known.join(", ")))
}

const TOP_KEYS: &[&str] = &["version", "timeout", "default", "on_failure", "kaslr"];
const KERNEL_KEYS: &[&str] =
    &["type", "name", "kernel", "initrd", "initrd_optional", "cmdline", "kernel_sha256", "initrd_sha256"];
const SEARCH_KEYS: &[&str] = &["type", "name", "file", "fs_uuid", "label", "part_uuid", "part_label"];
const CONFIG_KEYS: &[&str] = &[
    "type",
    "name",
    "files",
    "entry",
    "max_timeout",
    "write_grubenv",
    "config_sha256",
    "kernel_sha256",
    "initrd_sha256",
];
const TRUST_KEYS: &[&str] = &["signatures", "configs", "require", "lock_cmdline"];

fn digest(v: &Spanned<Value>, key: &str) -> Result<[u8; 32], ConfigError> {
    let s = string(v, key)?;
    crate::trust::parse_digest(&s.to_ascii_lowercase())
        .ok_or_else(|| v.err(alloc::format!("`{key}`: a sha256 is 64 hex digits (sha256sum FILE)")))
}

fn pins(t: &Table) -> Result<Pins, ConfigError> {
    let one = |k: &str| t.get(k).map(|v| digest(v, k)).transpose();
    let initrd = match t.get("initrd_sha256") {
        None => Vec::new(),
        Some(Spanned { value: Value::Array(items), .. }) => {
            items.iter().map(|i| digest(i, "initrd_sha256")).collect::<Result<_, _>>()?
        }
        Some(v) => alloc::vec![digest(v, "initrd_sha256")?],
    };
    Ok(Pins { kernel: one("kernel_sha256")?, initrd, config: one("config_sha256")? })
}

fn parse_trust(t: &Table) -> Result<TrustPolicy, ConfigError> {
    check_keys(t, TRUST_KEYS, "in [trust]")?;
    let flag = |k: &str| t.get(k).map_or(Ok(false), |v| boolean(v, k));
    Ok(TrustPolicy {
        signatures: flag("signatures")?,
        configs: flag("configs")?,
        require: flag("require")?,
        lock_cmdline: flag("lock_cmdline")?,
    })
}

/// Parse and check a policy.
pub fn parse_policy(text: &str) -> Result<Policy, ConfigError> {
    let doc = toml::parse(text)?;
    let root = &doc.root;
    for (k, _) in &root.entries {
        if !TOP_KEYS.contains(&k.value.as_str()) {
            return Err(unknown_key(k, TOP_KEYS, "at the top level"));
        }
    }
    let Some(v) = root.get("version") else {
        return Err(ConfigError::new(1, 1, alloc::format!("missing `version = {POLICY_VERSION}` at the top")));
    };
    let version = match &v.value {
        Value::Integer(POLICY_VERSION) => POLICY_VERSION as u32,
        Value::Integer(n) => {
            return Err(v.err(alloc::format!(
                "policy version {n} is not supported: this loader reads version {POLICY_VERSION}"
            )));
        }
        other => return Err(v.err(alloc::format!("`version` must be an integer, not {}", other.type_name()))),
    };
    let timeout = match root.get("timeout") {
        Some(v) => integer(v, "timeout", 0, MAX_TIMEOUT)? as u32,
        None => 0,
    };

    let mut steps = Vec::new();
    let mut trust = TrustPolicy::default();
    for s in &doc.sections {
        match s {
            Section::ArrayElement(name, t) if name.value == "step" => steps.push(parse_step(t)?),
            Section::Table(name, t) if name.value == "trust" => trust = parse_trust(t)?,
            Section::ArrayElement(name, _) | Section::Table(name, _) => {
                let how = if matches!(s, Section::Table(..)) { "[table]" } else { "[[array]]" };
                return Err(
                    name.err(alloc::format!("unknown {how} `{}` (a policy has [[step]] and [trust])", name.value))
                );
            }
        }
    }
    for (i, s) in steps.iter().enumerate() {
        if let Some(n) = &s.name
            && let Some(first) = steps[..i].iter().find(|p| p.name.as_ref() == Some(n))
        {
            return Err(ConfigError::new(
                s.line,
                1,
                alloc::format!("step name {n:?} is used twice (first at line {})", first.line),
            ));
        }
    }
    let default = match root.get("default") {
        None => None,
        Some(v) => {
            let want = string(v, "default")?;
            match steps.iter().position(|s| s.name.as_deref() == Some(want)) {
                Some(i) => Some(i),
                None => return Err(v.err(alloc::format!("`default` = {want:?}: no step has that name"))),
            }
        }
    };
    let on_failure = match root.get("on_failure") {
        None => OnFailure::Poweroff,
        Some(v) => match string(v, "on_failure")? {
            "poweroff" => OnFailure::Poweroff,
            "prompt" => OnFailure::Prompt,
            other => return Err(v.err(alloc::format!("`on_failure` = {other:?}: use \"poweroff\" or \"prompt\""))),
        },
    };
    let kaslr = root.get("kaslr").map(|v| boolean(v, "kaslr")).transpose()?.unwrap_or(false);
    Ok(Policy { version, timeout, default, on_failure, steps, trust, kaslr })
}

fn check_keys(t: &Table, known: &[&str], what: &str) -> Result<(), ConfigError> {
    for (k, _) in &t.entries {
        if !known.contains(&k.value.as_str()) {
            return Err(unknown_key(k, known, what));
        }
    }
    Ok(())
}

fn parse_step(t: &Table) -> Result<Step, ConfigError> {
    let here = ConfigError::new(t.line, t.col, "");
    let Some(ty) = t.get("type") else {
        return Err(ConfigError { msg: "[[step]] without `type` (e.g. type = \"kernel\")".into(), ..here });
    };
    let name = match t.get("name") {
        None => None,
        Some(v) => {
            let n = string(v, "name")?;
            if n.is_empty() || n.bytes().any(|c| c.is_ascii_whitespace() || c.is_ascii_control()) {
                return Err(v.err("`name` must be non-empty, without spaces (rxen.step=NAME selects it)"));
            }
            Some(n.to_string())
        }
    };
    let kind = match string(ty, "type")? {
        "search" => {
            check_keys(t, SEARCH_KEYS, "in a search step")?;
            let mut found: Option<SearchKey> = None;
            for (k, v) in &t.entries {
                let mk: fn(String) -> SearchKey = match k.value.as_str() {
                    "file" => SearchKey::File,
                    "fs_uuid" => SearchKey::FsUuid,
                    "label" => SearchKey::Label,
                    "part_uuid" => SearchKey::PartUuid,
                    "part_label" => SearchKey::PartLabel,
                    _ => continue,
                };
                if found.is_some() {
                    return Err(k.err("a search step takes one of file, fs_uuid, label, part_uuid, part_label"));
                }
                let val = string(v, &k.value)?;
                if val.is_empty() {
                    return Err(v.err(alloc::format!("`{}` must not be empty", k.value)));
                }
                if k.value == "file" {
                    let p = file_path(v, "file")?;
                    if p.volume.is_some() || p.path.is_empty() {
                        return Err(v.err("`file` is a path on the volume searched for, e.g. \"/vmlinuz\""));
                    }
                }
                found = Some(mk(val.to_string()));
            }
            let Some(key) = found else {
                return Err(ConfigError {
                    msg: "search step without file, fs_uuid, label, part_uuid or part_label".into(),
                    ..here
                });
            };
            StepKind::Search(key)
        }
        "kernel" => {
            check_keys(t, KERNEL_KEYS, "in [[step]]")?;
            let Some(k) = t.get("kernel") else {
                return Err(ConfigError { msg: "kernel step without `kernel`".into(), ..here });
            };
            let kernel = file_path(k, "kernel")?;
            let initrd = match t.get("initrd") {
                None => Vec::new(),
                Some(v @ Spanned { value: Value::Array(items), .. }) => {
                    if items.is_empty() {
                        return Err(v.err("`initrd` = []: leave the key out for no initrd"));
                    }
                    items.iter().map(|i| file_path(i, "initrd")).collect::<Result<_, _>>()?
                }
                Some(v) => alloc::vec![file_path(v, "initrd")?],
            };
            let cmdline = match t.get("cmdline") {
                None => String::new(),
                Some(v) => {
                    let c = string(v, "cmdline")?;
                    if c.bytes().any(|b| b < 0x20) {
                        return Err(v.err("`cmdline` must be one line without control characters"));
                    }
                    c.to_string()
                }
            };
            let initrd_optional = t.get("initrd_optional").map_or(Ok(false), |v| boolean(v, "initrd_optional"))?;
            let pins = pins(t)?;
            StepKind::Kernel(KernelStep { kernel, initrd, initrd_optional, cmdline, pins })
        }
        "config" => {
            check_keys(t, CONFIG_KEYS, "in a config step")?;
            let files = match t.get("files") {
                None => Vec::new(),
                Some(v @ Spanned { value: Value::Array(items), .. }) => {
                    if items.is_empty() {
                        return Err(v.err("`files` = []: leave the key out for the default search order"));
                    }
                    let mut out = Vec::new();
                    for i in items {
                        let f = string(i, "files")?;
                        if f != "bls" {
                            let p = file_path(i, "files")?;
                            if p.volume.as_deref().is_some_and(|v| v != "memdisk") || p.path.is_empty() {
                                return Err(
                                    i.err("`files`: a path on the volume, e.g. \"/boot/grub/grub.cfg\", \"(memdisk)/grub.cfg\" or \"bls\"")
                                );
                            }
                        }
                        out.push(f.to_string());
                    }
                    out
                }
                Some(v) => return Err(v.err("`files` must be an array of paths")),
            };
            let entry = match t.get("entry") {
                None => None,
                Some(v) => Some(string(v, "entry")?.to_string()),
            };
            let max_timeout = match t.get("max_timeout") {
                None => DEFAULT_MAX_MENU_TIMEOUT,
                Some(v) => integer(v, "max_timeout", 0, MAX_TIMEOUT)? as u32,
            };
            let write_grubenv = t.get("write_grubenv").map_or(Ok(false), |v| boolean(v, "write_grubenv"))?;
            let pins = pins(t)?;
            StepKind::Config(ConfigStep { files, entry, max_timeout, write_grubenv, pins })
        }
        other => {
            return Err(ty.err(alloc::format!(
                "unknown step type {other:?} (this loader knows: \"kernel\", \"search\", \"config\")"
            )));
        }
    };
    Ok(Step { name, line: t.line, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_policy() {
        let p = parse_policy(
            "version = 1\ntimeout = 5\ndefault = \"b\"\n\n[[step]]\ntype = \"kernel\"\nname = \"a\"\nkernel = \"/vmlinuz\"\n\
             \n[[step]]\ntype = \"kernel\"\nname = \"b\"\nkernel = \"(memdisk)/boot/vmlinuz\"\ninitrd = [\"(module0)\", \"/i2\"]\ncmdline = \"console=hvc0\"\n",
        )
        .unwrap();
        assert_eq!(p.timeout, 5);
        assert_eq!(p.default, Some(1));
        assert_eq!(p.order(), [1, 0]);
        assert_eq!(p.steps[0].line, 5);
        let StepKind::Kernel(k) = &p.steps[1].kind else { panic!() };
        assert_eq!(k.kernel, FilePath { volume: Some("memdisk".into()), path: "/boot/vmlinuz".into() });
        assert_eq!(k.kernel.to_string(), "(memdisk)/boot/vmlinuz");
        assert_eq!(k.initrd[0].to_string(), "(module0)");
        assert_eq!(k.initrd[1], FilePath { volume: None, path: "/i2".into() });
        assert_eq!(k.cmdline, "console=hvc0");
    }

    #[test]
    fn trust_and_pins() {
        let h = "ab".repeat(32);
        let p = parse_policy(&alloc::format!(
            "version = 1\n[trust]\nsignatures = true\nlock_cmdline = true\n\n[[step]]\ntype = \"kernel\"\n\
             kernel = \"/vmlinuz\"\nkernel_sha256 = \"{h}\"\ninitrd_sha256 = [\"{}\"]\n\n[[step]]\ntype = \"config\"\n\
             config_sha256 = \"{h}\"\n",
            h.to_uppercase()
        ))
        .unwrap();
        assert_eq!(p.trust, TrustPolicy { signatures: true, lock_cmdline: true, ..Default::default() });
        let StepKind::Kernel(k) = &p.steps[0].kind else { panic!() };
        assert_eq!(k.pins.kernel, Some([0xab; 32]));
        assert_eq!(k.pins.initrd, [[0xab; 32]]);
        let StepKind::Config(c) = &p.steps[1].kind else { panic!() };
        assert_eq!(c.pins.config, Some([0xab; 32]));
        let e = |t: &str| parse_policy(t).unwrap_err().to_string();
        assert_eq!(
            e("version = 1\n[trust]\nsigned = true\n"),
            "3:1: unknown key `signed` in [trust] (known: signatures, configs, require, lock_cmdline)"
        );
        assert!(
            e("version = 1\n[[step]]\ntype = \"kernel\"\nkernel = \"/k\"\nkernel_sha256 = \"abc\"\n")
                .contains("a sha256 is 64 hex digits")
        );
        assert!(
            e("version = 1\n[[step]]\ntype = \"kernel\"\nkernel = \"/k\"\nconfig_sha256 = \"00\"\n")
                .contains("unknown key `config_sha256` in [[step]]")
        );
    }

    #[test]
    fn config_steps() {
        let p = parse_policy(
            "version = 1\n[[step]]\ntype = \"config\"\n[[step]]\ntype = \"config\"\nfiles = [\"/boot/grub2/grub.cfg\", \"bls\"]\nentry = \"1>2\"\nmax_timeout = 3\nwrite_grubenv = true\n",
        )
        .unwrap();
        assert_eq!(
            p.steps[0].kind,
            StepKind::Config(ConfigStep {
                files: Vec::new(),
                entry: None,
                max_timeout: DEFAULT_MAX_MENU_TIMEOUT,
                write_grubenv: false,
                pins: Pins::default(),
            })
        );
        assert_eq!(
            p.steps[1].kind,
            StepKind::Config(ConfigStep {
                files: alloc::vec!["/boot/grub2/grub.cfg".into(), "bls".into()],
                entry: Some("1>2".into()),
                max_timeout: 3,
                write_grubenv: true,
                pins: Pins::default(),
            })
        );
        let e = |t: &str| parse_policy(t).unwrap_err().to_string();
        assert!(e("version = 1\n[[step]]\ntype = \"config\"\nfiles = [\"grub.cfg\"]\n").contains("paths are absolute"));
        assert!(
            e("version = 1\n[[step]]\ntype = \"config\"\nkernel = \"/k\"\n")
                .contains("unknown key `kernel` in a config step")
        );
    }

    #[test]
    fn initrd_string_and_defaults() {
        let p = parse_policy("version = 1\n[[step]]\ntype = \"kernel\"\nkernel = \"/k\"\ninitrd = \"/i\"\n").unwrap();
        let StepKind::Kernel(k) = &p.steps[0].kind else { panic!() };
        assert_eq!(k.initrd.len(), 1);
        assert_eq!(k.cmdline, "");
        assert_eq!((p.timeout, p.default), (0, None));
        assert_eq!(p.order(), [0]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = |t: &str| parse_policy(t).unwrap_err().to_string();
        assert_eq!(e(""), "1:1: missing `version = 1` at the top");
        assert_eq!(e("version = 2\n"), "1:11: policy version 2 is not supported: this loader reads version 1");
        assert_eq!(e("version = \"1\"\n"), "1:11: `version` must be an integer, not a string");
        assert_eq!(
            e("version = 1\ntimout = 3\n"),
            "2:1: unknown key `timout` at the top level (known: version, timeout, default, on_failure, kaslr)"
        );
        assert_eq!(e("version = 1\ntimeout = -1\n"), "2:11: `timeout` = -1 is out of range (0..=86400)");
        assert_eq!(e("version = 1\n[boot]\n"), "2:2: unknown [table] `boot` (a policy has [[step]] and [trust])");
        assert_eq!(
            e("version = 1\n[[step]]\nkernel = \"/k\"\n"),
            "2:1: [[step]] without `type` (e.g. type = \"kernel\")"
        );
        assert_eq!(
            e("version = 1\n[[step]]\ntype = \"chain\"\n"),
            "3:8: unknown step type \"chain\" (this loader knows: \"kernel\", \"search\", \"config\")"
        );
        assert_eq!(e("version = 1\n[[step]]\ntype = \"kernel\"\n"), "2:1: kernel step without `kernel`");
        assert_eq!(
            e("version = 1\n[[step]]\ntype = \"kernel\"\nkernel = \"vmlinuz\"\n"),
            "4:10: `kernel`: `vmlinuz`: paths are absolute, e.g. \"/vmlinuz\" or \"(memdisk)/vmlinuz\""
        );
        assert_eq!(
            e("version = 1\n[[step]]\ntype = \"kernel\"\nkernel = \"/k\"\ninitrd = [\"/a\", 3]\n"),
            "5:17: `initrd` must be a string, not an integer"
        );
        assert_eq!(
            e("version = 1\n[[step]]\ntype = \"kernel\"\nkernel = \"/k\"\nkernal = 1\n"),
            "5:1: unknown key `kernal` in [[step]] (known: type, name, kernel, initrd, initrd_optional, cmdline, kernel_sha256, initrd_sha256)"
        );
        assert_eq!(
            e("version = 1\ndefault = \"x\"\n[[step]]\ntype = \"kernel\"\nkernel = \"/k\"\n"),
            "2:11: `default` = \"x\": no step has that name"
        );
        assert_eq!(
            e(
                "version = 1\n[[step]]\ntype = \"kernel\"\nname = \"a\"\nkernel = \"/k\"\n[[step]]\ntype = \"kernel\"\nname = \"a\"\nkernel = \"/k\"\n"
            ),
            "6:1: step name \"a\" is used twice (first at line 2)"
        );
        assert_eq!(e("version = 1\n[[step]]\ntype = \"kernel\"\nkernel = \"(a)b\"\n").split(':').next(), Some("4"));
    }

    #[test]
    fn search_steps() {
        let p = parse_policy(
            "version = 1\n[[step]]\ntype = \"search\"\nfile = \"/vmlinuz\"\n[[step]]\ntype = \"search\"\nlabel = \"root\"\n\
             [[step]]\ntype = \"kernel\"\nkernel = \"/vmlinuz\"\ninitrd = \"/initrd.img\"\ninitrd_optional = true\n",
        )
        .unwrap();
        assert_eq!(p.steps[0].kind, StepKind::Search(SearchKey::File("/vmlinuz".into())));
        assert_eq!(p.steps[1].kind, StepKind::Search(SearchKey::Label("root".into())));
        let StepKind::Kernel(k) = &p.steps[2].kind else { panic!() };
        assert!(k.initrd_optional);
        let e = |t: &str| parse_policy(t).unwrap_err().to_string();
        assert_eq!(
            e("version = 1\n[[step]]\ntype = \"search\"\n"),
            "2:1: search step without file, fs_uuid, label, part_uuid or part_label"
        );
        assert_eq!(
            e("version = 1\n[[step]]\ntype = \"search\"\nlabel = \"a\"\nfs_uuid = \"b\"\n"),
            "5:1: a search step takes one of file, fs_uuid, label, part_uuid, part_label"
        );
        assert_eq!(
            e("version = 1\n[[step]]\ntype = \"search\"\nkernel = \"/k\"\n"),
            "4:1: unknown key `kernel` in a search step (known: type, name, file, fs_uuid, label, part_uuid, part_label)"
        );
        assert_eq!(
            e("version = 1\n[[step]]\ntype = \"search\"\nfile = \"(vda)/k\"\n"),
            "4:8: `file` is a path on the volume searched for, e.g. \"/vmlinuz\""
        );
    }

    #[test]
    fn on_failure() {
        let base = "[[step]]\ntype = \"kernel\"\nkernel = \"/k\"\n";
        assert_eq!(parse_policy(&alloc::format!("version = 1\n{base}")).unwrap().on_failure, OnFailure::Poweroff);
        let p = parse_policy(&alloc::format!("version = 1\non_failure = \"prompt\"\n{base}")).unwrap();
        assert_eq!(p.on_failure, OnFailure::Prompt);
        let e = parse_policy("version = 1\non_failure = \"wait\"\n").unwrap_err().to_string();
        assert_eq!(e, "2:14: `on_failure` = \"wait\": use \"poweroff\" or \"prompt\"");
    }

    #[test]
    fn kaslr() {
        let base = "[[step]]\ntype = \"config\"\n";
        assert!(!parse_policy(&alloc::format!("version = 1\n{base}")).unwrap().kaslr);
        assert!(parse_policy(&alloc::format!("version = 1\nkaslr = true\n{base}")).unwrap().kaslr);
        let e = parse_policy("version = 1\nkaslr = \"yes\"\n").unwrap_err().to_string();
        assert_eq!(e, "2:9: `kaslr` must be a boolean, not a string");
    }

    #[test]
    fn in_file_prefixes_the_name() {
        let err = parse_policy("version = 3\n").unwrap_err();
        assert!(err.in_file("rxen.toml").starts_with("rxen.toml:1:11: policy version 3"));
    }

    #[test]
    fn shipped_configs_parse() {
        for (name, text) in [
            ("generic.toml", include_str!("../../../configs/generic.toml")),
            ("generic-pv.toml", include_str!("../../../configs/generic-pv.toml")),
            ("fixed-kernel.toml", include_str!("../../../configs/fixed-kernel.toml")),
            ("verified.toml", include_str!("../../../configs/verified.toml")),
        ] {
            parse_policy(text).unwrap_or_else(|e| panic!("{}", e.in_file(name)));
        }
    }
}
