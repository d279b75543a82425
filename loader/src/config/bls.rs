// SPDX-License-Identifier: MIT OR Apache-2.0
//! Boot Loader Specification type 1 entries (`/boot/loader/entries/*.conf`, or
//! `/loader/entries` on a separate `/boot`): `title`, `version`, `machine-id`, `linux`,
//! `initrd` (several), `options` (several), and the `grub_*` keys Red Hat's GRUB reads.
//!
//! Entries are ordered the way Red Hat's GRUB `blscfg` orders them (`grub-core/commands/
//! blscfg.c`): the file name without `.conf` is split like an RPM name-version-release at
//! its last two `-`, the parts compared with rpm's version comparison, newest first, and an
//! entry comparing equal to one already listed is dropped. `$kernelopts`-style variables in
//! `options` come from grubenv.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Ordering;

use super::configfs::ConfigFs;
use super::menu::{BootPath, Entry, Env, Format, Menu, MenuError};

/// Where entries live on a separate `/boot` (and where `blscfg` looks first, on `$root`).
pub const ENTRIES_DIR: &str = "/loader/entries";
/// Where entries live when `/boot` is a directory of the root filesystem.
pub const BOOT_ENTRIES_DIR: &str = "/boot/loader/entries";
/// Largest entry file read.
pub const MAX_ENTRY_FILE: usize = 64 * 1024;
/// Most entries read from one directory.
pub const MAX_ENTRIES: usize = 512;

/// How a snippet is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// The specification: blank lines skipped, later `title`/`linux` win, `options` lines
    /// joined with a space.
    Spec,
    /// Red Hat's `blscfg`: reading stops at the first line without a value (a blank line
    /// included), the first `title`/`linux`/`options` win.
    Rhboot,
}

/// One snippet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlsEntry {
    /// The file name without `.conf`: GRUB's entry id and `saved_entry` value.
    pub id: String,
    pub title: Option<String>,
    pub version: Option<String>,
    pub machine_id: Option<String>,
    pub linux: Option<String>,
    pub initrd: Vec<String>,
    /// Each `options` line (Rhboot: only the first is used).
    pub options: Vec<String>,
    pub devicetree: Option<String>,
    pub architecture: Option<String>,
    pub sort_key: Option<String>,
    pub grub_class: Vec<String>,
    pub grub_arg: Vec<String>,
    pub grub_users: Option<String>,
    pub grub_hotkey: Option<String>,
    /// Keys this reader does not use, in file order.
    pub other: Vec<(String, String)>,
}

/// What `blscfg` reads: not hidden, longer than `.conf`, ending in `.conf`.
pub fn is_entry_file_name(name: &str) -> bool {
    !name.starts_with('.') && name.len() > 5 && name.ends_with(".conf")
}

/// Parse the snippet `file_name` (e.g. `6a9857a393724b7a981ebb5b8495b9ea-6.8.5-301.fc40.x86_64.conf`).
pub fn parse_entry(file_name: &str, text: &str, dialect: Dialect) -> BlsEntry {
    let mut e = BlsEntry { id: file_name.strip_suffix(".conf").unwrap_or(file_name).to_string(), ..Default::default() };
    let first = dialect == Dialect::Rhboot;
    let put = |slot: &mut Option<String>, v: &str| {
        if !first || slot.is_none() {
            *slot = Some(v.to_string());
        }
    };
    for raw in text.split('\n') {
        let line = raw.trim_start_matches([' ', '\t']).trim_end_matches('\r');
        if line.starts_with('#') {
            continue;
        }
        let (key, value) = match dialect {
            Dialect::Rhboot => {
                let sep = line.find(' ').or_else(|| line.find('\t'));
                match sep {
                    Some(i) if i + 1 < line.len() => (&line[..i], line[i + 1..].trim_start_matches([' ', '\t'])),
                    _ => break,
                }
            }
            Dialect::Spec => {
                let Some(i) = line.find([' ', '\t']) else { continue };
                let v = line[i + 1..].trim_matches([' ', '\t']);
                if v.is_empty() {
                    continue;
                }
                (&line[..i], v)
            }
        };
        match key {
            "title" => put(&mut e.title, value),
            "version" => put(&mut e.version, value),
            "machine-id" => put(&mut e.machine_id, value),
            "linux" => put(&mut e.linux, value),
            "initrd" => e.initrd.push(value.to_string()),
            "options" => e.options.push(value.to_string()),
            "devicetree" => put(&mut e.devicetree, value),
            "architecture" => put(&mut e.architecture, value),
            "sort-key" => put(&mut e.sort_key, value),
            "grub_class" => e.grub_class.push(value.to_string()),
            "grub_arg" => e.grub_arg.push(value.to_string()),
            "grub_users" => put(&mut e.grub_users, value),
            "grub_hotkey" => put(&mut e.grub_hotkey, value),
            _ => e.other.push((key.to_string(), value.to_string())),
        }
    }
    e
}

fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// rpm's version comparison (`vercmp` in blscfg.c): alternating numeric and alphabetic
/// segments, numbers by value, `~` sorts before anything, `+` after the end.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut one, mut two) = (0usize, 0usize);
    let sep = |c: u8| c != 0 && !c.is_ascii_alphanumeric() && c != b'~' && c != b'+';
    while at(a, one) != 0 || at(b, two) != 0 {
        while sep(at(a, one)) {
            one += 1;
        }
        while sep(at(b, two)) {
            two += 1;
        }
        let (c1, c2) = (at(a, one), at(b, two));
        if c1 == b'~' || c2 == b'~' {
            if c1 != b'~' {
                return Ordering::Greater;
            }
            if c2 != b'~' {
                return Ordering::Less;
            }
            one += 1;
            two += 1;
            continue;
        }
        if c1 == b'+' || c2 == b'+' {
            if c1 == 0 {
                return Ordering::Less;
            }
            if c2 == 0 {
                return Ordering::Greater;
            }
            if c1 != b'+' {
                return Ordering::Greater;
            }
            if c2 != b'+' {
                return Ordering::Less;
            }
            one += 1;
            two += 1;
            continue;
        }
        if c1 == 0 || c2 == 0 {
            break;
        }
        let (mut s1, mut s2) = (one, two);
        let isnum = c1.is_ascii_digit();
        let class = |c: u8| if isnum { c.is_ascii_digit() } else { c.is_ascii_alphabetic() };
        while class(at(a, s1)) {
            s1 += 1;
        }
        while class(at(b, s2)) {
            s2 += 1;
        }
        if one == s1 {
            return Ordering::Less;
        }
        if two == s2 {
            return if isnum { Ordering::Greater } else { Ordering::Less };
        }
        let (mut x, mut y) = (&a[one..s1], &b[two..s2]);
        if isnum {
            while x.first() == Some(&b'0') {
                x = &x[1..];
            }
            while y.first() == Some(&b'0') {
                y = &y[1..];
            }
            match x.len().cmp(&y.len()) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match x.cmp(y) {
            Ordering::Equal => {}
            o => return o,
        }
        one = s1;
        two = s2;
    }
    match (at(a, one), at(b, two)) {
        (0, 0) => Ordering::Equal,
        (0, _) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// Name, version, release of an id split at its last two `-` (`split_package_string`).
fn split_nvr(s: &str) -> (&str, &str, &str) {
    let (rest, release) = match s.rfind('-') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (name, version) = match rest.rfind('-') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    match version {
        Some(v) => (name, v, release.unwrap_or("")),
        None => (name, release.unwrap_or(""), ""),
    }
}

/// blscfg's `bls_cmp`: `Greater` when `a` is newer.
pub fn bls_cmp(a: &str, b: &str) -> Ordering {
    let (n0, v0, r0) = split_nvr(a);
    let (n1, v1, r1) = split_nvr(b);
    vercmp(n0, n1).then_with(|| vercmp(v0, v1)).then_with(|| vercmp(r0, r1))
}

/// Order entries (given in directory order) as blscfg's `bls_add_entry` does: each goes
/// before the first listed entry it is newer than; one equal to a listed entry is dropped.
pub fn sort_rhboot(entries: Vec<BlsEntry>) -> Vec<BlsEntry> {
    let mut list: Vec<BlsEntry> = Vec::with_capacity(entries.len());
    'next: for e in entries {
        for i in 0..list.len() {
            match bls_cmp(&e.id, &list[i].id) {
                Ordering::Equal => continue 'next,
                Ordering::Greater => {
                    list.insert(i, e);
                    continue 'next;
                }
                Ordering::Less => {}
            }
        }
        list.push(e);
    }
    list
}

/// blscfg's `is_default_entry`: `default` names the entry by id, title or index.
pub fn is_default_entry(default: &str, e: &BlsEntry, idx: usize) -> bool {
    if default == e.id || e.title.as_deref() == Some(default) {
        return true;
    }
    let (neg, d) = match default.trim_start().strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, default),
    };
    !neg && super::menu::strtoul(d).is_some_and(|(n, _)| n == idx as u64)
}

