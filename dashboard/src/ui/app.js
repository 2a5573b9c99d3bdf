// The dashboard: plain JavaScript against this server's Stats API (POST /query, GET /export.csv,
// the currentVisitors subscription over WebSocket). Nothing is loaded from anywhere else.
"use strict";
const $ = (id) => document.getElementById(id);
const KEY = "pageviews_token";
// The metrics and the panels (one per breakdown dimension) come from the API's registry.
const state = { sites: [], site: null, filters: [], socket: null, metrics: [], panels: [] };
const MODEL = "{ sites { name timeZone } metrics { metric label unit better } dimensions { dimension label isTime } }";

class Unauthorized extends Error {}

async function gql(query, variables) {
  const response = await fetch("/query", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + localStorage.getItem(KEY) },
    body: JSON.stringify({ query, variables }),
  });
  if (response.status === 401) throw new Unauthorized();
  if (!response.ok) throw new Error("the Stats API answered HTTP " + response.status);
  const body = await response.json();
  if (body.errors) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

function showLogin(message) {
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-message").textContent = message;
  $("token").focus();
}

function showError(error) {
  if (error instanceof Unauthorized) {
    localStorage.removeItem(KEY);
    showLogin("That token was refused (HTTP 401). Paste the token make up printed; it is kept in .data/dashboard-token.");
    return;
  }
  $("error").hidden = false;
  $("error").textContent = "Could not load the statistics: " + error.message;
}

