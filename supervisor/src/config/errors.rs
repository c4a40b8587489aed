//! Where a configuration error is: the file, the line and the dotted key. Serde's messages
//! are cut into those parts, and keys of the original hbd that hb does not use explain
//! themselves.

use std::fmt;
use std::path::PathBuf;

/// Where the configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file.
    File(PathBuf),
    /// No file: the built-in default for a first run.
    Builtin,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Builtin => f.write_str("built-in default"),
        }
    }
}

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line, when it could be found.
    pub line: Option<usize>,
    /// Dotted key path, empty for the document itself.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Everything wrong with a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file.
    pub source: Source,
    /// The problems, in file order.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.source)?;
            if let Some(line) = e.line {
                write!(f, ":{line}")?;
            }
            if e.key.is_empty() {
                write!(f, ": {}", e.message)?;
            } else {
                write!(f, ": {}: {}", e.key, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Keys of the original hbd that hb does not use, with what to do instead.
const OBSOLETE_KEYS: &[(&str, &str)] = &[
    (
        "pickfile",
        "hb keeps its state in SQLite under state_dir; remove it",
    ),
    (
        "wss_port",
        "use ws_port: it serves /ws (and everything else) over TLS when tls_cert and tls_key are set",
    ),
    ("logfmt", "log lines have one fixed format; remove it"),
    ("debug", "use -v on the command line; remove it"),
    ("verbose", "use -v on the command line; remove it"),
];

pub(super) fn obsolete_keys(text: &str) -> Vec<ConfigError> {
    let Ok(yaml_serde::Value::Mapping(map)) = yaml_serde::from_str::<yaml_serde::Value>(text)
    else {
        return Vec::new();
    };
    OBSOLETE_KEYS
        .iter()
        .filter(|(key, _)| map.contains_key(*key))
        .map(|(key, why)| ConfigError {
            line: locate(text, &[key]),
            key: key.to_string(),
            message: format!("key of the original hbd not used by hb: {why}"),
        })
        .collect()
}

pub(super) fn yaml_error(e: &yaml_serde::Error, text: &str) -> ConfigError {
    let full = e.to_string();
    // The message carries "path: what at line L column C"; split it into our fields.
    let without_location = match full.rfind(" at line ") {
        Some(at) => &full[..at],
        None => &full,
    };
    let (key, message) = match without_location.split_once(": ") {
        Some((key, msg)) if !key.contains(' ') => (key.to_string(), msg.to_string()),
        _ => (String::new(), without_location.to_string()),
    };
    let message = shorten_expected(&message);
    let key = match unknown_field(&message) {
        Some(field) if key.is_empty() => field.to_string(),
        Some(field) => format!("{key}.{field}"),
        None => key,
    };
    let line = e.location().map(|l| l.line()).or_else(|| {
        let path: Vec<&str> = key.split('.').collect();
        locate(text, &path)
    });
    ConfigError { line, key, message }
}

/// serde lists every expected field after an unknown one; past a few it is noise.
fn shorten_expected(message: &str) -> String {
    match message.split_once(", expected one of ") {
        Some((head, list)) if list.matches('`').count() > 12 => {
            format!("{head} (see docs/CONFIG.md for the keys)")
        }
        _ => message.to_string(),
    }
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// Finds the line of a dotted key path in block-style YAML by indentation. Returns the line
/// of the deepest component found, so an error inside a flow mapping still points near it.
pub fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let mut found = None;
    let mut depth = 0;
    let mut parent_indent: isize = -1;
    // Indentation of the direct children of the current parent, set by its first child.
    let mut child_indent: Option<isize> = None;
    for (index, line) in text.lines().enumerate() {
        if depth == path.len() {
            break;
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let indent = (line.len() - trimmed.len()) as isize;
        if indent <= parent_indent {
            break;
        }
        let level = *child_indent.get_or_insert(indent);
        if indent != level {
            continue;
        }
        let Some((key, _)) = trimmed.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
        if key == path[depth] {
            found = Some(index + 1);
            depth += 1;
            parent_indent = indent;
            child_indent = None;
        }
    }
    found
}
