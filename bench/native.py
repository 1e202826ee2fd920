#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""What probing libc's allocator costs a Python program, in one run: slowdown ratios per
interpreter x workload x mode, and the allocator calls per iteration behind them.

Usage: native.py [--repeats N] [--size N] [--modes M,..] [--json FILE] [PYTHON...]

Workloads: bench/alloc_loop.py (small objects: pymalloc serves nearly all of them) and
bench/big_alloc.py (every iteration allocates four blocks over pymalloc's 512 bytes, which go
to malloc). Modes:
  none       no probe;
  uprobe     an empty uprobe on entry to malloc, calloc, realloc and free (bpftrace): the
             floor of any per-call scheme, which must at least see every free;
  uretprobe  the same plus empty uretprobes on malloc, calloc and realloc: what a tracer that
             needs each block's address pays (bcc's memleak);
  precise    pyleak precise mode (--force) with native_sample_bytes = 0;
  native     pyleak precise mode (--force) with byte sampling of malloc (the default 512 KiB):
             its uprobe-session programs (the return probe only for sampled calls) and free's
             uprobe; native / precise is what the sampling adds.
Rounds are interleaved (each mode once per round, the order rotated each round); each cell is
the median of its rounds as a ratio to the median of none, in the loop's CPU time (user and
system, traps included: wall time on a loaded 2-core machine is mostly other processes').
allocs/it, frees/it: malloc+calloc+realloc and free calls per loop iteration, counted once by
bpftrace (with a bpftrace mode); hits/it: runs of pyleak's native programs per iteration (calls
and sampled returns); us/call: (mode - none) / calls for bpftrace's, (native - precise) / hits
for pyleak's, in CPU time. bpftrace's uprobes are host-wide (see
bt_script()); pyleak's are the target's only (uprobe_multi links with a pid).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

WORKLOADS = {"alloc": "alloc_loop.py", "big": "big_alloc.py"}
MODES = ["none", "uprobe", "uretprobe", "precise", "native"]
METRIC = "cpu_s"
ALLOCS = ("malloc", "calloc", "realloc")


def libc_of(pid):
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            path = line.split()[-1]
            if os.path.basename(path).startswith("libc.so"):
                return path
    raise RuntimeError("pid %d maps no libc" % pid)


def bt_script(libc, mode, pid):
    """bpftrace 0.17 places uprobes host-wide (its -p filters USDT probes only): the programs
    filter on the pid, and every other process using libc pays the traps too."""
    probes = ["uprobe:%s:%s /pid == %d/ { }" % (libc, f, pid) for f in ALLOCS + ("free",)]
    if mode == "uretprobe":
        probes += ["uretprobe:%s:%s /pid == %d/ { }" % (libc, f, pid) for f in ALLOCS]
    if mode == "count":
        probes = ["uprobe:%s:%s /pid == %d/ { @calls[\"%s\"] = count(); }" % (
            libc, f, pid, "free" if f == "free" else "alloc") for f in ALLOCS + ("free",)]
    return "BEGIN { printf(\"ready\\n\"); } " + " ".join(probes)


