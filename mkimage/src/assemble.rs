// SPDX-License-Identifier: MIT OR Apache-2.0
//! What goes into a memdisk: the files, where they came from, the boot policy
//! (`rxen.toml`) and the checks that the policy's memdisk files are there and bootable.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use rxen_loader::config::policy::{FilePath, Policy, StepKind, parse_policy};
use rxen_loader::kernel::detect;
use rxen_memdisk_writer::MemdiskBuilder;

/// Name of the boot policy in the memdisk.
pub const POLICY_PATH: &str = "rxen.toml";
/// The volume name of the memdisk in policy paths: `(memdisk)/vmlinuz`.
pub const MEMDISK_VOLUME: &str = "memdisk";

/// A file bound for the memdisk.
#[derive(Clone, Debug)]
pub struct MemdiskFile {
    /// Its contents.
    pub data: Vec<u8>,
    /// Where it came from, for messages: a host path, or "rxen.toml (generated)".
    pub source: String,
}

/// The memdisk's files, by memdisk path (no leading `/`), in sorted order.
#[derive(Clone, Debug, Default)]
pub struct Memdisk {
    files: BTreeMap<String, MemdiskFile>,
}

/// `path` as stored in the memdisk: leading `/` removed; no empty, `.` or `..` components.
pub fn normalize_path(path: &str) -> Result<String> {
    let p = path.trim_start_matches('/');
    if p.is_empty() {
        bail!("{path:?}: empty memdisk path");
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        bail!("{path}: memdisk paths must not contain empty, \".\" or \"..\" components");
    }
    Ok(p.to_owned())
}

impl Memdisk {
    /// An empty memdisk.
    pub fn new() -> Memdisk {
        Memdisk::default()
    }

    /// Add a file at memdisk path `path` (normalised by [`normalize_path`]).
    pub fn add(&mut self, path: &str, data: Vec<u8>, source: impl Into<String>) -> Result<()> {
        let path = normalize_path(path)?;
        let source = source.into();
        if let Some(old) = self.files.get(&path) {
            bail!("{path}: added to the memdisk twice (from {} and from {source})", old.source);
        }
        self.files.insert(path, MemdiskFile { data, source });
        Ok(())
    }

    /// The file at memdisk path `path` (a leading `/` is ignored).
    pub fn get(&self, path: &str) -> Option<&MemdiskFile> {
        self.files.get(path.trim_start_matches('/'))
    }

    /// Total size of the files' contents.
    pub fn content_len(&self) -> u64 {
        self.files.values().map(|f| f.data.len() as u64).sum()
    }

    /// The paths, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Parse the memdisk's `rxen.toml` (named `name` in messages) and check it against the
    /// files: see [`check_policy_files`].
    pub fn check_policy(&self) -> Result<Policy> {
        let Some(f) = self.get(POLICY_PATH) else {
            bail!(
                "{POLICY_PATH}: the memdisk has no boot policy: give --config FILE, --kernel HOST, \
                 or --add {POLICY_PATH}=HOST"
            );
        };
        let policy = parse_policy_bytes(&f.data, &f.source)?;
        check_policy_files(&policy, &f.source, |p| self.get(p).map(|f| (&f.data[..], f.source.clone())))?;
        Ok(policy)
    }

    /// The memdisk image (ustar), deterministic: files in sorted order.
    pub fn finish(self) -> Result<Vec<u8>> {
        let mut b = MemdiskBuilder::new();
        for (path, f) in self.files {
            b.add_file(&path, f.data).map_err(|e| anyhow!("{path} (from {}): {e}", f.source))?;
        }
        Ok(b.finish())
    }
}

/// Parse policy text `bytes`, named `name` in messages ("NAME:LINE:COL: MSG").
pub fn parse_policy_bytes(bytes: &[u8], name: &str) -> Result<Policy> {
    let text = std::str::from_utf8(bytes).map_err(|e| anyhow!("{name}: not UTF-8 ({e})"))?;
    parse_policy(text).map_err(|e| anyhow!("{}", e.in_file(name)))
}

/// The memdisk path of `p` when it names a file in the memdisk (volume `memdisk`, or no
/// volume: the loader's root volume is the memdisk), else `None` (modules and disks are
/// resolved at boot).
pub fn memdisk_path(p: &FilePath) -> Option<&str> {
    match p.volume.as_deref() {
        None | Some(MEMDISK_VOLUME) => Some(p.path.trim_start_matches('/')),
        Some(_) => None,
    }
}

