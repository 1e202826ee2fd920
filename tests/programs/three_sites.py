# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Allocates Item objects from three known functions in known proportions, and keeps them.

Protocol: prints {"pid": PID, "ready": true}, waits for a line on stdin, allocates ROUNDS
rounds (each round: the three functions in a shuffled order, each making its share in chunks),
then prints the ground truth as one JSON line and sleeps until stdin closes:
  {"sites": {"make_a": {"line": N, "count": C, "caller": "via_one"}, ...}, "total": T}
"""
import json
import os
import random
import sys

SHARES = {"make_a": 50, "make_b": 30, "make_c": 20}
ROUNDS = 400
CHUNK = 10


class Item:
    __slots__ = ("n",)


keep = []
LINES = {}


def make_a(n):
    for i in range(n):
        keep.append(Item())  # site a
    return n


def make_b(n):
    for i in range(n):
        keep.append(Item())  # site b
    return n


def make_c(n):
    for i in range(n):
        keep.append(Item())  # site c
    return n


def via_one(n):
    return make_a(n)


def via_two(n):
    return make_b(n)


def via_three(n):
    return make_c(n)


CALLERS = {"make_a": via_one, "make_b": via_two, "make_c": via_three}


def site_lines():
    src = open(__file__).read().splitlines()
    for name, tag in (("make_a", "# site a"), ("make_b", "# site b"), ("make_c", "# site c")):
        LINES[name] = next(i + 1 for i, l in enumerate(src) if l.rstrip().endswith(tag))


def main():
    site_lines()
    rng = random.Random(7)
    print(json.dumps({"pid": os.getpid(), "ready": True}), flush=True)
    sys.stdin.readline()
    counts = dict.fromkeys(SHARES, 0)
    for _ in range(ROUNDS):
        # Interleave the three sites in chunks, so no site owns whole pages by itself.
        work = [name for name, share in SHARES.items() for _ in range(share // CHUNK * 10)]
        rng.shuffle(work)
        for name in work:
            counts[name] += CALLERS[name](CHUNK)
    print(json.dumps({"sites": {n: {"line": LINES[n], "count": counts[n],
                                    "caller": CALLERS[n].__name__} for n in SHARES},
                      "total": sum(counts.values())}), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
