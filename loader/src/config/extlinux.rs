// SPDX-License-Identifier: MIT OR Apache-2.0
//! `extlinux.conf` / `syslinux.cfg` (Alpine, Arch and U-Boot-style installs).
//!
//! Keywords are case-insensitive: `DEFAULT`, `ONTIMEOUT`, `UI`, `PROMPT`, `TIMEOUT` (tenths
//! of a second), `LABEL`, `KERNEL`/`LINUX`, `INITRD` (a comma-separated list), `APPEND`
//! (`-` for none; `initrd=` in it counts when there is no `INITRD`), `MENU LABEL`,
//! `MENU DEFAULT`, `MENU HIDE`, `INCLUDE`/`MENU INCLUDE` (nested at most
//! [`MAX_INCLUDE_DEPTH`] deep), `TEXT HELP ... ENDTEXT`. Relative paths are relative to the
//! configuration file's directory, as extlinux resolves them. `LOCALBOOT`, `COM32` and
//! `.c32` kernels make an entry unsupported.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::configfs::ConfigFs;
use super::menu::{BootPath, Entry, Format, Menu, MenuError, at};

/// Deepest `INCLUDE` nesting.
pub const MAX_INCLUDE_DEPTH: u32 = 16;
/// Largest file read.
pub const MAX_FILE: usize = 1 << 20;
/// Most labels.
pub const MAX_LABELS: usize = 1024;

#[derive(Default)]
struct Label {
    name: String,
    title: Option<String>,
    kernel: Option<String>,
    initrd: Option<String>,
    append: Option<String>,
    unsupported: Option<String>,
    file: String,
    line: u32,
}

#[derive(Default)]
struct State {
    labels: Vec<Label>,
    default: Option<String>,
    ontimeout: Option<String>,
    menu_default: Option<String>,
    ui: bool,
    prompt: Option<i64>,
    timeout: Option<i64>,
    global_append: Option<String>,
    messages: Vec<String>,
    files_read: usize,
}

/// `dir` + `p` unless `p` is absolute.
fn join(dir: &str, p: &str) -> String {
    if p.starts_with('/') { p.to_string() } else { format!("{}/{p}", dir.trim_end_matches('/')) }
}

fn dir_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_matches([' ', '\t'])),
        None => (s, ""),
    }
}

struct Reader<'a> {
    fs: &'a mut dyn ConfigFs,
    device: String,
    /// Directory relative paths resolve against (the top configuration's).
    dir: String,
    st: State,
}

