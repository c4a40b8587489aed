//! hb-web's parts that stand alone: sessions and login limits (`auth`), and who may do
//! what to a host (`access`). `main.rs` serves them over HTTP.

#![forbid(unsafe_code)]

pub mod access;
pub mod auth;
pub mod users;
