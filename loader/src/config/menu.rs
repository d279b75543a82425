// SPDX-License-Identifier: MIT OR Apache-2.0
//! What every guest-config reader produces — a [`Menu`] of [`Entry`]s — and GRUB's rules for
//! choosing one: [`select_default`] and [`fallback_entries`].
//!
//! Entries are kept flat, in menu order; an entry inside a submenu carries its position at
//! each level (`path`, GRUB's numbering) and the titles of the submenus around it, and the
//! submenus themselves are listed in [`Menu::submenus`], so `default=1>2` and
//! `gnulinux-advanced-UUID>gnulinux-6.1.0-13-amd64-advanced-UUID` resolve as GRUB resolves them.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// Variables, e.g. a grubenv block's (`saved_entry`, `next_entry`, `kernelopts`).
pub type Env = BTreeMap<String, String>;

/// A guest configuration that could not be read, at a place (line 0: the whole file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MenuError {
    /// The file as the configuration names it, e.g. `(hd0,gpt2)/boot/grub/grub.cfg`.
    pub file: String,
    pub line: u32,
    pub msg: String,
}

impl MenuError {
    pub fn new(file: &str, line: u32, msg: impl Into<String>) -> MenuError {
        MenuError { file: file.to_string(), line, msg: msg.into() }
    }
}

impl fmt::Display for MenuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.msg)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.msg)
        }
    }
}

impl core::error::Error for MenuError {}

/// Which reader made a menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A GRUB 2 script (`grub.cfg`), BLS entries included through `blscfg`.
    Grub,
    /// Boot Loader Specification entries read directly.
    Bls,
    /// `extlinux.conf` / `syslinux.cfg`.
    Extlinux,
    /// GRUB legacy `menu.lst` / `grub.conf`.
    MenuLst,
}

/// A file an entry loads: as the configuration wrote it, and where it resolves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootPath {
    /// The device to read from (`hd0,gpt2`); `None`: the device the configuration came from.
    pub device: Option<String>,
    /// Absolute path on that device.
    pub path: String,
    /// As written after variable expansion, e.g. `($root)/vmlinuz` expanded to
    /// `(hd0,gpt2)/vmlinuz`, or `/boot/vmlinuz-6.1.0-13-amd64`.
    pub spec: String,
}

impl fmt::Display for BootPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.device {
            Some(d) => write!(f, "({d}){}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

/// A wish to change the GRUB environment block (`save_env`, `savedefault`), never carried
/// out by the readers: the caller decides per policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvWrite {
    /// The grubenv file as GRUB names it, e.g. `(hd0,gpt2)/boot/grub/grubenv`.
    pub file: String,
    /// Where it resolves.
    pub device: Option<String>,
    pub path: String,
    /// Name and new value (`None`: delete).
    pub vars: Vec<(String, Option<String>)>,
    /// `file:line` of the command that asked.
    pub at: String,
}

/// A bootable (or at least listed) menu entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub title: String,
    /// `--id` (GRUB), the BLS file name without `.conf`, the extlinux LABEL; else the title.
    pub id: String,
    /// Its index at each menu level, GRUB's numbering (submenus count as items).
    pub path: Vec<usize>,
    /// Titles of the submenus it sits in, outermost first.
    pub submenu: Vec<String>,
    pub kernel: Option<BootPath>,
    /// Loaded in order after the kernel.
    pub initrds: Vec<BootPath>,
    /// The kernel command line as GRUB builds it (arguments joined, quoted where needed),
    /// without GRUB's `BOOT_IMAGE=` prefix (see [`Entry::grub_cmdline`]).
    pub cmdline: String,
    /// GRUB's `$root` when the kernel command ran.
    pub root: Option<String>,
    pub classes: Vec<String>,
    /// `--users` (`Some("")` when only superusers may boot it, GRUB's default); `None` for
    /// `--unrestricted`.
    pub users: Option<String>,
    pub hotkey: Option<String>,
    /// Why rxen cannot boot this entry (`chainloader`, `multiboot2`, `fwsetup`, ...).
    pub unsupported: Option<String>,
    /// `save_env` calls the entry makes when it runs (`recordfail`, `savedefault`).
    pub env_writes: Vec<EnvWrite>,
    /// Problems met while running the entry's commands, `file:line: ...`.
    pub messages: Vec<String>,
    /// Where it was defined.
    pub file: String,
    pub line: u32,
}

impl Entry {
    /// A kernel to load and nothing rxen cannot do.
    pub fn is_bootable(&self) -> bool {
        self.kernel.is_some() && self.unsupported.is_none()
    }