const site = () => state.sites.find((s) => s.name === state.site);
const today = () => new Intl.DateTimeFormat("en-CA", { timeZone: site()?.timeZone || "UTC" }).format(new Date());
const shift = (day, days) => {
  const d = new Date(day + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
};

function range() {
  const end = today();
  switch ($("range").value) {
    case "today": return { from: end, to: end };
    case "7d": return { from: shift(end, -6), to: end };
    case "month": return { from: end.slice(0, 8) + "01", to: end };
    case "custom": return { from: $("from").value || shift(end, -29), to: $("to").value || end };
    default: return { from: shift(end, -29), to: end };
  }
}

const query = (extra) => ({ site: state.site, dateRange: range(), filters: state.filters, ...extra });
const STATS = "query($q: StatsQuery!) { stats(query: $q) { results { dimensions metrics comparison { metrics change } } } }";

function format(unit, value) {
  if (unit === "PERCENT") return value + " %";
  if (unit === "SECONDS") {
    const m = Math.floor(value / 60), s = Math.round(value % 60);
    return m ? `${m} min ${s} s` : `${s} s`;
  }
  return value >= 10000 ? (value / 1000).toFixed(1) + "k" : String(value);
}

function renderTotals(row) {
  const box = $("totals");
  box.replaceChildren();
  state.metrics.forEach(({ metric, label, unit, better }, i) => {
    const div = document.createElement("div");
    div.className = "total";
    div.dataset.metric = metric;
    const value = row ? row.metrics[i] : 0;
    const change = row?.comparison?.change[i];
    const b = document.createElement("b");
    b.textContent = format(unit, value);
    const small = document.createElement("small");
    small.textContent = label;
    div.append(small, b);
    if (change !== null && change !== undefined) {
      const good = better === "LOWER" ? change <= 0 : change >= 0;
      const c = document.createElement("small");
      c.className = good ? "up" : "down";
      c.textContent = (change >= 0 ? "▲ " : "▼ ") + Math.abs(change) + (unit === "PERCENT" ? " pts" : " %") + " vs previous period";
      div.append(c);
    }
    box.append(div);
  });
}

function renderChart(rows) {
  const w = 800, h = 180, pad = 24;
  const values = rows.map((r) => r.metrics[0]);
  const previous = rows.map((r) => r.comparison?.metrics[0] ?? 0);
  const max = Math.max(1, ...values, ...previous);
  const x = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, rows.length - 1);
  const y = (v) => h - pad - (v * (h - 2 * pad)) / max;
  const line = (vs) => vs.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Visitors: ${values.join(", ")}`);
  const path = (d, cls) => {
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", d);
    p.setAttribute("class", cls);
    svg.append(p);
  };
  if (rows.length) {
    path(line(values) + `L${x(rows.length - 1)},${h - pad}L${x(0)},${h - pad}Z`, "area");
    path(line(previous), "prev");
    path(line(values), "line");
    const label = (text, lx, ly, anchor) => {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", lx); t.setAttribute("y", ly); t.setAttribute("text-anchor", anchor);
      t.textContent = text;
      svg.append(t);
    };
    label(rows[0].dimensions[0], pad, h - 6, "start");
    label(rows[rows.length - 1].dimensions[0], w - pad, h - 6, "end");
    label(String(max), pad, 12, "start");
  }
  $("chart").replaceChildren(svg);
}

function addFilter(dimension, value) {
  state.filters = state.filters.filter((f) => f.dimension !== dimension);
  state.filters.push({ dimension, op: "IS", values: [value ?? ""] });
  load();
}

function renderFilters() {
  const box = $("filters");
  box.replaceChildren();
  for (const f of state.filters) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `${f.dimension.toLowerCase().replace("_", " ")} is ${f.values[0] || "(none)"} ✕`;
    b.title = "Remove this filter";
    b.addEventListener("click", () => {
      state.filters = state.filters.filter((g) => g !== f);
      load();
    });
    box.append(b);
  }
}

async function download(dimension) {
  const r = range();
  const params = new URLSearchParams({ site: state.site, from: r.from, to: r.to, dimensions: dimension, metrics: state.metrics.map((m) => m.metric).join(",") });
  for (const f of state.filters) params.append("filter", `${f.dimension}:${f.op}:${f.values.join("|")}`);
  const response = await fetch("/export.csv?" + params, { headers: { authorization: "Bearer " + localStorage.getItem(KEY) } });
  if (!response.ok) return showError(response.status === 401 ? new Unauthorized() : new Error(await response.text()));
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await response.blob());
  a.download = `${state.site}-${dimension.toLowerCase()}-${r.from}-${r.to}.csv`;
  a.click();
  URL.revokeObjectURL(a.href);
}

function renderPanel(dimension, title, rows) {
  const panel = document.createElement("section");
  panel.className = "panel";
  panel.dataset.dimension = dimension;
  const head = document.createElement("header");
  const h2 = document.createElement("h2");
  h2.textContent = title;
  const csv = document.createElement("button");
  csv.type = "button";
  csv.textContent = "CSV";
  csv.setAttribute("aria-label", `Download ${title} as CSV`);
  csv.addEventListener("click", () => download(dimension));
  head.append(h2, csv);
  const list = document.createElement("ol");
  const top = Math.max(1, ...rows.map((r) => r.metrics[0]));
  for (const row of rows) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.style.setProperty("--w", (100 * row.metrics[0]) / top + "%");
    const name = document.createElement("span");
    name.textContent = row.dimensions[0] ?? "(none)";
    const value = document.createElement("span");
    value.textContent = format("COUNT", row.metrics[0]);
    b.append(name, value);
    b.title = `Filter by ${name.textContent}`;
    b.addEventListener("click", () => addFilter(dimension, row.dimensions[0]));
    li.append(b);
    list.append(li);
  }
  if (!rows.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "Nothing yet";
    list.append(li);
  }
  panel.append(head, list);
  return panel;
}

async function load() {
  $("error").hidden = true;
  renderFilters();
  const r = range();
  const time = r.from === r.to ? "TIME_HOUR" : "TIME_DAY";
  try {
    const [top, series, ...panels] = await Promise.all([
      gql(STATS, { q: query({ metrics: state.metrics.map((m) => m.metric), compare: "PREVIOUS_PERIOD" }) }),
      // No limit: a time series carries every bucket of the range.
      gql(STATS, { q: query({ metrics: ["VISITORS"], dimensions: [time], compare: "PREVIOUS_PERIOD" }) }),
      ...state.panels.map(({ dimension }) => gql(STATS, { q: query({ metrics: ["VISITORS"], dimensions: [dimension], limit: 10 }) })),
    ]);
    renderTotals(top.stats.results[0]);
    renderChart(series.stats.results);
    $("panels").replaceChildren(...state.panels.map(({ dimension, label }, i) => renderPanel(dimension, label, panels[i].stats.results)));
    $("app").hidden = false;
    document.body.dataset.loaded = "yes";
  } catch (e) {
    showError(e);
  }
}

function live() {
  state.socket?.close();
  const url = location.origin.replace(/^http/, "ws") + "/query";
  const socket = new WebSocket(url, "graphql-transport-ws");
  state.socket = socket;
  socket.onopen = () => {
    socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: "Bearer " + localStorage.getItem(KEY) } }));
    socket.send(JSON.stringify({ id: "live", type: "subscribe", payload: { query: "subscription($s: String!) { currentVisitors(site: $s) }", variables: { s: state.site } } }));
  };
  socket.onmessage = (m) => {
    const body = JSON.parse(m.data);
    if (body.type === "next" && body.payload.data) $("live").textContent = `● ${body.payload.data.currentVisitors} now`;
  };
}

async function start() {
  if (!localStorage.getItem(KEY)) return showLogin($("login-message").textContent);
  $("login").hidden = true;
  try {
    const model = await gql(MODEL);
    state.sites = model.sites;
    state.metrics = model.metrics;
    state.panels = model.dimensions.filter((d) => !d.isTime);
  } catch (e) {
    return showError(e);
  }
  const select = $("site");
  select.replaceChildren(...state.sites.map((s) => new Option(s.name, s.name)));
  if (!state.sites.length) {
    $("error").hidden = false;
    $("error").textContent = "No page views yet: add the tracker to a site, or run make demo.";
    return;
  }
  state.site = new URLSearchParams(location.search).get("site") || state.sites[0].name;
  select.value = state.site;
  live();
  load();
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem(KEY, $("token").value.trim());
  start();
});
$("logout").addEventListener("click", () => { localStorage.removeItem(KEY); location.reload(); });
$("site").addEventListener("change", (e) => { state.site = e.target.value; state.filters = []; live(); load(); });
$("range").addEventListener("change", () => { $("custom").hidden = $("range").value !== "custom"; load(); });
$("from").addEventListener("change", load);
$("to").addEventListener("change", load);
start();
