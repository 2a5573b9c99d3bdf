// Browser checks of the tracker and the dashboard, in Debian's Chromium driven by
// playwright-core (which never downloads a browser). Run by dashboard/tests/browser.rs with
// the producer, consumer and dashboard it started:
//   node e2e/browser.mjs '{"producer": "http://127.0.0.1:P", "dashboard": "http://127.0.0.1:D",
//                          "token": "…", "adminToken": "…", "screenshots": "DIR"}'
// Serves its own test sites on shop.test and goals.test (Chromium maps *.test to 127.0.0.1).
// Prints one line per check; exits 1 at the first that fails.
import { chromium } from "playwright-core";
import http from "node:http";
import { mkdirSync } from "node:fs";

const cfg = JSON.parse(process.argv[2]);
const producerPort = new URL(cfg.producer).port;
const AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

// Pages under /off/ and /local/ carry the snippet without data-allow-local; pages under
// /clicks/ load tracker.clicks.js with both automatic events, for their own site.
const site = http.createServer((req, res) => {
  const path = new URL(req.url, "http://site").pathname;
  const allow = path.startsWith("/off/") || path.startsWith("/local/") ? "" : " data-allow-local";
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  if ((req.headers.host || "").startsWith("goals.test")) {
    return res.end(`<!doctype html><html><head><title>Goals ${path}</title>
<script defer src="http://ingest.test:${producerPort}/tracker.js" data-site="goals.test" data-allow-local></script>
</head><body><h1>${path}</h1></body></html>`);
  }
  if (path.startsWith("/clicks/")) {
    // The page keeps every click from navigating, after the tracker has seen it.
    return res.end(`<!doctype html><html><head><title>Clicks</title>
<script defer src="http://ingest.test:${producerPort}/tracker.clicks.js" data-site="clicks.test" data-allow-local data-outbound-links data-file-downloads></script>
<script>addEventListener("click", (e) => e.preventDefault());</script>
</head><body><a id="out" href="https://elsewhere.test/x?y=1">Out</a> <a id="pdf" href="/files/report.pdf">Report</a>
<a id="in" href="/clicks/b">Inside</a></body></html>`);
  }
  res.end(`<!doctype html><html><head><title>Shop ${path}</title>
<script defer src="http://ingest.test:${producerPort}/tracker.js" data-site="shop.test" data-exclude="/admin/*"${allow}></script>
</head><body style="height: 3000px"><h1>${path}</h1><a href="/checkout">Checkout</a></body></html>`);
});
await new Promise((ok) => site.listen(0, "127.0.0.1", ok));
const shop = `http://shop.test:${site.address().port}`;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--host-resolver-rules=MAP *.test 127.0.0.1",
    // A desktop Chrome's user agent for every request, beacons sent while a page unloads
    // included (a context's override misses those; headless Chrome's own is a bot's).
    `--user-agent=${AGENT}`,
  ],
});

function check(ok, what) {
  console.log(`${ok ? "ok" : "FAILED"}: ${what}`);
  if (!ok) throw new Error(what);
}

async function until(what, seconds, probe) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/// A fresh context (its own storage) that records every POST to the producer.
async function context(init) {
  const ctx = await browser.newContext();
  if (init) await ctx.addInitScript(init);
  const posts = [];
  ctx.on("request", (r) => { if (r.method() === "POST" && r.url().includes("/query")) posts.push(r.postData()); });
  return { ctx, posts };
}

/// Loads a page, navigates within it, and leaves it: whatever the tracker sends is sent by then.
async function visitAndLeave(ctx, url) {
  const page = await ctx.newPage();
  await page.goto(url);
  await page.waitForFunction(() => typeof window.pageviews === "function" || document.readyState === "complete");
  await page.evaluate(() => history.pushState({}, "", location.pathname + "/next"));
  await page.goto("about:blank");
  await page.close();
}

