#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""An allocation-heavy loop: a request handler that builds dicts, strs, floats, tuples and a
class instance per call, with a small LRU. Waits for a line on stdin (time to attach), runs,
prints {"seconds": loop time, "cpu_s": its CPU time, "iterations": N}, and exits at the next
line (or EOF)."""
import workload


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


if __name__ == "__main__":
    workload.run(handle, {})
