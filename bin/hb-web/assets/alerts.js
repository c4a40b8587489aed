// /alerts: active alerts, filtered by severity, acknowledged from here, kept live.
"use strict";
(() => {
  const tbody = document.getElementById("alert-rows");
  const severity = document.getElementById("severity");
  const alerts = new Map(); // key -> alert
  const ORDER = { CRITICAL: 0, UNKNOWN: 1, WARNING: 2 };

  function render() {
    const want = severity.value;
    const list = [...alerts.values()]
      .filter((a) => !want || a.level === want)
      .sort((a, b) => (ORDER[a.level] ?? 9) - (ORDER[b.level] ?? 9) || a.host.localeCompare(b.host) || a.key.localeCompare(b.key));
    tbody.textContent = "";
    for (const a of list) {
      const ack = a.acknowledged
        ? hb.el("span", { class: "muted", text: `acknowledged by ${a.acknowledged_by}` })
        : hb.el("button", { type: "button", class: "ack", "data-key": a.key, text: "Acknowledge", onclick: () => acknowledge(a.key) });
      tbody.append(hb.el("tr", { "data-key": a.key },
        hb.el("td", { class: "level-" + a.level, text: a.level }),
        hb.el("td", {}, hb.el("a", { href: "/plugins/" + encodeURIComponent(a.host), text: a.host })),
        hb.el("td", { text: a.metric }),
        hb.el("td", { "data-t": String(Math.round(a.since * 1000)), text: hb.ago(a.since * 1000) }),
        hb.el("td", { text: a.text }),
        hb.el("td", {}, ack)));
    }
    document.getElementById("no-alerts").hidden = list.length > 0;
    const counts = {};
    for (const a of alerts.values()) counts[a.level] = (counts[a.level] || 0) + 1;
    const box = document.getElementById("alert-summary");
    box.textContent = "";
    box.append(hb.el("span", { class: "count", id: "alerts-total", text: `${alerts.size} active` }));
    for (const l of ["CRITICAL", "WARNING", "UNKNOWN"]) {
      if (counts[l]) box.append(hb.el("span", { class: "count level-" + l, text: `${counts[l]} ${l.toLowerCase()}` }));
    }
  }

  async function acknowledge(key) {
    const r = await hb.api("POST", `/api/0/alerts/${encodeURIComponent(key)}/acknowledge`);
    if (r.ok) {
      const a = alerts.get(key);
      if (a) { a.acknowledged = true; a.acknowledged_by = document.querySelector('meta[name="hb-user"]').getAttribute("content"); }
      render();
    }
  }

  severity.addEventListener("change", render);
  hb.live((m) => {
    if (m.type === "snapshot") {
      alerts.clear();
      for (const a of m.alerts) alerts.set(a.key, a);
      render();
    } else if (m.type === "alert") {
      if (m.alert.level === "OK") alerts.delete(m.alert.key); else alerts.set(m.alert.key, m.alert);
      render();
    } else if (m.type === "dropped") {
      for (const [k, a] of alerts) if (a.host === m.host) alerts.delete(k);
      render();
    }
  });
})();
