#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
//! The test vectors in proto/vectors.json: every documented datagram decodes to the documented
//! message (or is rejected for the documented reason), and canonical ones encode back to the
//! same bytes. `HB_WRITE_VECTORS=1 cargo test -p hb-proto --test vectors` regenerates the file
//! from the cases below; review the diff before committing it.

use hb_proto::datagram::{Limits, decode_client, decode_server, encode};
use hb_proto::sign;
use serde_json::{Value, json};

const KEY: &str = "vector-key-0123456789";
const TS: u64 = 1_795_300_000_000;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// (name, direction, message JSON, compress_over, signed counter)
fn accepted() -> Vec<(&'static str, &'static str, Value, usize, Option<u64>)> {
    let big: Value = json!({"partitions": (0..40).map(|i| (format!("/srv/{i}"), json!({"percent": i, "free_gb": 100 - i}))).collect::<serde_json::Map<_, _>>()});
    vec![
        (
            "netcat heartbeat",
            "client",
            json!({"ID":"HTB","name":"web1","interval":10}),
            usize::MAX,
            None,
        ),
        (
            "full heartbeat",
            "client",
            json!({"ID":"HTB","name":"web1.example.net","interval":10,"ts":TS,"seq":42,"rtt":0.731,"ver":"0.1.0","v":1}),
            usize::MAX,
            None,
        ),
        (
            "signed heartbeat",
            "client",
            json!({"ID":"HTB","name":"web1","interval":10,"ts":TS,"seq":43}),
            usize::MAX,
            Some(43),
        ),
        (
            "compressed plugin data",
            "client",
            json!({"ID":"PLG","name":"db1","ts":TS,"seq":7,"plugin":"disk_monitor","data":big}),
            512,
            None,
        ),
        (
            "signed compressed plugin data",
            "client",
            json!({"ID":"PLG","name":"db1","ts":TS,"seq":8,"plugin":"disk_monitor","data":big}),
            512,
            Some(8),
        ),
        (
            "boot",
            "client",
            json!({"ID":"BOT","name":"web1","ts":TS,"seq":1,"ver":"0.1.0"}),
            usize::MAX,
            None,
        ),
        (
            "shutdown",
            "client",
            json!({"ID":"SHD","name":"web1","ts":TS,"seq":99}),
            usize::MAX,
            None,
        ),
        (
            "free text",
            "client",
            json!({"ID":"MSG","name":"web1","ts":TS,"seq":5,"text":"disk replaced"}),
            usize::MAX,
            None,
        ),
        (
            "command result",
            "client",
            json!({"ID":"MSG","name":"web1","ts":TS,"seq":6,"text":"ok\n","cmd":17,"exit":0}),
            usize::MAX,
            None,
        ),
        (
            "plain ack",
            "server",
            json!({"ID":"ACK","name":"web1","ts":TS,"seq":42}),
            usize::MAX,
            None,
        ),
        (
            "ack asking for plugin data",
            "server",
            json!({"ID":"ACK","name":"web1","ts":TS,"seq":42,"request_update":true}),
            usize::MAX,
            None,
        ),
        (
            "signed ack with a queue",
            "server",
            json!({"ID":"ACK","name":"web1","ts":TS,"seq":43,"queue":[{"ID":"CMD","id":17,"command":"restart-nginx"},{"ID":"UPD","id":18}]}),
            usize::MAX,
            Some(43),
        ),
        (
            "command",
            "server",
            json!({"ID":"CMD","id":17,"command":"restart-nginx"}),
            usize::MAX,
            None,
        ),
        (
            "update",
            "server",
            json!({"ID":"UPD","id":18}),
            usize::MAX,
            None,
        ),
    ]
}

