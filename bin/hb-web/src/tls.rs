//! HTTPS and WSS on the HTTP port, with rustls. The supervisor reads the certificate and key
//! (hb-web is chrooted and cannot) and sends them with the configuration, so a reload after
//! renewing them switches new connections to the new ones without a restart.
//!
//! Handshakes run in their own tasks with a timeout: a client that opens a connection and
//! says nothing holds no accept slot.

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

use crate::Web;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes at once; past it, new connections wait in the kernel's backlog.
const HANDSHAKES: usize = 256;

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
pub type Conn = Either<TcpStream, TlsStream<TcpStream>>;

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
        tokio::spawn(async move {
            loop {
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
                        if tx.send((Either::Left(stream), peer)).await.is_err() {
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
                                    let _ = tx.send((Either::Right(tls), peer)).await;
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
