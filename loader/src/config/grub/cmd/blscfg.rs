// SPDX-License-Identifier: MIT OR Apache-2.0
//! Red Hat's `blscfg` (rhboot's `grub-core/commands/blscfg.c`): menu entries from the Boot
//! Loader Specification snippets in `$blsdir` (`/loader/entries`).

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::config::bls;
use crate::config::grub::eval::{EntryDef, Interp, MAX_BLS, R, split_device};
use crate::config::grub::parser::{Body, parse};

/// rhboot's `blscfg [default|non-default|ID|(DEV)DIR]` (and `bls_import`): BLS snippets
/// become menu entries, newest first.
pub(super) fn blscfg(interp: &mut Interp<'_>, _name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    if interp.run.is_some() {
        return Ok(0);
    }
    let (mut show_default, mut show_other, mut only_id, mut explicit) = (true, true, None, None);
    if let [a] = args {
        match a.as_str() {
            "default" => show_other = false,
            "non-default" => show_default = false,
            s if s.starts_with('(') => explicit = Some(s.to_string()),
            s => {
                only_id = Some(s.to_string());
                show_default = false;
                show_other = false;
            }
        }
    }
    let (dev, dirs): (Option<String>, Vec<String>) = match explicit.as_deref().map(split_device) {
        Some((d, dir)) => (d.map(String::from), vec![dir.to_string()]),
        None => {
            let dir = interp.get("blsdir").unwrap_or(bls::ENTRIES_DIR).to_string();
            let root = interp.get("root").filter(|r| !r.is_empty()).map(String::from);
            (root, vec![dir, bls::BOOT_ENTRIES_DIR.to_string()])
        }
    };
    let mut found = None;
    for dir in &dirs {
        if let Ok(names) = interp.fs.list(dev.as_deref(), dir) {
            found = Some((dir.clone(), names));
            break;
        }
    }
    let Some((dir, names)) = found else {
        interp.msg(format!("blscfg: no {} directory", dirs.join(" or ")));
        return Ok(0);
    };
    let mut entries = Vec::new();
    for name in names.iter().filter(|n| bls::is_entry_file_name(n)).take(MAX_BLS) {
        interp.step()?;
        let path = format!("{}/{name}", dir.trim_end_matches('/'));
        match interp.fs.read(dev.as_deref(), &path, interp.lim.file_size) {
            Ok(data) => entries.push(bls::parse_entry(name, &String::from_utf8_lossy(&data), bls::Dialect::Rhboot)),
            Err(e) => interp.msg(format!("blscfg: {path}: {e}")),
        }
    }
    let sorted = bls::sort_rhboot(entries);
    let def = interp.get("default").map(String::from);
    for (idx, e) in sorted.iter().enumerate() {
        if interp.bls_visible.contains(&e.id) {
            continue;
        }
        let is_def = def.as_deref().is_some_and(|d| bls::is_default_entry(d, e, idx));
        if (show_default && is_def) || (show_other && !is_def) || only_id.as_deref() == Some(e.id.as_str()) {
            interp.bls_visible.insert(e.id.clone());
            let file = match &dev {
                Some(d) => format!("({d}){dir}/{}.conf", e.id),
                None => format!("{dir}/{}.conf", e.id),
            };
            bls_entry(interp, e, &file)?;
        }
    }
    Ok(0)
}

/// rhboot's `create_entry`: the entry's commands as text, run like any entry.
#[inline(never)]
fn bls_entry(interp: &mut Interp<'_>, e: &bls::BlsEntry, file: &str) -> R<()> {
    let Some(linux) = e.linux.as_deref() else {
        interp.msg(format!("blscfg: {file}: no `linux` key, skipped"));
        return Ok(());
    };
    let lookup = |k: &str| interp.get(k).map(String::from);
    let options = bls::expand_rhboot(e.options.first().map(String::as_str), &lookup)
        .or_else(|| bls::expand_rhboot(interp.get("default_kernelopts"), &lookup));
    let mut src = String::new();
    if interp.get("save_default") == Some("true") {
        src.push_str("savedefault\n");
    }
    src.push_str("load_video\nset gfxpayload=keep\ninsmod gzio\n");
    src.push_str(&format!("linux ($root){linux}"));
    if let Some(o) = &options {
        src.push(' ');
        src.push_str(o);
    }
    src.push('\n');
    let early: Vec<String> =
        interp.get("early_initrd").map(|s| s.split(' ').map(String::from).collect()).unwrap_or_default();
    if !e.initrd.is_empty() || !early.is_empty() {
        src.push_str("initrd");
        if !early.is_empty() {
            let base = e.initrd.first().map_or(linux, String::as_str);
            let prefix = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            for i in &early {
                src.push_str(&format!(" ($root){prefix}{i}"));
            }
        }
        for i in &e.initrd {
            src.push_str(&format!(" ($root){i}"));
        }
        src.push('\n');
    }
    let (cmds, errors) = parse(&src);
    for err in errors {
        interp.msg(format!("blscfg: {file}: syntax error in the generated entry: {}", err.msg));
    }
    let title = e.title.clone().unwrap_or_else(|| linux.to_string());
    let mut args = vec![title.clone()];
    args.extend(e.grub_arg.iter().cloned());
    let users = bls::expand_rhboot(e.grub_users.as_deref(), &|k: &str| interp.get(k).map(String::from));
    let def = EntryDef {
        title,
        id: e.id.clone(),
        args,
        classes: e.grub_class.clone(),
        users,
        hotkey: e.grub_hotkey.clone(),
        body: Rc::new(cmds),
        file: Rc::from(file),
        line: 1,
    };
    interp.add_item(false, def)
}
