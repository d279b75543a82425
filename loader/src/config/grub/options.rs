// SPDX-License-Identifier: MIT OR Apache-2.0
//! How to evaluate a configuration: the [`Limits`] that stop hostile ones, and which GRUB's
//! rules to follow ([`Dialect`]). The evaluator ([`super::eval`]) counts against the limits.

/// Limits that stop hostile configurations: each is an error naming the place, never a hang
/// or unbounded memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Commands, loop iterations and function calls, over the whole evaluation.
    pub steps: u64,
    /// Nesting of function calls, `source`, `configfile` and `eval`.
    pub depth: u32,
    /// Longest variable value or word, in bytes.
    pub value_len: usize,
    /// All variables of one context together, in bytes.
    pub env_bytes: usize,
    /// The variables of every context (submenus and `configfile`s copy the exported ones)
    /// and the `$1...` of every call in progress, together, in bytes.
    pub held_bytes: usize,
    /// Menu entries and submenus, together.
    pub entries: usize,
    /// Largest configuration file read (`source`, `configfile`, BLS entries).
    pub file_size: usize,
    /// Tokens (words and operators) lexed, over the whole evaluation: every `source`,
    /// `configfile` and `eval` text counted. A token and its share of the AST cost some
    /// 150 bytes of heap, and the loader's whole heap is 8 MiB.
    pub tokens: usize,
    /// Bytes of menu-entry strings (titles, ids, arguments, kernel, initrds, command
    /// lines, messages), over the whole menu: what keeps `menuentry "$big$big"` from
    /// multiplying a small file into more than the heap.
    pub menu_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            steps: 100_000,
            depth: 32,
            value_len: 64 * 1024,
            env_bytes: 256 * 1024,
            held_bytes: 512 * 1024,
            entries: 1024,
            file_size: 1 << 20,
            // Distributions' grub.cfg files are 1,000-5,000 tokens (tests/fixtures/configs).
            tokens: 16_384,
            menu_bytes: 2 << 20,
        }
    }
}

/// Which GRUB's rules to follow where they differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// GNU GRUB (Debian, Ubuntu, Arch, SUSE): a submenu or `configfile` sees only exported
    /// variables.
    Upstream,
    /// Red Hat's GRUB (Fedora, RHEL; it has `blscfg`): every variable is carried in.
    Rhboot,
}

impl Dialect {
    /// Red Hat's when the text uses `blscfg`.
    pub fn detect(text: &str) -> Dialect {
        if text.contains("blscfg") || text.contains("bls_import") { Dialect::Rhboot } else { Dialect::Upstream }
    }
}

/// How to evaluate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub limits: Limits,
    /// `None`: [`Dialect::detect`].
    pub dialect: Option<Dialect>,
}
