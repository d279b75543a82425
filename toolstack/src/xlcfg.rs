// SPDX-License-Identifier: MIT OR Apache-2.0
//! The part of xl's domain configuration (xl.cfg(5)) that starting an rxen guest needs:
//! `name`, `type`, `kernel`, `ramdisk`, `extra`/`cmdline`, `memory`, `maxmem`, `vcpus`,
//! `disk` (xl-disk-configuration(5)), `on_poweroff`/`on_reboot`/`on_crash`. The syntax:
//! `KEY = VALUE` lines, values a quoted string ('..' or ".."), a number, or a list
//! `[ .., .. ]` that may span lines; `#` comments. Other keys are kept as `unknown` with
//! their line, for the caller to name.

use std::fmt;

/// One `disk` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    /// The file or block device, without a `phy:`/`file:` prefix.
    pub target: String,
    pub format: String,
    /// `xvda`, `hda`, `sda`, ...
    pub vdev: String,
    pub readonly: bool,
    pub cdrom: bool,
}

/// A parsed config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XlConfig {
    pub name: String,
    /// `pvh`, `pv` or `hvm`.
    pub kind: String,
    pub kernel: Option<String>,
    pub ramdisk: Option<String>,
    pub cmdline: String,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub disks: Vec<Disk>,
    pub on_poweroff: String,
    pub on_reboot: String,
    pub on_crash: String,
    /// Keys this module does not use: (line, key).
    pub unknown: Vec<(usize, String)>,
}

/// A config error: the file's line and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfgError {
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for CfgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.line, self.msg)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Str(String),
    Num(u64),
    List(Vec<String>),
}

struct Lexer<'a> {
    s: &'a [u8],
    at: usize,
    line: usize,
}

impl Lexer<'_> {
    fn err(&self, msg: impl Into<String>) -> CfgError {
        CfgError { line: self.line, msg: msg.into() }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }
    /// Skip blanks (newlines too when `lines`) and comments.
    fn blank(&mut self, lines: bool) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' => self.at += 1,
                b'\n' if lines => {
                    self.line += 1;
                    self.at += 1;
                }
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.at += 1;
                    }
                }
                _ => break,
            }
        }
    }
    fn string(&mut self) -> Result<String, CfgError> {
        let q = self.peek().unwrap_or(b'"');
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err(self.err("unterminated string")),
                Some(c) if c == q => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') if q == b'"' => {
                    self.at += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => out.push(c),
                        Some(b'n') => out.push(b'\n'),
                        _ => return Err(self.err("unknown escape in a string")),
                    }
                    self.at += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| self.err("a string is not UTF-8"))
    }
    fn value(&mut self) -> Result<Value, CfgError> {
        match self.peek() {
            Some(b'"' | b'\'') => self.string().map(Value::Str),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.blank(true);
                    match self.peek() {
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Value::List(items));
                        }
                        Some(b'"' | b'\'') => items.push(self.string()?),
                        None => return Err(self.err("unterminated list")),
                        Some(_) => return Err(self.err("a list holds quoted strings")),
                    }
                    self.blank(true);
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b']') => {}
                        _ => return Err(self.err("expected ',' or ']' in a list")),
                    }
                }
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.at;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.at += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
                t.parse().map(Value::Num).map_err(|_| self.err(format!("{t}: number too large")))
            }
            _ => Err(self.err("expected a value: a quoted string, a number or a [list]")),
        }
    }
}

