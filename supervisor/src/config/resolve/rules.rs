//! Alerting rules and maintenance windows: checked here so `-n` reports them; the engine
//! applies them.

use super::Report;
use crate::config::File;

/// The rules, when they parse: hosts' profiles are checked against them.
pub(super) fn check(file: &File, err: &mut Report<'_>) -> Result<hb_rules::Rules, ()> {
    let default_profile = file
        .default_threshold_config
        .clone()
        .unwrap_or_else(|| "default".into());
    let rules = hb_rules::Rules::parse(
        file.thresholds.as_ref().unwrap_or(&serde_json::Value::Null),
        file.threshold_configs
            .as_ref()
            .unwrap_or(&serde_json::Value::Null),
        &default_profile,
    );
    if let Err(e) = &rules {
        // The line of the deepest part of the path that is a plain key.
        let key: Vec<&str> = e
            .path
            .split('.')
            .take_while(|k| !k.is_empty() && !k.contains('/'))
            .collect();
        let key = key.join(".");
        let message = if key == e.path {
            e.message.clone()
        } else {
            e.to_string()
        };
        err(&key, message);
    }
    if let Some(windows) = &file.maintenance
        && let Err(e) = hb_rules::silence::parse_windows(windows)
    {
        let key: Vec<&str> = e.path.split('.').take(2).collect();
        err(&key.join("."), e.to_string());
    }
    rules.map_err(drop)
}
