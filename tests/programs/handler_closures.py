#!/usr/bin/env python3
"""A handler class that keeps, in a class attribute list, a closure per request it handled:
each closure captures its request, with a dict and a buffer. Nothing else holds the requests.
Prints {"pid", "requests": N} once per batch; runs until killed.
"""
import json
import os
import sys
import time


class Request(object):
    def __init__(self, i):
        self.headers = {"id": str(i)}
        self.buf = bytearray(64)


class Handler(object):
    callbacks = []

    def handle(self, req):
        def on_done():
            return len(req.buf)
        Handler.callbacks.append(on_done)


def main():
    handler = Handler()
    n = 0
    while True:
        for _ in range(1000):
            handler.handle(Request(n))
            n += 1
        print(json.dumps({"pid": os.getpid(), "requests": n}))
        sys.stdout.flush()
        time.sleep(0.5)


if __name__ == "__main__":
    main()
