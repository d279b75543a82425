// SPDX-License-Identifier: MIT OR Apache-2.0
//! The boot menu of a guest configuration, as a state machine over [`Console`]: the
//! entries with the default marked, a countdown any key stops, then arrows or j/k and
//! Enter, a number, `e` to edit the command line, `c` for a read-only prompt over the
//! guest's volumes. [`Menu::key`] takes one key and says what to do; [`run`] drives it
//! from a console. The host tests below script the keys on a fake clock.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::console::{CMDLINE_EDIT_MAX, Console, LineEditor};
use crate::bootcfg::ConfigChoice;
use crate::config::configfs::ConfigFs;
use crate::say;

/// A person's choice: the entry, and its command line when they edited it.
pub type Pick = (usize, Option<String>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    Browse,
    Edit(LineEditor),
    Prompt { line: LineEditor, root: Option<String> },
}

/// The menu once the countdown was stopped.
#[derive(Clone, Debug)]
pub struct Menu {
    titles: Vec<String>,
    cmdlines: Vec<String>,
    default: Option<usize>,
    sel: usize,
    mode: Mode,
    /// The policy's `lock_cmdline`: `e` does not edit.
    locked: bool,
}

/// What a key did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Keep reading keys.
    Continue,
    /// Boot this.
    Boot(Pick),
}

impl Menu {
    pub fn new(choice: &ConfigChoice) -> Menu {
        let default = choice.selection.map(|s| s.entry);
        Menu {
            titles: choice.menu.entries.iter().map(|e| e.display_title()).collect(),
            cmdlines: choice.menu.entries.iter().map(|e| e.grub_cmdline()).collect(),
            default,
            sel: default.unwrap_or(0),
            mode: Mode::Browse,
            locked: choice.lock_cmdline,
        }
    }

    /// The highlighted entry.
    pub fn selected(&self) -> usize {
        self.sel
    }

    /// List the entries: `>` the highlighted one (once a person moved), `*` the default.
    pub fn show(&self, con: &mut dyn Console, highlight: bool) {
        for (i, t) in self.titles.iter().enumerate() {
            let mark = if highlight && i == self.sel {
                '>'
            } else if Some(i) == self.default {
                '*'
            } else {
                ' '
            };
            say!(con, "{mark} {:2}. {t}", i + 1);
        }
    }

    /// Take one key.
    pub fn key(&mut self, c: u8, con: &mut dyn Console, fs: &mut dyn ConfigFs) -> Action {
        match &mut self.mode {
            Mode::Edit(ed) => match ed.key(c, con) {
                Some(line) => Action::Boot((self.sel, Some(line))),
                None => Action::Continue,
            },
            Mode::Prompt { line, root } => {
                let Some(l) = line.key(c, con) else { return Action::Continue };
                match prompt_command(&l, root, con, fs) {
                    PromptResult::Boot => Action::Boot((self.sel, None)),
                    PromptResult::Exit => {
                        self.mode = Mode::Browse;
                        self.show(con, true);
                        Action::Continue
                    }
                    PromptResult::Again => {
                        con.write_str("rxen> ");
                        Action::Continue
                    }
                }
            }
            Mode::Browse => self.browse(c, con),
        }
    }

    fn browse(&mut self, c: u8, con: &mut dyn Console) -> Action {
        let n = self.titles.len();
        match c {
            b'\r' | b'\n' => return Action::Boot((self.sel, None)),
            b'j' | b'B' => self.sel = (self.sel + 1).min(n - 1),
            b'k' | b'A' => self.sel = self.sel.saturating_sub(1),
            b'1'..=b'9' if usize::from(c - b'1') < n => return Action::Boot((usize::from(c - b'1'), None)),
            b'e' if self.locked => {
                say!(con, "the policy locks the command line (lock_cmdline): it cannot be edited");
                return Action::Continue;
            }
            b'e' => {
                say!(con, "command line for {:?} (Enter to boot):", self.titles[self.sel]);
                let ed = LineEditor::new(&self.cmdlines[self.sel], CMDLINE_EDIT_MAX);
                ed.show(con);
                self.mode = Mode::Edit(ed);
                return Action::Continue;
            }
            b'c' => {
                say!(con, "commands: ls [(dev)][/dir], cat [(dev)]/file, set [root=DEV], boot, exit");
                con.write_str("rxen> ");
                self.mode = Mode::Prompt { line: LineEditor::new("", CMDLINE_EDIT_MAX), root: None };
                return Action::Continue;
            }
            0x1b | b'[' => return Action::Continue, // the start of an arrow key's escape sequence
            _ => {}
        }
        self.show(con, true);
        Action::Continue
    }
}

