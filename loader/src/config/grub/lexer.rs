// SPDX-License-Identifier: MIT OR Apache-2.0
//! GRUB script tokens (the rules of `grub-core/script/yylex.l`).
//!
//! A word is a run of plain characters, `\`-escapes, `'single'` and `"double"` quoted
//! strings (`$"..."` is read as a double-quoted string: no translations here) and variable
//! references `$name`, `${name}`, `$1`, `${10}`, `$?`, `$#`, `$*`, `$@`. `{ } ; | & < >`,
//! blanks and newlines end a word; `#` at the start of a token starts a comment. A `$` not
//! followed by a variable name is a syntax error, as in GRUB. `\r` is dropped everywhere
//! (GRUB's line reader does the same).

use alloc::string::String;
use alloc::vec::Vec;

/// A piece of a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Unquoted text, escapes removed. Empty text adds nothing.
    Lit(String),
    /// Quoted text: makes the word exist even when empty (`""`).
    Quoted(String),
    /// `$name` outside quotes: split at blanks when expanded.
    Var(String),
    /// `"$name"`: not split.
    QVar(String),
}

/// A word and its source text (the source decides whether it is a keyword).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Word {
    pub parts: Vec<Part>,
    pub raw: String,
}

impl Word {
    /// The word when it is plain unquoted text (keywords, function names).
    pub fn plain(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit(s)] if *s == self.raw => Some(s),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    Word(Word),
    Newline,
    Semi,
    AndAnd,
    OrOr,
    LBrace,
    RBrace,
    /// Something GRUB rejects; the message says what.
    Bad(&'static str),
    Eof,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    /// 1-based line where the token starts.
    pub line: u32,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The variable name after a `$` at `b[i]`: (name, bytes consumed), or `None`.
fn var_name(s: &str, i: usize) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let simple = |j: usize| -> Option<usize> {
        let c = *b.get(j)?;
        if matches!(c, b'?' | b'#' | b'*' | b'@') {
            Some(j + 1)
        } else if c.is_ascii_digit() {
            let mut k = j;
            while b.get(k).is_some_and(u8::is_ascii_digit) {
                k += 1;
            }
            Some(k)
        } else if is_name_start(c) {
            let mut k = j;
            while b.get(k).is_some_and(|&c| is_name(c)) {
                k += 1;
            }
            Some(k)
        } else {
            None
        }
    };
    if b.get(i) == Some(&b'{') {
        let end = simple(i + 1)?;
        if b.get(end) != Some(&b'}') {
            return None;
        }
        Some((String::from(&s[i + 1..end]), end + 1 - i))
    } else {
        let end = simple(i)?;
        Some((String::from(&s[i..end]), end - i))
    }
}

struct Lexer<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    line: u32,
}

