//! The modules of hb-web stand in layers: each uses only modules below it, so any one can be
//! read (and tested) with nothing above it in mind. Read from the source: every
//! `crate::<module>` a file names is an edge; an item of the crate root (`crate::Web` when
//! it lived in main.rs) is an edge to the root, which declares every module, so it closes a
//! circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The modules below the resources: replies, JSON shapes, shared state, who asks and what
/// they see. They never use a resource module.
const LOWER: &[&str] = &[
    "reply",
    "views",
    "live",
    "ping_limits",
    "web",
    "authed",
    "visibility",
    "channel_list",
    "tls",
];

/// One crate of the package: its root file's name and, per module, the modules (or the
/// root, by its name) it names.
struct Crate {
    root: &'static str,
    uses: BTreeMap<String, BTreeSet<String>>,
}

fn src() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

fn read(name: &str) -> String {
    let path = src().join(format!("{name}.rs"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The modules a root file declares (`mod x;`, `pub mod x;`).
fn declared(root: &str) -> Vec<String> {
    read(root)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The first path segments after every `crate::` in `text` (`crate::{a, b::c}` gives `a`
/// and `b`).
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(is_ident) {
            continue; // `hb_crate::`, not ours.
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => return true,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    false
                })
                .map_or(group.len(), |(i, _)| i);
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        let first: String =
                            item.trim().chars().take_while(|&c| is_ident(c)).collect();
                        if !first.is_empty() {
                            out.insert(first);
                        }
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
        } else {
            let first: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            if !first.is_empty() {
                out.insert(first);
            }
        }
    }
    out
}

/// Reads a crate: each module's file, and what of the crate it names. A name that is not a
/// module is an item of the root; `super::` outside a module's tests is the root too.
fn read_crate(root: &'static str) -> Crate {
    let modules = declared(root);
    let mut uses = BTreeMap::new();
    for module in &modules {
        let text = read(module);
        assert!(
            !text.contains("#[path"),
            "{module}.rs: no #[path]: a module's file is its name"
        );
        let mut named: BTreeSet<String> = crate_paths(&text)
            .into_iter()
            .map(|first| {
                if modules.contains(&first) {
                    first
                } else {
                    root.to_string()
                }
            })
            .collect();
        let outside_tests = text.split("#[cfg(test)]").next().unwrap_or("");
        if outside_tests.contains("super::") {
            named.insert(root.to_string());
        }
        named.remove(module);
        uses.insert(module.clone(), named);
    }
    // The root declares them all.
    uses.insert(root.to_string(), modules.into_iter().collect());
    Crate { root, uses }
}

/// The modules left over once every module that uses none of those left, or that none of
/// those left uses, is taken away, again and again (a topological sort from both ends):
/// empty unless some of them use each other in a circle.
fn in_circles(uses: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut left: BTreeMap<&str, BTreeSet<&str>> = uses
        .iter()
        .map(|(m, u)| (m.as_str(), u.iter().map(String::as_str).collect()))
        .collect();
    loop {
        let outside: Vec<&str> = left
            .iter()
            .filter(|(m, u)| {
                let uses_none = u.iter().all(|d| !left.contains_key(d));
                let used_by_none = left.values().all(|u| !u.contains(*m));
                uses_none || used_by_none
            })
            .map(|(m, _)| *m)
            .collect();
        if outside.is_empty() {
            return left.keys().map(std::string::ToString::to_string).collect();
        }
        for m in outside {
            left.remove(m);
        }
    }
}

#[test]
fn the_modules_use_each_other_in_no_circle() {
    for root in ["main", "lib"] {
        let krate = read_crate(root);
        let circled = in_circles(&krate.uses);
        let detail: Vec<String> = circled
            .iter()
            .map(|m| {
                let within: Vec<&String> = krate.uses[m]
                    .iter()
                    .filter(|u| circled.contains(*u))
                    .collect();
                format!("{m} uses {within:?}")
            })
            .collect();
        assert!(
            circled.is_empty(),
            "{}.rs's crate has an import circle among: {}",
            krate.root,
            detail.join("; ")
        );
    }
}

#[test]
fn resources_use_only_the_lower_layers() {
    let krate = read_crate("main");
    for (module, uses) in &krate.uses {
        if module == "main" {
            continue;
        }
        let lower = LOWER.contains(&module.as_str());
        for used in uses {
            let why = if used == krate.root {
                "an item of the crate root, which declares every module"
            } else if lower {
                "a lower module uses no resource module"
            } else {
                "a resource module uses no other resource (move what they share down)"
            };
            assert!(
                LOWER.contains(&used.as_str()),
                "{module}.rs uses {used}: {why}"
            );
        }
    }
    for module in LOWER {
        assert!(
            krate.uses.contains_key(*module),
            "{module} is listed as a lower module but main.rs declares no such module"
        );
    }
}

#[test]
fn crate_paths_are_read_whole() {
    let text = "use crate::reply::{ApiError, ok};\nuse crate::{web::Web, views};\nlet x = hb_crate::y; crate::Web";
    let got: Vec<String> = crate_paths(text).into_iter().collect();
    assert_eq!(got, ["Web", "reply", "views", "web"]);
    let mut uses = BTreeMap::new();
    uses.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    uses.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    uses.insert("c".to_string(), BTreeSet::new());
    assert!(in_circles(&uses).is_empty());
    uses.insert("d".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(
        in_circles(&uses).is_empty(),
        "d uses the chain, in no circle"
    );
    uses.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(in_circles(&uses).len(), 3, "a → b → c → a, d outside");
}
