// SPDX-License-Identifier: MIT OR Apache-2.0
//! GRUB script syntax (the grammar of `grub-core/script/parser.y`) to an AST.
//!
//! A script is a list of statements, each ended by `;` or a newline: simple commands
//! (`word args... [{ block }]`), `if/elif/else/fi`, `while`/`until ... do ... done`,
//! `for NAME in words; do ... done`, and at the top level `function NAME { ... }`. Keywords
//! are keywords only where a command starts; elsewhere they are plain words. As an
//! extension GRUB does not have, `a && b || c` chains commands the way sh does.
//!
//! GRUB reads a configuration statement by statement and skips one it cannot parse, so
//! [`parse`] does too: a syntax error drops the statement and parsing resumes on the next
//! line; the error is returned beside the statements that parsed.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::lexer::{Tok, Token, Word, lex, lex_limited};

/// Deepest nesting of blocks, `if`s and loops.
pub const MAX_NESTING: u32 = 64;

/// A command and the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    pub line: u32,
    pub kind: CmdKind,
}

/// A list of commands (a block, a branch, a loop body).
pub type Body = Rc<Vec<Cmd>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmdKind {
    /// `words... [{ block }]`.
    Simple { words: Vec<Word>, block: Option<Body> },
    /// `if c1; then b1; elif c2; then b2; else e; fi`.
    If { branches: Vec<(Body, Body)>, otherwise: Option<Body> },
    /// `while`/`until cond; do body; done`.
    While { cond: Body, body: Body, until: bool },
    /// `for var in words; do body; done`.
    For { var: String, words: Vec<Word>, body: Body },
    /// `function name { body }` (top level only).
    Function { name: String, body: Body },
    /// `a && b || c` (not GRUB syntax; sh semantics): `true` in `rest` means `&&`.
    AndOr { first: Box<Cmd>, rest: Vec<(bool, Cmd)> },
}

/// A statement GRUB would skip, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u32,
    pub msg: String,
}

const KEYWORDS: &[&str] = &[
    "case", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in", "select", "then", "until",
    "while",
];

fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: u32,
}

type PResult<T> = Result<T, (usize, String)>;

impl Parser {
    fn tok(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    /// The word at the current token, moved out: the AST takes the lexer's strings rather
    /// than copies of them (a sixth less peak heap for a large script; the tokens' own
    /// vector stays until the parse ends). A word token is read at most once: the parser
    /// only moves forward over taken words, and error recovery only looks for the end of
    /// the line.
    fn take_word(&mut self) -> Option<Word> {
        let last = self.toks.len() - 1;
        match &mut self.toks[self.pos.min(last)].tok {
            Tok::Word(w) => Some(core::mem::take(w)),
            _ => None,
        }
    }

    fn line(&self) -> u32 {
        self.toks[self.pos.min(self.toks.len() - 1)].line
    }

    fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        let msg = match self.tok() {
            Tok::Bad(m) => (*m).to_string(),
            _ => msg.into(),
        };
        Err((self.pos, msg))
    }

    fn advance(&mut self) {
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
    }

