//! hb-dnsupdate: started by hbsupervisor; keeps dynamic hosts' records current by running
//! `nsupdate`, and is the only process that knows where the TSIG key is. The engine sends
//! what each host's records should be; every name is checked before it reaches a script
//! (`lib.rs`), wishes are coalesced per name, a few names are updated at once, a failure is
//! retried with backoff, and every outcome goes back to the engine, which makes it an event.

#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_child::link::Link;
use hb_child::{self as child, Control, ControlEvent, ControlSender, Passed, Taken};
use hb_dnsupdate::{Pending, Queue, Target, Wish, record_name, script};
use hb_ipc::Role;
use hb_ipc::config::DnsupdateConfig;
use hb_ipc::edge::{DnsOutcome, DnsWish, DnsupdateToEngine, EngineToDnsupdate};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Names updated at once: enough for a restart of thousands of dynamic hosts, few enough not
/// to flood the DNS server.
const PARALLEL: usize = 4;

fn main() -> ExitCode {
    child::run(Role::Dnsupdate, run)
}

/// How one run ended: the name, its wish, and the failure if any.
type Finished = (String, Pending, Option<String>);

struct Updater {
    config: Option<Arc<DnsupdateConfig>>,
    queue: Queue,
    clock: Instant,
    engine: Link<DnsupdateToEngine>,
    inbound: mpsc::Sender<EngineToDnsupdate>,
}

impl Control for Updater {
    const ROLE: Role = Role::Dnsupdate;
    const REFUSED_QUERY: &'static str =
        "the DNS updater answers no queries; ask the engine (hbctl dns HOST)";
    type Slice = DnsupdateConfig;

    fn configure(&mut self, config: DnsupdateConfig) -> Result<(), String> {
        if let Some(key) = &config.rndc_key
            && let Err(e) = std::fs::File::open(key)
        {
            // Reads are governed by ordinary permissions: the key must be readable by this
            // role's user, and by no other role's.
            tracing::error!(
                key = %key.display(),
                "Cannot read rndc_key: {e}; every update fails until dnsupdate_user can read it."
            );
        }
        self.config = Some(Arc::new(config));
        // What failed may work now.
        self.queue.retry_now();
        Ok(())
    }

    fn socket(&mut self, passed: Passed, control: &ControlSender) -> Taken {
        passed.link(Role::Engine, &self.engine, &self.inbound, control)
    }
}

