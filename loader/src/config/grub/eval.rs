// SPDX-License-Identifier: MIT OR Apache-2.0
//! Running a parsed GRUB script (the semantics of `grub-core/script/execute.c`,
//! `normal/menu.c`, `normal/context.c` and the commands distributions' configurations use).
//!
//! The configuration runs once, top to bottom, defining variables, functions and menu
//! entries. Then, as GRUB does when an entry is chosen, each entry's commands run on a copy
//! of the final environment with `$1...` set to the `menuentry` arguments; `linux` and
//! `initrd` record what would be loaded. A submenu's commands run in a new environment
//! context that starts with the exported variables (all of them for Red Hat's GRUB).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::cmd;
use super::lexer::{Part, Word};
pub use super::options::{Dialect, Limits, Options};
use super::parser::{Body, Cmd, CmdKind};
use crate::config::configfs::ConfigFs;
use crate::config::menu::{BootPath, Entry, EnvWrite, Format, Menu, MenuError, Submenu, strtoul};

/// Deepest nesting of commands inside commands, function bodies included (GRUB's
/// `MAX_RECURSION_DEPTH`). With the small frames below this keeps the interpreter's stack
/// use well inside the loader's 128 KiB stack.
const MAX_NEST: u32 = 64;
/// Deepest submenu.
const MAX_SUBMENUS: usize = 16;
/// Messages kept (the rest are counted).
const MAX_MESSAGES: usize = 200;
/// `save_env` calls recorded.
pub(super) const MAX_ENV_WRITES: usize = 64;
/// BLS snippets read by one `blscfg`.
pub(super) const MAX_BLS: usize = 512;

// GRUB's error numbers, which `$?` shows (include/grub/err.h).
pub(super) const ERR_TEST_FAILURE: i32 = 1;
pub(super) const ERR_BAD_FILE_TYPE: i32 = 4;
pub(super) const ERR_FILE_NOT_FOUND: i32 = 5;
pub(super) const ERR_BAD_FILENAME: i32 = 7;
pub(super) const ERR_INVALID_COMMAND: i32 = 17;
pub(super) const ERR_BAD_ARGUMENT: i32 = 18;

/// The variables normal mode sets (and exports) before reading grub.cfg.
pub const FEATURES: &[&str] = &[
    "feature_chainloader_bpb",
    "feature_ntldr",
    "feature_platform_search_hint",
    "feature_default_font_path",
    "feature_all_video_module",
    "feature_menuentry_id",
    "feature_menuentry_options",
    "feature_200_final",
    "feature_nativedisk_cmd",
    "feature_timeout_style",
];

#[derive(Clone, Debug)]
struct Var {
    value: String,
    exported: bool,
}

/// A `menuentry` or `submenu`, as defined: its commands run when the menu is made.
#[derive(Clone, Debug)]
pub(super) struct EntryDef {
    pub(super) title: String,
    pub(super) id: String,
    /// `$1...` when it runs: the title and the other non-option arguments.
    pub(super) args: Vec<String>,
    pub(super) classes: Vec<String>,
    pub(super) users: Option<String>,
    pub(super) hotkey: Option<String>,
    pub(super) body: Body,
    pub(super) file: Rc<str>,
    pub(super) line: u32,
}

#[derive(Clone, Debug)]
enum Item {
    Entry(Rc<EntryDef>),
    Submenu(Rc<EntryDef>),
}

#[derive(Clone, Debug, Default)]
struct Context {
    vars: BTreeMap<String, Var>,
    items: Vec<Item>,
    bytes: usize,
}

struct Func {
    body: Body,
    file: Rc<str>,
}

/// What an entry's commands loaded.
#[derive(Clone, Debug, Default)]
pub(super) struct EntryRun {
    pub(super) kernel: Option<BootPath>,
    pub(super) initrds: Vec<BootPath>,
    pub(super) cmdline: String,
    pub(super) root: Option<String>,
    /// The first command of a loader rxen does not boot.
    pub(super) unsupported: Option<String>,
    pub(super) env_writes: Vec<EnvWrite>,
    messages: Vec<String>,
}

/// Split `(dev)path` (GRUB's `grub_file_get_device_name`).
pub(super) fn split_device(spec: &str) -> (Option<&str>, &str) {
    if let Some(rest) = spec.strip_prefix('(')
        && let Some(end) = rest.find(')')
    {
        return (Some(&rest[..end]), &rest[end + 1..]);
    }
    (None, spec)
}

