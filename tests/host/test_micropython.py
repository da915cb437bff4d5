# Runs every firmware test module (tests/fw/test_*.py) under the MicroPython unix port,
# one subprocess per module, with the heap the module asks for (MICROPYTHON_HEAP,
# default 2M; "38K" approximates an ESP8266). The same modules run under CPython
# through ordinary pytest collection.
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


@pytest.mark.parametrize("path", FW, ids=[os.path.basename(p) for p in FW])
def test_fw_module_on_micropython(path):
    rel = os.path.relpath(path, mpy.ROOT)
    r = mpy.run(["tests/mprun.py", rel], heap=_heap(path), timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    last = [ln for ln in r.stdout.splitlines() if re.match(r"^\d+ passed, \d+ failed$", ln)]
    assert last and last[-1].endswith(" 0 failed"), out[-6000:]
    if "SKIP " not in r.stdout:
        assert not last[-1].startswith("0 passed"), "no test ran:\n" + out[-3000:]
