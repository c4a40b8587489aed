//! HTTPS and WSS on the HTTP port, with rustls. The supervisor reads the certificate and key
//! (hb-web is chrooted and cannot) and sends them with the configuration, so a reload after
//! renewing them switches new connections to the new ones without a restart.
//!
//! Handshakes run in their own tasks with a timeout: a client that opens a connection and
//! says nothing holds no accept slot. Every connection counts against a cap below the
//! process's descriptor limit (past it, new ones wait in the kernel's backlog), and one that
//! reads nothing for [`IDLE_TIMEOUT`] is closed (the live feed's pings keep a quiet
//! WebSocket busy).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use hb_ipc::config::TlsPem;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

use crate::web::Web;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes at once; past it, new connections wait in the kernel's backlog.
const HANDSHAKES: usize = 256;
/// A connection from which nothing arrives for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Connections held at most: below the descriptor limit, with room for the rest.
fn connection_cap() -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    usize::try_from(soft.saturating_sub(64))
        .unwrap_or(usize::MAX)
        .clamp(64, 65_536)
}

/// A connection that counts against the cap and closes when it reads nothing for
/// [`IDLE_TIMEOUT`].
pub struct Tracked<Io> {
    io: Io,
    idle: std::pin::Pin<Box<tokio::time::Sleep>>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl<Io: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Tracked<Io> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let before = buf.filled().len();
        match std::pin::Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let deadline = tokio::time::Instant::now() + IDLE_TIMEOUT;
                    self.idle.as_mut().reset(deadline);
                }
                Poll::Ready(r)
            }
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::ErrorKind::TimedOut.into())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<Io: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Tracked<Io> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A rustls server configuration from PEM text: the chain, leaf first, and its key.
pub fn server_config(pem: &TlsPem) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the certificate file: {e}"))?;
    if certs.is_empty() {
        return Err("the certificate file holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(pem.key_pem.as_bytes())
        .map_err(|e| format!("the key file: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A connection: plain, or TLS when it is configured.
pub type Conn = Tracked<Either<TcpStream, TlsStream<TcpStream>>>;

fn tracked(
    io: Either<TcpStream, TlsStream<TcpStream>>,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Conn {
    Tracked {
        io,
        idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
        _slot: slot,
    }
}

/// The HTTP listener: accepts, and shakes hands when TLS is configured.
pub struct HbListener {
    ready: mpsc::Receiver<(Conn, SocketAddr)>,
    local: SocketAddr,
}

impl HbListener {
    /// Serves `tcp`, with TLS whenever the web's configuration has it.
    pub fn new(tcp: TcpListener, web: Arc<Web>) -> std::io::Result<HbListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
        let slots = Arc::new(tokio::sync::Semaphore::new(connection_cap()));
        tokio::spawn(async move {
            loop {
                // At the cap, wait: the kernel's backlog holds who comes meanwhile.
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors, most likely: wait rather than spin.
                        tracing::warn!(error = %e, "Accept failed.");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                match web.tls_config() {
                    None => {
                        if tx
                            .send((tracked(Either::Left(stream), slot), peer))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Some(config) => {
                        let Ok(permit) = handshakes.clone().acquire_owned().await else {
                            return;
                        };
                        let tx = tx.clone();
                        let web = web.clone();
                        tokio::spawn(async move {
                            let accept = TlsAcceptor::from(config).accept(stream);
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
                                Ok(Ok(tls)) => {
                                    let _ =
                                        tx.send((tracked(Either::Right(tls), slot), peer)).await;
                                }
                                Ok(Err(e)) => {
                                    web.count("tls_handshake_failed");
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed.");
                                }
                                Err(_) => web.count("tls_handshake_timeout"),
                            }
                            drop(permit);
                        });
                    }
                }
            }
        });
        Ok(HbListener { ready, local })
    }
}

impl Listener for HbListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accepting task is gone (shutting down): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The client's address, for handlers (`ConnectInfo<Peer>`).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, HbListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, HbListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}
