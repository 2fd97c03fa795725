// Admins: campaigns, progress per annotator and item, review of one item, the consensus.
import { api, me, el } from "./api.js";

const $ = (id) => document.getElementById(id);
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];
let campaign = null;

const fmt = (x) => (x === null || x === undefined ? "-" : Number(x).toFixed(3));

async function showCampaigns() {
  const body = document.querySelector("#campaigns tbody");
  body.replaceChildren();
  for (const c of await api("GET", "/api/admin/campaigns")) {
    body.append(el("tr", {}, el("td", { text: c.id }), el("td", { text: c.name }), el("td", { text: c.task }),
      el("td", { text: c.per_item }), el("td", { text: c.class_names.join(", ") }),
      el("td", {}, el("button", { type: "button", class: "show-progress", onclick: () => showProgress(c) , text: "progress" }))));
  }
}

async function showProgress(c) {
  campaign = c;
  const p = await api("GET", `/api/admin/campaigns/${c.id}/progress`);
  $("progress-box").hidden = false;
  $("progress-title").textContent = `${c.name} (${c.task})`;
  const users = document.querySelector("#users tbody");
  users.replaceChildren(...Object.entries(p.users).map(([u, n]) =>
    el("tr", {}, el("td", { text: u }), el("td", { text: n.open }), el("td", { text: n.draft }), el("td", { text: n.submitted }))));
  const items = document.querySelector("#items tbody");
  items.replaceChildren(...p.items.map((it) => el("tr", {}, el("td", { text: it.video }), el("td", { text: it.track }),
    el("td", { text: it.assigned }), el("td", { text: it.submitted }),
    el("td", {}, el("button", { type: "button", class: "review", onclick: () => showReview(it.item), text: "review" })))));
}

async function showReview(itemId) {
  const r = await api("GET", `/api/admin/campaigns/${campaign.id}/review?item=${itemId}`);
  $("review-box").hidden = false;
  $("review-title").replaceChildren(`${r.video} / ${r.track}: lowest agreement ${fmt(r.lowest_agreement)} `,
    r.flagged ? el("span", { class: "flag", text: "FLAGGED" }) : "");
  const canvas = $("review-plot"), ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const n = r.frame_count, x = (i) => (i + 0.5) / n * w;
  if (campaign.task === "va") {
    const half = h / 2;
    ["valence", "arousal"].forEach((dim, row) => {
      const y = (v) => row * half + (1 - v) / 2 * (half - 10) + 5;
      ctx.strokeStyle = "#ddd"; ctx.beginPath(); ctx.moveTo(0, y(0)); ctx.lineTo(w, y(0)); ctx.stroke();
      ctx.fillStyle = "#333"; ctx.fillText(dim, 4, row * half + 14);
      const series = r.annotators.map((u, k) => [r.traces[u][dim], COLORS[k % COLORS.length], 1]);
      series.push([r.consensus[dim], "#000", 2.5]);
      for (const [values, color, width] of series) {
        ctx.strokeStyle = color; ctx.lineWidth = width; ctx.beginPath();
        let on = false;
        values.forEach((v, i) => { if (v === null) { on = false; return; } if (on) ctx.lineTo(x(i), y(v)); else ctx.moveTo(x(i), y(v)); on = true; });
        ctx.stroke();
      }
      ctx.lineWidth = 1;
    });
  } else {
    const keys = Object.keys(r.consensus);
    const rows = [];
    for (const k of keys) { for (const u of r.annotators) rows.push([`${u} ${k}`, r.labels[u][k]]); rows.push([`consensus ${k}`, r.consensus[k]]); }
    const rh = Math.min(24, h / rows.length);
    rows.forEach(([name, values], j) => {
      values.forEach((v, i) => { if (v >= 0) { ctx.fillStyle = COLORS[v % COLORS.length]; ctx.fillRect(i / n * w, j * rh, w / n + 1, rh - 2); } });
      ctx.fillStyle = "#000"; ctx.fillText(name, 4, j * rh + rh * 0.7);
    });
  }
  r.annotators.forEach((u, k) => { ctx.fillStyle = COLORS[k % COLORS.length]; ctx.fillText(u, w - 90, 14 + 14 * k); });
  const pairs = document.querySelector("#pairs tbody");
  pairs.replaceChildren(...r.pairs.map((p) => el("tr", {}, el("td", { text: p.a }), el("td", { text: p.b }),
    el("td", { text: campaign.task === "va" ? `CCC valence ${fmt(p.ccc_valence)}, arousal ${fmt(p.ccc_arousal)}`
      : Object.entries(p.kappa).map(([k, v]) => `${k} kappa ${fmt(v)}`).join(", ") }),
    el("td", { text: p.frames ?? "" }))));
  $("lags").textContent = Object.keys(r.lags_s).length
    ? "reaction lag against the others: " + Object.entries(r.lags_s).map(([u, s]) => `${u} ${fmt(s)} s`).join(", ") : "";
}

$("consensus").addEventListener("click", async () => {
  try {
    const r = await api("POST", `/api/admin/campaigns/${campaign.id}/consensus`, {});
    $("consensus-result").textContent = `${r.source}: ${JSON.stringify(r.frames)} frames`;
  } catch (e) { $("error").textContent = e.message; }
});

const user = await me();
if (!user) location.href = "index.html";
else if (user.role !== "admin") $("error").textContent = "this page is for admins";
else showCampaigns().catch((e) => { $("error").textContent = e.message; });