    /// `BOOT_IMAGE=<kernel as written> <cmdline>`: the command line GRUB's x86 `linux`
    /// loader hands the kernel.
    pub fn grub_cmdline(&self) -> String {
        let Some(k) = &self.kernel else { return self.cmdline.clone() };
        let mut s = format!("BOOT_IMAGE={}", quote_arg(&k.spec));
        if !self.cmdline.is_empty() {
            s.push(' ');
            s.push_str(&self.cmdline);
        }
        s
    }

    /// Submenu titles and the title, joined with `>` (for messages).
    pub fn display_title(&self) -> String {
        let mut s = String::new();
        for t in &self.submenu {
            s.push_str(t);
            s.push('>');
        }
        s.push_str(&self.title);
        s
    }
}

/// A GRUB submenu (it holds the entries whose `path` starts with its own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submenu {
    pub title: String,
    pub id: String,
    pub path: Vec<usize>,
    /// `default` as the submenu's own commands set it, which wins over the rest of the
    /// outer `default` path.
    pub default: Option<String>,
}

/// What a configuration offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Menu {
    pub format: Format,
    /// The configuration file, as GRUB would name it.
    pub file: String,
    pub entries: Vec<Entry>,
    pub submenus: Vec<Submenu>,
    /// The default as the configuration left it: GRUB's `default` variable (index, title, id
    /// or `>`-separated path), an extlinux label, a menu.lst number, or `saved` (use
    /// `saved_entry` from the environment).
    pub default: Option<String>,
    /// Seconds before the default boots; `None`: wait for a person (GRUB's unset or negative
    /// `timeout`). The caller's policy decides what "nobody is there" means.
    pub timeout: Option<i64>,
    /// GRUB's `timeout_style` (`menu`, `countdown`, `hidden`).
    pub timeout_style: Option<String>,
    /// Entries to try when the default fails, in order (GRUB's `fallback`, same syntax as
    /// `default`).
    pub fallback: Vec<String>,
    /// Problems met, `file:line: ...` (unknown commands, syntax errors GRUB skips over).
    pub messages: Vec<String>,
    /// `save_env` calls made while reading the configuration (e.g. clearing `next_entry`).
    pub env_writes: Vec<EnvWrite>,
    /// GRUB's `superusers`, when set (entries are then restricted unless `--unrestricted`).
    pub superusers: Option<String>,
}

impl Menu {
    /// The grubenv writes booting entry `entry` asks for: those made while reading the
    /// configuration, then the entry's own (`savedefault`, `recordfail`).
    pub fn env_writes_for(&self, entry: usize) -> impl Iterator<Item = &EnvWrite> {
        self.env_writes.iter().chain(self.entries.get(entry).into_iter().flat_map(|e| &e.env_writes))
    }

    pub fn new(format: Format, file: &str) -> Menu {
        Menu {
            format,
            file: file.to_string(),
            entries: Vec::new(),
            submenus: Vec::new(),
            default: None,
            timeout: None,
            timeout_style: None,
            fallback: Vec::new(),
            messages: Vec::new(),
            env_writes: Vec::new(),
            superusers: None,
        }
    }
}

/// GRUB's argument quoting for the kernel command line (`grub_create_loader_cmdline`): an
/// argument with a space is put in double quotes; `\`, `'` and `"` get a backslash; `\xHH`
/// passes through.
pub fn quote_arg(arg: &str) -> String {
    let b = arg.as_bytes();
    let mut out = String::with_capacity(arg.len() + 2);
    let space = arg.contains(' ');
    if space {
        out.push('"');
    }
    let mut i = 0;
    for (pos, c) in arg.char_indices() {
        if pos < i {
            continue;
        }
        if c == '\\'
            && b.get(pos + 1) == Some(&b'x')
            && b.get(pos + 2).is_some_and(u8::is_ascii_hexdigit)
            && b.get(pos + 3).is_some_and(u8::is_ascii_hexdigit)
        {
            out.push_str(&arg[pos..pos + 4]);
            i = pos + 4;
            continue;
        }
        if matches!(c, '\\' | '\'' | '"') {
            out.push('\\');
        }
        out.push(c);
        i = pos + c.len_utf8();
    }
    if space {
        out.push('"');
    }
    out
}

/// Join kernel arguments as GRUB does.
pub fn join_cmdline(args: &[String]) -> String {
    let mut s = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&quote_arg(a));
    }
    s
}

/// How the default was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `next_entry` (boot once): the caller should clear it from grubenv when it may write.
    NextEntry,
    /// The configuration's default (or `saved_entry` for `saved`).
    Default,
    /// Nothing matched: GRUB's first entry.
    First,
}

/// The entry to boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Index into [`Menu::entries`].
    pub entry: usize,
    pub via: Via,
}

enum Item {
    Entry(usize),
    Submenu(usize),
}

