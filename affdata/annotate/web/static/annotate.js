// One assignment: continuous VA tracing, or AU / expression frame ranges, with autosave.
//
// Frames: requestVideoFrameCallback reports the media time of each frame actually presented;
// it is mapped to the store's frame index through the item's real timestamps (pts_s), by the
// nearest timestamp, so variable-frame-rate videos come out right.
import { api, me, el } from "./api.js";

const AUTOSAVE_MS = 2000;
const params = new URLSearchParams(location.search);
const assignmentId = Number(params.get("a"));
const $ = (id) => document.getElementById(id);
const video = $("video"), overlay = $("overlay"), timeline = $("timeline"), pad = $("pad");

let item, media, n, pts, task, readonly;
let seq = 0, dirty = false, saving = false, current = 0;
const state = { valence: [], arousal: [], ranges: [] };
const point = { v: 0, a: 0 };
const stats = { presented: 0, lastIdx: -1, saves: 0, firstFrameMs: null };
let selection = new Set(), selected = null, pendingStart = null;

function frameAt(t) {
  // nearest pts_s to t (binary search)
  let lo = 0, hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pts[mid] < t) lo = mid + 1; else hi = mid;
  }
  if (lo > 0 && Math.abs(pts[lo - 1] - t) <= Math.abs(pts[lo] - t)) lo -= 1;
  return lo;
}

function record(idx) {
  if (task !== "va" || readonly || video.paused) return;
  const mode = item.campaign.mode;
  const dim = $("dimension").value;
  if (mode === "2d" || dim === "valence") state.valence[idx] = round(point.v);
  if (mode === "2d" || dim === "arousal") state.arousal[idx] = round(point.a);
  dirty = true;
}

const round = (x) => Math.round(x * 1000) / 1000;
const clamp = (x) => Math.max(-1, Math.min(1, x));

function onFrame(_now, meta) {
  const idx = frameAt(meta.mediaTime);
  // while paused, the frame is the one stepped or seeked to: a late callback of an earlier seek
  // must not move it back
  if (!video.paused) current = idx;
  stats.presented += 1;
  if (stats.firstFrameMs === null) stats.firstFrameMs = performance.now();  // since the page was opened
  stats.lastIdx = idx;
  pollGamepad();
  record(idx);
  drawOverlay(video.paused ? current : idx);
  drawTimeline();
  video.requestVideoFrameCallback(onFrame);
}

function pollGamepad() {
  const pads = navigator.getGamepads ? navigator.getGamepads() : [];
  for (const g of pads) {
    if (!g || g.axes.length < 2) continue;
    if (Math.hypot(g.axes[0], g.axes[1]) > 0.08) { point.v = clamp(g.axes[0]); point.a = clamp(-g.axes[1]); drawPad(); }
  }
}

function drawOverlay(idx) {
  const ctx = overlay.getContext("2d");
  overlay.width = video.clientWidth;
  overlay.height = video.clientHeight;
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  const box = media.boxes[idx];
  if (!box) return;
  const sx = overlay.width / media.width, sy = overlay.height / media.height;
  ctx.strokeStyle = "#39ff14";
  ctx.lineWidth = 2;
  ctx.strokeRect(box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy);
}

