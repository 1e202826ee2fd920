# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""Every command in both modes, on the oldest and the newest interpreter, briefly: the run
`make test-sanitize` puts the ASan+UBSan daemon and client through. What the replies say is
checked by the other tests (test_counts, test_sampled, test_leaks, test_export); here each
command must succeed and the daemon stay clean."""
import os

import pytest

from conftest import PROGRAMS, _pyenv_python, require

PROGRAM = os.path.join(PROGRAMS, "known_counts.py")


@pytest.mark.parametrize("mode", ["precise", "sampled"])
@pytest.mark.parametrize("minor", ["3.8", "3.13"])
def test_every_command(daemon, target_factory, tmp_path, minor, mode):
    t = target_factory([require(_pyenv_python(minor)), PROGRAM])
    p = str(t.read()["pid"])
    # --force: creating 100,000 objects under precise probes costs more than any budget.
    force = ["--force"] if mode == "precise" else []
    assert daemon.ok("attach", "-p", p, "--mode", mode, "--budget", "0.05", *force)["mode"] == mode
    t.send("create")
    assert any(r["type"] == "Foo" for r in daemon.ok("top", "-p", p, "-n", "100000",
                                                "--sort", "growth")["types"])
    assert "suspects" in daemon.ok("leaks", "-p", p, "--window", "10")
    code, doc = daemon.json("sites", "-p", p, "--type", "Foo")
    if code and doc["error"]["code"] == "unsupported_python":
        pytest.skip(doc["error"]["message"])
    assert code == 0, doc
    code, _, err = daemon.ctl("sites", "-p", p, "--type", "Foo", "--format", "folded")
    assert code == 0, err
    code, _, err = daemon.ctl("sites", "-p", p, "--type", "Foo", "--format", "pprof",
                              "-o", str(tmp_path / "foo.pb.gz"))
    assert code == 0, err
    assert [x["mode"] for x in daemon.ok("status")["targets"] if x["pid"] == int(p)] == [mode]
    assert [x["tracked"] for x in daemon.ok("ps")["processes"] if x["pid"] == int(p)] == [True]
    assert daemon.ok("detach", "-p", p)["detached"] is True
