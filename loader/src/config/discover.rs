// SPDX-License-Identifier: MIT OR Apache-2.0
//! Finding and reading a guest's boot configuration on one device, in a fixed order:
//! `/boot/grub/grub.cfg`, `/grub/grub.cfg`, `/boot/grub2/grub.cfg`, `/grub2/grub.cfg`, BLS
//! entries, `/boot/extlinux/extlinux.conf`, `/extlinux.conf`, installer and live media's
//! `/isolinux/isolinux.cfg` and `/syslinux/syslinux.cfg`, `/boot/grub/menu.lst`,
//! `/boot/grub/grub.conf` ([`DEFAULT_ORDER`]; the caller may pass its own). Alpine's
//! `/boot/extlinux.conf` and a separate `/boot`'s `/grub/menu.lst`, `/grub/grub.conf` (where
//! pygrub also looks) are tried too.
//!
//! The first configuration that is there and yields entries wins; one that fails (a
//! hostile script stopped by the limits, no entries) is noted in the winner's messages and
//! the next is tried.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::configfs::ConfigFs;
use super::menu::{Env, Menu, MenuError};
use super::{bls, extlinux, grub, grubenv, menulst};

/// A place a configuration may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A GRUB 2 script.
    Grub(String),
    /// BLS entries (`/loader/entries`, `/boot/loader/entries`).
    Bls,
    /// extlinux.conf / syslinux.cfg.
    Extlinux(String),
    /// GRUB legacy menu.lst.
    MenuLst(String),
}

/// The search order.
pub const DEFAULT_ORDER: &[(&str, &str)] = &[
    ("grub", "/boot/grub/grub.cfg"),
    ("grub", "/grub/grub.cfg"),
    ("grub", "/boot/grub2/grub.cfg"),
    ("grub", "/grub2/grub.cfg"),
    ("bls", ""),
    ("extlinux", "/boot/extlinux/extlinux.conf"),
    ("extlinux", "/extlinux.conf"),
    ("extlinux", "/boot/extlinux.conf"),
    ("extlinux", "/isolinux/isolinux.cfg"),
    ("extlinux", "/boot/isolinux/isolinux.cfg"),
    ("extlinux", "/syslinux/syslinux.cfg"),
    ("extlinux", "/boot/syslinux/syslinux.cfg"),
    ("menulst", "/boot/grub/menu.lst"),
    ("menulst", "/boot/grub/grub.conf"),
    ("menulst", "/grub/menu.lst"),
    ("menulst", "/grub/grub.conf"),
];

/// [`DEFAULT_ORDER`] as [`Source`]s.
pub fn default_order() -> Vec<Source> {
    DEFAULT_ORDER
        .iter()
        .map(|(k, p)| match *k {
            "grub" => Source::Grub(p.to_string()),
            "bls" => Source::Bls,
            "extlinux" => Source::Extlinux(p.to_string()),
            _ => Source::MenuLst(p.to_string()),
        })
        .collect()
}

/// Where grubenv is looked for when BLS entries are read without a grub.cfg.
pub const GRUBENV_PATHS: &[&str] = &["/grub2/grubenv", "/boot/grub2/grubenv", "/grub/grubenv", "/boot/grub/grubenv"];

fn exists(fs: &mut dyn ConfigFs, device: &str, path: &str) -> bool {
    fs.stat(Some(device), path).is_some_and(|s| !s.dir)
}

/// The first grubenv of [`GRUBENV_PATHS`] on `device`, as variables.
pub fn read_grubenv(fs: &mut dyn ConfigFs, device: &str) -> Env {
    for p in GRUBENV_PATHS {
        if let Ok(data) = fs.read(Some(device), p, grubenv::MAX_BLOCK)
            && let Ok(env) = grubenv::parse_env(&data)
        {
            return env;
        }
    }
    Env::new()
}

