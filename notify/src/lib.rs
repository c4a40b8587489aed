//! hb's notification channels, shared by hb-notifier (which delivers) and the supervisor
//! (which checks definitions when it loads the configuration): channel definitions with
//! their secrets, routing, and the text of a notification on each kind of channel.

#![forbid(unsafe_code)]

pub mod channel;
pub mod message;
pub mod request;
pub mod retry;
pub mod route;

pub use channel::{Channel, ChannelError, Kind, Secret};
