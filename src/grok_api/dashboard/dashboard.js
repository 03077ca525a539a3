// Grok-Api dashboard: plain JavaScript, no framework, no network but this gateway's admin API.
// The admin key lives in this tab's sessionStorage and goes out as a Bearer token.
"use strict";

const KEY = "grok-api-admin-key";
const $ = (sel) => document.querySelector(sel);
const LIMITS = ["rpm", "tpm", "concurrency", "budget_day", "budget_month", "budget_total"];
const LIMIT_NAMES = { rpm: "req/min", tpm: "tok/min", concurrency: "at once", budget_day: "tok/day",
  budget_month: "tok/month", budget_total: "tok total" };
let keysById = {};
let timer = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function flash(text) { $("#flash").textContent = text; }

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + sessionStorage.getItem(KEY) }, options.headers || {});
  if (options.body) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  if (!resp.ok) {
    let message = resp.status + " " + resp.statusText;
    try { message = (await resp.json()).error.message; } catch (e) { /* not JSON */ }
    if (resp.status === 401) signOut("The admin key was refused: " + message);
    throw new ApiError(resp.status, message);
  }
  return resp;
}
const getJSON = async (path) => (await api(path)).json();

// ---- formatting -------------------------------------------------------------------------
const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en"));
function secs(s) {
  if (s === null || s === undefined) return "–";
  return s < 1 ? (s * 1000).toFixed(s < 0.01 ? 2 : 0) + " ms" : s.toFixed(2) + " s";
}
const ms = (v) => (v === null || v === undefined ? "–" : v < 10 ? v.toFixed(2) + " ms" : Math.round(v) + " ms");
function when(ts) {
  if (!ts) return "never";
  return new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}
function limitsText(limits) {
  const parts = LIMITS.filter((k) => limits[k] !== null && limits[k] !== undefined)
    .map((k) => num(limits[k]) + " " + LIMIT_NAMES[k]);
  return parts.length ? parts.join(", ") : "unlimited";
}

// ---- charts: bars drawn as SVG, with a text summary for screen readers --------------------
function barChart(box, labels, values, title) {
  // drawn at the box's own width, so that its text keeps its size on a phone
  const w = Math.min(1000, Math.max(280, box.clientWidth || 600)), h = 180, pad = 28;
  const max = Math.max(1, ...values);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  const total = values.reduce((a, b) => a + b, 0);
  svg.setAttribute("aria-label", `${title}: ${num(total)} in all, at most ${num(Math.max(0, ...values))} in one bucket`);
  const step = (w - pad) / Math.max(1, values.length);
  values.forEach((v, i) => {
    const bh = ((h - pad) * v) / max;
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("class", "bar");
    r.setAttribute("x", String(pad + i * step + 1));
    r.setAttribute("y", String(h - pad - bh));
    r.setAttribute("width", String(Math.max(1, step - 2)));
    r.setAttribute("height", String(bh));
    const tip = document.createElementNS(ns, "title");
    tip.textContent = `${labels[i]}: ${num(v)}`;
    r.append(tip);
    svg.append(r);
  });
  const axis = document.createElementNS(ns, "line");
  axis.setAttribute("class", "axis");
  axis.setAttribute("x1", String(pad)); axis.setAttribute("x2", String(w));
  axis.setAttribute("y1", String(h - pad)); axis.setAttribute("y2", String(h - pad));
  svg.append(axis);
  const text = (x, y, s, anchor) => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", String(x)); t.setAttribute("y", String(y));
    if (anchor) t.setAttribute("text-anchor", anchor);
    t.textContent = s; svg.append(t);
  };
  text(2, 12, num(max));
  if (labels.length) { text(pad, h - 8, labels[0]); text(w, h - 8, labels[labels.length - 1], "end"); }
  box.replaceChildren(svg);
  box.dataset.total = String(total);
}

