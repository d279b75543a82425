// SPDX-License-Identifier: MIT OR Apache-2.0
//! A TOML reader for the subset policies use, with the position of every key and value.
//!
//! Supported: comments, bare and quoted keys (no dotted keys), basic strings with the
//! TOML escapes, literal strings, decimal integers (with `_`), booleans, arrays (across
//! lines, trailing comma allowed), `[table]` and `[[array-of-tables]]` headers. Anything
//! else (floats, dates, inline tables, multi-line strings, dotted keys) is an error naming
//! its place, which the policy layer never needs to see. Duplicate keys are errors.
//!
//! The reader walks the text once, never backtracks, and bounds nesting depth, so any
//! input finishes in linear time.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::ConfigError;

/// Deepest array nesting accepted.
const MAX_DEPTH: usize = 32;

/// A value and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub line: u32,
    pub col: u32,
}

impl<T> Spanned<T> {
    /// An error at this value's place.
    pub fn err(&self, msg: impl Into<String>) -> ConfigError {
        ConfigError::new(self.line, self.col, msg)
    }
}

/// A TOML value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    String(String),
    Integer(i64),
    Boolean(bool),
    Array(Vec<Spanned<Value>>),
}

impl Value {
    /// The TOML type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Boolean(_) => "a boolean",
            Value::Array(_) => "an array",
        }
    }
}

/// A table: keys (with their places) and values, in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Where the table's header is (1:1 for the root table).
    pub line: u32,
    pub col: u32,
    pub entries: Vec<(Spanned<String>, Spanned<Value>)>,
}

impl Table {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Spanned<Value>> {
        self.entries.iter().find(|(k, _)| k.value == key).map(|(_, v)| v)
    }
}

/// What a `[name]` / `[[name]]` header opened.
#[derive(Clone, Debug, PartialEq)]
pub enum Section {
    /// `[name]`.
    Table(Spanned<String>, Table),
    /// `[[name]]`: one element of the array of tables `name`.
    ArrayElement(Spanned<String>, Table),
}

/// A parsed document: the root table, then each section in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Document {
    pub root: Table,
    pub sections: Vec<Section>,
}

