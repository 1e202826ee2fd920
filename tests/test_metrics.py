# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""The Prometheus endpoint (metrics_listen): Debian's real prometheus scrapes a real daemon
tracking real Python processes and answers queries that match `top --json`; promtool checks
the text; hostile type names stay one escaped label; scrapers that read slowly or not at all
never stall the daemon's loop."""
import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import pytest

from conftest import PROGRAMS, PYLEAKD, SCENARIOS, Daemon, any_python

KNOWN_COUNTS = os.path.join(PROGRAMS, "known_counts.py")
MANY_TYPES = os.path.join(PROGRAMS, "many_types.py")
WORDSEG = os.path.join(SCENARIOS, "wordsegment_leak.py")
SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
# pyleakd's connection limit and idle timeout (daemon/metrics_http.h)
HTTP_CONNECTIONS = 16
HTTP_TIMEOUT_S = 10
HTTP_DEADLINE_S = 60   # metrics_http.h METRICS_HTTP_DEADLINE_S
RENDER_MIN_S = 5       # metrics.c


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_labels(text):
    """{name: value} of an exposition line's label text, escapes undone."""
    labels, i = {}, 0
    while i < len(text):
        eq = text.index("=", i)
        name = text[i:eq]
        assert text[eq + 1] == '"', text
        i, value = eq + 2, []
        while text[i] != '"':
            if text[i] == "\\":
                value.append(ESCAPES[text[i + 1]])
                i += 2
            else:
                value.append(text[i])
                i += 1
        labels[name] = "".join(value)
        i += 1
        if i < len(text):
            assert text[i] == ",", text
            i += 1
    return labels


def parse(text):
    """[(name, {labels}, value)] of an exposition text (comments checked, then skipped)."""
    out = []
    for line in text.splitlines():
        if line.startswith("# "):
            assert line.split(" ")[1] in ("HELP", "TYPE"), line
            continue
        m = SERIES.match(line)
        assert m, "not an exposition line: %r" % line
        out.append((m.group(1), parse_labels(m.group(2) or ""), float(m.group(3))))
    return out


def series(text, name, **labels):
    return [(l, v) for n, l, v in parse(text)
            if n == name and all(l.get(k) == w for k, w in labels.items())]


def request(port, path="/metrics", method="GET", body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        c.close()


def scrape(port):
    code, headers, text = request(port)
    assert code == 200, (code, text)
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return text


def wait_for(what, fn, timeout=120, every=1.0):
    """fn()'s first true value, polled until timeout (a loaded 2-core machine is slow)."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(every)


@contextlib.contextmanager
def metrics_daemon(*extra, config=""):
    if os.geteuid() != 0:
        pytest.skip("needs root (BPF)")
    tmp = tempfile.mkdtemp(prefix="pyleak-metrics-")
    port = free_port()
    cfg = os.path.join(tmp, "pyleakd.conf")
    with open(cfg, "w") as f:
        f.write("metrics_listen = 127.0.0.1:%d\n%s" % (port, config))
    d = Daemon(tmp, "--config", cfg, "--sample-interval", "1", *extra)
    d.port = port
    try:
        yield d
    finally:
        code = d.stop()
        log = d.log_text() if not d.log.closed else ""
        shutil.rmtree(tmp)
        assert code == 0, log


@contextlib.contextmanager
def prometheus(target_port):
    """Debian's prometheus scraping 127.0.0.1:target_port every second; yields query(q)."""
    if not shutil.which("prometheus"):
        pytest.skip("prometheus not installed: apt-get install prometheus (make deps)")
    tmp = tempfile.mkdtemp(prefix="pyleak-prometheus-")
    port = free_port()
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: pyleak\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % target_port)
    log = open(os.path.join(tmp, "prometheus.log"), "w+")
    proc = subprocess.Popen(["prometheus", "--config.file", cfg,
                             "--storage.tsdb.path", os.path.join(tmp, "data"),
                             "--web.listen-address", "127.0.0.1:%d" % port],
                            stdout=log, stderr=subprocess.STDOUT)
    base = "http://127.0.0.1:%d" % port

    def get(path):
        with urllib.request.urlopen(base + path, timeout=30) as r:
            return json.load(r)

    def query(q):
        doc = get("/api/v1/query?" + urllib.parse.urlencode({"query": q}))
        assert doc["status"] == "success", doc
        return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]

    def ready():
        assert proc.poll() is None, "prometheus exited: " + open(log.name).read()
        try:
            with urllib.request.urlopen(base + "/-/ready", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_for("prometheus to be ready", ready, timeout=60, every=0.2)
        query.get = get
        yield query
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp)


