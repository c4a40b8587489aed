//! Users as the file defines them, with the changes they made themselves through the API
//! (`PUT /api/0/users/me`) on top. The engine keeps those changes in its store; each records,
//! per field, what the file said when it was made (`base`). A field whose file value has
//! changed since was edited by an administrator later, and the file wins: the latest change
//! wins, whether made in the file or through the API.

use std::collections::BTreeMap;

use hb_ipc::config::WebUser;
use serde_json::{Map, Value, json};

/// The fields a user may change themselves.
pub const FIELDS: &[&str] = &["full_name", "avatar", "password", "notification_channels"];

/// A field of a file user, as JSON.
pub fn file_value(user: &WebUser, field: &str) -> Value {
    match field {
        "full_name" => json!(user.full_name),
        "avatar" => json!(user.avatar),
        "password" => json!(user.password),
        "notification_channels" => json!(user.notification_channels),
        _ => Value::Null,
    }
}

/// Stored changes the file overtook: the user, and what to store instead (`None`: remove).
pub type Stale = Vec<(String, Option<Value>)>;

/// The file's users with their own changes applied, and the changes that have fields the
/// file overtook.
pub fn merge(
    file: &BTreeMap<String, WebUser>,
    chosen: &BTreeMap<String, Value>,
) -> (BTreeMap<String, WebUser>, Stale) {
    let mut users = file.clone();
    let mut stale = Vec::new();
    for (name, change) in chosen {
        let Some(user) = users.get_mut(name) else {
            // A user removed from the file: their changes go with them.
            stale.push((name.clone(), None));
            continue;
        };
        let Some(fields) = change.as_object() else {
            stale.push((name.clone(), None));
            continue;
        };
        let mut kept = Map::new();
        let mut base = Map::new();
        for field in FIELDS {
            let Some(value) = fields.get(*field) else {
                continue;
            };
            let was = &change["base"][*field];
            if *was != file_value(user, field) {
                continue;
            }
            apply(user, field, value);
            kept.insert(field.to_string(), value.clone());
            base.insert(field.to_string(), was.clone());
        }
        if kept.len() < fields.keys().filter(|k| *k != "base").count() {
            let replacement = (!kept.is_empty()).then(|| {
                kept.insert("base".into(), Value::Object(base));
                Value::Object(kept)
            });
            stale.push((name.clone(), replacement));
        }
    }
    (users, stale)
}

fn apply(user: &mut WebUser, field: &str, value: &Value) {
    let text = || value.as_str().map(String::from);
    match field {
        "full_name" => user.full_name = text(),
        "avatar" => user.avatar = text(),
        "password" => {
            if let Some(p) = text() {
                user.password = Some(p);
            }
        }
        "notification_channels" => {
            user.notification_channels = value
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
        }
        _ => {}
    }
}

/// `existing` (a stored change, or nothing) with `field` set to `value`, recording the
/// file's value as its base.
pub fn with_field(
    existing: Option<&Value>,
    file_user: &WebUser,
    field: &str,
    value: Value,
) -> Value {
    let mut change = existing
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    change.insert(field.to_string(), value);
    let mut base = change
        .get("base")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    base.insert(field.to_string(), file_value(file_user, field));
    change.insert("base".into(), Value::Object(base));
    Value::Object(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(full_name: &str, password: &str) -> BTreeMap<String, WebUser> {
        [(
            "alice".to_string(),
            WebUser {
                full_name: Some(full_name.into()),
                password: Some(password.into()),
                notification_channels: vec!["mail".into()],
                ..WebUser::default()
            },
        )]
        .into_iter()
        .collect()
    }

    #[test]
    fn own_changes_hold_until_the_file_changes_the_same_field() {
        let f = file("Alice", "hash1");
        let alice = &f["alice"];
        let change = with_field(None, alice, "full_name", json!("Alice A."));
        let change = with_field(Some(&change), alice, "password", json!("hash2"));
        let chosen: BTreeMap<String, Value> = [("alice".to_string(), change)].into();
        let (users, stale) = merge(&f, &chosen);
        assert_eq!(users["alice"].full_name.as_deref(), Some("Alice A."));
        assert_eq!(users["alice"].password.as_deref(), Some("hash2"));
        assert_eq!(users["alice"].notification_channels, ["mail"]);
        assert!(stale.is_empty());

        // An administrator resets the password in the file: it wins; the name change stays.
        let edited = file("Alice", "hash3");
        let (users, stale) = merge(&edited, &chosen);
        assert_eq!(users["alice"].password.as_deref(), Some("hash3"));
        assert_eq!(users["alice"].full_name.as_deref(), Some("Alice A."));
        assert_eq!(stale.len(), 1);
        let kept = stale[0].1.clone().expect("the name change is kept");
        assert!(kept.get("password").is_none() && kept["full_name"] == "Alice A.");

        // A user gone from the file: their changes go.
        let (_, stale) = merge(&BTreeMap::new(), &chosen);
        assert_eq!(stale, [("alice".to_string(), None)]);
    }
}
