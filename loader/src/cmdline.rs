// SPDX-License-Identifier: MIT OR Apache-2.0
//! The domain command line (xl `extra=`/`cmdline=`, QEMU `-append`) and the rule that
//! joins it with a step's `cmdline` (documented in `docs/policy.md`):
//!
//! * words starting with `rxen.` are options for the loader and never reach the kernel;
//! * the other words are appended, in order, to the step's `cmdline` (one space between);
//! * `rxen.cmdline=replace` makes them replace the step's `cmdline` instead.
//!
//! Words are split on whitespace outside double quotes, as Linux does, and passed on
//! byte for byte (quotes kept).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Loader options given on the domain command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RxenOptions {
    /// `rxen.step=NAME`: try this step first.
    pub step: Option<String>,
    /// `rxen.debug`: print the memory map, placements and decisions.
    pub debug: bool,
    /// `rxen.cmdline=replace`: the domain's words replace the step's cmdline.
    pub replace_cmdline: bool,
    /// `rxen.prompt`: try nothing, go straight to the console prompt.
    pub prompt: bool,
    /// `rxen.entry=SPEC`: boot this entry of the guest's boot configuration (index, id,
    /// title or `>` path) instead of its default.
    pub entry: Option<String>,
    /// `rxen.menu`: show the boot configuration's menu even when its timeout is 0 (it then
    /// counts down from the policy's `max_timeout`, any key stopping the countdown; with
    /// `max_timeout = 0` it waits for a key).
    pub menu: bool,
    /// `rxen.crash=panic|fault|interrupt`: a test hook. The loader dies on purpose right
    /// after reading its command line (or, for `interrupt`, raises a stray interrupt it must
    /// survive), so a test can check that a loader death is reported as one
    /// (`tests/xen/selftest`, `tests/e2e`). It can only crash the domain it runs in.
    pub crash: Option<Crash>,
}

/// How `rxen.crash=` makes the loader die.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// `panic!`: the panic handler prints `rxen: PANIC: ...` and crashes the domain.
    Panic,
    /// A read of an unmapped address: the page-fault handler prints `rxen: EXCEPTION #PF ...`
    /// and crashes the domain.
    Fault,
    /// `int 0x40`, an interrupt nothing asked for: the loader counts it, goes on and says so.
    Interrupt,
}

impl core::fmt::Display for Crash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Crash::Panic => "panic",
            Crash::Fault => "fault",
            Crash::Interrupt => "interrupt",
        })
    }
}

/// The domain command line, split into ours and the kernel's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainCmdline {
    /// The words that are not `rxen.*`, joined by single spaces.
    pub kernel_part: String,
    pub options: RxenOptions,
    /// Unknown or malformed `rxen.*` words, to print (they are dropped, not fatal).
    pub warnings: Vec<String>,
}

/// Split on whitespace outside double quotes.
pub fn words(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    core::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                !quoted && c.is_ascii_whitespace()
            })
            .map_or(rest.len(), |(i, _)| i);
        let (w, r) = rest.split_at(end);
        rest = r;
        Some(w)
    })
}

/// Parse the domain command line.
pub fn parse_domain_cmdline(s: &str) -> DomainCmdline {
    let mut d = DomainCmdline::default();
    let mut kernel = Vec::new();
    for w in words(s) {
        let Some(opt) = w.strip_prefix("rxen.") else {
            kernel.push(w);
            continue;
        };
        let (key, val) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        match (key, val) {
            ("step", Some(v)) if !v.is_empty() => d.options.step = Some(v.to_string()),
            ("entry", Some(v)) if !v.is_empty() => d.options.entry = Some(v.to_string()),
            ("debug", None | Some("1" | "on" | "yes")) => d.options.debug = true,
            ("debug", Some("0" | "off" | "no")) => d.options.debug = false,
            ("cmdline", Some("replace")) => d.options.replace_cmdline = true,
            ("cmdline", Some("append")) => d.options.replace_cmdline = false,
            ("prompt", None | Some("1" | "on" | "yes")) => d.options.prompt = true,
            ("prompt", Some("0" | "off" | "no")) => d.options.prompt = false,
            ("menu", None | Some("1" | "on" | "yes")) => d.options.menu = true,
            ("menu", Some("0" | "off" | "no")) => d.options.menu = false,
            ("crash", Some("panic")) => d.options.crash = Some(Crash::Panic),
            ("crash", Some("fault")) => d.options.crash = Some(Crash::Fault),
            ("crash", Some("interrupt")) => d.options.crash = Some(Crash::Interrupt),
            ("crash", _) => {
                d.warnings.push(alloc::format!("ignoring {w:?} (known: rxen.crash=panic, rxen.crash=fault, rxen.crash=interrupt)"))
            }
            _ => d.warnings.push(alloc::format!(
                "ignoring unknown option {w:?} (known: rxen.step=NAME, rxen.entry=ENTRY, rxen.menu, rxen.prompt, rxen.debug, rxen.cmdline=append|replace)"
            )),
        }
    }
    d.kernel_part = kernel.join(" ");
    d
}

