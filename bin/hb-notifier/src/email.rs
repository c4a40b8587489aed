//! The `email` channel: one message with a plain text and an HTML part to every recipient,
//! over SMTP with STARTTLS (default), TLS, or none (a relay on loopback), with a login if
//! configured. A refusal the server calls permanent (a bad address, a failed login) fails at
//! once; anything else is tried again.

use std::time::Duration;

use hb_notify::channel::{Secret, SmtpSecurity};
use hb_notify::message::{Message, html};
use hb_notify::retry::Attempt;
use lettre::message::MultiPart;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// What an email channel needs.
pub struct Smtp<'a> {
    /// Server name.
    pub server: &'a str,
    /// Port.
    pub port: u16,
    /// Security.
    pub security: SmtpSecurity,
    /// Login.
    pub user: Option<&'a str>,
    /// Password.
    pub password: Option<&'a Secret>,
    /// From.
    pub sender: &'a str,
    /// To.
    pub recipients: &'a [String],
}

fn permanent(error: impl std::fmt::Display) -> Attempt {
    Attempt::Permanent {
        error: error.to_string(),
    }
}

/// Sends `m` through `smtp`.
pub async fn send(smtp: &Smtp<'_>, m: &Message, timeout: Duration) -> Attempt {
    let builder = match smtp.security {
        SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(smtp.server),
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(smtp.server),
        SmtpSecurity::Plain => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            smtp.server,
        )),
    };
    let mut builder = match builder {
        Ok(b) => b.port(smtp.port).timeout(Some(timeout)),
        Err(e) => return permanent(format!("SMTP server {}: {e}", smtp.server)),
    };
    if let (Some(user), Some(password)) = (smtp.user, smtp.password) {
        builder = builder.credentials(Credentials::new(
            user.to_string(),
            password.expose().to_string(),
        ));
    }
    let transport = builder.build();
    let mut mail = lettre::Message::builder().subject(m.title.clone());
    match smtp.sender.parse() {
        Ok(from) => mail = mail.from(from),
        Err(e) => return permanent(format!("sender {:?}: {e}", smtp.sender)),
    }
    for to in smtp.recipients {
        match to.parse() {
            Ok(to) => mail = mail.to(to),
            Err(e) => return permanent(format!("recipient {to:?}: {e}")),
        }
    }
    let mail = match mail.multipart(MultiPart::alternative_plain_html(m.body.clone(), html(m))) {
        Ok(mail) => mail,
        Err(e) => return permanent(e),
    };
    match tokio::time::timeout(timeout, transport.send(mail)).await {
        Ok(Ok(_)) => Attempt::Delivered,
        Ok(Err(e)) if e.is_permanent() => permanent(format!("SMTP: {e}")),
        Ok(Err(e)) => Attempt::Transient {
            error: format!("SMTP: {e}"),
            after: None,
        },
        Err(_) => Attempt::Transient {
            error: format!("SMTP: no answer within {} s", timeout.as_secs_f64()),
            after: None,
        },
    }
}
