// pageviews tracker: <script defer src="https://ingest.example.com/tracker.js" data-site="example.com"></script>
// Page views, single-page-app navigations, engaged time and scroll depth, and custom events
// (window.pageviews("Signup", {props: {plan: "pro"}})), posted to the producer's
// register_kafka_event mutation. A custom event travels with the page views (eventType
// PAGE_VIEW) and is told apart by its name.
// No cookie, nothing stored, no identifier: the producer derives a daily visitor id.
// Options: data-api (the endpoint; default: /query where this script came from), data-hash
// (hash routing), data-allow-local (also run on localhost, file: and automated browsers),
// data-exclude (paths, * as wildcard: "/admin/*,/preview"). Opt out in a browser:
// localStorage.pageviews_ignore = "true". /tracker.clicks.js is this script with automatic
// events too (tracker/clicks.js): data-outbound-links, data-file-downloads.
// Minified at start by oxc (producer/src/tracker.rs), which also shortens every local name; a
// test fails above 1,024 bytes gzipped.
((win, doc, nav, loc) => {
  var script = doc.currentScript;
  var attr = (name) => script.getAttribute("data-" + name);
  var hashRouting = attr("hash") != null;
  var endpoint = attr("api") || new URL(script.src).origin + "/query";
  var site = attr("site") || loc.hostname;
  // data-exclude="/admin/*,/preview": globs, * standing for anything.
  var excluded = (attr("exclude") || "").split(",").filter((pattern) => pattern).map((pattern) =>
    RegExp("^" + pattern.trim().replace(/\./g, "\\.").replace(/\*/g, ".*") + "$"));
  var lastTick = 0, engagedMs = 0, maxScroll = 0, currentPath, engagedNow;

  var where = () => loc.pathname + (hashRouting ? loc.hash : "");

  // Nothing is sent from a developer's machine, an automated browser, or an opted-out browser.
  var off = () => {
    try { if (localStorage.pageviews_ignore == "true") return true; } catch {}
    return attr("allow-local") == null &&
      (/^(localhost|127\.0\.0\.1|\[::1\])$/.test(loc.hostname) || loc.protocol == "file:" || nav.webdriver);
  };

  // Every event is the tutorial's mutation on the page-view stream: a page view, an engagement
  // report (engagedMs) or a custom event (name). `path` is the page it is about: the one on
  // screen unless said otherwise.
  var post = (extra, path = where()) => {
    var event = {
      eventType: "PAGE_VIEW", userId: "", path: path, search: loc.search, title: doc.title,
      url: loc.protocol + "//" + site + path + loc.search, referrer: doc.referrer || null, ...extra
    };
    var body = JSON.stringify({
      query: "mutation($e:RegisterKafkaEventInput!){register_kafka_event(event:$e){id}}",
      variables: { e: event }
    });
    if (off() || excluded.some((re) => re.test(path))) return;
    if (!(nav.sendBeacon && nav.sendBeacon(endpoint, body))) {
      fetch(endpoint, { method: "POST", body: body, keepalive: true });
    }
  };

  // Engaged time: visible and focused, counted between ticks.
  var tick = () => {
    var now = Date.now();
    if (engagedNow) engagedMs += now - lastTick;
    lastTick = now;
    engagedNow = doc.visibilityState == "visible" && doc.hasFocus();
  };

  // The report is about the page that was looked at: after a single-page navigation the
  // location already names the next one.
  var flush = () => {
    tick();
    if (engagedMs > 999) post({ engagedMs: engagedMs, scrollDepth: maxScroll }, currentPath);
    engagedMs = 0;
  };

  var scrolled = () => {
    var root = doc.documentElement, room = root.scrollHeight - root.clientHeight;
    maxScroll = Math.max(maxScroll, room > 0 ? Math.round(100 * scrollY / room) : 100);
  };

  var view = () => {
    if (where() == currentPath) return;
    if (currentPath) flush();
    currentPath = where();
    maxScroll = 0;
    scrolled();
    post();
  };

  var on = (type, listener, target) => (target || win).addEventListener(type, listener);
  ["pushState", "replaceState"].forEach((name) => {
    var original = history[name];
    // A function, not an arrow: it passes on its own `this` and arguments.
    history[name] = function () { original.apply(this, arguments); view(); };
  });
  on("popstate", view);
  if (hashRouting) on("hashchange", view);
  on("scroll", scrolled);
  on("focus", tick);
  on("blur", tick);
  on("visibilitychange", () => (doc.hidden ? flush() : tick()), doc);
  on("pagehide", flush);

  // automatic events (tracker.clicks.js only)

  // window.pageviews("Signup", {props: {plan: "pro"}})
  win.pageviews = (name, options) => {
    var props = options && options.props;
    post({ name, props: props && Object.entries(props).map(([key, value]) => ({ key, value: "" + value })) });
  };
  tick();
  view();
})(window, document, navigator, location);