enum PromptResult {
    Boot,
    Exit,
    Again,
}

/// One line of the `c` prompt: `ls [(dev)][/dir]`, `cat [(dev)]/file`, `set [root=DEV]`
/// (the device `ls` and `cat` use when a path names none), `boot` (the highlighted
/// entry), `exit` (back to the menu). Read-only.
fn prompt_command(line: &str, root: &mut Option<String>, con: &mut dyn Console, fs: &mut dyn ConfigFs) -> PromptResult {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("");
    let arg = words.next().unwrap_or("/");
    let (dev, path) = match arg.strip_prefix('(').and_then(|r| r.split_once(')')) {
        Some((d, p)) => (Some(d), if p.is_empty() { "/" } else { p }),
        None => (root.as_deref(), arg),
    };
    let out = |con: &mut dyn Console, s: &str| {
        con.write_str(s);
        con.write_str("\n");
    };
    match cmd {
        "" => {}
        "boot" => return PromptResult::Boot,
        "exit" | "menu" => return PromptResult::Exit,
        "ls" => match fs.list(dev, path) {
            Ok(names) => out(con, &names.join("  ")),
            Err(e) => say!(con, "{e}"),
        },
        "cat" => match fs.read(dev, path, 64 << 10) {
            Ok(b) => out(con, &String::from_utf8_lossy(&b)),
            Err(e) => say!(con, "{e}"),
        },
        "set" if line.split_whitespace().nth(1).is_none() => {
            let r = root.as_deref().map_or_else(|| "(the configuration's own volume)".into(), |r| format!("({r})"));
            out(con, &format!("root={r}"));
        }
        "set" => match arg.split_once('=') {
            Some(("root", v)) => {
                let v = v.trim_start_matches('(').trim_end_matches(')');
                match fs.list(Some(v), "/") {
                    Ok(_) => {
                        out(con, &format!("root=({v})"));
                        *root = Some(v.into());
                    }
                    Err(e) => say!(con, "root unchanged: {e}"),
                }
            }
            Some((name, _)) => say!(con, "only root can be set here, not {name:?}"),
            None => say!(con, "usage: set root=DEV"),
        },
        other => say!(con, "unknown command {other:?}"),
    }
    PromptResult::Again
}

/// Show the menu of `choice` and let a person choose. Returns the entry (and an edited
/// command line) a person chose, or `None` when the countdown ran out (boot the
/// default), nobody can answer, or the console went away.
pub fn run(choice: &ConfigChoice, fs: &mut dyn ConfigFs, menu_forced: bool, con: &mut dyn Console) -> Option<Pick> {
    let wait = begin(choice, menu_forced, con)?;
    finish(wait, fs, con, 0, None)
}

/// A menu shown whose countdown (or wait for a key) has begun: [`begin`], then work may
/// be done while it runs, then [`finish`].
pub struct Waiting {
    menu: Menu,
    /// Seconds of countdown; `None`: wait for a key.
    pub timeout: Option<u32>,
}

/// Show the menu and start its countdown; `None`: nothing to wait for (boot the default).
pub fn begin(choice: &ConfigChoice, menu_forced: bool, con: &mut dyn Console) -> Option<Waiting> {
    let menu = Menu::new(choice);
    menu.show(con, false);
    let timeout = choice.timeout_for(menu_forced);
    if let Some(d) = menu.default {
        say!(con, "default: {:?}", menu.titles[d]);
    }
    if timeout == Some(0) || !con.interactive() || menu.titles.is_empty() {
        return None;
    }
    match timeout {
        Some(t) => say!(con, "booting the default in {t} s; press a key for the menu"),
        None => say!(con, "rxen.menu: waiting for a key (Enter boots the default)"),
    }
    Some(Waiting { menu, timeout })
}

