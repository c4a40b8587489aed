//! Data channels between children ("edges"), child side.
//!
//! A [`Link`] is the sending end towards one peer. Messages go into a bounded queue; a writer
//! task drains it into the current socket, what is waiting in one write. When the peer dies
//! the socket fails, the lines not yet written are kept, and the writer waits for the
//! supervisor to pass a fresh socket ([`Link::attach`]): messages wait for a restarting peer
//! instead of being lost. Only when the queue is full are messages dropped, and each drop is
//! counted.
//!
//! Frames a peer sends are decoded by [`spawn_reader`]; a frame that is too long or not valid
//! for the direction is a protocol violation: the channel is closed and the supervisor told,
//! which restarts the offending peer.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use hb_ipc::Role;
use hb_ipc::codec::{EDGE_MAX_LINE, ENGINE_MAX_LINE, JsonLines, edge_limit};
use hb_ipc::control::PassedSocket;
use hb_ipc::edge::Silent;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use crate::role::{ControlSender, Passed, Taken};

/// Messages waiting for a peer, per link.
pub const LINK_QUEUE: usize = 8192;

/// Sending end of an edge; cheap to clone.
#[derive(Debug)]
pub struct Link<Out> {
    peer: Role,
    queue: mpsc::Sender<Out>,
    sockets: mpsc::UnboundedSender<OwnedWriteHalf>,
    dropped: Arc<AtomicU64>,
}

impl<Out> Clone for Link<Out> {
    fn clone(&self) -> Self {
        Link {
            peer: self.peer,
            queue: self.queue.clone(),
            sockets: self.sockets.clone(),
            dropped: Arc::clone(&self.dropped),
        }
    }
}

impl<Out: Serialize + Clone + Send + 'static> Link<Out> {
    /// A link to `peer` with no socket yet; messages queue until one is attached.
    pub fn new(peer: Role) -> Link<Out> {
        let (queue, rx) = mpsc::channel(LINK_QUEUE);
        let (sockets, sockets_rx) = mpsc::unbounded_channel();
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(write_loop(peer, rx, sockets_rx, Arc::clone(&dropped)));
        Link {
            peer,
            queue,
            sockets,
            dropped,
        }
    }

    /// Queues a message without waiting; false (and counted) when the queue is full.
    pub fn send(&self, msg: Out) -> bool {
        match self.queue.try_send(msg) {
            Ok(()) => true,
            Err(_) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(peer = %self.peer, dropped = n, "Queue to peer full; dropping messages.");
                }
                false
            }
        }
    }

    /// Free places in the queue.
    pub fn room(&self) -> usize {
        self.queue.capacity()
    }

    /// Waits until the queue has room for `n` messages (at once if it has). They stay free
    /// for a caller that is the link's only sender; a closed queue never has room.
    pub async fn room_for(&self, n: usize) {
        match self.queue.reserve_many(n).await {
            // Given back at once: the caller only wanted to know.
            Ok(permits) => drop(permits),
            Err(_) => std::future::pending().await,
        }
    }

    /// Messages dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Replaces the socket to the peer.
    pub fn attach(&self, writer: OwnedWriteHalf) {
        let _ = self.sockets.send(writer);
    }
}

/// Bytes of encoded messages gathered before one write: enough that a stream of small
/// messages costs one system call (and one wake-up of the peer) per few hundred.
const WRITE_BATCH: usize = 64 * 1024;

async fn write_loop<Out: Serialize>(
    peer: Role,
    mut queue: mpsc::Receiver<Out>,
    mut sockets: mpsc::UnboundedReceiver<OwnedWriteHalf>,
    dropped: Arc<AtomicU64>,
) {
    use tokio::io::AsyncWriteExt;
    // Only the engine has peers other than the engine.
    let limit = match peer {
        Role::Engine => EDGE_MAX_LINE,
        peer => edge_limit(Role::Engine, peer),
    };
    let mut socket: Option<OwnedWriteHalf> = None;
    // Lines taken from the queue and not yet written whole. When the channel fails they go to
    // the next one, the line that was cut from its start: the new peer never sees half a
    // line. A line the kernel took whole is gone with the dead peer if it was not read yet,
    // as with any socket; the cut line may reach the new peer after the old one read it.
    let mut lines: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
    loop {
        let Some(current) = socket.as_mut() else {
            match sockets.recv().await {
                Some(w) => socket = Some(w),
                None => return,
            }
            continue;
        };
        if lines.is_empty() {
            let first = tokio::select! {
                biased;
                w = sockets.recv() => match w {
                    Some(w) => {
                        socket = Some(w);
                        continue;
                    }
                    // Every Link handle is gone: nobody can queue or attach any more.
                    None => return,
                },
                msg = queue.recv() => match msg {
                    Some(msg) => msg,
                    None => return,
                },
            };
            encode(peer, &first, limit, &mut lines, &dropped);
            // What else is waiting goes in the same write.
            while lines.len() < WRITE_BATCH {
                match queue.try_recv() {
                    Ok(msg) => encode(peer, &msg, limit, &mut lines, &dropped),
                    Err(_) => break,
                }
            }
            if lines.is_empty() {
                continue;
            }
        }
        let mut written = 0;
        let failed = loop {
            if written == lines.len() {
                break None;
            }
            match current.write(&lines[written..]).await {
                Ok(0) => break Some(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) => break Some(e),
            }
        };
        match failed {
            None => {
                lines.clear();
                // A host list for the web may be megabytes; do not hold that much for good.
                if lines.capacity() > 4 * WRITE_BATCH {
                    lines.shrink_to(WRITE_BATCH);
                }
            }
            Some(e) => {
                tracing::info!(peer = %peer, error = %e, "Channel to peer lost; holding messages until it is back.");
                let whole = lines[..written]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                lines.drain(..whole);
                socket = None;
            }
        }
    }
}

