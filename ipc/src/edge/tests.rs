use super::*;

#[test]
fn web_feed_lines_decode_as_the_tagged_enums_did() {
    let summary = serde_json::json!({"name": "web1"});
    let good = [
            r#"{"type":"changes","changes":[]}"#.to_string(),
            r#"{"type":"changes","changes":[{"change":"seen","host":"a","last_seen_ms":1,"heartbeats":2,"rtt_ms":null},{"change":"seen","host":"b","last_seen_ms":1,"heartbeats":2,"rtt_ms":0.5},{"change":"resync"},{"change":"dropped","host":"c"},{"change":"sample","host":"d","plugin":"cpu","time_ms":3}]}"#.into(),
            r#"{"changes":[{"host":"a","change":"dropped"}],"type":"changes"}"#.into(),
            r#"{"type":"changes","changes":[{"change":"seen","host":"a","last_seen_ms":1,"heartbeats":2}]}"#.into(),
        ];
    for line in &good {
        let msg: EngineToWeb = serde_json::from_str(line).expect(line);
        let again = serde_json::to_string(&msg).unwrap();
        assert_eq!(serde_json::from_str::<EngineToWeb>(&again).unwrap(), msg);
    }
    let bad = [
            r#"{"type":"changes"}"#.to_string(),
            r#"{"type":"changes","changes":[],"re":1}"#.into(),
            r#"{"type":"answer","re":1,"changes":[]}"#.into(),
            r#"{"type":"nothing","changes":[]}"#.into(),
            r#"{"type":"changes","changes":[{"change":"seen","host":"a","last_seen_ms":1}]}"#.into(),
            r#"{"type":"changes","changes":[{"change":"seen","host":7,"last_seen_ms":1,"heartbeats":2}]}"#.into(),
            r#"{"type":"changes","changes":[{"change":"dropped","host":"a","plugin":"x"}]}"#.into(),
            r#"{"type":"changes","changes":[{"change":"resync","host":"a"}]}"#.into(),
            r#"{"type":"changes","changes":[{"change":"seen","host":"a","last_seen_ms":1,"heartbeats":2,"extra":1}]}"#.into(),
            format!(r#"{{"type":"changes","changes":[{{"change":"dropped","host":{summary}}}]}}"#),
            r#"{"type":"changes","changes":[{"change":"host","host":"a"}]}"#.into(),
            r#"{"type":"changes","changes":[{"change":"seen","host":"a","host":"b","last_seen_ms":1,"heartbeats":2}]}"#.into(),
        ];
    for line in &bad {
        assert!(serde_json::from_str::<EngineToWeb>(line).is_err(), "{line}");
    }
}

#[test]
fn golden_received_line() {
    let msg = ReceiverToEngine::Received {
        host: "web1".into(),
        source: "127.0.0.2:4000".parse().unwrap(),
        received_ms: 1,
        signed: false,
        message: serde_json::json!({"ID": "HTB", "name": "web1"}).into(),
    };
    let line = serde_json::to_string(&msg).unwrap();
    assert_eq!(
        line,
        r#"{"type":"received","host":"web1","source":"127.0.0.2:4000","received_ms":1,"signed":false,"message":{"ID":"HTB","name":"web1"}}"#
    );
    assert_eq!(
        serde_json::from_str::<ReceiverToEngine>(&line).unwrap(),
        msg
    );
}

#[test]
fn receiver_lines_with_wrong_or_missing_fields_are_refused() {
    for line in [
        r#"{"type":"received","source":"127.0.0.2:4000","received_ms":1,"signed":false,"message":{}}"#,
        r#"{"type":"received","host":"a","source":"127.0.0.2:4000","received_ms":1,"signed":false}"#,
        r#"{"type":"received","host":"a","source":"127.0.0.2:4000","received_ms":1,"signed":false,"message":{},"reason":"x"}"#,
        r#"{"type":"rejected","source":"127.0.0.2:4000","received_ms":1,"reason":"x"}"#,
        r#"{"type":"rejected","source":"127.0.0.2:4000","received_ms":1,"reason":"x","detail":"y","host":"a"}"#,
        r#"{"type":"other","source":"127.0.0.2:4000","received_ms":1}"#,
        r#"{"type":"rejected","received_ms":1,"reason":"x","detail":"y"}"#,
        r#"{"type":"drained"}"#,
        r#"{"type":"drained","up_to_ms":-1}"#,
        r#"{"type":"drained","up_to_ms":1,"received_ms":1}"#,
        r#"{"type":"drained","up_to_ms":1,"source":"127.0.0.2:4000"}"#,
        r#"{"type":"drained","up_to_ms":1,"count":1}"#,
        r#"{"type":"lost","count":1}"#,
        r#"{"type":"lost","at_ms":1}"#,
        r#"{"type":"lost","count":1,"at_ms":1,"up_to_ms":1}"#,
        r#"{"type":"lost","count":1,"at_ms":1,"host":"a"}"#,
        r#"{"type":"rejected","source":"127.0.0.2:4000","received_ms":1,"reason":"x","detail":"y","up_to_ms":1}"#,
        r#"{"type":"received","host":"a","source":"127.0.0.2:4000","received_ms":1,"signed":false,"message":{},"extra":1}"#,
        r#"{"type":"received","host":"a","source":"127.0.0.2:4000","received_ms":1,"signed":false,"message":{"#,
    ] {
        assert!(
            serde_json::from_str::<ReceiverToEngine>(line).is_err(),
            "{line}"
        );
    }
    let rejected = ReceiverToEngine::Rejected {
        source: "[::1]:9".parse().unwrap(),
        received_ms: 2,
        reason: "bad_json".into(),
        detail: "not an object".into(),
    };
    let line = serde_json::to_string(&rejected).unwrap();
    assert_eq!(
        serde_json::from_str::<ReceiverToEngine>(&line).unwrap(),
        rejected
    );
    for (msg, text) in [
        (
            ReceiverToEngine::Drained { up_to_ms: 3 },
            r#"{"type":"drained","up_to_ms":3}"#,
        ),
        (
            ReceiverToEngine::Lost { count: 5, at_ms: 4 },
            r#"{"type":"lost","count":5,"at_ms":4}"#,
        ),
    ] {
        let line = serde_json::to_string(&msg).unwrap();
        assert_eq!(line, text);
        assert_eq!(
            serde_json::from_str::<ReceiverToEngine>(&line).unwrap(),
            msg
        );
    }
}

#[test]
fn a_ping_is_one_flat_object_and_refuses_strangers() {
    let line =
        r#"{"query":"ping","uuid":"u","kind":"start","source":"127.0.0.1:9","method":"GET"}"#;
    let q: Query = serde_json::from_str(line).unwrap();
    assert!(matches!(&q, Query::Ping(p) if p.kind == "start" && p.exit.is_none()));
    assert_eq!(serde_json::to_string(&q).unwrap(), line);
    let stranger = line.replace('}', r#","extra":1}"#);
    assert!(serde_json::from_str::<Query>(&stranger).is_err());
}

#[test]
fn silent_directions_accept_nothing() {
    for line in ["{}", "null", r#"{"type":"x"}"#, "\"a\""] {
        assert!(serde_json::from_str::<Silent>(line).is_err());
    }
}

#[test]
fn request_and_answer_round_trip() {
    let req = WebToEngine::Request {
        id: 9,
        query: Query::ListHosts {},
    };
    let line = serde_json::to_string(&req).unwrap();
    assert_eq!(
        line,
        r#"{"type":"request","id":9,"query":{"query":"list_hosts"}}"#
    );
    assert_eq!(serde_json::from_str::<WebToEngine>(&line).unwrap(), req);
}
