// SPDX-License-Identifier: MIT OR Apache-2.0
//! The commands that run more script: `source` (`.`) and `configfile` (`normal`) of
//! `grub-core/commands/configfile.c`, and `eval`. Each counts as two levels of nesting
//! ([`Interp::nested`]) and, while its script runs, one of call depth.

use alloc::format;
use alloc::string::{String, ToString};

use super::ignored;
use crate::config::grub::eval::{ERR_BAD_ARGUMENT, Interp, R};
use crate::config::grub::parser::Body;
use crate::config::menu::BootPath;

/// `source FILE` and `. FILE`: FILE runs here, in the same variables, with `config_file`
/// and `config_directory` naming it meanwhile.
pub(super) fn source(interp: &mut Interp<'_>, _name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    interp.nested(|interp| run_source(interp, args))
}

/// `eval ARG...`: the arguments, joined by spaces, run as script.
pub(super) fn eval(interp: &mut Interp<'_>, _name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    interp.nested(|interp| run_eval(interp, args))
}

/// `configfile FILE`: FILE's menu replaces this one (FILE runs in a new context). In a menu
/// entry it loads something rxen does not boot.
pub(super) fn configfile(interp: &mut Interp<'_>, name: &str, args: &[String], block: Option<&Body>) -> R<i32> {
    if interp.run.is_some() {
        return ignored::other_loader(interp, name, args, block);
    }
    interp.nested(|interp| run_configfile(interp, args))
}

/// `normal FILE`: as `configfile`. In a menu entry it is no builtin (a function of that
/// name runs, if there is one).
pub(super) fn normal(interp: &mut Interp<'_>, name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    if interp.run.is_some() {
        return interp.not_a_builtin(name, args);
    }
    interp.nested(|interp| run_configfile(interp, args))
}

/// The text of `p`, up to [`Limits::file_size`](crate::config::grub::Limits::file_size) bytes.
#[inline(never)]
fn read_file(interp: &mut Interp<'_>, p: &BootPath) -> Result<String, String> {
    let limit = interp.lim.file_size;
    let data = interp.fs.read(p.device.as_deref(), &p.path, limit)?;
    Ok(String::from_utf8_lossy(&data).into_owned())
}

#[inline(never)]
fn run_eval(interp: &mut Interp<'_>, args: &[String]) -> R<i32> {
    interp.enter("eval")?;
    let text = args.join(" ");
    let file = interp.file.to_string();
    let r = interp.run_text(&text, &file)?;
    interp.leave();
    Ok(r)
}

#[inline(never)]
fn run_source(interp: &mut Interp<'_>, args: &[String]) -> R<i32> {
    let [file] = args else {
        interp.msg("source: filename expected");
        return Ok(ERR_BAD_ARGUMENT);
    };
    let p = interp.boot_path(file);
    let text = match read_file(interp, &p) {
        Ok(t) => t,
        Err(e) => {
            interp.msg(format!("source {file}: {e}"));
            return Ok(0);
        }
    };
    interp.enter("source")?;
    let name = p.to_string();
    let (old_file, old_dir) =
        (interp.get("config_file").map(String::from), interp.get("config_directory").map(String::from));
    interp.set_config_vars(&p)?;
    interp.run_text(&text, &name)?;
    for (k, v) in [("config_file", old_file), ("config_directory", old_dir)] {
        match v {
            Some(v) => interp.set(k, &v)?,
            None => interp.unset(k),
        }
    }
    interp.leave();
    Ok(0)
}

#[inline(never)]
fn run_configfile(interp: &mut Interp<'_>, args: &[String]) -> R<i32> {
    let [file] = args else {
        if !args.is_empty() {
            interp.msg("configfile: filename expected");
        }
        return Ok(ERR_BAD_ARGUMENT);
    };
    if interp.building {
        interp.msg(format!("configfile {file} inside a submenu is not followed"));
        return Ok(0);
    }
    let p = interp.boot_path(file);
    let text = match read_file(interp, &p) {
        Ok(t) => t,
        Err(e) => {
            interp.msg(format!("configfile {file}: {e}"));
            return Ok(0);
        }
    };
    interp.enter("configfile")?;
    interp.open_context()?;
    interp.set_config_vars(&p)?;
    let name = p.to_string();
    interp.run_text(&text, &name)?;
    interp.leave();
    interp.end_configfile();
    Ok(0)
}