def start_bpftrace(pid, mode):
    bt = subprocess.Popen(["bpftrace", "-p", str(pid), "-e", bt_script(libc_of(pid), mode, pid)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    while True:
        line = B.readline_timeout(bt.stdout, 300)
        if not line:
            raise RuntimeError("bpftrace failed: %s" % bt.stderr.read().decode().strip())
        if line.strip() == b"ready":
            return bt


def stop_bpftrace(bt):
    bt.send_signal(2)
    try:
        out, _ = bt.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        bt.kill()
        out, _ = bt.communicate()
    return out.decode(errors="replace")


def run_once(python, workload, mode, size, daemons):
    p = subprocess.Popen([python, os.path.join(B.BENCH, WORKLOADS[workload]), str(size)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    bt, extra = None, {}
    try:
        if not B.wait_blocked_on_stdin(p.pid):
            raise RuntimeError("%s did not start" % python)
        if mode in ("uprobe", "uretprobe", "count"):
            bt = start_bpftrace(p.pid, mode)
        elif mode in daemons:
            daemons[mode].ctl("attach", "-p", str(p.pid), "--mode", "precise", "--force")
        p.stdin.write("go\n")
        p.stdin.flush()
        result = json.loads(B.readline_timeout(p.stdout, 600))
        if bt:
            out = stop_bpftrace(bt)
            bt = None
            for line in out.splitlines():
                if line.startswith("@calls["):
                    extra[line[len("@calls["):line.index("]")]] = int(line.rsplit(":", 1)[1])
        elif mode in daemons:
            st = daemons[mode].target(p.pid)
            if st and "native_alloc" in st:
                extra["native"] = st["native_alloc"]
            daemons[mode].ctl("detach", "-p", str(p.pid))
            daemons[mode].settle()
        p.stdin.write("exit\n")
        p.stdin.flush()
        p.wait(timeout=60)
    finally:
        if bt and bt.poll() is None:
            bt.kill()
            bt.wait()
        if p.poll() is None:
            p.kill()
            p.wait()
    return result, extra


def start_daemon(tmp, name, sample_bytes):
    conf = os.path.join(tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write("native_sample_bytes = %d\n" % sample_bytes)
    sock = os.path.join(tmp, name + ".sock")
    log = open(os.path.join(tmp, name + ".log"), "w")
    d = B.Daemon.__new__(B.Daemon)
    d.sock, d.log_path, d.log = sock, log.name, log
    d.proc = subprocess.Popen([B.PYLEAKD, "--socket", sock, "--config", conf,
                               "--log-level", "warn"], stdout=log, stderr=subprocess.STDOUT)
    d.pid = d.proc.pid
    for _ in range(200):
        try:
            d.ctl("status")
            return d
        except Exception:
            time.sleep(0.05)
    raise RuntimeError("pyleakd did not start; see %s" % log.name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size", type=int, default=200000)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--json")
    ap.add_argument("pythons", nargs="*")
    args = ap.parse_args()
    pythons = args.pythons or [i for i in B.default_pythons()]
    infos = [B.python_info(p) for p in pythons]
    modes = [m for m in MODES if m in args.modes.split(",")]
    if "none" not in modes:
        modes.insert(0, "none")
    tmp = tempfile.mkdtemp(prefix="pyleak-native-bench-")
    B.snapshot_binaries(tmp)
    daemons = {}
    try:
        if "precise" in modes:
            daemons["precise"] = start_daemon(tmp, "precise", 0)
        if "native" in modes:
            daemons["native"] = start_daemon(tmp, "native", 512 * 1024)
        runs, calls = {}, {}
        for info in infos:
            for w in WORKLOADS:
                # Counted by bpftrace where it runs anyway; else from pyleak's probe hits.
                calls[(info["path"], w)] = {}
                if "uprobe" in modes or "uretprobe" in modes:
                    calls[(info["path"], w)] = run_once(info["path"], w, "count", args.size,
                                                        daemons)[1]
        for rnd in range(args.repeats):
            for info in infos:
                for w in WORKLOADS:
                    order = modes[rnd % len(modes):] + modes[:rnd % len(modes)]
                    for mode in order:
                        res, extra = run_once(info["path"], w, mode, args.size, daemons)
                        runs.setdefault((info["path"], w, mode), []).append((res, extra))
            B.log("round %d/%d done" % (rnd + 1, args.repeats))
    finally:
        for d in daemons.values():
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    doc = {"size": args.size, "repeats": args.repeats, "cells": []}
    for w in WORKLOADS:
        print("\n%s (%s, %d iterations): ratio to none, median of %d rounds" % (
            w, WORKLOADS[w], args.size, args.repeats))
        print("%-16s %10s %9s %9s " % ("python", "allocs/it", "frees/it", "hits/it") +
              " ".join("%10s" % m for m in modes[1:]) + "   us/call(uprobe,uretprobe,native)")
        for info in infos:
            base = statistics.median(r[METRIC] for r, _ in runs[(info["path"], w, "none")])
            c = calls[(info["path"], w)]
            ncalls = c.get("alloc", 0) + c.get("free", 0)
            hits = [(e.get("native") or {}).get("probe_hits", 0)
                    for _, e in runs.get((info["path"], w, "native"), [])]
            nhits = statistics.median(hits) if hits else 0
            row, cells = [], {}
            for m in modes[1:]:
                med = statistics.median(r[METRIC] for r, _ in runs[(info["path"], w, m)])
                cells[m] = {"ratio": med / base, METRIC: med,
                            "native": [e.get("native") for _, e in runs[(info["path"], w, m)]][-1]}
                row.append("%9.2fx" % (med / base))
            per = ["%.2f" % ((cells[m][METRIC] - base) * 1e6 / ncalls) if ncalls and m in cells
                   else "-" for m in ("uprobe", "uretprobe")]
            # What native sampling adds to precise mode, per program run (call or sampled return).
            if nhits and "native" in cells:
                nbase = cells["precise"][METRIC] if "precise" in cells else base
                per.append("%.2f" % ((cells["native"][METRIC] - nbase) * 1e6 / nhits))
            else:
                per.append("-")
            print("%-16s %10.2f %9.2f %9.3f " % (info["label"], c.get("alloc", 0) / args.size,
                                                c.get("free", 0) / args.size, nhits / args.size) +
                  " ".join(row) + "   " + ",".join(per))
            doc["cells"].append({"python": info["label"], "workload": w, "none_" + METRIC: base,
                                 "allocs": c.get("alloc", 0), "frees": c.get("free", 0),
                                 "native_hits": nhits,
                                 "modes": cells})
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
