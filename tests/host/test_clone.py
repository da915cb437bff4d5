# A newcomer's clone works: the repository is cloned (its HEAD, committed state) into an
# empty temporary folder with nothing beside it, and the decoders' tests and one replay
# through the firmware on the MicroPython unix port run from there. Catches anything
# that reads outside the repository (the project's ../shared corpus used to be needed).
import json
import os
import re
import subprocess
import sys

import pytest

from tests.host import mpy

ROOT = mpy.ROOT
CAPTURE = "tests/captures/tic/hist_tempo_mono_pyteleinfo.txt"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    base = tmp_path_factory.mktemp("newcomer")
    dest = base / "repo"
    # fetch exactly the commit checked out here (a worktree's HEAD, a CI detached head)
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    for cmd in (["git", "init", "-q", str(dest)],
                ["git", "-C", str(dest), "fetch", "-q", ROOT, head],
                ["git", "-C", str(dest), "checkout", "-q", "FETCH_HEAD"]):
        subprocess.run(cmd, check=True, capture_output=True)
    assert sorted(os.listdir(base)) == ["repo"]        # nothing beside it
    return str(dest)


def _env(clone):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MICROPYPATH")}
    env["PYTHONPATH"] = os.pathsep.join([clone, os.path.join(clone, "tools", "compat",
                                                             "cpython")])
    # the interpreters come from this checkout's environment, the code from the clone
    env["PATH"] = os.pathsep.join([os.path.dirname(mpy.MICROPYTHON),
                                   os.path.dirname(sys.executable), env.get("PATH", "")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def test_decoder_tests_pass_in_a_fresh_clone(clone):
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-p", "no:xdist", "tests/fw/test_tic.py", "tests/fw/test_dsmr.py"],
                       cwd=clone, env=_env(clone), capture_output=True, text=True,
                       timeout=500)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    m = re.search(r"(\d+) passed", r.stdout)
    assert m and int(m.group(1)) >= 20, r.stdout[-2000:]
    assert "skipped" not in r.stdout and "error" not in r.stdout.lower(), r.stdout[-2000:]


def _indexes_in_capture(path):
    # BBRHCJB values of every group of the capture, read with a regex from the bytes
    # (Enedis-NOI-CPT_02E historic group: LF label SP value SP checksum CR)
    data = open(path, "rb").read()
    return {int(v) for v in re.findall(rb"\nBBRHCJB (\d{9}) .\r", data)}


def test_replay_on_micropython_in_a_fresh_clone(clone, tmp_path):
    rep, rd = str(tmp_path / "report.json"), str(tmp_path / "readings.jsonl")
    r = subprocess.run([sys.executable, "-m", "tools.replay", CAPTURE, "--micropython",
                        "--report", rep, "--readings", rd], cwd=clone, env=_env(clone),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    report = json.load(open(rep))
    assert report["python"] == "micropython"
    assert report["line"] == "tic-historic" and report["errors"] == {}
    readings = [json.loads(ln) for ln in open(rd)]
    # no network configured: everything recorded stays in the store
    assert report["readings_recorded"] == len(readings) == report["backlog"] > 0
    # every reading carries a Tempo blue-day off-peak index the meter actually sent
    sent = _indexes_in_capture(os.path.join(clone, CAPTURE))
    assert len(sent) >= 2
    got = {x["registers"]["BBRHCJB"] for x in readings}
    assert got <= sent, (got, sent)
