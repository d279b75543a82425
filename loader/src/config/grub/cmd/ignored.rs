// SPDX-License-Identifier: MIT OR Apache-2.0
//! Commands rxen accepts without doing what GRUB does: video, font, terminal and module
//! commands (nothing to do without a screen), commands that ask a person or the hardware
//! (they fail, as in an unattended boot), and loaders of something rxen does not boot (an
//! entry using one is listed but marked unsupported).

use alloc::format;
use alloc::string::{String, ToString};

use crate::config::grub::eval::{ERR_TEST_FAILURE, Interp, R};
use crate::config::grub::parser::Body;

/// Real GRUB commands accepted and ignored (video, fonts, terminals, modules, ...).
pub(super) fn quiet(_interp: &mut Interp<'_>, _name: &str, _args: &[String], _block: Option<&Body>) -> R<i32> {
    Ok(0)
}

/// Names distributions' configurations call that are functions they define (or, for
/// `all_video`, a module): the configuration's function when it defined one, else nothing.
pub(super) fn quiet_function(interp: &mut Interp<'_>, name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    interp.call_function(name, args).unwrap_or(Ok(0))
}

/// `keystatus`, `hwmatch` and `read`: no key is held, no hardware list matches, nobody
/// types: an unattended boot.
pub(super) fn unattended(_interp: &mut Interp<'_>, _name: &str, _args: &[String], _block: Option<&Body>) -> R<i32> {
    Ok(ERR_TEST_FAILURE)
}

/// `probe` and `regexp`, which rxen does not implement: reported, and treated as failing.
pub(super) fn not_implemented(interp: &mut Interp<'_>, name: &str, _args: &[String], _block: Option<&Body>) -> R<i32> {
    interp.msg(format!("`{name}` is not supported by rxen (treated as failing)"));
    Ok(ERR_TEST_FAILURE)
}

/// A command that loads something rxen does not boot (`chainloader`, `multiboot`, ...; also
/// `halt`, `reboot` and `exit`): its menu entry is marked unsupported.
pub(super) fn other_loader(interp: &mut Interp<'_>, name: &str, _args: &[String], _block: Option<&Body>) -> R<i32> {
    match interp.run.as_mut() {
        Some(run) => {
            run.unsupported.get_or_insert_with(|| name.to_string());
        }
        None => interp.msg(format!("`{name}` outside a menu entry is ignored")),
    }
    Ok(0)
}

/// `fwsetup --is-supported` fails (there is no firmware setup to enter); `fwsetup` itself
/// is a loader rxen does not boot.
pub(super) fn fwsetup(interp: &mut Interp<'_>, name: &str, args: &[String], block: Option<&Body>) -> R<i32> {
    if args.iter().any(|a| a == "--is-supported") {
        return Ok(ERR_TEST_FAILURE);
    }
    other_loader(interp, name, args, block)
}
