// /settings: you, the users (admins), silences, notification channels, the server and its
// configuration (admins).
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
    await channels();
    const cfg = document.getElementById("config-facts");
    if (!cfg.closest("section").hidden) {
      const c = await hb.api("GET", "/api/0/config");
      if (c.ok) {
        facts(cfg, [["File", c.data.source], ["UDP", c.data.udp], ["HTTP", c.data.http], ["Second HTTP port", c.data.ws || "none"], ["HTTPS", c.data.https ? "yes" : "no"], ["State", c.data.state_dir], ["Journal", c.data.journal_dir], ["Control socket", c.data.control_socket]]);
        document.getElementById("config-file").textContent = JSON.stringify(c.data.file, null, 2);
      }
    }
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

  // Notification channels: the list, and one form to create or change one (its fields drawn
  // from the type's options; secrets are never shown, and one left empty keeps its value).
  let types = {};
  let editing = null;
  const form = document.getElementById("channel-form");
  const typeSelect = document.getElementById("channel-type");

  function optionFields(type, current) {
    const box = document.getElementById("channel-options");
    box.textContent = "";
    const spec = types[type];
    document.getElementById("channel-help").textContent = spec ? spec.help : "";
    if (!spec) return;
    const values = (current && current.options) || {};
    const set = (current && current.secrets_set) || [];
    for (const o of spec.options.concat([{ name: "timeout", kind: "text", help: "seconds one attempt may take" }, { name: "retry_for", kind: "text", help: "seconds delivery is retried" }])) {
      if (o.file_only) continue;
      let value = values[o.name];
      if (Array.isArray(value)) value = value.join(", ");
      const placeholder = o.secret && set.includes(o.name) ? "(set; leave empty to keep)" : (o.default || "");
      box.append(hb.el("label", { class: "option" }, `${o.name}${o.required ? " *" : ""} `,
        hb.el("input", { "data-option": o.name, "data-kind": o.kind, type: o.secret ? "password" : "text", autocomplete: "off", placeholder, value: value == null ? "" : String(value), title: o.help })));
    }
  }

  function formOptions() {
    const options = {};
    for (const input of document.querySelectorAll("#channel-options input")) {
      const v = input.value.trim();
      if (v === "") continue;
      const kind = input.getAttribute("data-kind");
      const name = input.getAttribute("data-option");
      if (kind === "list") options[name] = v.split(",").map((x) => x.trim()).filter((x) => x);
      else if (kind === "port" || name === "timeout" || name === "retry_for") options[name] = Number(v);
      else options[name] = v;
    }
    return options;
  }

  function resetForm() {
    editing = null;
    form.reset();
    document.getElementById("channel-name").disabled = false;
    typeSelect.disabled = false;
    document.getElementById("channel-form-title").textContent = "New channel";
    document.getElementById("channel-submit").textContent = "Create";
    document.getElementById("channel-cancel").hidden = true;
    optionFields(typeSelect.value);
  }

  function edit(c) {
    editing = c.name;
    document.getElementById("channel-name").value = c.name;
    document.getElementById("channel-name").disabled = true;
    typeSelect.value = c.type;
    typeSelect.disabled = true;
    document.getElementById("channel-level").value = c.min_level;
    document.getElementById("channel-private").checked = c.private;
    document.getElementById("channel-form-title").textContent = `Change ${c.name}`;
    document.getElementById("channel-submit").textContent = "Save";
    document.getElementById("channel-cancel").hidden = false;
    optionFields(c.type, c);
    form.scrollIntoView();
  }

  async function channels() {
    if (Object.keys(types).length === 0) {
      const t = await hb.api("GET", "/api/0/notification_channel_types");
      if (t.ok) {
        types = t.data.types;
        typeSelect.textContent = "";
        for (const [name, spec] of Object.entries(types)) if (!spec.file_only) typeSelect.append(hb.el("option", { value: name, text: name }));
        optionFields(typeSelect.value);
      }
    }
    const r = await hb.api("GET", "/api/0/notification_channels");
    const tbody = document.querySelector("#channels tbody");
    tbody.textContent = "";
    if (!r.ok) return;
    for (const c of r.data) {
      const options = c.options ? Object.entries(c.options).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join("; ") : "";
      const actions = hb.el("td", {});
      if (c.editable) {
        actions.append(hb.el("button", { type: "button", text: "Change", onclick: () => edit(c) }), " ",
          hb.el("button", { type: "button", class: "danger", text: "Remove", onclick: async () => {
            if (!confirm(`Remove the channel ${c.name}?`)) return;
            const d = await hb.api("DELETE", `/api/0/notification_channels/${encodeURIComponent(c.name)}`);
            document.getElementById("channel-error").textContent = d.ok ? "" : (d.data && d.data.error) || `failed (${d.status})`;
            channels();
          } }));
      } else if (c.source === "file") {
        actions.append(hb.el("span", { class: "muted", text: "in the file" }));
      }
      tbody.append(hb.el("tr", { "data-channel": c.name }, hb.el("td", { text: c.name }), hb.el("td", { text: c.type }), hb.el("td", { text: c.owner || "" }),
        hb.el("td", { text: c.min_level }), hb.el("td", { text: c.private ? "yes" : "" }), hb.el("td", { class: "options", text: options }),
        hb.el("td", { text: (c.secrets_set || []).join(", ") }), actions));
    }
  }

  typeSelect.addEventListener("change", () => optionFields(typeSelect.value));
  document.getElementById("channel-cancel").addEventListener("click", resetForm);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const common = { min_level: document.getElementById("channel-level").value, private: document.getElementById("channel-private").checked, options: formOptions() };
    const r = editing
      ? await hb.api("PUT", `/api/0/notification_channels/${encodeURIComponent(editing)}`, common)
      : await hb.api("POST", "/api/0/notification_channels", Object.assign({ name: document.getElementById("channel-name").value, type: typeSelect.value }, common));
    document.getElementById("channel-error").textContent = r.ok ? "" : (r.data && r.data.error) || `failed (${r.status})`;
    if (r.ok) resetForm();
    channels();
  });

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