/// Parse `text`.
pub fn parse(text: &str) -> Result<Document, ConfigError> {
    let mut p = Parser { s: text.as_bytes(), text, pos: 0, line: 1, col: 1 };
    let mut doc = Document { root: Table { line: 1, col: 1, entries: Vec::new() }, sections: Vec::new() };
    // Names seen as [table] and as [[array]], to reject redefinitions.
    let mut tables: Vec<String> = Vec::new();
    let mut arrays: Vec<String> = Vec::new();
    loop {
        p.skip_ws_comments_newlines()?;
        let Some(c) = p.peek() else { break };
        if c == b'[' {
            let (line, col) = (p.line, p.col);
            p.bump();
            let array = p.peek() == Some(b'[');
            if array {
                p.bump();
            }
            p.skip_ws();
            let name = p.key()?;
            p.skip_ws();
            p.expect(b']', "`]` to close the table header")?;
            if array {
                p.expect(b']', "`]]` to close the array-of-tables header")?;
            }
            p.end_of_line()?;
            let table = Table { line, col, entries: Vec::new() };
            if array {
                if tables.contains(&name.value) {
                    return Err(name.err(alloc::format!("`{}` is already a table", name.value)));
                }
                arrays.push(name.value.clone());
                doc.sections.push(Section::ArrayElement(name, table));
            } else {
                if tables.contains(&name.value) || arrays.contains(&name.value) {
                    return Err(name.err(alloc::format!("table `{}` defined twice", name.value)));
                }
                tables.push(name.value.clone());
                doc.sections.push(Section::Table(name, table));
            }
            continue;
        }
        let key = p.key()?;
        p.skip_ws();
        if p.peek() == Some(b'.') {
            return p.err("dotted keys are not supported here: write the table as a [section]");
        }
        p.expect(b'=', "`=` after the key")?;
        p.skip_ws();
        let value = p.value(0)?;
        p.end_of_line()?;
        let table = match doc.sections.last_mut() {
            None => &mut doc.root,
            Some(Section::Table(_, t) | Section::ArrayElement(_, t)) => t,
        };
        if let Some((first, _)) = table.entries.iter().find(|(k, _)| k.value == key.value) {
            return Err(key.err(alloc::format!("duplicate key `{}` (first set at line {})", key.value, first.line)));
        }
        table.entries.push((key, value));
    }
    Ok(doc)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    line: u32,
    col: u32,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Advance one character (UTF-8 aware, so columns count characters).
    fn bump(&mut self) -> Option<char> {
        let c = self.text[self.pos..].chars().next()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, ConfigError> {
        Err(ConfigError::new(self.line, self.col, msg))
    }

    fn found(&self) -> String {
        match self.text[self.pos..].chars().next() {
            None => "end of file".to_string(),
            Some('\n') | Some('\r') => "end of line".to_string(),
            Some(c) => alloc::format!("{c:?}"),
        }
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), ConfigError> {
        if self.peek() == Some(c) {
            self.bump();
            Ok(())
        } else {
            self.err(alloc::format!("expected {what}, found {}", self.found()))
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
    }

    fn skip_comment(&mut self) -> Result<(), ConfigError> {
        if self.peek() == Some(b'#') {
            while let Some(c) = self.peek() {
                if c == b'\n' {
                    break;
                }
                if c < 0x20 && c != b'\t' && c != b'\r' {
                    return self.err("control character in a comment");
                }
                self.bump();
            }
        }
        Ok(())
    }

    fn newline(&mut self) -> bool {
        match self.peek() {
            Some(b'\n') => {
                self.bump();
                true
            }
            Some(b'\r') if self.s.get(self.pos + 1) == Some(&b'\n') => {
                self.bump();
                self.bump();
                true
            }
            _ => false,
        }
    }

    fn skip_ws_comments_newlines(&mut self) -> Result<(), ConfigError> {
        loop {
            self.skip_ws();
            self.skip_comment()?;
            if !self.newline() {
                return Ok(());
            }
        }
    }

    /// After a key/value or header: spaces, an optional comment, then newline or EOF.
    fn end_of_line(&mut self) -> Result<(), ConfigError> {
        self.skip_ws();
        self.skip_comment()?;
        if self.peek().is_none() || self.newline() {
            Ok(())
        } else {
            self.err(alloc::format!("expected the end of the line, found {}", self.found()))
        }
    }

    fn key(&mut self) -> Result<Spanned<String>, ConfigError> {
        let (line, col) = (self.line, self.col);
        let value = match self.peek() {
            Some(b'"') => self.basic_string()?,
            Some(b'\'') => self.literal_string()?,
            Some(c) if is_bare(c) => {
                let start = self.pos;
                while self.peek().is_some_and(is_bare) {
                    self.bump();
                }
                self.text[start..self.pos].to_string()
            }
            _ => return self.err(alloc::format!("expected a key, found {}", self.found())),
        };
        Ok(Spanned { value, line, col })
    }

    fn value(&mut self, depth: usize) -> Result<Spanned<Value>, ConfigError> {
        let (line, col) = (self.line, self.col);
        let value = match self.peek() {
            Some(b'"') => {
                if self.s[self.pos..].starts_with(b"\"\"\"") {
                    return self.err("multi-line strings are not supported here");
                }
                Value::String(self.basic_string()?)
            }
            Some(b'\'') => {
                if self.s[self.pos..].starts_with(b"'''") {
                    return self.err("multi-line strings are not supported here");
                }
                Value::String(self.literal_string()?)
            }
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return self.err("arrays nested too deeply");
                }
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.skip_ws_comments_newlines()?;
                    if self.peek() == Some(b']') {
                        self.bump();
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    self.skip_ws_comments_newlines()?;
                    match self.peek() {
                        Some(b',') => {
                            self.bump();
                        }
                        Some(b']') => {
                            self.bump();
                            break;
                        }
                        _ => {
                            return self
                                .err(alloc::format!("expected `,` or `]` in the array, found {}", self.found()));
                        }
                    }
                }
                Value::Array(items)
            }
            Some(b'{') => return self.err("inline tables are not supported here"),
            Some(b't') if self.s[self.pos..].starts_with(b"true") => {
                for _ in 0..4 {
                    self.bump();
                }
                Value::Boolean(true)
            }
            Some(b'f') if self.s[self.pos..].starts_with(b"false") => {
                for _ in 0..5 {
                    self.bump();
                }
                Value::Boolean(false)
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => Value::Integer(self.integer()?),
            _ => return self.err(alloc::format!("expected a value, found {}", self.found())),
        };
        // A bare word running on (e.g. `truex`, `12ab`) is not a value.
        if matches!(value, Value::Integer(_) | Value::Boolean(_)) && self.peek().is_some_and(is_bare) {
            return Err(ConfigError::new(line, col, "not a valid value (strings are quoted: \"...\")"));
        }
        Ok(Spanned { value, line, col })
    }

    fn integer(&mut self) -> Result<i64, ConfigError> {
        let (line, col) = (self.line, self.col);
        let start = self.pos;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.bump();
        }
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.') {
            self.bump();
        }
        let raw = &self.text[start..self.pos];
        let bad = || ConfigError::new(line, col, alloc::format!("`{raw}` is not a decimal integer"));
        let (neg, digits) = match raw.as_bytes()[0] {
            b'-' => (true, &raw[1..]),
            b'+' => (false, &raw[1..]),
            _ => (false, raw),
        };
        let d = digits.as_bytes();
        if d.is_empty()
            || !d.iter().all(|&c| c.is_ascii_digit() || c == b'_')
            || d[0] == b'_'
            || d[d.len() - 1] == b'_'
            || digits.contains("__")
            || (d.len() > 1 && d[0] == b'0')
        {
            return Err(bad());
        }
        let mut v: i64 = 0;
        for &c in d.iter().filter(|&&c| c != b'_') {
            let digit = i64::from(c - b'0');
            v = v
                .checked_mul(10)
                .and_then(|v| if neg { v.checked_sub(digit) } else { v.checked_add(digit) })
                .ok_or_else(|| ConfigError::new(line, col, alloc::format!("`{raw}` does not fit a 64-bit integer")))?;
        }
        Ok(v)
    }

    fn literal_string(&mut self) -> Result<String, ConfigError> {
        let (line, col) = (self.line, self.col);
        self.bump();
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b'\'') => break,
                None | Some(b'\n') => return Err(ConfigError::new(line, col, "unterminated string")),
                Some(c) if c < 0x20 && c != b'\t' => return self.err("control character in a string"),
                _ => {
                    self.bump();
                }
            }
        }
        let s = self.text[start..self.pos].to_string();
        self.bump();
        Ok(s)
    }

    fn basic_string(&mut self) -> Result<String, ConfigError> {
        let (line, col) = (self.line, self.col);
        self.bump();
        let mut out = String::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.bump();
                    return Ok(out);
                }
                None | Some(b'\n') => return Err(ConfigError::new(line, col, "unterminated string")),
                Some(b'\\') => {
                    let (el, ec) = (self.line, self.col);
                    self.bump();
                    let e = self.bump();
                    let c = match e {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('e') => '\u{1b}',
                        Some(u @ ('u' | 'U')) => {
                            let n = if u == 'u' { 4 } else { 8 };
                            let mut v: u32 = 0;
                            for _ in 0..n {
                                let d = self.bump().and_then(|c| c.to_digit(16));
                                let Some(d) = d else {
                                    return Err(ConfigError::new(el, ec, alloc::format!("\\{u} needs {n} hex digits")));
                                };
                                v = v * 16 + d;
                            }
                            char::from_u32(v).ok_or_else(|| {
                                ConfigError::new(el, ec, alloc::format!("\\{u}{v:X} is not a Unicode scalar value"))
                            })?
                        }
                        _ => return Err(ConfigError::new(el, ec, "unknown escape sequence")),
                    };
                    out.push(c);
                }
                Some(c) if c < 0x20 && c != b'\t' => return self.err("control character in a string"),
                _ => {
                    let c = self.bump().expect("peeked a byte, so a char follows");
                    out.push(c);
                }
            }
        }
    }
}

