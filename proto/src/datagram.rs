//! Datagrams: bytes to messages and back.
//!
//! Decoding order, each step bounded before the next runs: size -> signature trailer split ->
//! text or zlib (inflated at most to the limit, so a bomb costs at most that much) -> UTF-8 ->
//! nesting depth (scanned before parsing) -> JSON -> string, key and element limits -> `ID`
//! -> the message's own fields. Every failure is a [`Reject`] with a stable reason name for
//! counters and the journal.

use std::io::Read;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::message::{
    Ack, ClientMessage, Command, Header, Heartbeat, MAX_INTERVAL, MAX_RTT_MS, MAX_SHORT, MAX_TEXT,
    Notice, PluginData, Queued, ServerMessage, TextMessage, Update,
};
use crate::sign::{self, Trailer};

/// Decoding limits; [`Limits::default`] is what hb-receiver enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest datagram accepted, bytes.
    pub max_datagram: usize,
    /// Largest JSON text after decompression, bytes.
    pub max_inflated: usize,
    /// Deepest nesting of objects and arrays.
    pub max_depth: usize,
    /// Longest string value, bytes.
    pub max_string: usize,
    /// Longest object key, bytes.
    pub max_key: usize,
    /// Most values (of any kind) in one message.
    pub max_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_datagram: 65_507,
            max_inflated: 256 * 1024,
            max_depth: 32,
            max_string: MAX_TEXT,
            max_key: 128,
            max_values: 20_000,
        }
    }
}

impl Limits {
    /// Whether every plain heartbeat is within these limits: its eight fields at most, flat,
    /// its longest key `interval`, its longest string a host name (253 bytes). Then the
    /// straight decoding of one needs no tree to check them on.
    pub fn hold_plain_heartbeats(&self) -> bool {
        self.max_depth >= 1 && self.max_string >= 253 && self.max_key >= 8 && self.max_values >= 8
    }
}

impl From<crate::sign::Replay> for Reject {
    fn from(r: crate::sign::Replay) -> Reject {
        match r {
            crate::sign::Replay::Stale => Reject::Stale,
            crate::sign::Replay::Repeated => Reject::Replay,
        }
    }
}

/// Why a datagram was refused. [`Reject::reason`] names it for counters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// Nothing in it.
    #[error("empty datagram")]
    Empty,
    /// Over `max_datagram`.
    #[error("datagram of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Compressed data that does not inflate (truncated or corrupt).
    #[error("bad zlib data: {0}")]
    BadZlib(String),
    /// Inflates past `max_inflated`; inflation stopped at the limit.
    #[error("decompresses past the limit of {0} bytes")]
    ZlibBomb(usize),
    /// Not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
    /// Nested deeper than `max_depth`.
    #[error("nested deeper than {0}")]
    TooDeep(usize),
    /// Not JSON, or not one JSON object.
    #[error("not a JSON object: {0}")]
    BadJson(String),
    /// A string, key or the number of values is over its limit.
    #[error("{0}")]
    TooBig(String),
    /// No `ID`.
    #[error("no ID")]
    MissingId,
    /// An `ID` this side does not handle.
    #[error("unknown ID {0:?}")]
    UnknownId(String),
    /// `v` newer than this build speaks.
    #[error("protocol version {0} is newer than this server's")]
    UnsupportedVersion(u64),
    /// No or invalid host name.
    #[error("bad host name: {0}")]
    BadName(String),
    /// A field has the wrong type or is out of range.
    #[error("invalid {field}: {why}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Unsigned, but the host requires signatures.
    #[error("unsigned, but a signature is required for this host")]
    Unsigned,
    /// Signed too far from the server's clock.
    #[error("timestamp outside the allowed window")]
    Stale,
    /// Counter not above the last accepted one.
    #[error("replayed (counter not increasing)")]
    Replay,
    /// The source sent more than its rate allows.
    #[error("rate limit exceeded")]
    RateLimited,
}

