# Runs every firmware test module (tests/fw/test_*.py) under the MicroPython unix port,
# one subprocess per module, with the heap the module asks for (MICROPYTHON_HEAP,
# default 2M; "38K" approximates an ESP8266). The same modules run under CPython
# through ordinary pytest collection. A second run uses the 32-bit build with the
# ESP8266's object model (tools/mp32.py: 31-bit small ints, 30-bit floats in the object
# word), so arithmetic that only holds with 64-bit objects fails here; it lacks ssl/
# cryptolib, so the tests that need them skip there.
import glob
import os
import re

import pytest

from tests.host import mpy

FW = sorted(glob.glob(os.path.join(mpy.ROOT, "tests", "fw", "test_*.py")))


def _heap(path):
    with open(path) as f:
        m = re.search(r'^MICROPYTHON_HEAP\s*=\s*"([0-9]+[KM]?)"', f.read(), re.M)
    return m.group(1) if m else "2M"


def _check(r):
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    last = [ln for ln in r.stdout.splitlines() if re.match(r"^\d+ passed, \d+ failed$", ln)]
    assert last and last[-1].endswith(" 0 failed"), out[-6000:]
    if "SKIP " not in r.stdout:
        assert not last[-1].startswith("0 passed"), "no test ran:\n" + out[-3000:]


@pytest.mark.parametrize("path", FW, ids=[os.path.basename(p) for p in FW])
def test_fw_module_on_micropython(path):
    rel = os.path.relpath(path, mpy.ROOT)
    _check(mpy.run(["tests/mprun.py", rel], heap=_heap(path), timeout=600))


@pytest.fixture(scope="module")
def mp32():
    from tools import mp32 as M
    why = M.available()
    if why:
        pytest.skip(why)
    return M.plain()


@pytest.mark.parametrize("path", FW, ids=[os.path.basename(p) for p in FW])
def test_fw_module_on_32bit_esp8266_object_model(path, mp32):
    rel = os.path.relpath(path, mpy.ROOT)
    _check(mpy.run(["tests/mprun.py", rel], heap=_heap(path), timeout=600, exe=mp32))
