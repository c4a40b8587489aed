//! hb-notifier: started by hbsupervisor; the only process with channel secrets. Each
//! notification from the engine is routed (hb-notify), handed to one worker per channel
//! (`deliver.rs`), and reported done to the engine once every channel delivered it or gave
//! up. A notification repeated with the same id (after a restart of either process) is not
//! sent again: one in progress is ignored, one finished is answered from memory.

#![forbid(unsafe_code)]

mod deliver;
mod email;
mod exec;
mod transport;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::process::ExitCode;

use hb_child::link::Link;
use hb_child::{self as child, Control, ControlEvent, ControlSender, Passed, Taken};
use hb_ipc::Role;
use hb_ipc::config::NotifierConfig;
use hb_ipc::edge::{
    Answer, ChannelFailure, EngineToNotifier, Notification, NotifierToEngine, Query,
};
use hb_notify::route::Routes;
use tokio::sync::mpsc;

/// Finished notifications remembered to answer repeats.
const FINISHED_KEPT: usize = 65_536;

fn main() -> ExitCode {
    child::run(Role::Notifier, run)
}

/// A notification some channels still work on.
struct InFlight {
    waiting: BTreeSet<String>,
    delivered: Vec<String>,
    failed: Vec<ChannelFailure>,
}

#[derive(Default)]
struct Notifier {
    routes: Routes,
    /// Each user's channels as the file says, and as users chose through the API (which
    /// wins for the users the file has).
    file_users: BTreeMap<String, Vec<String>>,
    chosen: BTreeMap<String, hb_ipc::edge::ChosenChannels>,
    /// The file's channels, and those defined through the API (the file's win a name).
    file_channels: BTreeMap<String, hb_notify::Channel>,
    api_channels: BTreeMap<String, hb_notify::Channel>,
    base_url: Option<String>,
    /// One worker per channel, with the definition it was started for.
    workers: BTreeMap<String, (hb_notify::Channel, mpsc::UnboundedSender<deliver::Job>)>,
    in_flight: HashMap<u64, InFlight>,
    /// Finished ones, oldest first, with what was reported.
    finished: HashMap<u64, NotifierToEngine>,
    finished_order: VecDeque<u64>,
}

impl Notifier {
    fn configure(
        &mut self,
        config: NotifierConfig,
        results: &mpsc::UnboundedSender<deliver::Outcome>,
    ) -> Result<(), String> {
        self.file_channels =
            hb_notify::channel::parse_all(&config.channels).map_err(|e| e.to_string())?;
        self.file_users = config.users;
        self.routes.notify = config.notify;
        self.base_url = config.base_url;
        self.merge_channels(results);
        self.merge_users();
        Ok(())
    }

    /// What users changed through the API: their channel choices, and channels.
    fn api_changed(
        &mut self,
        chosen: BTreeMap<String, hb_ipc::edge::ChosenChannels>,
        channels: BTreeMap<String, serde_json::Value>,
        results: &mpsc::UnboundedSender<deliver::Outcome>,
    ) {
        self.chosen = chosen;
        // The engine checked each when it was made; one no longer valid (after an upgrade)
        // is left out, and said so.
        self.api_channels = channels
            .iter()
            .filter_map(
                |(name, def)| match hb_notify::Channel::parse_from_api(name, def) {
                    Ok(c) => Some((name.clone(), c)),
                    Err(e) => {
                        tracing::warn!("Channel defined through the API left out: {e}");
                        None
                    }
                },
            )
            .collect();
        self.merge_channels(results);
        self.merge_users();
    }

    /// The channels in force, each with a worker: one whose definition is unchanged keeps
    /// its worker (and its queue); a changed or removed one's old worker finishes what it
    /// holds.
    fn merge_channels(&mut self, results: &mpsc::UnboundedSender<deliver::Outcome>) {
        let mut channels = self.api_channels.clone();
        for (name, c) in &self.file_channels {
            if channels.insert(name.clone(), c.clone()).is_some() {
                tracing::warn!(
                    channel = name,
                    "A channel defined through the API has the name of one in the file; the file's is used."
                );
            }
        }
        let mut old = std::mem::take(&mut self.workers);
        self.workers = channels
            .values()
            .map(|c| {
                let worker = match old.remove(&c.name) {
                    Some((was, worker)) if was == *c => worker,
                    _ => deliver::spawn(c.clone(), results.clone()),
                };
                (c.name.clone(), (c.clone(), worker))
            })
            .collect();
        self.routes.channels = channels;
    }

