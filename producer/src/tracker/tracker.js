// pageviews tracker: <script defer src="https://ingest.example.com/tracker.js" data-site="example.com"></script>
// Page views, single-page-app navigations, engaged time and scroll depth, and custom events
// (window.pageviews("Signup", {props: {plan: "pro"}})), posted to the producer's
// register_kafka_event mutation. A custom event travels with the page views (eventType
// PAGE_VIEW) and is told apart by its name.
// No cookie, nothing stored, no identifier: the producer derives a daily visitor id.
// Options: data-api (the endpoint; default: /query where this script came from), data-hash
// (hash routing), data-allow-local (also run on localhost, file: and automated browsers),
// data-exclude (paths, * as wildcard: "/admin/*,/preview"). Opt out in a browser:
// localStorage.pageviews_ignore = "true".
// Minified at start by oxc (producer/src/tracker.rs); a test fails above 1,024 bytes gzipped.
// The short names date from hand minifying:
//   u endpoint, S site, E exclusions, c current path, e engaged ms, t last tick, o engaged now,
//   q max scroll %, A attribute, W where (path), O off?, P post (page-view stream), T tick,
//   F flush, V view, C scroll.
!function(w, d, n, l) {
  var s = d.currentScript, A = k => s.getAttribute("data-" + k), h = A("hash") != null,
    u = A("api") || new URL(s.src).origin + "/query", S = A("site") || l.hostname,
    E = (A("exclude") || "").split(",").filter(x => x).map(x =>
      RegExp("^" + x.trim().replace(/\./g, "\\.").replace(/\*/g, ".*") + "$")),
    t = 0, e = 0, q = 0, c, o,
    W = () => l.pathname + (h ? l.hash : ""),
    O = () => {
      try { if (localStorage.pageviews_ignore == "true") return 1 } catch (x) {}
      return A("allow-local") == null &&
        (/^(localhost|127\.0\.0\.1|\[::1\])$/.test(l.hostname) || l.protocol == "file:" || n.webdriver)
    },
    P = x => {
      var p = W(), v = {
        eventType: "PAGE_VIEW", userId: "", path: p, search: l.search, title: d.title,
        url: l.protocol + "//" + S + p + l.search, referrer: d.referrer || null, ...x
      }, b = JSON.stringify({
        query: "mutation($e:RegisterKafkaEventInput!){register_kafka_event(event:$e){id}}",
        variables: { e: v }
      });
      O() || E.some(r => r.test(p)) || n.sendBeacon && n.sendBeacon(u, b) ||
        fetch(u, { method: "POST", body: b, keepalive: !0 })
    },
    T = () => {
      var z = Date.now();
      o && (e += z - t);
      t = z;
      o = d.visibilityState == "visible" && d.hasFocus()
    },
    F = () => {
      T();
      e > 999 && P({ engagedMs: e, scrollDepth: q });
      e = 0
    },
    V = () => {
      W() != c && (c && F(), c = W(), q = 0, C(), P())
    },
    C = () => {
      var m = d.documentElement, r = m.scrollHeight - m.clientHeight;
      q = Math.max(q, r > 0 ? Math.round(100 * scrollY / r) : 100)
    },
    L = (x, f, y) => (y || w).addEventListener(x, f);
  ["pushState", "replaceState"].map(f => {
    var g = history[f];
    history[f] = function() { g.apply(this, arguments); V() }
  });
  L("popstate", V);
  h && L("hashchange", V);
  L("scroll", C);
  L("focus", T);
  L("blur", T);
  L("visibilitychange", () => d.hidden ? F() : T(), d);
  L("pagehide", F);
  w.pageviews = (y, o) => P({
    name: y, props: o && o.props && Object.entries(o.props).map(([k, v]) => ({ key: k, value: "" + v }))
  });
  T();
  V()
}(window, document, navigator, location);