fn items_at(menu: &Menu, prefix: &[usize]) -> Vec<(usize, Item)> {
    let mut v: Vec<(usize, Item)> = Vec::new();
    let d = prefix.len();
    for (i, e) in menu.entries.iter().enumerate() {
        if e.path.len() == d + 1 && e.path[..d] == *prefix {
            v.push((e.path[d], Item::Entry(i)));
        }
    }
    for (i, s) in menu.submenus.iter().enumerate() {
        if s.path.len() == d + 1 && s.path[..d] == *prefix {
            v.push((s.path[d], Item::Submenu(i)));
        }
    }
    v.sort_by_key(|(k, _)| *k);
    v
}

/// Split a default spec at its first unescaped `>` (`>>` is a literal `>`): the first
/// component, unescaped, and the rest.
fn first_component(spec: &str) -> (String, Option<&str>) {
    let b = spec.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let mut start = 0;
    while i < b.len() {
        if b[i] == b'>' {
            out.push_str(&spec[start..i]);
            if b.get(i + 1) == Some(&b'>') {
                out.push('>');
                i += 2;
                start = i;
                continue;
            }
            return (out, Some(&spec[i + 1..]));
        }
        i += 1;
    }
    out.push_str(&spec[start..]);
    (out, None)
}

/// GRUB's `grub_strtoul(s, &end, 0)`: leading blanks, `0x` hex, `0` octal, else decimal.
/// Returns the value and the unparsed tail, or `None` when no digit was read or it overflows.
pub fn strtoul(s: &str) -> Option<(u64, &str)> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r']);
    let b = t.as_bytes();
    let (base, mut i) = if b.first() == Some(&b'0') && b.get(1) == Some(&b'x') {
        (16, 2)
    } else if b.first() == Some(&b'0') && b.get(1).is_some_and(|c| (b'0'..=b'7').contains(c)) {
        (8, 0)
    } else {
        (10, 0)
    };
    let start = i;
    let mut v: u64 = 0;
    while let Some(d) = b.get(i).and_then(|c| (*c as char).to_digit(base)) {
        v = v.checked_mul(u64::from(base))?.checked_add(u64::from(d))?;
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((v, &t[i..]))
}

/// Which item at one level `spec` names: an id (first component), then a title (whole spec,
/// `>`-aware), then an index (digits followed by nothing, a blank or `>`). rhboot checks ids
/// first so a BLS id starting with hex digits is not read as a number; upstream accepts
/// `1>2`, which this keeps.
fn match_item(menu: &Menu, items: &[(usize, Item)], spec: &str) -> Option<usize> {
    let (first, _) = first_component(spec);
    let token = first.split([' ', '\t']).next().unwrap_or("");
    let id_of = |it: &Item| match it {
        Item::Entry(i) => &menu.entries[*i].id,
        Item::Submenu(i) => &menu.submenus[*i].id,
    };
    let title_of = |it: &Item| match it {
        Item::Entry(i) => &menu.entries[*i].title,
        Item::Submenu(i) => &menu.submenus[*i].title,
    };
    if let Some(pos) = items.iter().position(|(_, it)| *id_of(it) == token) {
        return Some(pos);
    }
    if let Some(pos) = items.iter().position(|(_, it)| *title_of(it) == first) {
        return Some(pos);
    }
    let (n, tail) = strtoul(spec)?;
    if !(tail.is_empty() || tail.starts_with([' ', '\t', '>'])) {
        return None;
    }
    items.iter().position(|(k, _)| *k as u64 == n)
}

/// Resolve a default spec to an entry, descending into submenus. `strict`: `None` when the
/// top level names nothing (else GRUB's fallback to the first item).
fn resolve_at(menu: &Menu, prefix: &mut Vec<usize>, spec: Option<&str>, strict: bool) -> Option<usize> {
    let items = items_at(menu, prefix);
    if items.is_empty() {
        return None;
    }
    let found = spec.and_then(|s| match_item(menu, &items, s));
    if strict && found.is_none() {
        return None;
    }
    let (k, item) = &items[found.unwrap_or(0)];
    match item {
        Item::Entry(i) => Some(*i),
        Item::Submenu(s) => {
            let rest = spec.and_then(|s| first_component(s).1).filter(|r| !r.is_empty());
            let sub_default = menu.submenus[*s].default.as_deref().or(rest);
            prefix.push(*k);
            let r = resolve_at(menu, prefix, sub_default, false);
            prefix.pop();
            r
        }
    }
}

/// The entry a `default`-style spec names (index, id, title, `>` path), or `None`.
pub fn resolve(menu: &Menu, spec: &str) -> Option<usize> {
    resolve_at(menu, &mut Vec::new(), Some(spec), true)
}

