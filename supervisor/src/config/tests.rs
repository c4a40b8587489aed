use super::*;
use hb_ipc::config::RoleConfig;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(Source::File("/t/hb.yaml".into()), text)
}

fn errors(text: &str) -> String {
    parse(text).expect_err("should be rejected").to_string()
}

#[test]
fn empty_file_is_the_default() {
    let c = parse("").unwrap();
    assert_eq!(c.hb_addr.to_string(), "127.0.0.1:50003");
    assert_eq!(c.hbd_addr.to_string(), "127.0.0.1:50004");
    let c = parse("# only a comment\n").unwrap();
    assert_eq!(c.hb_addr.port(), 50003);
}

#[test]
fn builtin_default_is_valid_and_loopback() {
    let c = Config::builtin();
    assert!(c.hb_addr.ip().is_loopback());
    assert!(c.hbd_addr.ip().is_loopback());
    assert!(c.state_dir.is_absolute());
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let e = errors("hb_port: 50003\nhbd_prot: 1\n");
    assert!(
        e.starts_with("/t/hb.yaml:2: hbd_prot: unknown field `hbd_prot`"),
        "{e}"
    );
    assert!(e.contains("docs/CONFIG.md"), "{e}");
}

#[test]
fn nested_unknown_key_is_named_with_its_path() {
    let e = errors("hosts:\n  web1:\n    owner: bob\n    wach: true\n");
    assert!(
        e.starts_with("/t/hb.yaml:4: hosts.web1.wach: unknown field `wach`"),
        "{e}"
    );
}

#[test]
fn bad_thresholds_and_unknown_profiles_name_key_and_line() {
    let e = errors("thresholds:\n  cpu_monitor:\n    cpu_percent:\n      warning: high\n");
    assert!(
        e.starts_with("/t/hb.yaml:4: thresholds.cpu_monitor.cpu_percent.warning: must be a number"),
        "{e}"
    );
    let e = errors("hosts:\n  web1:\n    threshold_config: [tight]\n");
    assert!(
        e.starts_with("/t/hb.yaml:3: hosts.web1.threshold_config: no profile \"tight\""),
        "{e}"
    );
    let ok = "threshold_configs:\n  tight:\n    thresholds:\n      cpu_monitor:\n        cpu_percent: {warning: 60, critical: 75}\nhosts:\n  web1:\n    threshold_config: tight\n";
    assert!(parse(ok).is_ok());
}

#[test]
fn the_channels_of_docs_notify_load() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/NOTIFY.md"))
        .expect("docs/NOTIFY.md");
    let start = doc.find("```yaml\n").expect("a yaml block") + 8;
    let end = start + doc[start..].find("```").expect("its end");
    let c = parse(&doc[start..end]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.file.notification_channels.len(), 12, "one of each type");
}

#[test]
fn the_web_is_shown_the_configuration_without_any_secret() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/NOTIFY.md"))
        .expect("docs/NOTIFY.md");
    let start = doc.find("```yaml\n").expect("a yaml block") + 8;
    let end = start + doc[start..].find("```").expect("its end");
    let mut text = doc[start..end]
        .replace("services/...", "services/SECRET-slack")
        .replace("webhooks/...", "webhooks/SECRET-discord")
        .replace(
            "https://example.net/hb",
            "https://example.net/hb/SECRET-hook",
        );
    let mut n = 0;
    while let Some(at) = text.find("\"...\"") {
        n += 1;
        text.replace_range(at..at + 5, &format!("SECRET-{n}"));
    }
    text.push_str(
            "users:\n  monkey: {}\n  a:\n    admin: true\n    password: \"pbkdf2:sha256:1000$SECRETsalt$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\nhb_key: SECRET-shared-key\n\
             metrics_token: SECRET-metrics-token\nrndc_key: /etc/hb/SECRET.key\n\
             hosts:\n  h1:\n    key: SECRET-host-key-long-enough\n",
        );
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let RoleConfig::Web(web) = c.slice(Role::Web) else {
        panic!("not a web slice")
    };
    // The slice holds the hashes and the metrics token hb-web needs, but what it shows
    // holds no secret.
    let json = serde_json::to_string(&(&web.server, &web.channels)).unwrap();
    assert!(!json.contains("SECRET"), "{json}");
    let file = &web.server["file"];
    assert_eq!(file["users"]["a"]["password"], "(hidden)");
    assert_eq!(
        file["users"]["monkey"],
        serde_json::json!({}),
        "a name is no secret"
    );
    assert_eq!(file["hosts"]["h1"]["key"], "(hidden)");
    assert_eq!(
        file["notification_channels"]["phone"]["secrets_set"],
        serde_json::json!(["token", "user"])
    );
    assert_eq!(
        file["notification_channels"]["phone"]["min_level"],
        "CRITICAL"
    );
    assert_eq!(
        web.channels["hook"]["secrets_set"],
        serde_json::json!(["secret", "url"])
    );
    assert_eq!(web.channels["ops_mail"]["smtp_server"], "mail.example.net");
    assert_eq!(web.server["source"], "/t/hb.yaml");
}

