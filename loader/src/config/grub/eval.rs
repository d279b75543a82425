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

use super::lexer::{Part, Word};
use super::parser::{Body, Cmd, CmdKind, parse};
use crate::config::bls;
use crate::config::configfs::{ConfigFs, SearchBy};
use crate::config::grubenv;
use crate::config::menu::{BootPath, Entry, EnvWrite, Format, Menu, MenuError, Submenu, join_cmdline, strtoul};

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
    /// Menu entries and submenus, together.
    pub entries: usize,
    /// Largest configuration file read (`source`, `configfile`, BLS entries).
    pub file_size: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            steps: 100_000,
            depth: 32,
            value_len: 64 * 1024,
            env_bytes: 256 * 1024,
            entries: 1024,
            file_size: 1 << 20,
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

/// Deepest nesting of commands inside commands, function bodies included (GRUB's
/// `MAX_RECURSION_DEPTH`). With the small frames below this keeps the interpreter's stack
/// use well inside the loader's 128 KiB stack.
const MAX_NEST: u32 = 64;
/// Deepest submenu.
const MAX_SUBMENUS: usize = 16;
/// Messages kept (the rest are counted).
const MAX_MESSAGES: usize = 200;
/// `save_env` calls recorded.
const MAX_ENV_WRITES: usize = 64;
/// BLS snippets read by one `blscfg`.
const MAX_BLS: usize = 512;

// GRUB's error numbers, which `$?` shows (include/grub/err.h).
const ERR_TEST_FAILURE: i32 = 1;
const ERR_BAD_FILE_TYPE: i32 = 4;
const ERR_FILE_NOT_FOUND: i32 = 5;
const ERR_BAD_FILENAME: i32 = 7;
const ERR_INVALID_COMMAND: i32 = 17;
const ERR_BAD_ARGUMENT: i32 = 18;

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

/// Real GRUB commands accepted and ignored (video, fonts, terminals, modules, ...).
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

/// Names distributions' configurations call that are functions they define (or, for
/// `all_video`, a module): accepted quietly when the configuration did not define them.
const QUIET_FUNCTIONS: &[&str] =
    &["load_video", "recordfail", "gfxmode", "savedefault", "initrdfail", "all_video", "font"];

/// Commands that load something rxen does not boot: an entry using one is listed but
/// marked unsupported.
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

#[derive(Clone, Debug)]
struct Var {
    value: String,
    exported: bool,
}

#[derive(Clone, Debug)]
struct EntryDef {
    title: String,
    id: String,
    /// `$1...` when it runs: the title and the other non-option arguments.
    args: Vec<String>,
    classes: Vec<String>,
    users: Option<String>,
    hotkey: Option<String>,
    body: Body,
    file: Rc<str>,
    line: u32,
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
struct EntryRun {
    kernel: Option<BootPath>,
    initrds: Vec<BootPath>,
    cmdline: String,
    root: Option<String>,
    unsupported: Option<String>,
    env_writes: Vec<EnvWrite>,
    messages: Vec<String>,
}

/// How an option takes a value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    No,
    Value,
    Optional,
}

struct Opt {
    long: &'static str,
    short: Option<u8>,
    takes: Takes,
}

const fn opt(long: &'static str, short: Option<u8>, takes: Takes) -> Opt {
    Opt { long, short, takes }
}

