// SPDX-License-Identifier: MIT OR Apache-2.0
//! Rules of the house that a test can hold (docs/architecture.md): no two of the
//! loader's modules import each other, directly or round a longer loop, at the top level
//! or among the files of one module; pure modules never reach the hardware ones; and no
//! source file in the workspace is over 900 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if !matches!(name.as_str(), "target" | "corpus" | "artifacts" | ".git" | ".cache") {
                rs_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `crate::a::b::...` paths named in code (comments left out), as module paths.
fn crate_refs(text: &str) -> Vec<Vec<String>> {
    let mut refs = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + 7..];
            let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            refs.push(path.split("::").filter(|s| !s.is_empty()).map(String::from).collect());
        }
    }
    refs
}

/// The module path of a source file under src/: `config/grub/eval.rs` -> [config, grub, eval].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut c = stack[at..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0
            && let Some(c) = visit(n, edges, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// Module-to-module edges at `depth` (1: top-level modules; 2: files of one top-level
/// module, and so on): an edge a -> b when a file of a names b, both under the same
/// parent.
fn edges_at(src: &Path, depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let m = module_of(src, &f);
        if m.len() < depth || m.first().is_some_and(|x| x == "bin") {
            continue;
        }
        let text = fs::read_to_string(&f).unwrap();
        for r in crate_refs(&text) {
            if r.len() < depth || r[..depth - 1] != m[..depth - 1] || r[depth - 1] == m[depth - 1] {
                continue;
            }
            // The `say!` macro is exported at the crate root.
            if depth == 1 && r[0] == "say" {
                continue;
            }
            edges.entry(m[..depth].join("::")).or_default().insert(r[..depth].join("::"));
        }
    }
    edges
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_import_cycles_between_modules() {
    for depth in 1..=3 {
        let edges = edges_at(&src(), depth);
        assert!(!edges.is_empty() || depth > 1, "found no module edges at all: the scan is broken");
        if let Some(c) = find_cycle(&edges) {
            panic!("modules import each other (depth {depth}): {}", c.join(" -> "));
        }
    }
}

#[test]
fn pure_modules_never_reach_the_hardware() {
    let edges = edges_at(&src(), 1);
    let hardware = ["platform", "drivers", "pvh", "pv"];
    for (from, to) in &edges {
        if hardware.contains(&from.as_str()) {
            continue;
        }
        for h in hardware {
            assert!(!to.contains(h), "pure module {from} uses hardware module {h}");
        }
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut e: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    e.entry("a".into()).or_default().insert("b".into());
    e.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&e), None);
    e.entry("c".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&e), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}

#[test]
fn no_source_file_over_900_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    rs_files(root, &mut files);
    assert!(files.len() > 50, "the scan found only {} files", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = fs::read_to_string(f).ok()?.lines().count();
            (n > 900).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "source files over 900 lines: {long:?}");
}