impl Reject {
    /// Stable name for counters and the journal.
    pub fn reason(&self) -> &'static str {
        match self {
            Reject::Empty => "empty",
            Reject::TooLarge(_) => "too_large",
            Reject::BadZlib(_) => "bad_zlib",
            Reject::ZlibBomb(_) => "zlib_bomb",
            Reject::NotUtf8 => "not_utf8",
            Reject::TooDeep(_) => "too_deep",
            Reject::BadJson(_) => "bad_json",
            Reject::TooBig(_) => "too_big",
            Reject::MissingId => "missing_id",
            Reject::UnknownId(_) => "unknown_id",
            Reject::UnsupportedVersion(_) => "unsupported_version",
            Reject::BadName(_) => "bad_name",
            Reject::Invalid { .. } => "invalid_field",
            Reject::BadSignature => "bad_signature",
            Reject::Unsigned => "unsigned",
            Reject::Stale => "stale",
            Reject::Replay => "replay",
            Reject::RateLimited => "rate_limited",
        }
    }
}

/// A decoded datagram.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded<'a, M> {
    /// The message.
    pub message: M,
    /// Whether the body was zlib-compressed.
    pub compressed: bool,
    /// The signature trailer and the bytes it covers, when signed (not yet verified).
    pub signature: Option<(Trailer, &'a [u8])>,
}

/// Decodes a datagram from a client. The signature, if any, is split off but not checked:
/// the key depends on the host name inside.
pub fn decode_client<'a>(
    datagram: &'a [u8],
    limits: &Limits,
) -> Result<Decoded<'a, ClientMessage>, Reject> {
    if (1..=limits.max_datagram).contains(&datagram.len()) && limits.hold_plain_heartbeats() {
        let split = sign::split(datagram);
        if split.body.first() == Some(&b'{')
            && let Some(m) = plain_heartbeat(split.body)
        {
            return Ok(Decoded {
                message: ClientMessage::Heartbeat(m),
                compressed: false,
                signature: split.signature,
            });
        }
    }
    let Decoded {
        message: object,
        compressed,
        signature,
    } = decode_object(datagram, limits)?;
    let message = client_message(object)?;
    Ok(Decoded {
        message,
        compressed,
        signature,
    })
}

/// Decodes a datagram from the server.
pub fn decode_server<'a>(
    datagram: &'a [u8],
    limits: &Limits,
) -> Result<Decoded<'a, ServerMessage>, Reject> {
    let Decoded {
        message: object,
        compressed,
        signature,
    } = decode_object(datagram, limits)?;
    let id = take_id(&object)?;
    let message = match id.as_str() {
        "ACK" => {
            let ack: Ack = typed(object)?;
            for queued in &ack.queue {
                if let Queued::Command(c) = queued {
                    check_command_name(&c.command)?;
                }
            }
            ServerMessage::Ack(ack)
        }
        "CMD" => {
            let cmd: Command = typed(object)?;
            check_command_name(&cmd.command)?;
            ServerMessage::Command(cmd)
        }
        "UPD" => ServerMessage::Update(typed::<Update>(object)?),
        _ => return Err(Reject::UnknownId(id)),
    };
    Ok(Decoded {
        message,
        compressed,
        signature,
    })
}

/// Encodes a message: compact JSON, zlib-compressed when longer than `compress_over` bytes
/// and smaller so, signed when a key and (time, counter) are given.
pub fn encode(json: &Value, compress_over: usize, sign: Option<(&[u8], u64, u64)>) -> Vec<u8> {
    encode_text(json.to_string().into_bytes(), compress_over, sign)
}

/// [`encode`] for a message already printed as JSON text.
pub fn encode_text(
    text: Vec<u8>,
    compress_over: usize,
    sign: Option<(&[u8], u64, u64)>,
) -> Vec<u8> {
    let mut out = if text.len() > compress_over {
        let compressed = compress(&text);
        if compressed.len() < text.len() {
            compressed
        } else {
            text
        }
    } else {
        text
    };
    if let Some((key, ts, counter)) = sign {
        sign::append(&mut out, key, ts, counter);
    }
    out
}

fn compress(text: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(text);
    z.finish().unwrap_or_default()
}

