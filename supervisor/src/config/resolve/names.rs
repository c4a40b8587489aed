//! Names and what refers to them: hosts and checks (compared without case), users, channels,
//! profiles, parents, and the users roles run as.

use std::collections::BTreeMap;

use hb_ipc::config::{HostConfig, normalize_uuid};

use super::Report;
use crate::config::File;
use crate::config::errors::{ConfigError, locate};

/// Host and check names are DNS names, compared without case, as the receiver does on the
/// wire; two that differ only in case are an error.
pub(super) fn fold_case(file: &mut File, text: &str, errors: &mut Vec<ConfigError>) {
    let mut hosts = BTreeMap::new();
    for (name, host) in std::mem::take(&mut file.hosts) {
        let lower = name.to_ascii_lowercase();
        if hosts.insert(lower.clone(), host).is_some() {
            errors.push(ConfigError {
                line: locate(text, &["hosts", &name]),
                key: format!("hosts.{name}"),
                message: format!("{lower:?} appears twice (host names ignore case)"),
            });
        }
    }
    for host in hosts.values_mut() {
        host.parents
            .iter_mut()
            .for_each(|p| p.make_ascii_lowercase());
    }
    file.hosts = hosts;
    let mut checks = BTreeMap::new();
    for (name, check) in std::mem::take(&mut file.checks) {
        let lower = name.to_ascii_lowercase();
        if checks.insert(lower.clone(), check).is_some() {
            errors.push(ConfigError {
                line: locate(text, &["checks", &name]),
                key: format!("checks.{name}"),
                message: format!("{lower:?} appears twice (check names ignore case)"),
            });
        }
    }
    file.checks = checks;
    for list in [
        &mut file.watchhosts,
        &mut file.dyndnshosts,
        &mut file.drophosts,
    ] {
        for name in list.iter_mut() {
            name.make_ascii_lowercase();
        }
    }
}

pub(super) fn check_user_specs(file: &File, err: &mut Report<'_>) {
    for (key, spec) in [
        ("user", &file.user),
        ("group", &file.group),
        ("receiver_user", &file.receiver_user),
        ("engine_user", &file.engine_user),
        ("notifier_user", &file.notifier_user),
        ("dnsupdate_user", &file.dnsupdate_user),
        ("web_user", &file.web_user),
    ] {
        if let Some(spec) = spec
            && (spec.is_empty()
                || spec.split(':').count() > 2
                || spec.contains(char::is_whitespace))
        {
            err(
                key,
                format!("{spec:?} must be `user`, `user:group`, `uid` or `uid:gid`"),
            );
        }
    }
}

/// Every name that refers to another: checks, hosts, lists, users, channels.
pub(super) fn check_references(file: &File, rules: Option<&hb_rules::Rules>, err: &mut Report<'_>) {
    check_checks(file, err);
    check_hosts(file, rules, err);
    check_users_and_channels(file, err);
}

/// Users named as owner, manager or monitor must exist, when the file has users at all.
fn check_users_named<'a>(
    file: &File,
    key: &str,
    users: impl Iterator<Item = &'a String>,
    err: &mut Report<'_>,
) {
    if file.users.is_empty() {
        return;
    }
    for user in users {
        if !file.users.contains_key(user) {
            err(key, format!("user {user:?} is not defined under users"));
        }
    }
}

fn check_channels_named(file: &File, key: &str, channels: &[String], err: &mut Report<'_>) {
    for ch in channels {
        if !file.notification_channels.contains_key(ch) {
            err(
                key,
                format!("channel {ch:?} is not defined under notification_channels"),
            );
        }
    }
}

fn check_checks(file: &File, err: &mut Report<'_>) {
    let mut uuids = BTreeMap::new();
    for (name, check) in &file.checks {
        let key = format!("checks.{name}");
        if let Err(why) = hb_proto::names::check_host_name(name) {
            err(&key, format!("{why} (a check is named like a host)"));
        }
        if file.hosts.contains_key(name) {
            err(&key, format!("{name:?} is a host under hosts too"));
        }
        for (field, why) in check.problems(hb_rules::cron::check) {
            err(&format!("{key}.{field}"), why);
        }
        if let Some(uuid) = normalize_uuid(&check.uuid)
            && let Some(other) = uuids.insert(uuid, name.clone())
        {
            err(
                &format!("{key}.uuid"),
                format!("the UUID of check {other:?} too"),
            );
        }
        let users = check
            .owner
            .iter()
            .chain(&check.managers)
            .chain(&check.monitors);
        check_users_named(file, &key, users, err);
        let channels_key = format!("{key}.notification_channels");
        check_channels_named(file, &channels_key, &check.notification_channels, err);
    }
}

