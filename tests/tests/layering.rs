//! Which crate may link which, read from `cargo metadata` for every target platform at once
//! (so a `cfg` cannot hide an edge): no role links the parent supervisor crate, and hbc,
//! on every monitored host, links hb-proto and nothing else of the server.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{Value, json};

/// Crates of the server that must never reach a monitored host through hbc.
const NOT_ON_HOSTS: &[&str] = &[
    "hb-supervisor",
    "hb-child",
    "hb-ipc",
    "hb-rules",
    "hb-notify",
    "landlock",
    "pbkdf2",
    "rusqlite",
    "libsqlite3-sys",
];

/// The resolved dependency graph of the workspace, by package name.
struct Graph {
    /// Package name -> (dependency name, whether a normal edge: linked into the program).
    edges: BTreeMap<String, Vec<(String, bool)>>,
    members: BTreeSet<String>,
}

impl Graph {
    fn load() -> Graph {
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
        let out = Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--locked"])
            .args(["--manifest-path", manifest])
            .output()
            .expect("run cargo metadata");
        assert!(
            out.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Graph::from_metadata(&serde_json::from_slice(&out.stdout).expect("metadata JSON"))
    }

    fn from_metadata(metadata: &Value) -> Graph {
        let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
        let name_of: BTreeMap<String, String> = list(&metadata["packages"])
            .iter()
            .filter_map(|p| Some((p["id"].as_str()?.into(), p["name"].as_str()?.into())))
            .collect();
        let name = |id: &Value| {
            id.as_str()
                .and_then(|id| name_of.get(id))
                .cloned()
                .unwrap_or_default()
        };
        let members = list(&metadata["workspace_members"])
            .iter()
            .map(name)
            .collect();
        let mut edges: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
        for node in list(&metadata["resolve"]["nodes"]) {
            let from = edges.entry(name(&node["id"])).or_default();
            for dep in list(&node["deps"]) {
                // A normal edge has no kind; dev and build edges are not linked in.
                let normal = list(&dep["dep_kinds"]).iter().any(|k| k["kind"].is_null());
                from.push((name(&dep["pkg"]), normal));
            }
        }
        Graph { edges, members }
    }

    /// Every package reachable from `root`, through normal edges only or through all.
    fn reachable(&self, root: &str, normal_only: bool) -> BTreeSet<String> {
        let mut seen = BTreeSet::from([root.to_string()]);
        let mut todo = vec![root.to_string()];
        while let Some(name) = todo.pop() {
            for (dep, normal) in self.edges.get(&name).into_iter().flatten() {
                if (*normal || !normal_only) && seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        seen.remove(root);
        seen
    }
}

// `cargo tree -i hb-supervisor` shows only hbsupervisor and hbctl: the roles (and the tests,
// hbload and hbc) reach the parent through no edge at all, dev and build ones included.
#[test]
fn only_the_parents_programs_link_the_parent() {
    let graph = Graph::load();
    let dependents: BTreeSet<&str> = graph
        .members
        .iter()
        .filter(|m| graph.reachable(m, false).contains("hb-supervisor"))
        .map(String::as_str)
        .collect();
    assert_eq!(dependents, BTreeSet::from(["hbctl", "hbsupervisor"]));
    for role in [
        "hb-child",
        "hb-receiver",
        "hb-engine",
        "hb-notifier",
        "hb-dnsupdate",
        "hb-web",
    ] {
        assert!(graph.members.contains(role), "{role} is not a member");
    }
}

// hbc links hb-proto and no other crate of the server, on any platform: `cargo tree -p hbc
// -e normal`, for every target at once. hb-log (log lines and syslog) is the one other crate
// of ours it links: shared with the server, it links nothing of ours and no system library
// beyond std.
#[test]
fn hbc_links_no_crate_of_the_server_but_hb_proto() {
    let graph = Graph::load();
    let linked = graph.reachable("hbc", true);
    let ours: BTreeSet<&str> = linked
        .iter()
        .filter(|name| graph.members.contains(*name))
        .map(String::as_str)
        .collect();
    assert_eq!(ours, BTreeSet::from(["hb-log", "hb-proto"]));
    for shared in ours {
        let theirs: Vec<String> = graph
            .reachable(shared, true)
            .into_iter()
            .filter(|name| graph.members.contains(name))
            .collect();
        assert!(theirs.is_empty(), "{shared} links {theirs:?}");
    }
    for name in NOT_ON_HOSTS {
        assert!(!linked.contains(*name), "hbc links {name}");
    }
    // The walk is real: hbc's own dependencies are found.
    assert!(
        linked.contains("tokio") && linked.contains("sysinfo"),
        "{linked:?}"
    );
}

// The walk finds a server crate behind a normal edge and, for what is linked, ignores dev
// and build edges.
#[test]
fn the_walk_tells_linked_edges_from_dev_and_build_ones() {
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
    let clean = Graph::from_metadata(&metadata(vec![
        edge("hb-proto", Value::Null),
        edge("hb-ipc", json!("dev")),
        edge("cc", json!("build")),
    ]));
    assert_eq!(
        clean.reachable("hbc", true),
        BTreeSet::from(["hb-proto".into()])
    );
    assert!(clean.reachable("hbc", false).contains("rusqlite"));
    let linked = Graph::from_metadata(&metadata(vec![
        edge("hb-proto", Value::Null),
        edge("hb-ipc", Value::Null),
    ]));
    assert!(linked.reachable("hbc", true).contains("rusqlite"));
}
