// /checks: every check the user sees, its state and ping URL, its history on a click, and a
// form to make one. Data goes into the page as text only.
"use strict";
(() => {
  const seconds = (s) => (s >= 86400 && s % 86400 === 0 ? `${s / 86400} d` : s >= 3600 && s % 3600 === 0 ? `${s / 3600} h` : s >= 60 && s % 60 === 0 ? `${s / 60} min` : `${s} s`);

  async function history(c) {
    load();
    const r = await hb.api("GET", `/api/applications/${encodeURIComponent(c.uuid)}/heartbeats?limit=50`);
    const box = document.getElementById("history-box");
    const tbody = document.querySelector("#history tbody");
    tbody.textContent = "";
    box.hidden = false;
    document.getElementById("history-title").textContent = `History of ${c.name}`;
    if (!r.ok) return;
    for (const p of r.data) {
      const duration = p.duration_ms == null ? "" : `${(p.duration_ms / 1000).toFixed(1)} s`;
      tbody.append(hb.el("tr", { class: "ping-" + p.kind }, hb.el("td", { text: new Date(p.timestamp).toLocaleString() }),
        hb.el("td", { class: p.kind === "fail" ? "level-CRITICAL" : "", text: p.kind }), hb.el("td", { text: p.exit_status ?? "" }),
        hb.el("td", { text: duration }), hb.el("td", { text: p.source }), hb.el("td", { class: "options", text: p.body ?? "" })));
    }
  }

  async function load() {
    const r = await hb.api("GET", "/api/applications");
    const tbody = document.querySelector("#checks tbody");
    tbody.textContent = "";
    if (!r.ok) return;
    document.getElementById("no-checks").hidden = r.data.length > 0;
    for (const c of r.data) {
      const expected = c.schedule ? `${c.schedule} (${c.tz || "UTC"})` : `every ${seconds(c.expected_interval)}`;
      const last = c.last_heartbeat ? hb.el("span", { "data-t": Date.parse(c.last_heartbeat), text: "" }) : "never";
      const event = c.last_event ? `${c.last_event.kind}, ${new Date(c.last_event.timestamp).toLocaleString()}` : "";
      const url = `${location.origin}/ping/${c.uuid}`;
      tbody.append(hb.el("tr", { "data-check": c.name },
        hb.el("td", {}, hb.el("a", { href: "#", text: c.name, onclick: (ev) => { ev.preventDefault(); history(c); } }),
          c.description ? hb.el("div", { class: "muted", text: c.description }) : null),
        hb.el("td", { class: "state-" + c.status, text: c.status }), hb.el("td", { text: `${expected} + ${seconds(c.grace_period)}` }),
        hb.el("td", {}, last), hb.el("td", { text: event }), hb.el("td", {}, hb.el("code", { text: url }))));
    }
  }

  document.getElementById("check-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const schedule = document.getElementById("check-schedule").value.trim();
    const body = { name: document.getElementById("check-name").value, grace_period: Number(document.getElementById("check-grace").value) };
    if (schedule) {
      body.schedule = schedule;
      const tz = document.getElementById("check-tz").value.trim();
      if (tz) body.tz = tz;
    } else {
      body.expected_interval = Number(document.getElementById("check-interval").value);
    }
    const r = await hb.api("POST", "/api/applications", body);
    document.getElementById("check-error").textContent = r.ok ? "" : (r.data && r.data.error) || `failed (${r.status})`;
    if (r.ok) document.getElementById("check-form").reset();
    load();
  });

  hb.live();
  load();
  setInterval(load, 15000);
})();