/// xl's disk specification: `target=..,vdev=..,access=..,format=..,devtype=cdrom` or the
/// positional forms `TARGET,FORMAT,VDEV,ACCESS` and (legacy) `TARGET,VDEV,ACCESS`.
pub fn parse_disk(spec: &str) -> Result<Disk, String> {
    let mut d =
        Disk { target: String::new(), format: "raw".into(), vdev: String::new(), readonly: false, cdrom: false };
    let mut positional = Vec::new();
    let mut rest = spec;
    while !rest.is_empty() {
        // target= takes the rest of the spec, commas included (xl's rule).
        if let Some(t) = rest.trim_start().strip_prefix("target=") {
            d.target = t.to_string();
            break;
        }
        let (item, next) = rest.split_once(',').unwrap_or((rest, ""));
        rest = next;
        let item = item.trim();
        match item.split_once('=') {
            Some(("format", v)) => d.format = v.into(),
            Some(("vdev", v)) => d.vdev = v.into(),
            Some(("access", v)) => d.readonly = matches!(v, "r" | "ro"),
            Some(("devtype", v)) => d.cdrom = v == "cdrom",
            Some(("backendtype" | "script" | "backend" | "discard" | "no-discard", _)) => {}
            Some((k, _)) => return Err(format!("disk {spec:?}: unknown key {k:?}")),
            None if item == "cdrom" => d.cdrom = true,
            None if item.is_empty() => {}
            None => positional.push(item.to_string()),
        }
    }
    match positional.len() {
        0 => {}
        1 => d.target = positional.remove(0),
        3 => {
            d.target = positional[0].clone();
            d.vdev = positional[1].clone();
            d.readonly = matches!(positional[2].as_str(), "r" | "ro");
        }
        4 => {
            d.target = positional[0].clone();
            d.format = positional[1].clone();
            d.vdev = positional[2].clone();
            d.readonly = matches!(positional[3].as_str(), "r" | "ro");
        }
        n => return Err(format!("disk {spec:?}: {n} positional fields (1, 3 or 4: target, [format,] vdev, access)")),
    }
    for p in ["phy:", "file:", "tap:aio:", "tap:", "aio:", "raw:", "qcow2:"] {
        if let Some(t) = d.target.strip_prefix(p) {
            if p == "qcow2:" {
                d.format = "qcow2".into();
            }
            d.target = t.to_string();
        }
    }
    if d.target.is_empty() {
        return Err(format!("disk {spec:?}: no target"));
    }
    if d.vdev.is_empty() {
        return Err(format!("disk {spec:?}: no vdev (xvda, ...)"));
    }
    if d.vdev.starts_with('/') || d.vdev.contains(':') {
        return Err(format!("disk {spec:?}: vdev {:?} is not a device name (xvda, ...)", d.vdev));
    }
    Ok(d)
}

