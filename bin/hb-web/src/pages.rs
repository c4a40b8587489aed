//! The dashboard's pages: server-rendered HTML with small scripts of our own (no CDN, no
//! inline script or style, so the Content-Security-Policy can forbid both). Data the page
//! starts with is rendered here, escaped; what changes arrives over `/ws`.

use std::fmt::Write;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use hb_ipc::edge::{Answer, HostSummary, Query};
use hb_notify::message::html_escape as esc;
use hb_web::access::{HostRole, Viewer};

use crate::authed::Authed;
use crate::reply::PathParams;
use crate::web::{Web, WebState};

/// A page's viewer; without a session (and with users) the browser goes to `/login`.
pub struct PageViewer {
    viewer: Viewer,
    csrf: String,
}

impl FromRequestParts<Arc<Web>> for PageViewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Arc<Web>) -> Result<PageViewer, Response> {
        match Authed::from_request_parts(parts, web).await {
            Ok(authed) => Ok(PageViewer {
                viewer: authed.viewer,
                csrf: authed.csrf.unwrap_or_default(),
            }),
            Err(_) => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/live", |p| p.as_str())
                    .to_string();
                Err(Redirect::to(&format!("/login?next={}", url_escape(&next))).into_response())
            }
        }
    }
}

fn url_escape(text: &str) -> String {
    text.bytes().fold(String::new(), |mut s, b| {
        if b.is_ascii_alphanumeric() || b"-_./".contains(&b) {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
        s
    })
}

pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/live") }))
        .route("/login", get(login))
        .route("/live", get(live))
        .route("/plugins/{host}", get(host_page))
        .route("/alerts", get(alerts))
        .route("/checks", get(checks))
        .route("/settings", get(settings))
        .route("/static/{file}", get(asset))
}

/// The assets, compiled in: name, content type, body.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "hb.css",
        "text/css; charset=utf-8",
        include_str!("../assets/hb.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../assets/favicon.svg"),
    ),
    (
        "hb.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/hb.js"),
    ),
    (
        "login.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/login.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/live.js"),
    ),
    (
        "host.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/host.js"),
    ),
    (
        "alerts.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/alerts.js"),
    ),
    (
        "settings.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/settings.js"),
    ),
    (
        "checks.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/checks.js"),
    ),
];

async fn asset(path: PathParams) -> Response {
    let Ok(Path(name)) = path else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Only names in the table: no path is ever opened.
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, body)) => {
            let mut r = (*body).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            r
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// The frame of every page: navigation with the alert count, the unauthenticated banner, and
/// the page's script.
fn page(title: &str, viewer: Option<&PageViewer>, main: &str, script: &str) -> Response {
    let mut html = String::with_capacity(main.len() + 2048);
    let csrf = viewer.map_or("", |v| v.csrf.as_str());
    let user = viewer.map_or("", |v| v.viewer.name());
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf}">
<meta name="hb-user" content="{user}">
<title>{title} · hb</title>
<link rel="stylesheet" href="/static/hb.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head><body>
"#,
        csrf = esc(csrf),
        user = esc(user),
        title = esc(title),
    );
    if let Some(v) = viewer {
        let _ = write!(
            html,
            r#"<nav><span class="brand">hb</span><a href="/live">Live</a><a href="/alerts">Alerts <span id="alert-count" class="badge">0</span></a><a href="/checks">Checks</a><a href="/settings">Settings</a><span class="spacer"></span><span class="conn" id="conn" title="live feed">offline</span><span class="user">{}</span>{}</nav>"#,
            esc(v.viewer.name()),
            if matches!(v.viewer, Viewer::Open) {
                ""
            } else {
                r#"<button id="logout" type="button">Log out</button>"#
            }
        );
        if matches!(v.viewer, Viewer::Open) {
            html.push_str(r#"<div class="banner warn" id="open-banner">Unauthenticated mode: no users are configured, so anyone who can reach this page can see and act on every host. Add users in hb.yaml (docs/CONFIG.md).</div>
"#);
        }
    }
    let _ = write!(
        html,
        r#"<main>{main}</main>
<script src="/static/hb.js"></script>
<script src="/static/{script}"></script>
</body></html>
"#
    );
    let mut r = html.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

async fn login(State(web): WebState) -> Response {
    if web.users().is_empty() {
        return Redirect::to("/live").into_response();
    }
    page(
        "Log in",
        None,
        r#"<form id="login" class="login">
<h1>hb</h1>
<label>User <input name="username" id="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
<button type="submit" id="login-button">Log in</button>
<p class="error" id="login-error"></p>
</form>"#,
        "login.js",
    )
}

fn state_class(state: &str) -> &'static str {
    match state {
        "up" => "up",
        "overdue" => "overdue",
        "down" => "down",
        "unreachable" => "unreachable",
        "shutdown" => "shutdown",
        _ => "unknown",
    }
}

