// SPDX-License-Identifier: MIT OR Apache-2.0
//! GRUB's builtin commands, by name: [`COMMANDS`], the one table the evaluator looks a
//! command up in (before the configuration's functions, as GRUB does), and a module per
//! kind of command.
//!
//! A name not here is a function the configuration defined, a `name=value` assignment, or
//! an unknown command (reported once and skipped) — see [`Interp::not_a_builtin`].

mod args;
mod blscfg;
mod env;
mod ignored;
mod linux;
mod menuentry;
mod script;
mod search;
mod source;
mod test;
mod vars;

use alloc::string::String;

use crate::config::grub::eval::{Interp, R};
use crate::config::grub::parser::Body;

/// A builtin command: it runs with the interpreter, the name it was called by (several
/// names share one), its arguments and the `{ ... }` block that only `menuentry` and
/// `submenu` take; it returns its status (`$?`).
pub(super) type Handler = fn(&mut Interp<'_>, &str, &[String], Option<&Body>) -> R<i32>;

/// Every builtin, by name, each name once (the order does not matter).
pub(super) static COMMANDS: &[(&str, Handler)] = &[
    ("true", script::true_),
    ("false", script::false_),
    ("setparams", script::setparams),
    ("shift", script::shift),
    ("return", script::return_),
    ("break", script::break_),
    ("continue", script::break_),
    ("set", vars::set),
    ("unset", vars::unset),
    ("export", vars::export),
    ("increment", vars::increment),
    ("decrement", vars::increment),
    ("[", test::test),
    ("test", test::test),
    ("menuentry", menuentry::menuentry),
    ("submenu", menuentry::menuentry),
    ("search", search::search),
    ("search.fs_uuid", search::search_by),
    ("search.fs_label", search::search_by),
    ("search.file", search::search_by),
    ("load_env", env::load_env),
    ("save_env", env::save_env),
    ("linux", linux::linux),
    ("linux16", linux::linux),
    ("linuxefi", linux::linux),
    ("initrd", linux::initrd),
    ("initrd16", linux::initrd),
    ("initrdefi", linux::initrd),
    ("boot", linux::boot),
    ("blscfg", blscfg::blscfg),
    ("bls_import", blscfg::blscfg),
    // Commands that run more script.
    ("source", source::source),
    (".", source::source),
    ("eval", source::eval),
    ("configfile", source::configfile),
    ("normal", source::normal),
    // What asks a person or the hardware fails; so do `probe` and `regexp`, not implemented.
    ("keystatus", ignored::unattended),
    ("hwmatch", ignored::unattended),
    ("read", ignored::unattended),
    ("probe", ignored::not_implemented),
    ("regexp", ignored::not_implemented),
    ("fwsetup", ignored::fwsetup),
    // Loaders of what rxen does not boot (so is `configfile` in a menu entry): the entry is
    // marked unsupported.
    ("chainloader", ignored::other_loader),
    ("multiboot", ignored::other_loader),
    ("multiboot2", ignored::other_loader),
    ("module", ignored::other_loader),
    ("module2", ignored::other_loader),
    ("xen_hypervisor", ignored::other_loader),
    ("xen_module", ignored::other_loader),
    ("kfreebsd", ignored::other_loader),
    ("knetbsd", ignored::other_loader),
    ("kopenbsd", ignored::other_loader),
    ("ntldr", ignored::other_loader),
    ("freedos", ignored::other_loader),
    ("appleloader", ignored::other_loader),
    ("plan9", ignored::other_loader),
    ("truecrypt", ignored::other_loader),
    ("xnu_kernel", ignored::other_loader),
    ("xnu_kernel64", ignored::other_loader),
    ("legacy_kernel", ignored::other_loader),
    ("halt", ignored::other_loader),
    ("reboot", ignored::other_loader),
    ("exit", ignored::other_loader),
    // Video, fonts, terminals, modules, ...: nothing to do.
    ("insmod", ignored::quiet),
    ("rmmod", ignored::quiet),
    ("lsmod", ignored::quiet),
    ("loadfont", ignored::quiet),
    ("lsfonts", ignored::quiet),
    ("terminal_output", ignored::quiet),
    ("terminal_input", ignored::quiet),
    ("terminal", ignored::quiet),
    ("terminfo", ignored::quiet),
    ("serial", ignored::quiet),
    ("background_image", ignored::quiet),
    ("background_color", ignored::quiet),
    ("play", ignored::quiet),
    ("videoinfo", ignored::quiet),
    ("videotest", ignored::quiet),
    ("vbeinfo", ignored::quiet),
    ("clear", ignored::quiet),
    ("cls", ignored::quiet),
    ("echo", ignored::quiet),
    ("cat", ignored::quiet),
    ("ls", ignored::quiet),
    ("sleep", ignored::quiet),
    ("help", ignored::quiet),
    ("password", ignored::quiet),
    ("password_pbkdf2", ignored::quiet),
    ("cryptomount", ignored::quiet),
    ("keymap", ignored::quiet),
    ("nativedisk", ignored::quiet),
    ("smbios", ignored::quiet),
    ("lspci", ignored::quiet),
    ("lsefi", ignored::quiet),
    ("lsmmap", ignored::quiet),
    ("lsacpi", ignored::quiet),
    ("parttool", ignored::quiet),
    ("drivemap", ignored::quiet),
    ("acpi", ignored::quiet),
    ("badram", ignored::quiet),
    ("cutmem", ignored::quiet),
    ("date", ignored::quiet),
    ("cpuid", ignored::quiet),
    ("devicetree", ignored::quiet),
    ("list_env", ignored::quiet),
    ("tr", ignored::quiet),
    ("gettext", ignored::quiet),
    ("loopback", ignored::quiet),
    ("set_gfxpayload", ignored::quiet),
    ("btrfs-mount-subvol", ignored::quiet),
    ("net_bootp", ignored::quiet),
    ("net_dhcp", ignored::quiet),
    // Functions distributions' configurations define: run when they did, else nothing.
    ("load_video", ignored::quiet_function),
    ("recordfail", ignored::quiet_function),
    ("gfxmode", ignored::quiet_function),
    ("savedefault", ignored::quiet_function),
    ("initrdfail", ignored::quiet_function),
    ("all_video", ignored::quiet_function),
    ("font", ignored::quiet_function),
];

/// The builtin called `name`.
pub(super) fn lookup(name: &str) -> Option<Handler> {
    COMMANDS.iter().find(|(n, _)| *n == name).map(|&(_, run)| run)
}

#[cfg(test)]
mod tests;
