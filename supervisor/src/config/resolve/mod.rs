//! From the file as written to a [`Config`]: every check, by concern, and every default.
//! Each check reports through one `err(key, message)`, which finds the key's line; all
//! problems are collected, so an operator fixes a file in one pass. The checks run in a
//! fixed order: errors on one line are reported in it.

mod names;
mod network;
mod paths;
mod rules;
mod timing;
mod web;

pub use network::dns_server;
pub use paths::user_state_dir;

use super::errors::{ConfigError, Source, locate};
use super::{Config, File, UDP_RECEIVE_BUFFER_MAX, UDP_RECEIVE_BUFFER_MIN};

/// Where a check reports: the dotted key and what is wrong with it.
type Report<'a> = dyn FnMut(&str, String) + 'a;

pub(super) fn resolve(
    source: Source,
    mut file: File,
    text: &str,
    errors: &mut Vec<ConfigError>,
) -> Config {
    names::fold_case(&mut file, text, errors);
    let mut err = |key: &str, message: String| {
        let path: Vec<&str> = key.split('.').collect();
        errors.push(ConfigError {
            line: locate(text, &path),
            key: key.to_string(),
            message,
        });
    };
    let root = nix::unistd::geteuid().is_root();
    let listen = network::check(&file, &mut err);
    timing::check(&file, &mut err);
    network::check_dns(&file, &mut err);
    let paths = paths::resolve(&file, root, &mut err);
    names::check_user_specs(&file, &mut err);
    let rules = rules::check(&file, &mut err);
    names::check_references(&file, rules.as_ref().ok(), &mut err);
    let (tls, ws_addr) = web::check(&file, listen.hbd_ip, listen.hbd_port, &mut err);
    Config {
        source,
        tls,
        hb_addr: (listen.hb_ip, listen.hb_port).into(),
        udp_receive_buffer: listen
            .udp_receive_buffer
            .clamp(UDP_RECEIVE_BUFFER_MIN, UDP_RECEIVE_BUFFER_MAX)
            as usize,
        hbd_addr: (listen.hbd_ip, listen.hbd_port).into(),
        ws_addr,
        state_dir: paths.state_dir,
        journal_dir: paths.journal_dir,
        control_socket: paths.control_socket,
        pidfile: paths.pidfile,
        logfile: paths.logfile,
        chroot_dir: paths.chroot_dir,
        shutdown_grace: std::time::Duration::from_secs_f64(file.shutdown_grace.unwrap_or(10.0)),
        file,
        text: text.to_string(),
    }
}