fn decode_object<'a>(
    datagram: &'a [u8],
    limits: &Limits,
) -> Result<Decoded<'a, Map<String, Value>>, Reject> {
    if datagram.is_empty() {
        return Err(Reject::Empty);
    }
    if datagram.len() > limits.max_datagram {
        return Err(Reject::TooLarge(datagram.len()));
    }
    let split = sign::split(datagram);
    let body = split.body;
    if body.is_empty() {
        return Err(Reject::Empty);
    }
    let compressed = body[0] != b'{';
    let inflated;
    let text: &[u8] = if compressed {
        inflated = inflate(body, limits.max_inflated)?;
        &inflated
    } else {
        body
    };
    let text = std::str::from_utf8(text).map_err(|_| Reject::NotUtf8)?;
    check_depth(text.as_bytes(), limits.max_depth)?;
    let value: Value = serde_json::from_str(text).map_err(|e| Reject::BadJson(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(Reject::BadJson("not an object".into()));
    };
    let mut values = 0;
    for (key, value) in &object {
        check_key(key, limits)?;
        check_sizes(value, limits, &mut values)?;
    }
    Ok(Decoded {
        message: object,
        compressed,
        signature: split.signature,
    })
}

/// Inflates at most `limit` bytes; one more byte available means a bomb, and reading stops.
fn inflate(body: &[u8], limit: usize) -> Result<Vec<u8>, Reject> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::ZlibDecoder::new(body);
    (&mut decoder)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Reject::BadZlib(e.to_string()))?;
    if out.len() > limit {
        return Err(Reject::ZlibBomb(limit));
    }
    if decoder.total_in() != body.len() as u64 {
        return Err(Reject::BadZlib(
            "data after the end of the zlib stream".into(),
        ));
    }
    Ok(out)
}

/// Depth of `[` and `{` outside strings, scanned before parsing so a deep document costs one
/// pass and no recursion.
fn check_depth(text: &[u8], max: usize) -> Result<(), Reject> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(Reject::TooDeep(max));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn check_key(key: &str, limits: &Limits) -> Result<(), Reject> {
    if key.len() > limits.max_key {
        return Err(Reject::TooBig(format!("key of {} bytes", key.len())));
    }
    // Keys become metric names, alert keys and notification titles: no line breaks or
    // other control characters in them.
    if key.chars().any(char::is_control) {
        return Err(Reject::BadJson("a key holds a control character".into()));
    }
    Ok(())
}

fn check_sizes(value: &Value, limits: &Limits, values: &mut usize) -> Result<(), Reject> {
    *values += 1;
    if *values > limits.max_values {
        return Err(Reject::TooBig(format!(
            "more than {} values",
            limits.max_values
        )));
    }
    match value {
        Value::String(s) if s.len() > limits.max_string => {
            Err(Reject::TooBig(format!("string of {} bytes", s.len())))
        }
        Value::Array(items) => items
            .iter()
            .try_for_each(|v| check_sizes(v, limits, values)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            check_key(k, limits)?;
            check_sizes(v, limits, values)
        }),
        _ => Ok(()),
    }
}

fn take_id(object: &Map<String, Value>) -> Result<String, Reject> {
    match object.get("ID") {
        Some(Value::String(id)) => Ok(id.clone()),
        Some(_) => Err(Reject::Invalid {
            field: "ID",
            why: "not a string".into(),
        }),
        None => Err(Reject::MissingId),
    }
}

fn typed<T: DeserializeOwned>(object: Map<String, Value>) -> Result<T, Reject> {
    serde_json::from_value(Value::Object(object)).map_err(|e| Reject::Invalid {
        field: "message",
        why: e.to_string(),
    })
}

/// Builds a client message from its JSON object, with every field check (the engine uses
/// this on what the receiver forwards).
pub fn parse_client(value: Value) -> Result<ClientMessage, Reject> {
    match value {
        Value::Object(object) => client_message(object),
        _ => Err(Reject::BadJson("not an object".into())),
    }
}

