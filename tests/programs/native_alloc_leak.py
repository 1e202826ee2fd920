# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Leaks native memory through ctypes: every request libc-mallocs 4 KiB that it never frees,
amid churn (mallocs of 1-16 KiB freed within the same request).

Protocol: prints {"pid": PID, "ready": true}, waits for a line on stdin, serves REQUESTS
requests (argv[1], default 10240), then prints the ground truth as one JSON line and sleeps
until stdin closes:
  {"leaked": bytes never freed, "churned": bytes malloc'd and freed, "function": "leak_one",
   "line": the line of the leaking malloc, "churn_function": "churn"}
"""
import ctypes
import ctypes.util
import json
import os
import random
import sys

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.restype = None
libc.free.argtypes = [ctypes.c_void_p]

LEAK_SIZE = 4096
kept = []
churned = 0


def leak_one():
    p = libc.malloc(LEAK_SIZE)  # native leak site
    kept.append(p)


def churn(rng):
    global churned
    blocks = []
    for _ in range(rng.randrange(4, 12)):
        size = rng.randrange(1024, 16384)
        blocks.append(libc.malloc(size))
        churned += size
    for p in blocks:
        libc.free(p)


def handle(i, rng):
    churn(rng)
    leak_one()
    return "%d:%s" % (i, "x" * (i % 7))


def leak_line():
    with open(os.path.abspath(__file__)) as f:
        for n, line in enumerate(f, 1):
            if line.rstrip().endswith("# native leak site"):
                return n
    return -1


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10240
    rng = random.Random(16)
    print(json.dumps({"pid": os.getpid(), "ready": True}), flush=True)
    sys.stdin.readline()
    for i in range(n):
        handle(i, rng)
    print(json.dumps({"leaked": len(kept) * LEAK_SIZE, "churned": churned,
                      "function": "leak_one", "line": leak_line(),
                      "churn_function": "churn"}), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
