//! Validation of names that end up in DNS, file names and log lines.

/// Checks a host name: DNS label rules (letters, digits, `-`, `_` for hbd compatibility),
/// labels of 1 to 63 characters separated by dots, 253 characters in all. Anything else (a
/// space, a newline, a semicolon) could inject commands into an nsupdate script or a log line.
pub fn check_host_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err(format!("host name {name:?} must be 1 to 253 characters"));
    }
    for label in name.split('.') {
        let ok_chars = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if label.is_empty()
            || label.len() > 63
            || !ok_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "host name {name:?} is not a DNS name (labels of letters, digits, '-' and '_')"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_names() {
        for ok in ["web1", "web-1.example.net", "db_2", "a", &"x".repeat(63)] {
            assert!(check_host_name(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_injection_and_garbage() {
        for bad in [
            "",
            "web 1",
            "web1\nupdate delete x",
            "a;b",
            "-lead",
            "trail-",
            "a.b-.c",
            "a..b",
            ".",
            "é",
            &"x".repeat(64),
            &"a.".repeat(127),
        ] {
            assert!(check_host_name(bad).is_err(), "{bad:?}");
        }
    }
}
