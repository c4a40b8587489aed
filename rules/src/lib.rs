//! hb's alerting rules, shared by the supervisor (which checks them when it loads the
//! configuration, so `hbsupervisor -n` reports a bad threshold) and the engine (which applies
//! them). Pure: no I/O, no clock.
//!
//! - [`threshold`]: one threshold, its levels and hysteresis.
//! - [`Rules`]: the `thresholds:` tree, the `threshold_configs:` profiles and their layering
//!   per host, and the lookup of a reported metric (exact, `*` wildcards, generic suffixes).
//! - [`template`]: display templates.

#![forbid(unsafe_code)]

pub mod cron;
pub mod silence;
pub mod template;
pub mod threshold;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub use threshold::{Evaluation, Level, Op, Threshold};

/// A configuration error, naming the place in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RuleError {
    /// Dotted path of the offending entry (`thresholds.cpu_monitor.cpu_percent.warning`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> RuleError {
    RuleError {
        path: path.to_string(),
        message: message.into(),
    }
}

/// A threshold entry as written in one layer: every field optional, so a profile can change
/// one field of an inherited threshold (`{enabled: false}`, `{critical: 95}`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Partial {
    warning: Option<f64>,
    critical: Option<f64>,
    operator: Option<Op>,
    hysteresis: Option<f64>,
    display: Option<String>,
    enabled: Option<bool>,
}

impl Partial {
    fn over(&mut self, top: &Partial) {
        let Partial {
            warning,
            critical,
            operator,
            hysteresis,
            display,
            enabled,
        } = top.clone();
        self.warning = warning.or(self.warning);
        self.critical = critical.or(self.critical);
        self.operator = operator.or(self.operator);
        self.hysteresis = hysteresis.or(self.hysteresis);
        self.display = display.or(self.display.take());
        self.enabled = enabled.or(self.enabled);
    }

    fn finish(&self, path: &str) -> Result<Threshold, RuleError> {
        let op = self.operator.unwrap_or(Op::Gt);
        if op != Op::Nagios && self.warning.is_none() && self.critical.is_none() {
            return Err(err(
                path,
                "needs `warning` or `critical` (only `operator: nagios` needs neither)",
            ));
        }
        Ok(Threshold {
            warning: self.warning,
            critical: self.critical,
            op,
            hysteresis: self.hysteresis.unwrap_or(threshold::DEFAULT_HYSTERESIS),
            display: self.display.clone(),
            enabled: self.enabled.unwrap_or(true),
        })
    }
}

const LEAF_KEYS: &[&str] = &[
    "warning",
    "critical",
    "operator",
    "hysteresis",
    "display",
    "enabled",
];

/// One layer: plugin -> metric path -> partial threshold. `rtt` is a plugin whose paths are
/// host names.
type Layer = BTreeMap<String, BTreeMap<Vec<String>, Partial>>;

fn number(v: &Value, path: &str) -> Result<f64, RuleError> {
    v.as_f64()
        .filter(|n| n.is_finite())
        .ok_or_else(|| err(path, format!("must be a number, not {v}")))
}

