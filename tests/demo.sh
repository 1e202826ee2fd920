#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# `make run`: a private pyleakd, the wordsegment leak under Debian's python3.11, and
# `pyleakctl top` showing str growing by 178,758 per task.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON_DEMO:-/usr/bin/python3.11}
scenario=../shared/scenarios/wordsegment_leak.py
tmp=$(mktemp -d /tmp/pyleak-demo.XXXXXX)
export PYLEAKD_SOCKET=$tmp/pyleakd.sock
cleanup() {
	[ -n "${target:-}" ] && kill "$target" 2>/dev/null || true
	[ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

./pyleakd --log-level warn 2>"$tmp/pyleakd.log" &
daemon=$!
for _ in $(seq 100); do ./pyleakctl status >/dev/null 2>&1 && break; sleep 0.05; done

"$python" "$scenario" --seconds 0 --interval 2 --warmup 1 >"$tmp/truth.log" &
target=$!
echo "pyleakd pid $daemon; $python $scenario pid $target"
for _ in $(seq 50); do ./pyleakctl attach -p "$target" 2>/dev/null && break; sleep 0.1; done

for round in 1 2 3 4; do
	sleep 2
	echo
	echo "--- after task $(tail -n1 "$tmp/truth.log" | sed 's/.*"task": \([0-9]*\).*/\1/') (truth: $(tail -n1 "$tmp/truth.log"))"
	./pyleakctl top -p "$target" --once -n 8
done
echo
echo "str grows by ~178,758 per task: Segmenter.load() appends the word list again on every call."
echo "Watch it live: PYLEAKD_SOCKET=... pyleakctl top -p PID (this demo's daemon stops now)."
