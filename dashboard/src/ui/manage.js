// The admin's part of the dashboard: sites (add, move to another time zone, delete with their
// data), the shared links of the site shown, and stored tokens. Shown to an admin token only;
// the API refuses these to any other. Uses app.js's gql, element, state and showError.
"use strict";

const MANAGED = `query($s: String!, $any: Boolean!) {
  sites { domain timeZone counting }
  sharedLinks(site: $s) @include(if: $any) { id path name protected from to createdAt revoked }
  tokens { id name scope sites createdAt revoked }
}`;
const ZONES = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];

async function change(mutation, variables) {
  try {
    const done = await gql(mutation, variables);
    const model = await gql("{ sites { name timeZone counting } }");
    state.sites = model.sites;
    $("site").replaceChildren(...state.sites.map((s) => new Option(s.name, s.name)));
    if (!state.sites.some((s) => s.name === state.site)) state.site = state.sites[0]?.name ?? null;
    $("site").value = state.site;
    if (state.site) await load();
    else await renderManage();
    return done;
  } catch (e) {
    showError(e);
    return null;
  }
}

function zoneInput(name, value) {
  return element("input", { name, value: value || "", placeholder: "Europe/Berlin", ariaLabel: "Time zone", required: true, autocomplete: "off" });
}

function formOf(className, fields, label, submit) {
  const form = element("form", { className }, ...fields, element("button", { textContent: label }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submit(new FormData(form));
  });
  return form;
}

function renderSites(sites) {
  const list = element("ul", { className: "manage sites" });
  for (const site of sites) {
    const zone = formOf("site-zone", [zoneInput("zone", site.timeZone)], "Save zone", (f) =>
      change("mutation($d: String!, $z: String!) { updateSite(domain: $d, timeZone: $z) { domain } }", { d: site.domain, z: f.get("zone") }));
    const remove = element("button", { type: "button", textContent: "Delete", title: `Delete ${site.domain} and all its data` });
    remove.addEventListener("click", () => {
      if (confirm(`Delete ${site.domain} with every event, visit, goal and link of it? This cannot be undone.`)) {
        change("mutation($d: String!) { deleteSite(domain: $d) }", { d: site.domain });
      }
    });
    const name = element("span", { textContent: site.domain + (site.counting ? " (counting…)" : "") });
    const li = element("li", {}, name, zone, remove);
    li.dataset.site = site.domain;
    list.append(li);
  }
  const add = formOf("site-form", [
    element("input", { name: "domain", placeholder: "shop.example", ariaLabel: "Domain", required: true }),
    zoneInput("zone", Intl.DateTimeFormat().resolvedOptions().timeZone),
  ], "Add site", (f) => change("mutation($d: String!, $z: String) { addSite(domain: $d, timeZone: $z) { domain } }", { d: f.get("domain"), z: f.get("zone") }));
  return element("section", { className: "panel" }, element("h2", { textContent: "Sites" }), list, add);
}

function renderLinks(links) {
  const list = element("ul", { className: "manage links" });
  for (const link of links.filter((l) => !l.revoked)) {
    const url = location.origin + link.path;
    const days = link.from || link.to ? ` · ${link.from || "…"} to ${link.to || "…"}` : "";
    const a = element("a", { href: url, textContent: link.name, title: url });
    const revoke = element("button", { type: "button", textContent: "Revoke", title: `Revoke the link ${link.name}` });
    revoke.addEventListener("click", () => change("mutation($i: String!) { revokeSharedLink(id: $i) }", { i: link.id }));
    const li = element("li", {}, element("span", {}, a, (link.protected ? " · password" : " · public") + days), revoke);
    li.dataset.link = url;
    list.append(li);
  }
  const create = formOf("link-form", [
    element("input", { name: "name", placeholder: "Link name", ariaLabel: "Link name", required: true }),
    element("input", { name: "password", type: "password", placeholder: "Password (optional, 8+)", ariaLabel: "Link password", autocomplete: "new-password" }),
    element("input", { name: "from", type: "date", ariaLabel: "Shown from" }),
    element("input", { name: "to", type: "date", ariaLabel: "Shown to" }),
  ], "Create link", (f) => change(
    "mutation($s: String!, $n: String!, $p: String, $f: String, $t: String) { createSharedLink(site: $s, name: $n, password: $p, from: $f, to: $t) { id } }",
    { s: state.site, n: f.get("name"), p: f.get("password") || null, f: f.get("from") || null, t: f.get("to") || null }));
  return element("section", { className: "panel" }, element("h2", { textContent: `Shared links of ${state.site}` }), list, create);
}

function renderTokens(tokens, sites) {
  const list = element("ul", { className: "manage tokens" });
  for (const token of tokens.filter((t) => !t.revoked)) {
    const what = token.scope === "ADMIN" ? "admin" : `reads ${token.sites.join(", ")}`;
    const revoke = element("button", { type: "button", textContent: "Revoke", title: `Revoke the token ${token.name}` });
    revoke.addEventListener("click", () => change("mutation($i: String!) { revokeToken(id: $i) }", { i: token.id }));
    list.append(element("li", {}, element("span", { textContent: `${token.name}: ${what}` }), revoke));
  }
  const shown = element("output", { className: "new-token" });
  const choice = element("select", { name: "sites", multiple: true, ariaLabel: "Sites it reads" }, ...sites.map((s) => new Option(s.domain, s.domain)));
  const create = formOf("token-form", [
    element("input", { name: "name", placeholder: "Token name", ariaLabel: "Token name", required: true }),
    element("select", { name: "scope", ariaLabel: "Scope" }, new Option("Reads the chosen sites", "READ"), new Option("Admin", "ADMIN")),
    choice,
  ], "Create token", async (f) => {
    const made = await change("mutation($n: String!, $c: TokenScope!, $s: [String!]!) { createToken(name: $n, scope: $c, sites: $s) { token } }",
      { n: f.get("name"), c: f.get("scope"), s: f.getAll("sites") });
    // Shown this once: only its hash is kept.
    if (made) $("manage-body").querySelector(".new-token").textContent = `New token (copy it now, it is not shown again): ${made.createToken.token}`;
  });
  return element("section", { className: "panel" }, element("h2", { textContent: "Tokens" }), list, create, shown);
}

/** Fills the admin's section: called by app.js's load() for an admin token. */
async function renderManage() {
  const data = await gql(MANAGED, { s: state.site ?? "", any: !!state.site });
  const kept = $("manage-body").querySelector(".new-token")?.textContent;
  const parts = [renderSites(data.sites), state.site ? renderLinks(data.sharedLinks) : null, renderTokens(data.tokens, data.sites)];
  $("manage-body").replaceChildren(...parts.filter(Boolean));
  if (kept) $("manage-body").querySelector(".new-token").textContent = kept;
  $("manage").hidden = false;
}