fn parse_leaf(map: &Map<String, Value>, path: &str) -> Result<Partial, RuleError> {
    let mut p = Partial::default();
    for (key, v) in map {
        let here = format!("{path}.{key}");
        match key.as_str() {
            "warning" => p.warning = Some(number(v, &here)?),
            "critical" => p.critical = Some(number(v, &here)?),
            "operator" => {
                let s = v.as_str().unwrap_or_default();
                p.operator = Some(Op::parse(s).ok_or_else(|| {
                    err(
                        &here,
                        format!("unknown operator {v}; use > >= < <= == != or nagios"),
                    )
                })?);
            }
            "hysteresis" => {
                let h = number(v, &here)?;
                if !(0.0..1.0).contains(&h) {
                    return Err(err(&here, format!("must be from 0 to below 1, not {h}")));
                }
                p.hysteresis = Some(h);
            }
            "display" => {
                let s = v.as_str().ok_or_else(|| err(&here, "must be a string"))?;
                template::check(s).map_err(|e| err(&here, e.to_string()))?;
                p.display = Some(s.to_string());
            }
            "enabled" => {
                p.enabled = Some(
                    v.as_bool()
                        .ok_or_else(|| err(&here, "must be true or false"))?,
                );
            }
            other => {
                return Err(err(
                    &here,
                    format!(
                        "unknown key {other:?} in a threshold (known: {})",
                        LEAF_KEYS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(p)
}

/// Walks `tree` (`plugin: {metric: leaf | {nested: ...}}`) into a layer.
fn parse_layer(tree: &Value, path: &str) -> Result<Layer, RuleError> {
    let mut layer = Layer::new();
    let plugins = match tree {
        Value::Null => return Ok(layer),
        Value::Object(m) => m,
        other => return Err(err(path, format!("must be a map, not {other}"))),
    };
    for (plugin, metrics) in plugins {
        let here = format!("{path}.{plugin}");
        let Value::Object(metrics) = metrics else {
            return Err(err(&here, "must be a map of metrics"));
        };
        let entries = layer.entry(plugin.clone()).or_default();
        walk(metrics, &mut Vec::new(), &here, entries)?;
    }
    Ok(layer)
}

fn walk(
    map: &Map<String, Value>,
    prefix: &mut Vec<String>,
    path: &str,
    out: &mut BTreeMap<Vec<String>, Partial>,
) -> Result<(), RuleError> {
    for (key, v) in map {
        let here = format!("{path}.{key}");
        let Value::Object(inner) = v else {
            return Err(err(&here, "must be a threshold or a map of metrics"));
        };
        prefix.push(key.clone());
        if inner.keys().any(|k| LEAF_KEYS.contains(&k.as_str())) {
            out.insert(prefix.clone(), parse_leaf(inner, &here)?);
        } else if prefix.len() > 8 {
            return Err(err(&here, "nested deeper than 8 levels"));
        } else {
            walk(inner, prefix, &here, out)?;
        }
        prefix.pop();
    }
    Ok(())
}

/// Thresholds every host has unless a layer changes them: Nagios checks alert out of the box,
/// and so does a ZFS pool that is not ONLINE.
fn builtin() -> Layer {
    let mut layer = Layer::new();
    layer.entry("nagios_runner".into()).or_default().insert(
        vec!["status_code".into()],
        Partial {
            operator: Some(Op::Nagios),
            display: Some("{check_name}: {output}".into()),
            ..Partial::default()
        },
    );
    let pool_down = Partial {
        operator: Some(Op::Lt),
        warning: None,
        critical: Some(1.0),
        hysteresis: Some(0.0),
        display: Some("pool {check_name} is {health}".into()),
        ..Partial::default()
    };
    let zfs = layer.entry("zfs_monitor".into()).or_default();
    zfs.insert(vec!["*".into(), "health_ok".into()], pool_down.clone());
    zfs.insert(
        vec!["pools".into(), "*".into(), "health_ok".into()],
        pool_down.clone(),
    );
    // hbc's form: `zpool.<pool>.health_ok`.
    zfs.insert(
        vec!["zpool".into(), "*".into(), "health_ok".into()],
        pool_down,
    );
    layer
}

/// Every threshold of the configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rules {
    /// Built-ins, then the top-level `thresholds:`.
    base: Layer,
    /// `threshold_configs.<name>.thresholds`.
    profiles: BTreeMap<String, Layer>,
    default_profile: String,
}

impl Rules {
    /// Parses `thresholds`, `threshold_configs` and `default_threshold_config`. Every
    /// profile, and the default layering, is checked for complete thresholds.
    pub fn parse(
        thresholds: &Value,
        threshold_configs: &Value,
        default_profile: &str,
    ) -> Result<Rules, RuleError> {
        let mut base = builtin();
        merge(&mut base, &parse_layer(thresholds, "thresholds")?);
        let mut profiles = BTreeMap::new();
        match threshold_configs {
            Value::Null => {}
            Value::Object(m) => {
                for (name, profile) in m {
                    let here = format!("threshold_configs.{name}");
                    let tree = match profile {
                        Value::Object(p) => {
                            if let Some(k) = p.keys().find(|k| *k != "thresholds") {
                                return Err(err(
                                    &format!("{here}.{k}"),
                                    "unknown key in a profile (it holds `thresholds:`)",
                                ));
                            }
                            p.get("thresholds").cloned().unwrap_or(Value::Null)
                        }
                        Value::Null => Value::Null,
                        _ => return Err(err(&here, "must be a map with `thresholds:`")),
                    };
                    profiles.insert(
                        name.clone(),
                        parse_layer(&tree, &format!("{here}.thresholds"))?,
                    );
                }
            }
            other => {
                return Err(err(
                    "threshold_configs",
                    format!("must be a map, not {other}"),
                ));
            }
        }
        let rules = Rules {
            base,
            profiles,
            default_profile: default_profile.to_string(),
        };
        // Each profile on its own over the base must give complete thresholds.
        rules.for_host(&[])?;
        for name in rules.profiles.keys() {
            rules.for_host(&[name.as_str()])?;
        }
        Ok(rules)
    }

    /// Whether any layer has thresholds for `plugin`.
    pub fn mentions(&self, plugin: &str) -> bool {
        self.base.contains_key(plugin) || self.profiles.values().any(|p| p.contains_key(plugin))
    }

    /// Whether a profile of this name exists (`default` always does).
    pub fn has_profile(&self, name: &str) -> bool {
        name == self.default_profile || self.profiles.contains_key(name)
    }

    /// The thresholds of a host with these profiles: built-ins, `thresholds:`, the default
    /// profile, then each named profile in order, each changing what it names.
    pub fn for_host(&self, profiles: &[&str]) -> Result<HostRules, RuleError> {
        let mut layer = self.base.clone();
        if let Some(p) = self.profiles.get(&self.default_profile) {
            merge(&mut layer, p);
        }
        for name in profiles {
            match self.profiles.get(*name) {
                Some(p) => merge(&mut layer, p),
                None if *name == self.default_profile => {}
                None => return Err(err("threshold_config", format!("no profile {name:?}"))),
            }
        }
        let mut tree = BTreeMap::new();
        for (plugin, entries) in layer {
            let mut done = BTreeMap::new();
            for (path, partial) in entries {
                let here = format!("{plugin}.{}", path.join("."));
                done.insert(path, partial.finish(&here)?);
            }
            tree.insert(plugin, done);
        }
        Ok(HostRules { tree })
    }
}

fn merge(under: &mut Layer, top: &Layer) {
    for (plugin, entries) in top {
        let target = under.entry(plugin.clone()).or_default();
        for (path, partial) in entries {
            target.entry(path.clone()).or_default().over(partial);
        }
    }
}

/// The thresholds that apply to one host.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostRules {
    tree: BTreeMap<String, BTreeMap<Vec<String>, Threshold>>,
}

/// A reported metric with the threshold that applies to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding<'a> {
    /// Path of the metric in the plugin's data.
    pub path: Vec<String>,
    /// The value reported.
    pub value: Value,
    /// The threshold.
    pub threshold: &'a Threshold,
    /// The prefix a generic match stripped (`check_disk_root` for a `status_code` entry),
    /// or the segment a `*` matched.
    pub check_name: Option<String>,
}

impl HostRules {
    /// The enabled threshold for `plugin` at `path`: the exact entry, else one whose `*`
    /// segments match, else a generic entry matched by stripping leading `_`-separated words
    /// from the last segment (`check_disk_root_status_code` -> `status_code`).
    pub fn find(&self, plugin: &str, path: &[&str]) -> Option<(&Threshold, Option<String>)> {
        let entries = self.tree.get(plugin)?;
        let (last, parents) = path.split_last()?;
        let mut candidate: Vec<&str> = path.to_vec();
        let mut stripped: Option<String> = None;
        let mut rest: &str = last;
        loop {
            if let Some((t, wildcard)) = lookup(entries, &candidate) {
                let check = stripped.or(wildcard);
                return t.enabled.then_some((t, check));
            }
            let (word, tail) = rest.split_once('_')?;
            if tail.is_empty() {
                return None;
            }
            stripped = Some(match stripped {
                Some(s) => format!("{s}_{word}"),
                None => word.to_string(),
            });
            rest = tail;
            candidate = parents.to_vec();
            candidate.push(rest);
        }
    }

    /// Every metric of a plugin's data that has a threshold, in the order of the data.
    /// ZFS pools without `health_ok` get it from their `health`.
    pub fn findings(&self, plugin: &str, data: &Map<String, Value>) -> Vec<Finding<'_>> {
        let mut out = Vec::new();
        if !self.tree.contains_key(plugin) {
            return out;
        }
        let synthesized;
        let data = if plugin == "zfs_monitor" {
            synthesized = with_health_ok(data);
            &synthesized
        } else {
            data
        };
        let mut path = Vec::new();
        self.collect(plugin, data, &mut path, &mut out);
        out
    }

    fn collect<'a>(
        &'a self,
        plugin: &str,
        map: &Map<String, Value>,
        path: &mut Vec<String>,
        out: &mut Vec<Finding<'a>>,
    ) {
        for (key, value) in map {
            path.push(key.clone());
            match value {
                Value::Object(inner) if path.len() < 8 => self.collect(plugin, inner, path, out),
                Value::Object(_) | Value::Array(_) => {}
                _ => {
                    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
                    if let Some((threshold, check_name)) = self.find(plugin, &segments) {
                        out.push(Finding {
                            path: path.clone(),
                            value: value.clone(),
                            threshold,
                            check_name,
                        });
                    }
                }
            }
            path.pop();
        }
    }

    /// The RTT threshold of `host` (`thresholds.rtt.<host>`, else `rtt.*`).
    pub fn rtt(&self, host: &str) -> Option<&Threshold> {
        let entries = self.tree.get("rtt")?;
        lookup(entries, &[host])
            .map(|(t, _)| t)
            .filter(|t| t.enabled)
    }
}

/// Exact path first, then the match with the fewest `*` segments; with the segment the first
/// `*` matched.
fn lookup<'a>(
    entries: &'a BTreeMap<Vec<String>, Threshold>,
    path: &[&str],
) -> Option<(&'a Threshold, Option<String>)> {
    let key: Vec<String> = path.iter().map(std::string::ToString::to_string).collect();
    if let Some(t) = entries.get(&key) {
        return Some((t, None));
    }
    entries
        .iter()
        .filter(|(k, _)| {
            k.len() == path.len() && k.iter().zip(path).all(|(a, b)| a == "*" || a == b)
        })
        .min_by_key(|(k, _)| k.iter().filter(|s| *s == "*").count())
        .map(|(k, t)| {
            let matched = k
                .iter()
                .zip(path)
                .find(|(a, _)| *a == "*")
                .map(|(_, b)| b.to_string());
            (t, matched)
        })
}

/// ZFS pools from older clients report `health` only: `health_ok` is 1 for `ONLINE`, else 0.
fn with_health_ok(data: &Map<String, Value>) -> Map<String, Value> {
    let mut out = data.clone();
    for value in out.values_mut() {
        if let Value::Object(inner) = value {
            if let (Some(Value::String(health)), false) =
                (inner.get("health"), inner.contains_key("health_ok"))
            {
                let ok = u8::from(health == "ONLINE");
                inner.insert("health_ok".into(), Value::from(ok));
            }
            *inner = with_health_ok(inner);
        }
    }
    out
}

#[cfg(test)]
mod tests;