/// Every memdisk file a policy step names must exist (`lookup` returns its bytes and how
/// to name it in messages), and every kernel must be recognised by
/// `rxen_loader::kernel::detect`. `policy_name` names the policy in messages.
pub fn check_policy_files<'a>(
    policy: &Policy,
    policy_name: &str,
    lookup: impl Fn(&str) -> Option<(&'a [u8], String)>,
) -> Result<()> {
    // A path without a volume is on the root volume: the memdisk until a search step
    // picks a disk's volume (the generic policy's `/vmlinuz` after `file = "/vmlinuz"`).
    let mut root_is_memdisk = true;
    for (i, step) in policy.steps.iter().enumerate() {
        let label = match &step.name {
            Some(n) => format!("step {n:?}"),
            None => format!("step {}", i + 1),
        };
        if matches!(step.kind, StepKind::Search(_)) {
            root_is_memdisk = false;
        }
        let in_memdisk = |p: &FilePath| -> Option<String> {
            match p.volume {
                None if !root_is_memdisk => None,
                _ => memdisk_path(p).map(str::to_owned),
            }
        };
        // Search steps name nothing in the memdisk.
        if let StepKind::Kernel(k) = &step.kind {
            let missing = |what: &str, p: &FilePath| {
                anyhow!("{policy_name}:{}: {label}: {what} {p} is not in the memdisk", step.line)
            };
            if let Some(path) = in_memdisk(&k.kernel) {
                let (bytes, name) = lookup(&path).ok_or_else(|| missing("kernel", &k.kernel))?;
                if let Err(e) = detect(bytes) {
                    bail!("{name}: not a bootable kernel: {e}");
                }
            }
            for initrd in k.initrd.iter().filter(|_| !k.initrd_optional) {
                if let Some(path) = in_memdisk(initrd) {
                    lookup(&path).ok_or_else(|| missing("initrd", initrd))?;
                }
            }
        }
    }
    Ok(())
}

/// `s` as a TOML basic string, quotes included. Control characters are refused: a kernel
/// command line is one line of text.
pub fn toml_string(s: &str) -> Result<String> {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => bail!("control character {c:?} in {s:?}"),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// Memdisk names of `n` initrds given with `--kernel`: `initrd.img`, or `initrd0.img`,
/// `initrd1.img`, ...
pub fn initrd_names(n: usize) -> Vec<String> {
    match n {
        1 => vec!["initrd.img".to_owned()],
        n => (0..n).map(|i| format!("initrd{i}.img")).collect(),
    }
}

/// The `rxen.toml` generated for `--kernel`: one kernel step, `standalone`.
/// The policy of an image built from a GRUB script (`--config grub.cfg`): run it.
pub const GRUB_CFG_POLICY: &str = "# generated by rxen-mkimage for --config grub.cfg\nversion = 1\n\n[[step]]\ntype = \"config\"\nname = \"grub-cfg\"\nfiles = [\"(memdisk)/grub.cfg\"]\n";

pub fn generated_policy(initrds: &[String], cmdline: &str) -> Result<String> {
    let mut s = String::from("# generated by rxen-mkimage\nversion = 1\n[[step]]\ntype = \"kernel\"\n");
    s.push_str("name = \"standalone\"\n");
    s.push_str("kernel = \"(memdisk)/vmlinuz\"\n");
    if !initrds.is_empty() {
        let list: Vec<String> = initrds.iter().map(|n| format!("\"(memdisk)/{n}\"")).collect();
        s.push_str(&format!("initrd = [{}]\n", list.join(", ")));
    }
    let cmdline = toml_string(cmdline).map_err(|e| anyhow!("--cmdline: {e}"))?;
    s.push_str(&format!("cmdline = {cmdline}\n"));
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(normalize_path("/boot/vmlinuz").unwrap(), "boot/vmlinuz");
        assert_eq!(normalize_path("vmlinuz").unwrap(), "vmlinuz");
        assert!(normalize_path("/").is_err());
        assert!(normalize_path("a//b").is_err());
        assert!(normalize_path("a/../b").is_err());
        assert!(normalize_path("a/").is_err());
    }

    #[test]
    fn duplicates() {
        let mut m = Memdisk::new();
        m.add("a", vec![1], "/x").unwrap();
        let e = m.add("/a", vec![2], "/y").unwrap_err().to_string();
        assert_eq!(e, "a: added to the memdisk twice (from /x and from /y)");
    }

    #[test]
    fn toml_strings() {
        assert_eq!(toml_string("console=hvc0 quiet").unwrap(), "\"console=hvc0 quiet\"");
        assert_eq!(toml_string(r#"a="b c" \d"#).unwrap(), r#""a=\"b c\" \\d""#);
        assert!(toml_string("a\nb").is_err());
    }

    #[test]
    fn initrds() {
        assert!(initrd_names(0).is_empty());
        assert_eq!(initrd_names(1), ["initrd.img"]);
        assert_eq!(initrd_names(2), ["initrd0.img", "initrd1.img"]);
    }

    #[test]
    fn generated_policy_parses() {
        for n in 0..3 {
            let names = initrd_names(n);
            let text = generated_policy(&names, "console=hvc0 root=\"/dev/xvda 1\" \\").unwrap();
            let policy = parse_policy(&text).unwrap_or_else(|e| panic!("{}\n{text}", e.in_file("rxen.toml")));
            assert_eq!(policy.steps.len(), 1);
            let step = &policy.steps[0];
            assert_eq!(step.name.as_deref(), Some("standalone"));
            match &step.kind {
                StepKind::Kernel(k) => {
                    assert_eq!(k.kernel.volume.as_deref(), Some("memdisk"));
                    assert_eq!(memdisk_path(&k.kernel), Some("vmlinuz"));
                    let got: Vec<&str> = k.initrd.iter().filter_map(memdisk_path).collect();
                    assert_eq!(got, names);
                    assert_eq!(k.cmdline, "console=hvc0 root=\"/dev/xvda 1\" \\");
                }
                _ => panic!("not a kernel step"),
            }
        }
    }
}
