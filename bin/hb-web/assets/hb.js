// hb dashboard, shared by every page: API calls, the live feed, and SVG charts.
// Data from the server is only ever put into the page as text (textContent), never as HTML.
"use strict";

const hb = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const meta = (name) => {
    const m = document.querySelector(`meta[name="${name}"]`);
    return m ? m.getAttribute("content") : "";
  };

  // An element with attributes and children (strings become text nodes).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  // Calls the API; cookie-authenticated writes carry the CSRF token.
  async function api(method, path, body) {
    const headers = { "X-CSRF-Token": meta("csrf-token") };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    if (r.status === 401 && !location.pathname.startsWith("/login")) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname);
    }
    let data = null;
    try { data = await r.json(); } catch (_) { data = null; }
    return { status: r.status, ok: r.ok, data };
  }

  function ago(ms) {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }

  function time(seconds) {
    return new Date(seconds * 1000).toLocaleString();
  }

  // Every element with data-t (Unix ms) shows its age, refreshed each second.
  function tickAges() {
    for (const e of document.querySelectorAll("[data-t]")) {
      const t = Number(e.getAttribute("data-t"));
      if (t > 0) e.textContent = ago(t);
    }
  }
  setInterval(tickAges, 1000);

  // Active alerts for the navigation badge: key -> level.
  const alerts = new Map();
  function badge() {
    const b = document.getElementById("alert-count");
    if (!b) return;
    const levels = [...alerts.values()];
    b.textContent = String(levels.length);
    b.className = "badge" + (levels.includes("CRITICAL") ? " critical" : levels.includes("WARNING") ? " warning" : "");
  }
  function trackAlert(a) {
    if (a.level === "OK") alerts.delete(a.key); else alerts.set(a.key, a.level);
    badge();
  }

  // The live feed: a snapshot, then changes; reconnects with a growing pause.
  function live(onMessage) {
    let pause = 500;
    const conn = document.getElementById("conn");
    const connect = () => {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(`${proto}//${location.host}/ws`);
      ws.onopen = () => { pause = 500; };
      ws.onmessage = (ev) => {
        let data;
        try { data = JSON.parse(ev.data); } catch (_) { return; }
        // Changes that happened together arrive as one array.
        for (const m of Array.isArray(data) ? data : [data]) handle(m);
      };
      const handle = (m) => {
        if (m.type === "snapshot") {
          alerts.clear();
          for (const a of m.alerts) trackAlert(a);
          if (conn) { conn.textContent = "live"; conn.className = "conn live"; }
        } else if (m.type === "alert") {
          trackAlert(m.alert);
        } else if (m.type === "resync") {
          ws.close();
          return;
        }
        if (onMessage) onMessage(m);
      };
      ws.onclose = () => {
        if (conn) { conn.textContent = "offline"; conn.className = "conn"; }
        setTimeout(connect, pause);
        pause = Math.min(pause * 2, 15000);
      };
    };
    connect();
  }

  // A sparkline of the last values.
  function sparkline(values, width, height) {
    const s = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "sparkline" });
    const v = values.filter((x) => Number.isFinite(x));
    if (v.length < 2) return s;
    const max = Math.max(...v), min = Math.min(...v), span = max - min || 1;
    const pts = v.map((x, i) => `${(i * (width - 2)) / (v.length - 1) + 1},${height - 1 - ((x - min) * (height - 2)) / span}`);
    s.append(svg("polyline", { points: pts.join(" "), fill: "none", stroke: "currentColor", "stroke-width": 1 }));
    return s;
  }

  // A line chart of [time (s), value] points, oldest first, with its range and times.
  function chart(container, points, label) {
    container.textContent = "";
    // Drawn at the container's pixel size, so text is never stretched.
    const W = Math.max(200, (container.clientWidth || 600) - 10);
    const H = container.closest(".plugin") ? 110 : 160, L = 44, B = 18, T = 14;
    const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": label });
    const p = points.filter((x) => Number.isFinite(x[1]));
    const title = svg("text", { x: L, y: 11 });
    title.textContent = label;
    s.append(title);
    if (p.length === 0) {
      const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" });
      t.textContent = "no data yet";
      s.append(t);
      container.append(s);
      return s;
    }
    const t0 = p[0][0], t1 = p[p.length - 1][0] || t0 + 1;
    let lo = Math.min(...p.map((x) => x[1])), hi = Math.max(...p.map((x) => x[1]));
    if (hi === lo) { hi += 1; lo = Math.max(0, lo - 1); }
    const x = (t) => L + ((t - t0) * (W - L - 4)) / (t1 - t0 || 1);
    const y = (v) => H - B - ((v - lo) * (H - B - T)) / (hi - lo);
    s.append(svg("line", { x1: L, y1: H - B, x2: W, y2: H - B, class: "axis" }));
    s.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
    const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));
    for (const [v, yy] of [[hi, T + 4], [lo, H - B]]) {
      const t = svg("text", { x: L - 4, y: yy, "text-anchor": "end" });
      t.textContent = fmt(v);
      s.append(t);
    }
    for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
      const e = svg("text", { x: x(t), y: H - 4, "text-anchor": anchor });
      e.textContent = new Date(t * 1000).toLocaleTimeString();
      s.append(e);
    }
    const line = svg("polyline", { class: "line", points: p.map((q) => `${x(q[0]).toFixed(1)},${y(q[1]).toFixed(1)}`).join(" ") });
    s.append(line);
    container.append(s);
    return s;
  }

  document.addEventListener("DOMContentLoaded", () => {
    tickAges();
    const out = document.getElementById("logout");
    if (out) out.addEventListener("click", async () => {
      await api("POST", "/api/0/auth/logout");
      location.href = "/login";
    });
  });

  return { el, svg, api, ago, time, live, sparkline, chart, tickAges };
})();
