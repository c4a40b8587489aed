//! Child <-> child messages, one enum per direction of each edge.
//!
//! Every edge goes through the engine. The unused half of a one-way codec is [`Silent`],
//! which no frame can decode to: anything a peer sends there is a protocol violation.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

mod dnsupdate;
mod notifier;
mod query;
mod receiver;
#[cfg(test)]
mod tests;
mod views;
mod web;

pub use dnsupdate::*;
pub use notifier::*;
pub use query::*;
pub use receiver::*;
pub use views::*;
pub use web::*;

/// A validated client message as JSON text, passed through as it is: the engine decodes it
/// once (text to its own types) and the journal writes it out verbatim; no decoded tree is
/// carried, copied and printed again on the way (at a fleet's rate that was a fifth of the
/// engine's time).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawMessage(Box<serde_json::value::RawValue>);

impl RawMessage {
    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// `value` printed as JSON text, without a tree on the way.
    pub fn of<T: Serialize>(value: &T) -> RawMessage {
        // Printing plain data cannot fail; the fallback is unreachable but costs nothing.
        RawMessage(
            serde_json::value::to_raw_value(value)
                .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
        )
    }
}

impl From<serde_json::Value> for RawMessage {
    fn from(value: serde_json::Value) -> RawMessage {
        RawMessage::of(&value)
    }
}

impl PartialEq for RawMessage {
    fn eq(&self, other: &RawMessage) -> bool {
        self.get() == other.get()
    }
}

/// The message type of the unused half of a link's codec: no frame decodes to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Silent {}

pub(super) fn missing(field: &str) -> String {
    format!("missing field `{field}`")
}

/// Refuses a wire struct's field given a value (`present`: each field and whether it has
/// one) that its variant does not have, as a tagged enum would.
pub(super) fn only(present: &[(&str, bool)], allowed: &[&str]) -> Result<(), String> {
    match present
        .iter()
        .find(|(field, here)| *here && !allowed.contains(field))
    {
        Some((field, _)) => Err(format!("unknown field `{field}` for this variant")),
        None => Ok(()),
    }
}
