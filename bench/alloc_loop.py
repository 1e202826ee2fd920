#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""An allocation-heavy loop: a request handler that builds dicts, strs, floats, tuples and a
class instance per call, with a small LRU. Waits for a line on stdin (time to attach), runs,
prints {"seconds": loop time, "cpu_s": its CPU time, "iterations": N}, and exits at the next
line (or EOF)."""
import json
import sys
import time


class Request:
    __slots__ = ("path", "args", "weight")

    def __init__(self, path, args, weight):
        self.path = path
        self.args = args
        self.weight = weight


def handle(i, cache):
    req = Request("/item/%d" % i, {"id": i, "page": i % 7, "q": "x" * (i % 5)}, i * 0.5)
    key = (req.path, req.args["page"])
    hit = cache.get(key)
    if hit is None:
        hit = {"path": req.path, "score": req.weight / 3.0, "tags": [req.path[-1], str(i % 10)]}
        cache[key] = hit
        if len(cache) > 256:
            cache.pop(next(iter(cache)))
    return "%s:%.2f" % (hit["path"], hit["score"])


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    sys.stdin.readline()
    cache = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        handle(i, cache)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seconds": dt, "cpu_s": dc, "iterations": n}))
    sys.stdout.flush()
    sys.stdin.readline()


if __name__ == "__main__":
    main()