/// Read the first configuration of `order` on `device`. `env`: extra variables for GRUB
/// scripts and BLS `$var`s (grubenv's are read by the scripts themselves, and for BLS from
/// [`GRUBENV_PATHS`], `env` winning).
pub fn load(
    fs: &mut dyn ConfigFs,
    device: &str,
    order: &[Source],
    env: &Env,
    opts: &grub::Options,
) -> Result<Menu, MenuError> {
    let mut notes: Vec<String> = Vec::new();
    let mut last_err: Option<MenuError> = None;
    for src in order {
        let r = match src {
            Source::Grub(p) if exists(fs, device, p) => grub::load(fs, device, p, env, opts),
            Source::Bls => {
                let have = [bls::ENTRIES_DIR, bls::BOOT_ENTRIES_DIR]
                    .iter()
                    .any(|d| fs.stat(Some(device), d).is_some_and(|s| s.dir));
                if !have {
                    continue;
                }
                let mut e = read_grubenv(fs, device);
                e.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
                bls::load(fs, device, &e)
            }
            Source::Extlinux(p) if exists(fs, device, p) => extlinux::load(fs, device, p),
            Source::MenuLst(p) if exists(fs, device, p) => menulst::load(fs, device, p),
            _ => continue,
        };
        match r {
            Ok(mut m) if !m.entries.is_empty() => {
                notes.append(&mut m.messages);
                m.messages = notes;
                return Ok(m);
            }
            Ok(m) => notes.push(format!("{}: no menu entries, trying the next configuration", m.file)),
            Err(e) => {
                notes.push(format!("{e} (trying the next configuration)"));
                last_err = Some(e);
            }
        }
    }
    Err(last_err.unwrap_or_else(|| {
        let tried: Vec<String> = order
            .iter()
            .map(|s| match s {
                Source::Grub(p) | Source::Extlinux(p) | Source::MenuLst(p) => p.clone(),
                Source::Bls => format!("{}/*.conf", bls::BOOT_ENTRIES_DIR),
            })
            .collect();
        MenuError::new(&format!("({device})"), 0, format!("no boot configuration (tried {})", tried.join(", ")))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::configfs::MemFs;
    use crate::config::menu::Format;

    #[test]
    fn order_and_fall_through() {
        let mut fs = MemFs::new("d");
        fs.add_file("d", "/extlinux.conf", "LABEL a\nLINUX /k\n");
        fs.add_file("d", "/boot/grub/grub.cfg", "while true; do true; done\n");
        let m = load(&mut fs, "d", &default_order(), &Env::new(), &grub::Options::default()).unwrap();
        assert_eq!(m.format, Format::Extlinux);
        assert!(m.messages[0].contains("(d)/boot/grub/grub.cfg:1: stopped after"), "{:?}", m.messages);
        fs.add_file("d", "/grub2/grub.cfg", "menuentry x { linux /vmlinuz }\n");
        let m = load(&mut fs, "d", &default_order(), &Env::new(), &grub::Options::default()).unwrap();
        assert_eq!((m.format, m.file.as_str()), (Format::Grub, "(d)/grub2/grub.cfg"));
        let only_bls = [Source::Bls];
        let e = load(&mut fs, "d", &only_bls, &Env::new(), &grub::Options::default()).unwrap_err();
        assert!(e.to_string().contains("no boot configuration"), "{e}");
    }

    #[test]
    fn bls_without_grub() {
        let mut fs = MemFs::new("d");
        fs.add_file("d", "/loader/entries/m-6.1-1.conf", "title A\nlinux /vmlinuz-6.1\noptions $kernelopts quiet\n");
        fs.add_file("d", "/loader/entries/m-6.2-1.conf", "title B\nlinux /vmlinuz-6.2\ninitrd /i\noptions x\n");
        let env = grubenv::create(
            1024,
            &[("kernelopts".into(), "root=/dev/xvda1 ro".into()), ("saved_entry".into(), "m-6.1-1".into())],
        )
        .unwrap();
        fs.add_file("d", "/grub2/grubenv", env);
        let m = load(&mut fs, "d", &[Source::Bls], &Env::new(), &grub::Options::default()).unwrap();
        assert_eq!(m.entries[0].title, "B");
        let genv = read_grubenv(&mut fs, "d");
        let e = &m.entries[crate::config::menu::select_default(&m, &genv).unwrap().entry];
        assert_eq!((e.title.as_str(), e.cmdline.as_str()), ("A", "root=/dev/xvda1 ro quiet"));
    }

    /// An ESP as /boot (Arch with systemd-boot): entries beside loader.conf, whose
    /// `default` glob picks the entry and whose `timeout` is the menu's.
    #[test]
    fn systemd_boot_esp() {
        let mut fs = MemFs::new("d");
        fs.add_file("d", "/loader/loader.conf", "timeout 4\ndefault arch-lts*\n");
        fs.add_file(
            "d",
            "/loader/entries/arch.conf",
            "title Arch Linux\nlinux /vmlinuz-linux\noptions root=/dev/xvda2\n",
        );
        fs.add_file("d", "/loader/entries/arch-lts.conf", "title Arch LTS\nlinux /vmlinuz-linux-lts\noptions lts\n");
        let m = load(&mut fs, "d", &default_order(), &Env::new(), &grub::Options::default()).unwrap();
        assert_eq!(m.timeout, Some(4));
        let e = &m.entries[crate::config::menu::select_default(&m, &Env::new()).unwrap().entry];
        assert_eq!((e.title.as_str(), e.cmdline.as_str()), ("Arch LTS", "lts"));
        fs.add_file("d", "/loader/loader.conf", "default nothing-like-it\n");
        let m = load(&mut fs, "d", &default_order(), &Env::new(), &grub::Options::default()).unwrap();
        assert!(m.messages.iter().any(|x| x.contains("matches no entry")), "{:?}", m.messages);
    }
}