/// The command line the kernel gets for a step whose `cmdline` is `step_cmdline`.
pub fn kernel_cmdline(step_cmdline: &str, domain: &DomainCmdline) -> String {
    let step = step_cmdline.trim();
    if domain.options.replace_cmdline || step.is_empty() {
        return domain.kernel_part.clone();
    }
    if domain.kernel_part.is_empty() {
        return step.to_string();
    }
    alloc::format!("{step} {}", domain.kernel_part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_strips_ours() {
        let d = parse_domain_cmdline("  root=/dev/xvda1 rxen.debug  foo=\"a b\" rxen.step=rescue quiet ");
        assert_eq!(d.kernel_part, "root=/dev/xvda1 foo=\"a b\" quiet");
        assert_eq!(
            d.options,
            RxenOptions {
                step: Some("rescue".into()),
                debug: true,
                replace_cmdline: false,
                prompt: false,
                entry: None,
                menu: false,
                crash: None,
            }
        );
        assert!(parse_domain_cmdline("rxen.prompt").options.prompt);
        assert!(parse_domain_cmdline("quiet rxen.menu").options.menu);
        assert!(!parse_domain_cmdline("rxen.menu rxen.menu=off").options.menu);
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn append_and_replace() {
        let d = parse_domain_cmdline("single rxen.x=1");
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].contains("rxen.x=1"));
        assert_eq!(kernel_cmdline("console=hvc0 ro", &d), "console=hvc0 ro single");
        assert_eq!(kernel_cmdline("", &d), "single");
        assert_eq!(kernel_cmdline("console=hvc0", &parse_domain_cmdline("")), "console=hvc0");
        let r = parse_domain_cmdline("rxen.cmdline=replace init=/bin/sh");
        assert_eq!(kernel_cmdline("console=hvc0 ro", &r), "init=/bin/sh");
    }

    #[test]
    fn crash_hook() {
        let d = parse_domain_cmdline("console=hvc0 rxen.crash=panic");
        assert_eq!(d.options.crash, Some(Crash::Panic));
        assert_eq!(d.kernel_part, "console=hvc0");
        assert!(d.warnings.is_empty());
        assert_eq!(alloc::format!("rxen.crash={}", Crash::Panic), "rxen.crash=panic");
        for c in [Crash::Fault, Crash::Interrupt] {
            assert_eq!(parse_domain_cmdline(&alloc::format!("rxen.crash={c}")).options.crash, Some(c));
        }
        for w in ["rxen.crash", "rxen.crash=", "rxen.crash=oops", "rxen.crash=PANIC"] {
            let d = parse_domain_cmdline(w);
            assert_eq!(d.options.crash, None, "{w}");
            assert_eq!(d.warnings.len(), 1, "{w}");
            assert!(d.warnings[0].contains(w) && d.warnings[0].contains("rxen.crash=panic"), "{:?}", d.warnings);
        }
        assert_eq!(parse_domain_cmdline("").options.crash, None);
    }

    #[test]
    fn unterminated_quote_runs_to_the_end() {
        assert_eq!(words("a \"b c").collect::<Vec<_>>(), ["a", "\"b c"]);
        assert_eq!(words("").count(), 0);
    }
}