// ---- pages -------------------------------------------------------------------------------
async function showOverview() {
  const o = await getJSON("/admin/overview");
  const hour = o.last_hour;
  const tiles = [
    ["Requests / s", hour.requests_per_second.toFixed(2), "requests"],
    ["Requests (1 h)", num(hour.requests), "requests-hour"],
    ["Error rate", (hour.error_rate * 100).toFixed(1) + " %", "error-rate"],
    ["Tokens / s", hour.tokens_per_second.toFixed(1), "tokens"],
    ["Latency p50", secs(hour.latency_p50), "p50"],
    ["Latency p99", secs(hour.latency_p99), "p99"],
    ["First token p50", secs(hour.ttft_p50), "ttft50"],
    ["First token p99", secs(hour.ttft_p99), "ttft99"],
    ["In flight", num(o.in_flight), "in-flight"],
    ["Streams", num(o.streams_in_flight), "streams"],
  ];
  $("#tiles").replaceChildren(...tiles.map(([label, value, id]) =>
    el("div", { class: "tile", id: "tile-" + id }, el("div", { class: "label" }, label), el("div", { class: "value" }, value))));
  const pts = hour.points;
  barChart($("#overview-chart"), pts.map((p) => when(p.t).slice(11, 16)), pts.map((p) => p.requests), "Requests per minute");
  $("#targets tbody").replaceChildren(...o.upstreams.map((t) => el("tr", {},
    el("td", {}, t.upstream), el("td", {}, el("code", {}, t.target)),
    el("td", {}, el("span", { class: "badge " + (t.state === "closed" ? "ok" : t.state === "open" ? "bad" : "warn") }, t.state)),
    el("td", {}, num(t.consecutive_failures)))));
  webCard(o.web_session);
}

function webCard(s) {
  const card = $("#web-card");
  const words = { ok: "Working", refused: "Refused: refresh the session", limited: "Usage limit reached", unknown: "Not used yet" };
  card.className = "card state-" + (s.configured ? s.state : "off");
  $("#web-state").textContent = s.configured ? words[s.state] : "Not configured (GROK_API_WEB_COOKIES is unset)";
  const rows = [["Last success", when(s.last_success_at)]];
  const r = s.last_refusal;
  if (r) {
    rows.push(["Last refusal", when(r.at) + " (" + r.code + ")"], ["What grok.com said", r.message]);
    if (r.reset_at) rows.push(["Resets at", when(r.reset_at)]);
  }
  if (s.advice) rows.push(["What to do", s.advice]);
  $("#web-details").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

async function loadKeys() {
  const keys = (await getJSON("/admin/keys")).data;
  keysById = Object.fromEntries(keys.map((k) => [k.id, k]));
  for (const sel of ["#u-key", "#r-key"]) {
    const box = $(sel), chosen = box.value;
    box.replaceChildren(el("option", { value: "" }, "all keys"), ...keys.map((k) => el("option", { value: k.id }, `${k.name} (${k.id})`)));
    box.value = chosen;
  }
  return keys;
}

async function showKeys() {
  const keys = await loadKeys();
  $("#keys-table tbody").replaceChildren(...keys.map((k) => {
    const badge = k.status === "active" ? "ok" : "bad";
    const actions = el("td", {});
    if (k.status !== "revoked") {
      const edit = el("button", { type: "button", class: "secondary", "aria-label": "Edit limits of " + k.name }, "Edit limits");
      edit.addEventListener("click", () => editKey(k));
      const revoke = el("button", { type: "button", class: "danger", "aria-label": "Revoke " + k.name }, "Revoke");
      revoke.addEventListener("click", () => revokeKey(k));
      actions.append(edit, revoke);
    }
    return el("tr", { "data-key-id": k.id },
      el("td", {}, k.name, el("br"), el("code", {}, k.id + " · " + k.prefix + "…")),
      el("td", {}, el("span", { class: "badge " + badge }, k.status)),
      el("td", { class: "limits" }, limitsText(k.limits)),
      el("td", {}, k.models ? k.models.join(", ") : "all"),
      el("td", {}, when(k.last_used_at)),
      el("td", {}, num(k.usage_month.requests) + " req, " + num(k.usage_month.tokens) + " tok"),
      actions);
  }));
}

function limitsFrom(form, prefix) {
  const out = {};
  for (const name of LIMITS) {
    const v = form.querySelector("#" + prefix + "-" + name).value.trim();
    out[name] = v === "" ? null : Number(v);
  }
  return out;
}

async function createKey(event) {
  event.preventDefault();
  const f = event.target;
  const models = $("#c-models").value.split(",").map((m) => m.trim()).filter(Boolean);
  const body = { name: $("#c-name").value.trim(), limits: limitsFrom(f, "c"),
    expires_in: $("#c-expires").value.trim() || null, models: models.length ? models : null };
  try {
    const made = await (await api("/admin/keys", { method: "POST", body: JSON.stringify(body) })).json();
    f.reset();
    $("#create-box").open = false;
    $("#new-key-value").value = made.key;
    $("#new-key").hidden = false;
    $("#new-key-value").focus();
    $("#new-key-value").select();
    flash(`Key "${made.name}" created.`);
    await showKeys();
  } catch (e) { flash("Could not create the key: " + e.message); }
}

function forgetNewKey() {
  $("#new-key-value").value = "";
  $("#new-key").hidden = true;
}

async function copyKey() {
  const box = $("#new-key-value");
  try { await navigator.clipboard.writeText(box.value); flash("Copied."); }
  catch (e) { box.select(); document.execCommand("copy"); flash("Copied."); }
}

function editKey(k) {
  const dialog = $("#edit-dialog");
  $("#edit-title").textContent = "Edit limits of " + k.name;
  for (const name of LIMITS) $("#e-" + name).value = k.limits[name] ?? "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "save") return;
    try {
      await api("/admin/keys/" + encodeURIComponent(k.id), { method: "PATCH", body: JSON.stringify({ limits: limitsFrom(dialog, "e") }) });
      flash(`Limits of "${k.name}" saved.`);
      await showKeys();
    } catch (e) { flash("Could not save: " + e.message); }
  };
  dialog.returnValue = "";
  dialog.showModal();
}

