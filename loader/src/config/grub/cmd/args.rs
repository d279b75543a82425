// SPDX-License-Identifier: MIT OR Apache-2.0
//! Arguments as GRUB's commands read them: options (`grub_arg_parse` of
//! `grub-core/lib/arg.c`) and numbers (`grub_strtosl`).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::config::grub::eval::is_blank;
use crate::config::menu::strtoul;

/// How an option takes a value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Takes {
    No,
    Value,
    Optional,
}

/// One option a command accepts: `--long`, and `-s` when it has a short name.
pub(super) struct Opt {
    long: &'static str,
    short: Option<u8>,
    takes: Takes,
}

pub(super) const fn opt(long: &'static str, short: Option<u8>, takes: Takes) -> Opt {
    Opt { long, short, takes }
}

/// Options and arguments, as `grub_arg_parse` splits them.
pub(super) struct Parsed {
    opts: Vec<(&'static str, Option<String>)>,
    pub(super) args: Vec<String>,
}

impl Parsed {
    pub(super) fn has(&self, long: &str) -> bool {
        self.opts.iter().any(|(l, _)| *l == long)
    }
    /// The last value given to `long`.
    pub(super) fn value(&self, long: &str) -> Option<&str> {
        self.opts.iter().rev().find(|(l, _)| *l == long).and_then(|(_, v)| v.as_deref())
    }
    pub(super) fn values(&self, long: &str) -> Vec<String> {
        self.opts.iter().filter(|(l, _)| *l == long).filter_map(|(_, v)| v.clone()).collect()
    }
}

/// `--long value` (the next argument when it does not start with `-`).
pub(super) fn parse_opts(specs: &[Opt], argv: &[String], accept_dash: bool) -> Result<Parsed, String> {
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

/// `grub_strtosl(s, 0, 0)` as `test -eq` uses it: 0 when there is no number.
pub(super) fn strtosl(s: &str) -> i64 {
    let t = s.trim_start_matches(is_blank);
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let v = strtoul(t).map_or(0, |(v, _)| v.min(i64::MAX as u64) as i64);
    if neg { -v } else { v }
}
