// SPDX-License-Identifier: MIT OR Apache-2.0
//! Configuration the loader reads: the boot policy `rxen.toml` (see `docs/policy.md`).
//!
//! [`toml`] is a small TOML reader that keeps the line and column of every key and value,
//! so [`policy`] can name the place of every error. Both run unchanged on the host
//! (`rxen-mkimage` checks policies at build time with this code) and under the fuzzer.

use alloc::string::String;
use core::fmt;

pub mod bls;
pub mod configfs;
pub mod discover;
pub mod extlinux;
pub mod grub;
pub mod grubenv;
pub mod menu;
pub mod menulst;
pub mod policy;
pub mod toml;

/// A configuration error at a place in the text (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (in characters).
    pub col: u32,
    /// What is wrong.
    pub msg: String,
}

impl ConfigError {
    /// An error at `line`:`col`.
    pub fn new(line: u32, col: u32, msg: impl Into<String>) -> ConfigError {
        ConfigError { line, col, msg: msg.into() }
    }

    /// `FILE:LINE:COL: MSG`, the form compilers use, for messages naming the file.
    pub fn in_file(&self, file: &str) -> String {
        alloc::format!("{file}:{self}")
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.msg)
    }
}

impl core::error::Error for ConfigError {}
