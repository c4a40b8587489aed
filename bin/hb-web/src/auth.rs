//! Who is asking: sessions made by a login, and the limits that keep password guessing slow.
//!
//! A session is a 256-bit random token, given to the client once (in the login answer and a
//! cookie) and kept here only as its SHA-256, so the map's lookups reveal nothing about the
//! tokens held and a memory dump holds no usable token. Sessions live in hb-web's memory: a
//! restart of hb-web logs everyone out, which is the price of keeping no secret on disk.

use std::collections::HashMap;
use std::net::IpAddr;

use sha2::{Digest, Sha256};

/// A session ends after this long without use (the live page's WebSocket counts as use).
pub const SESSION_IDLE_MS: u64 = 24 * 3600 * 1000;
/// And this long after login whatever happens.
pub const SESSION_MAX_MS: u64 = 30 * 24 * 3600 * 1000;
/// Sessions one user may hold; a new login past it ends their oldest.
pub const SESSIONS_PER_USER: usize = 64;
/// Sessions held at most, all users; past it the oldest ends.
pub const SESSIONS_MAX: usize = 100_000;

/// The session cookie's name.
pub const COOKIE: &str = "hb_session";

/// A random token: 32 bytes from the OS, as 64 hex digits.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// One logged-in client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Whose session it is.
    pub user: String,
    /// What a cookie-authenticated write must send in `X-CSRF-Token`.
    pub csrf: String,
    /// Login time, Unix ms.
    pub created_ms: u64,
    /// Last use, Unix ms.
    pub used_ms: u64,
}

/// The sessions, by the digest of their token.
#[derive(Debug, Default)]
pub struct Sessions {
    by_digest: HashMap<[u8; 32], Session>,
}

impl Sessions {
    /// Starts a session for `user`; returns its token and CSRF token.
    pub fn start(&mut self, user: &str, now: u64) -> Result<(String, String), getrandom::Error> {
        let token = new_token()?;
        let csrf = new_token()?;
        let mine: Vec<([u8; 32], u64)> = self
            .by_digest
            .iter()
            .filter(|(_, s)| s.user == user)
            .map(|(d, s)| (*d, s.created_ms))
            .collect();
        if mine.len() >= SESSIONS_PER_USER
            && let Some((oldest, _)) = mine.iter().min_by_key(|(_, t)| *t)
        {
            self.by_digest.remove(oldest);
        }
        if self.by_digest.len() >= SESSIONS_MAX {
            self.expire(now);
        }
        if self.by_digest.len() >= SESSIONS_MAX
            && let Some(oldest) = self
                .by_digest
                .iter()
                .min_by_key(|(_, s)| s.used_ms)
                .map(|(d, _)| *d)
        {
            self.by_digest.remove(&oldest);
        }
        self.by_digest.insert(
            digest(&token),
            Session {
                user: user.to_string(),
                csrf: csrf.clone(),
                created_ms: now,
                used_ms: now,
            },
        );
        Ok((token, csrf))
    }

    /// The session of `token`, if it is alive; marks it used.
    pub fn touch(&mut self, token: &str, now: u64) -> Option<Session> {
        let key = digest(token);
        let alive = self.by_digest.get(&key).is_some_and(|s| alive(s, now));
        if !alive {
            self.by_digest.remove(&key);
            return None;
        }
        let s = self.by_digest.get_mut(&key)?;
        s.used_ms = now;
        Some(s.clone())
    }

    /// Ends the session of `token`; whether there was one.
    pub fn end(&mut self, token: &str) -> bool {
        self.by_digest.remove(&digest(token)).is_some()
    }

    /// Ends every session of users `keep` says no to (removed users, changed passwords).
    pub fn retain_users(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.by_digest.retain(|_, s| keep(&s.user));
    }

