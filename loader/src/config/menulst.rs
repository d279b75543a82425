// SPDX-License-Identifier: MIT OR Apache-2.0
//! GRUB legacy `menu.lst` / `grub.conf` (old CentOS, Xen-era guests, what pygrub reads).
//!
//! Global commands: `default` (a number, or `saved`: the number in the `default` file next
//! to the configuration, where `savedefault` and `grub-set-default` keep it), `timeout`,
//! `fallback` (a list), `hiddenmenu`. Entries: `title`, then `root`/`rootnoverify` (`(hd0,0)`),
//! `kernel PATH ARGS`, `initrd PATH`, `savedefault`, `find --set-root FILE`. A command may be
//! separated from its argument by `=`. Legacy partitions count from 0: `(hd0,0)` is reported
//! as GRUB 2's `hd0,1`. Paths without a device are on the entry's root, or the
//! configuration's device when it set none.

use alloc::format;
use alloc::string::{String, ToString};

use super::configfs::{ConfigFs, SearchBy};
use super::menu::{BootPath, Entry, EnvWrite, Format, Menu, MenuError, at};

/// Largest file read.
pub const MAX_FILE: usize = 1 << 20;
/// Most entries.
pub const MAX_ENTRIES: usize = 1024;

/// `(hd0,0)` / `hd0,0` → `hd0,1`; `(hd0)` → `hd0`; `(hd0,0,a)` → `hd0,1,a`.
pub fn legacy_device(spec: &str) -> Option<String> {
    let inner = spec.trim().strip_prefix('(')?.strip_suffix(')')?;
    let mut parts = inner.split(',');
    let disk = parts.next()?.trim();
    if disk.is_empty() {
        return None;
    }
    let mut out = disk.to_string();
    if let Some(p) = parts.next() {
        let n: u32 = p.trim().parse().ok()?;
        out.push_str(&format!(",{}", n + 1));
    }
    for rest in parts {
        out.push(',');
        out.push_str(rest.trim());
    }
    Some(out)
}

/// Split `kw rest` where the separator may be blanks or `=`.
fn split_cmd(l: &str) -> (&str, &str) {
    let end = l.find([' ', '\t', '=']).unwrap_or(l.len());
    (&l[..end], l[end..].trim_start_matches([' ', '\t', '=']).trim_end())
}