function revokeKey(k) {
  const dialog = $("#revoke-dialog");
  $("#revoke-text").textContent = `Revoke "${k.name}" (${k.id})? Every request with it will be refused, on every instance. This cannot be undone.`;
  dialog.onclose = async () => {
    if (dialog.returnValue !== "revoke") return;
    try {
      await api("/admin/keys/" + encodeURIComponent(k.id) + "/revoke", { method: "POST" });
      flash(`Key "${k.name}" revoked.`);
      await showKeys();
    } catch (e) { flash("Could not revoke: " + e.message); }
  };
  dialog.returnValue = "";
  dialog.showModal();
}

function query(form, names) {
  const q = new URLSearchParams();
  for (const n of names) { const v = form.elements[n].value.trim(); if (v) q.set(n, v); }
  return q;
}

async function showUsage() {
  if (!Object.keys(keysById).length) await loadKeys();
  const q = query($("#usage-form"), ["since", "bucket", "by", "key_id", "model"]);
  const s = await getJSON("/admin/usage/series?" + q);
  const labels = s.buckets.map((b) => when(b).slice(s.bucket === "day" ? 0 : 5, s.bucket === "day" ? 10 : 16));
  barChart($("#chart-requests"), labels, s.totals.requests, "Requests");
  barChart($("#chart-tokens"), labels, s.totals.tokens, "Tokens");
  barChart($("#chart-errors"), labels, s.totals.errors, "Errors");
  $("#usage-dim").textContent = s.by === "key" ? "Key" : "Model";
  const sum = (a) => a.reduce((x, y) => x + y, 0);
  $("#usage-table tbody").replaceChildren(...s.series.map((g) => el("tr", {},
    el("td", {}, s.by === "key" && keysById[g.name] ? `${keysById[g.name].name} (${g.name})` : g.name),
    el("td", {}, num(sum(g.requests))), el("td", {}, num(sum(g.tokens))), el("td", {}, num(sum(g.errors))))));
}