fn host_row(out: &mut String, h: &HostSummary) {
    let rtt = h.rtt_ms.map_or(String::new(), |r| format!("{r:.1}"));
    // Exact, so the live feed's first state of the row is seen as unchanged.
    let rtt_exact = h.rtt_ms.map_or(String::new(), |r| r.to_string());
    let _ = write!(
        out,
        r#"<tr data-host="{name}" class="st-{class}"><td class="dot"></td><td class="name"><a href="/plugins/{name}">{name}</a></td><td class="state">{state}</td><td class="seen" data-t="{seen}"></td><td class="rtt" data-rtt="{rtt_exact}">{rtt}</td><td class="spark"></td><td class="addr">{addr}</td><td class="ver">{ver}</td></tr>"#,
        name = esc(&h.name),
        class = state_class(&h.state),
        state = esc(&h.state),
        seen = h.last_seen_ms,
        addr = esc(&h.address.ip().to_canonical().to_string()),
        ver = esc(h.version.as_deref().unwrap_or("")),
    );
}

async fn live(State(web): WebState, viewer: PageViewer) -> Response {
    let hosts = web.host_list().await.unwrap_or_default();
    let visible: Vec<&HostSummary> = hosts.iter().filter(|h| viewer.viewer.sees(h)).collect();
    let mut rows = String::with_capacity(visible.len() * 300);
    for h in &visible {
        host_row(&mut rows, h);
    }
    let main = format!(
        r#"<section class="summary" id="summary"></section>
<div class="tools"><input id="filter" type="search" placeholder="Filter hosts" aria-label="Filter hosts"></div>
<table class="hosts" id="hosts"><thead><tr><th></th><th>Host</th><th>State</th><th>Last seen</th><th>RTT ms</th><th>RTT</th><th>Address</th><th>Version</th></tr></thead>
<tbody id="host-rows">{rows}</tbody></table>
<p class="empty" id="no-hosts"{hidden}>No hosts yet. Start <code>hbc</code> on a host pointing at this server.</p>
<h2>Events</h2><ul class="events" id="events"></ul>"#,
        hidden = if visible.is_empty() { "" } else { " hidden" },
    );
    page("Live", Some(&viewer), &main, "live.js")
}