/// blscfg's `expand_val`, quirks included: `$name` becomes the variable's value followed by
/// a space (an unset one vanishes, and so does the blank after it); a lone character before
/// a `$` or at the very end is lost. `None` when nothing is left (GRUB then uses
/// `$default_kernelopts`).
pub fn expand_rhboot(value: Option<&str>, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let v = value?.as_bytes();
    let mut buf: Option<Vec<u8>> = None;
    let append = |is_var: bool, buf: &mut Option<Vec<u8>>, start: usize, end: usize| {
        let len = (end + 1).saturating_sub(start);
        let field = &v[start.min(v.len())..(start + len).min(v.len())];
        if is_var {
            let Some(val) = lookup(&String::from_utf8_lossy(field)) else { return };
            let b = buf.get_or_insert_with(Vec::new);
            b.extend_from_slice(val.as_bytes());
            b.push(b' ');
        } else {
            buf.get_or_insert_with(Vec::new).extend_from_slice(field);
        }
    };
    let (mut start, mut end, mut is_var) = (0usize, 0usize, false);
    for i in 0..v.len() {
        if v[i] == b'$' && v[end] != b'\\' {
            if start != end {
                append(is_var, &mut buf, start, end);
            }
            is_var = true;
            start = i + 1;
        } else if is_var && !(v[i].is_ascii_alphanumeric() || v[i] == b'_') {
            append(is_var, &mut buf, start, end);
            is_var = false;
            start = i;
            if v[start] == b' ' {
                start += 1;
            }
        }
        end = i;
    }
    if start != end {
        append(is_var, &mut buf, start, end);
    }
    buf.map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// `$name` and `${name}` replaced by their values (unset: nothing); blanks collapsed.
pub fn expand_vars(value: &str, env: &Env) -> String {
    let b = value.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let mut lit = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let (name_start, braced) = if b.get(i + 1) == Some(&b'{') { (i + 2, true) } else { (i + 1, false) };
            let mut j = name_start;
            while b.get(j).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                j += 1;
            }
            if j > name_start && (!braced || b.get(j) == Some(&b'}')) {
                out.push_str(&value[lit..i]);
                if let Some(v) = env.get(&value[name_start..j]) {
                    out.push_str(v);
                }
                i = if braced { j + 1 } else { j };
                lit = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&value[lit..]);
    out.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

/// Read the entries in `dir` on `device`, in directory order (bad files become messages).
pub fn read_dir(
    fs: &mut dyn ConfigFs,
    device: &str,
    dir: &str,
    dialect: Dialect,
    messages: &mut Vec<String>,
) -> Result<Vec<BlsEntry>, String> {
    let names = fs.list(Some(device), dir)?;
    let mut out = Vec::new();
    let files = names.iter().filter(|n| is_entry_file_name(n)).count();
    if files > MAX_ENTRIES {
        messages.push(format!(
            "({device}){dir}: {files} entry files, more than the {MAX_ENTRIES} read; the rest are ignored"
        ));
    }
    for name in names.iter().filter(|n| is_entry_file_name(n)).take(MAX_ENTRIES) {
        let path = format!("{}/{name}", dir.trim_end_matches('/'));
        match fs.read(Some(device), &path, MAX_ENTRY_FILE) {
            Ok(data) => out.push(parse_entry(name, &String::from_utf8_lossy(&data), dialect)),
            Err(e) => messages.push(format!("({device}){path}: {e}")),
        }
    }
    Ok(out)
}

/// A menu straight from the BLS entries on `device` (no grub.cfg): `/loader/entries`, else
/// `/boot/loader/entries`. Paths are on `device`; `$var`s in `options` come from `env`
/// (grubenv: `kernelopts`, `tuned_params`); the default is `saved` (grubenv's
/// `saved_entry`, an entry id), after `next_entry`.
pub fn load(fs: &mut dyn ConfigFs, device: &str, env: &Env) -> Result<Menu, MenuError> {
    let mut messages = Vec::new();
    let mut found = None;
    for dir in [ENTRIES_DIR, BOOT_ENTRIES_DIR] {
        if let Ok(list) = read_dir(fs, device, dir, Dialect::Spec, &mut messages)
            && !list.is_empty()
        {
            found = Some((dir, list));
            break;
        }
    }
    let Some((dir, list)) = found else {
        // Say why, when entry files were there but none could be read (too large, ...).
        let why = match messages.first() {
            Some(m) => format!("no BLS entries ({m})"),
            None => String::from("no BLS entries"),
        };
        return Err(MenuError::new(&format!("({device}){BOOT_ENTRIES_DIR}"), 0, why));
    };
    let mut menu = Menu::new(Format::Bls, &format!("({device}){dir}"));
    menu.messages = messages;
    menu.default = Some("saved".into());
    let list = sort_rhboot(list);
    // systemd-boot's loader.conf beside the entries (an ESP as /boot): its `default` glob
    // picks the entry when grubenv saved none, its `timeout` is the menu's.
    let conf_path = format!("{}/loader.conf", dir.trim_end_matches("/entries"));
    if let Ok(data) = fs.read(Some(device), &conf_path, MAX_ENTRY_FILE) {
        let conf = parse_loader_conf(&String::from_utf8_lossy(&data));
        menu.timeout = conf.timeout.or(menu.timeout);
        let saved = env.get("next_entry").or(env.get("saved_entry")).is_some_and(|v| !v.is_empty());
        if let Some(pat) = conf.default.filter(|_| !saved) {
            match list.iter().position(|e| glob(&pat, &e.id) || glob(&pat, &format!("{}.conf", e.id))) {
                Some(i) => menu.default = Some(i.to_string()),
                None => menu.messages.push(format!("({device}){conf_path}: default {pat:?} matches no entry")),
            }
        }
    }
    for e in list {
        let file = format!("({device}){dir}/{}.conf", e.id);
        let Some(linux) = e.linux.clone() else {
            menu.messages.push(format!("{file}: no `linux` key, skipped"));
            continue;
        };
        let bp = |p: &str| BootPath { device: Some(device.to_string()), path: p.to_string(), spec: p.to_string() };
        let cmdline = expand_vars(&e.options.join(" "), env);
        let title = e.title.clone().unwrap_or_else(|| linux.clone());
        menu.entries.push(Entry {
            title,
            id: e.id.clone(),
            path: alloc::vec![menu.entries.len()],
            kernel: Some(bp(&linux)),
            initrds: e.initrd.iter().map(|i| bp(i)).collect(),
            cmdline,
            root: Some(device.to_string()),
            classes: e.grub_class.clone(),
            users: e.grub_users.clone(),
            hotkey: e.grub_hotkey.clone(),
            file,
            line: 1,
            ..Default::default()
        });
    }
    if menu.entries.is_empty() {
        return Err(MenuError::new(&menu.file, 0, "no BLS entry has a `linux` key"));
    }
    Ok(menu)
}

/// What rxen takes from systemd-boot's `loader.conf`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LoaderConf {
    /// `default`: a glob over entry ids (`arch.conf`, `fedora-*`).
    pub default: Option<String>,
    /// `timeout`: seconds (`menu-force`: wait for a person).
    pub timeout: Option<i64>,
}