pub(super) fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

pub(crate) struct Interp<'a> {
    pub(super) fs: &'a mut dyn ConfigFs,
    pub(super) lim: Limits,
    dialect: Dialect,
    steps: u64,
    depth: u32,
    nest: u32,
    ctx: Vec<Context>,
    funcs: BTreeMap<String, Rc<Func>>,
    pub(super) scopes: Vec<Vec<String>>,
    pub(super) status: i32,
    pub(super) loops: u32,
    pub(super) breaks: u32,
    pub(super) is_continue: bool,
    pub(super) returning: bool,
    pub(super) file: Rc<str>,
    pub(super) line: u32,
    messages: Vec<String>,
    dropped_messages: usize,
    pub(super) env_writes: Vec<EnvWrite>,
    pub(super) run: Option<EntryRun>,
    pub(super) top_run: EntryRun,
    pub(super) bls_visible: BTreeSet<String>,
    items_made: usize,
    /// What the heap budgets have counted (`super::budget`).
    pub(super) spent: super::budget::Spent,
    replaced: bool,
    pub(super) boot_now: bool,
    /// Making the menu (entries and submenus run): `configfile` is not followed then.
    pub(super) building: bool,
}

pub(super) type R<T> = Result<T, MenuError>;

impl<'a> Interp<'a> {
    pub(crate) fn new(fs: &'a mut dyn ConfigFs, file: &str, opts: &Options, dialect: Dialect) -> Interp<'a> {
        Interp {
            fs,
            lim: opts.limits,
            dialect,
            steps: 0,
            depth: 0,
            nest: 0,
            ctx: vec![Context::default()],
            funcs: BTreeMap::new(),
            scopes: Vec::new(),
            status: 0,
            loops: 0,
            breaks: 0,
            is_continue: false,
            returning: false,
            file: Rc::from(file),
            line: 0,
            messages: Vec::new(),
            dropped_messages: 0,
            env_writes: Vec::new(),
            run: None,
            top_run: EntryRun::default(),
            bls_visible: BTreeSet::new(),
            items_made: 0,
            spent: Default::default(),
            replaced: false,
            boot_now: false,
            building: false,
        }
    }

    #[inline(never)]
    pub(super) fn fatal(&self, msg: impl Into<String>) -> MenuError {
        MenuError::new(&self.file, self.line, msg)
    }

    /// A problem GRUB would print: kept once, with its place.
    #[inline(never)]
    pub(super) fn msg(&mut self, m: impl AsRef<str>) {
        let (m, cut) = super::budget::cut_message(m.as_ref());
        let s = format!("{}:{}: {m}{cut}", self.file, self.line);
        if let Some(run) = self.run.as_mut()
            && run.messages.len() < MAX_MESSAGES
            && !run.messages.contains(&s)
        {
            run.messages.push(s.clone());
        }
        if self.messages.contains(&s) {
            return;
        }
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(s);
        } else {
            self.dropped_messages += 1;
        }
    }