async fn host_page(State(web): WebState, viewer: PageViewer, path: PathParams) -> Response {
    let name = match path {
        Ok(Path(n)) => n.to_ascii_lowercase(),
        Err(_) => String::new(),
    };
    let summary = if hb_proto::names::check_host_name(&name).is_ok() {
        match web.ask(Query::Host { host: name.clone() }).await {
            Ok(Answer::Host { host, .. }) if viewer.viewer.sees(&host) => Some(host),
            _ => None,
        }
    } else {
        None
    };
    let Some(h) = summary else {
        let mut r = page(
            "No such host",
            Some(&viewer),
            "<h1>No such host</h1><p>It is not known, or not yours to see.</p>",
            "live.js",
        );
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    };
    let role = viewer.viewer.role(&h).unwrap_or(HostRole::Monitor);
    let mut actions = String::new();
    if role >= HostRole::Manager {
        actions.push_str(r#"<form id="command-form" class="inline"><input id="command" placeholder="command name" aria-label="command name"><button type="submit">Queue command</button></form><button type="button" id="upgrade">Queue upgrade</button>"#);
        if h.dyn_dns {
            actions.push_str(r#"<button type="button" id="dns">Update DNS</button>"#);
        }
    }
    if role >= HostRole::Owner {
        actions.push_str(r#"<button type="button" id="drop" class="danger">Drop host</button>"#);
    }
    let main = format!(
        r#"<div id="host" data-host="{name}" data-role="{role}">
<h1><span class="dot st-{class}" id="host-dot"></span>{name}</h1>
<dl class="facts"><dt>State</dt><dd id="host-state">{state}</dd><dt>Last seen</dt><dd id="host-seen" data-t="{seen}"></dd><dt>Address</dt><dd>{addr}</dd><dt>Version</dt><dd>{ver}</dd><dt>Owner</dt><dd>{owner}</dd><dt>Your role</dt><dd>{role}</dd></dl>
<div class="actions">{actions}<span id="action-result"></span></div>
<h2>Round-trip time</h2><div class="chart" id="rtt-chart"></div>
<h2>Alerts</h2><ul class="alerts" id="host-alerts"></ul>
<div id="plugins"></div>
</div>"#,
        name = esc(&h.name),
        role = role.name(),
        class = state_class(&h.state),
        state = esc(&h.state),
        seen = h.last_seen_ms,
        addr = esc(&h.address.ip().to_canonical().to_string()),
        ver = esc(h.version.as_deref().unwrap_or("")),
        owner = esc(h.owner.as_deref().unwrap_or("")),
    );
    page(&h.name, Some(&viewer), &main, "host.js")
}

async fn alerts(viewer: PageViewer) -> Response {
    page(
        "Alerts",
        Some(&viewer),
        r#"<h1>Alerts</h1>
<section class="summary" id="alert-summary"></section>
<div class="tools"><label>Severity <select id="severity"><option value="">all</option><option value="CRITICAL">critical</option><option value="WARNING">warning</option><option value="UNKNOWN">unknown</option></select></label></div>
<table class="alerts" id="alerts"><thead><tr><th>Level</th><th>Host</th><th>Metric</th><th>Since</th><th>What</th><th></th></tr></thead><tbody id="alert-rows"></tbody></table>
<p class="empty" id="no-alerts" hidden>No active alerts.</p>"#,
        "alerts.js",
    )
}

async fn checks(viewer: PageViewer) -> Response {
    page(
        "Checks",
        Some(&viewer),
        r#"<h1>Checks</h1>
<p class="muted">Cron jobs and applications ping <code>/ping/&lt;uuid&gt;</code> (or <code>/start</code>, <code>/fail</code>, <code>/&lt;exit status&gt;</code>); a check that misses its interval and grace, or reports a failure, alerts like a host.</p>
<table id="checks"><thead><tr><th>Check</th><th>State</th><th>Expected</th><th>Last ping</th><th>Last event</th><th>Ping URL</th></tr></thead><tbody></tbody></table>
<p class="empty" id="no-checks" hidden>No checks yet.</p>
<section id="history-box" hidden><h2 id="history-title">History</h2><table id="history"><thead><tr><th>When</th><th>Kind</th><th>Exit</th><th>Duration</th><th>From</th><th>Body</th></tr></thead><tbody></tbody></table></section>
<section><h2>New check</h2><form id="check-form" class="channel-form"><label>Name <input id="check-name" required maxlength="63"></label><label>Every (s) <input id="check-interval" type="number" min="1" value="86400"></label><label>or cron <input id="check-schedule" placeholder="0 2 * * *"></label><label>Time zone <input id="check-tz" placeholder="Europe/Berlin"></label><label>Grace (s) <input id="check-grace" type="number" min="0" value="3600"></label><button type="submit" id="check-submit">Create</button></form>
<p class="error" id="check-error"></p></section>"#,
        "checks.js",
    )
}

async fn settings(viewer: PageViewer) -> Response {
    let admin = viewer.viewer.is_admin();
    let main = format!(
        r#"<h1>Settings</h1>
<section><h2>You</h2><dl class="facts" id="me"></dl></section>
<section{users_hidden}><h2>Users</h2><table id="users"><thead><tr><th>Name</th><th>Full name</th><th>Admin</th><th>Channels</th></tr></thead><tbody></tbody></table></section>
<section><h2>Silences</h2><table id="silences"><thead><tr><th>Host</th><th>Metric</th><th>Until</th><th>By</th><th>Why</th><th></th></tr></thead><tbody></tbody></table>
<form id="silence-form" class="inline"><input id="silence-host" placeholder="host" aria-label="host" required><input id="silence-metric" placeholder="metric (* for all)" aria-label="metric"><input id="silence-minutes" type="number" min="1" value="60" aria-label="minutes"><input id="silence-comment" placeholder="why" aria-label="why"><button type="submit">Silence</button></form>
<p class="error" id="silence-error"></p></section>
<section><h2>Notification channels</h2><table id="channels"><thead><tr><th>Name</th><th>Type</th><th>Owner</th><th>Min level</th><th>Private</th><th>Options</th><th>Secrets set</th><th></th></tr></thead><tbody></tbody></table>
<form id="channel-form" class="channel-form"><h3 id="channel-form-title">New channel</h3><label>Name <input id="channel-name" required pattern="[A-Za-z0-9][A-Za-z0-9_.\-]{{0,63}}"></label><label>Type <select id="channel-type"></select></label><label>Min level <select id="channel-level"><option>WARNING</option><option>CRITICAL</option><option>OK</option></select></label><label><input type="checkbox" id="channel-private"> private</label><p class="muted" id="channel-help"></p><div id="channel-options"></div><button type="submit" id="channel-submit">Create</button> <button type="button" id="channel-cancel" hidden>Cancel</button></form>
<p class="error" id="channel-error"></p></section>
<section><h2>Server</h2><dl class="facts" id="status"></dl></section>
<section{config_hidden}><h2>Configuration</h2><p class="muted">As loaded, every secret hidden.</p><dl class="facts" id="config-facts"></dl><pre id="config-file"></pre></section>
<section><h2>Threshold profiles</h2><p class="muted" id="default-profile"></p><div id="profiles"></div></section>"#,
        users_hidden = if admin { "" } else { " hidden" },
        config_hidden = if admin { "" } else { " hidden" },
    );
    page("Settings", Some(&viewer), &main, "settings.js")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        assert_eq!(
            url_escape("/plugins/web1?x=1&y"),
            "/plugins/web1%3Fx%3D1%26y"
        );
    }
}
