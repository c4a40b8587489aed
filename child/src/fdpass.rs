//! Frames with file descriptors attached, for the control channel on fd 3.
//!
//! The supervisor sends a [`hb_ipc::control::ToChild::Socket`] frame with exactly one
//! descriptor as `SCM_RIGHTS` on the frame's first byte. The child reads the stream with
//! recvmsg, queues descriptors in arrival order and hands one out per `Socket` frame; since
//! both travel in order on one stream, the n-th `Socket` frame owns the n-th descriptor.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use bytes::BytesMut;
use hb_ipc::codec::{CodecError, JsonLines};
use hb_ipc::control::{FromChild, ToChild};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio_util::codec::Decoder;

/// Writes one whole frame, attaching `fd` (if any) to its first byte.
pub async fn send_frame(
    stream: &UnixStream,
    frame: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut sent = 0;
    let mut fd = fd;
    while sent < frame.len() {
        stream.writable().await?;
        let fds: Vec<RawFd> = fd.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
        let result = stream.try_io(Interest::WRITABLE, || {
            let iov = [IoSlice::new(&frame[sent..])];
            let cmsgs: &[ControlMessage] = if fds.is_empty() {
                &[]
            } else {
                &[ControlMessage::ScmRights(&fds)]
            };
            sendmsg::<()>(
                stream.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            )
            .map_err(io::Error::from)
        });
        match result {
            Ok(n) => {
                sent += n;
                fd = None;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads `ToChild` frames and the descriptors that ride with them.
pub struct ControlReader {
    stream: std::sync::Arc<UnixStream>,
    buf: BytesMut,
    fds: VecDeque<OwnedFd>,
    codec: JsonLines<ToChild, FromChild>,
    eof: bool,
}

/// One frame from the supervisor, with its descriptor when it is a `Socket` frame.
#[derive(Debug)]
pub struct Received {
    /// The message.
    pub msg: ToChild,
    /// The descriptor of a `Socket` frame.
    pub fd: Option<OwnedFd>,
}

impl ControlReader {
    /// Reads from `stream` (shared with the writer).
    pub fn new(stream: std::sync::Arc<UnixStream>) -> Self {
        ControlReader {
            stream,
            buf: BytesMut::with_capacity(8192),
            fds: VecDeque::new(),
            codec: JsonLines::new(hb_ipc::codec::CONTROL_MAX_LINE),
            eof: false,
        }
    }

    /// The next frame; `Ok(None)` when the supervisor closed the channel.
    pub async fn next(&mut self) -> Result<Option<Received>, CodecError> {
        loop {
            let decoded = if self.eof {
                self.codec.decode_eof(&mut self.buf)?
            } else {
                self.codec.decode(&mut self.buf)?
            };
            if let Some(msg) = decoded {
                let fd = match msg {
                    ToChild::Socket { .. } => Some(self.fds.pop_front().ok_or_else(|| {
                        CodecError::Io(io::Error::other("socket frame without a descriptor"))
                    })?),
                    _ => None,
                };
                return Ok(Some(Received { msg, fd }));
            }
            if self.eof {
                return Ok(None);
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16384];
        loop {
            self.stream.readable().await?;
            let stream = &self.stream;
            let result = stream.try_io(Interest::READABLE, || {
                let mut space = nix::cmsg_space!([RawFd; 4]);
                let mut iov = [IoSliceMut::new(&mut chunk)];
                let msg = recvmsg::<()>(
                    stream.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                )
                .map_err(io::Error::from)?;
                let mut fds = Vec::new();
                for cmsg in msg.cmsgs().map_err(io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(raw) = cmsg {
                        fds.extend(raw.into_iter().map(crate::sys::adopt_received_fd));
                    }
                }
                let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
                Ok((msg.bytes, fds, truncated))
            });
            match result {
                Ok((n, fds, truncated)) => {
                    if truncated {
                        return Err(io::Error::other(
                            "descriptors lost: control message truncated",
                        ));
                    }
                    self.fds.extend(fds);
                    self.buf.extend_from_slice(&chunk[..n]);
                    if n == 0 {
                        self.eof = true;
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_ipc::control::PassedSocket;
    use std::io::{Read, Write};
    use std::sync::Arc;

    #[tokio::test]
    async fn descriptors_follow_their_frames() {
        let (a, b) = UnixStream::pair().unwrap();
        let b = Arc::new(b);
        let (mut x, y) = std::os::unix::net::UnixStream::pair().unwrap();
        let start = hb_ipc::codec::encode_line(&ToChild::Start {}, 1024).unwrap();
        let sock = hb_ipc::codec::encode_line(
            &ToChild::Socket {
                socket: PassedSocket::UdpListener,
            },
            1024,
        )
        .unwrap();
        send_frame(&a, &start, None).await.unwrap();
        let fd: OwnedFd = y.into();
        send_frame(&a, &sock, Some(std::os::fd::AsFd::as_fd(&fd)))
            .await
            .unwrap();
        drop(fd);
        drop(a);
        let mut reader = ControlReader::new(b);
        let first = reader.next().await.unwrap().unwrap();
        assert_eq!(first.msg, ToChild::Start {});
        assert!(first.fd.is_none());
        let second = reader.next().await.unwrap().unwrap();
        let passed = second.fd.expect("descriptor");
        // The passed descriptor is the other end of x: prove it by talking through it.
        let mut passed = std::os::unix::net::UnixStream::from(passed);
        x.write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        passed.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
        assert!(reader.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn socket_frame_without_descriptor_is_a_violation() {
        let (a, b) = UnixStream::pair().unwrap();
        let sock = hb_ipc::codec::encode_line(
            &ToChild::Socket {
                socket: PassedSocket::TcpListener,
            },
            1024,
        )
        .unwrap();
        send_frame(&a, &sock, None).await.unwrap();
        let mut reader = ControlReader::new(Arc::new(b));
        assert!(reader.next().await.is_err());
    }
}