fn client_message(object: Map<String, Value>) -> Result<ClientMessage, Reject> {
    let id = take_id(&object)?;
    if !object.contains_key("name") {
        return Err(Reject::BadName("missing".into()));
    }
    if !object.get("name").is_some_and(Value::is_string) {
        return Err(Reject::BadName("not a string".into()));
    }
    let mut object = object;
    // Host names are DNS names: case does not matter, so it is dropped here, once, for
    // every lookup after (keys, drophosts, the host table).
    if let Some(Value::String(name)) = object.get_mut("name") {
        name.make_ascii_lowercase();
    }
    let message = match id.as_str() {
        "HTB" => {
            let m: Heartbeat = typed(object)?;
            check_heartbeat(&m)?;
            ClientMessage::Heartbeat(m)
        }
        "PLG" => {
            let m: PluginData = typed(object)?;
            let ok = !m.plugin.is_empty()
                && m.plugin.len() <= MAX_SHORT
                && m.plugin
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(invalid(
                    "plugin",
                    format!("{:?} is not [a-z0-9_]{{1,64}}", m.plugin),
                ));
            }
            ClientMessage::Plugin(m)
        }
        "BOT" | "SHD" => {
            let m: Notice = typed(object)?;
            check_short("ver", m.ver.as_deref())?;
            if id == "BOT" {
                ClientMessage::Boot(m)
            } else {
                ClientMessage::Shutdown(m)
            }
        }
        "MSG" => {
            let m: TextMessage = typed(object)?;
            if m.text.len() > MAX_TEXT {
                return Err(invalid("text", format!("over {MAX_TEXT} bytes")));
            }
            ClientMessage::Message(m)
        }
        _ => return Err(Reject::UnknownId(id)),
    };
    check_header(message.header())?;
    Ok(message)
}

fn check_heartbeat(m: &Heartbeat) -> Result<(), Reject> {
    if let Some(i) = m.interval
        && !(1..=MAX_INTERVAL).contains(&i)
    {
        return Err(invalid(
            "interval",
            format!("{i} is not 1 to {MAX_INTERVAL}"),
        ));
    }
    if let Some(rtt) = m.rtt
        && !(rtt.is_finite() && (0.0..=MAX_RTT_MS).contains(&rtt))
    {
        return Err(invalid("rtt", format!("{rtt} is not 0 to {MAX_RTT_MS} ms")));
    }
    check_short("ver", m.ver.as_deref())
}

/// A heartbeat with nothing else in it: every field it may carry, and no other. Most of
/// what a fleet sends is this, and it is decoded straight into its type, without a JSON tree
/// or the buffering `flatten` costs. Anything more, or anything this decoding refuses,
/// takes the general path, so every error is that path's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeartbeatFields<'a> {
    #[serde(rename = "ID", borrow)]
    id: &'a str,
    name: String,
    #[serde(default)]
    ts: Option<u64>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    v: Option<u64>,
    #[serde(default)]
    interval: Option<u32>,
    #[serde(default)]
    rtt: Option<f64>,
    #[serde(default)]
    ver: Option<String>,
}

/// The heartbeat in `text`, if it is a plain one that passes every check; `None` sends it
/// down the general path. Its fields are all short and flat, so limits that allow any plain
/// heartbeat ([`Limits::hold_plain_heartbeats`]) hold by construction.
fn plain_heartbeat(text: &[u8]) -> Option<Heartbeat> {
    let m: HeartbeatFields<'_> = serde_json::from_slice(text).ok()?;
    if m.id != "HTB" {
        return None;
    }
    let m = Heartbeat {
        header: Header {
            name: m.name.to_ascii_lowercase(),
            ts: m.ts,
            seq: m.seq,
            v: m.v,
        },
        interval: m.interval,
        rtt: m.rtt,
        ver: m.ver,
    };
    check_heartbeat(&m).ok()?;
    check_header(&m.header).ok()?;
    Some(m)
}