/// GRUB's choice of the entry to boot when nobody picks one. For GRUB scripts the script
/// already applied `next_entry` and `saved_entry` (through `load_env`) to `default`; for the
/// other formats `next_entry` from `env` wins (boot once), then `default` with `saved`
/// meaning `env`'s `saved_entry`.
pub fn select_default(menu: &Menu, env: &Env) -> Option<Selection> {
    if menu.format != Format::Grub
        && let Some(n) = env.get("next_entry").filter(|n| !n.is_empty())
        && let Some(entry) = resolve(menu, n)
    {
        return Some(Selection { entry, via: Via::NextEntry });
    }
    let spec = match menu.default.as_deref() {
        Some("saved") => env.get("saved_entry").map(String::as_str),
        other => other,
    };
    if let Some(entry) = spec.and_then(|s| resolve(menu, s)) {
        return Some(Selection { entry, via: Via::Default });
    }
    resolve_at(menu, &mut Vec::new(), None, false).map(|entry| Selection { entry, via: Via::First })
}

/// The entries `fallback` names, in order, resolvable ones only.
pub fn fallback_entries(menu: &Menu) -> Vec<usize> {
    menu.fallback.iter().filter_map(|s| resolve(menu, s)).collect()
}

/// Where `msg` was found, for messages: `file:line: msg`.
pub fn at(file: &str, line: u32, msg: &str) -> String {
    if line == 0 { format!("{file}: {msg}") } else { format!("{file}:{line}: {msg}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(title: &str, id: &str, path: &[usize]) -> Entry {
        Entry { title: title.into(), id: id.into(), path: path.to_vec(), ..Default::default() }
    }

    fn menu() -> Menu {
        let mut m = Menu::new(Format::Grub, "grub.cfg");
        m.entries.push(entry("Debian", "gnulinux-simple-U", &[0]));
        m.submenus.push(Submenu {
            title: "Advanced".into(),
            id: "gnulinux-advanced-U".into(),
            path: vec![1],
            default: None,
        });
        m.entries.push(entry("Debian, 6.1.0-13", "gnulinux-6.1.0-13-advanced-U", &[1, 0]));
        m.entries.push(entry("Debian, 6.1.0-13 (recovery)", "gnulinux-6.1.0-13-recovery-U", &[1, 1]));
        m.entries.push(entry("Debian, 6.1.0-12", "gnulinux-6.1.0-12-advanced-U", &[1, 2]));
        m.entries.push(entry("a>b", "odd", &[2]));
        m
    }

    #[test]
    fn resolution() {
        let m = menu();
        assert_eq!(resolve(&m, "0"), Some(0));
        assert_eq!(resolve(&m, "1"), Some(1));
        assert_eq!(resolve(&m, "1>2"), Some(3));
        assert_eq!(resolve(&m, "gnulinux-advanced-U>gnulinux-6.1.0-12-advanced-U"), Some(3));
        assert_eq!(resolve(&m, "Advanced>Debian, 6.1.0-13 (recovery)"), Some(2));
        assert_eq!(resolve(&m, "a>>b"), Some(4));
        assert_eq!(resolve(&m, "gnulinux-advanced-U>nothing"), Some(1));
        assert_eq!(resolve(&m, "nothing"), None);
        assert_eq!(resolve(&m, "7"), None);
        assert_eq!(resolve(&m, "0x2"), Some(4));
    }

    #[test]
    fn default_and_saved() {
        let mut m = menu();
        let mut env = Env::new();
        m.default = Some("nothing".into());
        assert_eq!(select_default(&m, &env), Some(Selection { entry: 0, via: Via::First }));
        m.format = Format::Bls;
        m.default = Some("saved".into());
        env.insert("saved_entry".into(), "gnulinux-6.1.0-12-advanced-U".into());
        // A BLS-style lookup: ids at the top level only; this one is in a submenu.
        assert_eq!(select_default(&m, &env).unwrap().via, Via::First);
        env.insert("saved_entry".into(), "1>1".into());
        assert_eq!(select_default(&m, &env), Some(Selection { entry: 2, via: Via::Default }));
        env.insert("next_entry".into(), "odd".into());
        assert_eq!(select_default(&m, &env), Some(Selection { entry: 4, via: Via::NextEntry }));
        m.fallback = ["2", "junk", "1"].map(String::from).to_vec();
        assert_eq!(fallback_entries(&m), [4, 1]);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_arg("a b"), "\"a b\"");
        assert_eq!(quote_arg("x=\"y\""), "x=\\\"y\\\"");
        assert_eq!(quote_arg("\\x41\\"), "\\x41\\\\");
        assert_eq!(join_cmdline(&["ro".into(), "quiet".into()]), "ro quiet");
        assert_eq!(strtoul("010"), Some((8, "")));
        assert_eq!(strtoul("12>3"), Some((12, ">3")));
        assert_eq!(strtoul("abc"), None);
    }
}
