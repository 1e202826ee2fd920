#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""A request handler that leaks native memory: each request libc-mallocs 4 KiB through ctypes,
fills it, and never frees it; around it, Python churn (dicts, lists, strs) that dies with the
request and a native buffer that is freed.  No Python object grows: only RSS does.

Prints {"t", "requests", "leaked_bytes", "pid", "line"} every second, "line" being the line
of the leaking malloc.  Python 3.8+, Linux (glibc).
"""
import argparse
import ctypes
import inspect
import json
import os
import sys
import time

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

LEAK_LINE = None


def handle(i):
    global LEAK_LINE
    req = {"path": "/api/%d" % (i % 100), "parts": [str(i), "%.2f" % (i / 3.0)]}
    scratch = libc.malloc(2048)
    ctypes.memset(scratch, 0, 2048)
    libc.free(scratch)
    LEAK_LINE = LEAK_LINE or inspect.currentframe().f_lineno + 1
    block = libc.malloc(4096)  # the leak: never freed
    ctypes.memset(block, 1, 4096)
    return len(req["parts"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--rate", type=int, default=500, help="requests per second")
    args = ap.parse_args()
    start = time.time()
    next_report = start + 1
    done = 0
    while time.time() - start < args.seconds:
        tick = time.time()
        for _ in range(args.rate // 10):
            handle(done)
            done += 1
        now = time.time()
        if now >= next_report:
            print(json.dumps({"t": round(now - start, 1), "requests": done,
                              "leaked_bytes": done * 4096, "pid": os.getpid(),
                              "line": LEAK_LINE}))
            sys.stdout.flush()
            next_report += 1
        time.sleep(max(0.0, 0.1 - (time.time() - tick)))


if __name__ == "__main__":
    main()
