# Skips: under CI=true a skipped test fails the run (tests/conftest.py); outside CI the
# run says in one line what did not run. tests/mprun.py reports a MicroPython SkipTest
# as skipped, never as passed.
import os
import subprocess
import sys

from tests.host import mpy

ROOT = mpy.ROOT
ART = os.path.join(ROOT, "tests", "artifacts")


def _pytest(path, ci):
    env = dict(os.environ)
    env.pop("CI", None)
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-q",
                           "-p", "no:cacheprovider", path], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_skip_fails_under_ci_and_is_listed_outside(tmp_path):
    os.makedirs(ART, exist_ok=True)
    path = os.path.join(ART, "test_skip_probe_%d.py" % os.getpid())
    with open(path, "w") as f:
        f.write("import pytest\n\n\ndef test_needs_a_tool():\n"
                "    pytest.skip('no frobnicator here')\n\n\ndef test_fine():\n"
                "    assert 1 + 1 == 2\n")
    try:
        r = _pytest(path, ci=True)
        assert r.returncode == 1, r.stdout
        assert "1 failed, 1 passed" in r.stdout, r.stdout
        assert "skipped under CI=true" in r.stdout and "no frobnicator here" in r.stdout
        r = _pytest(path, ci=False)
        assert r.returncode == 0, r.stdout
        assert "NOT RUN (1 skipped): 1 x" in r.stdout and "no frobnicator here" in r.stdout
    finally:
        os.remove(path)


def test_mprun_counts_a_skiptest_as_skipped():
    os.makedirs(ART, exist_ok=True)
    name = "test_mp_skip_probe_%d" % os.getpid()
    with open(os.path.join(ART, name + ".py"), "w") as f:
        f.write("from tests.fw.util import SkipTest\n\n\ndef test_a():\n"
                "    raise SkipTest('not in this build')\n\n\ndef test_b():\n    pass\n")
    try:
        r = mpy.run(["tests/mprun.py", "tests/artifacts/%s.py" % name], heap="2M")
        assert r.returncode == 0, r.stdout + r.stderr
        lines = r.stdout.splitlines()
        assert any(ln.startswith("SKIP ") and "not in this build" in ln for ln in lines)
        assert lines[-1] == "1 passed, 0 failed, 1 skipped", lines
    finally:
        os.remove(os.path.join(ART, name + ".py"))