    pub(super) fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > self.lim.steps {
            return Err(self.fatal(format!("stopped after {} steps, the limit (an endless loop?)", self.lim.steps)));
        }
        Ok(())
    }

    fn unwinding(&self) -> bool {
        self.replaced || self.boot_now
    }

    // ---- variables ----

    fn cur(&self) -> &Context {
        self.ctx.last().expect("there is always a context")
    }

    fn cur_mut(&mut self) -> &mut Context {
        self.ctx.last_mut().expect("there is always a context")
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.cur().vars.get(name).map(|v| v.value.as_str())
    }

    #[inline(never)]
    pub(crate) fn set(&mut self, name: &str, value: &str) -> R<()> {
        // GRUB's write hook on `root` drops surrounding parentheses.
        let value = if name == "root" && value.len() >= 2 && value.starts_with('(') && value.ends_with(')') {
            &value[1..value.len() - 1]
        } else {
            value
        };
        if value.len() > self.lim.value_len {
            return Err(self.fatal(format!(
                "variable `{name}` would hold {} bytes, over the {}-byte limit",
                value.len(),
                self.lim.value_len
            )));
        }
        let limit = self.lim.env_bytes;
        let c = self.cur_mut();
        let old = c.vars.get(name).map_or(0, |v| v.value.len() + name.len());
        let bytes = c.bytes - old + value.len() + name.len();
        if bytes > limit {
            return Err(self.fatal(format!("variables would hold {bytes} bytes, over the {limit}-byte limit")));
        }
        let grown = bytes.saturating_sub(self.cur().bytes);
        self.hold(grown)?;
        let c = self.cur_mut();
        c.bytes = bytes;
        let exported = c.vars.get(name).is_some_and(|v| v.exported);
        c.vars.insert(name.to_string(), Var { value: value.to_string(), exported });
        Ok(())
    }

    pub(crate) fn export(&mut self, name: &str) -> R<()> {
        if self.get(name).is_none() {
            self.set(name, "")?;
        }
        if let Some(v) = self.cur_mut().vars.get_mut(name) {
            v.exported = true;
        }
        Ok(())
    }

    pub(super) fn unset(&mut self, name: &str) {
        let c = self.cur_mut();
        if let Some(v) = c.vars.remove(name) {
            c.bytes -= v.value.len() + name.len();
        }
    }

    /// A new context for a submenu or `configfile`.
    #[inline(never)]
    pub(super) fn open_context(&mut self) -> R<()> {
        let all = self.dialect == Dialect::Rhboot;
        let copied = self.cur().vars.iter().filter(|(_, v)| all || v.exported);
        self.hold(copied.map(|(k, v)| k.len() + v.value.len()).sum())?;
        let mut c = Context::default();
        for (k, v) in &self.cur().vars {
            if all || v.exported {
                c.bytes += k.len() + v.value.len();
                c.vars.insert(k.clone(), Var { value: v.value.clone(), exported: true });
            }
        }
        self.ctx.push(c);
        Ok(())
    }

    /// Bytes of the variables of every context.
    pub(super) fn vars_bytes(&self) -> usize {
        self.ctx.iter().map(|c| c.bytes).sum()
    }

    /// After `configfile` ran its file in a context of its own: that file's menu replaces
    /// this one (the evaluation unwinds to show it), or, when it made none, GRUB comes back
    /// to the first configuration.
    pub(super) fn end_configfile(&mut self) {
        if self.cur().items.is_empty() && !self.replaced {
            self.ctx.pop();
        } else {
            self.replaced = true;
        }
    }

    /// The values of `$name`: positional parameters, `$#`, `$*`, `$@`, `$?`, or a variable.
    #[inline(never)]
    fn var_values(&self, name: &str, quoted: bool) -> Vec<String> {
        let scope = self.scopes.last();
        let first = name.as_bytes()[0];
        if first.is_ascii_digit() {
            let n: usize = name.parse().unwrap_or(usize::MAX);
            return match scope {
                Some(a) if n >= 1 && n <= a.len() => vec![a[n - 1].clone()],
                _ => Vec::new(),
            };
        }
        match name {
            "?" => vec![self.status.to_string()],
            "#" => scope.map(|a| vec![a.len().to_string()]).unwrap_or_default(),
            "*" if quoted => scope.map(|a| vec![a.join(" ")]).unwrap_or_default(),
            "*" | "@" => scope.cloned().unwrap_or_default(),
            _ => self.get(name).filter(|v| !v.is_empty()).map(|v| vec![v.to_string()]).unwrap_or_default(),
        }
    }

    /// Expand words to arguments: quotes removed, variables substituted, unquoted
    /// variables split at blanks; a word that expands to nothing unquoted disappears.
    #[inline(never)]
    fn expand(&mut self, words: &[Word]) -> R<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for w in words {
            let mut cur: Option<String> = None;
            for part in &w.parts {
                match part {
                    Part::Lit(s) => {
                        if !s.is_empty() {
                            cur.get_or_insert_with(String::new).push_str(s);
                        }
                    }
                    Part::Quoted(s) => cur.get_or_insert_with(String::new).push_str(s),
                    Part::QVar(name) => {
                        for (i, v) in self.var_values(name, true).into_iter().enumerate() {
                            if i > 0 {
                                out.extend(cur.take());
                            }
                            cur.get_or_insert_with(String::new).push_str(&v);
                        }
                    }
                    Part::Var(name) => {
                        for (i, v) in self.var_values(name, false).into_iter().enumerate() {
                            if i > 0 {
                                out.extend(cur.take());
                            }
                            let mut pieces = v.split(is_blank).filter(|p| !p.is_empty()).peekable();
                            while let Some(p) = pieces.next() {
                                cur.get_or_insert_with(String::new).push_str(p);
                                if pieces.peek().is_some() {
                                    out.extend(cur.take());
                                }
                            }
                        }
                    }
                }
                if cur.as_ref().is_some_and(|c| c.len() > self.lim.value_len) {
                    return Err(self.fatal(format!("a word longer than {} bytes", self.lim.value_len)));
                }
            }
            out.extend(cur);
            let total = out.iter().map(String::len).sum::<usize>() + out.len();
            if total > 4 * self.lim.value_len {
                return Err(self.fatal(format!("arguments longer than {} bytes", 4 * self.lim.value_len)));
            }
        }
        Ok(out)
    }

    // ---- execution ----

    pub(crate) fn exec_list(&mut self, cmds: &[Cmd]) -> R<i32> {
        let mut ret = 0;
        for c in cmds {
            if self.breaks > 0 || self.unwinding() {
                break;
            }
            ret = self.exec_cmd(c)?;
            if self.returning {
                break;
            }
        }
        Ok(ret)
    }

    fn exec_cmd(&mut self, c: &Cmd) -> R<i32> {
        self.line = c.line;
        self.step()?;
        self.nest += 1;
        if self.nest > MAX_NEST {
            return Err(self.fatal(format!("commands nested deeper than {MAX_NEST} levels")));
        }
        let ret = match &c.kind {
            CmdKind::Simple { words, block } => self.exec_simple(words, block.as_ref())?,
            CmdKind::If { branches, otherwise } => match self.exec_if(branches, otherwise.as_ref())? {
                Some(r) => r,
                None => {
                    let r = self.status;
                    self.nest -= 1;
                    return Ok(r);
                }
            },
            CmdKind::While { cond, body, until } => self.exec_while(cond, body, *until)?,
            CmdKind::For { var, words, body } => self.exec_for(var, words, body)?,
            CmdKind::Function { name, body } => {
                self.funcs.insert(name.clone(), Rc::new(Func { body: body.clone(), file: self.file.clone() }));
                0
            }
            CmdKind::AndOr { first, rest } => self.exec_and_or(first, rest)?,
        };
        self.nest -= 1;
        self.status = ret;
        Ok(ret)
    }

    /// `if`: `None` when a `return` or an unwinding stopped it in a condition.
    #[inline(never)]
    fn exec_if(&mut self, branches: &[(Body, Body)], otherwise: Option<&Body>) -> R<Option<i32>> {
        for (cond, body) in branches {
            let r = self.exec_list(cond)?;
            self.status = r;
            if self.returning || self.unwinding() {
                return Ok(None);
            }
            if r == 0 {
                return self.exec_list(body).map(Some);
            }
        }
        match otherwise {
            Some(e) => self.exec_list(e).map(Some),
            None => Ok(Some(0)),
        }
    }

    #[inline(never)]
    fn exec_while(&mut self, cond: &[Cmd], body: &[Cmd], until: bool) -> R<i32> {
        self.loops += 1;
        let mut result;
        loop {
            self.step()?;
            result = self.exec_list(cond)?;
            self.status = result;
            if self.returning || self.unwinding() || (if until { result == 0 } else { result != 0 }) {
                break;
            }
            result = self.exec_list(body)?;
            self.status = result;
            if self.returning {
                break;
            }
            if self.breaks == 1 && self.is_continue {
                self.breaks = 0;
            }
            if self.breaks > 0 || self.unwinding() {
                break;
            }
        }
        if self.breaks > 0 {
            self.breaks -= 1;
        }
        self.loops -= 1;
        Ok(result)
    }

    #[inline(never)]
    fn exec_for(&mut self, var: &str, words: &[Word], body: &[Cmd]) -> R<i32> {
        let items = self.expand(words)?;
        self.loops += 1;
        let mut result = 0;
        for v in items {
            self.step()?;
            if self.is_continue && self.breaks == 1 {
                self.breaks = 0;
            }
            if self.breaks > 0 || self.unwinding() {
                break;
            }
            self.set(var, &v)?;
            result = self.exec_list(body)?;
            self.status = result;
            if self.returning {
                break;
            }
        }
        if self.breaks > 0 {
            self.breaks -= 1;
        }
        self.loops -= 1;
        Ok(result)
    }

    #[inline(never)]
    fn exec_and_or(&mut self, first: &Cmd, rest: &[(bool, Cmd)]) -> R<i32> {
        let mut r = self.exec_cmd(first)?;
        for (and, c) in rest {
            if self.returning || self.breaks > 0 || self.unwinding() {
                break;
            }
            if (*and && r == 0) || (!*and && r != 0) {
                r = self.exec_cmd(c)?;
            }
        }
        Ok(r)
    }

    #[inline(never)]
    fn exec_simple(&mut self, words: &[Word], block: Option<&Body>) -> R<i32> {
        let mut argv = self.expand(words)?;
        if argv.is_empty() {
            return Ok(0);
        }
        let mut invert = false;
        if argv[0] == "!" {
            if argv.len() < 2 {
                self.msg("`!`: no command is specified");
                return Ok(ERR_BAD_ARGUMENT);
            }
            invert = true;
            argv.remove(0);
        }
        let name = argv.remove(0);
        let ret = self.dispatch(&name, &argv, block)?;
        Ok(if invert {
            match ret {
                ERR_TEST_FAILURE => 0,
                0 => ERR_TEST_FAILURE,
                _ => 0,
            }
        } else {
            ret
        })
    }

    /// Run the command `name`: a builtin ([`cmd::COMMANDS`]), else [`Interp::not_a_builtin`].
    #[inline(never)]
    fn dispatch(&mut self, name: &str, args: &[String], block: Option<&Body>) -> R<i32> {
        match cmd::lookup(name) {
            Some(run) => run(self, name, args, block),
            None => self.not_a_builtin(name, args),
        }
    }

    /// A name no builtin has: the configuration's function, a `name=value` assignment, or
    /// an unknown command (reported and skipped, as GRUB does).
    #[inline(never)]
    pub(super) fn not_a_builtin(&mut self, name: &str, args: &[String]) -> R<i32> {
        if let Some(f) = self.funcs.get(name).cloned() {
            return self.call(&f, args.to_vec());
        }
        if let Some((var, value)) = name.split_once('=') {
            if var.is_empty() || var.as_bytes()[0].is_ascii_digit() || matches!(var, "#" | "*" | "@") {
                self.msg(format!("invalid variable name `{var}`"));
                return Ok(ERR_BAD_ARGUMENT);
            }
            self.set(var, value)?;
            return Ok(0);
        }
        self.msg(format!("unknown command `{name}` (ignored)"));
        Ok(0)
    }

    /// Call the configuration's function `name`, if it defined one.
    pub(super) fn call_function(&mut self, name: &str, args: &[String]) -> Option<R<i32>> {
        let f = self.funcs.get(name).cloned()?;
        Some(self.call(&f, args.to_vec()))
    }

    /// Run a command that runs more script, counting it as two levels of nesting.
    pub(super) fn nested(&mut self, f: impl FnOnce(&mut Self) -> R<i32>) -> R<i32> {
        self.nest += 2;
        if self.nest > MAX_NEST {
            return Err(self.fatal(format!("commands nested deeper than {MAX_NEST} levels")));
        }
        let r = f(self);
        self.nest -= 2;
        r
    }

    /// One level deeper in calls (a function, `source`, `configfile` or `eval`).
    #[inline(never)]
    pub(super) fn enter(&mut self, what: &str) -> R<()> {
        self.depth += 1;
        if self.depth > self.lim.depth {
            return Err(self.fatal(format!("{what}: calls nested deeper than {} levels", self.lim.depth)));
        }
        Ok(())
    }

    /// Back from what [`Interp::enter`] counted.
    pub(super) fn leave(&mut self) {
        self.depth -= 1;
    }

    #[inline(never)]
    fn call(&mut self, f: &Func, args: Vec<String>) -> R<i32> {
        self.enter("function")?;
        // A call puts a few more frames on the stack than a nested command: count it so.
        self.nest += 2;
        if self.nest > MAX_NEST {
            return Err(self.fatal(format!("commands nested deeper than {MAX_NEST} levels")));
        }
        let loops = core::mem::replace(&mut self.loops, 0);
        self.hold(args.iter().map(String::len).sum())?;
        self.scopes.push(args);
        let file = core::mem::replace(&mut self.file, f.file.clone());
        let line = self.line;
        let r = self.exec_list(&f.body);
        self.file = file;
        self.line = line;
        self.scopes.pop();
        self.returning = false;
        self.loops = loops;
        self.depth -= 1;
        self.nest -= 2;
        r
    }

    /// Run `cmds` parsed from `file` (for `source`, `configfile`, `eval`).
    #[inline(never)]
    pub(super) fn run_text(&mut self, text: &str, file: &str) -> R<i32> {
        let (cmds, errors) = self.parse_budgeted(text, file)?;
        let saved = core::mem::replace(&mut self.file, Rc::from(file));
        let line = self.line;
        for e in &errors {
            self.line = e.line;
            self.msg(format!("syntax error, statement skipped: {}", e.msg));
        }
        self.spent.texts += text.len();
        let r = self.exec_list(&cmds);
        self.spent.texts -= text.len();
        self.file = saved;
        self.line = line;
        r
    }

    // ---- paths ----

    /// Where `spec` points: its `(device)` or `$root`.
    #[inline(never)]
    pub(super) fn boot_path(&self, spec: &str) -> BootPath {
        let (dev, path) = split_device(spec);
        let device = match dev {
            Some(d) => Some(d.to_string()),
            None => self.get("root").filter(|r| !r.is_empty()).map(String::from),
        };
        BootPath { device: device.filter(|d| !d.is_empty()), path: path.to_string(), spec: spec.to_string() }
    }

    /// What the running menu entry loaded, or (outside one) what the configuration did.
    pub(super) fn run_state(&mut self) -> &mut EntryRun {
        match self.run.as_mut() {
            Some(r) => r,
            None => &mut self.top_run,
        }
    }

    /// `config_file` and `config_directory` (exported): the file being read, and its directory.
    #[inline(never)]
    pub(super) fn set_config_vars(&mut self, p: &BootPath) -> R<()> {
        let full = match &p.device {
            Some(d) => format!("({d}){}", p.path),
            None => p.path.clone(),
        };
        let dir = match full.rfind('/') {
            Some(i) => full[..i].to_string(),
            None => full.clone(),
        };
        self.set("config_file", &full)?;
        self.set("config_directory", &dir)?;
        self.export("config_file")?;
        self.export("config_directory")
    }

    /// A menu entry (or submenu) of the current context, within [`Limits::entries`].
    #[inline(never)]
    pub(super) fn add_item(&mut self, submenu: bool, def: EntryDef) -> R<()> {
        self.items_made += 1;
        if self.items_made > self.lim.entries {
            return Err(self.fatal(format!("more than {} menu entries", self.lim.entries)));
        }
        self.count_menu_bytes(super::budget::def_bytes(&def))?;
        let def = Rc::new(def);
        let item = if submenu { Item::Submenu(def) } else { Item::Entry(def) };
        self.cur_mut().items.push(item);
        Ok(())
    }

    // ---- the menu ----

    #[inline(never)]
    fn run_entry(&mut self, def: &EntryDef, path: &[usize], titles: &[String], chosen: &str) -> R<Entry> {
        self.hold(self.cur().bytes + def.args.iter().map(String::len).sum::<usize>())?;
        let mut c = self.cur().clone();
        c.items.clear();
        self.ctx.push(c);
        self.set("chosen", chosen)?;
        self.export("chosen")?;
        self.run = Some(EntryRun::default());
        self.scopes.push(def.args.clone());
        let file = core::mem::replace(&mut self.file, def.file.clone());
        self.line = def.line;
        let r = self.exec_list(&def.body);
        self.file = file;
        self.scopes.pop();
        self.returning = false;
        self.breaks = 0;
        self.ctx.pop();
        let run = self.run.take().unwrap_or_default();
        r?;
        // The title, id and arguments were counted when the entry was defined.
        self.count_menu_bytes(super::budget::run_bytes(&run, &run.messages, titles))?;
        Ok(Entry {
            title: def.title.clone(),
            id: def.id.clone(),
            path: path.to_vec(),
            submenu: titles.to_vec(),
            kernel: run.kernel,
            initrds: run.initrds,
            cmdline: run.cmdline,
            root: run.root,
            classes: def.classes.clone(),
            users: def.users.clone(),
            hotkey: def.hotkey.clone(),
            unsupported: run.unsupported,
            env_writes: run.env_writes,
            messages: run.messages,
            file: def.file.to_string(),
            line: def.line,
        })
    }

    fn build(
        &mut self,
        menu: &mut Menu,
        items: Vec<Item>,
        path: &mut Vec<usize>,
        titles: &mut Vec<String>,
        chosen: &str,
    ) -> R<()> {
        for (k, item) in items.into_iter().enumerate() {
            path.push(k);
            let (def, sub) = match &item {
                Item::Entry(d) => (d, false),
                Item::Submenu(d) => (d, true),
            };
            let mut id = String::from(chosen);
            if !id.is_empty() {
                id.push('>');
            }
            id.push_str(&def.id.replace('>', ">>"));
            if !sub {
                let e = self.run_entry(def, path, titles, &id)?;
                menu.entries.push(e);
            } else {
                if titles.len() >= MAX_SUBMENUS {
                    self.line = def.line;
                    return Err(self.fatal(format!("submenus nested deeper than {MAX_SUBMENUS} levels")));
                }
                menu.submenus.push(Submenu {
                    title: def.title.clone(),
                    id: def.id.clone(),
                    path: path.clone(),
                    default: None,
                });
                let si = menu.submenus.len() - 1;
                self.open_context()?;
                self.unset("default");
                self.set("chosen", &id)?;
                self.hold(def.args.iter().map(String::len).sum())?;
                self.scopes.push(def.args.clone());
                let file = core::mem::replace(&mut self.file, def.file.clone());
                self.line = def.line;
                let r = self.exec_list(&def.body);
                self.file = file;
                self.scopes.pop();
                self.returning = false;
                self.breaks = 0;
                r?;
                let sub_items = core::mem::take(&mut self.cur_mut().items);
                menu.submenus[si].default = self.get("default").map(String::from);
                titles.push(def.title.clone());
                let r = self.build(menu, sub_items, path, titles, &id);
                titles.pop();
                self.ctx.pop();
                r?;
            }
            path.pop();
        }
        Ok(())
    }

    /// Run the top-level script and make the menu.
    pub(crate) fn run_config(mut self, text: &str, env: &crate::config::menu::Env) -> R<Menu> {
        let file = self.file.to_string();
        for f in FEATURES {
            self.set(f, "y")?;
            self.export(f)?;
        }
        for (k, v) in env {
            self.set(k, v)?;
            self.export(k)?;
        }
        if self.get("config_file").is_none() {
            let p = self.boot_path(&file);
            self.set_config_vars(&p)?;
        }
        self.run_text(text, &file)?;
        let mut menu = Menu::new(Format::Grub, &file);
        if self.boot_now {
            let run = core::mem::take(&mut self.top_run);
            menu.entries.push(Entry {
                title: format!("boot at {}:{}", self.file, self.line),
                id: "boot".into(),
                path: vec![0],
                kernel: run.kernel,
                initrds: run.initrds,
                cmdline: run.cmdline,
                root: run.root,
                file: self.file.to_string(),
                line: self.line,
                ..Default::default()
            });
            menu.timeout = Some(0);
        } else {
            // A `configfile` menu replaced ours: stop unwinding and show it.
            self.replaced = false;
            let items = core::mem::take(&mut self.cur_mut().items);
            menu.default = self.get("default").filter(|d| !d.is_empty()).map(String::from);
            menu.timeout = self.get("timeout").and_then(|t| strtoul(t)).map(|(v, _)| v.min(i64::MAX as u64) as i64);
            menu.timeout_style = self.get("timeout_style").map(String::from);
            menu.fallback = self
                .get("fallback")
                .map(|f| f.split(is_blank).filter(|s| !s.is_empty()).map(String::from).collect())
                .unwrap_or_default();
            menu.superusers = self.get("superusers").filter(|s| !s.is_empty()).map(String::from);
            if let Some(f) = self.get("config_file") {
                menu.file = f.to_string();
            }
            self.building = true;
            self.build(&mut menu, items, &mut Vec::new(), &mut Vec::new(), "")?;
        }
        if self.dropped_messages > 0 {
            let n = self.dropped_messages;
            self.messages.push(format!("{file}: {n} more messages not shown"));
        }
        menu.messages = self.messages;
        menu.env_writes = self.env_writes;
        Ok(menu)
    }
}
