//! The text of a notification on each kind of channel: a title `[LEVEL] host ...`, a body
//! with the details, when, and a link to the host; a short form for SMS; plain text and
//! HTML for mail.

use hb_ipc::edge::Notification;

/// Longest SMS text that still fits one segment (GSM 7-bit).
pub const SMS_SEGMENT: usize = 160;

/// The rendered forms of one notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `[CRITICAL] web1 down`.
    pub title: String,
    /// Details, time and link, plain text.
    pub body: String,
    /// The link to the host's page, if `base_url` is set.
    pub link: Option<String>,
    /// At most one SMS segment.
    pub short: String,
}

fn utc(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || format!("{ms} ms after 1970"),
            |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

/// Makes every form of `n`; `base_url` gives the link to `{base_url}/plugins/<host>`.
pub fn render(n: &Notification, base_url: Option<&str>) -> Message {
    let link = base_url
        .filter(|_| n.host != "*")
        .map(|b| format!("{}/plugins/{}", b.trim_end_matches('/'), n.host));
    let mut body = format!("{}\n\n{}", n.text, utc(n.created_ms));
    if let Some(link) = &link {
        body.push('\n');
        body.push_str(link);
    }
    let short = shorten(&format!("{} {}", n.title, n.text), SMS_SEGMENT);
    Message {
        title: n.title.clone(),
        body,
        link,
        short,
    }
}

/// Cuts `text` to `max` characters, ending in `...` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

/// `text` with `& < > " '` escaped for HTML.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The mail's HTML part.
pub fn html(m: &Message) -> String {
    let mut out = format!(
        "<html><body><h3>{}</h3><p>{}</p>",
        html_escape(&m.title),
        html_escape(&m.body).replace('\n', "<br>")
    );
    if let Some(link) = &m.link {
        let link = html_escape(link);
        out.push_str(&format!("<p><a href=\"{link}\">{link}</a></p>"));
    }
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n() -> Notification {
        Notification {
            id: 1,
            alert: "web1/down".into(),
            kind: "alert".into(),
            level: "CRITICAL".into(),
            host: "web1".into(),
            title: "[CRITICAL] web1 down".into(),
            text: "web1 sent nothing for 22 s (last from 192.0.2.1:4000)".into(),
            created_ms: 1_795_329_291_836,
            users: vec![],
            channels: vec![],
            alerted: vec![],
            done_channels: Vec::new(),
        }
    }

    #[test]
    fn title_body_time_and_link() {
        let m = render(&n(), Some("https://hb.example.net/"));
        assert_eq!(m.title, "[CRITICAL] web1 down");
        assert_eq!(
            m.body,
            "web1 sent nothing for 22 s (last from 192.0.2.1:4000)\n\n2026-11-22 06:34:51 UTC\nhttps://hb.example.net/plugins/web1"
        );
        assert!(m.short.len() <= SMS_SEGMENT);
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn sms_fits_one_segment_and_html_is_escaped() {
        let mut long = n();
        long.text = "x".repeat(500);
        let m = render(&long, None);
        assert_eq!(m.short.chars().count(), SMS_SEGMENT);
        assert!(m.short.ends_with("..."));
        let mut evil = n();
        evil.title = "[CRITICAL] <script>alert(1)</script>".into();
        let h = html(&render(&evil, None));
        assert!(!h.contains("<script>"), "{h}");
        assert!(h.contains("&lt;script&gt;"));
    }
}
