//! The static hbc: one binary for every Linux (old glibc, Alpine, busybox), built by the
//! README's test command for x86_64-unknown-linux-musl and run here against the server.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::harness::*;

const STATIC_TARGET: &str = "x86_64-unknown-linux-musl";

/// `HB_STATIC_HBC`, else target/x86_64-unknown-linux-musl/debug/hbc beside the binaries.
fn static_hbc() -> PathBuf {
    let path = match std::env::var_os("HB_STATIC_HBC") {
        Some(path) => PathBuf::from(path),
        None => {
            let profile = bin_dir();
            let name = profile.file_name().expect("profile directory").to_owned();
            let target = profile.parent().expect("target directory");
            target.join(STATIC_TARGET).join(name).join("hbc")
        }
    };
    assert!(
        path.is_file(),
        "{} missing: build it with `cargo build -p hbc --target {STATIC_TARGET}` (the README's test command does; it needs Debian's musl-tools)",
        path.display()
    );
    path
}

#[test]
fn the_static_hbc_heartbeats_to_the_server() {
    require_tool("file", "file");
    let hbc = static_hbc();
    let out = Command::new("file").arg(&hbc).output().expect("run file");
    let what = String::from_utf8_lossy(&out.stdout);
    assert!(
        what.contains("statically linked") || what.contains("static-pie linked"),
        "not a static binary: {what}"
    );
    assert!(
        !what.contains("interpreter"),
        "needs a dynamic loader: {what}"
    );

    let server = Server::start("static-hbc", "");
    let port = server.hb_port.to_string();
    // One heartbeat, the ACK waited for: exit 0 only when the server answered.
    let out = Command::new(&hbc)
        .args(["-1", "-N", "static1", "-p", &port, "127.0.0.1"])
        .env_remove("HOME")
        .output()
        .expect("run the static hbc");
    assert!(
        out.status.success(),
        "static hbc: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = wait_for(Duration::from_secs(5), || server.host("static1").is_some());
    assert!(listed, "static1 not listed; log:\n{}", server.log_text());
    let host = server.host("static1").expect("host");
    assert_eq!(host["ver"], env!("CARGO_PKG_VERSION"), "{host}");
}