    fn merge_users(&mut self) {
        self.routes.users = self
            .file_users
            .iter()
            .map(|(user, channels)| {
                // A choice the file has overtaken since (its channels changed) gives way.
                let channels = match self.chosen.get(user) {
                    Some(c) if c.base == *channels => &c.channels,
                    _ => channels,
                };
                (user.clone(), channels.clone())
            })
            .collect();
    }

    /// A notification from the engine; an answer to send at once, if any.
    fn notify(&mut self, n: Notification) -> Option<NotifierToEngine> {
        if self.in_flight.contains_key(&n.id) {
            tracing::debug!(id = n.id, "Already being delivered.");
            return None;
        }
        if let Some(done) = self.finished.get(&n.id) {
            tracing::info!(id = n.id, "Already delivered; not sent again.");
            return Some(done.clone());
        }
        let routed = self.routes.route(&n);
        // Channels that delivered it before a crash of this process are not sent again.
        let (already, channels): (Vec<String>, Vec<String>) = routed
            .into_iter()
            .partition(|c| n.done_channels.contains(c));
        tracing::info!(
            id = n.id,
            alert = n.alert,
            kind = n.kind,
            host = n.host,
            channels = channels.join(","),
            "Notification: {}",
            n.title
        );
        if channels.is_empty() {
            return Some(self.finish(
                n.id,
                InFlight {
                    waiting: BTreeSet::new(),
                    delivered: already,
                    failed: Vec::new(),
                },
            ));
        }
        let message = hb_notify::message::render(&n, self.base_url.as_deref());
        let mut flight = InFlight {
            waiting: BTreeSet::new(),
            delivered: already,
            failed: Vec::new(),
        };
        for name in channels {
            let job = deliver::Job {
                n: n.clone(),
                message: message.clone(),
            };
            let queued = self
                .workers
                .get(&name)
                .is_some_and(|(_, w)| w.send(job).is_ok());
            if queued {
                flight.waiting.insert(name);
            } else {
                flight.failed.push(ChannelFailure {
                    channel: name,
                    error: "no worker for this channel".into(),
                });
            }
        }
        if flight.waiting.is_empty() {
            return Some(self.finish(n.id, flight));
        }
        self.in_flight.insert(n.id, flight);
        None
    }

    /// A channel is done with a notification: what to tell the engine (at once that the
    /// channel delivered, and the report once all are done).
    fn outcome(&mut self, o: deliver::Outcome) -> Vec<NotifierToEngine> {
        let mut out = Vec::new();
        if o.result.is_ok() && self.in_flight.contains_key(&o.id) {
            out.push(NotifierToEngine::Delivered {
                id: o.id,
                channel: o.channel.clone(),
            });
        }
        out.extend(self.complete(o));
        out
    }

    fn complete(&mut self, o: deliver::Outcome) -> Option<NotifierToEngine> {
        let flight = self.in_flight.get_mut(&o.id)?;
        if !flight.waiting.remove(&o.channel) {
            return None;
        }
        match o.result {
            Ok(()) => flight.delivered.push(o.channel),
            Err(error) => flight.failed.push(ChannelFailure {
                channel: o.channel,
                error,
            }),
        }
        if !flight.waiting.is_empty() {
            return None;
        }
        let flight = self.in_flight.remove(&o.id)?;
        Some(self.finish(o.id, flight))
    }

