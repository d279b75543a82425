// SPDX-License-Identifier: MIT OR Apache-2.0
//! The guest-config corpus: real distributions' boot configurations under
//! `tests/fixtures/configs/<name>/` (see `SOURCES.md` there), each evaluated on an
//! in-memory filesystem and checked against its `expected` file: the entry GRUB (or
//! extlinux, or GRUB legacy) would boot, with its kernel, initrds and command line; or, for
//! the hostile ones, the error that stops them.
//!
//! Layout of a fixture: `devices` (one line per device: `NAME uuid=UUID [label=LABEL]`, the
//! first is where the configuration is looked for), a directory per device holding its
//! files, and `expected` (`key = value` lines: `format`, `title`, `id`, `kernel`, `initrd`
//! (repeated, in order), `cmdline`, `via`, `timeout`, `entries`, `env_write` (repeated),
//! `unsupported`, or `error` for a configuration that must be refused).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rxen_loader::config::configfs::MemFs;
use rxen_loader::config::discover::{self, default_order};
use rxen_loader::config::grub::Options;
use rxen_loader::config::menu::{Env, Format, Menu, Via, fallback_entries, select_default};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/configs")
}

fn add_tree(fs: &mut MemFs, dev: &str, root: &Path, dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            add_tree(fs, dev, root, &p);
        } else {
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().replace('\\', "/");
            fs.add_file(dev, &format!("/{rel}"), fs::read(&p).unwrap());
        }
    }
}

/// The fixture's devices as a [`MemFs`], and the first device's name.
fn load_fixture(dir: &Path) -> (MemFs, String) {
    let devices = fs::read_to_string(dir.join("devices")).unwrap();
    let mut first = None;
    let mut fs = MemFs::default();
    for line in devices.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap();
        let (mut uuid, mut label) = ("", "");
        for w in words {
            if let Some(u) = w.strip_prefix("uuid=") {
                uuid = u;
            } else if let Some(l) = w.strip_prefix("label=") {
                label = l;
            }
        }
        fs.add_device(name, uuid, label);
        let d = dir.join(name);
        if d.is_dir() {
            add_tree(&mut fs, name, &d, &d);
        }
        first.get_or_insert_with(|| name.to_string());
    }
    let first = first.expect("a device");
    fs.default_device = first.clone();
    (fs, first)
}

fn expected(dir: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(dir.join("expected")).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("{}: bad line {l:?}", dir.display()));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

fn env_writes(menu: &Menu, entry: usize) -> Vec<String> {
    menu.env_writes_for(entry)
        .flat_map(|w| w.vars.iter())
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect()
}

