//! Bounded newline-delimited JSON.
//!
//! One JSON value per line, compact, so a newline only ever ends a frame (serde_json escapes
//! newlines inside strings). A frame longer than the channel's limit, bytes that are not UTF-8
//! or not JSON of the expected type are protocol violations: the decoder reports them once and
//! the caller closes the channel. The limit is checked before the line is buffered further, so a
//! peer cannot make us hold more than `max_len` bytes plus one read.

use std::io;
use std::marker::PhantomData;

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::codec::{Decoder, Encoder};

/// Frame limit for supervisor <-> child control channels; config slices ride here.
pub const CONTROL_MAX_LINE: usize = 4 << 20;
/// Frame limit for child <-> child data channels.
pub const EDGE_MAX_LINE: usize = 1 << 20;
/// Longest line the engine sends to the web and the receiver: whole host lists and tables
/// (about 250 bytes a host, 100,000 hosts). Only the engine sends these; the other
/// directions, where a less trusted process writes, keep [`EDGE_MAX_LINE`].
pub const ENGINE_MAX_LINE: usize = 64 << 20;

/// The frame limit of the edge from `from` to `to`.
pub fn edge_limit(from: crate::Role, to: crate::Role) -> usize {
    use crate::Role;
    match (from, to) {
        (Role::Engine, Role::Web | Role::Receiver) => ENGINE_MAX_LINE,
        _ => EDGE_MAX_LINE,
    }
}
/// Frame limit for hbctl requests; they are tiny.
pub const CTL_MAX_LINE: usize = 64 << 10;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The peer sent (or we tried to send) a frame over the channel's limit.
    #[error("frame longer than {limit} bytes")]
    TooLong {
        /// The channel's limit in bytes.
        limit: usize,
    },
    /// The frame is not valid JSON for the expected message type (including invalid UTF-8).
    #[error("bad frame: {0}")]
    Json(#[from] serde_json::Error),
    /// The peer closed the channel in the middle of a frame.
    #[error("channel closed in the middle of a frame ({0} bytes)")]
    Truncated(usize),
}

/// Codec reading `In` frames and writing `Out` frames, one JSON value per line.
#[derive(Debug)]
pub struct JsonLines<In, Out> {
    max_len: usize,
    /// Where to resume the search for `\n`, so a long partial line is scanned once.
    scanned: usize,
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> JsonLines<In, Out> {
    /// A codec whose frames, without the newline, are at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        JsonLines {
            max_len,
            scanned: 0,
            _types: PhantomData,
        }
    }

    /// The frame limit in bytes.
    pub fn max_len(&self) -> usize {
        self.max_len
    }
}

impl<In: DeserializeOwned, Out> Decoder for JsonLines<In, Out> {
    type Item = In;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<In>, CodecError> {
        let start = self.scanned.min(buf.len());
        let newline = buf[start..].iter().position(|b| *b == b'\n');
        match newline {
            Some(offset) => {
                let len = start + offset;
                self.scanned = 0;
                if len > self.max_len {
                    return Err(CodecError::TooLong {
                        limit: self.max_len,
                    });
                }
                let line = buf.split_to(len + 1);
                Ok(Some(serde_json::from_slice(&line[..len])?))
            }
            None if buf.len() > self.max_len => {
                self.scanned = 0;
                Err(CodecError::TooLong {
                    limit: self.max_len,
                })
            }
            None => {
                self.scanned = buf.len();
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<In>, CodecError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => Err(CodecError::Truncated(buf.len())),
        }
    }
}

impl<In, Out: Serialize> Encoder<Out> for JsonLines<In, Out> {
    type Error = CodecError;

