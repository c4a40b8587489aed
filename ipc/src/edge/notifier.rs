//! Engine <-> notifier: notifications to deliver, users' and API channels, and what was
//! delivered.

use super::*;

/// Engine to notifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
// Nearly every message is a Notify; boxing it would cost an allocation each for nothing.
#[allow(clippy::large_enum_variant)]
pub enum EngineToNotifier {
    /// Deliver this (it is in the engine's outbox until answered with [`NotifierToEngine::Done`]).
    Notify {
        /// The notification.
        notification: Notification,
    },
    /// What routing takes from changes made through the API (sent whenever it changes and
    /// when the notifier connects): users' own choice of channels, each replacing what the
    /// file says for that user while the file still says what it said then; and the
    /// channels defined through the API (a file channel of the same name wins).
    FromApi {
        /// User -> choice.
        users: std::collections::BTreeMap<String, ChosenChannels>,
        /// Name -> definition, as in `notification_channels` (secrets included).
        channels: std::collections::BTreeMap<String, serde_json::Value>,
    },
}

/// A user's choice of channels, and the file's channels for them when it was made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChosenChannels {
    /// The choice.
    pub channels: Vec<String>,
    /// What the file said then.
    pub base: Vec<String>,
}

/// Notifier to engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotifierToEngine {
    /// One channel delivered notification `id` (sent at once, so a resend after a crash of
    /// the notifier skips it).
    Delivered {
        /// The notification.
        id: u64,
        /// The channel.
        channel: String,
    },
    /// Every channel of notification `id` delivered it or failed for good.
    Done {
        /// The notification.
        id: u64,
        /// Channels that delivered it.
        delivered: Vec<String>,
        /// Channels that gave up, with why.
        failed: Vec<ChannelFailure>,
    },
}

/// A channel that could not deliver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelFailure {
    /// The channel's name.
    pub channel: String,
    /// The last error (never a secret).
    pub error: String,
}

/// One notification, as kept in the outbox and handed to the notifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    /// Unique and kept across resends: a channel delivers each id once.
    pub id: u64,
    /// The alert this is about (`web1/down`); a recovery carries its alert's key, so it goes
    /// to the channels that got the alert.
    pub alert: String,
    /// `alert`, `recovery` or `reminder`.
    pub kind: String,
    /// `CRITICAL`, `WARNING`, `UNKNOWN` or `OK`.
    pub level: String,
    /// The host.
    pub host: String,
    /// Short text (`[CRITICAL] web1 down`).
    pub title: String,
    /// The details.
    pub text: String,
    /// When the engine decided it, Unix ms.
    pub created_ms: u64,
    /// The host's owner and managers, whose channels get it.
    pub users: Vec<String>,
    /// The host's own channels.
    pub channels: Vec<String>,
    /// For a recovery: the channels that got its alert (they get the recovery whatever
    /// their `min_level`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerted: Vec<String>,
    /// Channels that already delivered it (a resend skips them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done_channels: Vec<String>,
}