fn rejected() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    use std::io::Write;
    let zlib = |text: &[u8]| {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(text).unwrap();
        z.finish().unwrap()
    };
    let mut bomb_text = br#"{"ID":"HTB","name":"a","x":""#.to_vec();
    bomb_text.extend(std::iter::repeat_n(b'0', 1 << 20));
    bomb_text.extend_from_slice(b"\"}");
    let mut truncated = zlib(br#"{"ID":"HTB","name":"web1","interval":10}"#);
    truncated.truncate(12);
    let mut tampered = br#"{"ID":"HTB","name":"web1","ts":1795300000000,"seq":43}"#.to_vec();
    sign::append(&mut tampered, KEY.as_bytes(), TS, 43);
    tampered[20] = b'2';
    vec![
        ("zlib bomb", zlib(&bomb_text), "zlib_bomb"),
        ("truncated zlib", truncated, "bad_zlib"),
        (
            "invalid utf-8",
            b"{\"ID\":\"HTB\",\"name\":\"\xc3\x28\"}".to_vec(),
            "not_utf8",
        ),
        (
            "deep nesting",
            format!(
                "{{\"ID\":\"HTB\",\"name\":\"a\",\"x\":{}1{}}}",
                "[".repeat(64),
                "]".repeat(64)
            )
            .into_bytes(),
            "too_deep",
        ),
        (
            "unknown id",
            br#"{"ID":"FOO","name":"web1"}"#.to_vec(),
            "unknown_id",
        ),
        (
            "missing name",
            br#"{"ID":"HTB","interval":10}"#.to_vec(),
            "bad_name",
        ),
        (
            "control character in name",
            b"{\"ID\":\"HTB\",\"name\":\"web\\u00011\"}".to_vec(),
            "bad_name",
        ),
        ("tampered signed heartbeat", tampered, "bad_signature"),
    ]
}

fn generate() -> Value {
    let mut vectors = Vec::new();
    for (name, direction, message, compress_over, counter) in accepted() {
        let sign = counter.map(|c| (KEY.as_bytes(), TS, c));
        let bytes = encode(&message, compress_over, sign);
        vectors.push(json!({"name": name, "direction": direction, "hex": hex(&bytes), "message": message, "signed": counter.map(|c| json!({"ts": TS, "counter": c})), "canonical": true}));
    }
    for (name, bytes, reason) in rejected() {
        vectors.push(
            json!({"name": name, "direction": "client", "hex": hex(&bytes), "rejected": reason}),
        );
    }
    json!({"key": KEY, "note": "Generated by proto/tests/vectors.rs; see docs/PROTOCOL.md.", "vectors": vectors})
}

fn path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors.json")
}

#[test]
fn vectors_decode_and_encode_back() {
    if std::env::var_os("HB_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generate()).unwrap();
        std::fs::write(path(), text + "\n").unwrap();
    }
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let key = file["key"].as_str().unwrap().as_bytes();
    let limits = Limits::default();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 20);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let bytes = unhex(v["hex"].as_str().unwrap());
        if let Some(reason) = v["rejected"].as_str() {
            let got = decode_client(&bytes, &limits);
            let got = match got {
                Ok(d) => match d.signature {
                    Some((t, signed)) if !sign::verify(key, signed, &t) => Err("bad_signature"),
                    _ => Ok(d.message),
                },
                Err(e) => Err(e.reason()),
            };
            assert_eq!(got.err(), Some(reason), "{name}");
            continue;
        }
        let (json, signature) = match v["direction"].as_str().unwrap() {
            "client" => {
                let d = decode_client(&bytes, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
                (d.message.to_json(), d.signature)
            }
            _ => {
                let d = decode_server(&bytes, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
                (d.message.to_json(), d.signature)
            }
        };
        assert_eq!(json, v["message"], "{name}: decodes to something else");
        match (&v["signed"], signature) {
            (Value::Null, None) => {}
            (want, Some((t, signed))) => {
                assert!(sign::verify(key, signed, &t), "{name}: signature");
                assert_eq!(
                    json!({"ts": t.ts_ms, "counter": t.counter}),
                    *want,
                    "{name}"
                );
            }
            (want, got) => panic!("{name}: signed {want} but got {got:?}"),
        }
        // Encoding the decoded message again gives the same bytes.
        let compress_over = if bytes[0] == b'{' { usize::MAX } else { 512 };
        let sign = v["signed"]["counter"]
            .as_u64()
            .map(|c| (key, v["signed"]["ts"].as_u64().unwrap(), c));
        assert_eq!(
            hex(&encode(&json, compress_over, sign)),
            v["hex"].as_str().unwrap(),
            "{name}: does not encode back"
        );
    }
}
