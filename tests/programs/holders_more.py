#!/usr/bin/env python3
"""Objects kept where the walk reads layouts beyond the plain containers: a deque (its blocks),
a suspended generator's local, a frame object's local (a returned function's frame, kept).
Prints {"pid", "queued", "pending", "trapped"} once; runs until killed.
"""
import collections
import json
import os
import sys
import time


class Queued(object):
    pass


class Pending(object):
    pass


class Trapped(object):
    pass


QUEUE = collections.deque()


def producer():
    pending = []
    while True:
        pending.append(Pending())
        yield len(pending)


def keep_frame(n):
    trapped = [Trapped() for _ in range(n)]
    assert trapped
    return sys._getframe()


GEN = producer()
FRAME = keep_frame(700)


def main():
    for _ in range(3000):
        QUEUE.append(Queued())
    for _ in range(1500):
        next(GEN)
    print(json.dumps({"pid": os.getpid(), "queued": len(QUEUE), "pending": 1500,
                      "trapped": 700}))
    sys.stdout.flush()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
