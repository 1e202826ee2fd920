# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Acceptance: `pyleakctl report` writes one self-contained HTML page that a browser draws offline.

A leaking program (the wordsegment scenario) is tracked until `leaks` names str; the page is
written, checked for anything it would fetch, and rendered by Debian's headless chromium
(in the Makefile's APT_PACKAGES; the test skips only when it cannot be installed): the DOM must
show the suspect, its evidence, what holds it, its site and the GC numbers, the charts must
have drawn their series, and a screenshot must not be blank.
"""
import html
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import zlib

import pytest

from conftest import ROOT, SCENARIOS

SCENARIO = os.path.join(SCENARIOS, "wordsegment_leak.py")
PYTHON = "/usr/bin/python3.11"
WINDOW = 30	# seconds judged: a trend needs 12 samples (2 s apart) in it; short, for a short test
WAIT = 75	# at most, for `leaks` to name str


def _chromium():
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium():
    path = _chromium()
    if path:
        return path
    if os.geteuid() != 0:
        pytest.skip("chromium missing and not root: run `make deps` as root")
    r = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "deps"],
                       capture_output=True, text=True, timeout=1200)
    path = _chromium()
    if not path:
        pytest.skip("chromium: `make deps` could not install it (network down?): exit %s %s" %
                    (r.returncode, (r.stdout + r.stderr)[-500:]))
    return path


def browse(chromium, page, *args):
    """Runs headless chromium on the file, offline in all but name; returns its stdout."""
    with tempfile.TemporaryDirectory(prefix="pyleak-chromium-") as profile:
        r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-quic", "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            "--user-data-dir=" + profile, "--virtual-time-budget=5000"] +
                           list(args) + ["file://" + page],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def page_data(text):
    """The JSON the page carries, as its script reads it."""
    m = re.search(r'<script type="application/json" id="pyleak-data">(.*?)</script>', text, re.S)
    assert m, "no data element"
    assert "<" not in m.group(1)
    return json.loads(m.group(1))


def visible_text(dom):
    """The DOM's text outside script and style elements, entities decoded."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def png_pixels(path):
    """The distinct byte values of a PNG's decompressed image data (filter bytes included)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return set(zlib.decompress(idat))


def wait_suspect(daemon, pid, type_name):
    deadline = time.time() + WAIT
    while time.time() < deadline:
        doc = daemon.ok("leaks", "-p", str(pid), "--window", str(WINDOW))
        names = [s["type"] for s in doc["suspects"] if s["score"] >= 0.5]
        if type_name in names:
            return doc
        time.sleep(2)
    raise AssertionError("leaks named no %s in %d s: %s" % (type_name, WAIT, doc))


def test_report(daemon, target_factory, chromium, tmp_path):
    if not os.path.exists(SCENARIO) or not os.path.exists(PYTHON):
        pytest.skip("needs %s and %s" % (PYTHON, SCENARIO))
    target = target_factory([PYTHON, SCENARIO, "--seconds", "0", "--interval", "2"])
    target.read()
    daemon.ok("attach", "-p", str(target.pid), "--mode", "precise", "--force")
    wait_suspect(daemon, target.pid, "str")

    page = str(tmp_path / "report.html")
    code, out, err = daemon.ctl("report", "-p", str(target.pid), "--window", str(WINDOW), "-o", page)
    assert code == 0, err
    assert "written to %s" % page in out and "str" in out
    text = open(page, encoding="utf-8").read()

    # Self-contained: nothing to fetch, and a policy that forbids fetching anyway.
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z]+:)?//""", text, re.I)
    assert not re.search(r"""url\(\s*["']?\s*(?:https?:)?//""", text, re.I)
    assert "default-src 'none'" in text
    assert "Chart.js v4" in text	# inlined, not linked

    data = page_data(text)
    suspect = next(s for s in data["leaks"]["suspects"] if s["type"] == "str")
    row = next(r for r in data["top"]["types"] if r["type"] == "str")
    assert len(row["history"]) >= 3 and all(ms <= 0 for ms, _ in row["history"])

    dom = browse(chromium, page, "--dump-dom")
    shown = re.sub(r"\s+", " ", visible_text(dom))
    assert "could not be drawn" not in shown, shown[:2000]
    assert 'data-type="str"' in dom
    assert " ".join(suspect["evidence"].split()) in shown
    assert "What holds it" in shown
    if suspect.get("held_by", {}).get("grown_at"):
        at = suspect["held_by"]["grown_at"]
        assert "%s (%s:%d)" % (at["function"], at["file"], at["line"]) in shown
    sites = (data["sites"].get("str") or {}).get("sites") or suspect["sites"]
    assert sites and sites[0]["file"].endswith("wordsegment_leak.py")
    assert "%s:%d" % (sites[0]["file"], sites[0]["line"]) in shown
    assert 'id="flame"' in dom and "all sampled sites" in shown
    gc = re.search(r'<div id="gc">(.*?)</div>', dom, re.S)
    assert gc, "no GC table"
    gc_text = visible_text(gc.group(1))
    for gen, v in data["top"]["gc"].items():
        assert "{:,}".format(v["runs"]) in gc_text and "{:,}".format(v["collected"]) in gc_text

    # Both charts drew, the suspects' one a series per suspect with a history.
    assert dom.count("<canvas") == 2
    assert 'data-charts-drawn="2"' in dom
    drawn = [int(n) for n in re.findall(r'data-chart-drawn="(\d+)"', dom)]
    assert len(drawn) == 2 and min(drawn) >= 1, drawn

    shot = str(tmp_path / "report.png")
    browse(chromium, page, "--screenshot=" + shot, "--window-size=1280,2000")
    assert len(png_pixels(shot)) > 32, "blank screenshot"


def test_report_to_stdout(daemon, target_factory):
    target = target_factory([PYTHON if os.path.exists(PYTHON) else "python3", "-c",
                             "import time; print('{}', flush=True); time.sleep(60)"])
    target.read()
    code, out, err = daemon.ctl("report", "-p", str(target.pid), "-o", "-")
    assert code == 0, err
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    assert page_data(out)["pid"] == target.pid
    code, doc = daemon.json("report", "-p", str(target.pid), "-o", "-")
    assert code != 0 and doc["error"]["code"] == "bad_request"
