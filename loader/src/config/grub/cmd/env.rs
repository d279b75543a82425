// SPDX-License-Identifier: MIT OR Apache-2.0
//! The environment block: `load_env` and `save_env` (`grub-core/commands/loadenv.c`).

use alloc::format;
use alloc::string::String;

use super::args::{Opt, Parsed, Takes, opt, parse_opts};
use crate::config::grub::eval::{ERR_BAD_ARGUMENT, ERR_BAD_FILE_TYPE, ERR_FILE_NOT_FOUND, Interp, MAX_ENV_WRITES, R};
use crate::config::grub::parser::Body;
use crate::config::grubenv;
use crate::config::menu::{BootPath, EnvWrite};

/// `-f FILE` or `$prefix/grubenv`.
#[inline(never)]
fn grubenv_path(interp: &mut Interp<'_>, p: &Parsed, what: &str) -> Option<BootPath> {
    if let Some(f) = p.value("file") {
        return Some(interp.boot_path(f));
    }
    match interp.get("prefix") {
        Some(prefix) => {
            let spec = format!("{prefix}/grubenv");
            Some(interp.boot_path(&spec))
        }
        None => {
            interp.msg(format!("{what}: variable `prefix` isn't set"));
            None
        }
    }
}

/// `load_env [-f FILE] [--skip-sig] [VAR...]`: the variables of the grubenv block (all, or
/// only VAR...).
pub(super) fn load_env(interp: &mut Interp<'_>, _name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    const SPECS: &[Opt] = &[opt("file", Some(b'f'), Takes::Value), opt("skip-sig", Some(b's'), Takes::No)];
    let p = match parse_opts(SPECS, args, false) {
        Ok(p) => p,
        Err(e) => {
            interp.msg(format!("load_env: {e}"));
            return Ok(ERR_BAD_ARGUMENT);
        }
    };
    let Some(path) = grubenv_path(interp, &p, "load_env") else { return Ok(ERR_FILE_NOT_FOUND) };
    let data = match interp.fs.read(path.device.as_deref(), &path.path, grubenv::MAX_BLOCK) {
        Ok(d) => d,
        Err(e) => {
            interp.msg(format!("load_env: {path}: {e}"));
            return Ok(ERR_FILE_NOT_FOUND);
        }
    };
    let vars = match grubenv::parse(&data) {
        Ok(grubenv::EnvBlock { vars, broken }) => {
            if let Some(b) = broken {
                interp.msg(format!("load_env: {path}: {b}"));
            }
            vars
        }
        Err(e) => {
            interp.msg(format!("load_env: {path}: {e}"));
            return Ok(ERR_BAD_FILE_TYPE);
        }
    };
    for (k, v) in vars {
        if p.args.is_empty() || p.args.contains(&k) {
            interp.set(&k, &v)?;
        }
    }
    Ok(0)
}

/// `save_env [-f FILE] VAR...`: recorded as an [`EnvWrite`], never written here.
pub(super) fn save_env(interp: &mut Interp<'_>, _name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    const SPECS: &[Opt] = &[opt("file", Some(b'f'), Takes::Value)];
    let p = match parse_opts(SPECS, args, false) {
        Ok(p) => p,
        Err(e) => {
            interp.msg(format!("save_env: {e}"));
            return Ok(ERR_BAD_ARGUMENT);
        }
    };
    if p.args.is_empty() {
        interp.msg("save_env: no variable is specified");
        return Ok(ERR_BAD_ARGUMENT);
    }
    let Some(path) = grubenv_path(interp, &p, "save_env") else { return Ok(ERR_FILE_NOT_FOUND) };
    let vars = p.args.iter().map(|k| (k.clone(), interp.get(k).map(String::from))).collect();
    let w = EnvWrite {
        file: path.spec.clone(),
        device: path.device.clone(),
        path: path.path.clone(),
        vars,
        at: format!("{}:{}", interp.file, interp.line),
    };
    let list = match interp.run.as_mut() {
        Some(r) => &mut r.env_writes,
        None => &mut interp.env_writes,
    };
    if list.len() < MAX_ENV_WRITES {
        list.push(w);
    } else {
        interp.msg("save_env: too many calls, ignored");
    }
    Ok(0)
}