    /// The keyword at the current token, when it is one.
    fn keyword(&self) -> Option<&'static str> {
        match self.tok() {
            Tok::Word(w) => w.plain().and_then(|p| KEYWORDS.iter().copied().find(|k| *k == p)),
            _ => None,
        }
    }

    fn found(&self) -> String {
        match self.tok() {
            Tok::Word(w) => format!("`{}`", w.raw),
            Tok::Newline => "end of line".into(),
            Tok::Semi => "`;`".into(),
            Tok::AndAnd => "`&&`".into(),
            Tok::OrOr => "`||`".into(),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::Bad(m) => (*m).into(),
            Tok::Eof => "end of file".into(),
        }
    }

    fn skip_newlines(&mut self) {
        while matches!(self.tok(), Tok::Newline) {
            self.advance();
        }
    }

    fn expect_keyword(&mut self, kw: &str) -> PResult<()> {
        if self.keyword() == Some(kw) {
            self.advance();
            Ok(())
        } else {
            let f = self.found();
            self.err(format!("expected `{kw}`, found {f}"))
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return self.err(format!("nested deeper than {MAX_NESTING} levels"));
        }
        Ok(())
    }

    /// `commands1 delimiters1` up to one of `ends` (keywords, or `}` as "}"), not consumed.
    fn list(&mut self, ends: &[&str]) -> PResult<Body> {
        self.enter()?;
        self.skip_newlines();
        let mut cmds = Vec::new();
        loop {
            let at_end = match self.tok() {
                Tok::RBrace => ends.contains(&"}"),
                Tok::Eof => false,
                _ => self.keyword().is_some_and(|k| ends.contains(&k)),
            };
            if at_end {
                if cmds.is_empty() {
                    let f = self.found();
                    return self.err(format!("expected a command before {f}"));
                }
                break;
            }
            if matches!(self.tok(), Tok::Eof) {
                let want = ends.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(" or ");
                return self.err(format!("unexpected end of file: expected {want}"));
            }
            cmds.push(self.command()?);
            match self.tok() {
                Tok::Semi | Tok::Newline => {
                    self.advance();
                    self.skip_newlines();
                }
                Tok::RBrace if ends.contains(&"}") => {}
                _ => {
                    let f = self.found();
                    return self.err(format!("expected `;` or a new line, found {f}"));
                }
            }
        }
        self.depth -= 1;
        Ok(Rc::new(cmds))
    }

    /// `{ commands }`: the current token is `{`.
    fn block(&mut self) -> PResult<Body> {
        self.advance();
        let body = self.list(&["}"])?;
        self.advance();
        Ok(body)
    }

    /// A command, with `&&`/`||` chains.
    fn command(&mut self) -> PResult<Cmd> {
        let first = self.single()?;
        let mut rest = Vec::new();
        loop {
            let and = match self.tok() {
                Tok::AndAnd => true,
                Tok::OrOr => false,
                _ => break,
            };
            self.advance();
            self.skip_newlines();
            rest.push((and, self.single()?));
        }
        if rest.is_empty() {
            return Ok(first);
        }
        Ok(Cmd { line: first.line, kind: CmdKind::AndOr { first: Box::new(first), rest } })
    }

    fn single(&mut self) -> PResult<Cmd> {
        let line = self.line();
        if let Some(kw) = self.keyword() {
            self.advance();
            return match kw {
                "if" => self.if_clause(line),
                "while" | "until" => {
                    self.enter()?;
                    let cond = self.list(&["do"])?;
                    self.advance();
                    let body = self.list(&["done"])?;
                    self.advance();
                    self.depth -= 1;
                    Ok(Cmd { line, kind: CmdKind::While { cond, body, until: kw == "until" } })
                }
                "for" => self.for_loop(line),
                "function" => Err((self.pos - 1, "functions can only be defined at the top level".into())),
                "case" | "select" => Err((self.pos - 1, format!("`{kw}` is not supported by GRUB"))),
                _ => Err((self.pos - 1, format!("unexpected `{kw}`"))),
            };
        }
        let mut words = Vec::new();
        while let Some(w) = self.take_word() {
            words.push(w);
            self.advance();
        }
        if words.is_empty() {
            let f = self.found();
            return self.err(format!("expected a command, found {f}"));
        }
        let block = if matches!(self.tok(), Tok::LBrace) { Some(self.block()?) } else { None };
        Ok(Cmd { line, kind: CmdKind::Simple { words, block } })
    }

    /// After `if`: `cond; then body; [elif ...|else ...;] fi`.
    fn if_clause(&mut self, line: u32) -> PResult<Cmd> {
        self.enter()?;
        let mut branches = Vec::new();
        let mut otherwise = None;
        loop {
            let cond = self.list(&["then"])?;
            self.advance();
            let body = self.list(&["elif", "else", "fi"])?;
            branches.push((cond, body));
            match self.keyword() {
                Some("elif") => {
                    self.advance();
                    continue;
                }
                Some("else") => {
                    self.advance();
                    otherwise = Some(self.list(&["fi"])?);
                    self.advance();
                }
                _ => self.advance(),
            }
            break;
        }
        self.depth -= 1;
        Ok(Cmd { line, kind: CmdKind::If { branches, otherwise } })
    }

    fn for_loop(&mut self, line: u32) -> PResult<Cmd> {
        let var = match self.tok() {
            Tok::Word(w) if w.plain().is_some_and(|p| is_name(p) && !KEYWORDS.contains(&p)) => w.raw.clone(),
            _ => {
                let f = self.found();
                return self.err(format!("expected a variable name after `for`, found {f}"));
            }
        };
        self.advance();
        self.expect_keyword("in")?;
        let mut words = Vec::new();
        while let Some(w) = self.take_word() {
            words.push(w);
            self.advance();
        }
        if !matches!(self.tok(), Tok::Semi | Tok::Newline) {
            let f = self.found();
            return self.err(format!("expected `;` or a new line, found {f}"));
        }
        self.advance();
        self.skip_newlines();
        self.expect_keyword("do")?;
        self.enter()?;
        let body = self.list(&["done"])?;
        self.advance();
        self.depth -= 1;
        Ok(Cmd { line, kind: CmdKind::For { var, words, body } })
    }

    /// `function NAME { ... }` at the top level: the current token is `function`.
    fn function(&mut self) -> PResult<Cmd> {
        let line = self.line();
        self.advance();
        let name = match self.tok() {
            Tok::Word(w) if w.plain().is_some_and(is_name) => w.raw.clone(),
            _ => {
                let f = self.found();
                return self.err(format!("expected a function name, found {f}"));
            }
        };
        self.advance();
        self.skip_newlines();
        if !matches!(self.tok(), Tok::LBrace) {
            let f = self.found();
            return self.err(format!("expected `{{` after `function {name}`, found {f}"));
        }
        let body = self.block()?;
        Ok(Cmd { line, kind: CmdKind::Function { name, body } })
    }

    fn statement(&mut self) -> PResult<Cmd> {
        self.depth = 0;
        let cmd = if self.keyword() == Some("function") { self.function()? } else { self.command()? };
        match self.tok() {
            Tok::Semi | Tok::Newline => self.advance(),
            Tok::Eof => {}
            _ => {
                let f = self.found();
                return self.err(format!("expected `;` or a new line, found {f}"));
            }
        }
        Ok(cmd)
    }
}