    fn encode(&mut self, msg: Out, buf: &mut BytesMut) -> Result<(), CodecError> {
        let start = buf.len();
        serde_json::to_writer((&mut *buf).writer(), &msg)?;
        if buf.len() - start > self.max_len {
            buf.truncate(start);
            return Err(CodecError::TooLong {
                limit: self.max_len,
            });
        }
        buf.put_u8(b'\n');
        Ok(())
    }
}

/// Serializes one message as a complete frame (with its newline), for writers that do not use
/// a `Framed` sink (the supervisor sends some frames together with file descriptors).
pub fn encode_line<T: Serialize>(msg: &T, max_len: usize) -> Result<Vec<u8>, CodecError> {
    let mut line = Vec::new();
    encode_line_into(msg, max_len, &mut line)?;
    Ok(line)
}

/// Appends one message as a complete frame (with its newline) to `buf`; on error `buf` is
/// as it was.
pub fn encode_line_into<T: Serialize>(
    msg: &T,
    max_len: usize,
    buf: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let start = buf.len();
    let written = serde_json::to_writer(&mut *buf, msg);
    if let Err(e) = written {
        buf.truncate(start);
        return Err(e.into());
    }
    if buf.len() - start > max_len {
        buf.truncate(start);
        return Err(CodecError::TooLong { limit: max_len });
    }
    buf.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
    enum Msg {
        Ping { n: u32 },
        Stop,
    }

    fn codec(max: usize) -> JsonLines<Msg, Msg> {
        JsonLines::new(max)
    }

    #[test]
    fn decodes_frames_split_across_reads() {
        let mut c = codec(64);
        let mut buf = BytesMut::from(&b"{\"type\":\"pi"[..]);
        assert!(c.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"ng\",\"n\":7}\n{\"type\":\"stop\"}\n");
        assert_eq!(c.decode(&mut buf).unwrap(), Some(Msg::Ping { n: 7 }));
        assert_eq!(c.decode(&mut buf).unwrap(), Some(Msg::Stop));
        assert!(c.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn golden_encoding() {
        let mut c = codec(64);
        let mut buf = BytesMut::new();
        c.encode(Msg::Ping { n: 1 }, &mut buf).unwrap();
        c.encode(Msg::Stop, &mut buf).unwrap();
        assert_eq!(
            &buf[..],
            b"{\"type\":\"ping\",\"n\":1}\n{\"type\":\"stop\"}\n"
        );
    }

    #[test]
    fn oversized_line_is_rejected_before_newline_arrives() {
        let mut c = codec(16);
        let mut buf = BytesMut::from(&[b'x'; 17][..]);
        assert!(matches!(
            c.decode(&mut buf),
            Err(CodecError::TooLong { limit: 16 })
        ));
    }

    #[test]
    fn oversized_complete_line_is_rejected() {
        let mut c = codec(8);
        let mut buf = BytesMut::from(&b"{\"type\":\"stop\"}\n"[..]);
        assert!(matches!(
            c.decode(&mut buf),
            Err(CodecError::TooLong { .. })
        ));
    }

    #[test]
    fn hostile_frames_are_errors_not_panics() {
        for bad in [
            &b"not json\n"[..],
            b"\xff\xfe\n",
            b"{\"type\":\"ping\"}\n",
            b"{\"type\":\"ping\",\"n\":1,\"extra\":2}\n",
            b"{\"type\":\"launch\"}\n",
            b"{\"type\":\"ping\",\"n\":-1}\n",
            b"\n",
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
        ] {
            let mut c = codec(1024);
            let mut buf = BytesMut::from(bad);
            assert!(c.decode(&mut buf).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn truncated_frame_at_eof_is_reported() {
        let mut c = codec(64);
        let mut buf = BytesMut::from(&b"{\"type\":"[..]);
        assert!(matches!(
            c.decode_eof(&mut buf),
            Err(CodecError::Truncated(8))
        ));
        let mut empty = BytesMut::new();
        assert!(c.decode_eof(&mut empty).unwrap().is_none());
    }

    #[test]
    fn encoder_refuses_frames_over_the_limit() {
        let mut c = codec(4);
        let mut buf = BytesMut::new();
        assert!(c.encode(Msg::Stop, &mut buf).is_err());
        assert!(buf.is_empty());
        assert!(encode_line(&Msg::Stop, 4).is_err());
        assert_eq!(
            encode_line(&Msg::Stop, 64).unwrap(),
            b"{\"type\":\"stop\"}\n"
        );
    }
}
