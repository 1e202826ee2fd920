#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""How long a target stays probed after `pyleakctl detach` returns.

Usage: detach.py [--repeats N] [--modes precise,sampled] [PYTHON...]
(default: Debian's /usr/bin/python3.11 and the newest pyenv 3.12)

Per interpreter, mode and repeat: a fresh pyleakd, a target running bench/alloc_loop.py's
handler for ever, attached; the int3s the probes put in its text are found by reading its
interpreter's executable mappings through /proc/PID/mem before and after the attach; then
`detach` is timed and those bytes are polled (every 2 ms) until none holds an int3. Printed:
the attach and detach calls' wall time, the reply's detach_s and pending_s, how many int3s,
and when the last one went, in seconds after the reply (negative or zero: before it), for all
of them and for the uprobes `status` lists in probe_addresses (the rest are libbpf's USDT
probes). Needs root and a built ./pyleakd and ./pyleakctl in the project root.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = ("import sys; sys.path.insert(0, %r)\n"
          "from alloc_loop import handle\n"
          "cache, i = {}, 0\n"
          "while True:\n"
          "    handle(i, cache); i += 1\n") % os.path.join(ROOT, "bench")
INT3 = 0xCC


def ctl(env, *args):
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(ROOT, "pyleakctl")] + list(args) + ["--json"],
                       capture_output=True, text=True, env=env)
    return time.monotonic() - t0, time.monotonic(), json.loads(r.stdout)


def text_ranges(pid):
    """The interpreter's executable mappings (python binary or libpython)."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            if fields[1] == "r-xp" and len(fields) > 5 and "python" in os.path.basename(fields[5]):
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                out.append((lo, hi))
    return out


def read_text(pid, ranges):
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        chunks = []
        for lo, hi in ranges:
            mem.seek(lo)
            chunks.append(mem.read(hi - lo))
        return chunks


def one_run(python, mode):
    with tempfile.TemporaryDirectory(prefix="pyleak-detach-") as tmp:
        sock = os.path.join(tmp, "s")
        env = dict(os.environ, PYLEAKD_SOCKET=sock)
        daemon = subprocess.Popen([os.path.join(ROOT, "pyleakd"), "--socket", sock],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = subprocess.Popen([python, "-c", TARGET])
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if "version" in ctl(env, "status")[2]:
                        break
                except ValueError:
                    pass
                time.sleep(0.05)
            time.sleep(0.5)
            ranges = text_ranges(target.pid)
            before = read_text(target.pid, ranges)
            attach_s, _, _ = ctl(env, "attach", "-p", str(target.pid), "--mode", mode)
            time.sleep(1.5)  # heap types' deallocs get hooked meanwhile
            after = read_text(target.pid, ranges)
            int3s = [lo + i for (lo, _), b, a in zip(ranges, before, after)
                     for i in range(len(b)) if b[i] != a[i] and a[i] == INT3]
            status = ctl(env, "status")[2]["targets"][0]
            detach_call_s, replied, reply = ctl(env, "detach", "-p", str(target.pid))
            gone = {}
            with open("/proc/%d/mem" % target.pid, "rb", buffering=0) as mem:
                while len(gone) < len(int3s) and time.monotonic() < replied + 10:
                    now = time.monotonic()
                    for a in int3s:
                        if a not in gone:
                            mem.seek(a)
                            if mem.read(1)[0] != INT3:
                                gone[a] = now - replied
                    time.sleep(0.002)
        finally:
            target.kill()
            target.wait()
            daemon.terminate()
            daemon.wait()
    uprobes = [gone.get(a, float("inf")) for a in status.get("probe_addresses", []) if a in int3s]
    return {"attach_s": attach_s, "detach_call_s": detach_call_s,
            "detach_s": reply.get("detach_s"), "pending_s": reply.get("pending_s", 0.0),
            "int3s": len(int3s),
            "last_gone_s": max([gone.get(a, float("inf")) for a in int3s] or [0.0]),
            "uprobes_last_gone_s": max(uprobes) if uprobes else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--modes", default="precise,sampled")
    ap.add_argument("pythons", nargs="*")
    args = ap.parse_args()
    pythons = args.pythons or ["/usr/bin/python3.11"] + sorted(
        glob.glob(os.path.expanduser("~/.pyenv/versions/3.12.*/bin/python3.12")))[-1:]
    for python in pythons:
        for mode in args.modes.split(","):
            runs = [one_run(python, mode) for _ in range(args.repeats)]
            print(json.dumps({"python": python, "mode": mode, "runs": runs}))
            med = {k: statistics.median(r[k] for r in runs)
                   for k in ("attach_s", "detach_call_s", "int3s", "last_gone_s")}
            up = [r["uprobes_last_gone_s"] for r in runs if r["uprobes_last_gone_s"] is not None]
            print("%-40s %-8s attach %.2f s  detach %.3f s  int3s %d  last int3 gone %+.3f s "
                  "after the reply, last uprobe's %s (median of %d)" % (
                      python, mode, med["attach_s"], med["detach_call_s"], med["int3s"],
                      med["last_gone_s"], "%+.3f s" % statistics.median(up) if up else "-",
                      len(runs)), file=sys.stderr)


if __name__ == "__main__":
    main()