/// Parse `loader.conf` (`key value` lines, `#` comments; systemd-boot's `@saved` and the
/// other keys are not rxen's business and are ignored).
pub fn parse_loader_conf(text: &str) -> LoaderConf {
    let mut c = LoaderConf::default();
    for line in text.lines().take(MAX_ENTRY_FILE) {
        let line = line.trim();
        let (k, v) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let v = v.trim();
        match k {
            "default" if !v.is_empty() && !v.starts_with('@') => c.default = Some(v.to_string()),
            "timeout" if v == "menu-force" => c.timeout = None,
            "timeout" => c.timeout = v.parse::<i64>().ok().filter(|t| *t >= 0).or(c.timeout),
            _ => {}
        }
    }
    c
}

/// systemd-boot's glob: `*` any run, `?` one character, everything else itself. Iterative
/// with one backtrack point, so no pattern costs more than len(pat) * len(name) steps.
pub fn glob(pat: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pat.chars().collect(), name.chars().collect());
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(&c) if c == '?' || c == n[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn refused_entry_files_are_named() {
        use crate::config::configfs::MemFs;
        // The only entry file is too large: the error says so instead of just "no entries".
        let mut fs = MemFs::new("d");
        let mut big = String::from("title big\nlinux /vmlinuz\noptions ");
        big.push_str(&"x".repeat(MAX_ENTRY_FILE));
        fs.add_file("d", "/loader/entries/big.conf", big);
        let e = load(&mut fs, "d", &Env::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "(d)/boot/loader/entries: no BLS entries ((d)/loader/entries/big.conf: /loader/entries/big.conf: 65569 \
             bytes is over the 65536-byte limit)"
        );
        // More entry files than are read: the first MAX_ENTRIES are, and a message says so.
        let mut fs = MemFs::new("d");
        for i in 0..MAX_ENTRIES + 3 {
            fs.add_file("d", &format!("/loader/entries/e{i:04}.conf"), format!("title e{i}\nlinux /k{i}\n"));
        }
        let m = load(&mut fs, "d", &Env::default()).unwrap();
        assert_eq!(m.entries.len(), MAX_ENTRIES);
        assert_eq!(m.messages, ["(d)/loader/entries: 515 entry files, more than the 512 read; the rest are ignored"]);
    }

    #[test]
    fn loader_conf_and_its_glob() {
        let c = parse_loader_conf("# systemd-boot\ntimeout 3\nconsole-mode max\ndefault arch-*\n");
        assert_eq!(c, LoaderConf { default: Some("arch-*".into()), timeout: Some(3) });
        assert_eq!(parse_loader_conf("default @saved\ntimeout menu-force\n"), LoaderConf::default());
        assert!(glob("arch-*", "arch-lts"));
        assert!(glob("arch.conf", "arch.conf"));
        assert!(glob("*lts*", "arch-lts.conf"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("arch-*", "fedora"));
        assert!(!glob("a?c", "ac"));
        let long: String = core::iter::repeat_n('a', 5000).collect();
        assert!(!glob(&format!("{}b", "*a".repeat(50)), &long));
    }

    #[test]
    fn rpm_vercmp() {
        use Ordering::*;
        for (a, b, o) in [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("2.0.1", "2.0", Greater),
            ("6.10.0", "6.9.12", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0^", "1.0", Equal),
            ("1.0+x", "1.0", Greater),
            ("a", "1", Less),
            ("1", "a", Greater),
            ("001", "1", Equal),
            ("1.0a", "1.0", Greater),
            ("fc40", "fc41", Less),
            ("1_0", "1.0", Equal),
        ] {
            assert_eq!(vercmp(a, b), o, "{a} vs {b}");
        }
    }

    #[test]
    fn rhboot_order() {
        let ids = [
            "f0-6.8.5-301.fc40.x86_64",
            "f0-0-rescue",
            "f0-6.10.3-200.fc40.x86_64",
            "f0-6.9.12-200.fc40.x86_64",
            "f0-6.10.3-200.fc40.x86_64",
        ];
        let list = ids.iter().map(|id| BlsEntry { id: id.to_string(), ..Default::default() }).collect();
        let sorted: Vec<String> = sort_rhboot(list).into_iter().map(|e| e.id).collect();
        assert_eq!(
            sorted,
            ["f0-6.10.3-200.fc40.x86_64", "f0-6.9.12-200.fc40.x86_64", "f0-6.8.5-301.fc40.x86_64", "f0-0-rescue"]
        );
    }

    #[test]
    fn expand_like_blscfg() {
        let env = |k: &str| match k {
            "kernelopts" => Some("root=/dev/vda2 ro".to_string()),
            _ => None,
        };
        assert_eq!(expand_rhboot(Some("$kernelopts $tuned_params"), &env).as_deref(), Some("root=/dev/vda2 ro "));
        assert_eq!(
            expand_rhboot(Some("root=UUID=x ro rhgb quiet"), &env).as_deref(),
            Some("root=UUID=x ro rhgb quiet")
        );
        assert_eq!(expand_rhboot(Some("a $kernelopts quiet"), &env).as_deref(), Some("a root=/dev/vda2 ro quiet"));
        assert_eq!(expand_rhboot(Some("x"), &env), None);
        assert_eq!(expand_rhboot(None, &env), None);
        let mut e = Env::new();
        e.insert("kernelopts".into(), "root=/dev/vda2  ro".into());
        assert_eq!(expand_vars("${kernelopts} $tuned_params quiet $", &e), "root=/dev/vda2 ro quiet $");
    }

    #[test]
    fn parse_dialects() {
        let text = "title Fedora Linux (6.8.5)\nversion 6.8.5\nlinux /vmlinuz-6.8.5\ninitrd /initramfs-6.8.5.img\n\noptions a b\noptions c\n";
        let s = parse_entry("x-6.8.5.conf", text, Dialect::Spec);
        assert_eq!((s.id.as_str(), s.options.len(), s.title.as_deref()), ("x-6.8.5", 2, Some("Fedora Linux (6.8.5)")));
        let r = parse_entry("x-6.8.5.conf", text, Dialect::Rhboot);
        assert!(r.options.is_empty(), "rhboot stops at the blank line");
        assert_eq!(r.initrd, vec!["/initramfs-6.8.5.img".to_string()]);
        assert!(is_entry_file_name("a.conf") && !is_entry_file_name(".conf") && !is_entry_file_name(".a.conf"));
    }
}