    /// Drops sessions past their time.
    pub fn expire(&mut self, now: u64) {
        self.by_digest.retain(|_, s| alive(s, now));
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

fn alive(s: &Session, now: u64) -> bool {
    now < s.used_ms.saturating_add(SESSION_IDLE_MS)
        && now < s.created_ms.saturating_add(SESSION_MAX_MS)
}

/// Failed logins a source address or a user name may have in a row before it must wait.
pub const LOGIN_BURST: u32 = 10;
/// Then one more try per this long.
pub const LOGIN_REFILL_MS: u64 = 30_000;
/// Addresses and names tracked at most; past it, those that are back to a full allowance
/// are forgotten first, then everything (a flood of sources cannot grow memory).
const LIMITER_ENTRIES: usize = 50_000;

/// A token bucket of login tries: [`LOGIN_BURST`] tries, one back per [`LOGIN_REFILL_MS`].
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tries: u32,
    at_ms: u64,
}

impl Bucket {
    fn level(&self, now: u64) -> u32 {
        let back = now.saturating_sub(self.at_ms) / LOGIN_REFILL_MS;
        u32::try_from(back)
            .unwrap_or(u32::MAX)
            .saturating_add(self.tries)
            .min(LOGIN_BURST)
    }
}

/// Login limits per source address and per user name: failures cost a try, successes
/// nothing. A client out of tries is answered 429 before any password is checked, so a
/// guessing client costs no PBKDF2 work. Limiting by name too means many addresses cannot
/// guess one password faster; the price is that they can keep that user waiting.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    addresses: HashMap<IpAddr, Bucket>,
    names: HashMap<String, Bucket>,
}

impl LoginLimiter {
    /// `None` when `address` may try to log in as `name` now; otherwise how long it must wait
    /// (ms).
    pub fn check(&self, address: IpAddr, name: &str, now: u64) -> Option<u64> {
        let wait = |b: Option<&Bucket>| {
            b.filter(|b| b.level(now) == 0)
                .map(|b| LOGIN_REFILL_MS - now.saturating_sub(b.at_ms) % LOGIN_REFILL_MS)
        };
        wait(self.addresses.get(&address)).or_else(|| wait(self.names.get(&tracked_name(name))))
    }

    /// Takes a try for a login from `address` as `name` before its password is checked,
    /// so parallel guesses cannot all pass the check; a success gives it back
    /// ([`LoginLimiter::refund`]). `Err` is how long to wait (ms).
    pub fn take(&mut self, address: IpAddr, name: &str, now: u64) -> Result<(), u64> {
        if let Some(wait) = self.check(address, name, now) {
            return Err(wait);
        }
        self.failed(address, name, now);
        Ok(())
    }

    /// Gives back the try a successful login took.
    pub fn refund(&mut self, address: IpAddr, name: &str, now: u64) {
        let name = tracked_name(name);
        for bucket in [self.addresses.get_mut(&address), self.names.get_mut(&name)]
            .into_iter()
            .flatten()
        {
            bucket.tries = bucket.level(now).saturating_add(1).min(LOGIN_BURST);
            if bucket.tries == LOGIN_BURST {
                bucket.at_ms = now;
            }
        }
    }

    /// A failed login from `address` as `name`.
    pub fn failed(&mut self, address: IpAddr, name: &str, now: u64) {
        if self.addresses.len() + self.names.len() >= LIMITER_ENTRIES {
            self.addresses.retain(|_, b| b.level(now) < LOGIN_BURST);
            self.names.retain(|_, b| b.level(now) < LOGIN_BURST);
            if self.addresses.len() + self.names.len() >= LIMITER_ENTRIES {
                self.addresses.clear();
                self.names.clear();
            }
        }
        // An unknown name is tracked like a known one so the answers do not tell which exist.
        let name = tracked_name(name);
        for bucket in [
            self.addresses.entry(address).or_insert(Bucket {
                tries: LOGIN_BURST,
                at_ms: now,
            }),
            self.names.entry(name).or_insert(Bucket {
                tries: LOGIN_BURST,
                at_ms: now,
            }),
        ] {
            let level = bucket.level(now);
            // Keep the time of the partial refill so waiting is never lost.
            let elapsed = now.saturating_sub(bucket.at_ms);
            bucket.at_ms = if level == LOGIN_BURST {
                now
            } else {
                now - elapsed % LOGIN_REFILL_MS
            };
            bucket.tries = level.saturating_sub(1);
        }
    }
}

