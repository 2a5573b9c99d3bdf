// The dashboard: plain JavaScript against this server's Stats API (POST /query, GET /export.csv,
// the currentVisitors subscription over WebSocket). Nothing is loaded from anywhere else.
"use strict";
const $ = (id) => document.getElementById(id);
const KEY = "pageviews_token";
// Under /share/<id> the page is a shared link's: its routes are the link's, the link's cookie
// (HttpOnly: never seen here) is its proof, and it only reads.
const SHARE = location.pathname.match(/^\/share\/([0-9a-f]+)\/?$/)?.[1];
const BASE = SHARE ? `/share/${SHARE}` : "";
const auth = () => (SHARE ? {} : { authorization: "Bearer " + localStorage.getItem(KEY) });
// The metrics and the panels (one per breakdown dimension) come from the API's registry.
const state = { sites: [], site: null, filters: [], socket: null, metrics: [], panels: [], goals: [], property: "", funnel: [], viewer: {} };
const MODEL = "{ viewer { scope from to } sites { name timeZone counting rawEventsFrom } metrics { metric label unit better ofGoals } dimensions { dimension label isTime ofEvents } }";
const GOALS = "query($s: String!) { goals(site: $s) { name event page properties { key value } } }";
const FUNNEL = "query($q: FunnelQuery!) { funnel(query: $q) { steps { goal visitors conversionRate dropOff dropOffRate } } }";

class Unauthorized extends Error {}

