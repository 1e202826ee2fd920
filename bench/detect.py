#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Detection times: how long after the first `pyleakctl leaks` the expected suspect shows.

Usage: detect.py [--timeout S] [--interval S] [--scenarios A,B] [--json FILE] [PYTHON...]

For each scenario a fresh private pyleakd, started without options (so in its default mode,
whatever that is: the mode the attach used is read back from `top --json` and printed), runs
the scenario on every interpreter at once (Debian's python3.11 and the newest pyenv 3.8-3.13
by default). Once a target has printed its first ground-truth line (it is up), `pyleakctl
leaks -p PID --json` runs every --interval seconds; the first call attaches on demand. The
time is from that first call to the first answer that holds the expected suspect, or the
timeout:
- wordsegment: /work/shared/scenarios/wordsegment_leak.py, 178,758 str per task: `str` with
  score >= 0.5 and growth_per_min > 0.
- cipher-gc: cipher_cycle_leak.py (GC on, 2000 connections/s): `StreamCrypto` with
  freed_by_gc_fraction >= 0.9 (dies only in collections; no score asked).
- cipher-nogc: cipher_cycle_leak.py --gc-disabled: `StreamCrypto` with score >= 0.5.
- control: tests/programs/churn.py, a steady service: no leak, so a suspect with score >= 0.5
  is a false positive, and "none" within the timeout is the right answer.
