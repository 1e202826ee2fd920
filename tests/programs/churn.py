#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""A steady service: millions of objects allocated and freed, a flat working set.

Each batch handles requests that build dicts, lists, strs, floats and class instances which
die at the end of the request, keeps a bounded LRU cache, makes cyclic garbage for the
collector (a sawtooth: enough of it that a young collection runs every few seconds), and
every 20 s rebuilds a 20,000-word index (a step down, then up).
With --leak-rate R it also keeps R dicts per second for ever (a slow leak amid the churn).
Prints {"t": seconds, "requests": N, "leaked": N, "pid": PID} every second. Python 3.8+.
"""
import argparse
import collections
import json
import os
import sys
import time


class Request:
    def __init__(self, i):
        self.path = "/api/%d" % (i % 1000)
        self.headers = {"id": str(i), "len": i % 17}


class Node:
    def __init__(self):
        self.me = self  # a reference cycle: freed only by the cyclic GC


def handle(i, cache):
    req = Request(i)
    parts = [req.path, req.headers["id"], "%.3f" % (i / 7.0)]
    body = {"parts": parts, "n": len(parts), "score": i * 0.25}
    key = req.path
    if key not in cache:
        cache[key] = (body["n"], str(i))
        if len(cache) > 500:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    if i % 5 == 0:
        Node()
    return len(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--rate", type=int, default=5000, help="requests per second")
    ap.add_argument("--leak-rate", type=float, default=0.0, help="dicts kept per second")
    args = ap.parse_args()

    cache = collections.OrderedDict()
    leaked = []
    index = []
    start = time.time()
    next_report = start + 1
    next_index = start
    i = 0
    while time.time() - start < args.seconds:
        tick = time.time()
        for _ in range(args.rate // 20):
            handle(i, cache)
            i += 1
        now = time.time()
        while len(leaked) < int((now - start) * args.leak_rate):
            leaked.append({"session": None})
        if now >= next_index:
            index = None
            index = ["w%d" % k for k in range(20000)]
            next_index += 20
        if now >= next_report:
            print(json.dumps({"t": round(now - start, 1), "requests": i, "leaked": len(leaked),
                              "pid": os.getpid()}))
            sys.stdout.flush()
            next_report += 1
        time.sleep(max(0.0, 0.05 - (time.time() - tick)))
    del index


if __name__ == "__main__":
    main()
