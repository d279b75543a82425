// SPDX-License-Identifier: MIT OR Apache-2.0
//! `search` and its shorthands (`grub-core/commands/search.c`): the configuration's
//! devices by file system UUID, label or a file they hold.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::args::{Opt, Takes, opt, parse_opts};
use crate::config::configfs::SearchBy;
use crate::config::grub::eval::{ERR_BAD_ARGUMENT, ERR_FILE_NOT_FOUND, ERR_INVALID_COMMAND, Interp, R};
use crate::config::grub::parser::Body;

/// `search [--file|--label|--fs-uuid] [--set[=VAR]] [--hint...] ID`: the device holding ID,
/// into VAR (`root` when `--set` names none).
pub(super) fn search(interp: &mut Interp<'_>, _name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    const SPECS: &[Opt] = &[
        opt("file", Some(b'f'), Takes::No),
        opt("label", Some(b'l'), Takes::No),
        opt("fs-uuid", Some(b'u'), Takes::No),
        opt("set", Some(b's'), Takes::Optional),
        opt("no-floppy", Some(b'n'), Takes::No),
        opt("efidisk-only", None, Takes::No),
        opt("cryptodisk-only", None, Takes::No),
        opt("root-dev-only", Some(b'r'), Takes::No),
        opt("hint", Some(b'h'), Takes::Value),
        opt("hint-ieee1275", None, Takes::Value),
        opt("hint-bios", None, Takes::Value),
        opt("hint-baremetal", None, Takes::Value),
        opt("hint-efi", None, Takes::Value),
        opt("hint-arc", None, Takes::Value),
    ];
    let p = match parse_opts(SPECS, args, true) {
        Ok(p) => p,
        Err(e) => {
            interp.msg(format!("search: {e}"));
            return Ok(ERR_BAD_ARGUMENT);
        }
    };
    // Hints for platforms GRUB does not know yet are skipped.
    let rest: Vec<&String> = p.args.iter().skip_while(|a| a.starts_with("--hint-")).collect();
    let mut var = p.has("set").then(|| p.value("set").unwrap_or("root").to_string());
    let id = match rest.first() {
        Some(id) => (*id).clone(),
        None => match p.value("set") {
            Some(v) => {
                var = Some("root".into());
                v.to_string()
            }
            None => {
                interp.msg("search: one argument expected");
                return Ok(ERR_BAD_ARGUMENT);
            }
        },
    };
    let by = if p.has("label") {
        SearchBy::Label
    } else if p.has("fs-uuid") {
        SearchBy::FsUuid
    } else if p.has("file") {
        SearchBy::File
    } else {
        interp.msg("search: unspecified search type");
        return Ok(ERR_INVALID_COMMAND);
    };
    do_search(interp, by, &id, var.as_deref())
}

/// `search.fs_uuid ID [VAR]`, `search.fs_label ID [VAR]` and `search.file ID [VAR]`.
pub(super) fn search_by(interp: &mut Interp<'_>, name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    let by = match name {
        "search.fs_uuid" => SearchBy::FsUuid,
        "search.fs_label" => SearchBy::Label,
        _ => SearchBy::File,
    };
    match args.first() {
        None => {
            interp.msg(format!("{name}: one argument expected"));
            Ok(ERR_BAD_ARGUMENT)
        }
        Some(id) => do_search(interp, by, id, args.get(1).map(String::as_str)),
    }
}

#[inline(never)]
fn do_search(interp: &mut Interp<'_>, by: SearchBy, id: &str, var: Option<&str>) -> R<i32> {
    match interp.fs.search(by, id) {
        Some(dev) => {
            if let Some(v) = var {
                interp.set(v, &dev)?;
            }
            Ok(0)
        }
        None => {
            interp.msg(format!("search: no such device: {id}"));
            Ok(ERR_FILE_NOT_FOUND)
        }
    }
}