def top_live(d, pid):
    doc = d.ok("top", "-p", str(pid), "-n", "0")
    return {r["type"]: r["live"] for r in doc["types"]}, doc


def test_prometheus_query_matches_top(target_factory):
    """Prometheus's answer for a real process's str and Foo counts is what `top --json` says
    (str within 1%: the interpreter's own strings may change between the two reads; Foo, a
    class of known_counts.py, exactly its 100,000); a hostile type name is one escaped label."""
    python = any_python()
    with metrics_daemon() as d:
        known = target_factory([python, KNOWN_COUNTS])
        known.read()
        assert known.send("create")["held"]["Foo"] == 100000
        many = target_factory([python, MANY_TYPES, "30"])
        counts = many.read()["counts"]
        for t in (known, many):
            d.ok("attach", "-p", str(t.pid))
        wait_for("Foo in top", lambda: top_live(d, known.pid)[0].get("Foo") == 100000)
        with prometheus(d.port) as query:
            pid = str(known.pid)
            got = wait_for("str of pid %s in prometheus" % pid, lambda: query(
                'pyleak_live_objects{py_type="str",pid="%s"}' % pid))
            assert len(got) == 1, got
            labels, value = got[0]
            live, doc = top_live(d, known.pid)
            assert abs(value - live["str"]) <= 0.01 * live["str"], (value, live["str"])
            assert value >= 200000
            assert labels["exe"] == os.path.realpath(python) or labels["exe"] == python
            assert labels["job"] == "pyleak"
            foo = query('pyleak_live_objects{py_type="Foo",pid="%s"}' % pid)
            assert [v for _, v in foo] == [100000.0]
            info = query('pyleak_target_info{pid="%s"}' % pid)
            assert len(info) == 1 and info[0][1] == 1.0, info
            assert info[0][0]["python"] == doc["python"]
            assert info[0][0]["mode"] == doc["mode"] == "sampled"
            gens = query('pyleak_gc_collections_total{pid="%s"}' % pid)
            assert sorted(l["generation"] for l, _ in gens)[:3] == ["0", "1", "2"]
            # the names a target chooses arrive as they are, one series each
            for name in ('we"ird', "back\\slash", "new\nline"):
                q = 'pyleak_live_objects{py_type=%s,pid="%d"}' % (json.dumps(name), many.pid)
                got = wait_for("%r in prometheus" % name, lambda: query(q), timeout=60)
                assert [v for _, v in got] == [float(counts[name])], (name, got)
            assert [v for _, v in query("pyleak_targets_tracked")] == [2.0]
            cpu = query("pyleak_daemon_cpu_seconds_total")
            assert len(cpu) == 1 and cpu[0][1] > 0
            rss = query("pyleak_daemon_resident_bytes")
            assert len(rss) == 1 and rss[0][1] > 1 << 20
            # polled: on a loaded machine one scrape may pass its 1 s timeout; every scrape
            # failing would not end
            def healthy():
                health = query.get("/api/v1/targets")["data"]["activeTargets"]
                return [(t["health"], t["lastError"]) for t in health] == [("up", "")]
            wait_for("prometheus's last scrape of pyleakd to be clean", healthy, timeout=60,
                     every=0.5)
            print("prometheus: str %d (top %d), Foo %d" % (value, live["str"], foo[0][1]))


def test_leak_score_is_the_leaks_ranking(target_factory):
    """The wordsegment leak's str gets the pyleak_leak_score that `leaks` gives it (within
    0.25: the two are read at different samples of a rising score), and the fixed twin none."""
    python = any_python()
    with metrics_daemon() as d:
        leak = target_factory([python, WORDSEG, "--seconds", "0", "--interval", "4"])
        fixed = target_factory([python, WORDSEG, "--seconds", "0", "--interval", "4", "--fixed"])
        for t in (leak, fixed):
            t.read()
            d.ok("attach", "-p", str(t.pid))

        def scored():
            got = series(scrape(d.port), "pyleak_leak_score", pid=str(leak.pid), py_type="str")
            return got if got and got[0][1] >= 0.5 else None

        got = wait_for("a leak score for str", scored, timeout=180, every=2)
        suspects = d.ok("leaks", "-p", str(leak.pid))["suspects"]
        mine = [s["score"] for s in suspects if s["type"] == "str"]
        assert mine and mine[0] >= 0.5, suspects
        assert abs(got[0][1] - mine[0]) <= 0.25, (got, mine)
        text = scrape(d.port)
        fixed_str = series(text, "pyleak_leak_score", pid=str(fixed.pid), py_type="str")
        assert not fixed_str, fixed_str
        print("leak score of str: metrics %.3f, leaks %.3f" % (got[0][1], mine[0]))