/// Appends `msg` as one line; a message that cannot be framed (over the limit) is dropped
/// and counted: retrying it on another channel would fail forever and block everything
/// behind it.
fn encode<Out: Serialize>(
    peer: Role,
    msg: &Out,
    limit: usize,
    lines: &mut Vec<u8>,
    dropped: &AtomicU64,
) {
    if let Err(e) = hb_ipc::codec::encode_line_into(msg, limit, lines) {
        let n = dropped.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::error!(peer = %peer, error = %e, dropped = n, "Message cannot be sent; dropped.");
    }
}

/// Splits a fresh edge socket, passed by the supervisor: attaches its write half to `link`
/// and decodes its read half into `inbound`.
pub fn connect<In, Out>(
    fd: OwnedFd,
    link: &Link<Out>,
    inbound: mpsc::Sender<In>,
    control: ControlSender,
) -> std::io::Result<()>
where
    In: DeserializeOwned + Send + 'static,
    Out: Serialize + Clone + Send + 'static,
{
    let (read, write) = crate::role::unix_stream(fd)?.into_split();
    link.attach(write);
    spawn_reader(link.peer, read, inbound, control);
    Ok(())
}

impl Passed {
    /// Links the role to `peer` through this socket if it is that peer's edge; any other
    /// socket is given back.
    pub fn link<In, Out>(
        self,
        peer: Role,
        link: &Link<Out>,
        inbound: &mpsc::Sender<In>,
        control: &ControlSender,
    ) -> Taken
    where
        In: DeserializeOwned + Send + 'static,
        Out: Serialize + Clone + Send + 'static,
    {
        if self.socket != (PassedSocket::Peer { role: peer }) {
            return Ok(Some(self.socket));
        }
        connect(self.fd, link, inbound.clone(), control.clone())?;
        Ok(None)
    }
}