- wordsegment-fixed (not in the default set): wordsegment_leak.py --fixed, another control.
The scores' threshold is the one the tests use (tests/test_leaks.py, test_wordsegment.py).
Each run records the scenario's ground-truth line at detection (tasks and words, or
connections), the suspect, the daemon's mode and the leaks window. The targets share two cores
with each other (and with whatever else runs): times include that contention.
"""
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import bench

SCENARIOS_DIR = os.path.normpath(os.path.join(bench.ROOT, "..", "shared", "scenarios"))
WORDSEGMENT = os.path.join(SCENARIOS_DIR, "wordsegment_leak.py")
CIPHER = os.path.join(SCENARIOS_DIR, "cipher_cycle_leak.py")
CHURN = os.path.join(bench.ROOT, "tests", "programs", "churn.py")
MIN_SCORE = 0.5


def is_str_growing(x):
    return x["type"] == "str" and x["score"] >= MIN_SCORE and x["growth_per_min"] > 0


def is_gc_only_cipher(x):
    return x["type"] == "StreamCrypto" and (x.get("freed_by_gc_fraction") or 0) >= 0.9


def is_cipher_leak(x):
    return x["type"] == "StreamCrypto" and x["score"] >= MIN_SCORE


def is_any_suspect(x):
    return x["score"] >= MIN_SCORE


# name: (argv after the interpreter, the suspect looked for, True if finding one is the leak
# detected and False if it is a false positive)
SCENARIOS = {
    "wordsegment": ([WORDSEGMENT, "--seconds", "0"], is_str_growing, True),
    "cipher-gc": ([CIPHER, "--seconds", "0"], is_gc_only_cipher, True),
    "cipher-nogc": ([CIPHER, "--seconds", "0", "--gc-disabled"], is_cipher_leak, True),
    "control": ([CHURN, "--seconds", "86400"], is_any_suspect, False),  # 0 would end it at once
    "wordsegment-fixed": ([WORDSEGMENT, "--seconds", "0", "--fixed"], is_any_suspect, False),
}
DEFAULT_SCENARIOS = ["wordsegment", "cipher-gc", "cipher-nogc", "control"]


def pump_lines(proc, lines):
    """Every JSON line the target prints, with its arrival time; None at EOF."""
    for line in proc.stdout:
        line = line.strip()
        if line.startswith("{"):
            try:
                lines.put((time.monotonic(), json.loads(line)))
            except ValueError:
                pass
    lines.put(None)


def watch(daemon, scenario, info, args, out):
    """One target: waits for its first ground-truth line, then polls `leaks` until the
    scenario's suspect shows or the timeout; fills out (a dict of the run's results)."""
    argv, match, _ = SCENARIOS[scenario]
    out.update({"scenario": scenario, "python": info["path"], "label": info["label"],
                "argv": [info["path"]] + argv, "polls": 0, "errors": []})
    t_spawn = time.monotonic()
    proc = subprocess.Popen([info["path"]] + argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    out["pid"] = proc.pid
    lines = queue.Queue()
    threading.Thread(target=pump_lines, args=(proc, lines), daemon=True).start()
    truth = {"first": None, "latest": None, "count": 0}

    def drain(block_s=0.0):
        """Takes the lines printed so far; False once the target has exited."""
        try:
            item = lines.get(timeout=block_s) if block_s else lines.get_nowait()
            while True:
                if item is None:
                    return False
                truth["latest"] = item[1]
                truth["first"] = truth["first"] or item
                truth["count"] += 1
                item = lines.get_nowait()
        except queue.Empty:
            return True

    try:
        while truth["first"] is None:
            if not drain(block_s=120):
                raise RuntimeError("exited before its first line: %s" % proc.stderr.read()[-500:])
            if time.monotonic() - t_spawn > 120:
                raise RuntimeError("no ground-truth line in 120 s")
        out["startup_s"] = truth["first"][0] - t_spawn
        out["truth_first"] = truth["first"][1]
        t0 = time.monotonic()
        while True:
            tick = time.monotonic()
            try:
                doc = daemon.ctl("leaks", "-p", str(proc.pid), timeout=120)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                out["errors"].append("%.1f s: %s" % (tick - t0, e))
                doc = None
            out["polls"] += 1
            if out["polls"] == 1:
                out["first_leaks_call_s"] = time.monotonic() - tick
            alive = drain()
            if doc is not None:
                out["window_s"] = doc.get("window_s")
                # What a run that times out saw last: why it missed.
                out["last_suspects"] = [{k: x.get(k) for k in (
                    "type", "score", "growth_per_min", "freed_by_gc_fraction")}
                    for x in doc["suspects"][:3]]
                hits = [(i, x) for i, x in enumerate(doc["suspects"]) if match(x)]
                if hits:
                    rank, x = hits[0]
                    out["seconds"] = time.monotonic() - t0
                    out["suspect"] = {k: x.get(k) for k in (
                        "type", "score", "live", "growth_per_min", "freed_by_gc_fraction",
                        "evidence")}
                    out["suspect"]["rank"] = rank + 1
                    break
            if not alive:
                raise RuntimeError("target exited: %s" % proc.stderr.read()[-500:])
            if time.monotonic() - t0 >= args.timeout:
                break
            time.sleep(max(0.0, tick + args.interval - time.monotonic()))
        out["watched_s"] = time.monotonic() - t0
        out["truth_at_end"] = truth["latest"]
        try:
            out["mode"] = daemon.ctl("top", "-p", str(proc.pid), "--once", "-n", "1")["mode"]
        except RuntimeError as e:
            out["errors"].append("top: %s" % e)
    except Exception as e:  # recorded; the other targets go on
        out["errors"].append(str(e))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        out["truth_lines"] = truth["count"]


def run_scenario(scenario, infos, args, tmp):
    daemon = bench.Daemon(tmp, scenario)
    runs = [{} for _ in infos]
    threads = [threading.Thread(target=watch, args=(daemon, scenario, info, args, out))
               for info, out in zip(infos, runs)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        tail = daemon.log_tail(20)
        daemon.stop()
    for r in runs:
        r["daemon_log_tail"] = tail
        bench.log("  %-17s %-14s %s" % (scenario, r["label"], fmt_cell(r)))
    return runs


def fmt_truth(doc):
    if not doc:
        return "-"
    if "words" in doc:
        return "task %d, %d words" % (doc["task"], doc["words"])
    if "connections" in doc:
        return "%d connections" % doc["connections"]
    if "requests" in doc:
        return "%d requests" % doc["requests"]
    return json.dumps(doc)


def fmt_cell(r):
    """Seconds to the suspect; for a control, "none" (right) or the false positive's time."""
    leak = SCENARIOS[r["scenario"]][2]
    if r.get("seconds") is not None:
        s = "%.0f s" % r["seconds"]
        return s if leak else "FP %s %s" % (s, r["suspect"]["type"])
    if r.get("watched_s") is None:
        return "ERROR"
    return ("> %.0f s" if leak else "none %.0f s") % r["watched_s"]