/// Evaluate `text`, the file `path` on `device`.
pub fn evaluate(text: &str, path: &str, device: &str, fs: &mut dyn ConfigFs) -> Result<Menu, MenuError> {
    let file = format!("({device}){path}");
    let mut menu = Menu::new(Format::MenuLst, &file);
    let mut root: Option<String> = None;
    let mut default: Option<String> = None;
    let mut in_entry = false;
    let bp = |root: &Option<String>, spec: &str| -> Option<BootPath> {
        let (dev, p) = match spec.strip_prefix('(') {
            Some(_) => {
                let end = spec.find(')')?;
                (Some(legacy_device(&spec[..=end])?), &spec[end + 1..])
            }
            None => (root.clone(), spec),
        };
        Some(BootPath { device: dev.or_else(|| Some(device.to_string())), path: p.to_string(), spec: spec.to_string() })
    };
    for (n, raw) in text.split('\n').enumerate() {
        let line = (n + 1) as u32;
        let l = raw.trim_matches([' ', '\t', '\r']);
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (kw, rest) = split_cmd(l);
        if kw == "title" {
            if menu.entries.len() >= MAX_ENTRIES {
                return Err(MenuError::new(&file, line, format!("more than {MAX_ENTRIES} entries")));
            }
            in_entry = true;
            root = None;
            let i = menu.entries.len();
            menu.entries.push(Entry {
                title: rest.to_string(),
                id: i.to_string(),
                path: alloc::vec![i],
                root: Some(device.to_string()),
                users: None,
                file: file.clone(),
                line,
                ..Default::default()
            });
            continue;
        }
        if !in_entry {
            match kw {
                "default" => default = Some(rest.to_string()),
                "timeout" => menu.timeout = rest.trim().parse::<i64>().ok().filter(|t| *t >= 0),
                "fallback" => {
                    menu.fallback = rest.split([' ', '\t', ',']).filter(|s| !s.is_empty()).map(String::from).collect()
                }
                "hiddenmenu" | "password" | "splashimage" | "color" | "serial" | "terminal" | "gfxmenu"
                | "foreground" | "background" | "viewport" | "shade" | "lock" | "timeout_style" => {}
                _ => menu.messages.push(at(&file, line, &format!("unknown command `{kw}` (ignored)"))),
            }
            continue;
        }
        let i = menu.entries.len() - 1;
        match kw {
            "root" | "rootnoverify" => match legacy_device(split_cmd(rest).0) {
                Some(d) => {
                    root = Some(d.clone());
                    menu.entries[i].root = Some(d);
                }
                None => menu.messages.push(at(&file, line, &format!("`{kw} {rest}`: not a device"))),
            },
            "find" => {
                let target = rest.split_ascii_whitespace().rfind(|w| !w.starts_with("--")).unwrap_or("");
                if let Some(d) = fs.search(SearchBy::File, target) {
                    root = Some(d.clone());
                    menu.entries[i].root = Some(d);
                } else {
                    menu.messages.push(at(&file, line, &format!("find {target}: no device holds it")));
                }
            }
            "kernel" => {
                let (k, args) = split_cmd_blank(rest);
                match bp(&root, k) {
                    Some(p) if p.path.starts_with('/') => {
                        let e = &mut menu.entries[i];
                        e.kernel = Some(p);
                        e.cmdline = args.to_string();
                        e.initrds.clear();
                    }
                    _ => menu.messages.push(at(&file, line, &format!("kernel: bad path `{k}`"))),
                }
            }
            "initrd" => match bp(&root, split_cmd_blank(rest).0) {
                Some(p) if p.path.starts_with('/') => menu.entries[i].initrds = alloc::vec![p],
                _ => menu.messages.push(at(&file, line, &format!("initrd: bad path `{rest}`"))),
            },
            "savedefault" => {
                let p = format!("{}/default", dir_of(path));
                menu.entries[i].env_writes.push(EnvWrite {
                    file: format!("({device}){p}"),
                    device: Some(device.to_string()),
                    path: p,
                    vars: alloc::vec![("saved_entry".to_string(), Some(i.to_string()))],
                    at: format!("{file}:{line}"),
                });
            }
            "module" | "modulenounzip" | "chainloader" | "configfile" => {
                menu.entries[i].unsupported.get_or_insert_with(|| kw.to_string());
            }
            "makeactive" | "map" | "boot" | "quiet" | "lock" | "password" | "hide" | "unhide" | "uuid" => {}
            _ => menu.messages.push(at(&file, line, &format!("unknown command `{kw}` in an entry (ignored)"))),
        }
    }
    if menu.entries.is_empty() {
        return Err(MenuError::new(&file, 0, "no `title` entries"));
    }
    menu.default = match default.as_deref().map(str::trim) {
        Some("saved") => {
            let p = format!("{}/default", dir_of(path));
            let saved = fs.read(Some(device), &p, 4096).ok().and_then(|d| {
                let t = String::from_utf8_lossy(&d).into_owned();
                t.lines().next().map(|l| l.trim().to_string()).filter(|l| l.parse::<u32>().is_ok())
            });
            Some(saved.unwrap_or_else(|| "0".into()))
        }
        Some(d) => Some(d.to_string()),
        None => Some("0".into()),
    };
    Ok(menu)
}

fn split_cmd_blank(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

fn dir_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "",
        Some(i) => &path[..i],
    }
}

/// Read and evaluate `path` on `device`.
pub fn load(fs: &mut dyn ConfigFs, device: &str, path: &str) -> Result<Menu, MenuError> {
    let data = fs.read(Some(device), path, MAX_FILE).map_err(|e| MenuError::new(&format!("({device}){path}"), 0, e))?;
    evaluate(&String::from_utf8_lossy(&data), path, device, fs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::configfs::MemFs;
    use crate::config::menu::{Env, select_default};

    #[test]
    fn legacy() {
        assert_eq!(legacy_device("(hd0,0)").as_deref(), Some("hd0,1"));
        assert_eq!(legacy_device("(hd1)").as_deref(), Some("hd1"));
        assert_eq!(legacy_device("(hd0,4,a)").as_deref(), Some("hd0,5,a"));
        assert_eq!(legacy_device("hd0"), None);
        let mut fs = MemFs::new("hd0,1");
        fs.add_file("hd0,1", "/boot/grub/default", "1\n#\n#\n");
        let text = "default=saved\ntimeout=5\nfallback 0\nhiddenmenu\ntitle A\n\troot (hd0,0)\n\tkernel /vmlinuz-a ro root=/dev/xvda2\n\tinitrd /initrd-a.img\ntitle B\n\tkernel (hd0,1)/vmlinuz-b ro\n\tsavedefault\n";
        let m = evaluate(text, "/boot/grub/menu.lst", "hd0,1", &mut fs).unwrap();
        let s = select_default(&m, &Env::new()).unwrap();
        assert_eq!(s.entry, 1);
        let b = &m.entries[1];
        assert_eq!(b.kernel.as_ref().unwrap().to_string(), "(hd0,2)/vmlinuz-b");
        assert_eq!(b.env_writes[0].path, "/boot/grub/default");
        let a = &m.entries[0];
        assert_eq!(
            (a.kernel.as_ref().unwrap().to_string().as_str(), a.cmdline.as_str()),
            ("(hd0,1)/vmlinuz-a", "ro root=/dev/xvda2")
        );
        assert_eq!((m.timeout, m.fallback.len()), (Some(5), 1));
    }
}
