//! Password hashes in the format the original hbd (and Werkzeug) use:
//! `pbkdf2:sha256:<iterations>$<salt>$<hex digest>`, PBKDF2-HMAC-SHA256 over the UTF-8
//! password with the salt string's bytes as salt.

use std::fmt;

use hb_proto::sign::constant_time_eq;
use sha2::Sha256;

/// Iterations for new hashes (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).
pub const ITERATIONS: u32 = 600_000;
const SALT_LEN: usize = 16;
const DIGEST_LEN: usize = 32;

/// A parsed password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: u32,
    salt: String,
    digest: [u8; DIGEST_LEN],
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pbkdf2:sha256:{}${}$", self.iterations, self.salt)?;
        for byte in self.digest {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl PasswordHash {
    /// Hashes `password` with a fresh random salt.
    pub fn new(password: &str) -> Result<PasswordHash, getrandom::Error> {
        Ok(Self::with_salt(password, &random_salt()?, ITERATIONS))
    }

    /// Hashes with a given salt and iteration count.
    pub fn with_salt(password: &str, salt: &str, iterations: u32) -> PasswordHash {
        let mut digest = [0u8; DIGEST_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(
            password.as_bytes(),
            salt.as_bytes(),
            iterations,
            &mut digest,
        );
        PasswordHash {
            iterations,
            salt: salt.to_string(),
            digest,
        }
    }

    /// Parses a stored hash; the error says what is wrong without echoing the hash.
    pub fn parse(text: &str) -> Result<PasswordHash, String> {
        let shape = "must look like pbkdf2:sha256:<iterations>$<salt>$<64 hex digits> (run `hbctl passwd NAME`)";
        let rest = text.strip_prefix("pbkdf2:sha256:").ok_or(shape)?;
        let mut parts = rest.split('$');
        let (Some(iterations), Some(salt), Some(hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(shape.into());
        };
        let iterations: u32 = iterations.parse().map_err(|_| shape.to_string())?;
        if !(1_000..=10_000_000).contains(&iterations) {
            return Err(format!(
                "iteration count must be 1000 to 10000000, not {iterations}"
            ));
        }
        if salt.is_empty() || salt.len() > 128 {
            return Err(shape.into());
        }
        let digest = decode_hex(hex).ok_or(shape)?;
        Ok(PasswordHash {
            iterations,
            salt: salt.to_string(),
            digest,
        })
    }

    /// True when `password` matches, compared in constant time.
    pub fn verify(&self, password: &str) -> bool {
        let other = Self::with_salt(password, &self.salt, self.iterations);
        constant_time_eq(&self.digest, &other.digest)
    }
}

fn random_salt() -> Result<String, getrandom::Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut salt = String::with_capacity(SALT_LEN);
    while salt.len() < SALT_LEN {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        // 248 = 4 * 62: rejecting bytes above it keeps every character equally likely.
        for b in bytes.into_iter().filter(|b| *b < 248) {
            if salt.len() < SALT_LEN {
                salt.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    Ok(salt)
}

fn decode_hex(hex: &str) -> Option<[u8; DIGEST_LEN]> {
    if hex.len() != DIGEST_LEN * 2 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; DIGEST_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // Python: hashlib.pbkdf2_hmac("sha256", b"secret", b"saltsalt", 1000).hex()
        let h = PasswordHash::with_salt("secret", "saltsalt", 1000);
        let text = h.to_string();
        assert_eq!(
            text,
            "pbkdf2:sha256:1000$saltsalt$86047d1ecaad2aea56c699eff32f7d4eb3c36a34d3ffd3dc49394d69fa5d2d74"
        );
        assert_eq!(PasswordHash::parse(&text).unwrap(), h);
        assert!(h.verify("secret"));
        assert!(!h.verify("Secret"));
    }

    #[test]
    fn new_hashes_verify_and_differ() {
        let a = PasswordHash::with_salt("pw", &random_salt().unwrap(), 1000);
        let b = PasswordHash::with_salt("pw", &random_salt().unwrap(), 1000);
        assert_ne!(a.to_string(), b.to_string());
        assert!(PasswordHash::parse(&a.to_string()).unwrap().verify("pw"));
    }

    #[test]
    fn malformed_hashes_are_refused() {
        for bad in [
            "",
            "plain",
            "pbkdf2:sha1:1000$s$00",
            "pbkdf2:sha256:x$s$00",
            "pbkdf2:sha256:1000$s$zz",
            "pbkdf2:sha256:10$s$0000000000000000000000000000000000000000000000000000000000000000",
            "pbkdf2:sha256:1000$$0000000000000000000000000000000000000000000000000000000000000000",
            "pbkdf2:sha256:1000$a$b$0000000000000000000000000000000000000000000000000000000000000000",
            "pbkdf2:sha256:1000$s$ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé",
        ] {
            assert!(PasswordHash::parse(bad).is_err(), "{bad:?}");
        }
    }
}