#[test]
fn the_thresholds_of_docs_alerting_load() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/ALERTING.md"))
        .expect("docs/ALERTING.md");
    let start = doc.find("```yaml\n").expect("a yaml block") + 8;
    let end = start + doc[start..].find("```").expect("its end");
    parse(&doc[start..end]).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_example_of_docs_dns_loads() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DNS.md"))
        .expect("docs/DNS.md");
    let start = doc.find("```yaml\n").expect("a yaml block") + 8;
    let end = start + doc[start..].find("```").expect("its end");
    let c = parse(&doc[start..end]).unwrap_or_else(|e| panic!("{e}"));
    let RoleConfig::Dnsupdate(d) = c.slice(Role::Dnsupdate) else {
        panic!("not a dnsupdate slice");
    };
    assert_eq!(d.server, Some(("ns1.example.net".into(), 53)));
    assert_eq!(d.dyndomains, ["dyn.example.net"]);
}

#[test]
fn parents_in_a_circle_are_refused() {
    let e =
        errors("hosts:\n  a:\n    parents: [b]\n  b:\n    parents: [c]\n  c:\n    parents: [A]\n");
    assert!(
        e.contains("hosts.a.parents: parents go round in a circle: a -> b -> c -> a"),
        "{e}"
    );
    assert!(parse("hosts:\n  a:\n    parents: [b]\n  b:\n    parents: [c]\n").is_ok());
}

#[test]
fn wrong_type_names_key_and_line() {
    let e = errors("interval: 10\nhb_port: lots\n");
    assert!(
        e.starts_with("/t/hb.yaml:2: hb_port: invalid type: string"),
        "{e}"
    );
    let e = errors("hosts:\n  web1:\n    watch: maybe\n");
    assert!(
        e.starts_with("/t/hb.yaml:3: hosts.web1.watch: invalid type"),
        "{e}"
    );
}

#[test]
fn syntax_error_names_the_line() {
    let e = errors("hb_port: 1\nhosts: [\n");
    assert!(e.starts_with("/t/hb.yaml:"), "{e}");
    assert!(e.contains(":3:") || e.contains(":2:"), "{e}");
}