def test_text_promtool_cardinality_escaping(target_factory):
    """promtool accepts a scrape; a process shows its top N types and one "other" that sums the
    rest (a type named "other" included); escaped names parse back to the truth."""
    python = any_python()
    if not shutil.which("promtool"):
        pytest.skip("promtool not installed: apt-get install prometheus (make deps)")
    with metrics_daemon(config="metrics_top_types = 5\n") as d:
        many = target_factory([python, MANY_TYPES, "40"])
        counts = many.read()["counts"]
        d.ok("attach", "-p", str(many.pid))
        pid = str(many.pid)

        def settled():
            text = scrape(d.port)
            got = {l["py_type"]: v for l, v in series(text, "pyleak_live_objects", pid=pid)}
            return (text, got) if got.get('we"ird') == counts['we"ird'] else None

        text, got = wait_for("the hostile types in a scrape", settled)
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        # top 5 and "other"; the real type named "other" is summed into it
        assert len(got) == 6, got
        assert "other" in got and got["other"] >= 40 * 300 + counts["other"]
        for name in ("back\\slash", "new\nline"):
            assert got[name] == counts[name], (name, got)
        live, _ = top_live(d, many.pid)
        # every row is counted once: the series sum to what top lists (1%: two reads)
        assert abs(sum(got.values()) - sum(live.values())) <= 0.01 * sum(live.values())
        assert len(series(text, "pyleak_live_bytes", pid=pid)) <= 6
        info = series(text, "pyleak_target_info", pid=pid)
        assert len(info) == 1 and info[0][0]["unit"] == "" and info[0][0]["container"] == ""
        st = d.ok("status")["metrics"]
        assert st["top_types"] == 5 and st["port"] == d.port and st["series_dropped"] == 0
        assert st["text_bytes"] > 0 and st["scrapes"] >= 1


def test_http_paths_and_methods():
    """/metrics by GET or HEAD only; anything else is 404 or 405."""
    with metrics_daemon() as d:
        code, headers, body = request(d.port, "/")
        assert code == 404 and "/metrics" in body
        code, headers, body = request(d.port, "/metrics/x")
        assert code == 404
        code, headers, body = request(d.port, "/metrics", "POST", body="x" * 100000)
        assert code == 405 and headers["Allow"] == "GET, HEAD"
        code, headers, body = request(d.port, "/metrics", "DELETE")
        assert code == 405
        code, headers, body = request(d.port, "/metrics", "HEAD")
        assert code == 200 and body == "" and int(headers["Content-Length"]) > 100
        text = scrape(d.port)
        assert series(text, "pyleak_targets_tracked") == [({}, 0.0)]
        assert d.ok("status")["metrics"]["requests_refused"] == 4
        code, out, err = d.ctl("status")
        assert code == 0 and "metrics  http://127.0.0.1:%d/metrics  " % d.port in out, out