try {
  // 1. Nothing is sent: from localhost without data-allow-local (webdriver hidden, so that
  //    only the host decides), under navigator.webdriver, or after opting out. A control
  //    page with data-allow-local in the same kind of context proves the tracker runs at all.
  const hideWebdriver = () => Object.defineProperty(navigator, "webdriver", { get: () => false });
  const local = await context(hideWebdriver);
  await visitAndLeave(local.ctx, `http://localhost:${site.address().port}/local/a`);
  check(local.posts.length === 0, "nothing is sent from localhost without data-allow-local");
  const driven = await context();
  await visitAndLeave(driven.ctx, `${shop}/off/a`);
  check(driven.posts.length === 0, "nothing is sent under navigator.webdriver by default");
  const optedOut = await context(() => localStorage.setItem("pageviews_ignore", "true"));
  await visitAndLeave(optedOut.ctx, `${shop}/optout/a`);
  check(optedOut.posts.length === 0, "nothing is sent after opting out");
  const excluded = await context();
  await visitAndLeave(excluded.ctx, `${shop}/admin/a`);
  check(excluded.posts.length === 0, "nothing is sent from a path matching data-exclude");
  for (const c of [local, driven, optedOut, excluded]) await c.ctx.close();

  // 2. The visit: three page loads and two pushState navigations, the last page left after
  //    20 s of visible time (the page's clock is moved on, not waited for).
  const visit = await context();
  await visit.ctx.clock.install();
  const page = await visit.ctx.newPage();
  await page.goto(`${shop}/`);
  await page.goto(`${shop}/products`);
  await until("the tracker ran", 10, () => page.evaluate(() => typeof window.pageviews === "function"));
  await page.evaluate(() => history.pushState({}, "", "/products/1"));
  await page.evaluate(() => history.replaceState({}, "", "/products/1")); // same path: no view
  await page.clock.runFor(5_000); // looked at /products/1 for 5 s: its report names it
  await page.evaluate(() => history.pushState({}, "", "/products/2"));
  await page.goto(`${shop}/checkout`);
  await until("the tracker ran", 10, () => page.evaluate(() => typeof window.pageviews === "function"));
  await page.mouse.wheel(0, 1200);
  await page.evaluate(() => window.pageviews("Signup", { props: { plan: "pro" } })); // not a page view
  await page.clock.runFor(20_000);
  await page.goto(`${shop}/off/left`); // leaving: pagehide sends the engagement report
  // (The report itself leaves with the page, where the browser no longer reports requests:
  // the dashboard's duration, and the test's look at the database, show it arrived.)
  const views = () => visit.posts.filter((p) => p.includes('"PAGE_VIEW"') && !p.includes("engagedMs") && !p.includes('"name"')).length;
  await until("5 page views posted", 10, () => views() === 5);
  check(true, "5 page views were posted");

  // 3. The dashboard, in the same browser, with the token.
  const seen = [];
  const board = await visit.ctx.newPage();
  board.on("request", (r) => seen.push(r.url()));
  board.on("websocket", (w) => seen.push(w.url()));
  await board.setViewportSize({ width: 1280, height: 900 });
  await board.goto(cfg.dashboard);
  await board.fill("#token", cfg.token);
  await board.click("#login-form button");
  const total = (metric) => board.textContent(`.total[data-metric="${metric}"] b`);
  await until("the dashboard shows 5 page views", 30, async () => {
    await board.waitForSelector("body[data-loaded=yes]", { timeout: 10_000 });
    if ((await total("PAGEVIEWS")) === "5") return true;
    await board.reload();
    return false;
  });
  check((await total("VISITORS")) === "1", `1 visitor (shown: ${await total("VISITORS")})`);
  check((await total("VISITS")) === "1", `1 visit (shown: ${await total("VISITS")})`);
  // The engaged 20 s make the duration, though the page views came within seconds.
  const seconds = (text) => {
    const m = /(?:(\d+) min )?(\d+) s/.exec(text);
    return m ? 60 * Number(m[1] || 0) + Number(m[2]) : 0;
  };
  await until("the engaged time in the duration", 20, async () => {
    if (seconds(await total("VISIT_DURATION")) >= 20) return true;
    await board.reload();
    await board.waitForSelector("body[data-loaded=yes]", { timeout: 10_000 });
    return false;
  });
  check(true, `a visit duration of at least the 20 engaged seconds (shown: ${await total("VISIT_DURATION")})`);
  const pages = await board.$$eval('.panel[data-dimension="PAGE"] li span:first-child', (s) => s.map((e) => e.textContent));
  check(pages.length === 5, `5 pages in the Pages panel (${pages.join(", ")})`);
  await until("the live count", 10, async () => /● [1-9]/.test(await board.textContent("#live")));
  check(true, "the realtime count arrived over the subscription");
  mkdirSync(cfg.screenshots, { recursive: true });
  await board.screenshot({ path: `${cfg.screenshots}/dashboard.png`, fullPage: true });
  // A click on a row filters the whole page.
  await board.locator('.panel[data-dimension="PAGE"] li button', { hasText: "/checkout" }).click();
  await until("the filtered page", 10, async () => (await board.textContent("#filters")).includes("/checkout"));
  await board.waitForSelector("body[data-loaded=yes]");
  await until("the filtered totals", 10, async () => (await total("PAGEVIEWS")) === "1");
  check(true, "clicking a row filters the whole page");
  const origin = new URL(cfg.dashboard);
  const foreign = seen.filter((u) => new URL(u).host !== origin.host);
  check(foreign.length === 0, `the dashboard requested only its own origin (${seen.length} requests; foreign: ${foreign.join(", ")})`);

  // 4. Automatic events: an outbound link and a file download, and an inside link that is
  //    neither.
  const clicks = await context();
  const clicked = await clicks.ctx.newPage();
  await clicked.goto(`${shop}/clicks/a`);
  await until("the clicks tracker ran", 10, () => clicked.evaluate(() => typeof window.pageviews === "function"));
  for (const id of ["#out", "#pdf", "#in"]) await clicked.click(id);
  const named = (name) => clicks.posts.filter((p) => p.includes(`"name":"${name}"`)).length;
  await until("two automatic events posted", 10, () => named("Outbound Link: Click") === 1 && named("File Download") === 1);
  check(clicks.posts.length === 3, `a page view, an outbound click and a download were posted (${clicks.posts.length})`);
  await clicks.ctx.close();

  // 5. A wrong token gets a clear message, not a blank page.
  const stranger = await browser.newContext();
  const wrong = await stranger.newPage();
  await wrong.goto(cfg.dashboard);
  await wrong.fill("#token", "not-the-token-0123456789");
  await wrong.click("#login-form button");
  await until("the refusal", 10, async () => (await wrong.textContent("#login-message")).includes("refused"));
  check(await wrong.isVisible("#login"), "a wrong token shows a clear message");
  await stranger.close();

  // 6. Goals created afterwards: three visitors (one views / and /pricing and signs up for
  //    pro, one views both, one views /), then the goals, the funnel and a property breakdown
  //    made in the dashboard with the admin token.
  const goalsSite = `http://goals.test:${site.address().port}`;
  const visitors = [["/", "/pricing", "signup"], ["/", "/pricing"], ["/"]];
  for (const [i, steps] of visitors.entries()) {
    const who = await browser.newContext({ userAgent: AGENT.replace("131.0.0.0", `13${i}.0.0.0`) });
    const p = await who.newPage();
    for (const step of steps) {
      if (step === "signup") {
        await p.evaluate(() => window.pageviews("Signup", { props: { plan: "pro" } }));
      } else {
        // The page view's POST must be answered before the next step is sent: two requests in
        // flight at once reach the producer in either order, and a funnel step counts only
        // after the one before it.
        const viewed = p.waitForResponse((r) => r.url().includes("/query") && r.request().method() === "POST");
        await p.goto(goalsSite + step);
        await viewed;
        await until("the tracker ran", 10, () => p.evaluate(() => typeof window.pageviews === "function"));
      }
    }
    await who.close();
  }
  const api = async (query, variables) => {
    const r = await fetch(`${cfg.dashboard}/query`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${cfg.adminToken}` },
      body: JSON.stringify({ query, variables }),
    });
    return r.json();
  };
  await until("the three visitors stored", 30, async () => {
    const today = new Date().toISOString().slice(0, 10);
    const a = await api("query($q: StatsQuery!) { stats(query: $q) { results { metrics } } }",
      { q: { site: "goals.test", dateRange: { from: today, to: today }, metrics: ["VISITORS", "PAGEVIEWS"] } }).catch(() => null);
    const m = a?.data?.stats?.results?.[0]?.metrics;
    return m && m[0] === 3 && m[1] === 5;
  });
  const owner = await browser.newContext();
  const admin = await owner.newPage();
  await admin.setViewportSize({ width: 1280, height: 1400 });
  await admin.goto(`${cfg.dashboard}/?site=goals.test`);
  await admin.fill("#token", cfg.adminToken);
  await admin.click("#login-form button");
  await admin.waitForSelector("body[data-loaded=yes]");
  const addGoal = async (name, kind, target, property) => {
    await admin.click('.panel[data-dimension="GOAL"] details summary');
    await admin.fill('.goal-form input[name="name"]', name);
    await admin.selectOption('.goal-form select[name="kind"]', kind);
    await admin.fill('.goal-form input[name="target"]', target);
    await admin.fill('.goal-form input[name="property"]', property);
    await admin.click('.goal-form button');
    await until(`the goal ${name} listed`, 10, async () => (await admin.textContent('.panel[data-dimension="GOAL"] .manage')).includes(name));
  };
  await addGoal("Signup", "event", "Signup", "plan=pro");
  await addGoal("Pricing", "page", "/pricing*", "");
  const goalRows = async () => admin.$$eval('.panel[data-dimension="GOAL"] > ol li button', (bs) => bs.map((b) => b.innerText.replace(/\s+/g, " ").trim()));
  const shown = await until("both goals counted", 10, async () => { const r = await goalRows(); return r.length === 2 && r; });
  check(shown[0] === "Pricing 2 · 66.7%" && shown[1] === "Signup 1 · 33.3%", `goals: Pricing 2 (66.7 %), Signup 1 (33.3 %) (shown: ${shown.join(" | ")})`);
  await admin.fill('.funnel-form input', "Pricing > Signup");
  await admin.click('.funnel-form button');
  const steps = await until("the funnel", 10, async () => {
    const r = await admin.$$eval(".funnel .step", (ss) => ss.map((e) => e.innerText.replace(/\s+/g, " ").trim()));
    return r.length === 2 && r;
  });
  check(steps[0] === "Pricing 2 · 100.0%" && steps[1] === "Signup 1 · 50.0% · −1", `the funnel Pricing → Signup: 2 → 1, 50 % (shown: ${steps.join(" | ")})`);
  await admin.fill('.property-form input', "plan");
  await admin.click('.property-form button');
  const plans = await until("the property breakdown", 10, async () => {
    const r = await admin.$$eval('.panel[data-dimension="PROPERTY"] li button', (bs) => bs.map((b) => b.innerText.replace(/\s+/g, " ").trim()));
    return r.length && r;
  });
  check(plans.length === 1 && plans[0].startsWith("pro 1"), `the property plan: pro 1 (shown: ${plans.join(" | ")})`);
  await admin.screenshot({ path: `${cfg.screenshots}/goals.png`, fullPage: true });
  // A click on a goal filters the whole page to the visits that converted.
  await admin.locator('.panel[data-dimension="GOAL"] > ol li button', { hasText: "Signup" }).click();
  await until("the goal filter", 10, async () => (await admin.textContent("#filters")).includes("Signup"));
  await until("the converted visitor", 10, async () => (await admin.textContent('.total[data-metric="VISITORS"] b')) === "1");
  check(true, "clicking a goal filters the page to the 1 visitor who converted");
  await owner.close();

  // 8. The admin's own section: a site added, and goals.test shared behind a password. A
  //    stranger opens the link: a wrong password shows nothing, the right one the dashboard of
  //    that one site, and from that page no other site and no mutation can be reached.
  const keeper = await browser.newContext();
  const manage = await keeper.newPage();
  manage.on("dialog", (d) => d.accept());
  await manage.setViewportSize({ width: 1280, height: 1600 });
  await manage.goto(`${cfg.dashboard}/?site=goals.test`);
  await manage.fill("#token", cfg.adminToken);
  await manage.click("#login-form button");
  await manage.waitForSelector("body[data-loaded=yes]");
  await manage.click("#manage > summary");
  await manage.fill('.site-form input[name="domain"]', "Added.Test");
  await manage.fill('.site-form input[name="zone"]', "Europe/Berlin");
  await manage.click(".site-form button");
  await until("the added site in the picker", 10, async () => (await manage.$$eval("#site option", (os) => os.map((o) => o.value))).includes("added.test"));
  // The picker changes before the page reloads; the section is drawn anew last, so a form filled
  // before that would be replaced, empty, under the click.
  await until("the added site in the section", 10, async () => (await manage.$$('#manage .sites li[data-site="added.test"]')).length === 1);
  check(true, "an admin adds a site from the dashboard (its domain normalised)");
  await manage.fill('.link-form input[name="name"]', "Board");
  await manage.fill('.link-form input[name="password"]', "a board password");
  await manage.click(".link-form button");
  const shareUrl = await until("the link listed", 10, () => manage.$eval(".links li", (li) => li.dataset.link).catch(() => null));
  check(/\/share\/[0-9a-f]{32}$/.test(shareUrl), `the admin's section lists the new link (${shareUrl})`);
  await manage.fill('.token-form input[name="name"]', "Goals reader");
  await manage.selectOption('.token-form select[name="sites"]', ["goals.test"]);
  await manage.click(".token-form button");
  const made = await until("the new token shown", 10, async () => (await manage.textContent(".new-token")).match(/pvt_[0-9a-f]{64}/)?.[0]);
  const readsAs = async (site) => (await fetch(`${cfg.dashboard}/query`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${made}` },
    body: JSON.stringify({ query: `{ stats(query: {site: "${site}", dateRange: {period: ALL}, metrics: [VISITORS]}) { results { metrics } } }` }),
  })).status;
  const [mine, theirs] = [await readsAs("goals.test"), await readsAs("shop.test")];
  check(mine === 200 && theirs === 401, `a read token made in the dashboard is shown once and reads its site only (${mine}, ${theirs})`);
  await manage.screenshot({ path: `${cfg.screenshots}/manage.png`, fullPage: true });
  await keeper.close();

  const guest = await browser.newContext();
  const shared = await guest.newPage();
  await shared.setViewportSize({ width: 1280, height: 1400 });
  const sent = [];
  shared.on("request", (r) => sent.push({ url: r.url(), method: r.method(), body: r.postData() || "" }));
  shared.on("websocket", (w) => sent.push({ url: w.url(), method: "WS", body: "" }));
  await shared.goto(shareUrl);
  await shared.waitForSelector("#unlock:not([hidden])");
  await shared.fill("#password", "not the password");
  await shared.click("#unlock-form button");
  await until("the refusal", 10, async () => (await shared.textContent("#unlock-message")).includes("not the password"));
  check(await shared.isHidden("#app"), "a wrong password is refused and nothing is shown");
  await shared.fill("#password", "a board password");
  await shared.click("#unlock-form button");
  await shared.waitForSelector("body[data-loaded=yes]");
  const guestTotal = (metric) => shared.textContent(`.total[data-metric="${metric}"] b`);
  check((await guestTotal("VISITORS")) === "3", `the right password opens the dashboard: 3 visitors (shown: ${await guestTotal("VISITORS")})`);
  const offered = await shared.$$eval("#site option", (os) => os.map((o) => o.value));
  check(offered.length === 1 && offered[0] === "goals.test", `the link shows its one site (offered: ${offered.join(", ")})`);
  check((await shared.evaluate(() => document.cookie)) === "", "its cookie is HttpOnly: the page's script cannot read it");
  check(await shared.isHidden("#manage") && (await shared.$$(".goals")).length === 0 && await shared.isHidden("#logout"), "no management and no token on the shared page");
  await until("the live count", 10, async () => /● [1-9]/.test(await shared.textContent("#live")));
  check(true, "the shared page's live count arrived over its own subscription");
  await shared.screenshot({ path: `${cfg.screenshots}/shared.png`, fullPage: true });
  const own = new URL(shareUrl).pathname;
  const reads = sent.filter((r) => r.method === "POST" && r.url.startsWith(cfg.dashboard));
  const strays = reads.filter((r) => !r.url.startsWith(shareUrl + "/") || r.body.includes("mutation"));
  check(reads.length > 0 && strays.length === 0, `the page sent only read queries, through its link (${reads.length}; others: ${strays.map((r) => r.url).join(", ")})`);
  check(sent.every((r) => new URL(r.url).host === new URL(cfg.dashboard).host), "and asked nothing of anyone else");
  const probe = await shared.evaluate(async (base) => {
    const ask = (path, query) => fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query }) }).then((r) => r.status);
    return {
      other: await ask(`${base}/query`, '{ stats(query: {site: "shop.test", dateRange: {period: ALL}, metrics: [VISITORS]}) { results { metrics } } }'),
      mutation: await ask(`${base}/query`, 'mutation { deleteSite(domain: "goals.test") }'),
      tokenRoute: await ask("/query", "{ sites { domain } }"),
    };
  }, own);
  check(probe.other === 401 && probe.mutation === 403 && probe.tokenRoute === 401,
    `from the shared page, another site (${probe.other}), a mutation (${probe.mutation}) and the token route (${probe.tokenRoute}) are refused`);
  await guest.close();

  // 7. Where visitors are: three page views of world.test came through the trusted proxy from
  //    addresses of the City test database; the dashboard names their countries and cities.
  const atlas = await browser.newContext();
  const geo = await atlas.newPage();
  await geo.setViewportSize({ width: 1280, height: 1400 });
  await geo.goto(`${cfg.dashboard}/?site=world.test`);
  await geo.fill("#token", cfg.token);
  await geo.click("#login-form button");
  await geo.waitForSelector("body[data-loaded=yes]");
  const names = (dimension) => geo.$$eval(`.panel[data-dimension="${dimension}"] li button span:first-child`, (s) => s.map((e) => e.textContent));
  const countries = await until("the three countries", 30, async () => {
    const shown = await names("COUNTRY");
    if (shown.length === 3) return shown;
    await geo.reload();
    await geo.waitForSelector("body[data-loaded=yes]");
    return false;
  });
  const expected = ["United Kingdom", "Sweden", "United States"];
  check(expected.every((c) => countries.includes(c)), `countries by name: ${expected.join(", ")} (shown: ${countries.join(", ")})`);
  const cities = await names("CITY");
  check(["London", "Linköping", "Milton"].every((c) => cities.includes(c)), `cities: London, Linköping, Milton (shown: ${cities.join(", ")})`);
  const regions = await names("REGION");
  check(regions.includes("GB-ENG") && regions.length === 3, `regions as ISO 3166-2 (shown: ${regions.join(", ")})`);
  await geo.screenshot({ path: `${cfg.screenshots}/countries.png`, fullPage: true });
  await geo.locator('.panel[data-dimension="COUNTRY"] li button', { hasText: "Sweden" }).click();
  await until("the country filter", 10, async () => (await geo.textContent("#filters")).includes("Sweden"));
  await until("the filtered visitor", 10, async () => (await geo.textContent('.total[data-metric="VISITORS"] b')) === "1");
  check(true, "clicking a country filters the page to its 1 visitor");
  await atlas.close();
  console.log("all browser checks passed");
} catch (e) {
  console.error(`browser checks failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  site.close();
}
