# Helpers shared by the firmware tests; they run on CPython (pytest) and on the
# MicroPython unix port (tests/mprun.py), so only builtins both have are used.
import os

try:
    _HERE = __file__.rsplit("/", 1)[0]
except NameError:
    _HERE = "tests/fw"


def _root():
    # tests/fw -> repository root
    p = _HERE
    for _ in range(2):
        p = p.rsplit("/", 1)[0] if "/" in p else "."
    return p


ROOT = _root()


# the captures: one lookup for tools and tests (tools/captures.py)
from tools.captures import path as corpus_path, read as corpus, files as corpus_files  # noqa


def raises(exc, fn, *args, **kw):
    # pytest.raises without pytest: returns the exception, fails if none was raised.
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError("did not raise " + exc.__name__)


def chunks(data, n):
    for i in range(0, len(data), n):
        yield data[i:i + n]


def Rng(seed=1):
    # deterministic PRNG: the same sequence on both Pythons, so property tests explore
    # the same cases everywhere (imported only when used: the small-heap tests count
    # every module)
    from tools.rng import Xorshift32
    return Xorshift32(seed)


try:
    from unittest import SkipTest   # pytest reports it as a skip
except ImportError:
    class SkipTest(Exception):      # MicroPython: tests/mprun.py reports it as a skip
        pass


def is_micropython():
    import sys
    return sys.implementation.name == "micropython"
