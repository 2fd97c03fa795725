// Log-in, and the list of the user's own assignments.
import { api, me, setCsrf, el } from "./api.js";

async function showWork(user) {
  document.getElementById("login").hidden = true;
  document.getElementById("work").hidden = false;
  document.getElementById("who").textContent = `${user.name} (${user.role})`;
  document.getElementById("admin-link").hidden = user.role !== "admin";
  const body = document.querySelector("#assignments tbody");
  body.replaceChildren();
  for (const a of await api("GET", "/api/assignments")) {
    const link = el("a", { href: `annotate.html?a=${a.id}`, class: "open", text: "open" });
    body.append(el("tr", { "data-id": a.id },
      el("td", { text: a.campaign.name }), el("td", { text: a.campaign.task }), el("td", { text: a.video }),
      el("td", { text: a.track }), el("td", { text: a.status }), el("td", {}, link)));
  }
}

document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  try {
    const user = await api("POST", "/api/login", {
      name: document.getElementById("name").value, password: document.getElementById("password").value });
    setCsrf(user.csrf);
    await showWork(user);
  } catch (e) {
    error.textContent = e.message;
  }
});

document.getElementById("logout").addEventListener("click", async () => {
  await api("POST", "/api/logout", {});
  location.reload();
});

const user = await me();
if (user) await showWork(user);
else document.getElementById("login").hidden = false;