/// Options and arguments, as `grub_arg_parse` splits them.
struct Parsed {
    opts: Vec<(&'static str, Option<String>)>,
    args: Vec<String>,
}

impl Parsed {
    fn has(&self, long: &str) -> bool {
        self.opts.iter().any(|(l, _)| *l == long)
    }
    /// The last value given to `long`.
    fn value(&self, long: &str) -> Option<&str> {
        self.opts.iter().rev().find(|(l, _)| *l == long).and_then(|(_, v)| v.as_deref())
    }
    fn values(&self, long: &str) -> Vec<String> {
        self.opts.iter().filter(|(l, _)| *l == long).filter_map(|(_, v)| v.clone()).collect()
    }
}

/// `grub_arg_parse`: options may come anywhere, `--` ends them, `--long=value` or
/// `--long value` (the next argument when it does not start with `-`).
fn parse_opts(specs: &[Opt], argv: &[String], accept_dash: bool) -> Result<Parsed, String> {
    let mut p = Parsed { opts: Vec::new(), args: Vec::new() };
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        let b = arg.as_bytes();
        if b.first() != Some(&b'-') || b.len() == 1 {
            p.args.push(arg.clone());
            i += 1;
            continue;
        }
        if b[1] != b'-' {
            let find = |c: u8| specs.iter().find(|o| o.short == Some(c));
            if accept_dash && b[1..].iter().any(|&c| find(c).is_none()) {
                p.args.push(arg.clone());
                i += 1;
                continue;
            }
            for (k, &c) in b[1..].iter().enumerate() {
                let Some(o) = find(c) else { return Err(format!("unknown argument `-{}`", c as char)) };
                let last = k + 2 == b.len();
                if !last {
                    if o.takes == Takes::Value {
                        return Err(format!("missing mandatory option for `{}`", o.long));
                    }
                    p.opts.push((o.long, None));
                    continue;
                }
                let mut value = None;
                if o.takes != Takes::No {
                    if let Some(next) = argv.get(i + 1)
                        && (o.takes == Takes::Value || next.len() < 2 || !next.starts_with('-'))
                    {
                        value = Some(next.clone());
                        i += 1;
                    }
                    if value.is_none() && o.takes == Takes::Value {
                        return Err(format!("missing mandatory option for `{}`", o.long));
                    }
                }
                p.opts.push((o.long, value));
            }
            i += 1;
            continue;
        }
        if b.len() == 2 {
            p.args.extend(argv[i + 1..].iter().cloned());
            break;
        }
        let (name, mut value) = match arg[2..].split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (&arg[2..], None),
        };
        let Some(o) = specs.iter().find(|o| o.long == name) else {
            if accept_dash {
                p.args.push(arg.clone());
                i += 1;
                continue;
            }
            return Err(format!("unknown argument `{arg}`"));
        };
        if value.is_none()
            && o.takes != Takes::No
            && let Some(next) = argv.get(i + 1).filter(|n| !n.starts_with('-'))
        {
            value = Some(next.clone());
            i += 1;
        }
        match o.takes {
            Takes::No if value.is_some() => {
                return Err(format!(
                    "a value was assigned to the argument `{arg}` while it doesn't require an argument"
                ));
            }
            Takes::Value if value.is_none() => return Err(format!("missing mandatory option for `{}`", o.long)),
            _ => {}
        }
        p.opts.push((o.long, value));
        i += 1;
    }
    Ok(p)
}

/// Split `(dev)path` (GRUB's `grub_file_get_device_name`).
fn split_device(spec: &str) -> (Option<&str>, &str) {
    if let Some(rest) = spec.strip_prefix('(')
        && let Some(end) = rest.find(')')
    {
        return (Some(&rest[..end]), &rest[end + 1..]);
    }
    (None, spec)
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// `grub_strtosl(s, 0, 0)` as `test -eq` uses it: 0 when there is no number.
fn strtosl(s: &str) -> i64 {
    let t = s.trim_start_matches(is_blank);
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let v = strtoul(t).map_or(0, |(v, _)| v.min(i64::MAX as u64) as i64);
    if neg { -v } else { v }
}

pub(crate) struct Interp<'a> {
    fs: &'a mut dyn ConfigFs,
    lim: Limits,
    dialect: Dialect,
    steps: u64,
    depth: u32,
    nest: u32,
    ctx: Vec<Context>,
    funcs: BTreeMap<String, Rc<Func>>,
    scopes: Vec<Vec<String>>,
    status: i32,
    loops: u32,
    breaks: u32,
    is_continue: bool,
    returning: bool,
    file: Rc<str>,
    line: u32,
    messages: Vec<String>,
    dropped_messages: usize,
    env_writes: Vec<EnvWrite>,
    run: Option<EntryRun>,
    top_run: EntryRun,
    bls_visible: BTreeSet<String>,
    items_made: usize,
    replaced: bool,
    boot_now: bool,
    /// Making the menu (entries and submenus run): `configfile` is not followed then.
    building: bool,
}

