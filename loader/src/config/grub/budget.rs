// SPDX-License-Identifier: MIT OR Apache-2.0
//! What keeps a script within the loader's heap (8 MiB for everything, `pvh::HEAP_SIZE`):
//! budgets the interpreter counts against [`Limits`]. Before them a grub.cfg of a few
//! hundred KB could take tens of MiB: its tokens and AST (some 150 bytes per word; a 1 MiB
//! file, the size limit, took 45 MiB), menu entries whose titles or command lines expand
//! a large variable (93 KB of script, 177 MiB), a function recursing with large arguments
//! (10 MiB), a large file sourcing itself. The guest's allocator then failed and the
//! loader panicked (`tests/e2e/hostile.rs` boots each); now each is an error naming the
//! file and line. Submenus and `configfile`s copying a large environment at every level
//! (a few MiB at the nesting limits) are bounded the same way.
//!
//! - [`Limits::tokens`]: tokens lexed over the whole evaluation (every `source`,
//!   `configfile` and `eval` text), checked while lexing, before an AST is made;
//! - [`Limits::menu_bytes`]: the strings of all menu entries together;
//! - [`Limits::held_bytes`]: the variables of every context and the `$1...` of every call
//!   in progress together;
//! - [`Limits::file_size`] also bounds the texts running at once (a `source`d file's text
//!   is held while it runs);
//! - messages are cut at [`MAX_MESSAGE_LEN`] bytes (one can quote a 64 KiB word).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::eval::{EntryDef, EntryRun, Interp, R};
use super::parser::{Cmd, SyntaxError, parse_limited};

/// Longest message kept.
pub(super) const MAX_MESSAGE_LEN: usize = 256;

/// What the budgets have counted so far.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Spent {
    /// Tokens lexed ([`Limits::tokens`](super::Limits::tokens)).
    pub(super) tokens: usize,
    /// Bytes of menu strings made.
    pub(super) menu_bytes: usize,
    /// Bytes of the script texts running now.
    pub(super) texts: usize,
}

/// `m` cut to at most [`MAX_MESSAGE_LEN`] bytes (on a character boundary), and `"..."`
/// when it was cut.
pub(super) fn cut_message(m: &str) -> (&str, &'static str) {
    if m.len() <= MAX_MESSAGE_LEN {
        return (m, "");
    }
    let mut end = MAX_MESSAGE_LEN;
    while !m.is_char_boundary(end) {
        end -= 1;
    }
    (&m[..end], "...")
}

/// The strings a `menuentry` or `submenu` definition keeps.
pub(super) fn def_bytes(def: &EntryDef) -> usize {
    let strings = [&def.title, &def.id].into_iter().chain(&def.args).chain(&def.classes);
    strings.map(String::len).sum::<usize>() + def.users.as_ref().map_or(0, String::len)
}

/// The strings a menu entry's run made (its messages passed apart: they are private to
/// the run).
pub(super) fn run_bytes(run: &EntryRun, messages: &[String], titles: &[String]) -> usize {
    let paths = run.kernel.iter().chain(&run.initrds).map(|p| p.spec.len() + p.path.len()).sum::<usize>();
    paths
        + run.cmdline.len()
        + run.root.as_ref().map_or(0, String::len)
        + titles.iter().map(String::len).sum::<usize>()
        + messages.iter().map(String::len).sum::<usize>()
}

impl Interp<'_> {
    /// Parse `text` (named `file`) within what is left of the token budget, and with the
    /// texts already running.
    pub(super) fn parse_budgeted(&mut self, text: &str, file: &str) -> R<(Vec<Cmd>, Vec<SyntaxError>)> {
        let texts = self.spent.texts.saturating_add(text.len());
        if texts > self.lim.file_size {
            return Err(self.fatal(format!(
                "the configuration texts running at once would be {texts} bytes, over the {}-byte limit",
                self.lim.file_size
            )));
        }
        let left = self.lim.tokens.saturating_sub(self.spent.tokens);
        match parse_limited(text, left) {
            Ok((cmds, errors, tokens)) => {
                self.spent.tokens += tokens;
                Ok((cmds, errors))
            }
            Err(line) => {
                let saved = core::mem::replace(&mut self.file, alloc::rc::Rc::from(file));
                self.line = line;
                let e = self.fatal(format!(
                    "more than {} words and symbols in the configuration (its sourced files included): too \
                     large for the loader",
                    self.lim.tokens
                ));
                self.file = saved;
                Err(e)
            }
        }
    }

    /// Count `bytes` more of menu strings against [`Limits::menu_bytes`](super::Limits::menu_bytes).
    pub(super) fn count_menu_bytes(&mut self, bytes: usize) -> R<()> {
        self.spent.menu_bytes = self.spent.menu_bytes.saturating_add(bytes);
        if self.spent.menu_bytes > self.lim.menu_bytes {
            return Err(self.fatal(format!("menu entries larger than {} bytes in all", self.lim.menu_bytes)));
        }
        Ok(())
    }

    /// Refuse to hold `more` bytes of variables or arguments when that would take all the
    /// contexts and calls in progress past [`Limits::held_bytes`](super::Limits::held_bytes):
    /// each submenu, `configfile`, menu entry and function call copies some, and they nest.
    pub(super) fn hold(&self, more: usize) -> R<()> {
        let args: usize = self.scopes.iter().flatten().map(String::len).sum();
        let held = self.vars_bytes().saturating_add(args).saturating_add(more);
        if held > self.lim.held_bytes {
            return Err(self.fatal(format!(
                "variables and arguments of the calls, submenus and configfiles in progress would hold {held} \
                 bytes, over the {}-byte limit",
                self.lim.held_bytes
            )));
        }
        Ok(())
    }
}
