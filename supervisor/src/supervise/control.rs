//! `hbctl`'s requests, and the figures the web asks for: answered from the process table
//! or relayed to the role that knows.

use super::*;

impl Supervisor {
    pub(super) fn control(&mut self, request: CtlRequest, reply: oneshot::Sender<CtlResponse>) {
        match request {
            CtlRequest::Status {} => {
                let _ = reply.send(CtlResponse::Status {
                    status: self.status(),
                });
            }
            CtlRequest::Reload {} => self.reload(Some(reply)),
            CtlRequest::Hosts {} => self.ask(Role::Engine, Query::ListHosts {}, reply),
            CtlRequest::Counters { role } => self.ask(role, Query::Counters {}, reply),
            CtlRequest::Messages {} => self.ask(Role::Engine, Query::Messages {}, reply),
            CtlRequest::Command { host, command } => {
                self.ask(Role::Engine, Query::QueueCommand { host, command }, reply);
            }
            CtlRequest::Query { query } => self.ask(Role::Engine, query, reply),
            // A test notification waits for one attempt on each channel.
            CtlRequest::Notify { channel } => self.ask_within(
                Role::Notifier,
                Query::TestNotify { channel },
                reply,
                NOTIFY_TIMEOUT,
            ),
        }
    }

    /// Forgets the oldest questions past 1024 (ids only grow); an answer to one of them is
    /// late, not a lie.
    pub(super) fn prune_asked(&mut self) {
        while self.asked.len() > 1024 {
            if let Some((id, _)) = self.asked.pop_first() {
                self.asked_forgotten = self.asked_forgotten.max(id);
            }
        }
    }

    /// Gathers every other role's counters (each asked at once, all within
    /// [`STATS_TIMEOUT`]) and the restart counts, and sends them to the web.
    pub(super) fn stats(&mut self, re: u64) {
        // One gathering at a time; whoever asks meanwhile gets its result.
        self.stats_waiting.push(re);
        if self.stats_waiting.len() > 1 {
            if self.stats_waiting.len() > 1024 {
                self.stats_waiting.remove(1);
            }
            return;
        }
        let mut stats = ServerStats {
            roles: BTreeMap::new(),
            uptime_s: self.started.elapsed().as_secs(),
        };
        let mut waits = Vec::new();
        for role in Role::ALL {
            let slot = &self.slots[&role];
            stats.roles.insert(
                role,
                RoleStats {
                    running: slot.state == State::Running,
                    restarts: slot.restarts,
                    counters: BTreeMap::new(),
                },
            );
            // The web, which asks, adds its own counters.
            if role == Role::Web || !slot.configured() {
                continue;
            }
            let (id, rx) = self.queries.register();
            let query = ToChild::Request {
                id,
                query: Query::Counters {},
            };
            if self.send(role, &query, None) {
                self.asked.insert(id, role);
                waits.push((role, id, rx));
            } else {
                self.queries.complete(
                    id,
                    Answer::Error {
                        message: String::new(),
                    },
                );
            }
        }
        self.prune_asked();
        let queries = self.queries.clone();
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + STATS_TIMEOUT;
            for (role, id, rx) in waits {
                let left = deadline.saturating_duration_since(Instant::now());
                if let Ok(Answer::Counters { counters }) = queries.wait(id, rx, left).await
                    && let Some(r) = stats.roles.get_mut(&role)
                {
                    r.counters = counters;
                }
            }
            let _ = events.send(Event::StatsReady { stats });
        });
    }

    /// Relays a query to a child and its answer to `hbctl`, with a timeout.
    pub(super) fn ask(&mut self, role: Role, query: Query, reply: oneshot::Sender<CtlResponse>) {
        self.ask_within(role, query, reply, QUERY_TIMEOUT);
    }

    pub(super) fn ask_within(
        &mut self,
        role: Role,
        query: Query,
        reply: oneshot::Sender<CtlResponse>,
        timeout: Duration,
    ) {
        let (id, rx) = self.queries.register();
        let sent = self.slots[&role].configured()
            && self.send(role, &ToChild::Request { id, query }, None);
        if sent {
            self.asked.insert(id, role);
            self.prune_asked();
        } else {
            let message = format!("the {role} is not running");
            self.queries.complete(id, Answer::Error { message });
        }
        let queries = self.queries.clone();
        tokio::spawn(async move {
            let response = match queries.wait(id, rx, timeout).await {
                Ok(Answer::Hosts { hosts }) => CtlResponse::Hosts { hosts },
                Ok(Answer::Counters { counters }) => CtlResponse::Counters { role, counters },
                Ok(Answer::Messages { messages }) => CtlResponse::Messages { messages },
                Ok(Answer::Queued { id }) => CtlResponse::Queued { id },
                Ok(Answer::Error { message }) => CtlResponse::Error { message },
                Ok(answer) => CtlResponse::Answer { answer },
                Err(e) => CtlResponse::Error {
                    message: format!("{role}: {e}"),
                },
            };
            let _ = reply.send(response);
        });
    }

    pub(super) fn status(&self) -> ServerStatus {
        ServerStatus {
            pid: std::process::id(),
            version: VERSION.to_string(),
            generation: self.generation,
            uptime_s: self.started.elapsed().as_secs(),
            unprivileged: self.prepared.unprivileged,
            config: self.config().source.to_string(),
            children: self
                .slots
                .values()
                .map(|s| ChildStatus {
                    role: s.role,
                    pid: s.pid,
                    state: match s.state {
                        State::Starting | State::Configured => "starting",
                        State::Running => "running",
                        State::Backoff => "restarting",
                        State::Stopped => "stopped",
                    }
                    .into(),
                    uptime_s: s.pid.and(s.started_at).map(|t| t.elapsed().as_secs()),
                    restarts: s.restarts,
                    last_exit: s.last_exit.clone(),
                    generation: s.generation,
                    confinement: s.confinement.clone(),
                })
                .collect(),
        }
    }
}