fn is_bare(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Table {
        parse(text).unwrap().root
    }

    #[test]
    fn values() {
        let t =
            root("a = \"x\\ty\\u00e9\" # c\nb = 'raw\\n'\nc = -1_000\nd = true\ne = [1, [2], 'x',\n  # comment\n]\n");
        assert_eq!(t.get("a").unwrap().value, Value::String("x\ty\u{e9}".into()));
        assert_eq!(t.get("b").unwrap().value, Value::String("raw\\n".into()));
        assert_eq!(t.get("c").unwrap().value, Value::Integer(-1000));
        assert_eq!(t.get("d").unwrap().value, Value::Boolean(true));
        let Value::Array(a) = &t.get("e").unwrap().value else { panic!() };
        assert_eq!(a.len(), 3);
        assert_eq!((a[2].line, a[2].col), (5, 14));
    }

    #[test]
    fn sections_and_places() {
        let d = parse("version = 1\n\n[[step]]\n  kernel = \"/k\"\n[[step]]\n").unwrap();
        assert_eq!(d.sections.len(), 2);
        let Section::ArrayElement(name, t) = &d.sections[0] else { panic!() };
        assert_eq!((name.value.as_str(), name.line, name.col), ("step", 3, 3));
        let (k, v) = &t.entries[0];
        assert_eq!((k.line, k.col, v.line, v.col), (4, 3, 4, 12));
    }

    #[test]
    fn errors_have_places() {
        let e = |t: &str| parse(t).unwrap_err().to_string();
        assert_eq!(e("a = 1\na = 2\n"), "2:1: duplicate key `a` (first set at line 1)");
        assert_eq!(e("a = \"x\n"), "1:5: unterminated string");
        assert_eq!(e("a = 1 2\n"), "1:7: expected the end of the line, found '2'");
        assert_eq!(e("a = 1.5\n"), "1:5: `1.5` is not a decimal integer");
        assert_eq!(e("a = {}\n"), "1:5: inline tables are not supported here");
        assert_eq!(e("a.b = 1\n"), "1:2: dotted keys are not supported here: write the table as a [section]");
        assert_eq!(e("a = yes\n"), "1:5: expected a value, found 'y'");
        assert_eq!(e("[t]\n[t]\n"), "2:2: table `t` defined twice");
        assert_eq!(e("a = \"\\q\"\n"), "1:6: unknown escape sequence");
        assert_eq!(e("a = 99999999999999999999\n"), "1:5: `99999999999999999999` does not fit a 64-bit integer");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let t = alloc::format!("a = {}", "[".repeat(10_000));
        assert!(parse(&t).unwrap_err().msg.contains("too deeply"));
    }

    #[test]
    fn crlf_and_empty() {
        assert_eq!(root("").entries.len(), 0);
        assert_eq!(root("a = 1\r\nb = 2\r\n").entries.len(), 2);
    }
}
