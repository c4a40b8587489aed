// /plugins/<host>: one host's facts, RTT history, alerts, and each plugin's data with charts.
"use strict";
(() => {
  const root = document.getElementById("host");
  if (!root) { hb.live(); return; }
  const host = root.getAttribute("data-host");
  const base = "/api/0/hosts/" + encodeURIComponent(host);
  const CHARTED = 6; // numeric fields charted per plugin

  // Nested data as dotted keys (arrays kept whole, as text).
  function flatten(value, prefix, out) {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    } else {
      out.push([prefix, value]);
    }
    return out;
  }
  function pick(data, path) {
    return path.split(".").reduce((v, k) => (v && typeof v === "object" ? v[k] : undefined), data);
  }

  let rtt = [];
  async function loadRtt() {
    const r = await hb.api("GET", base + "/rtt?limit=500");
    if (!r.ok) return;
    rtt = r.data.samples.map((s) => [s.timestamp, s.rtt]).reverse();
    hb.chart(document.getElementById("rtt-chart"), rtt, "RTT (ms)");
  }

  async function loadAlerts() {
    const r = await hb.api("GET", base + "/alerts");
    const ul = document.getElementById("host-alerts");
    ul.textContent = "";
    if (!r.ok || r.data.length === 0) { ul.append(hb.el("li", { class: "muted", text: "none" })); return; }
    for (const a of r.data) {
      ul.append(hb.el("li", {}, hb.el("span", { class: "level-" + a.level, text: a.level }), " ", a.text,
        a.acknowledged ? hb.el("span", { class: "muted", text: ` (acknowledged by ${a.acknowledged_by})` }) : null));
    }
  }

  function special(name, data) {
    // ZFS pools: health at a glance.
    if (name === "zfs_monitor" && data && typeof data.zpool === "object") {
      const t = hb.el("table", { class: "pools" }, hb.el("tr", {}, ...["Pool", "Health", "Capacity %", "Fragmentation %"].map((h) => hb.el("th", { text: h }))));
      for (const [pool, p] of Object.entries(data.zpool)) {
        t.append(hb.el("tr", {}, hb.el("td", { text: pool }),
          hb.el("td", { class: p.health_ok === false || p.health_ok === 0 ? "health-bad" : "", text: p.health ?? "" }),
          hb.el("td", { text: p.capacity ?? "" }), hb.el("td", { text: p.fragmentation ?? "" })));
      }
      return t;
    }
    // Nagios checks: status and output per check.
    if (name === "nagios_runner" && data) {
      const t = hb.el("table", { class: "nagios" }, hb.el("tr", {}, ...["Check", "Status", "Output"].map((h) => hb.el("th", { text: h }))));
      for (const k of Object.keys(data).filter((k) => k.endsWith("_status") && !k.endsWith("_status_code"))) {
        const check = k.slice(0, -"_status".length);
        const status = String(data[k]);
        t.append(hb.el("tr", {}, hb.el("td", { text: check }),
          hb.el("td", { class: "level-" + status.toUpperCase(), text: status }),
          hb.el("td", { text: data[check + "_output"] ?? "" })));
      }
      return t;
    }
    return null;
  }

  async function loadPlugin(name, card) {
    const r = await hb.api("GET", `${base}/plugins/${encodeURIComponent(name)}?limit=100`);
    if (!r.ok || r.data.samples.length === 0) return;
    const samples = r.data.samples.slice().reverse();
    const latest = samples[samples.length - 1];
    card.textContent = "";
    card.append(hb.el("h3", {}, name, " ", hb.el("span", { class: "muted", text: hb.time(latest.timestamp) })));
    const sp = special(name, latest.data);
    if (sp) card.append(sp);
    const fields = flatten(latest.data, "", []);
    const numeric = fields.filter(([, v]) => typeof v === "number").slice(0, CHARTED);
    const charts = hb.el("div", { class: "charts" });
    for (const [key] of numeric) {
      const box = hb.el("div", { class: "chart", "data-metric": `${name}.${key}` });
      charts.append(box);
      hb.chart(box, samples.map((s) => [s.timestamp, Number(pick(s.data, key))]), key);
    }
    card.append(charts);
    const table = hb.el("table", { class: "fields" });
    for (const [k, v] of fields) {
      const text = typeof v === "object" ? JSON.stringify(v) : String(v);
      table.append(hb.el("tr", {}, hb.el("td", { text: k }), hb.el("td", { text: text.length > 300 ? text.slice(0, 300) + "…" : text })));
    }
    card.append(hb.el("details", {}, hb.el("summary", { text: `${fields.length} fields` }), table));
  }

  const cards = new Map();
  async function loadPlugins() {
    const r = await hb.api("GET", base + "/plugins");
    if (!r.ok) return;
    const box = document.getElementById("plugins");
    for (const name of Object.keys(r.data.plugins).sort()) {
      if (!cards.has(name)) {
        const card = hb.el("section", { class: "plugin", id: "plugin-" + name });
        box.append(card);
        cards.set(name, card);
      }
      loadPlugin(name, cards.get(name));
    }
  }

  const result = document.getElementById("action-result");
  async function act(method, path, body) {
    const r = await hb.api(method, base + path, body);
    result.textContent = r.ok ? (r.data.message || (r.data.id ? `queued as #${r.data.id}` : "done")) : (r.data && r.data.error) || `failed (${r.status})`;
    return r;
  }
  const on = (id, ev, f) => { const e = document.getElementById(id); if (e) e.addEventListener(ev, f); };
  on("command-form", "submit", (ev) => { ev.preventDefault(); act("POST", "/commands", { command: document.getElementById("command").value }); });
  on("upgrade", "click", () => act("POST", "/upgrade"));
  on("dns", "click", () => act("POST", "/dns"));
  on("drop", "click", async () => {
    if (!confirm(`Drop ${host}? Its history and alerts are forgotten.`)) return;
    const r = await act("DELETE", "");
    if (r.ok) location.href = "/live";
  });

  const pending = new Set();
  hb.live((m) => {
    if (m.type === "host" && m.host.name === host) {
      const h = m.host;
      document.getElementById("host-state").textContent = h.state;
      document.getElementById("host-dot").className = "dot st-" + h.state;
      document.getElementById("host-seen").setAttribute("data-t", String(Math.round(h.last_seen * 1000)));
      if (typeof h.rtt === "number" && (rtt.length === 0 || rtt[rtt.length - 1][1] !== h.rtt)) {
        rtt.push([h.last_seen, h.rtt]);
        if (rtt.length > 500) rtt.shift();
        hb.chart(document.getElementById("rtt-chart"), rtt, "RTT (ms)");
      }
    } else if (m.type === "sample" && m.host === host && !pending.has(m.plugin)) {
      // Several reports in a burst cost one reload.
      pending.add(m.plugin);
      setTimeout(() => {
        pending.delete(m.plugin);
        if (cards.has(m.plugin)) loadPlugin(m.plugin, cards.get(m.plugin)); else loadPlugins();
      }, 1000);
    } else if (m.type === "alert" && m.alert.host === host) {
      loadAlerts();
    } else if (m.type === "dropped" && m.host === host) {
      result.textContent = "This host was dropped.";
    }
  });
  loadRtt();
  loadAlerts();
  loadPlugins();
})();
