"use strict";
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = document.getElementById("login-error");
  err.textContent = "";
  const r = await hb.api("POST", "/api/0/auth/login", {
    username: document.getElementById("username").value,
    password: document.getElementById("password").value,
  });
  if (r.ok) {
    // Only a page of this site: never a redirect elsewhere (`/\evil`, `//evil` resolve away).
    let target = "/live";
    try {
      const u = new URL(new URLSearchParams(location.search).get("next") || "/live", location.origin);
      if (u.origin === location.origin) target = u.pathname + u.search + u.hash;
    } catch (_) { /* a malformed next: the default */ }
    location.href = target;
  } else {
    err.textContent = (r.data && r.data.error) || `login failed (${r.status})`;
  }
});
