// SPDX-License-Identifier: MIT OR Apache-2.0
//! `test` and `[` (`grub-core/commands/test.c`): strings, numbers, GRUB's version
//! comparisons, and files on the configuration's devices.

use alloc::string::String;
use alloc::vec::Vec;

use super::args::strtosl;
use crate::config::configfs::Stat;
use crate::config::grub::eval::{ERR_TEST_FAILURE, Interp, R};
use crate::config::grub::parser::Body;
use crate::config::menu::strtoul;

/// `test EXPRESSION` and `[ EXPRESSION ]`.
pub(super) fn test(interp: &mut Interp<'_>, _name: &str, args: &[String], _block: Option<&Body>) -> R<i32> {
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    if args.last() == Some(&"]") {
        args.pop();
    }
    let mut pos = 0;
    let mut depth = 0;
    Ok(if test_parse(interp, &args, &mut pos, &mut depth) { 0 } else { ERR_TEST_FAILURE })
}

#[inline(never)]
fn file_info(interp: &mut Interp<'_>, spec: &str) -> Option<Stat> {
    let p = interp.boot_path(spec);
    let path = p.path.trim_end_matches('/');
    if path.is_empty() {
        return Some(Stat { dir: true, size: 0 });
    }
    interp.fs.stat(p.device.as_deref(), path)
}

/// `test_parse` of `commands/test.c`.
#[inline(never)]
fn test_parse(interp: &mut Interp<'_>, a: &[&str], pos: &mut usize, depth: &mut u32) -> bool {
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
                    let e1 = file_info(interp, x).is_some();
                    let e2 = file_info(interp, y).is_some();
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
                "-d" => Some(file_info(interp, x).is_some_and(|s| s.dir)),
                "-e" => Some(file_info(interp, x).is_some()),
                "-f" => Some(file_info(interp, x).is_some_and(|s| !s.dir)),
                "-s" => Some(file_info(interp, x).is_some_and(|s| !s.dir && s.size != 0)),
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
                let v = test_parse(interp, a, pos, depth);
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
