# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Acceptance: man pages, bash completion, `make install`, snapshot/diff, and errors with hints.

The man pages must render without warnings and name every option, command and config key the
binaries have (read from their --help and from daemon/config.c); the completion is run in bash
as bash runs it; snapshots are taken of a real target by a real daemon.
"""
import json
import os
import re
import subprocess
import tempfile

import pytest

from conftest import PROGRAMS, PYLEAKCTL, PYLEAKD, ROOT, any_python

MAN = os.path.join(ROOT, "docs", "man")
COMPLETION = os.path.join(ROOT, "deploy", "pyleakctl.bash")
PROGRAM = os.path.join(PROGRAMS, "known_counts.py")



def run(*argv, **kw):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, **kw)


# --- man pages -------------------------------------------------------------------------------

PAGES = ["pyleakctl.1", "pyleakd.8", "pyleakd.conf.5"]


def rendered(page):
    """The page as man shows it on an 80-column terminal, as plain text."""
    r = run("man", "-l", os.path.join(MAN, page),
            env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING=""))
    assert r.returncode == 0, r.stderr
    return re.sub(r".\x08", "", r.stdout)


@pytest.mark.parametrize("page", PAGES)
def test_man_page_renders_cleanly(page):
    path = os.path.join(MAN, page)
    r = run("sh", "-c", 'MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null', "sh", path)
    assert r.stdout == "" and r.returncode == 0, r.stdout
    r = run("groff", "-man", "-ww", "-z", path)
    assert r.stdout + r.stderr == ""
    text = rendered(page)
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
        assert "\n" + section + "\n" in text, section
    assert max(len(line) for line in text.splitlines()) <= 80


def help_options(text):
    """Every option an OPTIONS list of a --help names: -x and --long-name."""
    names = [re.split(r"\s{2,}", line.strip())[0] for line in text.splitlines()
             if line.lstrip().startswith("-")]
    return set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", "\n".join(names)))


def test_pyleakctl_page_lists_commands_and_options():
    text = rendered("pyleakctl.1")
    out = run(PYLEAKCTL, "--help").stdout
    commands = re.findall(r"^  (\w+) ", out.split("COMMANDS")[1].split("OPTIONS")[0], re.M)
    assert {"status", "ps", "top", "snapshot", "diff", "help"} <= set(commands)
    options = help_options(out.split("\nOPTIONS")[1].split("EXIT STATUS")[0])
    for cmd in commands:
        if cmd != "help":
            options |= help_options(run(PYLEAKCTL, cmd, "--help").stdout.split("OPTIONS")[1])
    assert {"-p", "--socket", "--json", "--type", "-o", "--window"} <= options
    for cmd in commands:
        assert re.search(r"^       %s\b" % cmd, text, re.M), "command %s not in pyleakctl(1)" % cmd
    for opt in options:
        assert re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), text), \
            "option %s not in pyleakctl(1)" % opt
    for code in ("no_daemon", "no_such_process", "not_python", "permission_denied",
                 "unsupported_python", "bad_request", "busy"):
        assert code in text


def test_pyleakd_page_lists_options():
    text = rendered("pyleakd.8")
    out = run(PYLEAKD, "--help").stdout
    options = help_options(out.split("Options:")[1].split("EXAMPLES")[0])
    assert {"--socket", "--config", "--max-pages", "-l", "--budget"} <= options
    for opt in options:
        assert re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), text), \
            "option %s not in pyleakd(8)" % opt


def test_pyleakd_conf_page_lists_keys():
    text = rendered("pyleakd.conf.5")
    source = open(os.path.join(ROOT, "daemon", "config.c")).read()
    keys = set(re.findall(r'!strcmp\(key, "(\w+)"\)', source))
    assert {"socket", "group", "mode", "budget", "max_targets", "log_level"} <= keys
    for key in keys:
        assert re.search(r"^       %s=" % key, text, re.M), "key %s not in pyleakd.conf(5)" % key
    # The keys the daemon's help names are the ones it reads.
    listed = run(PYLEAKD, "--help").stdout.split("settings:")[1].split("-g,")[0]
    assert set(re.findall(r"\w+", listed)) == keys


# --- make install ----------------------------------------------------------------------------

def test_make_install_lists_exactly_the_expected_files(tmp_path):
    r = run("make", "-C", ROOT, "--no-print-directory", "install", "DESTDIR=%s" % tmp_path,
            "PREFIX=/usr")
    assert r.returncode == 0, r.stdout + r.stderr
    found = sorted(os.path.relpath(os.path.join(d, f), tmp_path)
                   for d, _, files in os.walk(tmp_path) for f in files)
    assert found == sorted([
        "etc/pyleak/pyleakd.conf",
        "usr/lib/systemd/system/pyleakd.service",
        "usr/bin/pyleakctl",
        "usr/sbin/pyleakd",
        "usr/share/bash-completion/completions/pyleakctl",
        "usr/share/doc/pyleak/README.md",
        "usr/share/doc/pyleak/pyleakd-metrics.conf",
        "usr/share/man/man1/pyleakctl.1",
        "usr/share/man/man5/pyleakd.conf.5",
        "usr/share/man/man8/pyleakd.8",
    ])
    unit = (tmp_path / "usr/lib/systemd/system/pyleakd.service").read_text()
    assert "ExecStart=/usr/sbin/pyleakd " in unit
    assert os.access(tmp_path / "usr/bin/pyleakctl", os.X_OK)
    # man finds the installed page by name.
    r = run("man", "-M", str(tmp_path / "usr/share/man"), "-w", "pyleakd.conf")
    assert r.stdout.strip().endswith("man5/pyleakd.conf.5"), r.stdout + r.stderr
    # An admin's config survives a reinstall.
    (tmp_path / "etc/pyleak/pyleakd.conf").write_text("log_level=debug\n")
    r = run("make", "-C", ROOT, "--no-print-directory", "install", "DESTDIR=%s" % tmp_path,
            "PREFIX=/usr")
    assert r.returncode == 0 and \
        (tmp_path / "etc/pyleak/pyleakd.conf").read_text() == "log_level=debug\n"
    # uninstall removes all but the admin's config.
    r = run("make", "-C", ROOT, "--no-print-directory", "uninstall", "DESTDIR=%s" % tmp_path,
            "PREFIX=/usr")
    assert r.returncode == 0, r.stdout + r.stderr
    left = sorted(os.path.relpath(os.path.join(d, f), tmp_path)
                  for d, _, files in os.walk(tmp_path) for f in files)
    assert left == ["etc/pyleak/pyleakd.conf"]


# --- bash completion -------------------------------------------------------------------------

def complete(*words, socket="/nonexistent/pyleakd.sock"):
    """What _pyleakctl offers for the command line `words` (the last one being completed)."""
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _pyleakctl; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    env = dict(os.environ, PYLEAKD_SOCKET=socket, PATH=ROOT + ":" + os.environ["PATH"])
    r = run("bash", "-c", script, "bash", COMPLETION, "pyleakctl", *words, env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return [w for w in r.stdout.splitlines() if w]


def test_completion_commands_and_flags():
    assert complete("to") == ["top"]
    out = run(PYLEAKCTL, "--help").stdout
    commands = re.findall(r"^  (\w+) ", out.split("COMMANDS")[1].split("OPTIONS")[0], re.M)
    assert sorted(complete("")) == sorted(commands)
    assert sorted(complete("help", "")) == sorted(c for c in commands if c != "help")
    for cmd in commands:
        if cmd == "help":
            continue
        usage = run(PYLEAKCTL, cmd, "--help").stdout
        want = help_options(usage.split("OPTIONS")[1]) - {"-h"}
        assert set(complete(cmd, "-")) == want, cmd


def test_completion_values():
    assert complete("top", "--sort", "") == ["live", "bytes", "growth"]
    assert complete("attach", "--mode", "s") == ["sampled"]
    assert complete("sites", "--format", "") == ["table", "folded", "pprof"]
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "snap-a.json"), "w").close()
        open(os.path.join(d, "snap-b.json"), "w").close()
        assert complete("snapshot", "-p", "1", "-o", d + "/snap-a") == [d + "/snap-a.json"]
        assert sorted(complete("diff", d + "/snap")) == [d + "/snap-a.json", d + "/snap-b.json"]
    # No daemon: --type quietly offers nothing.
    assert complete("sites", "-p", "1", "--type", "") == []


def test_completion_pids_without_daemon(target_factory):
    t = target_factory([any_python(), PROGRAM])
    pid = t.read()["pid"]
    # Not a process that is not Python (pytest's parent is one only when run serially: under
    # xdist it is the controlling pytest).
    other = subprocess.Popen(["sleep", "600"])
    try:
        pids = complete("top", "-p", "")
    finally:
        other.kill()
        other.wait()
    assert str(pid) in pids and str(other.pid) not in pids


def test_completion_with_daemon(daemon, target_factory):
    t = target_factory([any_python(), PROGRAM])
    pid = t.read()["pid"]
    assert str(pid) in complete("leaks", "-p", "", socket=daemon.socket)
    # Not tracked yet: a <Tab> must not attach to it.
    assert complete("sites", "-p", str(pid), "--type", "", socket=daemon.socket) == []
    assert pid not in [x["pid"] for x in daemon.ok("status")["targets"]]
    daemon.ok("attach", "-p", str(pid))
    t.send("create")
    types = complete("sites", "-p", str(pid), "--type", "", socket=daemon.socket)
    assert {"Foo", "Bar", "Baz"} <= set(types), types
    assert sorted(complete("sites", "-p", str(pid), "--type", "Ba", socket=daemon.socket)) == \
        ["Bar", "Baz"]


# --- snapshot and diff -----------------------------------------------------------------------

def rows(snapshot):
    out = {}
    for row in snapshot["top"]["types"]:
        out[row["type"]] = out.get(row["type"], 0) + row["live"]
    return out


def test_snapshot_and_diff(daemon, target_factory, tmp_path):
    t = target_factory([any_python(), PROGRAM])
    pid = t.read()["pid"]
    daemon.ok("attach", "-p", str(pid))
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    summary = daemon.ok("snapshot", "-p", str(pid), "-o", a)
    assert summary["file"] == a and summary["pid"] == pid
    t.send("create")        # 100,000 Foo and more, held: the leak
    code, out, err = daemon.ctl("snapshot", "-p", str(pid), "-o", b)
    assert code == 0 and out.startswith("snapshot of pid %d" % pid), err
    snap_a, snap_b = json.load(open(a)), json.load(open(b))
    for snap in (snap_a, snap_b):
        assert snap["pyleak_snapshot"] == 1 and snap["pid"] == pid
        assert snap["exe"].startswith("/") and "python" in snap["exe"]
        # attach without --mode: the daemon's default, sampled
        assert snap["python"] and snap["mode"] == "sampled" and snap["time"] > 0
        assert snap["host"] == os.uname().nodename and snap["pyleak_version"]
        assert {"top", "leaks", "sites"} <= set(snap) and "suspects" in snap["leaks"]
        assert isinstance(snap["sites"], dict)
    assert snap_b["time"] > snap_a["time"]

    diff = daemon.ok("diff", a, b)
    by_type = {r["type"]: r for r in diff["types"]}
    before, after = rows(snap_a), rows(snap_b)
    for name, r in by_type.items():
        assert r["before"] == before.get(name, 0) and r["after"] == after.get(name, 0), r
        assert r["delta"] == r["after"] - r["before"]
    assert by_type["Foo"]["delta"] == 100000 and by_type["Bar"]["delta"] == 30000
    deltas = [r["delta"] for r in diff["types"]]
    assert deltas == sorted(deltas, reverse=True)
    assert diff["before"]["file"] == a and diff["after"]["pid"] == pid and diff["span_s"] > 0

    code, out, err = daemon.ctl("diff", a, b)
    assert code == 0, err
    table = out.split("\n\n", 1)[1].splitlines()
    assert table[0].split()[:4] == ["TYPE", "BEFORE", "AFTER", "DELTA"]
    foo = [line.split() for line in table if line.startswith("Foo ")][0]
    assert foo[1:4] == [str(before.get("Foo", 0)), str(after["Foo"]), "+100000"]

    same = daemon.ok("diff", a, a)
    assert same["types"] and all(r["delta"] == 0 and r["bytes_delta"] == 0
                                 for r in same["types"])
    assert "no type changed" in daemon.ctl("diff", a, a)[1]


def test_diff_works_offline_and_refuses_non_snapshots(tmp_path):
    snap = {"pyleak_snapshot": 1, "pid": 7, "time": 10.0, "mode": "sampled",
            "top": {"types": [{"type": "str", "live": 5, "bytes": 100},
                              {"type": "Foo", "live": 1, "bytes": 10}]}}
    later = dict(snap, time=70.0, top={"types": [{"type": "str", "live": 3, "bytes": 60},
                                                 {"type": "Foo", "live": 9, "bytes": 90},
                                                 {"type": "Foo", "live": 1, "bytes": 10}]})
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(snap))
    b.write_text(json.dumps(later))
    env = dict(os.environ, PYLEAKD_SOCKET="/nonexistent/pyleakd.sock")
    r = run(PYLEAKCTL, "diff", str(a), str(b), "--json", env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [(x["type"], x["before"], x["after"], x["delta"]) for x in doc["types"]] == \
        [("Foo", 1, 10, 9), ("str", 5, 3, -2)]
    assert doc["span_s"] == 60
    r = run(PYLEAKCTL, "diff", str(a), str(b), env=env)
    assert "1m00s apart" in r.stdout and re.search(r"^Foo +1 +10 +\+9 +\+90$", r.stdout, re.M)

    bad = tmp_path / "bad.json"
    for content in ["not json", json.dumps({"types": []}), json.dumps([1, 2]),
                    json.dumps(dict(snap, pyleak_snapshot=99))]:
        bad.write_text(content)
        r = run(PYLEAKCTL, "diff", str(a), str(bad), "--json", env=env)
        assert r.returncode == 2, (content, r.stdout, r.stderr)
        err = json.loads(r.stdout)["error"]
        assert err["code"] == "bad_request" and str(bad) in err["message"], err
        assert r.stderr.startswith("pyleakctl: ") and len(r.stderr.splitlines()) == 1
    r = run(PYLEAKCTL, "diff", str(a), str(tmp_path / "missing.json"), env=env)
    assert r.returncode == 2 and "missing.json" in r.stderr
    r = run(PYLEAKCTL, "diff", str(a), env=env)
    assert r.returncode == 2 and "diff needs A B" in r.stderr


# --- errors that say what to do --------------------------------------------------------------

def test_no_daemon_says_how_to_start_it():
    r = run(PYLEAKCTL, "--socket", "/nonexistent/pyleakd.sock", "status", "--json")
    assert r.returncode == 1
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "no_daemon" and "systemctl start pyleakd" in err["hint"]
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyleakctl: cannot connect to pyleakd at ")
    assert lines[0].endswith(" \u2014 " + err["hint"])


def test_daemon_errors_get_hints(daemon):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        code, doc = daemon.json("top", "-p", str(sleeper.pid))
        assert code == 1 and doc["error"]["code"] == "not_python"
        assert "pyleakctl ps" in doc["error"]["hint"]
        code, out, err = daemon.ctl("top", "-p", str(sleeper.pid))
        assert err.startswith("pyleakctl: pid %d: not a Python process \u2014 " % sleeper.pid)
        assert len(err.splitlines()) == 1
    finally:
        sleeper.kill()
        sleeper.wait()
    code, doc = daemon.json("detach", "-p", "1")
    assert doc["error"]["code"] == "not_attached" and "pyleakctl status" in doc["error"]["hint"]
    p = subprocess.Popen(["true"])
    p.wait()
    code, doc = daemon.json("attach", "-p", str(p.pid))
    assert doc["error"]["code"] == "no_such_process" and "pyleakctl ps" in doc["error"]["hint"]


def test_permission_denied_says_what_to_do(daemon):
    r = run("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", PYLEAKCTL,
            "--socket", daemon.socket, "status", "--json")
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "permission_denied" and "root" in err["hint"] and "group" in err["hint"]
    assert len(r.stderr.splitlines()) == 1
