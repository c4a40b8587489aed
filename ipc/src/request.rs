//! Request ids and timeouts for request/response exchanges over one channel.
//!
//! The side that asks registers a request and gets an id and a receiver; the reader task of
//! the channel completes it when the answer with `re == id` arrives. A request that times out
//! is forgotten, so a late answer is dropped with a log line rather than delivered to the next
//! asker. When the channel closes, every pending request fails at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

/// Why a request got no answer.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The channel closed before the answer came.
    #[error("channel closed before the answer came")]
    Closed,
}

/// Pending requests of one channel; cheap to clone.
#[derive(Debug)]
pub struct Pending<A> {
    inner: Arc<Mutex<Inner<A>>>,
}

impl<A> Clone for Pending<A> {
    fn clone(&self) -> Self {
        Pending {
            inner: Arc::clone(&self.inner),
        }
    }
}

#[derive(Debug)]
struct Inner<A> {
    next_id: u64,
    waiting: HashMap<u64, oneshot::Sender<A>>,
}

impl<A> Default for Pending<A> {
    fn default() -> Self {
        Pending {
            inner: Arc::new(Mutex::new(Inner {
                next_id: first_id(),
                waiting: HashMap::new(),
            })),
        }
    }
}

impl<A> Pending<A> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner<A>> {
        // A poisoned lock only means another task panicked, and panics abort the process.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a request; send it with the returned id, then [`Pending::wait`].
    pub fn register(&self) -> (u64, oneshot::Receiver<A>) {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.waiting.insert(id, tx);
        (id, rx)
    }

    /// Delivers an answer; false when nobody waits for `re` (timed out, or never asked).
    pub fn complete(&self, re: u64, answer: A) -> bool {
        match self.lock().waiting.remove(&re) {
            Some(tx) => tx.send(answer).is_ok(),
            None => false,
        }
    }

    /// Fails every pending request (the channel closed).
    pub fn fail_all(&self) {
        self.lock().waiting.clear();
    }

    /// Number of requests awaiting an answer.
    pub fn len(&self) -> usize {
        self.lock().waiting.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets request `id` (it could not be sent).
    pub fn cancel(&self, id: u64) {
        self.lock().waiting.remove(&id);
    }

    /// Waits for the answer to `id` for at most `timeout`. The request is forgotten however
    /// the wait ends, also when the waiter is dropped (an HTTP client that hung up).
    pub async fn wait(
        &self,
        id: u64,
        rx: oneshot::Receiver<A>,
        timeout: Duration,
    ) -> Result<A, RequestError> {
        struct Forget<'a, A>(&'a Pending<A>, u64);
        impl<A> Drop for Forget<'_, A> {
            fn drop(&mut self) {
                self.0.cancel(self.1);
            }
        }
        let _forget = Forget(self, id);
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(RequestError::Closed),
            Err(_) => Err(RequestError::Timeout(timeout)),
        }
    }
}

/// Ids start at a point that differs per process, so an answer held for a process that has
/// since restarted cannot complete one of its successor's requests.
fn first_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // Spread by pid and time; below 2^62 so ids never wrap in practice.
    ((nanos ^ (u64::from(std::process::id()) << 32)) & ((1 << 62) - 1)) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn answers_reach_their_asker() {
        let pending = Pending::<&str>::new();
        let (a, rx_a) = pending.register();
        let (b, rx_b) = pending.register();
        assert_ne!(a, b);
        assert!(pending.complete(b, "second"));
        assert!(pending.complete(a, "first"));
        let t = Duration::from_secs(1);
        assert_eq!(pending.wait(a, rx_a, t).await, Ok("first"));
        assert_eq!(pending.wait(b, rx_b, t).await, Ok("second"));
        assert!(!pending.complete(a, "again"), "answered twice");
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_forgets_the_request() {
        let pending = Pending::<u32>::new();
        let (id, rx) = pending.register();
        let t = Duration::from_millis(50);
        assert_eq!(pending.wait(id, rx, t).await, Err(RequestError::Timeout(t)));
        assert!(pending.is_empty());
        assert!(!pending.complete(id, 1), "late answer must be dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_goes_away_forgets_its_request() {
        let pending = Pending::<u32>::new();
        let (id, rx) = pending.register();
        let wait = pending.wait(id, rx, Duration::from_secs(5));
        // Polled once, then dropped, as when an HTTP client hangs up mid-request.
        let _ = tokio::time::timeout(Duration::from_millis(1), wait).await;
        assert!(pending.is_empty());
        let (id, _rx) = pending.register();
        pending.cancel(id);
        assert!(pending.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn closing_fails_everything() {
        let pending = Pending::<u32>::new();
        let (id, rx) = pending.register();
        pending.fail_all();
        let r = pending.wait(id, rx, Duration::from_secs(1)).await;
        assert_eq!(r, Err(RequestError::Closed));
    }
}
