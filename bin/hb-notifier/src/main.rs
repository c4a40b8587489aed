//! hb-notifier: started by hbsupervisor. Its channel work lands with its own issue; for now it
//! completes the handshake, holds its edge to the engine and exits on shutdown.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use hb_ipc::Role;
use hb_supervisor::child;

fn main() -> ExitCode {
    child::run(Role::Notifier, |events, control| {
        child::run_idle(Role::Notifier, events, control)
    })
}