def test_bad_listen_addresses():
    """A bad or busy metrics_listen stops the daemon at start, saying why."""
    with tempfile.TemporaryDirectory(prefix="pyleak-metrics-") as tmp:
        sock = os.path.join(tmp, "s.sock")
        r = subprocess.run([PYLEAKD, "--socket", sock, "--metrics-listen", "localhost:9464"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "metrics_listen must be IPv4:PORT or [IPv6]:PORT" in r.stderr
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            r = subprocess.run([PYLEAKD, "--socket", sock, "--metrics-listen",
                                "127.0.0.1:%d" % busy.getsockname()[1]],
                               capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "cannot listen" in r.stderr, r.stderr
        assert not os.path.exists(sock)


def test_ipv6_listen():
    """[::1]:PORT serves over IPv6."""
    if not socket.has_ipv6 or not os.path.exists("/proc/net/if_inet6"):
        pytest.skip("no IPv6 on this machine")
    port = free_port()
    with metrics_daemon("--metrics-listen", "[::1]:%d" % port) as d:
        c = http.client.HTTPConnection("::1", port, timeout=30)
        c.request("GET", "/metrics")
        r = c.getresponse()
        assert r.status == 200 and b"pyleak_targets_tracked 0" in r.read()
        c.close()
        assert d.ok("status")["metrics"]["listen"] == "[::1]:%d" % port


class SlowReader(threading.Thread):
    """Asks for /metrics with a tiny receive buffer, then reads 1 byte a second."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.got = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(1.0):
            b = self.sock.recv(1)
            if not b:
                return
            self.got += 1

    def close(self):
        self.stop.set()
        self.join()
        self.sock.close()


def test_slow_scrapers_never_stall_the_loop(target_factory):
    """Scrapers that read 1 byte a second, and more connections than the limit that send
    nothing: `status` keeps answering, the loop keeps rendering snapshots, the slow readers
    keep getting bytes, the idle ones are cut off after the timeout, and scraping works again
    once they are gone."""
    python = any_python()
    with metrics_daemon(config="metrics_top_types = 1000\n") as d:
        many = target_factory([python, MANY_TYPES, "1200"])
        many.read()
        d.ok("attach", "-p", str(many.pid))

        def full():
            text = scrape(d.port)
            n = len(series(text, "pyleak_live_objects", pid=str(many.pid)))
            return text if n == 1001 else None	# the top 1000 and "other"

        # a text beyond the send buffer a connection gets (64 KiB, doubled by the kernel): a
        # slow reader holds the server mid-response
        text = wait_for("1000 types of many_types.py in a scrape", full, timeout=180)
        assert len(text) > 150000, len(text)
        slow = [SlowReader(d.port) for _ in range(6)]
        for s in slow:
            s.start()
        # each holds the server mid-response (the text is far beyond the send buffer it
        # gets), and yet a scrape beside them is whole
        time.sleep(2)
        assert len(scrape(d.port)) > 150000
        assert d.ok("status")["metrics"]["connections"] >= len(slow)
        idle = []
        for _ in range(3 * HTTP_CONNECTIONS):
            s = socket.socket()
            s.settimeout(60)
            try:
                s.connect(("127.0.0.1", d.port))
            except OSError:
                s.close()	# refused at the limit: what a limit does
                continue
            idle.append(s)
        snapshots0 = d.ok("status")["metrics"]["snapshots"]
        worst = 0.0
        deadline = time.time() + 2 * HTTP_TIMEOUT_S
        while time.time() < deadline:
            t0 = time.time()
            st = d.ok("status", timeout=30)
            worst = max(worst, time.time() - t0)
            assert st["metrics"]["connections"] <= HTTP_CONNECTIONS
            time.sleep(0.5)
        # liveness (not speed): a stalled loop would not answer at all in 30 s; 5 s is
        # generous on a loaded 2-core machine
        assert worst < 5.0, worst
        assert all(s.got >= 5 for s in slow), [s.got for s in slow]
        # the first idle connection was accepted, sent nothing, and was cut off
        idle[0].settimeout(3 * HTTP_TIMEOUT_S)
        assert idle[0].recv(1) == b""
        for s in idle:
            s.close()
        for s in slow:
            s.close()
        after = wait_for("a scrape after the flood", lambda: scrape(d.port), timeout=60)
        assert series(after, "pyleak_targets_tracked") == [({}, 1.0)]
        # the loop still renders a snapshot after scrapes (progress, not a rate)
        wait_for("3 snapshots after the flood", lambda: scrape(d.port) and
                 d.ok("status")["metrics"]["snapshots"] >= snapshots0 + 3, timeout=120)
        print("text %d bytes; status answered in %.3f s at worst; %d idle connections "
              "opened" % (len(text), worst, len(idle)))


def test_snapshots_rendered_for_scrapes_only(target_factory):
    """Nobody scraping: the loop renders no snapshot (it walks every row of every target);
    one scrape: exactly one more, at a sample tick after it."""
    python = any_python()
    with metrics_daemon() as d:
        many = target_factory([python, MANY_TYPES, "30"])
        many.read()
        d.ok("attach", "-p", str(many.pid))

        def idle_for(seconds):
            """status's metrics once the last snapshot is that old (sample ticks went by)."""
            return wait_for("a snapshot %ss old" % seconds, lambda: (
                lambda m: m if m["snapshot_age_s"] >= seconds else None)(
                    d.ok("status")["metrics"]), timeout=120, every=0.5)

        # ticks every second, a render allowed every RENDER_MIN_S: 3 s more of ticks
        before = idle_for(RENDER_MIN_S + 3)
        again = idle_for(before["snapshot_age_s"] + 3)
        assert again["snapshots"] == before["snapshots"], (before, again)
        assert again["scrapes"] == before["scrapes"] == 0
        scrape(d.port)
        wait_for("a snapshot after the scrape", lambda: d.ok("status")["metrics"]["snapshots"] >
                 before["snapshots"], timeout=120, every=0.2)
        after = idle_for(RENDER_MIN_S + 3)
        assert after["snapshots"] == before["snapshots"] + 1, (before, after)
        # the new snapshot has the target (the first one, at start, had none)
        text = wait_for("the target in a scrape", lambda: (
            lambda t: t if series(t, "pyleak_target_info", pid=str(many.pid)) else None)(
                scrape(d.port)), timeout=60)
        assert series(text, "pyleak_targets_tracked") == [({}, 1.0)]


class BurstReader(SlowReader):
    """Asks for /metrics with a tiny receive buffer, then reads 48 KiB every 6 s: the
    server's send buffer (128 KiB) drains by a third at each burst, so the server keeps
    writing (no idle timeout), slowly (a big receive buffer would take loopback's 64 KiB
    segments and open its window only every other burst)."""

    def __init__(self, port):
        super().__init__(port)
        self.sock.settimeout(1.0)
        self.eof = threading.Event()

    def run(self):
        while not self.stop.wait(6.0):
            want = 48 << 10
            while want > 0:
                try:
                    b = self.sock.recv(want)
                except socket.timeout:
                    break
                if not b:
                    self.eof.set()
                    return
                self.got += len(b)
                want -= len(b)


def test_slow_response_cut_at_deadline(target_factory):
    """A reader slow enough to take minutes over a text, yet never idle: HTTP_DEADLINE_S after
    its response started it is cut off (the text it gets is short of the whole) and the older
    snapshot it kept is let go."""
    python = any_python()
    with metrics_daemon(config="metrics_top_types = 1000\n") as d:
        many = [target_factory([python, MANY_TYPES, "1200"]) for _ in range(4)]
        for t in many:
            t.read()
            d.ok("attach", "-p", str(t.pid))

        def full():
            text = scrape(d.port)
            return text if all(len(series(text, "pyleak_live_objects", pid=str(t.pid))) == 1001
                               for t in many) else None
        text = wait_for("1000 types of 4 many_types.py in a scrape", full, timeout=300)
        # more than the reader takes in HTTP_DEADLINE_S (480 KiB) plus what the buffers hold
        assert len(text) > 700000, len(text)
        slow = BurstReader(d.port)
        started = time.monotonic()
        slow.start()
        try:
            # newer snapshots (scrapes ask for them): the slow response keeps its older one
            st = wait_for("an older snapshot kept by the slow response", lambda: (
                lambda m: m if scrape(d.port) and m["pinned_bytes"] > 500000 else None)(
                    d.ok("status")["metrics"]), timeout=120)
            assert st["pinned_bytes"] <= st["pinned_max_bytes"] and st["responses_cut"] == 0
            assert time.monotonic() - started < HTTP_DEADLINE_S, "too slow to observe"
            st = wait_for("the slow response cut off", lambda: (
                lambda m: m if scrape(d.port) and m["responses_cut"] >= 1 else None)(
                    d.ok("status")["metrics"]), timeout=HTTP_DEADLINE_S + 120)
            assert time.monotonic() - started >= HTTP_DEADLINE_S - 1
            assert st["responses_cut"] == 1, st
            # its snapshot let go (counted at the next snapshot)
            wait_for("nothing kept", lambda: scrape(d.port) and
                     d.ok("status")["metrics"]["pinned_bytes"] == 0, timeout=60)
            # the connection ends once the reader has drained what was sent: short of the text
            assert slow.eof.wait(180), slow.got
            assert slow.got < len(text), (slow.got, len(text))
            assert len(scrape(d.port)) > 500000
        finally:
            slow.close()
