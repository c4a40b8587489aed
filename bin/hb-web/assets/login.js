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
    const next = new URLSearchParams(location.search).get("next") || "/live";
    // Only a path of this site: never a redirect elsewhere.
    location.href = next.startsWith("/") && !next.startsWith("//") ? next : "/live";
  } else {
    err.textContent = (r.data && r.data.error) || `login failed (${r.status})`;
  }
});