impl Reader<'_> {
    fn file(&mut self, path: &str, text: &str, depth: u32) -> Result<(), MenuError> {
        let name = format!("({}){path}", self.device);
        let mut in_text = false;
        for (n, raw) in text.split('\n').enumerate() {
            let line = (n + 1) as u32;
            let l = raw.trim_matches([' ', '\t', '\r']);
            let (kw, rest) = split_word(l);
            let kw = kw.to_ascii_lowercase();
            if in_text {
                in_text = kw != "endtext";
                continue;
            }
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let cur = self.st.labels.last_mut();
            match kw.as_str() {
                "label" => {
                    if self.st.labels.len() >= MAX_LABELS {
                        return Err(MenuError::new(&name, line, format!("more than {MAX_LABELS} labels")));
                    }
                    self.st.labels.push(Label {
                        name: rest.to_string(),
                        file: name.clone(),
                        line,
                        ..Default::default()
                    });
                }
                "menu" => {
                    let (sub, arg) = split_word(rest);
                    match (sub.to_ascii_lowercase().as_str(), cur) {
                        ("label", Some(c)) => c.title = Some(arg.replace('^', "")),
                        ("default", Some(c)) => self.st.menu_default = Some(c.name.clone()),
                        ("include", _) => self.include(arg, &name, line, depth)?,
                        _ => {}
                    }
                }
                "include" => self.include(rest, &name, line, depth)?,
                "default" => self.st.default = Some(split_word(rest).0.to_string()),
                "ontimeout" => self.st.ontimeout = Some(split_word(rest).0.to_string()),
                "ui" => self.st.ui = true,
                "prompt" => self.st.prompt = rest.parse().ok(),
                "timeout" => self.st.timeout = rest.parse().ok(),
                "kernel" | "linux" => {
                    if let Some(c) = cur {
                        let k = split_word(rest).0;
                        let lower = k.to_ascii_lowercase();
                        let other = [".c32", ".com", ".cbt", ".bin", ".bs", ".bss", ".0", ".img"];
                        if kw == "kernel" && other.iter().any(|e| lower.ends_with(e)) {
                            c.unsupported = Some(format!("KERNEL {k}"));
                        }
                        c.kernel = Some(k.to_string());
                    }
                }
                "initrd" => {
                    if let Some(c) = cur {
                        c.initrd = Some(rest.to_string());
                    }
                }
                "append" => {
                    let a = if rest == "-" { String::new() } else { rest.to_string() };
                    match cur {
                        Some(c) => c.append = Some(a),
                        None => self.st.global_append = Some(a),
                    }
                }
                "localboot" | "com32" | "comboot" | "boot" | "bss" | "pxe" | "fdimage" | "config" => {
                    if let Some(c) = cur {
                        c.unsupported = Some(kw.to_ascii_uppercase());
                    }
                }
                "text" => in_text = true,
                "fdt" | "fdtdir" | "devicetree" | "say" | "display" | "serial" | "console" | "font" | "kbdmap"
                | "implicit" | "allowoptions" | "noescape" | "nocomplete" | "ipappend" | "sysappend" | "path"
                | "totaltimeout" | "nohalt" | "f1" | "f2" | "f3" | "f4" | "f5" | "f6" | "f7" | "f8" | "f9" | "f10"
                | "f11" | "f12" | "menu_title" => {}
                _ => self.st.messages.push(at(&name, line, &format!("unknown keyword `{kw}` (ignored)"))),
            }
        }
        Ok(())
    }

    fn include(&mut self, file: &str, from: &str, line: u32, depth: u32) -> Result<(), MenuError> {
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(MenuError::new(from, line, format!("INCLUDE nested deeper than {MAX_INCLUDE_DEPTH} levels")));
        }
        self.st.files_read += 1;
        if self.st.files_read > 256 {
            return Err(MenuError::new(from, line, "more than 256 INCLUDEs"));
        }
        let path = join(&self.dir, split_word(file).0);
        match self.fs.read(Some(&self.device), &path, MAX_FILE) {
            Ok(data) => self.file(&path, &String::from_utf8_lossy(&data), depth + 1),
            Err(e) => {
                self.st.messages.push(at(from, line, &format!("INCLUDE {path}: {e}")));
                Ok(())
            }
        }
    }
}

/// The `initrd=` list in a command line (the last one counts, as in syslinux).
fn initrd_in(append: &str) -> Option<&str> {
    append.split_ascii_whitespace().filter_map(|w| w.strip_prefix("initrd=")).next_back()
}

