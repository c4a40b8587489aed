//! Commands queued for hosts: each rides in every ACK to its host until the host's result
//! names it; a result that comes again (the host resends it while the command still rides)
//! is recognised.

use std::collections::{BTreeMap, VecDeque};

use hb_ipc::edge::QueuedCommand;

/// Answered command ids remembered to recognise repeated results.
const ANSWERED_KEPT: usize = 4096;
/// Commands waiting for one host at most (they ride in every ACK to it).
const MAX_QUEUED: usize = 16;

#[derive(Debug)]
pub(super) struct Commands {
    waiting: BTreeMap<String, Vec<QueuedCommand>>,
    last_id: u64,
    /// Ids of commands whose result arrived, newest last.
    answered: VecDeque<u64>,
}

impl Commands {
    /// Ids are drawn from `now_ms`, so they stay unique across restarts.
    pub(super) fn new(now_ms: u64) -> Commands {
        Commands {
            waiting: BTreeMap::new(),
            last_id: now_ms,
            answered: VecDeque::new(),
        }
    }

    /// Queues `command` (`None`: an update) for `host`: its id and the host's queue now, or
    /// why not.
    pub(super) fn queue(
        &mut self,
        host: &str,
        command: Option<String>,
    ) -> Result<(u64, Vec<QueuedCommand>), String> {
        let queue = self.waiting.entry(host.to_string()).or_default();
        if queue.len() >= MAX_QUEUED {
            return Err(format!("{host} already has {MAX_QUEUED} commands waiting"));
        }
        self.last_id += 1;
        let id = self.last_id;
        queue.push(QueuedCommand { id, command });
        Ok((id, queue.clone()))
    }

    /// The host's result for `id` arrived: its queue without it, if it was waiting.
    pub(super) fn answered(&mut self, host: &str, id: u64) -> Option<Vec<QueuedCommand>> {
        let queue = self.waiting.get_mut(host)?;
        let before = queue.len();
        queue.retain(|c| c.id != id);
        (queue.len() != before).then(|| queue.clone())
    }

    /// Whether a result for `id` is the first (`was_waiting`: it just left a queue); a
    /// repeat is false.
    pub(super) fn first_result(&mut self, id: u64, was_waiting: bool) -> bool {
        if !was_waiting && self.answered.contains(&id) {
            return false;
        }
        self.answered.push_back(id);
        if self.answered.len() > ANSWERED_KEPT {
            self.answered.pop_front();
        }
        true
    }

    pub(super) fn forget(&mut self, host: &str) {
        self.waiting.remove(host);
    }

    /// Every host's queue, for a fresh receiver.
    pub(super) fn all(&self) -> BTreeMap<String, Vec<QueuedCommand>> {
        self.waiting.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_is_bounded_and_a_result_is_first_once() {
        let mut c = Commands::new(1000);
        let (id, queue) = c.queue("web1", Some("restart".into())).unwrap();
        assert_eq!((id, queue.len()), (1001, 1));
        for _ in 1..MAX_QUEUED {
            c.queue("web1", None).unwrap();
        }
        assert!(
            c.queue("web1", None)
                .unwrap_err()
                .contains("already has 16")
        );
        assert_eq!(
            c.answered("web1", id).map(|q| q.len()),
            Some(MAX_QUEUED - 1)
        );
        assert!(c.first_result(id, true));
        // Resent while the ACK still carried it: a repeat.
        assert_eq!(c.answered("web1", id), None);
        assert!(!c.first_result(id, false));
        // A result for a command another server queued is news once.
        assert!(c.first_result(7, false));
        c.forget("web1");
        assert!(c.all().is_empty());
    }
}