#[test]
fn semantic_errors_are_all_reported_with_lines() {
    let text = "\
users:
  alice:
    admin: true
    password: plain
hosts:
  web1:
    owner: bob
  \"bad host\": {}
hb_port: 0
state_dir: relative/dir
default_owner: carol
notification_channels:
  x:
    type: carrier-pigeon
";
    let e = errors(text);
    for want in [
        "/t/hb.yaml:4: users.alice.password:",
        "/t/hb.yaml:6: hosts.web1: user \"bob\" is not defined",
        "/t/hb.yaml:8: hosts.bad host:",
        "/t/hb.yaml:9: hb_port: must be a port number",
        "/t/hb.yaml:10: state_dir: relative/dir must be an absolute path",
        "/t/hb.yaml:11: default_owner: user \"carol\"",
        "/t/hb.yaml:14: notification_channels.x.type: unknown channel type",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}

#[test]
fn the_udp_receive_buffer_is_bounded() {
    assert_eq!(parse("").unwrap().udp_receive_buffer, 64 << 20);
    assert_eq!(
        parse("udp_receive_buffer: 268435456\n")
            .unwrap()
            .udp_receive_buffer,
        256 << 20
    );
    for bad in ["100", "4294967296", "-1", "lots"] {
        let e = errors(&format!("udp_receive_buffer: {bad}\n"));
        assert!(e.contains("/t/hb.yaml:1: udp_receive_buffer"), "{bad}: {e}");
    }
}

#[test]
fn host_names_ignore_case() {
    let c = parse("hosts:\n  Web1:\n    interval: 5\ndrophosts: [OLD]\n").unwrap();
    assert!(c.file.hosts.contains_key("web1"));
    assert_eq!(c.file.drophosts, ["old"]);
    let e = errors("hosts:\n  web1: {}\n  WEB1: {}\n");
    assert!(e.contains("appears twice"), "{e}");
}

#[test]
fn obsolete_hbd_keys_explain_themselves() {
    let e = errors("hb_port: 50003\npickfile: /var/lib/hbd.pickle\n");
    assert!(
        e.contains("/t/hb.yaml:2: pickfile: key of the original hbd"),
        "{e}"
    );
}

#[test]
fn hostile_documents_are_errors() {
    for text in [
        "- a\n- b\n",
        "!!binary aGVsbG8=\n",
        "hb_port: 99999999999\n",
        "a: &a [*a]\n",
        "hosts: {web1: {interval: -5}}\n",
        "grace: .nan\n",
        "\u{0}",
    ] {
        assert!(parse(text).is_err(), "{text:?}");
    }
}

#[test]
fn slices_carry_only_their_part() {
    let c = parse(
            "notification_channels:\n  p:\n    type: pushover\n    token: s3cret\n    user: u\nusers:\n  a:\n    admin: true\n    notification_channels: [p]\nhb_key: sharedsharedshared\nhosts:\n  h1:\n    key: hostkeyhostkeyhostkey\n",
        )
        .unwrap();
    for role in Role::ALL {
        let json = serde_json::to_string(&c.slice(role)).unwrap();
        assert_eq!(
            json.contains("s3cret"),
            role == Role::Notifier,
            "{role}: {json}"
        );
        for secret in ["hostkeyhostkey", "sharedshared"] {
            assert_eq!(
                json.contains(secret),
                role == Role::Receiver,
                "{role}: {json}"
            );
        }
    }
    assert_eq!(c.default_owner().as_deref(), Some("a"));
}

#[test]
fn dns_keys_are_checked_and_reach_only_the_updater() {
    let c = parse(
            "dyndomains: [dyn.example.net]\ndns_server: \"[::1]:5353\"\ndns_zone: example.net.\ndns_ttl: 300\ndns_timeout: 2.5\nrndc_key: /etc/hb/ddns.key\nhosts:\n  web1: {dns_failover: true}\ndyndnshosts: [Laptop]\n",
        )
        .unwrap();
    let RoleConfig::Dnsupdate(d) = c.slice(Role::Dnsupdate) else {
        panic!("not a dnsupdate slice");
    };
    assert_eq!(d.server, Some(("::1".into(), 5353)));
    assert_eq!((d.ttl, d.timeout_ms), (300, 2500));
    assert_eq!(d.nsupdate_bin, PathBuf::from("/usr/bin/nsupdate"));
    assert_eq!(c.file.dyndnshosts, ["laptop"]);
    for role in Role::ALL {
        let json = serde_json::to_string(&c.slice(role)).unwrap();
        assert_eq!(json.contains("ddns.key"), role == Role::Dnsupdate, "{role}");
    }

    assert_eq!(
        dns_server("ns1.example.net"),
        Ok(("ns1.example.net".into(), 53))
    );
    assert_eq!(dns_server("192.0.2.1:5300"), Ok(("192.0.2.1".into(), 5300)));
    assert_eq!(dns_server("2001:db8::1"), Ok(("2001:db8::1".into(), 53)));
    for bad in ["ns1:0", "ns1:99999", "ns 1", "ns1;rm", "", "ns1\nsend"] {
        assert!(dns_server(bad).is_err(), "{bad:?} accepted");
    }

    let e = errors(
        "dyndomains: [\"bad domain\"]\ndns_server: \"x y\"\ndns_zone: \"z;z\"\ndns_ttl: 0\ndns_timeout: 0.1\nrndc_key: ddns.key\nnsupdate_bin: nsupdate\ndyndnshosts: [\"a b\"]\n",
    );
    for want in [
        "/t/hb.yaml:1: dyndomains: \"bad domain\" is not a DNS domain name",
        "/t/hb.yaml:2: dns_server:",
        "/t/hb.yaml:3: dns_zone:",
        "/t/hb.yaml:4: dns_ttl: must be 1 to 604800 seconds, not 0",
        "/t/hb.yaml:5: dns_timeout: must be 0.5 to 300 seconds, not 0.1",
        "/t/hb.yaml:6: rndc_key: ddns.key must be an absolute path",
        "/t/hb.yaml:7: nsupdate_bin: nsupdate must be an absolute path",
        "/t/hb.yaml:8: dyndnshosts",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    let e = errors("hosts:\n  web1:\n    dyndns: true\n");
    assert!(
        e.contains("hosts.web1.dyndns: dynamic DNS needs `dyndomains`"),
        "{e}"
    );
    assert!(errors("dyndnshosts: [web1]\n").contains("dyndnshosts: dynamic DNS needs"));
}

#[test]
fn user_specs_resolve_per_role() {
    let c = parse("user: hb\ngroup: hbg\nweb_user: www:www\nengine_user: '1234'\n").unwrap();
    assert_eq!(
        c.user_spec(Role::Receiver),
        ("hb".into(), Some("hbg".into()))
    );
    assert_eq!(c.user_spec(Role::Web), ("www".into(), Some("www".into())));
    assert_eq!(
        c.user_spec(Role::Engine),
        ("1234".into(), Some("hbg".into()))
    );
}

#[test]
fn locate_follows_indentation() {
    let text = "a:\n  b:\n    c: 1\nb:\n  c: 2\n";
    assert_eq!(locate(text, &["b", "c"]), Some(5));
    assert_eq!(locate(text, &["a", "b", "c"]), Some(3));
    assert_eq!(locate(text, &["a", "x"]), Some(1));
    assert_eq!(locate(text, &["z"]), None);
}