function drawPad() {
  const ctx = pad.getContext("2d"), w = pad.width, h = pad.height;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#bbb";
  ctx.beginPath(); ctx.moveTo(w / 2, 0); ctx.lineTo(w / 2, h); ctx.moveTo(0, h / 2); ctx.lineTo(w, h / 2); ctx.stroke();
  ctx.fillStyle = "#555";
  ctx.font = "11px sans-serif";
  ctx.fillText("arousal +", w / 2 + 4, 12); ctx.fillText("valence +", w - 56, h / 2 - 4);
  ctx.fillText("-", 4, h / 2 - 4); ctx.fillText("-", w / 2 + 4, h - 4);
  ctx.fillStyle = "#d62728";
  ctx.beginPath();
  ctx.arc((point.v + 1) / 2 * w, (1 - point.a) / 2 * h, 6, 0, 2 * Math.PI);
  ctx.fill();
}

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function drawTimeline() {
  const ctx = timeline.getContext("2d"), w = timeline.width, h = timeline.height;
  ctx.clearRect(0, 0, w, h);
  const x = (i) => (i + 0.5) / n * w;
  if (task === "va") {
    ctx.strokeStyle = "#ddd";
    ctx.beginPath(); ctx.moveTo(0, h / 2); ctx.lineTo(w, h / 2); ctx.stroke();
    for (const [dim, color] of [["valence", "#1f77b4"], ["arousal", "#ff7f0e"]]) {
      ctx.strokeStyle = color;
      ctx.beginPath();
      let drawing = false;
      for (let i = 0; i < n; i++) {
        const v = state[dim][i];
        if (v === null || v === undefined) { drawing = false; continue; }
        const y = (1 - v) / 2 * h;
        if (drawing) ctx.lineTo(x(i), y); else ctx.moveTo(x(i), y);
        drawing = true;
      }
      ctx.stroke();
    }
  } else {
    state.ranges.forEach((r, k) => {
      const key = task === "expr" ? r.expr : r.aus[0];
      ctx.fillStyle = COLORS[item.campaign.classes.indexOf(key) % COLORS.length];
      ctx.globalAlpha = k === selected ? 1 : 0.6;
      const row = task === "expr" ? 0 : item.campaign.classes.indexOf(key) % 4;
      ctx.fillRect(r.start / n * w, 10 + row * 25, Math.max(2, (r.end - r.start + 1) / n * w), 20);
      ctx.globalAlpha = 1;
      ctx.fillStyle = "#000";
      ctx.fillText(label(r), r.start / n * w + 2, 24 + row * 25);
    });
    if (pendingStart !== null) { ctx.fillStyle = "#000"; ctx.fillRect(x(pendingStart) - 1, 0, 2, h); }
  }
  ctx.fillStyle = "#d62728";
  ctx.fillRect(x(current) - 1, 0, 2, h);
  const traced = state.valence.filter((v, i) => v !== null && state.arousal[i] !== null).length;
  $("frame-status").textContent = `frame ${current} / ${n - 1} · ` + (task === "va"
    ? `traced ${traced} of ${n} frames · frames shown ${stats.presented}`
    : `${state.ranges.length} ranges` + (pendingStart !== null ? ` · start marked at ${pendingStart}` : ""));
}

function label(r) {
  if (task === "expr") return item.campaign.class_names[item.campaign.classes.indexOf(r.expr)];
  return r.aus.map((a) => `AU${a}`).join("+");
}

function payload() {
  return task === "va" ? { valence: state.valence, arousal: state.arousal } : { ranges: state.ranges };
}

