# Where the real meter captures are: tests/captures/ in this repository (provenance and
# licences in tests/captures/SOURCES.md). One lookup for tools, the demo, the benchmarks
# and the tests (tests/fw/util.py re-exports it). Imports on the MicroPython unix port
# too (the firmware tests run there): os only, paths built with "/".
import os

try:
    _HERE = __file__.rsplit("/", 1)[0]
except NameError:           # frozen into a MicroPython image: run from the repository
    _HERE = "tools"


def _root():
    p = _HERE
    return p.rsplit("/", 1)[0] if "/" in p else "."


ROOT = _root()
BASE = ROOT + "/tests/captures"     # holds tic/, dsmr/, INDEX.json


def path(rel):
    return BASE + "/" + rel


def read(rel):
    with open(path(rel), "rb") as f:
        return f.read()


def files(sub, suffix=""):
    names = sorted(os.listdir(BASE + "/" + sub))
    return [sub + "/" + n for n in names if n.endswith(suffix)]
