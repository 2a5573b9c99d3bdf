#!/usr/bin/env python3
"""The hardening probe of issue 13, point 1: four clients at once, each sending 25 requests of
800 aliases of register_kafka_events over one variable of events, just under the 64 KiB body
limit. Every answer must be BAD_USER_INPUT (the per-request event budget).

Usage: python3 scripts/probes/aliases.py http://localhost:8080   (watch the producer RSS meanwhile)
"""
import json, sys, threading, urllib.request, time
base = sys.argv[1]
aliases = " ".join(f"a{i}: register_kafka_events(events: $e) {{ id }}" for i in range(800))
event = {"eventType": "PAGE_VIEW", "userId": "u", "path": "/p", "search": "", "title": "t", "url": "x"}
body = json.dumps({"query": f"mutation($e: [RegisterKafkaEventInput!]!) {{ {aliases} }}", "variables": {"e": [event] * 404}}).encode()
# Keep it under the 64 KiB body limit, as the probe did.
while len(body) > 65536:
    n = len(json.loads(body)["variables"]["e"]) - 10
    body = json.dumps({"query": f"mutation($e: [RegisterKafkaEventInput!]!) {{ {aliases} }}", "variables": {"e": [event] * n}}).encode()
codes = []
def post():
    for _ in range(25):
        req = urllib.request.Request(base + "/query", data=body, headers={"content-type": "application/json"})
        ans = json.load(urllib.request.urlopen(req))
        codes.append(ans["errors"][0]["extensions"]["code"] if ans.get("errors") else "ok")
ts = [threading.Thread(target=post) for _ in range(4)]
t0 = time.time()
[t.start() for t in ts]; [t.join() for t in ts]
print(f"body {len(body)} bytes, events per alias {len(json.loads(body)['variables']['e'])}, answers {dict((c, codes.count(c)) for c in set(codes))}, {time.time()-t0:.2f}s")
