#!/usr/bin/env python3
"""`make demo`: a realistic burst of traffic through the real producer, so a new user sees a
living dashboard a minute after `make up`.

Three sites; visitors on desktops, phones and tablets (each with its own user agent, so the
producer's cookieless visitor ids tell them apart); visits of one to several pages with
referrers (search, social, other sites, none) and campaigns; engagement reports when a page is
left, as the tracker sends them; a few bots. Everything goes through POST /query, the tracker's
own mutation; the receive times are the producer's clock (now).

Usage: scripts/demo.py [--producer http://localhost:8080] [--visitors 400] [--seed 1]
"""
import argparse
import json
import random
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

SITES = [("shop.example", ["/", "/products", "/products/kettle", "/products/teapot", "/cart", "/checkout", "/about"], 0.5),
         ("blog.example", ["/", "/posts/rust-kafka", "/posts/exactly-once", "/posts/postgres-rollups", "/about"], 0.35),
         ("docs.example", ["/", "/install", "/api", "/api/stats", "/faq"], 0.15)]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.{n}.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{n} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E{n} Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.{n}.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.{n}",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E{n} Safari/604.1",
]
BOTS = ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"]
REFERRERS = [None, None, "https://www.google.com/", "https://www.google.com/", "https://duckduckgo.com/",
             "https://news.ycombinator.com/item?id=42", "https://www.reddit.com/r/rust/",
             "https://github.com/", "https://t.co/abc"]
CAMPAIGNS = ["?utm_source=newsletter&utm_medium=email&utm_campaign=november",
             "?utm_source=twitter&utm_medium=social&utm_campaign=launch",
             "?utm_source=google&utm_medium=cpc&utm_campaign=brand&gclid=x"]
FIRST_OCTETS = [2, 5, 24, 31, 37, 41, 46, 62, 66, 77, 81, 85, 89, 91, 95, 103, 109, 151, 176, 177, 185,
                188, 193, 195, 200, 201, 212, 213, 217]
MUTATION = "mutation($e:RegisterKafkaEventInput!){register_kafka_event(event:$e){id}}"


def post(producer, agent, address, event):
    body = json.dumps({"query": MUTATION, "variables": {"e": event}}).encode()
    # `make up` trusts a proxy on this machine to name the client: each visitor has an address
    # of its own, as on the web (it places the visitor on the map, and the producer's
    # per-address rate limit applies to each alone).
    request = urllib.request.Request(producer + "/query", data=body,
                                     headers={"content-type": "text/plain", "user-agent": agent,
                                              "x-forwarded-for": address})
    with urllib.request.urlopen(request, timeout=10) as answer:
        result = json.load(answer)
    if result.get("errors"):
        raise RuntimeError(result["errors"][0]["message"])


def visitor(producer, rng, n):
    site, pages, _ = rng.choices(SITES, weights=[s[2] for s in SITES])[0]
    bot = rng.random() < 0.03
    agent = rng.choice(BOTS) if bot else rng.choice(AGENTS).format(n=n)
    # Public IPv4 blocks of several registries, so that the country database places them.
    address = f"{rng.choice(FIRST_OCTETS)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    sent = 0
    for _ in range(1 if bot or rng.random() < 0.8 else 2):
        referrer = rng.choice(REFERRERS)
        search = rng.choice(CAMPAIGNS) if rng.random() < 0.15 else ""
        path = pages[0] if rng.random() < 0.5 else rng.choice(pages)
        for i in range(rng.choice([1, 1, 1, 2, 2, 3, 4, 6])):
            event = {"eventType": "PAGE_VIEW", "userId": "", "path": path, "search": search if i == 0 else "",
                     "title": f"{site} {path}", "url": f"https://{site}{path}{search if i == 0 else ''}",
                     "referrer": referrer if i == 0 else f"https://{site}/"}
            post(producer, agent, address, event)
            sent += 1
            if not bot and rng.random() < 0.6:
                report = dict(event, engagedMs=rng.randint(2_000, 90_000), scrollDepth=rng.randint(10, 100))
                post(producer, agent, address, report)
            path = rng.choice(pages)
    return sent


def register(dashboard, admin_token, site):
    """Registers a site through the Stats API (only registered sites are counted); one that is
    registered already is left as it is."""
    query = 'mutation($d:String!){addSite(domain:$d){domain}}'
    body = json.dumps({"query": query, "variables": {"d": site}}).encode()
    request = urllib.request.Request(dashboard + "/query", data=body,
                                     headers={"content-type": "application/json",
                                              "authorization": f"Bearer {admin_token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        result = json.load(answer)
    errors = result.get("errors") or []
    if errors and errors[0].get("extensions", {}).get("code") != "SITE_EXISTS":
        raise RuntimeError(errors[0]["message"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producer", default="http://localhost:8080")
    parser.add_argument("--dashboard", default="http://localhost:8081")
    parser.add_argument("--admin-token", default="", help="registers the demo's sites first")
    parser.add_argument("--visitors", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    seeds = [rng.randrange(1 << 30) for _ in range(args.visitors)]
    if args.admin_token:
        try:
            for site, _, _ in SITES:
                register(args.dashboard, args.admin_token, site)
        except (urllib.error.URLError, RuntimeError, OSError) as e:
            sys.exit(f"demo: the dashboard at {args.dashboard} did not register the demo's sites ({e})")
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            sent = sum(pool.map(lambda p: visitor(args.producer, random.Random(p[1]), p[0]), enumerate(seeds)))
    except (urllib.error.URLError, RuntimeError, OSError) as e:
        sys.exit(f"demo: the producer at {args.producer} did not take a page view ({e}); is `make up` running?")
    print(f"demo: sent {sent} page views from {args.visitors} visitors on {len(SITES)} sites")


if __name__ == "__main__":
    main()
