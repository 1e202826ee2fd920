#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""An idle-ish service: handles one small request every ~10 ms (parse a JSON request, look it
up in a small LRU, build and serialise a response) and sleeps in between.

Wall time of such a loop is mostly sleep and hides any overhead, so it reports CPU time:
{"cpu_s": CPU time of the request loop (time.process_time), "work_s": wall time spent
handling requests (sleep excluded), "seconds": wall time of the loop, "rusage_cpu_s":
utime+stime of the whole process at the end (getrusage), "requests": N}.

Same protocol as alloc_loop.py: waits for a line on stdin (time to attach), runs, prints the
JSON line, and exits at the next line (or EOF).
Usage: idle_service.py [REQUESTS] [PERIOD_MS]   (default 200 requests, 10 ms; REQUESTS 0:
serve until stdin closes or a line arrives, and start at once: the always-on phase)
"""
import json
import os
import resource
import select
import sys
import time
from collections import OrderedDict


class Session:
    __slots__ = ("user", "hits", "last")

    def __init__(self, user):
        self.user = user
        self.hits = 0
        self.last = None


def handle(i, sessions):
    req = json.loads('{"user": "u%d", "path": "/item/%d", "q": {"page": %d, "sort": "price"}}'
                     % (i % 97, i % 1000, i % 7))
    s = sessions.get(req["user"])
    if s is None:
        s = sessions[req["user"]] = Session(req["user"])
        if len(sessions) > 64:
            sessions.popitem(last=False)
    else:
        sessions.move_to_end(req["user"])
    s.hits += 1
    s.last = req["path"]
    items = [{"id": "%s-%d" % (req["path"], k), "price": k * 1.25, "tags": ["a", "b"][: k % 3]}
             for k in range(30)]
    body = json.dumps({"user": s.user, "hits": s.hits, "page": req["q"]["page"], "items": items})
    return "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    period = (float(sys.argv[2]) if len(sys.argv) > 2 else 10.0) / 1000.0
    forever = n == 0
    if forever:
        print(json.dumps({"ready": os.getpid()}))
        sys.stdout.flush()
    else:
        sys.stdin.readline()
    sessions = OrderedDict()
    t0, c0 = time.perf_counter(), time.process_time()
    work = 0.0
    nxt = t0
    i = 0
    while forever or i < n:
        nxt += period
        delay = nxt - time.perf_counter()
        if forever:
            # Serve until told to stop (a line or EOF on stdin).
            if select.select([sys.stdin], [], [], max(delay, 0))[0]:
                break
        elif delay > 0:
            time.sleep(delay)
        w0 = time.perf_counter()
        handle(i, sessions)
        work += time.perf_counter() - w0
        i += 1
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"cpu_s": dc, "work_s": work, "seconds": dt,
                      "rusage_cpu_s": ru.ru_utime + ru.ru_stime, "requests": i,
                      "pid": os.getpid()}))
    sys.stdout.flush()
    if not forever:
        sys.stdin.readline()


if __name__ == "__main__":
    main()
