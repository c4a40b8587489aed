//! SIGHUP and `hbctl reload`: the new file checked, its slices pushed with a generation,
//! every role's answer awaited, and what only a restart changes kept.

use super::*;

impl Supervisor {
    pub(super) fn reload(&mut self, reply: Option<oneshot::Sender<CtlResponse>>) {
        let answer = |reply: Option<oneshot::Sender<CtlResponse>>, response| {
            if let Some(reply) = reply {
                let _ = reply.send(response);
            }
        };
        if self.reload.is_some() {
            tracing::warn!("Reload already in progress; ignoring this one.");
            return answer(
                reply,
                CtlResponse::Error {
                    message: "a reload is already in progress".into(),
                },
            );
        }
        if matches!(self.phase, Phase::ShuttingDown { .. }) {
            return answer(
                reply,
                CtlResponse::Error {
                    message: "shutting down".into(),
                },
            );
        }
        let path = match &self.config().source {
            crate::config::Source::File(path) => path.clone(),
            crate::config::Source::Builtin => {
                tracing::info!("Running on the built-in default; nothing to reload.");
                return answer(
                    reply,
                    CtlResponse::Reloaded {
                        generation: self.generation,
                    },
                );
            }
        };
        let mut new = match Config::load(&path) {
            Ok(config) => config,
            Err(e) => {
                tracing::error!(
                    generation = self.generation,
                    "Reload failed; keeping the configuration in force:\n{e}"
                );
                return answer(
                    reply,
                    CtlResponse::Error {
                        message: e.to_string(),
                    },
                );
            }
        };
        carry_restart_only(self.config(), &mut new);
        let previous = Box::new(std::mem::replace(&mut self.prepared.config, new));
        self.generation += 1;
        let generation = self.generation;
        let waiting: BTreeSet<Role> = self
            .slots
            .values()
            .filter(|s| s.alive() && s.hello)
            .map(|s| s.role)
            .collect();
        for &role in &waiting {
            let msg = ToChild::Config {
                generation,
                config: self.config().slice(role),
            };
            self.send(role, &msg, None);
        }
        tracing::info!(generation, "Reloading.");
        self.reload = Some(Reload {
            generation,
            previous,
            waiting,
            failures: Vec::new(),
            reply,
        });
        self.finish_reload_if_done();
        self.after(RELOAD_TIMEOUT, Event::ReloadTimeout { generation });
    }

    /// Counts a reload acknowledgement (or a death, with generation 0) and finishes the reload
    /// when nobody is left to answer.
    pub(super) fn reload_ack(&mut self, role: Role, generation: u64, rejected: Option<String>) {
        let Some(reload) = self.reload.as_mut() else {
            return;
        };
        if generation == reload.generation || generation == 0 && !self.slots[&role].alive() {
            reload.waiting.remove(&role);
            if let Some(reason) = rejected {
                reload.failures.push(format!("{role}: {reason}"));
            }
        }
        self.finish_reload_if_done();
    }

    pub(super) fn finish_reload_if_done(&mut self) {
        if self.reload.as_ref().is_none_or(|r| !r.waiting.is_empty()) {
            return;
        }
        let Some(reload) = self.reload.take() else {
            return;
        };
        let response = if reload.failures.is_empty() {
            tracing::info!(
                generation = reload.generation,
                "Reload complete, generation {}.",
                reload.generation
            );
            CtlResponse::Reloaded {
                generation: reload.generation,
            }
        } else {
            // Some children run the new slice, one refused it: put everyone back on the
            // previous configuration, under a new generation so acknowledgements stay
            // unambiguous.
            self.prepared.config = *reload.previous;
            self.generation += 1;
            let generation = self.generation;
            for role in Role::ALL {
                if self.slots[&role].alive() && self.slots[&role].hello {
                    let msg = ToChild::Config {
                        generation,
                        config: self.config().slice(role),
                    };
                    self.send(role, &msg, None);
                }
            }
            let message = format!(
                "generation {} rejected by {}; rolled back to the previous configuration as generation {generation}",
                reload.generation,
                reload.failures.join("; ")
            );
            tracing::error!("Reload failed: {message}.");
            CtlResponse::Error { message }
        };
        if let Some(reply) = reload.reply {
            let _ = reply.send(response);
        }
    }

    pub(super) fn reload_timeout(&mut self, generation: u64) {
        let Some(reload) = self.reload.as_ref() else {
            return;
        };
        if reload.generation != generation {
            return;
        }
        let late: Vec<Role> = reload.waiting.iter().copied().collect();
        for role in late {
            tracing::error!(role = %role, generation, "No answer to the reload; killing child (it restarts on the new configuration).");
            self.kill(role, Signal::SIGKILL);
        }
    }
}

/// Settings that only take effect at start: a reload keeps the old value and says so.
fn carry_restart_only(old: &Config, new: &mut Config) {
    macro_rules! keep {
        ($($field:ident).+, $key:expr) => {
            if old.$($field).+ != new.$($field).+ {
                tracing::warn!(key = $key, "Changed, but takes effect only after a restart; keeping the running value.");
                new.$($field).+ = old.$($field).+.clone();
            }
        };
    }
    keep!(hb_addr, "hb_host/hb_port");
    keep!(udp_receive_buffer, "udp_receive_buffer");
    keep!(hbd_addr, "hbd_host/hbd_port");
    keep!(ws_addr, "ws_port");
    keep!(state_dir, "state_dir");
    keep!(journal_dir, "journal_dir");
    keep!(control_socket, "control_socket");
    keep!(pidfile, "pidfile");
    keep!(logfile, "logfile");
    keep!(chroot_dir, "chroot_dir");
    keep!(file.user, "user");
    keep!(file.group, "group");
    keep!(file.receiver_user, "receiver_user");
    keep!(file.engine_user, "engine_user");
    keep!(file.notifier_user, "notifier_user");
    keep!(file.dnsupdate_user, "dnsupdate_user");
    keep!(file.web_user, "web_user");
    keep!(file.libexec_dir, "libexec_dir");
    keep!(file.journal_enabled, "journal_enabled");
    keep!(file.journal_file, "journal_file");
    keep!(file.journal_max_size, "journal_max_size");
    keep!(file.journal_max_backups, "journal_max_backups");
}