async function exportCsv() {
  const q = query($("#usage-form"), ["since", "bucket", "key_id", "model"]);
  try {
    const blob = await (await api("/admin/usage.csv?" + q)).blob();
    const a = el("a", { href: URL.createObjectURL(blob), download: `grok-api-usage-${q.get("bucket") || "hour"}.csv` });
    document.body.append(a); a.click(); a.remove();
  } catch (e) { flash("Could not export: " + e.message); }
}

async function showRequests() {
  if (!Object.keys(keysById).length) await loadKeys();
  const q = query($("#requests-form"), ["key_id", "model", "status"]);
  q.set("limit", "200");
  const page = await getJSON("/admin/requests?" + q), rows = page.data;
  $("#requests-source").textContent = page.source === "store" ? "every instance (stored)" : "this instance (in memory)";
  $("#requests-table tbody").replaceChildren(...rows.map((r) => el("tr", { "data-request-id": r.request_id },
    el("td", {}, r.time.slice(11, 23)), el("td", {}, el("code", {}, r.request_id)),
    el("td", {}, r.key_name || "–"), el("td", {}, r.model || "–"),
    el("td", {}, el("span", { class: "badge " + (r.status < 400 ? "ok" : r.status === 429 ? "warn" : "bad") }, String(r.status))),
    el("td", {}, r.outcome), el("td", {}, ms(r.latency_ms)), el("td", {}, ms(r.ttfb_ms)),
    el("td", {}, num(r.prompt_tokens + r.completion_tokens) + (r.estimated ? " (est.)" : "")))));
}

// ---- navigation ----------------------------------------------------------------------------
const PAGES = { overview: showOverview, keys: showKeys, usage: showUsage, requests: showRequests };

async function route() {
  clearInterval(timer);
  const signedIn = !!sessionStorage.getItem(KEY);
  let page = location.hash.slice(1);
  if (!signedIn) page = "signin";
  else if (!PAGES[page]) page = "overview";
  if (page !== "keys") forgetNewKey();
  for (const s of document.querySelectorAll(".page")) s.hidden = s.id !== "page-" + page;
  $("#nav").hidden = !signedIn;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (page === "signin") { $("#admin-key").focus(); return; }
  try {
    await PAGES[page]();
    document.body.dataset.loaded = page;
  } catch (e) { if (!(e instanceof ApiError && e.status === 401)) flash("Could not load: " + e.message); }
  if (page === "overview") timer = setInterval(() => showOverview().catch(() => {}), 10000);
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  keysById = {};
  forgetNewKey();
  $("#signin-error").textContent = message || "";
  delete document.body.dataset.loaded;
  if (location.hash !== "#signin") location.hash = "#signin"; else route();
}

async function signIn(event) {
  event.preventDefault();
  const given = $("#admin-key").value;
  $("#signin-error").textContent = "";
  const resp = await fetch("/admin/overview", { headers: { Authorization: "Bearer " + given } });
  if (!resp.ok) {
    let message = resp.status + "";
    try { message = (await resp.json()).error.message; } catch (e) { /* not JSON */ }
    $("#signin-error").textContent = "Refused: " + message;
    return;
  }
  sessionStorage.setItem(KEY, given);
  $("#admin-key").value = "";
  flash("");
  if (location.hash === "#overview") route(); else location.hash = "#overview";
}

document.addEventListener("DOMContentLoaded", () => {
  $("#signin-form").addEventListener("submit", signIn);
  $("#signout").addEventListener("click", () => signOut("Signed out."));
  $("#create-form").addEventListener("submit", createKey);
  $("#copy-key").addEventListener("click", copyKey);
  $("#done-key").addEventListener("click", () => { forgetNewKey(); flash(""); });
  $("#usage-form").addEventListener("submit", (e) => { e.preventDefault(); showUsage().catch((x) => flash(x.message)); });
  $("#csv").addEventListener("click", exportCsv);
  $("#requests-form").addEventListener("submit", (e) => { e.preventDefault(); showRequests().catch((x) => flash(x.message)); });
  window.addEventListener("hashchange", () => { flash(""); route(); });
  route();
});
