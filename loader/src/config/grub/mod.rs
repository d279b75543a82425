// SPDX-License-Identifier: MIT OR Apache-2.0
//! A GRUB 2 script interpreter for `grub.cfg`: [`lexer`] → [`parser`] (an AST) → [`eval`],
//! which looks builtin commands up by name in `cmd`'s table, a module per kind of command.
//!
//! It runs what distributions' `grub-mkconfig` and Red Hat's `blscfg` produce — quoting,
//! `$var`/`${var}`, `if`/`while`/`until`/`for`, functions with `$1...`, `[ ... ]`/`test`,
//! `menuentry`/`submenu` with their options, `search`, `load_env`/`save_env`, `source`,
//! `configfile`, `linux`/`initrd`, `blscfg` — and reports, for every menu entry, the kernel,
//! initrds and command line it would load, and which entry GRUB would boot
//! ([`crate::config::menu::select_default`]). Video, font and terminal commands are accepted
//! quietly; an unknown command is reported (once, with its place) and skipped, as GRUB does.
//! Nothing is written: `save_env` is returned as a wish ([`crate::config::menu::EnvWrite`]).
//!
//! Hostile scripts are stopped by [`Limits`]: a step budget, a call depth, sizes of values
//! and files, and the heap budgets of `budget` (tokens, menu strings, variables and
//! arguments held, texts running); each stop is an error naming the file and line.
//!
//! Known differences from GRUB: no regular expressions (`regexp`) or wildcards, `probe`,
//! `hwmatch` and `keystatus` fail, no `case`, translations are not applied to `$"..."`,
//! and `&&`/`||` work (GRUB rejects them).

mod budget;
mod cmd;
pub mod eval;
pub mod lexer;
mod options;
pub mod parser;

use alloc::format;
use alloc::string::{String, ToString};

pub use options::{Dialect, Limits, Options};

use super::configfs::ConfigFs;
use super::menu::{Env, Menu, MenuError};

/// The variables GRUB has when it reads `path` from `device`: `root`, `prefix` (the
/// configuration's directory), `grub_platform` (`xen`, as for pvgrub2) and `grub_cpu`.
pub fn initial_env(device: &str, path: &str) -> Env {
    let dir = path.rfind('/').map_or("", |i| &path[..i]);
    let mut env = Env::new();
    env.insert("root".into(), device.to_string());
    env.insert("prefix".into(), format!("({device}){dir}"));
    env.insert("cmdpath".into(), format!("({device})"));
    env.insert("grub_platform".into(), "xen".into());
    env.insert("grub_cpu".into(), "x86_64".into());
    env
}

/// Evaluate `text`, the configuration named `file` (e.g. `(hd0,gpt2)/boot/grub/grub.cfg`),
/// starting from the variables `env` (see [`initial_env`]).
pub fn evaluate(text: &str, file: &str, fs: &mut dyn ConfigFs, env: &Env, opts: &Options) -> Result<Menu, MenuError> {
    let dialect = opts.dialect.unwrap_or_else(|| Dialect::detect(text));
    eval::Interp::new(fs, file, opts, dialect).run_config(text, env)
}

/// Read `path` from `device` and evaluate it with [`initial_env`] plus `extra` variables.
pub fn load(fs: &mut dyn ConfigFs, device: &str, path: &str, extra: &Env, opts: &Options) -> Result<Menu, MenuError> {
    let file = format!("({device}){path}");
    let data = fs.read(Some(device), path, opts.limits.file_size).map_err(|e| MenuError::new(&file, 0, e))?;
    let text = String::from_utf8_lossy(&data);
    let mut env = initial_env(device, path);
    env.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    evaluate(&text, &file, fs, &env, opts)
}

#[cfg(test)]
mod tests;
