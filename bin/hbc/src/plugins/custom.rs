//! Custom plugins without recompiling: every executable file in `plugins_dir` is a plugin
//! named after the file (without its extension, lower case, `-` as `_`); one with a built-in
//! plugin's name replaces it. It runs without a shell and
//! without arguments; a JSON object on stdout is its data, any other output is read the
//! Nagios way (exit code, first line, performance data) into `<name>_status_code`,
//! `<name>_status`, `<name>_output` and the perfdata fields.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::commands;

/// A custom plugin's output, at most (what the server inflates at most).
const MAX_JSON: usize = 256 * 1024;

/// The plugin name a file gives, if it gives one.
pub fn name_of(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?.to_ascii_lowercase();
    let stem = stem.replace('-', "_");
    let ok = (1..=64).contains(&stem.len())
        && stem
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some(stem)
}

/// The executables of `dir` by plugin name (a file that gives no valid name, or a second
/// file with the same name, is an error: better said at start than ignored).
pub fn discover(dir: &Path) -> Result<BTreeMap<String, PathBuf>, String> {
    use std::os::unix::fs::PermissionsExt;
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("plugins_dir {}: {e}", dir.display()))?;
    let mut found = BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            continue;
        }
        let name = name_of(&path).ok_or_else(|| {
            format!(
                "plugins_dir: {} does not name a plugin (letters, digits, _ and -)",
                path.display()
            )
        })?;
        if let Some(other) = found.insert(name.clone(), path.clone()) {
            return Err(format!(
                "plugins_dir: {} and {} are both plugin {name}",
                other.display(),
                path.display()
            ));
        }
    }
    Ok(found)
}

/// Runs one custom plugin.
pub async fn run(name: &str, path: &Path, timeout: Duration) -> Result<Value, String> {
    let argv = vec![path.display().to_string()];
    let e = commands::execute_bounded(&argv, timeout, &[("HBC_PLUGIN", name)], MAX_JSON).await;
    if let Some(error) = e.error {
        return Err(error);
    }
    if e.timed_out {
        return Err(format!(
            "took longer than {} s; stopped",
            timeout.as_secs_f64()
        ));
    }
    if e.stdout.len() >= MAX_JSON {
        return Err(format!(
            "the output reached {MAX_JSON} bytes, the most taken"
        ));
    }
    let stdout = String::from_utf8_lossy(&e.stdout);
    if e.exit == Some(0) && stdout.trim_start().starts_with('{') {
        return match serde_json::from_str::<Value>(stdout.trim()) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err("the output is not a JSON object".into()),
            Err(err) => Err(format!("the output is not valid JSON: {err}")),
        };
    }
    Ok(Value::Object(super::nagios::fields(name, &e, timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn plugin(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[tokio::test]
    async fn output_is_json_or_nagios_and_bad_output_is_an_error() {
        let dir = std::env::temp_dir().join(format!("hbc-custom-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let t = Duration::from_secs(5);
        let json = plugin(&dir, "app", "echo '{\"depth\": 3}'");
        assert_eq!(
            run("app", &json, t).await,
            Ok(serde_json::json!({"depth": 3}))
        );
        let broken = plugin(&dir, "broken", "echo '{\"depth\": '");
        assert!(
            run("broken", &broken, t)
                .await
                .unwrap_err()
                .contains("not valid JSON")
        );
        let nagios = plugin(&dir, "n", "echo 'OK - fine | x=1'; exit 0");
        let v = run("n", &nagios, t).await.unwrap();
        assert_eq!(
            (v["n_status"].as_str(), v["n_x"].as_f64()),
            (Some("OK"), Some(1.0))
        );
        let binary = plugin(&dir, "bin", "printf '\\377\\376 not text'; exit 2");
        assert_eq!(
            run("bin", &binary, t).await.unwrap()["bin_status"],
            "CRITICAL"
        );
        let slow = plugin(&dir, "slow", "sleep 10");
        let e = run("slow", &slow, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.contains("took longer"), "{e}");
        // Names: from the file, and what is not a name is refused at start.
        plugin(&dir, "My-Check.sh", "true");
        let found = discover(&dir).unwrap();
        assert!(found.contains_key("my_check"), "{found:?}");
        plugin(&dir, "bad name", "true");
        assert!(
            discover(&dir)
                .unwrap_err()
                .contains("does not name a plugin")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