impl Lexer<'_> {
    /// The char at `i` (a whole UTF-8 sequence).
    fn char_at(&self, i: usize) -> char {
        self.s[i..].chars().next().unwrap_or('\u{fffd}')
    }

    /// A double-quoted string starting after its `"`; `Err` when unterminated or bad.
    fn dquote(&mut self, parts: &mut Vec<Part>) -> Result<(), &'static str> {
        let mut chunk = String::new();
        loop {
            let Some(&c) = self.b.get(self.i) else { return Err("unterminated double quote") };
            match c {
                b'"' => {
                    self.i += 1;
                    parts.push(Part::Quoted(chunk));
                    return Ok(());
                }
                b'\\' => match self.b.get(self.i + 1) {
                    Some(&e @ (b'$' | b'\\' | b'"')) => {
                        chunk.push(e as char);
                        self.i += 2;
                    }
                    Some(b'\n') => {
                        self.line += 1;
                        self.i += 2;
                    }
                    _ => {
                        chunk.push('\\');
                        self.i += 1;
                    }
                },
                b'$' => {
                    let Some((name, n)) = var_name(self.s, self.i + 1) else {
                        return Err("`$` must be followed by a variable name");
                    };
                    parts.push(Part::Quoted(core::mem::take(&mut chunk)));
                    parts.push(Part::QVar(name));
                    self.i += 1 + n;
                }
                _ => {
                    if c == b'\n' {
                        self.line += 1;
                    }
                    let ch = self.char_at(self.i);
                    chunk.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
    }

    fn word(&mut self) -> Tok {
        let start = self.i;
        let mut parts: Vec<Part> = Vec::new();
        let mut lit = String::new();
        let flush = |lit: &mut String, parts: &mut Vec<Part>| {
            if !lit.is_empty() {
                parts.push(Part::Lit(core::mem::take(lit)));
            }
        };
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b' ' | b'\t' | b'\n' | b'{' | b'}' | b'|' | b'&' | b';' | b'<' | b'>' => break,
                b'\\' => match self.b.get(self.i + 1) {
                    None => {
                        self.i += 1;
                        return Tok::Bad("`\\` at the end of the file");
                    }
                    Some(b'\n') => {
                        self.line += 1;
                        self.i += 2;
                    }
                    Some(_) => {
                        let ch = self.char_at(self.i + 1);
                        lit.push(ch);
                        self.i += 1 + ch.len_utf8();
                    }
                },
                b'\'' => {
                    flush(&mut lit, &mut parts);
                    let Some(len) = self.b[self.i + 1..].iter().position(|&c| c == b'\'') else {
                        self.i = self.b.len();
                        return Tok::Bad("unterminated single quote");
                    };
                    let text = &self.s[self.i + 1..self.i + 1 + len];
                    self.line += text.bytes().filter(|&c| c == b'\n').count() as u32;
                    parts.push(Part::Quoted(String::from(text)));
                    self.i += len + 2;
                }
                b'"' => {
                    flush(&mut lit, &mut parts);
                    self.i += 1;
                    if let Err(m) = self.dquote(&mut parts) {
                        return Tok::Bad(m);
                    }
                }
                b'$' if self.b.get(self.i + 1) == Some(&b'"') => {
                    flush(&mut lit, &mut parts);
                    self.i += 2;
                    if let Err(m) = self.dquote(&mut parts) {
                        return Tok::Bad(m);
                    }
                }
                b'$' => {
                    let Some((name, n)) = var_name(self.s, self.i + 1) else {
                        self.i += 1;
                        return Tok::Bad("`$` must be followed by a variable name");
                    };
                    flush(&mut lit, &mut parts);
                    parts.push(Part::Var(name));
                    self.i += 1 + n;
                }
                _ => {
                    let ch = self.char_at(self.i);
                    lit.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
        flush(&mut lit, &mut parts);
        Tok::Word(Word { parts, raw: String::from(&self.s[start..self.i]) })
    }
}

/// Split `src` into tokens, ending with [`Tok::Eof`].
pub fn lex(src: &str) -> Vec<Token> {
    match lex_limited(src, usize::MAX) {
        Ok(t) => t,
        Err(_) => unreachable!("no token limit"),
    }
}

/// [`lex`], stopping once `max_tokens` tokens are made (the `Eof` not counted): then
/// `Err(line)` with the line reached. Tokens and the AST made from them take some 150
/// bytes of heap per word: this is what keeps a large script within the loader's heap.
pub fn lex_limited(src: &str, max_tokens: usize) -> Result<Vec<Token>, u32> {
    let owned;
    let s = if src.contains('\r') {
        owned = src.replace('\r', "");
        owned.as_str()
    } else {
        src
    };
    let mut lx = Lexer { s, b: s.as_bytes(), i: 0, line: 1 };
    let mut out = Vec::new();
    loop {
        while matches!(lx.b.get(lx.i), Some(b' ' | b'\t')) {
            lx.i += 1;
        }
        let line = lx.line;
        let Some(&c) = lx.b.get(lx.i) else {
            out.push(Token { tok: Tok::Eof, line });
            return Ok(out);
        };
        if out.len() >= max_tokens {
            return Err(line);
        }
        let two = |c2: u8| lx.b.get(lx.i + 1) == Some(&c2);
        let (tok, n) = match c {
            b'#' => {
                while lx.b.get(lx.i).is_some_and(|&c| c != b'\n') {
                    lx.i += 1;
                }
                continue;
            }
            b'\n' => {
                lx.line += 1;
                (Tok::Newline, 1)
            }
            b';' if two(b';') => (Tok::Bad("`;;` is not GRUB syntax"), 2),
            b';' => (Tok::Semi, 1),
            b'&' if two(b'&') => (Tok::AndAnd, 2),
            b'&' => (Tok::Bad("`&`: GRUB has no background jobs"), 1),
            b'|' if two(b'|') => (Tok::OrOr, 2),
            b'|' => (Tok::Bad("`|`: GRUB has no pipes"), 1),
            b'<' | b'>' => (Tok::Bad("`<` and `>` (redirections) are not GRUB syntax"), 1),
            b'{' => (Tok::LBrace, 1),
            b'}' => (Tok::RBrace, 1),
            _ => {
                let tok = lx.word();
                out.push(Token { tok, line });
                continue;
            }
        };
        lx.i += n;
        out.push(Token { tok, line });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn words(src: &str) -> Vec<Vec<Part>> {
        lex(src)
            .into_iter()
            .filter_map(|t| match t.tok {
                Tok::Word(w) => Some(w.parts),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn quoting() {
        let l = |s: &str| Part::Lit(s.into());
        let q = |s: &str| Part::Quoted(s.into());
        assert_eq!(words("a\\ b 'c d'e"), vec![vec![l("a b")], vec![q("c d"), l("e")]]);
        assert_eq!(
            words("\"x $y ${z}\\$\\n\""),
            vec![vec![q("x "), Part::QVar("y".into()), q(" "), Part::QVar("z".into()), q("$\\n")]]
        );
        assert_eq!(
            words("$1${#}$?x"),
            vec![vec![Part::Var("1".into()), Part::Var("#".into()), Part::Var("?".into()), l("x")]]
        );
        assert_eq!(words("a\\\nb"), vec![vec![l("ab")]]);
        assert_eq!(words("a#b #c"), vec![vec![l("a#b")]]);
    }

    #[test]
    fn tokens_and_lines() {
        let t = lex("if a; then\n  b && c || d\nfi { }\n'x\ny' z\n");
        let kinds: Vec<_> = t.iter().map(|t| (t.line, matches!(t.tok, Tok::Word(_)))).collect();
        assert_eq!(t.len(), 19);
        assert_eq!(kinds[5], (2, true));
        assert!(matches!(t[6].tok, Tok::AndAnd) && matches!(t[8].tok, Tok::OrOr));
        assert_eq!(t[15].line, 4);
        assert_eq!(t[16].line, 5);
        assert!(matches!(lex("a | b")[1].tok, Tok::Bad(_)));
        assert!(matches!(lex("echo $")[1].tok, Tok::Bad(_)));
        assert!(matches!(lex("echo ${a-b}")[1].tok, Tok::Bad(_)));
        assert!(matches!(lex("echo 'abc")[1].tok, Tok::Bad(_)));
    }
}
