// /settings: you, the users (admins), silences, the server.
"use strict";
(() => {
  function facts(dl, pairs) {
    dl.textContent = "";
    for (const [k, v] of pairs) dl.append(hb.el("dt", { text: k }), hb.el("dd", { text: v == null ? "" : String(v) }));
  }

  async function load() {
    const me = await hb.api("GET", "/api/0/users/me");
    if (me.ok) facts(document.getElementById("me"), [["Name", me.data.name], ["Full name", me.data.full_name], ["Admin", me.data.admin ? "yes" : "no"], ["Channels", (me.data.notification_channels || []).join(", ")]]);
    const users = document.querySelector("#users tbody");
    if (!users.closest("section").hidden) {
      const r = await hb.api("GET", "/api/0/users");
      users.textContent = "";
      if (r.ok) for (const u of r.data) users.append(hb.el("tr", {}, hb.el("td", { text: u.name }), hb.el("td", { text: u.full_name || "" }), hb.el("td", { text: u.admin ? "yes" : "" }), hb.el("td", { text: (u.notification_channels || []).join(", ") })));
    }
    await silences();
    const th = await hb.api("GET", "/api/0/thresholds");
    if (th.ok) {
      document.getElementById("default-profile").textContent = `Default profile: ${th.data.default_threshold_config}`;
      const box = document.getElementById("profiles");
      box.textContent = "";
      box.append(hb.el("h3", { text: "Server-wide thresholds" }), hb.el("pre", { text: JSON.stringify(th.data.thresholds, null, 2) }));
      for (const [name, profile] of Object.entries(th.data.threshold_configs || {})) {
        box.append(hb.el("h3", { text: name }), hb.el("pre", { class: "profile", "data-profile": name, text: JSON.stringify(profile, null, 2) }));
      }
    }
    const st = await hb.api("GET", "/api/0/status");
    if (st.ok) facts(document.getElementById("status"), [["Version", st.data.version], ["Hosts", st.data.hosts], ["By state", JSON.stringify(st.data.hosts_by_state)], ["Alerts", JSON.stringify(st.data.alerts_by_level)], ["Authentication", st.data.unauthenticated ? "none (no users configured)" : "users"]]);
  }

  async function silences() {
    const r = await hb.api("GET", "/api/0/silences");
    const tbody = document.querySelector("#silences tbody");
    tbody.textContent = "";
    if (!r.ok) return;
    for (const s of r.data.silences) {
      tbody.append(hb.el("tr", {}, hb.el("td", { text: s.host }), hb.el("td", { text: s.metric }), hb.el("td", { text: hb.time(s.end) }),
        hb.el("td", { text: s.author }), hb.el("td", { text: s.comment }),
        hb.el("td", {}, hb.el("button", { type: "button", text: "End", onclick: async () => { await hb.api("DELETE", `/api/0/silences/${s.id}`); silences(); } }))));
    }
    for (const w of r.data.maintenance) {
      tbody.append(hb.el("tr", {}, hb.el("td", { text: "maintenance" }), hb.el("td", { text: w.name }), hb.el("td", { text: w.open ? "open now" : "closed" }), hb.el("td"), hb.el("td"), hb.el("td")));
    }
  }

  document.getElementById("silence-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = document.getElementById("silence-error");
    const r = await hb.api("POST", "/api/0/silences", {
      host: document.getElementById("silence-host").value,
      metric: document.getElementById("silence-metric").value || "*",
      minutes: Number(document.getElementById("silence-minutes").value),
      comment: document.getElementById("silence-comment").value,
    });
    err.textContent = r.ok ? "" : (r.data && r.data.error) || `failed (${r.status})`;
    silences();
  });

  hb.live();
  load();
})();
