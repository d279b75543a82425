// SPDX-License-Identifier: MIT OR Apache-2.0
//! Variables: `set`, `unset`, `export` (`grub-core/kern/corecmd.c`,
//! `normal/context.c`), and rhboot's `increment` and `decrement`.

use alloc::format;
use alloc::string::{String, ToString};

use super::args::strtosl;
use crate::config::grub::eval::{ERR_BAD_ARGUMENT, Interp, R};
use crate::config::grub::parser::Body;

/// `set NAME=VALUE`; `set` alone (which lists the variables) does nothing here.
pub(super) fn set(interp: &mut Interp<'_>, _name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    Ok(match args.first() {
        None => 0,
        Some(a) => match a.split_once('=') {
            Some((k, v)) => {
                interp.set(k, v)?;
                0
            }
            None => {
                interp.msg(format!("set: `{a}` is not an assignment"));
                ERR_BAD_ARGUMENT
            }
        },
    })
}

pub(super) fn unset(interp: &mut Interp<'_>, _name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    for a in args {
        interp.unset(a);
    }
    Ok(0)
}

pub(super) fn export(interp: &mut Interp<'_>, _name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    for a in args {
        interp.export(a)?;
    }
    Ok(0)
}

/// `increment VAR` and `decrement VAR`: VAR's number, one more or one less.
pub(super) fn increment(interp: &mut Interp<'_>, name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    Ok(match args.first().map(|a| (a.clone(), interp.get(a).map(strtosl))) {
        Some((var, Some(v))) => {
            let n = if name == "increment" { v.saturating_add(1) } else { v.saturating_sub(1) };
            interp.set(&var, &n.to_string())?;
            0
        }
        _ => {
            interp.msg(format!("{name}: needs a variable holding a number"));
            ERR_BAD_ARGUMENT
        }
    })
}