/// Evaluate `text`, the file `path` on `device`.
pub fn evaluate(text: &str, path: &str, device: &str, fs: &mut dyn ConfigFs) -> Result<Menu, MenuError> {
    let mut r = Reader { fs, device: device.to_string(), dir: dir_of(path).to_string(), st: State::default() };
    r.file(path, text, 0)?;
    let (dir, st) = (r.dir, r.st);
    let mut menu = Menu::new(Format::Extlinux, &format!("({device}){path}"));
    menu.messages = st.messages;
    let bp = |p: &str| BootPath { device: Some(device.to_string()), path: join(&dir, p), spec: p.to_string() };
    for l in &st.labels {
        let append = l.append.clone().or_else(|| st.global_append.clone()).unwrap_or_default();
        let initrd = l.initrd.as_deref().or_else(|| initrd_in(&append));
        let mut e = Entry {
            title: l.title.clone().unwrap_or_else(|| l.name.clone()),
            id: l.name.clone(),
            path: alloc::vec![menu.entries.len()],
            kernel: l.kernel.as_deref().map(bp),
            initrds: initrd.map(|i| i.split(',').filter(|s| !s.is_empty()).map(bp).collect()).unwrap_or_default(),
            cmdline: append,
            root: Some(device.to_string()),
            users: None,
            unsupported: l.unsupported.clone(),
            file: l.file.clone(),
            line: l.line,
            ..Default::default()
        };
        if e.kernel.is_none() && e.unsupported.is_none() {
            e.messages.push(at(&l.file, l.line, "LABEL without KERNEL or LINUX"));
        }
        menu.entries.push(e);
    }
    let by_label = |name: &str| st.labels.iter().any(|l| l.name == name).then(|| name.to_string());
    menu.default = st
        .ontimeout
        .as_deref()
        .and_then(by_label)
        .or_else(|| st.menu_default.clone())
        .or_else(|| st.default.as_deref().and_then(by_label))
        .or_else(|| {
            let d = st.default.as_deref()?;
            st.labels.iter().find(|l| l.name.eq_ignore_ascii_case(d)).map(|l| l.name.clone())
        });
    let menu_ui = st.ui || st.default.as_deref().is_some_and(|d| d.to_ascii_lowercase().ends_with(".c32"));
    let tenths = st.timeout.unwrap_or(0).max(0);
    menu.timeout = if !menu_ui && st.prompt.unwrap_or(0) == 0 {
        Some(0)
    } else if tenths == 0 {
        None
    } else {
        Some((tenths + 9) / 10)
    };
    if menu.entries.is_empty() {
        return Err(MenuError::new(&menu.file, 0, "no LABEL"));
    }
    Ok(menu)
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
    fn alpine_style() {
        let mut fs = MemFs::new("hd0,1");
        fs.add_file(
            "hd0,1",
            "/boot/extlinux/more.cfg",
            "LABEL rescue\n  LINUX vmlinuz-lts\n  APPEND initrd=a,b single\n",
        );
        let text = "DEFAULT menu.c32\nPROMPT 0\nTIMEOUT 15\nLABEL lts\n  MENU DEFAULT\n  MENU LABEL ^Linux lts\n  LINUX /vmlinuz-lts\n  INITRD /initramfs-lts\n  APPEND root=UUID=x quiet\nlabel hdt\n  kernel hdt.c32\nINCLUDE more.cfg\ntext help\nLABEL fake\nendtext\n";
        let m = evaluate(text, "/boot/extlinux/extlinux.conf", "hd0,1", &mut fs).unwrap();
        assert_eq!(m.entries.len(), 3);
        let e = &m.entries[select_default(&m, &Env::new()).unwrap().entry];
        assert_eq!((e.title.as_str(), e.cmdline.as_str()), ("Linux lts", "root=UUID=x quiet"));
        assert_eq!(e.initrds[0].path, "/initramfs-lts");
        assert!(m.entries[1].unsupported.is_some());
        assert_eq!(
            m.entries[2].initrds.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(),
            ["/boot/extlinux/a", "/boot/extlinux/b"]
        );
        assert_eq!(m.entries[2].kernel.as_ref().unwrap().path, "/boot/extlinux/vmlinuz-lts");
        assert_eq!(m.timeout, Some(2));
    }

    #[test]
    fn include_loop_is_bounded() {
        let mut fs = MemFs::new("d");
        fs.add_file("d", "/a.cfg", "INCLUDE /a.cfg\n");
        let e = evaluate("LABEL x\nLINUX /k\nINCLUDE /a.cfg\n", "/extlinux.conf", "d", &mut fs).unwrap_err();
        assert!(e.to_string().contains("deeper than 16"), "{e}");
    }
}
