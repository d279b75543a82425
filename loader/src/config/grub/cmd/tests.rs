// SPDX-License-Identifier: MIT OR Apache-2.0
//! The command table against the names the evaluator recognised before it had one (taken
//! from `eval.rs` as it was then: its `dispatch` and `builtin` matches and its `QUIET`,
//! `QUIET_FUNCTIONS` and `UNSUPPORTED` lists).

use alloc::collections::BTreeSet;

use super::{COMMANDS, lookup};

/// Matched by `dispatch` before the builtins: the commands that run more script.
const DISPATCHED: &[&str] = &["source", ".", "eval", "configfile", "normal"];

/// The names `builtin` matched.
const BUILTIN: &[&str] = &[
    "true",
    "false",
    "[",
    "test",
    "set",
    "unset",
    "export",
    "setparams",
    "shift",
    "return",
    "break",
    "continue",
    "menuentry",
    "submenu",
    "search",
    "search.fs_uuid",
    "search.fs_label",
    "search.file",
    "load_env",
    "save_env",
    "linux",
    "linux16",
    "linuxefi",
    "initrd",
    "initrd16",
    "initrdefi",
    "blscfg",
    "bls_import",
    "boot",
    "increment",
    "decrement",
    "keystatus",
    "hwmatch",
    "read",
    "fwsetup",
    "probe",
    "regexp",
];

/// `QUIET`: real GRUB commands accepted and ignored.
const QUIET: &[&str] = &[
    "insmod",
    "rmmod",
    "lsmod",
    "loadfont",
    "lsfonts",
    "terminal_output",
    "terminal_input",
    "terminal",
    "terminfo",
    "serial",
    "background_image",
    "background_color",
    "play",
    "videoinfo",
    "videotest",
    "vbeinfo",
    "clear",
    "cls",
    "echo",
    "cat",
    "ls",
    "sleep",
    "help",
    "password",
    "password_pbkdf2",
    "cryptomount",
    "keymap",
    "nativedisk",
    "smbios",
    "lspci",
    "lsefi",
    "lsmmap",
    "lsacpi",
    "parttool",
    "drivemap",
    "acpi",
    "badram",
    "cutmem",
    "date",
    "cpuid",
    "devicetree",
    "list_env",
    "tr",
    "gettext",
    "loopback",
    "set_gfxpayload",
    "btrfs-mount-subvol",
    "net_bootp",
    "net_dhcp",
];

/// `QUIET_FUNCTIONS`: accepted quietly when the configuration did not define them.
const QUIET_FUNCTIONS: &[&str] =
    &["load_video", "recordfail", "gfxmode", "savedefault", "initrdfail", "all_video", "font"];

/// `UNSUPPORTED`: loaders of what rxen does not boot.
const UNSUPPORTED: &[&str] = &[
    "chainloader",
    "multiboot",
    "multiboot2",
    "module",
    "module2",
    "xen_hypervisor",
    "xen_module",
    "kfreebsd",
    "knetbsd",
    "kopenbsd",
    "ntldr",
    "freedos",
    "appleloader",
    "plan9",
    "truecrypt",
    "xnu_kernel",
    "xnu_kernel64",
    "legacy_kernel",
    "halt",
    "reboot",
    "exit",
    "configfile",
];

#[test]
fn no_name_twice() {
    let mut seen = BTreeSet::new();
    for (name, _) in COMMANDS {
        assert!(seen.insert(*name), "`{name}` is in the command table twice");
    }
}

#[test]
fn every_name_recognised_before_is_a_command() {
    for list in [DISPATCHED, BUILTIN, QUIET, QUIET_FUNCTIONS, UNSUPPORTED] {
        for name in list {
            assert!(lookup(name).is_some(), "`{name}` is no longer in the command table");
        }
    }
}

#[test]
fn other_names_are_not_builtins() {
    // Functions, assignments and unknown commands are the evaluator's to handle.
    for name in ["", "f", "x=1", "!", "nosuch", "Linux", "linux ", "search.", "menuentry2"] {
        assert!(lookup(name).is_none(), "`{name}` found in the command table");
    }
}
