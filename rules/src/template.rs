//! Display templates, in the original's Python `str.format` style: `{name}` is replaced by
//! a variable, `{name:.2f}` by a number with that many decimals, `{{` and `}}` are braces.
//! Nothing else is interpreted, so a template cannot reach anything but its variables.

use serde_json::{Map, Value};

/// Why a template cannot be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Unbalanced or malformed braces.
    #[error("bad template at byte {at}: {what}")]
    Syntax {
        /// Byte offset.
        at: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A name the metric does not have.
    #[error("no variable {0:?}")]
    Missing(String),
}

enum Piece<'a> {
    Text(&'a str),
    Brace(char),
    Var {
        name: &'a str,
        decimals: Option<usize>,
    },
}

fn parse(template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let bytes = template.as_bytes();
    let mut pieces = Vec::new();
    let (mut i, mut text_from) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b @ (b'{' | b'}') if bytes.get(i + 1) == Some(&b) => {
                pieces.push(Piece::Text(&template[text_from..i]));
                pieces.push(Piece::Brace(char::from(b)));
                i += 2;
                text_from = i;
            }
            b'}' => {
                return Err(TemplateError::Syntax {
                    at: i,
                    what: "`}` without `{` (write `}}` for a brace)",
                });
            }
            b'{' => {
                pieces.push(Piece::Text(&template[text_from..i]));
                let end = template[i..].find('}').ok_or(TemplateError::Syntax {
                    at: i,
                    what: "`{` without `}` (write `{{` for a brace)",
                })? + i;
                let inner = &template[i + 1..end];
                let (name, spec) = match inner.split_once(':') {
                    Some((n, s)) => (n, Some(s)),
                    None => (inner, None),
                };
                if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    return Err(TemplateError::Syntax {
                        at: i,
                        what: "a variable is a name of letters, digits and `_`",
                    });
                }
                let decimals = match spec {
                    None => None,
                    Some(s) => Some(
                        s.strip_prefix('.')
                            .and_then(|s| s.strip_suffix('f'))
                            .and_then(|d| d.parse::<usize>().ok())
                            .filter(|d| *d <= 12)
                            .ok_or(TemplateError::Syntax {
                                at: i,
                                what: "the only format is `:.Nf` (N decimals, at most 12)",
                            })?,
                    ),
                };
                pieces.push(Piece::Var { name, decimals });
                i = end + 1;
                text_from = i;
            }
            _ => i += 1,
        }
    }
    pieces.push(Piece::Text(&template[text_from..]));
    Ok(pieces)
}

/// The variable names a template uses (empty if its syntax is bad).
pub fn names(template: &str) -> Vec<&str> {
    parse(template).map_or_else(
        |_| Vec::new(),
        |pieces| {
            pieces
                .into_iter()
                .filter_map(|p| match p {
                    Piece::Var { name, .. } => Some(name),
                    _ => None,
                })
                .collect()
        },
    )
}

/// Checks a template's syntax (names are checked when it is rendered).
pub fn check(template: &str) -> Result<(), TemplateError> {
    parse(template).map(|_| ())
}

/// Renders `template` with `vars`.
pub fn render(template: &str, vars: &Map<String, Value>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 16);
    for piece in parse(template)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Brace(c) => out.push(c),
            Piece::Var { name, decimals } => {
                let value = vars
                    .get(name)
                    .ok_or_else(|| TemplateError::Missing(name.to_string()))?;
                match (value, decimals) {
                    (Value::Number(n), Some(d)) => {
                        out.push_str(&format!("{:.*}", d, n.as_f64().unwrap_or(f64::NAN)));
                    }
                    (Value::String(s), _) => out.push_str(s),
                    (Value::Null, _) => out.push('-'),
                    (other, _) => out.push_str(&other.to_string()),
                }
            }
        }
    }
    Ok(out)
}
