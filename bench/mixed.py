#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""A realistic mixed program: parses a text log and JSON documents, keeps per-user records
(class instances in dicts), builds report strings, and memoises summaries in a small LRU.

Same protocol as alloc_loop.py: waits for a line on stdin (time to attach), runs, prints
{"seconds": wall time, "cpu_s": CPU time, "iterations": N}, and exits at the next line (or EOF).
Usage: mixed.py [BATCHES]   (default 300: ~0.9-1.3 s unprobed on the test machine)
"""
import json
import random
import re
import sys
import time
from collections import OrderedDict

LINE_RE = re.compile(r"^(\S+) (\S+) \[(\d+)\] \"(GET|POST|PUT) (\S+)\" (\d{3}) (\d+)$")


class LRU:
    """A small least-recently-used cache on an OrderedDict."""

    def __init__(self, size):
        self.size = size
        self.data = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key):
        try:
            value = self.data[key]
        except KeyError:
            self.misses += 1
            return None
        self.data.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key, value):
        self.data[key] = value
        self.data.move_to_end(key)
        if len(self.data) > self.size:
            self.data.popitem(last=False)


class Hit:
    def __init__(self, user, method, path, status, size, ts):
        self.user = user
        self.method = method
        self.path = path
        self.status = status
        self.size = size
        self.ts = ts


class UserStats:
    def __init__(self, user):
        self.user = user
        self.count = 0
        self.bytes = 0
        self.paths = {}
        self.errors = []

    def add(self, hit):
        self.count += 1
        self.bytes += hit.size
        self.paths[hit.path] = self.paths.get(hit.path, 0) + 1
        if hit.status >= 500:
            self.errors.append((hit.ts, hit.path))
            del self.errors[:-8]


def make_log(rng, n, base_ts):
    """n lines of an access log, as one text blob (string building)."""
    users = ["user%03d" % rng.randrange(300) for _ in range(n)]
    lines = []
    for i in range(n):
        path = "/%s/%d/%s" % (rng.choice(("api", "static", "item", "search")), rng.randrange(50),
                              rng.choice(("view", "edit", "list", "raw")))
        lines.append('10.0.%d.%d %s [%d] "%s %s" %d %d' % (
            rng.randrange(256), rng.randrange(256), users[i], base_ts + i,
            rng.choice(("GET", "GET", "GET", "POST", "PUT")), path,
            rng.choice((200, 200, 200, 304, 404, 500)), rng.randrange(100, 50000)))
    return "\n".join(lines)


def make_events(rng, n):
    """A JSON document of n events (serialised here, parsed by the consumer)."""
    events = [{"id": i, "kind": rng.choice(("click", "view", "buy")),
               "user": "user%03d" % rng.randrange(300),
               "price": round(rng.random() * 100, 2),
               "tags": [rng.choice("abcdefgh") for _ in range(rng.randrange(1, 4))]}
              for i in range(n)]
    return json.dumps({"batch": n, "events": events})


def summarise(stats):
    top = sorted(stats.paths.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return "%s: %d hits, %.1f KiB, top %s" % (
        stats.user, stats.count, stats.bytes / 1024.0,
        ", ".join("%s x%d" % kv for kv in top))


def run_batch(rng, b, users, lru, totals):
    text = make_log(rng, 400, b * 1000)
    for line in text.split("\n"):
        m = LINE_RE.match(line)
        if not m:
            continue
        hit = Hit(m.group(2), m.group(4), m.group(5), int(m.group(6)), int(m.group(7)),
                  int(m.group(3)))
        stats = users.get(hit.user)
        if stats is None:
            stats = users[hit.user] = UserStats(hit.user)
        stats.add(hit)
    doc = json.loads(make_events(rng, 200))
    for ev in doc["events"]:
        key = (ev["kind"], ev["tags"][0])
        totals[key] = totals.get(key, 0.0) + ev["price"]
        stats = users.get(ev["user"])
        if stats is not None:
            cached = lru.get((stats.user, stats.count))
            if cached is None:
                cached = summarise(stats)
                lru.put((stats.user, stats.count), cached)
    report = []
    for (kind, tag), value in sorted(totals.items()):
        report.append(f"{kind:>6} {tag} {value:12.2f}")
    return len("\n".join(report))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    sys.stdin.readline()
    rng = random.Random(42)
    users, lru, totals = {}, LRU(128), {}
    t0, c0 = time.perf_counter(), time.process_time()
    out = 0
    for b in range(n):
        out += run_batch(rng, b, users, lru, totals)
        if b % 20 == 19:  # a service would rotate its state now and then
            users = {}
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seconds": dt, "cpu_s": dc, "iterations": n, "check": out,
                      "lru_hits": lru.hits}))
    sys.stdout.flush()
    sys.stdin.readline()


if __name__ == "__main__":
    main()