def print_report(doc):
    labels = [i["label"] for i in doc["pythons"]]
    modes = sorted({r.get("mode") or "?" for r in doc["runs"]})
    print()
    print("Detection time: seconds from the first `leaks` (which attaches) to the expected "
          "suspect; polls every %g s, timeout %g s; daemon default mode, attaches used: %s" % (
              doc["interval"], doc["timeout"], ", ".join(modes)))
    head = "%-18s" % "scenario" + "".join(" %14s" % lab for lab in labels)
    print(head)
    print("-" * len(head))
    for sc in doc["scenarios"]:
        cells = {r["label"]: r for r in doc["runs"] if r["scenario"] == sc}
        print("%-18s" % sc + "".join(" %14s" % (fmt_cell(cells[lab]) if lab in cells else "-")
                                     for lab in labels))
    print("(> T: not found within the timeout; control: none = no suspect with score >= %.1f, "
          "FP = a false positive)" % MIN_SCORE)
    print()
    print("Per run: mode, the suspect (rank, score, freed by GC), ground truth at the end")
    for r in doc["runs"]:
        x = r.get("suspect")
        missed = "" if x or not r.get("last_suspects") else "; last top 3: " + ", ".join(
            "%s %.2f" % (y["type"], y["score"]) for y in r["last_suspects"])
        print("  %-17s %-14s %-8s %-44s %s%s" % (
            r["scenario"], r["label"], r.get("mode") or "?",
            "%s #%d score %.2f gc %.2f %+.0f/min" % (
                x["type"], x["rank"], x["score"], x.get("freed_by_gc_fraction") or 0,
                x.get("growth_per_min") or 0) if x else "-",
            fmt_truth(r.get("truth_at_end")) + missed,
            "; errors: %s" % " | ".join(r["errors"][:3]) if r["errors"] else ""))


def main():
    ap = bench.arg_parser(__doc__, "")
    ap.add_argument("--timeout", type=float, default=120, help="seconds (default 120)")
    ap.add_argument("--interval", type=float, default=2, help="seconds between polls (default 2)")
    ap.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS),
                    help="comma-separated, of: %s" % ", ".join(SCENARIOS))
    ap.add_argument("--json", default=os.path.join(bench.BENCH, "results", "detect.json"))
    args = ap.parse_args()
    scenarios = args.scenarios.split(",")
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        sys.exit("detect.py: unknown scenario %s; known: %s" % (", ".join(unknown),
                                                                 ", ".join(SCENARIOS)))
    if os.geteuid():
        sys.exit("detect.py: needs root (BPF)")
    for path in (bench.PYLEAKD, bench.PYLEAKCTL, WORDSEGMENT, CIPHER, CHURN):
        if not os.path.exists(path):
            sys.exit("detect.py: %s is missing (make builds the binaries)" % path)
    infos = [bench.python_info(p) for p in (args.pythons or bench.default_pythons())]

    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="pyleak-detect-")
    build = bench.snapshot_binaries(tmp)
    bench.log("pyleak build: git %s%s; %d interpreters x %s, timeout %g s" % (
        build["git_head"], " + uncommitted changes" if build["git_dirty"] else "", len(infos),
        ",".join(scenarios), args.timeout))
    doc = {"time": time.time(), "build": build, "timeout": args.timeout,
           "interval": args.interval, "min_score": MIN_SCORE, "scenarios": scenarios,
           "pythons": infos, "runs": [], "loadavg_start": os.getloadavg()}
    for sc in scenarios:
        doc["runs"] += run_scenario(sc, infos, args, tmp)
    doc["seconds"] = time.monotonic() - t_start
    doc["loadavg_end"] = os.getloadavg()
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=2)
    print_report(doc)
    print("\npyleak build: git %s%s; %.0f s in all; load average %.1f at start, %.1f at end "
          "(%d CPUs); JSON in %s" % (
              build["git_head"], " + uncommitted changes in daemon/, bpf/ or cli/"
              if build["git_dirty"] else "", doc["seconds"], doc["loadavg_start"][0],
              doc["loadavg_end"][0], os.cpu_count(), os.path.relpath(args.json)))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