/// [`parse_client`] on JSON text, with the same result: a plain heartbeat is decoded
/// straight into its type, anything else through the JSON tree.
pub fn parse_client_text(text: &str) -> Result<ClientMessage, Reject> {
    // What the receiver forwards starts with its `ID`: anything but a heartbeat goes
    // straight to the tree.
    if text.starts_with(r#"{"ID":"HTB","#)
        && let Some(m) = plain_heartbeat(text.as_bytes())
    {
        return Ok(ClientMessage::Heartbeat(m));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| Reject::BadJson(e.to_string()))?;
    parse_client(value)
}

fn check_header(header: &Header) -> Result<(), Reject> {
    crate::names::check_host_name(&header.name).map_err(Reject::BadName)?;
    match header.v {
        Some(v) if v > u64::from(crate::PROTOCOL_VERSION) => Err(Reject::UnsupportedVersion(v)),
        _ => Ok(()),
    }
}

fn check_short(field: &'static str, value: Option<&str>) -> Result<(), Reject> {
    match value {
        Some(s) if s.len() > MAX_SHORT || s.chars().any(char::is_control) => Err(invalid(
            field,
            format!("longer than {MAX_SHORT} bytes or has control characters"),
        )),
        _ => Ok(()),
    }
}

/// Command names: the keys of the client's `commands:` map, `[A-Za-z0-9_.-]{1,64}`.
pub fn check_command_name(name: &str) -> Result<(), Reject> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SHORT
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "command",
            format!("{name:?} is not [A-Za-z0-9_.-]{{1,64}}"),
        ))
    }
}

