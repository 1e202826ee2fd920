#!/usr/bin/env python3
"""Slowdown of an allocation-heavy loop under pyleak precise mode and under tracemalloc,
measured in one run (interleaved repeats, medians), with pyleak's cost per event.

Usage: overhead.py [--repeats N] [--iterations N] [--json FILE] PYTHON...
Needs root (BPF) and a built ./pyleakd and ./pyleakctl in the project root.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOP = os.path.join(ROOT, "bench", "alloc_loop.py")
MODES = ["none", "tracemalloc=1", "precise"]


def ctl(sock, *args):
    r = subprocess.run([os.path.join(ROOT, "pyleakctl"), "--socket", sock] + list(args) + ["--json"],
                       capture_output=True, text=True, timeout=120)
    doc = json.loads(r.stdout)
    if r.returncode:
        raise RuntimeError("pyleakctl %s: %s" % (" ".join(args), doc))
    return doc


def run_once(python, mode, iterations, sock):
    argv = [python] + (["-X", mode.replace("=", "=")] if mode.startswith("tracemalloc") else [])
    p = subprocess.Popen(argv + [LOOP, str(iterations)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, bufsize=1)
    events = None
    try:
        if mode == "precise":
            time.sleep(0.3)  # let the interpreter start: attach sees a running Python
            ctl(sock, "attach", "-p", str(p.pid))
        p.stdin.write("go\n")
        p.stdin.flush()
        result = json.loads(p.stdout.readline())
        if mode == "precise":
            st = [t for t in ctl(sock, "status")["targets"] if t["pid"] == p.pid][0]
            events = st["counters"]["births"] + st["counters"]["deaths"]
            ctl(sock, "detach", "-p", str(p.pid))
        p.stdin.write("exit\n")
        p.stdin.flush()
    finally:
        p.wait()
    return result["seconds"], events


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=200000)
    ap.add_argument("--json", default=None)
    ap.add_argument("pythons", nargs="+")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="pyleak-bench-")
    sock = os.path.join(tmp, "sock")
    daemon = subprocess.Popen([os.path.join(ROOT, "pyleakd"), "--socket", sock, "--log-level", "error"])
    for _ in range(100):
        try:
            ctl(sock, "status")
            break
        except Exception:
            time.sleep(0.05)
    rows = []
    try:
        for python in args.pythons:
            if not os.access(python, os.X_OK):
                print("skip %s: not installed" % python, file=sys.stderr)
                continue
            times = {m: [] for m in MODES}
            events = []
            for _ in range(args.repeats):
                for mode in MODES:  # interleaved: machine noise hits every mode alike
                    dt, ev = run_once(python, mode, args.iterations, sock)
                    times[mode].append(dt)
                    if ev is not None:
                        events.append(ev)
            med = {m: statistics.median(v) for m, v in times.items()}
            ev = statistics.median(events)
            rows.append({
                "python": python,
                "iterations": args.iterations,
                "seconds": med,
                "ratio_precise": med["precise"] / med["none"],
                "ratio_tracemalloc1": med["tracemalloc=1"] / med["none"],
                "events": ev,
                "ns_per_event": (med["precise"] - med["none"]) / ev * 1e9 if ev else None,
            })
    finally:
        daemon.terminate()
        daemon.wait()
    print("%-44s %8s %10s %10s %10s %9s" % ("python", "none s", "precise x", "tmalloc1 x", "events", "ns/event"))
    for r in rows:
        print("%-44s %8.3f %10.2f %10.2f %10d %9.0f" % (
            r["python"], r["seconds"]["none"], r["ratio_precise"], r["ratio_tracemalloc1"],
            r["events"], r["ns_per_event"] or 0))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"time": time.time(), "repeats": args.repeats, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
