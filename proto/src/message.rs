//! Messages. Every datagram is one JSON object whose `ID` names its type.
//!
//! Fields not listed are ignored (the version rule: additions are compatible, a change of
//! meaning bumps `v`). Limits on sizes are enforced by [`crate::datagram`] before a message
//! is built, and per field here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest free text (`MSG.text`, command output), in bytes.
pub const MAX_TEXT: usize = 16 * 1024;
/// Longest short string (versions, plugin and command names), in bytes.
pub const MAX_SHORT: usize = 64;
/// Largest interval a host may announce: one day.
pub const MAX_INTERVAL: u32 = 86_400;
/// Largest RTT a client may report, ms: ten minutes.
pub const MAX_RTT_MS: f64 = 600_000.0;

/// A message from a monitored host.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientMessage {
    /// `HTB`.
    Heartbeat(Heartbeat),
    /// `PLG`.
    Plugin(PluginData),
    /// `BOT`: the client (or the host) started.
    Boot(Notice),
    /// `SHD`: the client is stopping because the host shuts down (or is told to).
    Shutdown(Notice),
    /// `MSG`: free text, or the result of a command.
    Message(TextMessage),
}

impl ClientMessage {
    /// The `ID` string.
    pub fn id(&self) -> &'static str {
        match self {
            ClientMessage::Heartbeat(_) => "HTB",
            ClientMessage::Plugin(_) => "PLG",
            ClientMessage::Boot(_) => "BOT",
            ClientMessage::Shutdown(_) => "SHD",
            ClientMessage::Message(_) => "MSG",
        }
    }

    /// The common header.
    pub fn header(&self) -> &Header {
        match self {
            ClientMessage::Heartbeat(m) => &m.header,
            ClientMessage::Plugin(m) => &m.header,
            ClientMessage::Boot(m) | ClientMessage::Shutdown(m) => &m.header,
            ClientMessage::Message(m) => &m.header,
        }
    }

    /// The JSON object sent on the wire.
    pub fn to_json(&self) -> Value {
        // Plain data always converts; the fallback is unreachable.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A message printed with its `ID` first, straight from the typed value, without a JSON
/// tree on the way (the receiver prints every ACK and every message it forwards).
#[derive(Serialize)]
struct Tagged<'a, T> {
    #[serde(rename = "ID")]
    id: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

impl Serialize for ClientMessage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let id = self.id();
        match self {
            ClientMessage::Heartbeat(m) => Tagged { id, body: m }.serialize(s),
            ClientMessage::Plugin(m) => Tagged { id, body: m }.serialize(s),
            ClientMessage::Boot(m) | ClientMessage::Shutdown(m) => {
                Tagged { id, body: m }.serialize(s)
            }
            ClientMessage::Message(m) => Tagged { id, body: m }.serialize(s),
        }
    }
}

impl Serialize for ServerMessage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ServerMessage::Ack(m) => Tagged { id: "ACK", body: m }.serialize(s),
            ServerMessage::Command(m) => Tagged { id: "CMD", body: m }.serialize(s),
            ServerMessage::Update(m) => Tagged { id: "UPD", body: m }.serialize(s),
        }
    }
}

/// An ACK printed as [`ServerMessage::Ack`] would be, from a borrowed [`Ack`].
pub fn ack_text(ack: &Ack) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    serde_json::to_vec(&Tagged {
        id: "ACK",
        body: ack,
    })
    .unwrap_or_default()
}

/// Fields every client message carries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Host name (DNS label rules, [`crate::names::check_host_name`]).
    pub name: String,
    /// Client send time, Unix ms; echoed in the ACK for RTT measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
    /// Sequence number, increasing per client process; echoed in the ACK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Protocol version; absent means 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<u64>,
}

/// `HTB`: I am alive.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Name, time, sequence.
    #[serde(flatten)]
    pub header: Header,
    /// Seconds until the next heartbeat (1 to 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u32>,
    /// Round-trip time of the previous heartbeat and its ACK, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt: Option<f64>,
    /// Client version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<String>,
}

/// `PLG`: one plugin's data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginData {
    /// Name, time, sequence.
    #[serde(flatten)]
    pub header: Header,
    /// Plugin name (`cpu_monitor`, ...): lower-case letters, digits and `_`.
    pub plugin: String,
    /// The plugin's fields.
    pub data: Map<String, Value>,
}

/// `BOT` and `SHD`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Name, time, sequence.
    #[serde(flatten)]
    pub header: Header,
    /// Client version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<String>,
}

/// `MSG`: free text, or a command's result (`cmd`, `exit`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TextMessage {
    /// Name, time, sequence.
    #[serde(flatten)]
    pub header: Header,
    /// The text (at most 16 KiB).
    pub text: String,
    /// Id of the command this reports on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<u64>,
    /// The command's exit status; absent if it could not run or was killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
}

/// A message from the server.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMessage {
    /// `ACK`.
    Ack(Ack),
    /// `CMD`, also carried in an ACK's `queue`.
    Command(Command),
    /// `UPD`, also carried in an ACK's `queue`.
    Update(Update),
}

impl ServerMessage {
    /// The JSON object sent on the wire.
    pub fn to_json(&self) -> Value {
        // Plain data always converts; the fallback is unreachable.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `ACK`: the answer to every client message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// The host answered.
    pub name: String,
    /// The client's `ts`, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
    /// The client's `seq`, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The server has no plugin data for the host: send it all again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub request_update: bool,
    /// Commands and updates waiting for the host, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queue: Vec<Queued>,
}

/// An entry of an ACK's queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ID")]
pub enum Queued {
    /// Run a named command.
    #[serde(rename = "CMD")]
    Command(Command),
    /// Update the client.
    #[serde(rename = "UPD")]
    Update(Update),
}

/// `CMD`: run the command the client's own `commands:` map names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Unique id; the client reports the result in a `MSG` with `cmd` set to it.
    pub id: u64,
    /// Name in the client's `commands:` map; never a shell string.
    pub command: String,
}

/// `UPD`: run the client's configured `update_command`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// Unique id, reported back like a command's.
    pub id: u64,
}
