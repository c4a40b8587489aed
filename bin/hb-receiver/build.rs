//! `cfg(mmsg)`: the system has recvmmsg and sendmmsg (as nix binds them), so a batch of
//! datagrams or ACKs is one system call; elsewhere it is one call per datagram.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(mmsg)");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(os.as_str(), "linux" | "android" | "freebsd" | "netbsd") {
        println!("cargo::rustc-cfg=mmsg");
    }
}