/// Decodes frames from `peer` into `inbound` until the channel closes or misbehaves.
pub fn spawn_reader<In: DeserializeOwned + Send + 'static>(
    peer: Role,
    read: OwnedReadHalf,
    inbound: mpsc::Sender<In>,
    control: ControlSender,
) {
    tokio::spawn(async move {
        // What the engine sends may be large (host lists); the engine is trusted with it.
        let limit = match peer {
            Role::Engine => ENGINE_MAX_LINE,
            _ => EDGE_MAX_LINE,
        };
        let mut frames = FramedRead::new(read, JsonLines::<In, Silent>::new(limit));
        while let Some(frame) = frames.next().await {
            match frame {
                Ok(msg) => {
                    if inbound.send(msg).await.is_err() {
                        return;
                    }
                }
                // A peer that dies with our data unread resets the channel: that is an
                // exit the supervisor sees for itself, not a violation to punish.
                Err(hb_ipc::codec::CodecError::Io(e)) => {
                    tracing::debug!(peer = %peer, error = %e, "Channel from peer lost.");
                    return;
                }
                Err(e) => {
                    tracing::error!(peer = %peer, error = %e, "Protocol violation on channel from peer; closing it.");
                    control.peer_failed(peer, e.to_string());
                    return;
                }
            }
        }
        tracing::debug!(peer = %peer, "Channel from peer closed.");
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_ipc::control::FromChild;
    use hb_ipc::edge::ReceiverToEngine;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixStream;

    fn heartbeat(n: u64) -> ReceiverToEngine {
        received(format!("h{n}"))
    }

    fn received(host: String) -> ReceiverToEngine {
        ReceiverToEngine::Received {
            host,
            source: "127.0.0.1:1".parse().unwrap(),
            received_ms: 1,
            signed: false,
            message: serde_json::json!({"ID": "HTB", "name": "h"}).into(),
        }
    }

    async fn read_line(stream: UnixStream) -> String {
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await.unwrap();
        line
    }

    #[tokio::test]
    async fn messages_wait_for_a_restarted_peer() {
        let link = Link::<ReceiverToEngine>::new(Role::Engine);
        // Queued before any channel exists.
        assert!(link.send(heartbeat(1)));
        let (ours, theirs) = UnixStream::pair().unwrap();
        link.attach(ours.into_split().1);
        assert!(read_line(theirs).await.contains("\"h1\""));
        // The peer dies (its end is closed above); the next message must survive.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(link.send(heartbeat(2)));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let (ours, theirs) = UnixStream::pair().unwrap();
        link.attach(ours.into_split().1);
        let line = read_line(theirs).await;
        assert!(line.contains("\"h2\""), "{line}");
        assert_eq!(link.dropped(), 0);
    }

    #[tokio::test]
    async fn an_unsendable_message_is_dropped_not_retried_forever() {
        let link = Link::<ReceiverToEngine>::new(Role::Engine);
        let (ours, theirs) = UnixStream::pair().unwrap();
        link.attach(ours.into_split().1);
        let huge = received("x".repeat(EDGE_MAX_LINE));
        assert!(link.send(huge));
        assert!(link.send(heartbeat(2)));
        let line = read_line(theirs).await;
        assert!(line.contains("\"h2\""), "{line}");
        assert_eq!(link.dropped(), 1);
    }

    #[tokio::test]
    async fn the_engine_may_send_the_web_more_than_the_edge_limit() {
        // A host list of thousands of hosts is one answer.
        let link = Link::<ReceiverToEngine>::new(Role::Web);
        let (ours, theirs) = UnixStream::pair().unwrap();
        link.attach(ours.into_split().1);
        assert!(link.send(received("x".repeat(2 * EDGE_MAX_LINE))));
        let line = read_line(theirs).await;
        assert!(line.len() > 2 * EDGE_MAX_LINE);
        assert_eq!(link.dropped(), 0);
    }

    #[tokio::test]
    async fn room_is_awaited_not_polled() {
        let link = Link::<ReceiverToEngine>::new(Role::Engine);
        while link.send(heartbeat(0)) {}
        assert_eq!(link.room(), 0);
        // Full: nothing frees a place until a peer reads.
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), link.room_for(8)).await;
        assert!(waiting.is_err(), "room with a full queue");
        let (ours, theirs) = UnixStream::pair().unwrap();
        let (_read, write) = ours.into_split();
        link.attach(write);
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(theirs).lines();
            while lines.next_line().await.ok().flatten().is_some() {}
        });
        tokio::time::timeout(std::time::Duration::from_secs(10), link.room_for(8))
            .await
            .expect("room once the peer reads");
        assert!(link.room() >= 8);
        reader.abort();
    }

    #[tokio::test]
    async fn full_queue_drops_and_counts() {
        let link = Link::<ReceiverToEngine>::new(Role::Engine);
        for n in 0..LINK_QUEUE as u64 {
            assert!(link.send(heartbeat(n)));
        }
        assert!(!link.send(heartbeat(0)));
        assert_eq!(link.dropped(), 1);
    }

    #[tokio::test]
    async fn peer_violations_are_reported_to_the_supervisor() {
        for garbage in [
            &b"not json\n"[..],
            b"{\"type\":\"heartbeat_received\"}\n",
            &vec![b'x'; EDGE_MAX_LINE + 10],
        ] {
            let (control, mut reports) = ControlSender::detached();
            let (ours, mut theirs) = UnixStream::pair().unwrap();
            let (inbound, mut received) = mpsc::channel::<ReceiverToEngine>(4);
            spawn_reader(Role::Receiver, ours.into_split().0, inbound, control);
            theirs.write_all(garbage).await.unwrap();
            match reports.recv().await {
                Some(FromChild::PeerFailed { peer, .. }) => assert_eq!(peer, Role::Receiver),
                other => panic!("expected PeerFailed, got {other:?}"),
            }
            assert!(received.try_recv().is_err(), "garbage delivered");
        }
    }

    #[tokio::test]
    async fn a_peer_that_dies_with_our_data_unread_is_not_reported() {
        let (control, mut reports) = ControlSender::detached();
        let (ours, theirs) = UnixStream::pair().unwrap();
        let (read, mut write) = ours.into_split();
        let (inbound, _received) = mpsc::channel::<ReceiverToEngine>(4);
        // Unread data in the dying end's buffer makes our next read ECONNRESET.
        write.write_all(b"{}\n").await.unwrap();
        drop(theirs);
        spawn_reader(Role::Receiver, read, inbound, control);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        match reports.try_recv() {
            Err(mpsc::error::TryRecvError::Empty | mpsc::error::TryRecvError::Disconnected) => {}
            Ok(report) => panic!("a reset channel was reported: {report:?}"),
        }
    }

    #[tokio::test]
    async fn valid_frames_are_delivered_in_order() {
        let (control, _reports) = ControlSender::detached();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let (inbound, mut received) = mpsc::channel::<ReceiverToEngine>(4);
        spawn_reader(Role::Receiver, ours.into_split().0, inbound, control);
        for n in 1..=2 {
            let mut line = serde_json::to_vec(&heartbeat(n)).unwrap();
            line.push(b'\n');
            theirs.write_all(&line).await.unwrap();
        }
        assert_eq!(received.recv().await, Some(heartbeat(1)));
        assert_eq!(received.recv().await, Some(heartbeat(2)));
    }
}
