// SPDX-License-Identifier: MIT OR Apache-2.0
//! Loading Linux: `linux` and `initrd` (`grub-core/loader/i386/linux.c`) record what an
//! entry would load; `boot`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::config::grub::eval::{ERR_BAD_ARGUMENT, ERR_BAD_FILENAME, Interp, R};
use crate::config::grub::parser::Body;
use crate::config::menu::join_cmdline;

/// `linux FILE [ARG...]` (`linux16`, `linuxefi`): the kernel and its command line; it
/// forgets the initrds loaded before.
pub(super) fn linux(interp: &mut Interp<'_>, name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    let Some(file) = args.first() else {
        interp.msg(format!("{name}: filename expected"));
        return Ok(ERR_BAD_ARGUMENT);
    };
    let kernel = interp.boot_path(file);
    if !kernel.path.starts_with('/') {
        interp.msg(format!("{name}: invalid file name `{file}`"));
        return Ok(ERR_BAD_FILENAME);
    }
    let root = interp.get("root").filter(|r| !r.is_empty()).map(String::from);
    let cmdline = join_cmdline(&args[1..]);
    let st = interp.run_state();
    st.kernel = Some(kernel);
    st.initrds.clear();
    st.cmdline = cmdline;
    st.root = root;
    Ok(0)
}

/// `initrd FILE...` (`initrd16`, `initrdefi`): the initrds, after a kernel.
pub(super) fn initrd(interp: &mut Interp<'_>, name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    if args.is_empty() {
        interp.msg(format!("{name}: filename expected"));
        return Ok(ERR_BAD_ARGUMENT);
    }
    if interp.run_state().kernel.is_none() {
        interp.msg(format!("{name}: you need to load the kernel first"));
        return Ok(ERR_BAD_ARGUMENT);
    }
    let mut list = Vec::new();
    for a in args {
        let p = interp.boot_path(a);
        if !p.path.starts_with('/') {
            interp.msg(format!("{name}: invalid file name `{a}`"));
            return Ok(ERR_BAD_FILENAME);
        }
        list.push(p);
    }
    interp.run_state().initrds = list;
    Ok(0)
}

/// `boot` in the configuration itself (not in a menu entry): boot what `linux` loaded
/// there, now, without a menu.
pub(super) fn boot(interp: &mut Interp<'_>, _name: &str, _args: &[String], _block: Option<&Body>) -> R<i32> {
    if interp.run.is_none() {
        if interp.top_run.kernel.is_some() {
            interp.boot_now = true;
        } else {
            interp.msg("boot: no kernel loaded");
        }
    }
    Ok(0)
}
