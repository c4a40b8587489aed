//! hbc links hb-proto and no other crate of the server (issue 20): what `cargo metadata`
//! resolves, following only normal dependencies (not dev or build ones) from hbc, for every
//! target platform at once, so a `cfg` cannot hide one.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// Crates the server uses that must never reach a monitored host.
const FORBIDDEN: &[&str] = &["landlock", "pbkdf2", "rusqlite", "libsqlite3-sys"];

/// Names of the packages reachable from `root` through normal dependency edges, and which
/// of them are members of the workspace.
fn reachable(metadata: &Value, root: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let packages: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let nodes: BTreeMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let start = packages
        .iter()
        .find(|(id, name)| **name == root && members.contains(**id))
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("{root} is not a workspace member"));
    let mut seen = BTreeSet::from([start]);
    let mut todo = vec![start];
    while let Some(id) = todo.pop() {
        let Some(node) = nodes.get(id) else { continue };
        for dep in node["deps"].as_array().into_iter().flatten() {
            // A normal edge has a kind of null; dev and build edges are not linked in.
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            if let Some(pkg) = dep["pkg"].as_str()
                && normal
                && seen.insert(pkg)
            {
                todo.push(pkg);
            }
        }
    }
    let names = |ids: &mut dyn Iterator<Item = &&str>| -> BTreeSet<String> {
        ids.filter_map(|id| packages.get(*id).map(|n| n.to_string()))
            .collect()
    };
    let all = names(&mut seen.iter());
    let ours = names(&mut seen.iter().filter(|id| members.contains(**id)));
    (all, ours)
}

#[test]
fn hbc_links_no_crate_of_the_server_but_hb_proto() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--manifest-path",
            manifest,
        ])
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON");
    let (all, ours) = reachable(&metadata, "hbc");
    assert_eq!(
        ours,
        BTreeSet::from(["hbc".to_string(), "hb-proto".to_string()]),
        "workspace crates hbc links"
    );
    for name in FORBIDDEN {
        assert!(!all.contains(*name), "hbc links {name}");
    }
    // The walk itself is real: hbc's own direct dependencies are found.
    assert!(all.contains("tokio") && all.contains("sysinfo"), "{all:?}");
}

/// The walk finds a server crate behind a normal edge and ignores dev and build edges.
#[test]
fn the_walk_follows_only_normal_edges() {
    let pkg = |name: &str| json!({"id": format!("{name}-id"), "name": name});
    let edge = |name: &str, kind: Value| json!({"name": name, "pkg": format!("{name}-id"), "dep_kinds": [{"kind": kind, "target": null}]});
    let metadata = |hbc_deps: Vec<Value>| {
        json!({
            "packages": [pkg("hbc"), pkg("hb-proto"), pkg("hb-ipc"), pkg("rusqlite"), pkg("cc")],
            "workspace_members": ["hbc-id", "hb-proto-id", "hb-ipc-id"],
            "resolve": {"nodes": [
                {"id": "hbc-id", "deps": hbc_deps},
                {"id": "hb-proto-id", "deps": []},
                {"id": "hb-ipc-id", "deps": [edge("rusqlite", Value::Null)]},
                {"id": "rusqlite-id", "deps": []},
                {"id": "cc-id", "deps": []},
            ]},
        })
    };
    let clean = metadata(vec![
        edge("hb-proto", Value::Null),
        edge("hb-ipc", json!("dev")),
        edge("cc", json!("build")),
    ]);
    let (all, ours) = reachable(&clean, "hbc");
    assert_eq!(ours.len(), 2);
    assert!(!all.contains("rusqlite") && !all.contains("cc"));
    let linked = metadata(vec![
        edge("hb-proto", Value::Null),
        edge("hb-ipc", Value::Null),
    ]);
    let (all, ours) = reachable(&linked, "hbc");
    assert!(ours.contains("hb-ipc") && all.contains("rusqlite"));
}
