#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Creates and drops instances of two classes for a while, then holds a known number of each.

On "churn" (a line on stdin): A() made and dropped for CHURN_S seconds, then N(2**100) (an int
subclass, 4 digits at birth) likewise, then HELD of each held; prints one JSON line with what it
holds and their sizes (tp_basicsize, tp_itemsize). Works on Python 3.8+.
"""
import json
import os
import sys
import time

CHURN_S = 1.0
HELD = 1000


class A:
    pass


class N(int):
    pass


def churn(make):
    n, end = 0, time.monotonic() + CHURN_S
    while time.monotonic() < end:
        make()
        n += 1
    return n


held = []
print(json.dumps({"pid": os.getpid()}), flush=True)
for line in sys.stdin:
    if line.strip() == "churn":
        churned = {"A": churn(A), "N": churn(lambda: N(2 ** 100))}
        held = [A() for _ in range(HELD)] + [N(2 ** 100) for _ in range(HELD)]
        print(json.dumps({"held": {"A": HELD, "N": HELD}, "churned": churned,
                          "size": {"A": [A.__basicsize__, A.__itemsize__],
                                   "N": [N.__basicsize__, N.__itemsize__]}}), flush=True)
    elif line.strip() == "exit":
        break
