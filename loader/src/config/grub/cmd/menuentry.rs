// SPDX-License-Identifier: MIT OR Apache-2.0
//! `menuentry` and `submenu` (`grub-core/commands/menuentry.c`).

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};

use super::args::{Opt, Takes, opt, parse_opts};
use crate::config::grub::eval::{ERR_BAD_ARGUMENT, EntryDef, Interp, R};
use crate::config::grub::parser::{Body, parse};

/// `menuentry TITLE [ARG...] [--class C] [--users U] [--unrestricted] [--hotkey K] [--id ID]
/// { ... }` (or `--source TEXT` for the block), and `submenu` alike: a menu item, whose
/// commands run when the menu is made.
pub(super) fn menuentry(interp: &mut Interp<'_>, name: &str, args: &[String], block: Option<&Body>) -> R<i32> {
    const SPECS: &[Opt] = &[
        opt("class", None, Takes::Value),
        opt("users", None, Takes::Optional),
        opt("hotkey", None, Takes::Value),
        opt("source", None, Takes::Value),
        opt("id", None, Takes::Value),
        opt("unrestricted", None, Takes::No),
    ];
    let submenu = name == "submenu";
    let what = if submenu { "submenu" } else { "menuentry" };
    let p = match parse_opts(SPECS, args, false) {
        Ok(p) => p,
        Err(e) => {
            interp.msg(format!("{what}: {e}"));
            return Ok(ERR_BAD_ARGUMENT);
        }
    };
    let Some(title) = p.args.first().cloned() else {
        interp.msg(format!("{what}: missing title"));
        return Ok(ERR_BAD_ARGUMENT);
    };
    let body = match (p.value("source"), block) {
        (Some(_), Some(_)) => {
            interp.msg(format!("{what}: multiple menuentry definitions"));
            return Ok(ERR_BAD_ARGUMENT);
        }
        (Some(src), None) => {
            let (cmds, errors) = parse(src);
            for e in errors {
                interp.msg(format!("{what} --source: syntax error: {}", e.msg));
            }
            Rc::new(cmds)
        }
        (None, Some(b)) => b.clone(),
        (None, None) => {
            interp.msg(format!("{what}: no menuentry definition"));
            return Ok(ERR_BAD_ARGUMENT);
        }
    };
    let users = if let Some(u) = p.value("users") {
        Some(u.to_string())
    } else if p.has("unrestricted") {
        None
    } else {
        Some(String::new())
    };
    let def = EntryDef {
        id: p.value("id").map_or_else(|| title.clone(), String::from),
        title,
        args: p.args.clone(),
        classes: p.values("class"),
        users,
        hotkey: p.value("hotkey").map(String::from),
        body,
        file: interp.file.clone(),
        line: interp.line,
    };
    interp.add_item(submenu, def)?;
    Ok(0)
}