/// Parse an xl config.
pub fn parse(text: &str) -> Result<XlConfig, CfgError> {
    let mut lx = Lexer { s: text.as_bytes(), at: 0, line: 1 };
    let mut c = XlConfig {
        kind: "pvh".into(),
        memory_mib: 512,
        vcpus: 1,
        on_poweroff: "destroy".into(),
        on_reboot: "restart".into(),
        on_crash: "destroy".into(),
        ..XlConfig::default()
    };
    let mut seen_type = false;
    loop {
        lx.blank(true);
        if lx.peek().is_none() {
            break;
        }
        let start = lx.at;
        while lx.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
            lx.at += 1;
        }
        let key = std::str::from_utf8(&lx.s[start..lx.at]).unwrap_or("").to_string();
        if key.is_empty() {
            return Err(lx.err("expected KEY = VALUE"));
        }
        let line = lx.line;
        lx.blank(false);
        if lx.peek() != Some(b'=') {
            return Err(lx.err(format!("{key}: expected '='")));
        }
        lx.at += 1;
        lx.blank(false);
        let v = lx.value()?;
        lx.blank(false);
        if lx.peek() == Some(b';') {
            lx.at += 1;
            lx.blank(false);
        }
        if lx.peek().is_some_and(|c| c != b'\n') {
            return Err(lx.err(format!("{key}: unexpected text after the value")));
        }
        let bad = |what: &str| CfgError { line, msg: format!("{key}: expected {what}") };
        match (key.as_str(), v) {
            ("name", Value::Str(s)) => c.name = s,
            ("type", Value::Str(s)) => {
                if !matches!(s.as_str(), "pvh" | "pv" | "hvm") {
                    return Err(CfgError { line, msg: format!("type {s:?}: not pvh, pv or hvm") });
                }
                seen_type = true;
                c.kind = s;
            }
            ("builder", Value::Str(s)) if !seen_type => c.kind = if s == "hvm" { "hvm".into() } else { "pv".into() },
            ("kernel", Value::Str(s)) => c.kernel = Some(s),
            ("ramdisk", Value::Str(s)) => c.ramdisk = Some(s),
            ("extra" | "cmdline", Value::Str(s)) => {
                c.cmdline = if c.cmdline.is_empty() { s } else { format!("{} {s}", c.cmdline) }
            }
            ("root", Value::Str(s)) => c.cmdline = format!("root={s} {}", c.cmdline).trim_end().to_string(),
            ("memory", Value::Num(n)) => c.memory_mib = n,
            ("maxmem", Value::Num(_)) => {}
            ("vcpus", Value::Num(n)) => c.vcpus = n.try_into().map_err(|_| bad("a vCPU count"))?,
            ("disk", Value::List(items)) => {
                for d in items {
                    c.disks.push(parse_disk(&d).map_err(|msg| CfgError { line, msg })?);
                }
            }
            ("on_poweroff" | "on_reboot" | "on_crash", Value::Str(s)) => {
                let ok = ["destroy", "restart", "preserve", "coredump-destroy", "coredump-restart", "rename-restart"];
                if !ok.contains(&s.as_str()) {
                    return Err(CfgError { line, msg: format!("{key} {s:?}: not one of {}", ok.join(", ")) });
                }
                match key.as_str() {
                    "on_poweroff" => c.on_poweroff = s,
                    "on_reboot" => c.on_reboot = s,
                    _ => c.on_crash = s,
                }
            }
            (
                "name" | "type" | "builder" | "kernel" | "ramdisk" | "extra" | "cmdline" | "root" | "on_poweroff"
                | "on_reboot" | "on_crash",
                _,
            ) => return Err(bad("a quoted string")),
            ("memory" | "maxmem" | "vcpus", _) => return Err(bad("a number")),
            ("disk", _) => return Err(bad("a [list] of disk specifications")),
            (_, _) => c.unknown.push((line, key)),
        }
    }
    if c.name.is_empty() {
        return Err(CfgError { line: lx.line, msg: "no name = \"...\"".into() });
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typical_config() {
        let c = parse(
            "# web server\nname = \"web1\"\ntype = 'pvh'\nkernel = \"/usr/lib/rxen/pvh-boot.bin\"\n\
             extra = \"console=hvc0\"   # trailing comment\nmemory = 1024\nvcpus = 2\n\
             disk = [ 'format=raw,vdev=xvda,access=rw,target=/dev/vg0/web1',\n   'phy:/dev/vg0/data,xvdb,r', ]\n\
             vif = [ 'bridge=xenbr0' ]\non_crash = \"preserve\"\n",
        )
        .unwrap();
        assert_eq!(c.name, "web1");
        assert_eq!(c.kind, "pvh");
        assert_eq!(c.kernel.as_deref(), Some("/usr/lib/rxen/pvh-boot.bin"));
        assert_eq!(c.cmdline, "console=hvc0");
        assert_eq!((c.memory_mib, c.vcpus), (1024, 2));
        assert_eq!(c.disks.len(), 2);
        assert_eq!(c.disks[0].target, "/dev/vg0/web1");
        assert_eq!(
            (c.disks[1].target.as_str(), c.disks[1].vdev.as_str(), c.disks[1].readonly),
            ("/dev/vg0/data", "xvdb", true)
        );
        assert_eq!(c.on_crash, "preserve");
        assert_eq!(c.unknown, [(10, "vif".to_string())]);
    }

    #[test]
    fn errors_name_their_line() {
        for (text, want) in [
            ("name = \"a\"\nmemory = \"lots\"\n", "2: memory: expected a number"),
            ("name = \"a\"\n\ntype = \"hvx\"\n", "3: type \"hvx\": not pvh, pv or hvm"),
            ("name = \"a\"\ndisk = [ 'xvda' ]\n", "2: disk \"xvda\": no vdev"),
            ("name = \"a\"\ndisk = [ 'a,b' ]\n", "2: disk \"a,b\": 2 positional fields"),
            ("name = \"a\nb\"\n", "1: unterminated string"),
            ("name = \"a\" junk\n", "1: name: unexpected text after the value"),
            ("memory = 5\n", "no name"),
            ("name = \"a\"\ndisk = [ 'target=/x,vdev=xvda' ]\n", "2: disk"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn disk_specs_as_xl_reads_them() {
        let d = parse_disk("/var/lib/xen/web.img,raw,xvda,rw").unwrap();
        assert_eq!(
            (d.target.as_str(), d.format.as_str(), d.vdev.as_str(), d.readonly),
            ("/var/lib/xen/web.img", "raw", "xvda", false)
        );
        let d = parse_disk("vdev=xvdc,access=ro,devtype=cdrom,target=/srv/a,b.iso").unwrap();
        assert_eq!((d.target.as_str(), d.cdrom, d.readonly), ("/srv/a,b.iso", true, true));
        let d = parse_disk("file:/x.img,hda,w").unwrap();
        assert_eq!((d.target.as_str(), d.vdev.as_str()), ("/x.img", "hda"));
        assert!(parse_disk("vdev=xvda,colour=red,target=/x").unwrap_err().contains("unknown key \"colour\""));
    }
}