/// A user name as the limiter keys it: bounded, so a long name cannot cost memory, and the
/// same in the check and the count.
fn tracked_name(name: &str) -> String {
    name.chars().take(64).collect()
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The `Set-Cookie` value for a new session (`Secure` under TLS).
pub fn set_cookie(token: &str, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_MAX_MS / 1000
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_or_old_and_end_on_logout() {
        let mut s = Sessions::default();
        let (token, csrf) = s.start("alice", 1000).unwrap();
        assert_eq!(token.len(), 64);
        assert_ne!(token, csrf);
        assert_eq!(s.touch(&token, 2000).map(|s| s.user), Some("alice".into()));
        assert_eq!(s.touch("0".repeat(64).as_str(), 2000), None);
        // Used within the idle time, it lives until the maximum.
        let mut now = 2000;
        while now < 1000 + SESSION_MAX_MS - SESSION_IDLE_MS {
            now += SESSION_IDLE_MS - 1;
            assert!(s.touch(&token, now).is_some(), "at {now}");
        }
        assert!(s.touch(&token, 1000 + SESSION_MAX_MS).is_none());
        assert!(s.is_empty());

        let (token, _) = s.start("alice", 0).unwrap();
        assert!(s.touch(&token, SESSION_IDLE_MS).is_none(), "idle");
        let (token, _) = s.start("alice", 0).unwrap();
        assert!(s.end(&token));
        assert!(s.touch(&token, 1).is_none());
        assert!(!s.end(&token));
    }

    #[test]
    fn a_user_holds_a_bounded_number_of_sessions() {
        let mut s = Sessions::default();
        let first = s.start("bob", 0).unwrap().0;
        for t in 1..=SESSIONS_PER_USER as u64 {
            s.start("bob", t).unwrap();
        }
        s.start("carol", 0).unwrap();
        assert_eq!(s.len(), SESSIONS_PER_USER + 1);
        assert!(s.touch(&first, 100).is_none(), "the oldest ended");
        s.retain_users(|u| u != "bob");
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn failed_logins_wait_per_address_and_per_name() {
        let mut l = LoginLimiter::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..LOGIN_BURST {
            assert_eq!(l.check(a, "alice", 0), None, "try {i}");
            l.failed(a, "alice", 0);
        }
        assert_eq!(l.check(a, "alice", 0), Some(LOGIN_REFILL_MS));
        assert_eq!(l.check(a, "bob", 10_000), Some(LOGIN_REFILL_MS - 10_000));
        // Another address guessing alice waits too; it may try others.
        assert!(l.check(b, "alice", 0).is_some());
        assert_eq!(l.check(b, "bob", 0), None);
        // One try back per refill time.
        assert_eq!(l.check(a, "bob", LOGIN_REFILL_MS), None);
        l.failed(a, "bob", LOGIN_REFILL_MS);
        assert!(l.check(a, "bob", LOGIN_REFILL_MS + 1).is_some());
        assert_eq!(l.check(a, "carol", 3 * LOGIN_REFILL_MS), None);
        // Long names are limited too.
        let long = "x".repeat(100);
        for _ in 0..LOGIN_BURST {
            l.failed(b, &long, 0);
        }
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        assert!(l.check(c, &long, 0).is_some());
    }

    #[test]
    fn tries_are_taken_before_the_check_and_given_back_on_success() {
        let mut l = LoginLimiter::default();
        let a: IpAddr = "192.0.2.9".parse().unwrap();
        // Ten parallel guesses take all tries before any password is checked.
        for _ in 0..LOGIN_BURST {
            assert!(l.take(a, "alice", 0).is_ok());
        }
        assert!(l.take(a, "alice", 0).is_err());
        // Successful logins cost nothing.
        let b: IpAddr = "192.0.2.10".parse().unwrap();
        for _ in 0..100 {
            assert!(l.take(b, "bob", 0).is_ok());
            l.refund(b, "bob", 0);
        }
    }

    #[test]
    fn a_flood_of_sources_cannot_grow_the_limiter() {
        let mut l = LoginLimiter::default();
        for i in 0..(LIMITER_ENTRIES as u32) {
            l.failed(IpAddr::from(i.to_be_bytes()), "x", 0);
        }
        assert!(l.addresses.len() + l.names.len() <= LIMITER_ENTRIES);
    }

    #[test]
    fn cookies_are_found_and_set_strictly() {
        assert_eq!(cookie("a=1; hb_session=abc; b=2", COOKIE), Some("abc"));
        assert_eq!(cookie("hb_sessionx=1", COOKIE), None);
        assert_eq!(cookie("", COOKIE), None);
        let c = set_cookie("tok", true);
        for part in [
            "hb_session=tok",
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!set_cookie("tok", false).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
