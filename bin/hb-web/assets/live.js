// /live: every visible host, kept current by the live feed without reloading.
"use strict";
(() => {
  const tbody = document.getElementById("host-rows");
  if (!tbody) { hb.live(); return; }
  const rows = new Map(); // name -> { tr, rtts }
  const SPARK = 30;
  const STATES = ["up", "overdue", "down", "unreachable", "shutdown"];

  for (const tr of tbody.querySelectorAll("tr[data-host]")) {
    const rtt = Number(tr.querySelector(".rtt").getAttribute("data-rtt"));
    rows.set(tr.getAttribute("data-host"), { tr, rtts: rtt > 0 ? [rtt] : [] });
  }

  function newRow(name) {
    const tr = hb.el("tr", { "data-host": name },
      hb.el("td", { class: "dot" }),
      hb.el("td", { class: "name" }, hb.el("a", { href: "/plugins/" + encodeURIComponent(name), text: name })),
      hb.el("td", { class: "state" }),
      hb.el("td", { class: "seen" }),
      hb.el("td", { class: "rtt" }),
      hb.el("td", { class: "spark" }),
      hb.el("td", { class: "addr" }),
      hb.el("td", { class: "ver" }));
    // Keep the table sorted by name.
    let before = null;
    for (const [other, r] of rows) {
      if (other > name && (!before || other < before.getAttribute("data-host"))) before = r.tr;
    }
    tbody.insertBefore(tr, before);
    const row = { tr, rtts: [] };
    rows.set(name, row);
    applyFilter(tr);
    return row;
  }

  function setText(td, text) {
    if (td.textContent !== text) td.textContent = text;
  }

  function update(h) {
    const row = rows.get(h.name) || newRow(h.name);
    const tr = row.tr;
    const cls = "st-" + (STATES.includes(h.state) ? h.state : "unknown");
    if (!tr.classList.contains(cls)) {
      tr.className = tr.className.split(" ").filter((c) => c && !c.startsWith("st-")).concat(cls).join(" ");
    }
    setText(tr.querySelector(".state"), h.state);
    const seen = tr.querySelector(".seen");
    const t = String(Math.round(h.last_seen * 1000));
    if (seen.getAttribute("data-t") !== t) {
      seen.setAttribute("data-t", t);
      seen.textContent = hb.ago(h.last_seen * 1000);
    }
    const rtt = tr.querySelector(".rtt");
    if (typeof h.rtt === "number") {
      setText(rtt, h.rtt.toFixed(1));
      // Drawn only when the RTT changed: a snapshot of 10,000 unchanged rows draws nothing.
      if (row.rtts[row.rtts.length - 1] !== h.rtt) {
        row.rtts.push(h.rtt);
        if (row.rtts.length > SPARK) row.rtts.shift();
        const spark = tr.querySelector(".spark");
        spark.textContent = "";
        spark.append(hb.sparkline(row.rtts, 90, 18));
      }
    }
    setText(tr.querySelector(".addr"), h.address || "");
    setText(tr.querySelector(".ver"), h.ver == null ? "" : String(h.ver));
  }

  function remove(name) {
    const row = rows.get(name);
    if (row) { row.tr.remove(); rows.delete(name); }
  }

  function summary() {
    const counts = {};
    for (const { tr } of rows.values()) {
      const st = [...tr.classList].find((c) => c.startsWith("st-"));
      const s = st ? st.slice(3) : "unknown";
      counts[s] = (counts[s] || 0) + 1;
    }
    const box = document.getElementById("summary");
    box.textContent = "";
    box.append(hb.el("span", { class: "count", id: "count-all" }, `${rows.size} hosts`));
    for (const s of STATES) {
      if (counts[s]) box.append(hb.el("span", { class: "count st-" + s, id: "count-" + s }, hb.el("span", { class: "dot st-" + s }), `${counts[s]} ${s}`));
    }
    document.getElementById("no-hosts").hidden = rows.size > 0;
  }

  const filter = document.getElementById("filter");
  function applyFilter(tr) {
    const q = filter.value.trim().toLowerCase();
    tr.classList.toggle("hidden", q !== "" && !tr.getAttribute("data-host").includes(q));
  }
  filter.addEventListener("input", () => { for (const { tr } of rows.values()) applyFilter(tr); });

  const events = document.getElementById("events");
  function addEvent(e, atEnd) {
    const li = hb.el("li", {}, hb.el("time", { text: hb.time(e.time) }), hb.el("strong", { text: e.host }), " ", e.msg);
    if (atEnd) events.append(li); else events.prepend(li);
    while (events.children.length > 100) events.lastChild.remove();
  }

  summary();
  hb.live((m) => {
    if (m.type === "snapshot") {
      const seen = new Set();
      for (const h of m.hosts) { update(h); seen.add(h.name); }
      for (const name of [...rows.keys()]) if (!seen.has(name)) remove(name);
      events.textContent = "";
      for (const e of m.messages) addEvent(e, true);
      summary();
    } else if (m.type === "host") {
      update(m.host);
      summary();
    } else if (m.type === "dropped") {
      remove(m.host);
      summary();
    } else if (m.type === "event") {
      addEvent(m.event, false);
    }
  });
})();
