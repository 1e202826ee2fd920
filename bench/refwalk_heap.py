#!/usr/bin/env python3
"""A big, still heap for timing the reference walk (`pyleakctl path`): --records class
instances, each with a str, an int, a float and a bytes, held by one module-level list, and
--strs more strs in another: about 5 * records + strs objects, records + 2 containers to follow.
Prints {"pid", "objects"} once built, then sleeps.

    python3 bench/refwalk_heap.py --records 1000000 --strs 5000000 &
    pyleakctl path -p PID --type str --json | jq .walk
"""
import argparse
import gc
import json
import os
import sys
import time


class Record(object):
    def __init__(self, i):
        self.name = "rec%d" % i
        self.n = i + 1000000
        self.f = float(i)
        self.b = b"%d" % i


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1000000)
    ap.add_argument("--strs", type=int, default=5000000)
    args = ap.parse_args()
    global RECORDS, WORDS
    RECORDS = [Record(i) for i in range(args.records)]
    WORDS = ["w%d" % i for i in range(args.strs)]
    gc.collect()
    print(json.dumps({"pid": os.getpid(), "objects": len(gc.get_objects())}))
    sys.stdout.flush()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