/// Parse a whole script: the statements that parsed, in order, and the errors of those
/// that did not.
pub fn parse(src: &str) -> (Vec<Cmd>, Vec<SyntaxError>) {
    parse_tokens(lex(src))
}

/// [`parse`] of a script of at most `max_tokens` tokens ([`lex_limited`]), with the
/// number of tokens it had; `Err(line)` for a longer one, before any AST is made.
pub fn parse_limited(src: &str, max_tokens: usize) -> Result<(Vec<Cmd>, Vec<SyntaxError>, usize), u32> {
    let toks = lex_limited(src, max_tokens)?;
    let n = toks.len() - 1; // the Eof
    let (cmds, errors) = parse_tokens(toks);
    Ok((cmds, errors, n))
}

fn parse_tokens(toks: Vec<Token>) -> (Vec<Cmd>, Vec<SyntaxError>) {
    let mut p = Parser { toks, pos: 0, depth: 0 };
    let mut cmds = Vec::new();
    let mut errors = Vec::new();
    loop {
        p.skip_newlines();
        if matches!(p.tok(), Tok::Eof) {
            break;
        }
        match p.statement() {
            Ok(c) => cmds.push(c),
            Err((pos, msg)) => {
                let line = p.toks[pos.min(p.toks.len() - 1)].line;
                errors.push(SyntaxError { line, msg });
                // Drop the rest of the line the error is on, as GRUB drops the statement.
                p.pos = pos;
                while !matches!(p.tok(), Tok::Newline | Tok::Eof) {
                    p.advance();
                }
            }
        }
    }
    (cmds, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> Vec<Cmd> {
        let (c, e) = parse(src);
        assert!(e.is_empty(), "{e:?}");
        c
    }

    #[test]
    fn shapes() {
        let c =
            ok("if [ a ]; then\n x\nelif b; then y; else z; fi\nwhile a; do b; done; for i in 1 2; do echo $i; done\n");
        assert_eq!(c.len(), 3);
        let CmdKind::If { branches, otherwise } = &c[0].kind else { panic!() };
        assert_eq!((branches.len(), otherwise.is_some()), (2, true));
        let c = ok("menuentry 'x' --id y {\n linux /v\n}\nfunction f { echo if then fi; }\nf && g || h\n");
        let CmdKind::Simple { words, block: Some(b) } = &c[0].kind else { panic!() };
        assert_eq!((words.len(), b.len()), (4, 1));
        assert!(matches!(c[1].kind, CmdKind::Function { .. }));
        assert!(matches!(c[2].kind, CmdKind::AndOr { .. }));
        assert_eq!(c[2].line, 5);
    }

    #[test]
    fn errors_skip_a_statement() {
        let (c, e) = parse("echo a\nif true then echo\nfi\necho | x\nmenuentry e { }\necho b\n");
        assert_eq!(c.len(), 2, "{c:?}");
        let lines: Vec<u32> = e.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5], "{e:?}");
        assert!(e[1].msg.contains("pipes"));
        let (_, e) = parse("if true; then\n");
        assert!(e[0].msg.contains("end of file"), "{e:?}");
        let (_, e) = parse(&"if true; then ".repeat(200));
        assert!(e[0].msg.contains("deeper"), "{e:?}");
        let (_, e) = parse("menuentry x { function f { a; } }\n");
        assert!(e[0].msg.contains("top level"), "{e:?}");
    }
}
