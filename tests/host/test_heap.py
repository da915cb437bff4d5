# The whole application in a fixed heap budget (ESP8266: ~38 KB): the real App loop
# (firmware/app.py on the host port, TIC historic capture, record store, relay policy,
# energy manager) runs from a ROMFS image under `micropython -X heapsize=N`, as frozen
# code runs on the device, one process per boot (a deep sleep ends the process, as it
# restarts the chip), and must record every reading it records in a roomy heap.
# A change that makes the application hold or churn more heap fails here. It needs
# only the MicroPython from the venv; the device-like figure (32-bit, frozen, the
# ESP8266's object model) is tests/host/test_heap_esp8266.py's.
#
# N = image size (the unix port reads the image into its heap; the device maps it
# from flash) + APP_BUDGET. Measured by tools/bench/bench_heap.py (2026-11-23): every
# boot completes in image + 98.3 KB on the 64-bit unix port. That holds ~21.5 KB of
# host-only setup (interpreter start-up, host port, capture copy) and ~23 KB of qstrs
# that a frozen build keeps in flash, leaving ~54 KB of firmware objects on 64-bit,
# i.e. ~27-33 KB on the 32-bit ESP8266 (pointers and object headers halve, byte
# payloads do not). APP_BUDGET = 98.3 KB + ~10 % margin (GC fragmentation, small
# source changes) = 108 KB: the firmware's share of it is ~32-36 KB on the ESP8266,
# about all of its ~38 KB heap, so what fails here would not fit the device either.
import os

import pytest

from tools.bench import bench_heap as B

APP_BUDGET = 108 * 1024
SCENARIO = "tic-historic"

pytestmark = pytest.mark.skipif(not os.path.exists(B.MP), reason="no MicroPython unix port")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return B.build_image(str(tmp_path_factory.mktemp("romfs")))


def _run(img, heap):
    return B.run_child(img, SCENARIO, heap)


def test_app_loop_runs_in_the_heap_budget(image):
    size = os.path.getsize(image)
    ref, r = _run(image, 2 * 1024 * 1024)
    assert ref is not None, r.stdout[-2000:] + r.stderr[-2000:]
    # modules executed from the image, not from source in the heap
    assert ref["rom"].startswith("/rom")
    # 6 x 10 historic frames (Enedis-NOI-CPT_02E), one reading per energy-manager read,
    # over many boots (deep sleeps between reads)
    assert ref["recorded"] >= 20, ref
    assert ref["boots"] >= 10, ref
    assert ref["errors"] == {}, ref["errors"]
    res, r = _run(image, size + APP_BUDGET)
    assert res is not None, ("the app no longer fits image + %d KB: %s" % (
        APP_BUDGET // 1024, (r.stdout + r.stderr)[-1500:]))
    assert res["recorded"] == ref["recorded"]
    assert res["errors"] == {}


def test_budget_is_tight_enough_to_catch_a_regression(image):
    # the same run with 20 KB less must fail: the budget is not so loose that a
    # sizeable regression would pass unnoticed (heap need measured ~98 KB of 108 KB)
    size = os.path.getsize(image)
    res, r = _run(image, size + APP_BUDGET - 20 * 1024)
    assert res is None
    assert "MemoryError" in r.stdout + r.stderr
