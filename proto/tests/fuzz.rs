#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
//! Property tests of the datagram decoders, run in CI with a bounded number of cases: no
//! input makes them panic, and whatever they accept satisfies the documented limits.

use hb_proto::datagram::{Limits, decode_client, decode_server, encode};
use hb_proto::message::{ClientMessage, Header, Heartbeat};
use hb_proto::sign;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Bytes that look a little like datagrams, so the fuzzer gets past the first checks.
fn datagram_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        "[{}\\[\\]\":,a-zA-Z0-9 \\\\u]{0,400}"
            .prop_map(|s| format!("{{\"ID\":\"HTB\",\"name\":\"a\",{s}").into_bytes()),
        ("[A-Z]{3}", "\\PC{0,80}", any::<i64>()).prop_map(|(id, name, n)| format!(
            "{{\"ID\":\"{id}\",\"name\":\"{name}\",\"interval\":{n},\"seq\":{n}}}"
        )
        .into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..512).prop_map(|mut v| {
            v.insert(0, 0x78);
            v.insert(1, 0x9c);
            v
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoders_never_panic(bytes in datagram_like()) {
        let limits = Limits::default();
        if let Ok(d) = decode_client(&bytes, &limits) {
            prop_assert!(hb_proto::names::check_host_name(&d.message.header().name).is_ok());
        }
        let _ = decode_server(&bytes, &limits);
        let _ = sign::split(&bytes);
    }

    #[test]
    fn flipped_bytes_never_verify(name in "[a-z][a-z0-9-]{0,20}", seq in any::<u64>(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let msg = ClientMessage::Heartbeat(Heartbeat {
            header: Header { name, seq: Some(seq), ..Header::default() },
            interval: Some(10),
            ..Heartbeat::default()
        });
        let key = b"0123456789abcdef";
        let mut bytes = encode(&msg.to_json(), usize::MAX, Some((key, 1, seq)));
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let split = sign::split(&bytes);
        let verified = split.signature.is_some_and(|(t, signed)| sign::verify(key, signed, &t));
        prop_assert!(!verified);
    }

    #[test]
    fn valid_heartbeats_round_trip(name in "[a-z]([a-z0-9-]{0,29}[a-z0-9])?(\\.[a-z0-9]{1,10}){0,3}", interval in 1u32..86_400, seq in any::<u64>(), rtt in 0.0f64..10_000.0, compress in any::<bool>()) {
        let msg = ClientMessage::Heartbeat(Heartbeat {
            header: Header { name, ts: Some(seq / 2), seq: Some(seq), v: None },
            interval: Some(interval),
            rtt: Some(rtt),
            ver: Some("0.1.0".into()),
        });
        let bytes = encode(&msg.to_json(), if compress { 0 } else { usize::MAX }, None);
        let decoded = decode_client(&bytes, &Limits::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decoded.message, msg);
    }
}