    /// `hbctl notify`: one attempt on each chosen channel, then the answer: every outcome,
    /// an error if any failed.
    fn test(&self, re: u64, channel: Option<String>, control: ControlSender) {
        let channels: Vec<hb_notify::Channel> = match &channel {
            Some(name) => match self.routes.channels.get(name) {
                Some(c) => vec![c.clone()],
                None => {
                    control.answer(
                        re,
                        Answer::Error {
                            message: format!("no channel {name:?}"),
                        },
                    );
                    return;
                }
            },
            None => self.routes.channels.values().cloned().collect(),
        };
        if channels.is_empty() {
            control.answer(
                re,
                Answer::Error {
                    message: "no channels are configured".into(),
                },
            );
            return;
        }
        let now = hb_ipc::now_ms();
        let n = Notification {
            id: now.saturating_mul(1000),
            alert: "*/test".into(),
            kind: "test".into(),
            level: "WARNING".into(),
            host: "*".into(),
            title: "[TEST] hb test notification".into(),
            text: "This is a test notification from hb (hbctl notify).".into(),
            created_ms: now,
            users: Vec::new(),
            channels: Vec::new(),
            alerted: Vec::new(),
            done_channels: Vec::new(),
        };
        let message = hb_notify::message::render(&n, self.base_url.as_deref());
        tokio::spawn(async move {
            // All at once: a dead channel does not hold up the others' answers.
            let mut attempts = tokio::task::JoinSet::new();
            for mut ch in channels {
                // A test must answer within hbctl's patience.
                ch.timeout = ch.timeout.min(std::time::Duration::from_secs(20));
                let job = deliver::Job {
                    n: n.clone(),
                    message: message.clone(),
                };
                attempts.spawn(async move {
                    let outcome = deliver::once(&ch, &job).await;
                    (ch.name, outcome)
                });
            }
            let mut lines = Vec::new();
            let mut failed = false;
            while let Some(Ok((name, outcome))) = attempts.join_next().await {
                match outcome {
                    hb_notify::retry::Attempt::Delivered => {
                        lines.push(format!("{name}: delivered"));
                    }
                    hb_notify::retry::Attempt::Transient { error, .. }
                    | hb_notify::retry::Attempt::Permanent { error } => {
                        failed = true;
                        lines.push(format!("{name}: failed: {error}"));
                    }
                }
            }
            lines.sort();
            let message = lines.join("\n");
            let answer = if failed {
                Answer::Error { message }
            } else {
                Answer::Done { message }
            };
            control.answer(re, answer);
        });
    }

    fn finish(&mut self, id: u64, flight: InFlight) -> NotifierToEngine {
        let done = NotifierToEngine::Done {
            id,
            delivered: flight.delivered,
            failed: flight.failed,
        };
        self.finished.insert(id, done.clone());
        self.finished_order.push_back(id);
        if self.finished_order.len() > FINISHED_KEPT
            && let Some(old) = self.finished_order.pop_front()
        {
            self.finished.remove(&old);
        }
        done
    }
}

/// The notifier as the supervisor sees it, for one control event.
struct NotifierRole<'a> {
    notifier: &'a mut Notifier,
    engine: &'a Link<NotifierToEngine>,
    inbound: &'a mpsc::Sender<EngineToNotifier>,
    results: &'a mpsc::UnboundedSender<deliver::Outcome>,
}

impl Control for NotifierRole<'_> {
    const ROLE: Role = Role::Notifier;
    const REFUSED_QUERY: &'static str = "the notifier answers only test notifications";
    type Slice = NotifierConfig;

    fn configure(&mut self, config: NotifierConfig) -> Result<(), String> {
        self.notifier.configure(config, self.results)
    }

    fn socket(&mut self, passed: Passed, control: &ControlSender) -> Taken {
        passed.link(Role::Engine, self.engine, self.inbound, control)
    }

    fn request(&mut self, id: u64, query: Query, control: &ControlSender) -> bool {
        match query {
            Query::TestNotify { channel } => {
                self.notifier.test(id, channel, control.clone());
                true
            }
            _ => false,
        }
    }
}

