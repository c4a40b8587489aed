//! The house rules of issue 25, read from the source: no file of code over 1,000 lines (its
//! tests left out: a `tests.rs`, a `tests/` or `benches/` folder, and what follows a
//! top-level `#[cfg(test)]`), no `#[path]` to reach a file from elsewhere, and no circle of
//! imports between the top-level modules of a crate. Functions over 120 lines are clippy's
//! `too_many_lines` (clippy.toml).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 1000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Every `.rs` file below `dir`, build output and VCS left out.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_file(path: &Path, root: &Path) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.starts_with("tests")
        || rel.file_name().is_some_and(|n| n == "tests.rs")
        || rel.components().any(|c| {
            let c = c.as_os_str();
            c == "tests" || c == "benches"
        })
}

/// Lines of code: up to the first top-level `#[cfg(test)]`.
fn code_lines(text: &str) -> usize {
    text.lines().take_while(|l| *l != "#[cfg(test)]").count()
}

#[test]
fn no_file_of_code_is_over_a_thousand_lines_nor_reached_by_path() {
    let root = root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut long = Vec::new();
    let mut pathed = Vec::new();
    for file in files.iter().filter(|f| !is_test_file(f, &root)) {
        let text = std::fs::read_to_string(file).expect("read");
        let n = code_lines(&text);
        if n > MAX_LINES {
            long.push(format!("{} ({n} lines)", file.display()));
        }
        if text.lines().any(|l| l.trim_start().starts_with("#[path")) {
            pathed.push(file.display().to_string());
        }
    }
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:#?}");
    assert!(pathed.is_empty(), "#[path] in: {pathed:#?}");
}

/// The top-level module a file of `src` belongs to (`src/a.rs`, `src/a/...` are `a`);
/// `None` for the crate root.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (!matches!(name.as_str(), "lib" | "main" | "bin")).then_some(name)
}

/// `crate::x` references in `text` to modules other than `own`.
fn references(text: &str, own: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        if text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // hb_crate::, not crate::
        }
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name != own && modules.contains(&name) {
            out.insert(name);
        }
        // `use crate::{a, b}`
        if rest.starts_with('{') {
            let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
            for part in group.split(',') {
                let name = part.trim().split("::").next().unwrap_or("").trim();
                if name != own && modules.contains(name) {
                    out.insert(name.to_string());
                }
            }
        }
    }
    out
}

/// A circle in `graph`, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut c = path[at..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_imports_in_a_circle() {
    let root = root();
    let mut crates = Vec::new();
    for dir in [
        "ipc",
        "proto",
        "log",
        "child",
        "supervisor",
        "rules",
        "notify",
    ] {
        crates.push(root.join(dir));
    }
    for entry in std::fs::read_dir(root.join("bin")).expect("bin").flatten() {
        crates.push(entry.path());
    }
    let mut circles = Vec::new();
    for krate in crates {
        let src = krate.join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(&src, f)).collect();
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in &files {
            let Some(own) = top_module(&src, file) else {
                continue;
            };
            let text = std::fs::read_to_string(file).expect("read");
            // Code only: comments (doc links name modules too) and tests left out.
            let code: String = text
                .lines()
                .take_while(|l| *l != "#[cfg(test)]")
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            graph
                .entry(own.clone())
                .or_default()
                .extend(references(&code, &own, &modules));
        }
        if let Some(c) = circle(&graph) {
            circles.push(format!("{}: {}", krate.display(), c.join(" -> ")));
        }
    }
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

#[test]
fn the_circle_finder_finds_one() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    };
    assert_eq!(circle(&graph(&[("a", "b"), ("b", "c")])), None);
    assert_eq!(
        circle(&graph(&[("api", "ws"), ("ws", "api")])),
        Some(vec!["api".to_string(), "ws".into(), "api".into()])
    );
    let modules: BTreeSet<String> = ["api", "ws"]
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    let refs = references(
        "use crate::{api::Authed, Web};\nlet x = hb_crate::ws;",
        "ws",
        &modules,
    );
    assert_eq!(refs, BTreeSet::from(["api".to_string()]));
    assert_eq!(code_lines("a\nb\n#[cfg(test)]\nmod tests {}\n"), 2);
}
