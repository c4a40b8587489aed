//! The heartbeat wire protocol between `hbc` and `hb-receiver` (docs/PROTOCOL.md).
//!
//! Layout:
//! - [`message`]: the messages, one struct per ID, and their JSON form.
//! - [`datagram`]: bytes <-> messages: text or zlib, limits, signature trailer.
//! - [`sign`]: HMAC-SHA256 signatures and the replay window.
//! - [`names`]: host name rules.
//!
//! Both ends use this crate, and both ends' tests read the same vectors
//! (`proto/vectors.json`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod datagram;
pub mod message;
pub mod names;
pub mod sign;

/// Protocol version this build speaks; see the version rule in docs/PROTOCOL.md.
pub const PROTOCOL_VERSION: u32 = 1;

/// Milliseconds since the Unix epoch (0 if the clock is before it): the protocol's
/// timestamps, and the one time format on every channel of the server.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
