//! One worker per channel: notifications for a channel go out one after another, each tried
//! until delivered or given up (hb-notify's retry policy), so a dead channel holds up only
//! itself. Each outcome goes back to the main loop, which reports to the engine once every
//! channel of a notification is done.

use std::time::Instant;

use hb_ipc::edge::Notification;
use hb_notify::message::Message;
use hb_notify::retry::{self, Attempt, Next};
use hb_notify::{Channel, Kind};
use tokio::sync::mpsc;

use crate::{email, exec, transport};

/// A notification for one channel.
#[derive(Debug)]
pub struct Job {
    /// The notification.
    pub n: Notification,
    /// Its text.
    pub message: Message,
}

/// How a notification fared on one channel.
#[derive(Debug)]
pub struct Outcome {
    /// The notification.
    pub id: u64,
    /// The channel.
    pub channel: String,
    /// Delivered, or why not (never a secret).
    pub result: Result<(), String>,
}

/// Starts the worker for `channel`; jobs go into the returned sender.
pub fn spawn(
    channel: Channel,
    results: mpsc::UnboundedSender<Outcome>,
) -> mpsc::UnboundedSender<Job> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            let result = deliver(&channel, &job).await;
            match &result {
                Ok(()) => tracing::info!(channel = channel.name, id = job.n.id, "Delivered."),
                Err(e) => tracing::warn!(
                    channel = channel.name,
                    id = job.n.id,
                    error = e,
                    "Delivery failed for good."
                ),
            }
            let outcome = Outcome {
                id: job.n.id,
                channel: channel.name.clone(),
                result,
            };
            if results.send(outcome).is_err() {
                return;
            }
        }
    });
    tx
}

async fn deliver(channel: &Channel, job: &Job) -> Result<(), String> {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = once(channel, job).await;
        let error = match &outcome {
            Attempt::Transient { error, .. } | Attempt::Permanent { error } => error.clone(),
            Attempt::Delivered => String::new(),
        };
        match retry::next(attempt, outcome, started.elapsed(), channel.retry_for) {
            Next::Delivered => return Ok(()),
            Next::GiveUp(error) => return Err(error),
            Next::Wait(wait) => {
                tracing::debug!(
                    channel = channel.name,
                    id = job.n.id,
                    attempt,
                    error,
                    wait_s = wait.as_secs_f64(),
                    "Retrying."
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// One attempt, no retries (for test notifications).
pub async fn once(channel: &Channel, job: &Job) -> Attempt {
    match &channel.kind {
        Kind::Exec { argv } => exec::run(argv, &job.n, &job.message, channel.timeout).await,
        Kind::Email {
            server,
            port,
            security,
            user,
            password,
            sender,
            recipients,
        } => {
            let smtp = email::Smtp {
                server,
                port: *port,
                security: *security,
                user: user.as_deref(),
                password: password.as_ref(),
                sender,
                recipients,
            };
            email::send(&smtp, &job.message, channel.timeout).await
        }
        Kind::SignalCli {
            cli_path,
            user,
            recipient,
        } => {
            // signal-cli -a ACCOUNT send -m MESSAGE RECIPIENT
            let text = format!("{}\n{}", job.message.title, job.message.body);
            let argv = [
                cli_path.clone(),
                "-a".into(),
                user.clone(),
                "send".into(),
                "-m".into(),
                text,
                recipient.clone(),
            ];
            exec::run(&argv, &job.n, &job.message, channel.timeout).await
        }
        _ => {
            for request in hb_notify::request::requests(channel, &job.n, &job.message) {
                let outcome = transport::send(&request, channel.timeout).await;
                if outcome != Attempt::Delivered {
                    return outcome;
                }
            }
            Attempt::Delivered
        }
    }
}
