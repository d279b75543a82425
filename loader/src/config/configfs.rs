// SPDX-License-Identifier: MIT OR Apache-2.0
//! The seam between the guest-config readers and the guest's volumes: [`ConfigFs`].
//!
//! Devices are named the way the configuration names them, without parentheses:
//! `hd0,gpt2`, `hd0,msdos1`, `hd0,1`, `xvda,gpt2`, `lvm/vg-root`. `None` means "the device
//! the configuration came from" (GRUB's `$root` when nothing set it). The implementation
//! for real volumes maps GRUB's `hdN` to the Nth disk; [`MemFs`] is the in-memory fake the
//! host tests and the fuzzers use.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// What GRUB's `search` looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchBy {
    /// `--fs-uuid` / `-u`: the filesystem UUID (compared case-insensitively).
    FsUuid,
    /// `--label` / `-l`: the filesystem label.
    Label,
    /// `--file` / `-f`: the first device holding this file.
    File,
}

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub dir: bool,
    /// Bytes (0 for directories).
    pub size: u64,
}

/// Files the config readers may look at. Nothing here writes.
pub trait ConfigFs {
    /// The whole file `path` on `dev`; an error when it is not there, not a regular file, or
    /// longer than `limit` bytes.
    fn read(&mut self, dev: Option<&str>, path: &str, limit: usize) -> Result<Vec<u8>, String>;
    /// The names in directory `dir` on `dev` (no `.`/`..`), in the filesystem's own order.
    fn list(&mut self, dev: Option<&str>, dir: &str) -> Result<Vec<String>, String>;
    /// What `path` on `dev` is, or `None` when it is not there.
    fn stat(&mut self, dev: Option<&str>, path: &str) -> Option<Stat>;
    /// The first device matching, as a device name (`hd0,gpt2`).
    fn search(&mut self, by: SearchBy, value: &str) -> Option<String>;
}

/// A device of [`MemFs`].
#[derive(Clone, Debug, Default)]
pub struct MemDevice {
    pub uuid: String,
    pub label: String,
    /// Absolute path → contents. Directories exist implicitly.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// An in-memory [`ConfigFs`]: devices by name, each a map of files.
#[derive(Clone, Debug, Default)]
pub struct MemFs {
    pub devices: BTreeMap<String, MemDevice>,
    /// The device `None` stands for.
    pub default_device: String,
}

/// `/a//b/` → `/a/b`.
pub fn normalize_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 1);
    for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        out.push('/');
        out.push_str(c);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

impl MemFs {
    /// An empty fs whose default device is `dev`.
    pub fn new(default_device: &str) -> MemFs {
        let mut fs = MemFs { devices: BTreeMap::new(), default_device: default_device.to_string() };
        fs.devices.insert(default_device.to_string(), MemDevice::default());
        fs
    }

    /// Add (or replace) device `dev` with this UUID and label.
    pub fn add_device(&mut self, dev: &str, uuid: &str, label: &str) {
        let d = self.devices.entry(dev.to_string()).or_default();
        d.uuid = uuid.to_string();
        d.label = label.to_string();
    }

    /// Put a file on `dev` (created if missing).
    pub fn add_file(&mut self, dev: &str, path: &str, data: impl Into<Vec<u8>>) {
        self.devices.entry(dev.to_string()).or_default().files.insert(normalize_path(path), data.into());
    }

    fn device(&self, dev: Option<&str>) -> Result<&MemDevice, String> {
        let name = dev.unwrap_or(&self.default_device);
        self.devices.get(name).ok_or_else(|| format!("({name}): no such device"))
    }
}

impl ConfigFs for MemFs {
    fn read(&mut self, dev: Option<&str>, path: &str, limit: usize) -> Result<Vec<u8>, String> {
        let d = self.device(dev)?;
        let p = normalize_path(path);
        match d.files.get(&p) {
            Some(data) if data.len() > limit => {
                Err(format!("{p}: {} bytes is over the {limit}-byte limit", data.len()))
            }
            Some(data) => Ok(data.clone()),
            None => Err(format!("{p}: file not found")),
        }
    }

    fn list(&mut self, dev: Option<&str>, dir: &str) -> Result<Vec<String>, String> {
        let d = self.device(dev)?;
        let mut prefix = normalize_path(dir);
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        let mut names: Vec<String> = Vec::new();
        for p in d.files.keys() {
            if let Some(rest) = p.strip_prefix(&prefix) {
                let name = rest.split('/').next().unwrap_or("");
                if !name.is_empty() && names.last().map(String::as_str) != Some(name) {
                    names.push(name.to_string());
                }
            }
        }
        if names.is_empty() && prefix != "/" {
            return Err(format!("{dir}: directory not found"));
        }
        Ok(names)
    }

    fn stat(&mut self, dev: Option<&str>, path: &str) -> Option<Stat> {
        let d = self.device(dev).ok()?;
        let p = normalize_path(path);
        if let Some(data) = d.files.get(&p) {
            return Some(Stat { dir: false, size: data.len() as u64 });
        }
        let prefix = if p == "/" { p.clone() } else { format!("{p}/") };
        d.files.keys().any(|k| k.starts_with(&prefix)).then_some(Stat { dir: true, size: 0 })
    }

    fn search(&mut self, by: SearchBy, value: &str) -> Option<String> {
        let file = normalize_path(value);
        self.devices
            .iter()
            .find(|(_, d)| match by {
                SearchBy::FsUuid => !d.uuid.is_empty() && d.uuid.eq_ignore_ascii_case(value),
                SearchBy::Label => d.label == value,
                SearchBy::File => d.files.contains_key(&file),
            })
            .map(|(n, _)| n.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memfs() {
        let mut fs = MemFs::new("hd0,gpt2");
        fs.add_device("hd0,gpt2", "ABCD-1", "root");
        fs.add_file("hd0,gpt2", "/boot/grub/grub.cfg", "x");
        fs.add_file("hd0,gpt2", "/boot/vmlinuz", "kk");
        assert_eq!(fs.read(None, "//boot/grub/grub.cfg", 10).unwrap(), b"x");
        assert!(fs.read(None, "/boot/vmlinuz", 1).is_err());
        assert_eq!(fs.list(None, "/boot").unwrap(), ["grub", "vmlinuz"]);
        assert_eq!(fs.stat(None, "/boot"), Some(Stat { dir: true, size: 0 }));
        assert_eq!(fs.stat(Some("hd0,gpt2"), "/boot/vmlinuz"), Some(Stat { dir: false, size: 2 }));
        assert_eq!(fs.search(SearchBy::FsUuid, "abcd-1").as_deref(), Some("hd0,gpt2"));
        assert_eq!(fs.search(SearchBy::File, "/boot/vmlinuz").as_deref(), Some("hd0,gpt2"));
        assert_eq!(fs.search(SearchBy::Label, "nope"), None);
        assert!(fs.read(Some("hd9"), "/x", 10).is_err());
    }
}