impl Updater {
    fn now(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn report(&self, host: &str, outcome: DnsOutcome, text: String) {
        match outcome {
            DnsOutcome::Updated => tracing::info!(host, "{text}"),
            DnsOutcome::Failed | DnsOutcome::Refused => tracing::warn!(host, "{text}"),
        }
        self.engine.send(DnsupdateToEngine::Outcome {
            host: host.to_string(),
            outcome,
            text,
        });
    }

    /// Queues the engine's wishes, one per dynamic domain; refuses what cannot be a record.
    fn want(&mut self, wishes: Vec<DnsWish>) {
        let Some(config) = self.config.clone() else {
            return;
        };
        for w in wishes {
            let wish = match w.address.map(|a| a.to_canonical()) {
                None => Wish::Absent,
                Some(a) if usable(a) => Wish::Address(a),
                Some(a) => {
                    let text = format!(
                        "DNS update of {} refused: {a} cannot be its address",
                        w.host
                    );
                    self.report(&w.host, DnsOutcome::Refused, text);
                    continue;
                }
            };
            for domain in &config.dyndomains {
                match record_name(&w.host, domain) {
                    Ok(name) => self
                        .queue
                        .want(name, w.host.clone(), wish.clone(), w.why.clone()),
                    Err(e) => {
                        // Bounded like any host name; the engine files the event under it.
                        let host: String = w.host.chars().take(253).collect();
                        self.report(
                            &host,
                            DnsOutcome::Refused,
                            format!("DNS update refused: {e}"),
                        );
                    }
                }
            }
        }
    }

    /// Starts what is ready, up to [`PARALLEL`] runs.
    fn start_ready(&mut self, runs: &mut JoinSet<Finished>) {
        let Some(config) = self.config.clone() else {
            return;
        };
        while self.queue.running() < PARALLEL {
            let Some((name, pending)) = self.queue.take_ready(self.now()) else {
                break;
            };
            let config = config.clone();
            runs.spawn(async move {
                let failure = nsupdate(&config, &name, &pending.wish).await;
                (name, pending, failure)
            });
        }
    }

    fn finished(&mut self, (name, pending, failure): Finished) {
        let host = pending.host.clone();
        match failure {
            None => {
                let what = match &pending.wish {
                    Wish::Address(a) if a.is_ipv4() => format!("{name} A {a}"),
                    Wish::Address(a) => format!("{name} AAAA {a}"),
                    Wish::Absent => format!("{name} removed"),
                };
                let text = format!("DNS: {what} ({})", pending.why);
                self.queue.finished(&name, pending, true, self.now());
                self.report(&host, DnsOutcome::Updated, text);
            }
            Some(why) => {
                let tries = pending.failures + 1;
                let now = self.now();
                let wait = self.queue.finished(&name, pending, false, now).unwrap_or(0);
                let text = format!(
                    "DNS update of {name} failed (try {tries}): {why}; next try in {} s",
                    wait / 1000
                );
                self.report(&host, DnsOutcome::Failed, text);
            }
        }
    }
}

/// Whether a record may point at `a`: not unspecified, multicast or broadcast.
fn usable(a: IpAddr) -> bool {
    !a.is_unspecified() && !a.is_multicast() && a != IpAddr::V4(std::net::Ipv4Addr::BROADCAST)
}

/// Runs nsupdate for one name; the failure, if any.
async fn nsupdate(config: &DnsupdateConfig, name: &str, wish: &Wish) -> Option<String> {
    let target = Target {
        server: config.server.clone(),
        zone: config.zone.clone(),
        ttl: config.ttl,
    };
    let input = script(&target, name, wish);
    // The key by file, never its secret in argv.
    let mut args: Vec<&Path> = Vec::new();
    if let Some(key) = &config.rndc_key {
        args.extend([Path::new("-k"), key.as_path()]);
    }
    let timeout = Duration::from_millis(config.timeout_ms);
    let ended =
        hb_child::program::run(&config.nsupdate_bin, &args, &[], input.as_bytes(), timeout).await;
    ended.failure(&config.nsupdate_bin, timeout)
}

async fn run(
    mut events: mpsc::UnboundedReceiver<ControlEvent>,
    control: ControlSender,
) -> anyhow::Result<()> {
    let (inbound_tx, mut inbound) = mpsc::channel::<EngineToDnsupdate>(1024);
    let mut updater = Updater {
        config: None,
        queue: Queue::default(),
        clock: Instant::now(),
        engine: Link::new(Role::Engine),
        inbound: inbound_tx,
    };
    let mut runs = JoinSet::<Finished>::new();
    loop {
        updater.start_ready(&mut runs);
        // With every slot busy, the next wake-up is a run ending.
        let wake = (updater.queue.running() < PARALLEL)
            .then(|| updater.queue.next_due())
            .flatten()
            .map(|at| updater.clock + Duration::from_millis(at));
        tokio::select! {
            event = events.recv() => match event {
                None => return Ok(()),
                Some(event) => child::dispatch(&mut updater, event, &control).await?,
            },
            // Matched inside, not in the pattern: a refused pattern would leave the branch
            // off until another branch fires.
            Some(msg) = inbound.recv() => match msg {
                EngineToDnsupdate::Update { wishes } => updater.want(wishes),
            },
            Some(done) = runs.join_next() => match done {
                Ok(finished) => updater.finished(finished),
                Err(e) => tracing::error!("An update task failed: {e}"),
            },
            () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now).into()), if wake.is_some() => {}
        }
    }
}