async function gql(query, variables) {
  const response = await fetch(BASE + "/query", {
    method: "POST",
    headers: { "content-type": "application/json", ...auth() },
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

function showUnlock(message) {
  $("app").hidden = true;
  $("unlock").hidden = false;
  $("unlock-message").textContent = message;
  $("password").focus();
}

function showError(error) {
  if (error instanceof Unauthorized && SHARE) return showUnlock("This dashboard is protected: enter the password of this shared link.");
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

/** The Stats API's own periods (the picker's values), or custom dates. */
function range() {
  const end = today();
  const picked = $("range").value;
  if (picked !== "custom") return { period: picked };
  return { from: $("from").value || shift(end, -29), to: $("to").value || end };
}
const isOneDay = (r) => r.period === "TODAY" || r.period === "YESTERDAY" || (r.from && r.from === r.to);

const query = (extra) => ({ site: state.site, dateRange: range(), filters: state.filters, ...extra });
const STATS = "query($q: StatsQuery!) { stats(query: $q) { results { dimensions metrics comparison { metrics change } } } }";
const TOP = "query($q: StatsQuery!) { stats(query: $q) { results { dimensions metrics comparison { metrics change } } meta { from } } }";

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
  state.metrics.filter((m) => !m.ofGoals && !PAGE_ONLY.includes(m.metric)).forEach(({ metric, label, unit, better }, i) => {
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

function addFilter(dimension, value, property) {
  state.filters = state.filters.filter((f) => f.dimension !== dimension || f.property !== property);
  state.filters.push(property ? { dimension, property, op: "IS", values: [value ?? ""] } : { dimension, op: "IS", values: [value ?? ""] });
  load();
}

function renderFilters() {
  const box = $("filters");
  box.replaceChildren();
  for (const f of state.filters) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `${f.property || f.dimension.toLowerCase().replace("_", " ")} is ${shown(f.dimension, f.values[0])} ✕`;
    b.title = "Remove this filter";
    b.addEventListener("click", () => {
      state.filters = state.filters.filter((g) => g !== f);
      load();
    });
    box.append(b);
  }
}

/** Countries by name, from the browser's own data (nothing is loaded for them). No flag emoji:
 *  Windows and many Linux desktops draw them as two letters or empty boxes. */
const countryNames = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "region" }) : null;
const SHOWN = { COUNTRY: (code) => countryNames?.of(code) ?? code };
/** How a dimension's value reads on the page. */
const shown = (dimension, value) => (value == null || value === "" ? "(none)" : (SHOWN[dimension] || String)(value));
/** Panels left out while they have nothing to show: a country database has no regions or cities. */
const ONLY_WITH_VALUES = ["REGION", "CITY"];

/** Metrics of pages only, not of the top line. */
const PAGE_ONLY = ["SCROLL_DEPTH", "TIME_ON_PAGE"];

/** The metrics a panel's CSV carries: those of goals and custom events for their panels. */
const CSV_METRICS = { GOAL: ["CONVERSIONS", "CONVERSION_RATE", "EVENTS"], EVENT_NAME: ["VISITORS", "EVENTS"], PROPERTY: ["VISITORS", "EVENTS"] };

async function download(dimension) {
  const r = range();
  const metrics = CSV_METRICS[dimension] || state.metrics.filter((m) => !m.ofGoals && !PAGE_ONLY.includes(m.metric)).map((m) => m.metric);
  const params = new URLSearchParams({ site: state.site, ...r, dimensions: dimension, metrics: metrics.join(",") });
  for (const f of state.filters) params.append("filter", `${f.dimension}:${f.op}:${f.values.join("|")}`);
  const property = dimension === "PROPERTY" ? state.property : state.filters.find((f) => f.property)?.property;
  if (property) params.set("property", property);
  const response = await fetch(BASE + "/export.csv?" + params, { headers: auth() });
  if (!response.ok) return showError(response.status === 401 ? new Unauthorized() : new Error(await response.text()));
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await response.blob());
  a.download = `${state.site}-${dimension.toLowerCase()}-${r.period ? r.period.toLowerCase() : `${r.from}-${r.to}`}.csv`;
  a.click();
  URL.revokeObjectURL(a.href);
}

/** A panel of rows; `show(row)` is the value column, `pick(row)` what a click does. */
function renderPanel(dimension, title, rows, show = (row) => format("COUNT", row.metrics[0]), pick = (row) => addFilter(dimension, row.dimensions[0])) {
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
    name.textContent = shown(dimension, row.dimensions[0]);
    const value = document.createElement("span");
    value.textContent = show(row);
    b.append(name, value);
    b.title = `Filter by ${name.textContent}`;
    b.addEventListener("click", () => pick(row));
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

function element(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}
const percent = (v) => `${v.toFixed(1)}%`;

/** Panels showing more than visitors: the pages' scroll depth and time on page. */
const PANEL_METRICS = { PAGE: ["VISITORS", "SCROLL_DEPTH", "TIME_ON_PAGE"] };
const PANEL_SHOW = {
  PAGE: (r) => r.metrics[2] ? `${format("COUNT", r.metrics[0])} · ↓${r.metrics[1]}% · ${format("SECONDS", r.metrics[2])}` : format("COUNT", r.metrics[0]),
};

/** Goals: conversions and rate per goal (a click filters the page), and their management. */
function renderGoals(rows) {
  const panel = renderPanel("GOAL", "Goals", rows, (r) => `${format("COUNT", r.metrics[0])} · ${percent(r.metrics[1])}`);
  const list = element("ul", { className: "manage" });
  for (const g of state.goals) {
    const what = g.event ? `event ${g.event}${g.properties.map((p) => ` ${p.key}=${p.value}`).join("")}` : `page ${g.page}`;
    const remove = element("button", { type: "button", textContent: "Delete", title: `Delete the goal ${g.name}` });
    remove.addEventListener("click", () => changeGoal("mutation($s: String!, $n: String!) { deleteGoal(site: $s, name: $n) }", { s: state.site, n: g.name }));
    list.append(element("li", {}, element("span", { textContent: `${g.name}: ${what}` }), remove));
  }
  const form = element("form", { className: "goal-form" },
    element("input", { name: "name", placeholder: "Goal name", required: true, ariaLabel: "Goal name" }),
    element("select", { name: "kind", ariaLabel: "Goal kind" }, new Option("Event", "event"), new Option("Page", "page")),
    element("input", { name: "target", placeholder: "Signup or /pricing*", required: true, ariaLabel: "Event name or page pattern" }),
    element("input", { name: "property", placeholder: "key=value (optional)", ariaLabel: "Property" }),
    element("button", { textContent: "Add goal" }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const goal = { name: f.get("name") };
    goal[f.get("kind")] = f.get("target");
    const [key, ...value] = String(f.get("property") || "").split("=");
    if (key.trim()) goal.properties = [{ key: key.trim(), value: value.join("=") }];
    changeGoal("mutation($s: String!, $g: GoalInput!) { createGoal(site: $s, goal: $g) { name } }", { s: state.site, g: goal });
  });
  if (state.viewer.scope === "ADMIN") panel.append(element("details", { className: "goals" }, element("summary", { textContent: "Manage goals" }), list, form));
  return panel;
}

async function changeGoal(mutation, variables) {
  try {
    await gql(mutation, variables);
    await load();
  } catch (e) {
    showError(e);
  }
}

/** Custom events by name; with a property key, that property's values. */
function renderEvents(names, values) {
  const panel = renderPanel("EVENT_NAME", "Custom events", names, (r) => `${format("COUNT", r.metrics[0])} · ${format("COUNT", r.metrics[1])} events`);
  const input = element("input", { value: state.property, placeholder: "Property key, e.g. plan", ariaLabel: "Property key" });
  const form = element("form", { className: "property-form" }, input, element("button", { textContent: "Break down" }));
  form.addEventListener("submit", (e) => { e.preventDefault(); state.property = input.value.trim(); load(); });
  panel.append(form);
  if (values) panel.append(renderPanel("PROPERTY", `Property: ${state.property}`, values, undefined, (r) => addFilter("PROPERTY", r.dimensions[0], state.property)));
  return panel;
}

/** A funnel of goals in order: visitors per step, conversion and drop-off. */
function renderFunnel(steps) {
  const panel = element("section", { className: "panel funnel" }, element("header", {}, element("h2", { textContent: "Funnel" })));
  panel.dataset.dimension = "FUNNEL";
  const input = element("input", { value: state.funnel.join(" > "), placeholder: "Pricing > Signup", ariaLabel: "Funnel steps" });
  const form = element("form", { className: "funnel-form" }, input, element("button", { textContent: "Show" }));
  form.addEventListener("submit", (e) => { e.preventDefault(); state.funnel = input.value.split(">").map((s) => s.trim()).filter(Boolean); load(); });
  panel.append(form);
  const list = element("ol");
  const top = Math.max(1, ...(steps || []).map((s) => s.visitors));
  for (const step of steps || []) {
    const bar = element("div", { className: "step" }, element("span", { textContent: step.goal }), element("span", { textContent: `${step.visitors} · ${percent(step.conversionRate)}${step.dropOff ? ` · −${step.dropOff}` : ""}` }));
    bar.style.setProperty("--w", (100 * step.visitors) / top + "%");
    list.append(element("li", {}, bar));
  }
  panel.append(list);
  return panel;
}

async function load() {
  $("error").hidden = true;
  renderFilters();
  const r = range();
  const time = isOneDay(r) ? "TIME_HOUR" : "TIME_DAY";
  const ofVisits = state.panels.filter((d) => !d.ofEvents);
  const goalFilter = state.filters.some((f) => f.dimension === "GOAL");
  try {
    const [top, series, goals, names, values, funnel, ...panels] = await Promise.all([
      gql(TOP, { q: query({ metrics: state.metrics.filter((m) => !m.ofGoals && !PAGE_ONLY.includes(m.metric)).map((m) => m.metric), compare: "PREVIOUS_PERIOD" }) }),
      // No limit: a time series carries every bucket of the range.
      gql(STATS, { q: query({ metrics: ["VISITORS"], dimensions: [time], compare: "PREVIOUS_PERIOD" }) }),
      gql(STATS, { q: query({ metrics: ["CONVERSIONS", "CONVERSION_RATE", "EVENTS"], dimensions: ["GOAL"], limit: 10 }) }).then((a) => gql(GOALS, { s: state.site }).then((g) => { state.goals = g.goals; return a; })),
      gql(STATS, { q: query({ metrics: ["VISITORS", "EVENTS"], dimensions: ["EVENT_NAME"], limit: 10 }) }),
      state.property ? gql(STATS, { q: query({ metrics: ["VISITORS", "EVENTS"], dimensions: ["PROPERTY"], property: state.property, limit: 10 }) }) : null,
      state.funnel.length >= 2 ? gql(FUNNEL, { q: { site: state.site, dateRange: r, steps: state.funnel, filters: state.filters } }) : null,
      ...ofVisits.map(({ dimension }) => gql(STATS, { q: query({ metrics: PANEL_METRICS[dimension] || ["VISITORS"], dimensions: [dimension], limit: 10 }) })),
    ]);
    renderTotals(top.stats.results[0]);
    // Raw events of dropped months live on in the visits and rollups only.
    const kept = site()?.rawEventsFrom;
    $("raw-note").hidden = !(kept && top.stats.meta.from < kept);
    $("raw-note").textContent = `Raw events before ${kept} were dropped (analytics.raw_retention_months): scroll depth, time on page and property breakdowns start there; every other number covers the whole range.`;
    renderChart(series.stats.results);
    const shownPanels = ofVisits
      .map(({ dimension, label }, i) => ({ dimension, label, rows: panels[i].stats.results }))
      .filter(({ dimension, rows }) => !ONLY_WITH_VALUES.includes(dimension) || rows.some((r) => r.dimensions[0]));
    $("panels").replaceChildren(
      ...shownPanels.map(({ dimension, label, rows }) => renderPanel(dimension, label, rows, PANEL_SHOW[dimension])),
      renderGoals(goals.stats.results),
      renderEvents(names.stats.results, values?.stats.results),
      renderFunnel(funnel?.funnel.steps));
    if (state.viewer.scope === "ADMIN") await renderManage();
    $("app").hidden = false;
    document.body.dataset.goalFilter = goalFilter ? "yes" : "no";
    document.body.dataset.loaded = "yes";
  } catch (e) {
    showError(e);
  }
}

function live() {
  state.socket?.close();
  if (!state.viewer.sees_today) return;
  const url = location.origin.replace(/^http/, "ws") + BASE + "/query";
  const socket = new WebSocket(url, "graphql-transport-ws");
  state.socket = socket;
  socket.onopen = () => {
    socket.send(JSON.stringify({ type: "connection_init", payload: SHARE ? {} : { authorization: "Bearer " + localStorage.getItem(KEY) } }));
    socket.send(JSON.stringify({ id: "live", type: "subscribe", payload: { query: "subscription($s: String!) { currentVisitors(site: $s) }", variables: { s: state.site } } }));
  };
  socket.onmessage = (m) => {
    const body = JSON.parse(m.data);
    if (body.type === "next" && body.payload.data) $("live").textContent = `● ${body.payload.data.currentVisitors} now`;
  };
}

/** A shared link limited to dates opens on them; the picker offers its own days only. */
function keepToSharedDays({ from, to }) {
  $("shared-days").hidden = false;
  $("shared-days").textContent = "Shared, read-only";
  if (!from && !to) return;
  const last = to || today();
  $("range").value = "custom";
  $("custom").hidden = false;
  $("from").value = from || shift(last, -29);
  $("to").value = last;
  for (const input of [$("from"), $("to")]) {
    if (from) input.min = from;
    if (to) input.max = to;
  }
  $("shared-days").textContent = `Shared, read-only: ${from || "…"} to ${to || "…"}`;
}

async function start() {
  if (!SHARE && !localStorage.getItem(KEY)) return showLogin($("login-message").textContent);
  $("login").hidden = true;
  $("unlock").hidden = true;
  $("logout").hidden = !!SHARE;
  try {
    const model = await gql(MODEL);
    state.viewer = model.viewer;
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
    $("error").textContent = "No site is registered yet: an admin adds one under Sites below (or run make demo).";
    if (state.viewer.scope === "ADMIN") {
      await renderManage();
      $("manage").open = true;
      $("app").hidden = false;
    }
    return;
  }
  state.site = new URLSearchParams(location.search).get("site") || state.sites[0].name;
  select.value = state.site;
  if (SHARE) keepToSharedDays(state.viewer);
  const day = today();
  state.viewer.sees_today = (!state.viewer.from || state.viewer.from <= day) && (!state.viewer.to || day <= state.viewer.to);
  live();
  load();
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem(KEY, $("token").value.trim());
  start();
});
$("unlock-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const response = await fetch(BASE + "/unlock", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ password: $("password").value }),
  });
  $("password").value = "";
  if (response.ok) return start();
  const wait = response.headers.get("retry-after");
  showUnlock(response.status === 429 ? `Too many wrong passwords: try again in ${wait} s.`
    : response.status === 401 ? "That is not the password of this link."
    : response.status === 404 ? "This shared link does not exist or was revoked." : `The server answered HTTP ${response.status}.`);
});
$("logout").addEventListener("click", () => { localStorage.removeItem(KEY); location.reload(); });
$("site").addEventListener("change", (e) => { state.site = e.target.value; state.filters = []; live(); load(); });
$("range").addEventListener("change", () => { $("custom").hidden = $("range").value !== "custom"; load(); });
$("from").addEventListener("change", load);
$("to").addEventListener("change", load);
start();