fn invalid(field: &'static str, why: String) -> Reject {
    Reject::Invalid { field, why }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn netcat_heartbeat_decodes() {
        let d = decode_client(br#"{"ID":"HTB","name":"web1","interval":10}"#, &limits()).unwrap();
        match d.message {
            ClientMessage::Heartbeat(h) => {
                assert_eq!(h.header.name, "web1");
                assert_eq!(h.interval, Some(10));
            }
            other => panic!("{other:?}"),
        }
        assert!(!d.compressed && d.signature.is_none());
    }

    #[test]
    fn names_are_case_insensitive() {
        let d = decode_client(br#"{"ID":"HTB","name":"Web1.Example.NET"}"#, &limits()).unwrap();
        assert_eq!(d.message.header().name, "web1.example.net");
    }

    #[test]
    fn bytes_after_the_zlib_stream_are_refused() {
        let mut z = compress(br#"{"ID":"HTB","name":"a"}"#);
        z.extend_from_slice(b"extra");
        assert_eq!(
            decode_client(&z, &limits()).unwrap_err().reason(),
            "bad_zlib"
        );
    }

    #[test]
    fn keys_with_control_characters_are_refused() {
        let d = br#"{"ID":"PLG","name":"web1","plugin":"x","data":{"a\nSubject: hi":1}}"#;
        let e = decode_client(d, &limits()).unwrap_err();
        assert_eq!(e.reason(), "bad_json");
        assert!(e.to_string().contains("control character"), "{e}");
    }

    #[test]
    fn a_trailing_newline_from_echo_is_fine() {
        assert!(decode_client(b"{\"ID\":\"HTB\",\"name\":\"web1\"}\n", &limits()).is_ok());
    }

    #[test]
    fn text_is_parsed_as_the_tree_is() {
        let texts = [
            r#"{"ID":"HTB","name":"Web1","ts":5,"seq":7,"interval":30,"rtt":1.5,"ver":"1.2"}"#,
            r#"{"ID":"HTB","name":"web1"}"#,
            r#"{"ID":"HTB","name":"web1","extra":{"deep":[1,2,{"x":null}]},"ts":null}"#,
            r#"{"ID":"HTB","name":"web1","ID":"PLG","plugin":"cpu","data":{}}"#,
            r#"{"ID":"HTB","name":"web1","name":"other"}"#,
            r#"{"ID":"HTB","name":"web1","ver":"ID"}"#,
            r#"{"ID":"HTB","name":"web1","interval":0}"#,
            r#"{"ID":"HTB","name":"web1","interval":86401}"#,
            r#"{"ID":"HTB","name":"web1","rtt":-1}"#,
            r#"{"ID":"HTB","name":"web1","rtt":1e300}"#,
            r#"{"ID":"HTB","name":"web1","ts":-1}"#,
            r#"{"ID":"HTB","name":"web1","ts":1.5}"#,
            r#"{"ID":"HTB","name":"web1","v":99}"#,
            r#"{"ID":"HTB","name":"-bad-"}"#,
            r#"{"ID":"HTB","name":7}"#,
            r#"{"ID":"HTB","ts":1}"#,
            r#"{"ID":"HTB","name":"web1","ver":"\u0007"}"#,
            r#"{"ID":"HTB","name":"web1""#,
            r#"{"ID":"PLG","name":"web1","plugin":"cpu","data":{"a":1}}"#,
            r#"{"name":"web1","ID":"HTB"}"#,
            r#"{"ID":"XXX","name":"web1"}"#,
            r"[1]",
        ];
        for text in texts {
            let tree = serde_json::from_str::<Value>(text)
                .map_err(|e| Reject::BadJson(e.to_string()))
                .and_then(parse_client);
            assert_eq!(parse_client_text(text), tree, "{text}");
        }
        // The straight path takes what the receiver prints.
        let msg = ClientMessage::Heartbeat(Heartbeat {
            header: Header {
                name: "web1".into(),
                ts: Some(1),
                seq: Some(2),
                v: Some(1),
            },
            interval: Some(30),
            rtt: Some(0.25),
            ver: Some("0.1.0".into()),
        });
        let printed = serde_json::to_string(&msg).unwrap();
        assert!(plain_heartbeat(printed.as_bytes()).is_some(), "{printed}");
        assert_eq!(parse_client_text(&printed), Ok(msg));
    }

    #[test]
    fn plain_heartbeats_decode_as_the_tree_does() {
        let mut texts = vec![
            r#"{"ID":"HTB","name":"Web1","ts":5,"seq":7,"interval":30,"rtt":1.5,"ver":"1.2","v":1}"#.to_string(),
            r#"{"interval":30,"name":"web1","ID":"HTB","seq":1,"ts":2}"#.into(),
            r#"  {"ID":"HTB","name":"web1"}
"#.into(),
            r#"{"ID":"HTB","name":"web1","extra":1}"#.into(),
            r#"{"ID":"HTB","name":"web1","ID":"MSG","text":"x"}"#.into(),
            r#"{"ID":"HTB","name":"web1","name":"other"}"#.into(),
            r#"{"ID":"H\u0054B","name":"web1"}"#.into(),
            r#"{"ID":"HTB","name":"web1","interval":0}"#.into(),
            r#"{"ID":"HTB","name":"web1","rtt":"fast"}"#.into(),
            r#"{"ID":"HTB","name":"web1","ver":"a\u0000b"}"#.into(),
            r#"{"ID":"HTB","name":"web1","v":2}"#.into(),
            r#"{"ID":"HTB","name":"we b1"}"#.into(),
            r#"{"ID":"HTB","name":null}"#.into(),
            r#"{"ID":"HTB","name":"web1"} trailing"#.into(),
            r#"{"ID":"BOT","name":"web1"}"#.into(),
            format!(r#"{{"ID":"HTB","name":"web1","ver":"{}"}}"#, "x".repeat(70_000)),
        ];
        texts.push(format!(r#"{{"ID":"HTB","name":"{}"}}"#, "a".repeat(300)));
        for text in &texts {
            let tree =
                decode_object(text.as_bytes(), &limits()).and_then(|d| client_message(d.message));
            let straight = decode_client(text.as_bytes(), &limits()).map(|d| d.message);
            assert_eq!(straight, tree, "{text}");
        }
        let signed = encode(
            &serde_json::json!({"ID": "HTB", "name": "web1", "seq": 3}),
            usize::MAX,
            Some((b"key", 1, 2)),
        );
        let d = decode_client(&signed, &limits()).unwrap();
        assert!(d.signature.is_some());
        // Stricter limits than a plain heartbeat needs: the tree checks them.
        let strict = Limits {
            max_string: 8,
            ..limits()
        };
        assert!(!strict.hold_plain_heartbeats());
        let long = br#"{"ID":"HTB","name":"a-long-host-name"}"#;
        assert_eq!(
            decode_client(long, &strict).unwrap_err().reason(),
            "too_big"
        );
        assert!(plain_heartbeat(&signed[..signed.len() - crate::sign::TRAILER_LEN]).is_some());
    }

    #[test]
    fn messages_print_as_their_json_trees() {
        let header = Header {
            name: "db1".into(),
            ts: Some(3),
            seq: None,
            v: Some(1),
        };
        let client = [
            ClientMessage::Heartbeat(Heartbeat {
                header: header.clone(),
                interval: Some(5),
                ..Heartbeat::default()
            }),
            ClientMessage::Plugin(PluginData {
                header: header.clone(),
                plugin: "cpu".into(),
                data: serde_json::json!({"a": [1, 2]})
                    .as_object()
                    .unwrap()
                    .clone(),
            }),
            ClientMessage::Boot(Notice {
                header: header.clone(),
                ver: Some("1".into()),
            }),
            ClientMessage::Shutdown(Notice {
                header: header.clone(),
                ver: None,
            }),
            ClientMessage::Message(TextMessage {
                header: header.clone(),
                text: "hi".into(),
                cmd: Some(4),
                exit: Some(-1),
            }),
        ];
        for m in &client {
            let printed = serde_json::to_string(m).unwrap();
            assert!(
                printed.starts_with(&format!(r#"{{"ID":"{}","#, m.id())),
                "{printed}"
            );
            // What is printed decodes to the same message.
            let back = decode_client(printed.as_bytes(), &limits())
                .unwrap()
                .message;
            assert_eq!(&back, m, "{printed}");
        }
        assert_eq!(
            client[0].to_json(),
            serde_json::json!({"ID": "HTB", "name": "db1", "ts": 3, "v": 1, "interval": 5})
        );
        let ack = Ack {
            name: "db1".into(),
            ts: Some(1),
            seq: Some(2),
            request_update: true,
            queue: vec![
                Queued::Command(Command {
                    id: 1,
                    command: "restart".into(),
                }),
                Queued::Update(Update { id: 2 }),
            ],
        };
        let printed = crate::message::ack_text(&ack);
        assert_eq!(
            serde_json::from_slice::<Value>(&printed).unwrap(),
            serde_json::json!({"ID": "ACK", "name": "db1", "ts": 1, "seq": 2,
                "request_update": true,
                "queue": [{"ID": "CMD", "id": 1, "command": "restart"}, {"ID": "UPD", "id": 2}]})
        );
        let server = ServerMessage::Ack(ack);
        assert_eq!(printed, serde_json::to_vec(&server).unwrap());
        assert_eq!(decode_server(&printed, &limits()).unwrap().message, server);
    }

    #[test]
    fn compressed_round_trip() {
        let msg = ClientMessage::Message(TextMessage {
            header: Header {
                name: "db1".into(),
                ..Header::default()
            },
            text: "x".repeat(5000),
            ..TextMessage::default()
        });
        let bytes = encode(&msg.to_json(), 1000, None);
        assert!(bytes.len() < 1000);
        let d = decode_client(&bytes, &limits()).unwrap();
        assert!(d.compressed);
        assert_eq!(d.message, msg);
    }

    #[test]
    fn zlib_bomb_stops_at_the_limit() {
        let huge = vec![b' '; 4 * 1024 * 1024];
        let mut text = b"{\"ID\":\"HTB\",\"name\":\"a\",\"pad\":\"".to_vec();
        text.extend_from_slice(&huge);
        let bomb = compress(&text);
        assert!(bomb.len() < 8 * 1024, "{}", bomb.len());
        let start = std::time::Instant::now();
        assert_eq!(
            decode_client(&bomb, &limits()),
            Err(Reject::ZlibBomb(256 * 1024))
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn hostile_datagrams_are_rejected_with_reasons() {
        let deep = format!(
            "{{\"ID\":\"HTB\",\"name\":\"a\",\"x\":{}{}}}",
            "[".repeat(40),
            "]".repeat(40)
        );
        let long_name = format!("{{\"ID\":\"HTB\",\"name\":\"{}\"}}", "a".repeat(10_000));
        let long_key = format!(
            "{{\"ID\":\"HTB\",\"name\":\"a\",\"{}\":1}}",
            "k".repeat(200)
        );
        let many = format!(
            "{{\"ID\":\"HTB\",\"name\":\"a\",\"x\":[{}0]}}",
            "0,".repeat(30_000)
        );
        let big = vec![b'x'; 70_000];
        let truncated = {
            let mut z = compress(br#"{"ID":"HTB","name":"web1","interval":10}"#);
            z.truncate(z.len() / 2);
            z
        };
        let cases: Vec<(&[u8], &str)> = vec![
            (b"", "empty"),
            (&big, "too_large"),
            (&truncated, "bad_zlib"),
            (b"\x78\x9c garbage", "bad_zlib"),
            (b"{\"ID\":\"HTB\",\"name\":\"\xff\xfe\"}", "not_utf8"),
            (deep.as_bytes(), "too_deep"),
            (b"{not json", "bad_json"),
            (b"{\"a\":1} trailing", "bad_json"),
            (long_key.as_bytes(), "too_big"),
            (many.as_bytes(), "too_big"),
            (b"{\"name\":\"a\"}", "missing_id"),
            (b"{\"ID\":\"XYZ\",\"name\":\"a\"}", "unknown_id"),
            (b"{\"ID\":7,\"name\":\"a\"}", "invalid_field"),
            (b"{\"ID\":\"HTB\"}", "bad_name"),
            (b"{\"ID\":\"HTB\",\"name\":\"a\\u0007b\"}", "bad_name"),
            (b"{\"ID\":\"HTB\",\"name\":\"a\\nb\"}", "bad_name"),
            (long_name.as_bytes(), "bad_name"),
            (b"{\"ID\":\"HTB\",\"name\":3}", "bad_name"),
            (
                b"{\"ID\":\"HTB\",\"name\":\"a\",\"interval\":0}",
                "invalid_field",
            ),
            (
                b"{\"ID\":\"HTB\",\"name\":\"a\",\"interval\":\"10\"}",
                "invalid_field",
            ),
            (
                b"{\"ID\":\"HTB\",\"name\":\"a\",\"rtt\":-1}",
                "invalid_field",
            ),
            (
                b"{\"ID\":\"HTB\",\"name\":\"a\",\"v\":99}",
                "unsupported_version",
            ),
            (
                b"{\"ID\":\"HTB\",\"name\":\"a\",\"v\":99999999999}",
                "unsupported_version",
            ),
            (
                b"{\"ID\":\"PLG\",\"name\":\"a\",\"plugin\":\"../x\",\"data\":{}}",
                "invalid_field",
            ),
            (
                b"{\"ID\":\"PLG\",\"name\":\"a\",\"plugin\":\"cpu\",\"data\":[]}",
                "invalid_field",
            ),
        ];
        for (bytes, reason) in cases {
            let got = decode_client(bytes, &limits());
            assert_eq!(
                got.as_ref().err().map(Reject::reason),
                Some(reason),
                "{:?} -> {got:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
            );
        }
    }

    #[test]
    fn server_messages_validate_command_names() {
        let ok = br#"{"ID":"ACK","name":"a","ts":5,"queue":[{"ID":"CMD","id":1,"command":"restart-web"}]}"#;
        assert!(decode_server(ok, &limits()).is_ok());
        let bad = br#"{"ID":"ACK","name":"a","queue":[{"ID":"CMD","id":1,"command":"rm -rf /"}]}"#;
        assert_eq!(
            decode_server(bad, &limits()).unwrap_err().reason(),
            "invalid_field"
        );
        assert_eq!(
            decode_server(br#"{"ID":"HTB","name":"a"}"#, &limits())
                .unwrap_err()
                .reason(),
            "unknown_id"
        );
    }
}