async function save(keepalive = false) {
  if (!dirty || saving || readonly) return;
  saving = true;
  dirty = false;
  seq += 1;
  try {
    const r = await api("PUT", `/api/assignments/${assignmentId}/draft`,
      { seq, data: { ...payload(), position: video.currentTime } }, { keepalive });
    seq = Math.max(seq, r.seq);
    stats.saves += 1;
    $("saved").textContent = `saved #${r.seq} at ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    dirty = true;  // tried again at the next tick
    $("saved").textContent = `not saved: ${e.message}`;
  } finally {
    saving = false;
  }
}

function seekFrame(idx) {
  current = Math.max(0, Math.min(n - 1, idx));
  video.currentTime = pts[current] + 1e-4;  // the frame's own timestamp (a hair past it)
  drawTimeline();
}

function renderClasses() {
  const box = $("classes");
  box.replaceChildren();
  item.campaign.classes.forEach((c, i) => {
    const on = task === "expr" ? selection.has(c) : selection.has(c);
    const b = el("button", { type: "button", class: on ? (task === "expr" ? "selected" : "on") : "",
      "data-class": c, text: `${i + 1} ${item.campaign.class_names[i]}` });
    b.addEventListener("click", () => pickClass(i));
    box.append(b);
  });
  const list = $("ranges");
  list.replaceChildren(...state.ranges.map((r, k) =>
    el("li", { class: k === selected ? "selected" : "", text: `${r.start}..${r.end} ${label(r)}` })));
}

function pickClass(i) {
  const c = item.campaign.classes[i];
  if (c === undefined) return;
  if (task === "expr") selection = new Set([c]);
  else if (selection.has(c)) selection.delete(c); else selection.add(c);
  if (selected !== null) {
    const r = state.ranges[selected];
    if (task === "expr") r.expr = c; else if (selection.size) r.aus = [...selection].sort((a, b) => a - b);
    dirty = true;
  }
  renderClasses();
  drawTimeline();
}

function markStart() {
  if (selected !== null) { state.ranges[selected].start = Math.min(current, state.ranges[selected].end); dirty = true; }
  else pendingStart = current;
}

function markEnd() {
  if (selected !== null) { state.ranges[selected].end = Math.max(current, state.ranges[selected].start); dirty = true; return; }
  if (pendingStart === null || !selection.size) return;
  const [start, end] = [Math.min(pendingStart, current), Math.max(pendingStart, current)];
  const chosen = [...selection].sort((a, b) => a - b);
  state.ranges.push(task === "expr" ? { start, end, expr: chosen[0] } : { start, end, aus: chosen });
  pendingStart = null;
  dirty = true;
}

function onKey(ev) {
  if (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT") return;
  const k = ev.key;
  if (k === " ") { ev.preventDefault(); togglePlay(); }
  else if (k === "r") { video.currentTime = Math.max(0, video.currentTime - 3); }
  else if (task === "va" && k.startsWith("Arrow")) {
    ev.preventDefault();
    const step = 0.05;
    if (k === "ArrowLeft") point.v = clamp(point.v - step);
    if (k === "ArrowRight") point.v = clamp(point.v + step);
    if (k === "ArrowUp") point.a = clamp(point.a + step);
    if (k === "ArrowDown") point.a = clamp(point.a - step);
    drawPad();
  } else if (task !== "va") {
    if (k === "ArrowRight") { ev.preventDefault(); seekFrame(current + 1); }
    else if (k === "ArrowLeft") { ev.preventDefault(); seekFrame(current - 1); }
    else if (k === "s") markStart();
    else if (k === "e") markEnd();
    else if (/^[1-9]$/.test(k)) pickClass(Number(k) - 1);
    else if ((k === "Delete" || k === "Backspace") && selected !== null) { state.ranges.splice(selected, 1); selected = null; dirty = true; }
    else if (k === "Escape") { selected = null; pendingStart = null; }
    renderClasses();
    drawTimeline();
  }
}

function togglePlay() {
  if (video.paused) video.play(); else video.pause();
}

function padMove(ev) {
  const r = pad.getBoundingClientRect();
  point.v = clamp(((ev.clientX - r.left) / r.width) * 2 - 1);
  point.a = clamp(1 - ((ev.clientY - r.top) / r.height) * 2);
  drawPad();
}

timeline.addEventListener("click", (ev) => {
  const r = timeline.getBoundingClientRect();
  const idx = Math.floor((ev.clientX - r.left) / r.width * n);
  if (task !== "va") {
    const hit = state.ranges.findIndex((g) => idx >= g.start && idx <= g.end);
    selected = hit >= 0 ? hit : null;
    if (hit >= 0) selection = new Set(task === "expr" ? [state.ranges[hit].expr] : state.ranges[hit].aus);
    renderClasses();
  }
  seekFrame(idx);
});

async function submit() {
  await save();
  try {
    const r = await api("POST", `/api/assignments/${assignmentId}/submit`, { data: payload(), partial: $("partial").checked });
    $("saved").textContent = `submitted (${r.status}): ${r.frames} frames, ${r.interpolated} interpolated`;
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = e.message;
  }
}

async function main() {
  const user = await me();
  if (!user) { location.href = "index.html"; return; }
  item = await api("GET", `/api/assignments/${assignmentId}`);
  media = item.media; n = media.frame_count; pts = media.pts_s; task = item.campaign.task; readonly = item.readonly;
  $("title").textContent = `${item.campaign.name}: ${item.video} / ${item.track} (${task})`;
  state.valence = new Array(n).fill(null);
  state.arousal = new Array(n).fill(null);
  if (item.draft) {
    seq = item.draft.seq;
    const d = item.draft.data;
    if (task === "va" && Array.isArray(d.valence) && d.valence.length === n) { state.valence = d.valence; state.arousal = d.arousal; }
    if (task !== "va" && Array.isArray(d.ranges)) state.ranges = d.ranges;
    if (typeof d.position === "number") video.currentTime = d.position;
    $("saved").textContent = `draft #${seq} restored`;
  }
  if (task === "va") {
    $("va-panel").hidden = false;
    $("dimension-box").hidden = item.campaign.mode !== "1d";
    pad.addEventListener("pointermove", padMove);
    pad.addEventListener("pointerdown", padMove);
    drawPad();
  } else {
    $("range-panel").hidden = false;
    selection = new Set([item.campaign.classes[0]]);
    renderClasses();
  }
  video.src = item.video_url;
  video.addEventListener("play", () => { current = frameAt(video.currentTime); record(current); });
  // paused: the frame is where the playhead was put (currentTime is the newest seek's target)
  const settle = () => { if (video.paused) current = frameAt(video.currentTime); drawOverlay(current); drawTimeline(); };
  video.addEventListener("loadeddata", settle);
  video.addEventListener("seeked", settle);
  $("play").addEventListener("click", togglePlay);
  $("rewind").addEventListener("click", () => { video.currentTime = Math.max(0, video.currentTime - 3); });
  $("speed").addEventListener("change", () => { video.playbackRate = Number($("speed").value); });
  $("submit").addEventListener("click", submit);
  $("submit").disabled = readonly;
  document.addEventListener("keydown", onKey);
  video.requestVideoFrameCallback(onFrame);
  setInterval(() => save(), AUTOSAVE_MS);
  window.addEventListener("pagehide", () => save(true));
  drawTimeline();
  window.studio = { state, stats, point, get current() { return current; }, get seq() { return seq; }, save: () => { dirty = true; return save(); } };
  document.body.dataset.ready = "1";
}

main().catch((e) => { $("error").textContent = e.message; });
