//! Every notification channel as hb-web knows it (the file's and those defined through the
//! API), and who sees, chooses and changes each; the channel handlers (channels.rs) and a
//! user's own choice of channels (accounts.rs) stand on it.

use std::collections::BTreeMap;

use hb_ipc::edge::{Answer, Query};
use hb_web::access::Viewer;
use serde_json::{Map, Value, json};

use crate::reply::ApiError;
use crate::web::{Web, answer};

/// Keys a definition has outside `options`.
pub const TOP_LEVEL: &[&str] = &["type", "owner", "private", "min_level"];

/// Where a channel is defined.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Source {
    File,
    Api,
}

/// One channel as hb-web knows it: its public view (no secrets) and where it comes from.
pub struct Shown {
    pub view: Value,
    pub source: Source,
}

impl Shown {
    pub fn owner(&self) -> Option<&str> {
        self.view.get("owner").and_then(Value::as_str)
    }

    pub fn private(&self) -> bool {
        self.view.get("private").and_then(Value::as_bool) == Some(true)
    }

    /// Whether `viewer` sees it at all: admins all, others all but someone else's private
    /// ones.
    pub fn visible_to(&self, viewer: &Viewer) -> bool {
        viewer.is_admin() || !self.private() || self.owner() == Some(viewer.name())
    }

    /// Whether `viewer` may choose it for their notifications.
    pub fn choosable_by(&self, viewer: &Viewer) -> bool {
        !self.private() || self.owner().is_none_or(|o| o == viewer.name())
    }

    /// Whether `viewer` sees its options and may change it.
    pub fn owned_by(&self, viewer: &Viewer) -> bool {
        viewer.is_admin() || self.owner().is_some_and(|o| o == viewer.name())
    }

    /// Its options: the definition but its top-level fields and which secrets are set.
    pub fn options(&self) -> Map<String, Value> {
        self.view
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !TOP_LEVEL.contains(&k.as_str()) && *k != "secrets_set")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn json(&self, name: &str, viewer: &Viewer) -> Value {
        let v = &self.view;
        let mut out = json!({
            "name": name,
            "type": v.get("type").cloned().unwrap_or(Value::Null),
            "source": match self.source { Source::File => "file", Source::Api => "api" },
            "owner": v.get("owner").cloned().unwrap_or(Value::Null),
            "private": self.private(),
            "min_level": v.get("min_level").cloned().unwrap_or_else(|| json!("WARNING")),
            "editable": self.source == Source::Api && self.owned_by(viewer),
        });
        // Options (recipients, numbers, servers) only for its owner and admins.
        if self.owned_by(viewer) {
            out["options"] = Value::Object(self.options());
            out["secrets_set"] = v.get("secrets_set").cloned().unwrap_or_else(|| json!([]));
        }
        out
    }
}

/// Every channel: the file's, then those defined through the API under other names.
pub async fn all(web: &Web) -> Result<BTreeMap<String, Shown>, ApiError> {
    let query = Query::Channels {};
    let defined = web
        .ask_for(query, answer!(Answer::Settings { values } => values))
        .await?;
    let mut channels: BTreeMap<String, Shown> = defined
        .into_iter()
        .map(|(name, view)| {
            let shown = Shown {
                view,
                source: Source::Api,
            };
            (name, shown)
        })
        .collect();
    for (name, view) in &web.config().channels {
        let shown = Shown {
            view: view.clone(),
            source: Source::File,
        };
        channels.insert(name.clone(), shown);
    }
    Ok(channels)
}

/// The names `viewer` may choose among `wanted` (others are dropped, as hbd did), sorted.
pub async fn choosable(
    web: &Web,
    viewer: &Viewer,
    wanted: Vec<String>,
) -> Result<Vec<String>, ApiError> {
    let channels = all(web).await?;
    let mut names: Vec<String> = wanted
        .into_iter()
        .filter(|c| channels.get(c).is_some_and(|ch| ch.choosable_by(viewer)))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}