/// The rest of the countdown (`spent_ms` of it went to other work) or the key that
/// already came (`key`), then the menu. `None`: boot the default.
pub fn finish(
    wait: Waiting,
    fs: &mut dyn ConfigFs,
    con: &mut dyn Console,
    spent_ms: u64,
    key: Option<u8>,
) -> Option<Pick> {
    let Waiting { mut menu, timeout } = wait;
    let mut key = match (key, timeout) {
        (Some(k), _) => k,
        (None, Some(t)) => {
            let left = (u64::from(t) * 1000).saturating_sub(spent_ms);
            if left == 0 {
                return None;
            }
            con.read_key(Some(left))?
        }
        (None, None) => con.read_key(None)?,
    };
    let edit = if menu.locked { "" } else { ", e to edit the command line" };
    say!(con, "menu: up/down or j/k, Enter to boot, a number to pick{edit}, c for a prompt");
    loop {
        if let Action::Boot(p) = menu.key(key, con, fs) {
            return Some(p);
        }
        key = con.read_key(None)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::Root;
    use crate::config::configfs::MemFs;
    use crate::config::menu::{self as cmenu, Env, Selection, Via};
    use crate::session::console::ScriptedConsole;

    const CFG: &str = "set timeout=5\nset default=1\nmenuentry 'One' { linux /vmlinuz-1 root=/dev/xvda1 }\n\
        menuentry 'Two' { linux /vmlinuz-2 ro quiet }\nmenuentry 'Three' { linux /vmlinuz-3 }\n";

    fn choice(timeout_cfg: &str) -> (ConfigChoice, MemFs) {
        let mut fs = MemFs::new("hd0,gpt2");
        fs.devices.get_mut("hd0,gpt2").unwrap().files.insert("/boot/grub/grub.cfg".into(), timeout_cfg.into());
        fs.devices.get_mut("hd0,gpt2").unwrap().files.insert("/etc/hostname".into(), b"guest\n".to_vec());
        let menu = crate::config::discover::load(
            &mut fs,
            "hd0,gpt2",
            &crate::config::discover::default_order(),
            &Env::new(),
            &crate::config::grub::Options::default(),
        )
        .unwrap();
        let selection = cmenu::select_default(&menu, &Env::new());
        let c = ConfigChoice {
            source: Root::Memdisk,
            menu,
            env: Env::new(),
            selection,
            max_timeout: 10,
            write_grubenv: false,
            pins: Default::default(),
            lock_cmdline: false,
        };
        (c, fs)
    }

    fn run_with(keys: ScriptedConsole, cfg: &str) -> (Option<Pick>, ScriptedConsole) {
        let (c, mut fs) = choice(cfg);
        let mut con = keys;
        let r = run(&c, &mut fs, false, &mut con);
        (r, con)
    }

    #[test]
    fn the_default_is_the_configs() {
        let (c, _) = choice(CFG);
        assert_eq!(c.selection, Some(Selection { entry: 1, via: Via::Default }));
    }

    #[test]
    fn countdown_runs_out_without_a_key() {
        let (r, con) = run_with(ScriptedConsole::typing(6000, "1"), CFG);
        assert_eq!(r, None, "{}", con.output);
        assert_eq!(con.now_ms, 5000, "the countdown waited its 5 s");
        assert!(con.output.contains("rxen: *  2. Two"), "{}", con.output);
        assert!(con.output.contains("booting the default in 5 s"), "{}", con.output);
    }

    #[test]
    fn a_key_stops_the_countdown_then_arrows_and_enter() {
        // Any key opens the menu; down (ESC [ B), down again (clamped), Enter.
        let (r, con) = run_with(ScriptedConsole::typing(4900, "x\x1b[B\x1b[Bj\r"), CFG);
        assert_eq!(r, Some((2, None)), "{}", con.output);
        assert!(con.output.contains("rxen: >  3. Three"), "{}", con.output);
    }

    #[test]
    fn k_moves_up_and_stops_at_the_top() {
        let (r, _) = run_with(ScriptedConsole::typing(10, " kkk\n"), CFG);
        assert_eq!(r, Some((0, None)));
    }

    #[test]
    fn a_number_boots_that_entry_and_out_of_range_is_ignored() {
        let (r, _) = run_with(ScriptedConsole::typing(10, " 93"), CFG);
        assert_eq!(r, Some((2, None)));
    }

    #[test]
    fn e_edits_the_command_line() {
        // Backspace over "quiet" and type "single".
        let (r, con) = run_with(ScriptedConsole::typing(10, " e\x7f\x7f\x7f\x7f\x7fsingle\r"), CFG);
        let (idx, line) = r.unwrap();
        assert_eq!(idx, 1);
        let line = line.unwrap();
        assert!(line.ends_with(" ro single"), "{line:?}");
        assert!(con.output.contains("command line for \"Two\""), "{}", con.output);
    }

    #[test]
    fn lock_cmdline_refuses_the_edit() {
        // The same keys as above, with the policy's lock_cmdline: `e` says why it does
        // nothing, the typed text is read as menu keys, Enter boots the unedited entry.
        let (mut c, mut fs) = choice(CFG);
        c.lock_cmdline = true;
        let mut con = ScriptedConsole::typing(10, " e\x7f\x7f\x7f\x7f\x7fsingle\r");
        let r = run(&c, &mut fs, false, &mut con);
        assert_eq!(r, Some((1, None)), "{}", con.output);
        assert!(con.output.contains("the policy locks the command line (lock_cmdline)"), "{}", con.output);
        assert!(!con.output.contains("e to edit"), "{}", con.output);
    }

    #[test]
    fn c_prompt_lists_reads_sets_root_and_boots() {
        let keys = " cls /etc\rcat /etc/hostname\rset root=nowhere\rset\rfrobnicate\rboot\r";
        let (r, con) = run_with(ScriptedConsole::typing(10, keys), CFG);
        assert_eq!(r, Some((1, None)), "{}", con.output);
        let o = &con.output;
        assert!(o.contains("\nhostname\n"), "{o}");
        assert!(o.contains("\nguest\n"), "{o}");
        assert!(o.contains("rxen: root unchanged: "), "{o}");
        assert!(o.contains("root=(the configuration's own volume)"), "{o}");
        assert!(o.contains("rxen: unknown command \"frobnicate\""), "{o}");
    }

    #[test]
    fn c_prompt_exit_goes_back_to_the_menu() {
        let (r, con) = run_with(ScriptedConsole::typing(10, " cexit\rj\r"), CFG);
        assert_eq!(r, Some((2, None)), "{}", con.output);
    }

    #[test]
    fn a_console_that_goes_away_boots_the_default() {
        // A key stops the countdown, then nothing more ever comes: no hang.
        let (r, _) = run_with(ScriptedConsole::typing(10, " j"), CFG);
        assert_eq!(r, None);
    }

    #[test]
    fn timeout_zero_shows_no_menu_unless_forced() {
        let cfg = CFG.replace("timeout=5", "timeout=0");
        let (r, con) = run_with(ScriptedConsole::typing(0, "3"), &cfg);
        assert_eq!(r, None);
        assert!(!con.output.contains("press a key"), "{}", con.output);
        let (c, mut fs) = choice(&cfg);
        let mut con = ScriptedConsole::typing(100, "3");
        assert_eq!(run(&c, &mut fs, true, &mut con), Some((2, None)), "rxen.menu shows it: {}", con.output);
        assert!(con.output.contains("booting the default in 10 s"), "{}", con.output);
    }

    /// The fleet setting, `max_timeout = 0`: no countdown ever delays the boot, and a
    /// menu asked for with `rxen.menu` waits for the person instead of counting down.
    #[test]
    fn max_timeout_zero_boots_at_once_or_waits_when_asked() {
        let (mut c, mut fs) = choice(CFG);
        c.max_timeout = 0;
        let mut con = ScriptedConsole::typing(0, "3");
        assert_eq!(run(&c, &mut fs, false, &mut con), None);
        assert!(!con.output.contains("press a key"), "{}", con.output);
        // Asked for: a key an hour later still reaches the menu (no countdown runs).
        let mut con = ScriptedConsole::typing(3_600_000, "3");
        assert_eq!(run(&c, &mut fs, true, &mut con), Some((2, None)), "{}", con.output);
        assert!(con.output.contains("rxen.menu: waiting for a key"), "{}", con.output);
        assert!(!con.output.contains("booting the default in"), "{}", con.output);
    }
}