/// Check one fixture; returns a description of what differs.
fn check(dir: &Path) -> Result<(), String> {
    let (mut fs, dev) = load_fixture(dir);
    let want = expected(dir);
    let t0 = Instant::now();
    let r = discover::load(&mut fs, &dev, &default_order(), &Env::new(), &Options::default());
    let took = t0.elapsed();
    if took.as_secs() > 10 {
        return Err(format!("took {took:?}"));
    }
    if let Some((_, e)) = want.iter().find(|(k, _)| k == "error") {
        return match r {
            Err(err) if err.to_string().contains(e.as_str()) => Ok(()),
            Err(err) => Err(format!("error {err:?}, expected one containing {e:?}")),
            Ok(m) => Err(format!("no error (expected {e:?}); menu of {} entries", m.entries.len())),
        };
    }
    let menu = r.map_err(|e| format!("error: {e}"))?;
    let genv = discover::read_grubenv(&mut fs, &dev);
    let sel = select_default(&menu, &genv).ok_or("no entry selected")?;
    let e = &menu.entries[sel.entry];
    let mut got: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let fmt = match menu.format {
        Format::Grub => "grub",
        Format::Bls => "bls",
        Format::Extlinux => "extlinux",
        Format::MenuLst => "menulst",
    };
    got.insert("format", vec![fmt.into()]);
    got.insert("title", vec![e.title.clone()]);
    got.insert("id", vec![e.id.clone()]);
    got.insert("kernel", e.kernel.iter().map(|k| k.to_string()).collect());
    got.insert("initrd", e.initrds.iter().map(|k| k.to_string()).collect());
    got.insert("cmdline", vec![e.cmdline.clone()]);
    got.insert(
        "via",
        vec![match sel.via {
            Via::NextEntry => "next_entry".into(),
            Via::Default => "default".into(),
            Via::First => "first".into(),
        }],
    );
    got.insert("timeout", vec![menu.timeout.map_or("none".into(), |t| t.to_string())]);
    got.insert("entries", vec![menu.entries.len().to_string()]);
    got.insert("env_write", env_writes(&menu, sel.entry));
    got.insert("unsupported", menu.entries.iter().filter_map(|e| e.unsupported.clone()).collect());
    got.insert("fallback", fallback_entries(&menu).iter().map(|&i| menu.entries[i].title.clone()).collect());
    got.insert("messages", vec![menu.messages.len().to_string()]);
    let mut keys: Vec<&str> = want.iter().map(|(k, _)| k.as_str()).collect();
    keys.dedup();
    let mut diffs = Vec::new();
    for k in keys {
        let w: Vec<&str> = want.iter().filter(|(kk, _)| kk == k).map(|(_, v)| v.as_str()).collect();
        let g = got.get(k).ok_or_else(|| format!("unknown key {k}"))?;
        if g.iter().map(String::as_str).collect::<Vec<_>>() != w {
            diffs.push(format!("  {k}: got {g:?}, expected {w:?}"));
        }
    }
    // Every fixture names at least what GRUB would boot.
    for k in ["title", "kernel", "cmdline"] {
        if !want.iter().any(|(kk, _)| kk == k) {
            diffs.push(format!("  `expected` lacks `{k}` (got {:?})", got[k]));
        }
    }
    if diffs.is_empty() { Ok(()) } else { Err(format!("{}\n  messages: {:#?}", diffs.join("\n"), menu.messages)) }
}

fn all_fixtures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for base in [fixtures(), fixtures().join("hostile")] {
        for e in fs::read_dir(&base).unwrap() {
            let p = e.unwrap().path();
            if p.join("devices").is_file() {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

#[test]
fn corpus() {
    let all = all_fixtures();
    assert!(all.len() >= 18, "fixtures missing: {all:?}");
    let mut failed = Vec::new();
    for dir in &all {
        if let Err(e) = check(dir) {
            failed.push(format!("{}:\n{e}", dir.strip_prefix(fixtures()).unwrap().display()));
        }
    }
    assert!(failed.is_empty(), "{} of {} fixtures differ:\n{}", failed.len(), all.len(), failed.join("\n"));
}

/// Hostile nesting stops at the limits with a small stack: the loader has 128 KiB in all
/// (these need under 40 KiB in a release build; a debug build's frames are several times
/// larger, hence a larger stack here).
/// Release builds need under 40 KiB; debug frames are many times larger.
const STACK: usize = if cfg!(debug_assertions) { 1024 * 1024 } else { 64 * 1024 };

#[test]
fn recursion_fits_a_small_stack() {
    use rxen_loader::config::grub::evaluate;
    let cases = [
        ("function f { if true; then if true; then if true; then f; fi; fi; fi; }\nf\n", "nested deeper than 64"),
        ("function f { f; }\nf\n", "nested deeper than 64"),
        ("function f { g; }\nfunction g { while true; do for i in a; do f; done; done; }\nf\n", "nested deeper"),
        ("submenu a { source /s.cfg }\n", "submenus nested deeper than 16"),
        ("source /t.cfg\n", "nested deeper than 64"),
    ];
    for (src, want) in cases {
        let h = std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || {
                let mut fs = MemFs::new("d");
                fs.add_file("d", "/s.cfg", "submenu a { source /s.cfg }\n");
                fs.add_file("d", "/t.cfg", "if true; then source /t.cfg; fi\n");
                evaluate(src, "t.cfg", &mut fs, &Env::new(), &Options::default()).unwrap_err().to_string()
            })
            .unwrap();
        let e = h.join().unwrap();
        assert!(e.contains(want), "{src:?}: {e}");
    }
    let deep = format!("{}echo{}\n", "if true; then ".repeat(63), "; fi".repeat(63));
    let h = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            rxen_loader::config::grub::evaluate(&deep, "t", &mut MemFs::new("d"), &Env::new(), &Options::default())
                .is_ok()
        })
        .unwrap();
    assert!(h.join().unwrap());
}
