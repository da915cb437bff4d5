# Where the real meter captures are: one lookup for tools, the demo, the benchmarks and
# the tests (tests/fw/util.py re-exports it). Imports on the MicroPython unix port too
# (the firmware tests run there): os only, paths built with "/".
import os

try:
    _HERE = __file__.rsplit("/", 1)[0]
except NameError:           # frozen into a MicroPython image: run from the repository
    _HERE = "tools"


def _root():
    p = _HERE
    return p.rsplit("/", 1)[0] if "/" in p else "."


ROOT = _root()


def shared_dir():
    d = os.getenv("LINKY_SHARED")
    if d:
        return d
    return ROOT + "/../shared"


def base():
    # directory holding tic/, dsmr/, INDEX.json
    return shared_dir() + "/corpus"


def path(rel):
    return base() + "/" + rel


def read(rel):
    with open(path(rel), "rb") as f:
        return f.read()


def files(sub, suffix=""):
    names = sorted(os.listdir(base() + "/" + sub))
    return [sub + "/" + n for n in names if n.endswith(suffix)]