fn check_hosts(file: &File, rules: Option<&hb_rules::Rules>, err: &mut Report<'_>) {
    for (name, host) in &file.hosts {
        let key = format!("hosts.{name}");
        for parent in &host.parents {
            if let Err(why) = hb_proto::names::check_host_name(parent) {
                err(&format!("{key}.parents"), format!("{parent:?}: {why}"));
            }
        }
        if let Some(cycle) = parent_cycle(&file.hosts, name) {
            err(
                &format!("{key}.parents"),
                format!("parents go round in a circle: {}", cycle.join(" -> ")),
            );
        }
        if let (Some(rules), Some(profiles)) = (rules, &host.threshold_config) {
            for profile in profiles.names() {
                if !rules.has_profile(profile) {
                    err(
                        &format!("{key}.threshold_config"),
                        format!("no profile {profile:?} under threshold_configs"),
                    );
                }
            }
        }
        if let Err(why) = hb_proto::names::check_host_name(name) {
            err(&key, why);
        }
        check_host_timing(host, &key, err);
        let users = host
            .owner
            .iter()
            .chain(&host.managers)
            .chain(&host.monitors);
        check_users_named(file, &key, users, err);
        let channels_key = format!("{key}.notification_channels");
        check_channels_named(file, &channels_key, &host.notification_channels, err);
    }
    for (list, names) in [
        ("watchhosts", &file.watchhosts),
        ("dyndnshosts", &file.dyndnshosts),
        ("drophosts", &file.drophosts),
    ] {
        for name in names {
            if let Err(why) = hb_proto::names::check_host_name(name) {
                err(list, why);
            }
        }
    }
}

/// A host's own key, grace, missed count and interval.
fn check_host_timing(host: &HostConfig, key: &str, err: &mut Report<'_>) {
    if let Some(k) = &host.key
        && k.len() < hb_proto::sign::MIN_KEY_LEN
    {
        err(
            &format!("{key}.key"),
            format!("must be at least {} bytes", hb_proto::sign::MIN_KEY_LEN),
        );
    }
    if host.grace.is_some_and(|g| !(g.is_finite() && g >= 0.0)) {
        err(&format!("{key}.grace"), "must be seconds, 0 or more".into());
    }
    if host.max_missed == Some(0) {
        err(&format!("{key}.max_missed"), "must be at least 1".into());
    }
    if let Some(interval) = host.interval
        && interval == 0
    {
        err(
            &format!("{key}.interval"),
            "must be at least 1 second".into(),
        );
    }
}

fn check_users_and_channels(file: &File, err: &mut Report<'_>) {
    for (name, user) in &file.users {
        let key = format!("users.{name}");
        if let Some(hash) = &user.password
            && let Err(why) = hb_child::passwd::PasswordHash::parse(hash)
        {
            err(&format!("{key}.password"), why);
        }
        let channels_key = format!("{key}.notification_channels");
        check_channels_named(file, &channels_key, &user.notification_channels, err);
    }
    if let Some(owner) = &file.default_owner
        && !file.users.contains_key(owner)
    {
        err(
            "default_owner",
            format!("user {owner:?} is not defined under users"),
        );
    }
    for (name, ch) in &file.notification_channels {
        let definition = serde_json::to_value(ch).unwrap_or(serde_json::Value::Null);
        if let Err(e) = hb_notify::Channel::parse(name, &definition) {
            err(
                &format!("notification_channels.{name}.{}", e.key),
                e.message,
            );
        }
    }
    check_channels_named(file, "notify", &file.notify, err);
}

/// The circle of `parents:` that `start` is on, if any.
fn parent_cycle(hosts: &BTreeMap<String, HostConfig>, start: &str) -> Option<Vec<String>> {
    // Depth-first along parents; a path that comes back to `start` is the circle.
    fn walk(
        hosts: &BTreeMap<String, HostConfig>,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut std::collections::BTreeSet<String>,
    ) -> bool {
        let Some(host) = path.last().and_then(|h| hosts.get(h)) else {
            return false;
        };
        for parent in &host.parents {
            if parent == start {
                path.push(parent.clone());
                return true;
            }
            if seen.insert(parent.clone()) {
                path.push(parent.clone());
                if walk(hosts, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(hosts, start, &mut path, &mut Default::default()).then_some(path)
}
