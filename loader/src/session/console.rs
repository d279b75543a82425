// SPDX-License-Identifier: MIT OR Apache-2.0
//! The console seam: what the boot session says and the keys a person types. The loader's
//! is the PV console or COM1 (`pvh`); `rxen-mkimage explain` passes one that
//! never waits; host tests script keys against a fake clock ([`ScriptedConsole`]).

use alloc::collections::VecDeque;
use alloc::string::String;

/// Where the boot session talks to a person.
pub trait Console {
    /// Write `s` as it is (`\n` ends a line).
    fn write_str(&mut self, s: &str);
    /// A key typed within `timeout_ms` (`None`: as long as it takes). `None` when none
    /// came in time, or when the console has no input at all (then also for `None`).
    fn read_key(&mut self, timeout_ms: Option<u64>) -> Option<u8>;
    /// Whether a person can answer a prompt here.
    fn interactive(&self) -> bool;
}

impl core::fmt::Write for dyn Console + '_ {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        Console::write_str(self, s);
        Ok(())
    }
}

/// `rxen: ` and a line on `con`.
#[macro_export]
#[doc(hidden)]
macro_rules! say {
    ($con:expr, $($t:tt)*) => {{
        let c: &mut dyn $crate::session::console::Console = &mut *$con;
        let _ = core::fmt::Write::write_fmt(c, format_args!("rxen: {}\n", format_args!($($t)*)));
    }};
}

/// Longest line a prompt takes, and an edited kernel command line.
pub const PROMPT_LINE_MAX: usize = 256;
pub const CMDLINE_EDIT_MAX: usize = 4096;

/// A line being typed: printable ASCII echoed, backspace erases, Enter ends it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineEditor {
    pub line: String,
    max: usize,
}

impl LineEditor {
    /// Start from `initial` (already shown by [`LineEditor::show`]), at most `max` bytes.
    pub fn new(initial: &str, max: usize) -> LineEditor {
        LineEditor { line: String::from(initial), max }
    }

    /// Print the line as it stands (when editing starts).
    pub fn show(&self, con: &mut dyn Console) {
        con.write_str(&self.line);
    }

    /// Take one key; the finished line on Enter.
    pub fn key(&mut self, c: u8, con: &mut dyn Console) -> Option<String> {
        match c {
            b'\r' | b'\n' => {
                con.write_str("\n");
                return Some(core::mem::take(&mut self.line));
            }
            0x08 | 0x7f if self.line.pop().is_some() => con.write_str("\x08 \x08"),
            c if (0x20..0x7f).contains(&c) && self.line.len() < self.max => {
                self.line.push(c as char);
                con.write_str(core::str::from_utf8(&[c]).unwrap_or(""));
            }
            _ => {}
        }
        None
    }
}

/// Read a whole line (waiting as long as it takes); `None` when the console has no input.
pub fn read_line(con: &mut dyn Console, initial: &str, max: usize) -> Option<String> {
    let mut ed = LineEditor::new(initial, max);
    ed.show(con);
    loop {
        let c = con.read_key(None)?;
        if let Some(line) = ed.key(c, con) {
            return Some(line);
        }
    }
}

/// A console that never waits and has nobody at it: what `explain` runs with. Output
/// is kept.
#[derive(Debug, Default)]
pub struct QuietConsole {
    pub output: String,
}

impl Console for QuietConsole {
    fn write_str(&mut self, s: &str) {
        self.output.push_str(s);
    }
    fn read_key(&mut self, _timeout_ms: Option<u64>) -> Option<u8> {
        None
    }
    fn interactive(&self) -> bool {
        false
    }
}

/// The host tests' console: keys arrive at scripted times on a fake millisecond clock
/// that only waiting moves; what the session writes is kept. When the script runs out,
/// the console reports no input (a wait forever returns `None`), so a test can never hang.
#[derive(Debug, Default)]
pub struct ScriptedConsole {
    pub output: String,
    /// (time in ms, key), in time order.
    pub keys: VecDeque<(u64, u8)>,
    pub now_ms: u64,
}

impl ScriptedConsole {
    /// Keys typed at `at` ms, one after the other.
    pub fn typing(at: u64, keys: &str) -> ScriptedConsole {
        let mut c = ScriptedConsole::default();
        c.then(at, keys);
        c
    }

    /// More keys at `at` ms.
    pub fn then(&mut self, at: u64, keys: &str) -> &mut Self {
        self.keys.extend(keys.bytes().map(|k| (at, k)));
        self
    }
}

impl Console for ScriptedConsole {
    fn write_str(&mut self, s: &str) {
        self.output.push_str(s);
    }
    fn read_key(&mut self, timeout_ms: Option<u64>) -> Option<u8> {
        let &(at, k) = self.keys.front()?;
        match timeout_ms {
            Some(t) if at > self.now_ms.saturating_add(t) => {
                self.now_ms += t;
                None
            }
            _ => {
                self.now_ms = self.now_ms.max(at);
                self.keys.pop_front();
                Some(k)
            }
        }
    }
    fn interactive(&self) -> bool {
        true
    }
}