async fn run(
    mut events: mpsc::UnboundedReceiver<ControlEvent>,
    control: ControlSender,
) -> anyhow::Result<()> {
    let engine = Link::<NotifierToEngine>::new(Role::Engine);
    let (inbound_tx, mut inbound) = mpsc::channel::<EngineToNotifier>(1024);
    let (results_tx, mut results) = mpsc::unbounded_channel::<deliver::Outcome>();
    let mut notifier = Notifier::default();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                None => return Ok(()),
                Some(event) => {
                    let mut role = NotifierRole {
                        notifier: &mut notifier,
                        engine: &engine,
                        inbound: &inbound_tx,
                        results: &results_tx,
                    };
                    child::dispatch(&mut role, event, &control).await?;
                }
            },
            Some(msg) = inbound.recv() => match msg {
                EngineToNotifier::Notify { notification } => {
                    if let Some(done) = notifier.notify(notification) {
                        engine.send(done);
                    }
                }
                EngineToNotifier::FromApi { users, channels } => {
                    notifier.api_changed(users, channels, &results_tx);
                }
            },
            Some(outcome) = results.recv() => {
                for report in notifier.outcome(outcome) {
                    engine.send(report);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_channel_choices_replace_the_files_for_known_users() {
        let mut n = Notifier {
            file_users: [
                ("alice".to_string(), vec!["mail".to_string()]),
                ("bob".to_string(), vec!["sms".to_string()]),
            ]
            .into(),
            ..Notifier::default()
        };
        n.merge_users();
        assert_eq!(n.routes.users["alice"], ["mail"]);
        let choice = |channels: &str, base: &str| hb_ipc::edge::ChosenChannels {
            channels: vec![channels.to_string()],
            base: vec![base.to_string()],
        };
        let (results, _) = mpsc::unbounded_channel();
        n.api_changed(
            [
                ("alice".to_string(), choice("sms", "mail")),
                ("bob".to_string(), choice("mail", "pager")),
                ("ghost".to_string(), choice("mail", "mail")),
            ]
            .into(),
            BTreeMap::new(),
            &results,
        );
        assert_eq!(n.routes.users["alice"], ["sms"]);
        assert_eq!(
            n.routes.users["bob"],
            ["sms"],
            "the file changed bob's since: it wins"
        );
        assert!(
            !n.routes.users.contains_key("ghost"),
            "only the file's users"
        );
    }

    #[tokio::test]
    async fn channels_from_the_api_join_the_files_which_win_a_name() {
        let hook = |url: &str| serde_json::json!({"type": "webhook", "url": url});
        let (results, _) = mpsc::unbounded_channel();
        let mut n = Notifier::default();
        n.configure(
            hb_ipc::config::NotifierConfig {
                channels: [("shared".to_string(), hook("https://file.example/"))].into(),
                ..Default::default()
            },
            &results,
        )
        .unwrap();
        let api = |pairs: &[(&str, serde_json::Value)]| -> BTreeMap<String, serde_json::Value> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        n.api_changed(
            BTreeMap::new(),
            api(&[
                ("mine", hook("https://api.example/")),
                ("shared", hook("https://api.example/shadowed")),
                (
                    "runs",
                    serde_json::json!({"type": "exec", "command": ["/bin/true"]}),
                ),
            ]),
            &results,
        );
        let names: Vec<&String> = n.routes.channels.keys().collect();
        assert_eq!(names, ["mine", "shared"], "exec is the file's alone");
        let hb_notify::Kind::Webhook { url, .. } = &n.routes.channels["shared"].kind else {
            panic!("not a webhook");
        };
        assert_eq!(url.expose(), "https://file.example", "the file's wins");
        // An unchanged channel keeps its worker (and what it holds); a changed one gets a
        // new one.
        let before = n.workers["mine"].1.clone();
        n.api_changed(
            BTreeMap::new(),
            api(&[("mine", hook("https://api.example/"))]),
            &results,
        );
        assert!(n.workers["mine"].1.same_channel(&before));
        n.api_changed(
            BTreeMap::new(),
            api(&[("mine", hook("https://api.example/v2"))]),
            &results,
        );
        assert!(!n.workers["mine"].1.same_channel(&before));
    }
}
