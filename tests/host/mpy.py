# Running code under the MicroPython unix port from CPython tests.
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
if not os.path.exists(MICROPYTHON):
    import shutil
    MICROPYTHON = shutil.which("micropython") or MICROPYTHON


def micropypath():
    return ":".join([".frozen", ROOT, os.path.join(ROOT, ".mplib"),
                     os.path.join(ROOT, "tools", "compat", "micropython")])


def env(extra=None):
    e = dict(os.environ)
    e["MICROPYPATH"] = micropypath()
    if extra:
        e.update(extra)
    return e


def run(args, heap="2M", timeout=300, extra_env=None, exe=None, **kw):
    """Run `micropython -X heapsize=HEAP args...` from the repo root (exe: another
    MicroPython unix port than the venv's)."""
    cmd = [exe or MICROPYTHON, "-X", "heapsize=" + heap] + list(args)
    return subprocess.run(cmd, cwd=ROOT, env=env(extra_env), capture_output=True, text=True,
                          timeout=timeout, **kw)


def popen(args, heap="2M", extra_env=None, **kw):
    cmd = [MICROPYTHON, "-X", "heapsize=" + heap] + list(args)
    return subprocess.Popen(cmd, cwd=ROOT, env=env(extra_env), **kw)
