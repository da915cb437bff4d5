# Running code under a MicroPython unix port from CPython tests: the venv's 64-bit one
# ("unix64") or a chip variant ("esp8266", "esp32c3", tools/mp32.py).
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
if not os.path.exists(MICROPYTHON):
    import shutil
    MICROPYTHON = shutil.which("micropython") or MICROPYTHON


def target_exe(target):
    """-> the interpreter for a target; a chip variant is built (or taken from the
    cache in build/) on first use. What is missing here skips the test, which fails the
    run under CI=true (tests/conftest.py)."""
    if target == "unix64":
        return MICROPYTHON
    from tools import mp32
    why = mp32.available()
    if why:
        pytest.skip("%s variant not built: %s" % (target, why))
    return mp32.build(target)


def micropypath():
    return ":".join([".frozen", ROOT, os.path.join(ROOT, ".mplib"),
                     os.path.join(ROOT, "tools", "compat", "micropython")])


def env(extra=None):
    e = dict(os.environ)
    e["MICROPYPATH"] = micropypath()
    if extra:
        e.update(extra)
    return e


def run(args, heap="2M", timeout=300, extra_env=None, exe=None, cwd=None, **kw):
    """Run `micropython -X heapsize=HEAP args...` from the repo root (exe: another
    MicroPython unix port than the venv's; heap None: the interpreter's default, which
    is the chip's heap on a chip variant)."""
    cmd = [exe or MICROPYTHON] + (["-X", "heapsize=" + heap] if heap else []) + list(args)
    return subprocess.run(cmd, cwd=cwd or ROOT, env=env(extra_env), capture_output=True,
                          text=True, timeout=timeout, **kw)


def popen(args, heap="2M", extra_env=None, exe=None, **kw):
    cmd = [exe or MICROPYTHON] + (["-X", "heapsize=" + heap] if heap else []) + list(args)
    return subprocess.Popen(cmd, cwd=ROOT, env=env(extra_env), **kw)
