#!/usr/bin/env python3
"""Objects held through __slots__: a module global Registry (a class with __slots__) whose
`entries` slot holds a list of 5,000 Payload objects, each with its `owner` slot set.
Prints {"pid", "payloads": N} once; runs until killed.
"""
import json
import os
import sys
import time


class Payload(object):
    __slots__ = ("owner", "data")

    def __init__(self, owner, i):
        self.owner = owner
        self.data = i


class Registry(object):
    __slots__ = ("name", "entries")

    def __init__(self):
        self.name = "registry"
        self.entries = []


REGISTRY = Registry()


def main():
    REGISTRY.entries = [Payload(REGISTRY, i) for i in range(5000)]
    print(json.dumps({"pid": os.getpid(), "payloads": len(REGISTRY.entries)}))
    sys.stdout.flush()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
