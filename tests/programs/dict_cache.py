#!/usr/bin/env python3
"""A module-level dict that only grows: 1,000 Session objects more, keyed by id, every 0.5 s.
Prints {"pid", "sessions": N} per batch; runs until killed.
"""
import json
import os
import sys
import time

CACHE = {}


class Session(object):
    def __init__(self, i):
        self.id = i


def main():
    n = 0
    while True:
        for _ in range(1000):
            CACHE["s%d" % n] = Session(n)
            n += 1
        print(json.dumps({"pid": os.getpid(), "sessions": n}))
        sys.stdout.flush()
        time.sleep(0.5)


if __name__ == "__main__":
    main()