type R<T> = Result<T, MenuError>;

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
            replaced: false,
            boot_now: false,
            building: false,
        }
    }

    #[inline(never)]
    fn fatal(&self, msg: impl Into<String>) -> MenuError {
        MenuError::new(&self.file, self.line, msg)
    }

    /// A problem GRUB would print: kept once, with its place.
    #[inline(never)]
    fn msg(&mut self, m: impl AsRef<str>) {
        let s = format!("{}:{}: {}", self.file, self.line, m.as_ref());
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

    fn step(&mut self) -> R<()> {
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

    fn unset(&mut self, name: &str) {
        let c = self.cur_mut();
        if let Some(v) = c.vars.remove(name) {
            c.bytes -= v.value.len() + name.len();
        }
    }

    /// A new context for a submenu or `configfile`.
    #[inline(never)]
    fn open_context(&mut self) {
        let all = self.dialect == Dialect::Rhboot;
        let mut c = Context::default();
        for (k, v) in &self.cur().vars {
            if all || v.exported {
                c.bytes += k.len() + v.value.len();
                c.vars.insert(k.clone(), Var { value: v.value.clone(), exported: true });
            }
        }
        self.ctx.push(c);
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

    #[inline(never)]
    fn dispatch(&mut self, name: &str, args: &[String], block: Option<&Body>) -> R<i32> {
        // The commands that run more script, kept out of `builtin`'s large frame.
        match name {
            "source" | "." => return self.nested(|i| i.cmd_source(args)),
            "eval" => return self.nested(|i| i.cmd_eval(args)),
            "configfile" | "normal" if self.run.is_none() => return self.nested(|i| i.cmd_configfile(args)),
            _ => {}
        }
        if let Some(r) = self.builtin(name, args, block)? {
            return Ok(r);
        }
        if let Some(f) = self.funcs.get(name).cloned() {
            return self.call(&f, args.to_vec());
        }
        if QUIET_FUNCTIONS.contains(&name) {
            return Ok(0);
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

    /// Run a command that runs more script, counting it as two levels of nesting.
    fn nested(&mut self, f: impl FnOnce(&mut Self) -> R<i32>) -> R<i32> {
        self.nest += 2;
        if self.nest > MAX_NEST {
            return Err(self.fatal(format!("commands nested deeper than {MAX_NEST} levels")));
        }
        let r = f(self);
        self.nest -= 2;
        r
    }

    #[inline(never)]
    fn cmd_eval(&mut self, args: &[String]) -> R<i32> {
        self.enter("eval")?;
        let text = args.join(" ");
        let file = self.file.to_string();
        let r = self.run_text(&text, &file)?;
        self.depth -= 1;
        Ok(r)
    }

    #[inline(never)]
    fn enter(&mut self, what: &str) -> R<()> {
        self.depth += 1;
        if self.depth > self.lim.depth {
            return Err(self.fatal(format!("{what}: calls nested deeper than {} levels", self.lim.depth)));
        }
        Ok(())
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
    fn run_text(&mut self, text: &str, file: &str) -> R<i32> {
        let (cmds, errors) = parse(text);
        let saved = core::mem::replace(&mut self.file, Rc::from(file));
        let line = self.line;
        for e in &errors {
            self.line = e.line;
            self.msg(format!("syntax error, statement skipped: {}", e.msg));
        }
        let r = self.exec_list(&cmds);
        self.file = saved;
        self.line = line;
        r
    }

    // ---- paths ----

    /// Where `spec` points: its `(device)` or `$root`.
    #[inline(never)]
    fn boot_path(&self, spec: &str) -> BootPath {
        let (dev, path) = split_device(spec);
        let device = match dev {
            Some(d) => Some(d.to_string()),
            None => self.get("root").filter(|r| !r.is_empty()).map(String::from),
        };
        BootPath { device: device.filter(|d| !d.is_empty()), path: path.to_string(), spec: spec.to_string() }
    }

    #[inline(never)]
    fn read_file(&mut self, p: &BootPath, limit: usize) -> Result<String, String> {
        let data = self.fs.read(p.device.as_deref(), &p.path, limit)?;
        Ok(String::from_utf8_lossy(&data).into_owned())
    }

    // ---- commands ----

    #[inline(never)]
    fn builtin(&mut self, name: &str, args: &[String], block: Option<&Body>) -> R<Option<i32>> {
        let r = match name {
            "true" => 0,
            "false" => ERR_TEST_FAILURE,
            "[" | "test" => self.cmd_test(args),
            "set" => match args.first() {
                None => 0,
                Some(a) => match a.split_once('=') {
                    Some((k, v)) => {
                        self.set(k, v)?;
                        0
                    }
                    None => {
                        self.msg(format!("set: `{a}` is not an assignment"));
                        ERR_BAD_ARGUMENT
                    }
                },
            },
            "unset" => {
                for a in args {
                    self.unset(a);
                }
                0
            }
            "export" => {
                for a in args {
                    self.export(a)?;
                }
                0
            }
            "setparams" => match self.scopes.last_mut() {
                Some(s) => {
                    *s = args.to_vec();
                    0
                }
                None => ERR_INVALID_COMMAND,
            },
            "shift" => {
                let n = match args.first() {
                    None => 1,
                    Some(a) => a.parse::<usize>().unwrap_or(usize::MAX),
                };
                match self.scopes.last_mut() {
                    Some(s) if n <= s.len() && args.len() <= 1 => {
                        s.drain(..n);
                        0
                    }
                    Some(_) => ERR_BAD_ARGUMENT,
                    None => 0,
                }
            }
            "return" => {
                if self.scopes.is_empty() || args.len() > 1 {
                    self.msg("return: not in function body");
                    ERR_BAD_ARGUMENT
                } else {
                    let n = match args.first() {
                        None => self.status,
                        Some(a) => match a.parse::<i32>() {
                            Ok(n) => n,
                            Err(_) => {
                                self.msg(format!("return: `{a}` is not a number"));
                                return Ok(Some(ERR_BAD_ARGUMENT));
                            }
                        },
                    };
                    self.returning = true;
                    n
                }
            }
            "break" | "continue" => {
                let count = match args {
                    [] => Some(1),
                    [a] => a.parse::<u32>().ok().filter(|&n| n > 0),
                    _ => None,
                };
                match count {
                    Some(n) => {
                        self.is_continue = name == "continue";
                        self.breaks = n.min(self.loops);
                        0
                    }
                    None => {
                        self.msg(format!("{name}: bad count"));
                        ERR_BAD_ARGUMENT
                    }
                }
            }
            "menuentry" | "submenu" => self.cmd_menuentry(name == "submenu", args, block)?,
            "search" => self.cmd_search(args)?,
            "search.fs_uuid" | "search.fs_label" | "search.file" => {
                let by = match name {
                    "search.fs_uuid" => SearchBy::FsUuid,
                    "search.fs_label" => SearchBy::Label,
                    _ => SearchBy::File,
                };
                match args.first() {
                    None => {
                        self.msg(format!("{name}: one argument expected"));
                        ERR_BAD_ARGUMENT
                    }
                    Some(id) => self.do_search(by, id, args.get(1).map(String::as_str))?,
                }
            }
            "load_env" => self.cmd_load_env(args)?,
            "save_env" => self.cmd_save_env(args),
            "linux" | "linux16" | "linuxefi" => self.cmd_linux(name, args),
            "initrd" | "initrd16" | "initrdefi" => self.cmd_initrd(name, args),
            "blscfg" | "bls_import" => self.cmd_blscfg(args)?,
            "boot" => {
                if self.run.is_none() {
                    if self.top_run.kernel.is_some() {
                        self.boot_now = true;
                    } else {
                        self.msg("boot: no kernel loaded");
                    }
                }
                0
            }
            "increment" | "decrement" => match args.first().map(|a| (a.clone(), self.get(a).map(strtosl))) {
                Some((var, Some(v))) => {
                    let n = if name == "increment" { v.saturating_add(1) } else { v.saturating_sub(1) };
                    self.set(&var, &n.to_string())?;
                    0
                }
                _ => {
                    self.msg(format!("{name}: needs a variable holding a number"));
                    ERR_BAD_ARGUMENT
                }
            },
            // No key is held, no hardware list matches, nobody types: an unattended boot.
            "keystatus" | "hwmatch" | "read" => ERR_TEST_FAILURE,
            "fwsetup" if args.iter().any(|a| a == "--is-supported") => ERR_TEST_FAILURE,
            "probe" | "regexp" => {
                self.msg(format!("`{name}` is not supported by rxen (treated as failing)"));
                ERR_TEST_FAILURE
            }
            _ if UNSUPPORTED.contains(&name) || name == "fwsetup" => {
                match self.run.as_mut() {
                    Some(run) => {
                        run.unsupported.get_or_insert_with(|| name.to_string());
                    }
                    None => self.msg(format!("`{name}` outside a menu entry is ignored")),
                }
                0
            }
            _ if QUIET.contains(&name) => 0,
            _ => return Ok(None),
        };
        Ok(Some(r))
    }

    fn run_state(&mut self) -> &mut EntryRun {
        match self.run.as_mut() {
            Some(r) => r,
            None => &mut self.top_run,
        }
    }

    #[inline(never)]
    fn cmd_linux(&mut self, name: &str, args: &[String]) -> i32 {
        let Some(file) = args.first() else {
            self.msg(format!("{name}: filename expected"));
            return ERR_BAD_ARGUMENT;
        };
        let kernel = self.boot_path(file);
        if !kernel.path.starts_with('/') {
            self.msg(format!("{name}: invalid file name `{file}`"));
            return ERR_BAD_FILENAME;
        }
        let root = self.get("root").filter(|r| !r.is_empty()).map(String::from);
        let cmdline = join_cmdline(&args[1..]);
        let st = self.run_state();
        st.kernel = Some(kernel);
        st.initrds.clear();
        st.cmdline = cmdline;
        st.root = root;
        0
    }

    #[inline(never)]
    fn cmd_initrd(&mut self, name: &str, args: &[String]) -> i32 {
        if args.is_empty() {
            self.msg(format!("{name}: filename expected"));
            return ERR_BAD_ARGUMENT;
        }
        if self.run_state().kernel.is_none() {
            self.msg(format!("{name}: you need to load the kernel first"));
            return ERR_BAD_ARGUMENT;
        }
        let mut list = Vec::new();
        for a in args {
            let p = self.boot_path(a);
            if !p.path.starts_with('/') {
                self.msg(format!("{name}: invalid file name `{a}`"));
                return ERR_BAD_FILENAME;
            }
            list.push(p);
        }
        self.run_state().initrds = list;
        0
    }

    #[inline(never)]
    fn cmd_test(&mut self, args: &[String]) -> i32 {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        if args.last() == Some(&"]") {
            args.pop();
        }
        let mut pos = 0;
        let mut depth = 0;
        if self.test_parse(&args, &mut pos, &mut depth) { 0 } else { ERR_TEST_FAILURE }
    }

    #[inline(never)]
    fn file_info(&mut self, spec: &str) -> Option<crate::config::configfs::Stat> {
        let p = self.boot_path(spec);
        let path = p.path.trim_end_matches('/');
        if path.is_empty() {
            return Some(crate::config::configfs::Stat { dir: true, size: 0 });
        }
        self.fs.stat(p.device.as_deref(), path)
    }

    /// `test_parse` of `commands/test.c`.
    #[inline(never)]
    fn test_parse(&mut self, a: &[&str], pos: &mut usize, depth: &mut u32) -> bool {
        let (mut and, mut or, mut invert) = (true, false, false);
        let update = |v: bool, and: &mut bool, invert: &mut bool| {
            *and = *and && (if *invert { !v } else { v });
            *invert = false;
        };
        while *pos < a.len() {
            if *pos + 2 < a.len() {
                let (x, op, y) = (a[*pos], a[*pos + 1], a[*pos + 2]);
                let v = match op {
                    "=" | "==" => Some(x == y),
                    "!=" => Some(x != y),
                    "<" => Some(x < y),
                    "<=" => Some(x <= y),
                    ">" => Some(x > y),
                    ">=" => Some(x >= y),
                    "-eq" => Some(strtosl(x) == strtosl(y)),
                    "-ne" => Some(strtosl(x) != strtosl(y)),
                    "-lt" => Some(strtosl(x) < strtosl(y)),
                    "-le" => Some(strtosl(x) <= strtosl(y)),
                    "-gt" => Some(strtosl(x) > strtosl(y)),
                    "-ge" => Some(strtosl(x) >= strtosl(y)),
                    "-pgt" | "-plt" => {
                        let (xb, yb) = (x.as_bytes(), y.as_bytes());
                        let mut i = xb.iter().zip(yb).take_while(|(p, q)| p == q).count();
                        while i > 0 && xb.get(i - 1).is_some_and(u8::is_ascii_digit) {
                            i -= 1;
                        }
                        let num = |s: &str| s.get(i..).and_then(strtoul).map_or(0, |(v, _)| v);
                        Some(if op == "-pgt" { num(x) > num(y) } else { num(x) < num(y) })
                    }
                    _ if op.starts_with("-nt") || op.starts_with("-ot") => {
                        // No modification times here: only existence decides.
                        let e1 = self.file_info(x).is_some();
                        let e2 = self.file_info(y).is_some();
                        Some(if op.starts_with("-nt") { e1 && !e2 } else { !e1 && e2 })
                    }
                    _ => None,
                };
                if let Some(v) = v {
                    update(v, &mut and, &mut invert);
                    *pos += 3;
                    continue;
                }
            }
            if *pos + 1 < a.len() {
                let (op, x) = (a[*pos], a[*pos + 1]);
                let v = match op {
                    "-d" => Some(self.file_info(x).is_some_and(|s| s.dir)),
                    "-e" => Some(self.file_info(x).is_some()),
                    "-f" => Some(self.file_info(x).is_some_and(|s| !s.dir)),
                    "-s" => Some(self.file_info(x).is_some_and(|s| !s.dir && s.size != 0)),
                    "-n" => Some(!x.is_empty()),
                    "-z" => Some(x.is_empty()),
                    _ => None,
                };
                if let Some(v) = v {
                    update(v, &mut and, &mut invert);
                    *pos += 2;
                    continue;
                }
            }
            match a[*pos] {
                ")" => {
                    *pos += 1;
                    *depth = depth.saturating_sub(1);
                    return or || and;
                }
                "(" => {
                    *pos += 1;
                    *depth += 1;
                    if *depth > 100 {
                        return or || and;
                    }
                    let v = self.test_parse(a, pos, depth);
                    update(v, &mut and, &mut invert);
                }
                "!" => {
                    invert = !invert;
                    *pos += 1;
                }
                "-a" => *pos += 1,
                "-o" => {
                    or = or || and;
                    and = true;
                    *pos += 1;
                }
                s => {
                    update(!s.is_empty(), &mut and, &mut invert);
                    *pos += 1;
                }
            }
        }
        or || and
    }

    #[inline(never)]
    fn cmd_source(&mut self, args: &[String]) -> R<i32> {
        let [file] = args else {
            self.msg("source: filename expected");
            return Ok(ERR_BAD_ARGUMENT);
        };
        let p = self.boot_path(file);
        let text = match self.read_file(&p, self.lim.file_size) {
            Ok(t) => t,
            Err(e) => {
                self.msg(format!("source {file}: {e}"));
                return Ok(0);
            }
        };
        self.enter("source")?;
        let name = p.to_string();
        let (old_file, old_dir) =
            (self.get("config_file").map(String::from), self.get("config_directory").map(String::from));
        self.set_config_vars(&p)?;
        self.run_text(&text, &name)?;
        for (k, v) in [("config_file", old_file), ("config_directory", old_dir)] {
            match v {
                Some(v) => self.set(k, &v)?,
                None => self.unset(k),
            }
        }
        self.depth -= 1;
        Ok(0)
    }

    #[inline(never)]
    fn set_config_vars(&mut self, p: &BootPath) -> R<()> {
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

    #[inline(never)]
    fn cmd_configfile(&mut self, args: &[String]) -> R<i32> {
        let [file] = args else {
            if !args.is_empty() {
                self.msg("configfile: filename expected");
            }
            return Ok(ERR_BAD_ARGUMENT);
        };
        if self.building {
            self.msg(format!("configfile {file} inside a submenu is not followed"));
            return Ok(0);
        }
        let p = self.boot_path(file);
        let text = match self.read_file(&p, self.lim.file_size) {
            Ok(t) => t,
            Err(e) => {
                self.msg(format!("configfile {file}: {e}"));
                return Ok(0);
            }
        };
        self.enter("configfile")?;
        self.open_context();
        self.set_config_vars(&p)?;
        let name = p.to_string();
        self.run_text(&text, &name)?;
        self.depth -= 1;
        if self.cur().items.is_empty() && !self.replaced {
            // Nothing to show: GRUB comes back to the first configuration.
            self.ctx.pop();
        } else {
            self.replaced = true;
        }
        Ok(0)
    }

    #[inline(never)]
    fn add_item(&mut self, submenu: bool, def: EntryDef) -> R<()> {
        self.items_made += 1;
        if self.items_made > self.lim.entries {
            return Err(self.fatal(format!("more than {} menu entries", self.lim.entries)));
        }
        let def = Rc::new(def);
        let item = if submenu { Item::Submenu(def) } else { Item::Entry(def) };
        self.cur_mut().items.push(item);
        Ok(())
    }

    #[inline(never)]
    fn cmd_menuentry(&mut self, submenu: bool, args: &[String], block: Option<&Body>) -> R<i32> {
        const SPECS: &[Opt] = &[
            opt("class", None, Takes::Value),
            opt("users", None, Takes::Optional),
            opt("hotkey", None, Takes::Value),
            opt("source", None, Takes::Value),
            opt("id", None, Takes::Value),
            opt("unrestricted", None, Takes::No),
        ];
        let what = if submenu { "submenu" } else { "menuentry" };
        let p = match parse_opts(SPECS, args, false) {
            Ok(p) => p,
            Err(e) => {
                self.msg(format!("{what}: {e}"));
                return Ok(ERR_BAD_ARGUMENT);
            }
        };
        let Some(title) = p.args.first().cloned() else {
            self.msg(format!("{what}: missing title"));
            return Ok(ERR_BAD_ARGUMENT);
        };
        let body = match (p.value("source"), block) {
            (Some(_), Some(_)) => {
                self.msg(format!("{what}: multiple menuentry definitions"));
                return Ok(ERR_BAD_ARGUMENT);
            }
            (Some(src), None) => {
                let (cmds, errors) = parse(src);
                for e in errors {
                    self.msg(format!("{what} --source: syntax error: {}", e.msg));
                }
                Rc::new(cmds)
            }
            (None, Some(b)) => b.clone(),
            (None, None) => {
                self.msg(format!("{what}: no menuentry definition"));
                return Ok(ERR_BAD_ARGUMENT);
            }
        };
        let users = if let Some(u) = p.value("users") {
            Some(u.to_string())
        } else if p.has("unrestricted") {
            None
        } else {
            Some(String::new())
        };
        let def = EntryDef {
            id: p.value("id").map_or_else(|| title.clone(), String::from),
            title,
            args: p.args.clone(),
            classes: p.values("class"),
            users,
            hotkey: p.value("hotkey").map(String::from),
            body,
            file: self.file.clone(),
            line: self.line,
        };
        self.add_item(submenu, def)?;
        Ok(0)
    }

    #[inline(never)]
    fn cmd_search(&mut self, args: &[String]) -> R<i32> {
        const SPECS: &[Opt] = &[
            opt("file", Some(b'f'), Takes::No),
            opt("label", Some(b'l'), Takes::No),
            opt("fs-uuid", Some(b'u'), Takes::No),
            opt("set", Some(b's'), Takes::Optional),
            opt("no-floppy", Some(b'n'), Takes::No),
            opt("efidisk-only", None, Takes::No),
            opt("cryptodisk-only", None, Takes::No),
            opt("root-dev-only", Some(b'r'), Takes::No),
            opt("hint", Some(b'h'), Takes::Value),
            opt("hint-ieee1275", None, Takes::Value),
            opt("hint-bios", None, Takes::Value),
            opt("hint-baremetal", None, Takes::Value),
            opt("hint-efi", None, Takes::Value),
            opt("hint-arc", None, Takes::Value),
        ];
        let p = match parse_opts(SPECS, args, true) {
            Ok(p) => p,
            Err(e) => {
                self.msg(format!("search: {e}"));
                return Ok(ERR_BAD_ARGUMENT);
            }
        };
        // Hints for platforms GRUB does not know yet are skipped.
        let rest: Vec<&String> = p.args.iter().skip_while(|a| a.starts_with("--hint-")).collect();
        let mut var = p.has("set").then(|| p.value("set").unwrap_or("root").to_string());
        let id = match rest.first() {
            Some(id) => (*id).clone(),
            None => match p.value("set") {
                Some(v) => {
                    var = Some("root".into());
                    v.to_string()
                }
                None => {
                    self.msg("search: one argument expected");
                    return Ok(ERR_BAD_ARGUMENT);
                }
            },
        };
        let by = if p.has("label") {
            SearchBy::Label
        } else if p.has("fs-uuid") {
            SearchBy::FsUuid
        } else if p.has("file") {
            SearchBy::File
        } else {
            self.msg("search: unspecified search type");
            return Ok(ERR_INVALID_COMMAND);
        };
        self.do_search(by, &id, var.as_deref())
    }

    #[inline(never)]
    fn do_search(&mut self, by: SearchBy, id: &str, var: Option<&str>) -> R<i32> {
        match self.fs.search(by, id) {
            Some(dev) => {
                if let Some(v) = var {
                    self.set(v, &dev)?;
                }
                Ok(0)
            }
            None => {
                self.msg(format!("search: no such device: {id}"));
                Ok(ERR_FILE_NOT_FOUND)
            }
        }
    }

    /// `-f FILE` or `$prefix/grubenv`.
    #[inline(never)]
    fn grubenv_path(&mut self, p: &Parsed, what: &str) -> Option<BootPath> {
        if let Some(f) = p.value("file") {
            return Some(self.boot_path(f));
        }
        match self.get("prefix") {
            Some(prefix) => {
                let spec = format!("{prefix}/grubenv");
                Some(self.boot_path(&spec))
            }
            None => {
                self.msg(format!("{what}: variable `prefix` isn't set"));
                None
            }
        }
    }

    #[inline(never)]
    fn cmd_load_env(&mut self, args: &[String]) -> R<i32> {
        const SPECS: &[Opt] = &[opt("file", Some(b'f'), Takes::Value), opt("skip-sig", Some(b's'), Takes::No)];
        let p = match parse_opts(SPECS, args, false) {
            Ok(p) => p,
            Err(e) => {
                self.msg(format!("load_env: {e}"));
                return Ok(ERR_BAD_ARGUMENT);
            }
        };
        let Some(path) = self.grubenv_path(&p, "load_env") else { return Ok(ERR_FILE_NOT_FOUND) };
        let data = match self.fs.read(path.device.as_deref(), &path.path, grubenv::MAX_BLOCK) {
            Ok(d) => d,
            Err(e) => {
                self.msg(format!("load_env: {path}: {e}"));
                return Ok(ERR_FILE_NOT_FOUND);
            }
        };
        let vars = match grubenv::parse(&data) {
            Ok(grubenv::EnvBlock { vars, broken }) => {
                if let Some(b) = broken {
                    self.msg(format!("load_env: {path}: {b}"));
                }
                vars
            }
            Err(e) => {
                self.msg(format!("load_env: {path}: {e}"));
                return Ok(ERR_BAD_FILE_TYPE);
            }
        };
        for (k, v) in vars {
            if p.args.is_empty() || p.args.contains(&k) {
                self.set(&k, &v)?;
            }
        }
        Ok(0)
    }

    #[inline(never)]
    fn cmd_save_env(&mut self, args: &[String]) -> i32 {
        const SPECS: &[Opt] = &[opt("file", Some(b'f'), Takes::Value)];
        let p = match parse_opts(SPECS, args, false) {
            Ok(p) => p,
            Err(e) => {
                self.msg(format!("save_env: {e}"));
                return ERR_BAD_ARGUMENT;
            }
        };
        if p.args.is_empty() {
            self.msg("save_env: no variable is specified");
            return ERR_BAD_ARGUMENT;
        }
        let Some(path) = self.grubenv_path(&p, "save_env") else { return ERR_FILE_NOT_FOUND };
        let vars = p.args.iter().map(|k| (k.clone(), self.get(k).map(String::from))).collect();
        let w = EnvWrite {
            file: path.spec.clone(),
            device: path.device.clone(),
            path: path.path.clone(),
            vars,
            at: format!("{}:{}", self.file, self.line),
        };
        let list = match self.run.as_mut() {
            Some(r) => &mut r.env_writes,
            None => &mut self.env_writes,
        };
        if list.len() < MAX_ENV_WRITES {
            list.push(w);
        } else {
            self.msg("save_env: too many calls, ignored");
        }
        0
    }

    /// rhboot's `blscfg`: BLS snippets become menu entries, newest first.
    #[inline(never)]
    fn cmd_blscfg(&mut self, args: &[String]) -> R<i32> {
        if self.run.is_some() {
            return Ok(0);
        }
        let (mut show_default, mut show_other, mut only_id, mut explicit) = (true, true, None, None);
        if let [a] = args {
            match a.as_str() {
                "default" => show_other = false,
                "non-default" => show_default = false,
                s if s.starts_with('(') => explicit = Some(s.to_string()),
                s => {
                    only_id = Some(s.to_string());
                    show_default = false;
                    show_other = false;
                }
            }
        }
        let (dev, dirs): (Option<String>, Vec<String>) = match explicit.as_deref().map(split_device) {
            Some((d, dir)) => (d.map(String::from), vec![dir.to_string()]),
            None => {
                let dir = self.get("blsdir").unwrap_or(bls::ENTRIES_DIR).to_string();
                let root = self.get("root").filter(|r| !r.is_empty()).map(String::from);
                (root, vec![dir, bls::BOOT_ENTRIES_DIR.to_string()])
            }
        };
        let mut found = None;
        for dir in &dirs {
            if let Ok(names) = self.fs.list(dev.as_deref(), dir) {
                found = Some((dir.clone(), names));
                break;
            }
        }
        let Some((dir, names)) = found else {
            self.msg(format!("blscfg: no {} directory", dirs.join(" or ")));
            return Ok(0);
        };
        let mut entries = Vec::new();
        for name in names.iter().filter(|n| bls::is_entry_file_name(n)).take(MAX_BLS) {
            self.step()?;
            let path = format!("{}/{name}", dir.trim_end_matches('/'));
            match self.fs.read(dev.as_deref(), &path, self.lim.file_size) {
                Ok(data) => entries.push(bls::parse_entry(name, &String::from_utf8_lossy(&data), bls::Dialect::Rhboot)),
                Err(e) => self.msg(format!("blscfg: {path}: {e}")),
            }
        }
        let sorted = bls::sort_rhboot(entries);
        let def = self.get("default").map(String::from);
        for (idx, e) in sorted.iter().enumerate() {
            if self.bls_visible.contains(&e.id) {
                continue;
            }
            let is_def = def.as_deref().is_some_and(|d| bls::is_default_entry(d, e, idx));
            if (show_default && is_def) || (show_other && !is_def) || only_id.as_deref() == Some(e.id.as_str()) {
                self.bls_visible.insert(e.id.clone());
                let file = match &dev {
                    Some(d) => format!("({d}){dir}/{}.conf", e.id),
                    None => format!("{dir}/{}.conf", e.id),
                };
                self.bls_entry(e, &file)?;
            }
        }
        Ok(0)
    }

    /// rhboot's `create_entry`: the entry's commands as text, run like any entry.
    #[inline(never)]
    fn bls_entry(&mut self, e: &bls::BlsEntry, file: &str) -> R<()> {
        let Some(linux) = e.linux.as_deref() else {
            self.msg(format!("blscfg: {file}: no `linux` key, skipped"));
            return Ok(());
        };
        let lookup = |k: &str| self.get(k).map(String::from);
        let options = bls::expand_rhboot(e.options.first().map(String::as_str), &lookup)
            .or_else(|| bls::expand_rhboot(self.get("default_kernelopts"), &lookup));
        let mut src = String::new();
        if self.get("save_default") == Some("true") {
            src.push_str("savedefault\n");
        }
        src.push_str("load_video\nset gfxpayload=keep\ninsmod gzio\n");
        src.push_str(&format!("linux ($root){linux}"));
        if let Some(o) = &options {
            src.push(' ');
            src.push_str(o);
        }
        src.push('\n');
        let early: Vec<String> =
            self.get("early_initrd").map(|s| s.split(' ').map(String::from).collect()).unwrap_or_default();
        if !e.initrd.is_empty() || !early.is_empty() {
            src.push_str("initrd");
            if !early.is_empty() {
                let base = e.initrd.first().map_or(linux, String::as_str);
                let prefix = &base[..base.rfind('/').map_or(0, |i| i + 1)];
                for i in &early {
                    src.push_str(&format!(" ($root){prefix}{i}"));
                }
            }
            for i in &e.initrd {
                src.push_str(&format!(" ($root){i}"));
            }
            src.push('\n');
        }
        let (cmds, errors) = parse(&src);
        for err in errors {
            self.msg(format!("blscfg: {file}: syntax error in the generated entry: {}", err.msg));
        }
        let title = e.title.clone().unwrap_or_else(|| linux.to_string());
        let mut args = vec![title.clone()];
        args.extend(e.grub_arg.iter().cloned());
        let users = bls::expand_rhboot(e.grub_users.as_deref(), &|k: &str| self.get(k).map(String::from));
        let def = EntryDef {
            title,
            id: e.id.clone(),
            args,
            classes: e.grub_class.clone(),
            users,
            hotkey: e.grub_hotkey.clone(),
            body: Rc::new(cmds),
            file: Rc::from(file),
            line: 1,
        };
        self.add_item(false, def)
    }

    // ---- the menu ----

    #[inline(never)]
    fn run_entry(&mut self, def: &EntryDef, path: &[usize], titles: &[String], chosen: &str) -> R<Entry> {
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
                self.open_context();
                self.unset("default");
                self.set("chosen", &id)?;
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
