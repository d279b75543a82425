// SPDX-License-Identifier: MIT OR Apache-2.0
//! The commands of GRUB's script engine (`grub-core/script/execute.c`): `break`,
//! `continue`, `return`, `shift` and `setparams`; and `true` and `false`.

use alloc::format;
use alloc::string::String;

use crate::config::grub::eval::{ERR_BAD_ARGUMENT, ERR_INVALID_COMMAND, ERR_TEST_FAILURE, Interp, R};
use crate::config::grub::parser::Body;

pub(super) fn true_(_interp: &mut Interp<'_>, _name: &str, _args: &[String], _block: Option<&Body>) -> R<i32> {
    Ok(0)
}

pub(super) fn false_(_interp: &mut Interp<'_>, _name: &str, _args: &[String], _block: Option<&Body>) -> R<i32> {
    Ok(ERR_TEST_FAILURE)
}

/// `setparams ARG...`: the function's `$1...` become ARG...
pub(super) fn setparams(interp: &mut Interp<'_>, _name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    Ok(match interp.scopes.last_mut() {
        Some(s) => {
            *s = args.to_vec();
            0
        }
        None => ERR_INVALID_COMMAND,
    })
}

/// `shift [N]`: drop the first N (1) of `$1...`.
pub(super) fn shift(interp: &mut Interp<'_>, _name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    let n = match args.first() {
        None => 1,
        Some(a) => a.parse::<usize>().unwrap_or(usize::MAX),
    };
    Ok(match interp.scopes.last_mut() {
        Some(s) if n <= s.len() && args.len() <= 1 => {
            s.drain(..n);
            0
        }
        Some(_) => ERR_BAD_ARGUMENT,
        None => 0,
    })
}

/// `return [N]`: leave the function with status N (`$?`).
pub(super) fn return_(interp: &mut Interp<'_>, _name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    if interp.scopes.is_empty() || args.len() > 1 {
        interp.msg("return: not in function body");
        return Ok(ERR_BAD_ARGUMENT);
    }
    let n = match args.first() {
        None => interp.status,
        Some(a) => match a.parse::<i32>() {
            Ok(n) => n,
            Err(_) => {
                interp.msg(format!("return: `{a}` is not a number"));
                return Ok(ERR_BAD_ARGUMENT);
            }
        },
    };
    interp.returning = true;
    Ok(n)
}

/// `break [N]` and `continue [N]`: leave (or go on with) the N-th enclosing loop.
pub(super) fn break_(interp: &mut Interp<'_>, name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    let count = match args {
        [] => Some(1),
        [a] => a.parse::<u32>().ok().filter(|&n| n > 0),
        _ => None,
    };
    Ok(match count {
        Some(n) => {
            interp.is_continue = name == "continue";
            interp.breaks = n.min(interp.loops);
            0
        }
        None => {
            interp.msg(format!("{name}: bad count"));
            ERR_BAD_ARGUMENT
        }
    })
}
