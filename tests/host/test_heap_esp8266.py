# The application in the ESP8266's heap, measured on the closest stand-in the host has:
# the MicroPython unix port built 32-bit (gcc -m32) with the ESP8266 port's object model
# (MICROPY_OBJ_REPR_C, single-precision floats in the object word) and firmware/, the
# host port, umqtt and the loop FROZEN into it, as on the device
# (tools/bench/bench_heap.py --frozen32). The heap then holds, object for object as on
# a 32-bit chip, the interpreter's start-up objects, the host port with the meter
# capture (host-only, measured per run and added) and the application.
#
# ESP8266 port: a 38 KB heap (ports/esp8266/main.c). FW_BUDGET leaves 6 KB of it for
# what the device has and the host run has not: the port's own start-up objects, the
# WLAN interface and sockets, boot.py/main.py, and fragmentation headroom.
# Measured (2026-11-23): reading boots 24-28 KB (TIC historic 23.9, standard 26.7,
# DSMR 28.3), an MQTT upload window 27.2-28.2 KB (broker timing). An HTTPS window needs ~45 KB: axTLS takes
# its buffers from the same heap (the build maps its malloc there, as the ESP8266 port
# does), which is why the uplink leaves TLS sinks out on the ESP8266 (plain MQTT or
# http:// with signed batches there; TLS on the ESP32 family).
import os
import shutil

import pytest

from tools.bench import bench_heap as H
from tools.services import Mosquitto

FW_BUDGET = 32 * 1024

SRC = H.default_src()
pytestmark = [
    pytest.mark.skipif(SRC is None, reason="no MicroPython source (MICROPYTHON_SRC)"),
    pytest.mark.skipif(not H.gcc_m32(), reason="no gcc -m32 (gcc-multilib)"),
    pytest.mark.timeout(900),
]


@pytest.fixture(scope="module")
def exe():
    return H.frozen32(SRC)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    if not os.path.exists("/usr/sbin/mosquitto"):
        pytest.skip("no mosquitto")
    with Mosquitto() as m:
        yield m.port


@pytest.fixture(scope="module")
def https_port(tmp_path_factory):
    srv, port = H.start_https(str(tmp_path_factory.mktemp("https")))
    yield port
    srv.shutdown()


def _cfg(scenario, broker_port, https=None):
    return H.scenario_cfg(scenario, broker_port, https)


@pytest.mark.parametrize("scenario", ["tic-historic", "tic-standard", "dsmr",
                                      "tic-historic+mqtt"])
def test_fits_the_esp8266_heap(exe, broker, scenario):
    cfg = _cfg(scenario, broker)
    ref, r = H.run_child(exe, scenario, 2 * 1024 * 1024, cfg)
    assert ref is not None, (r.stdout + r.stderr)[-2000:]
    # frozen in: nothing compiled from a file into the heap
    assert not ref["rom"].startswith("/"), ref["rom"]
    assert ref["recorded"] >= 20, ref
    if cfg:
        assert ref["uploaded"] == ref["recorded"] and ref["uploads_ok"] >= 2, ref
    heap = H.host_only(ref) + FW_BUDGET
    res, r = H.run_child(exe, scenario, heap, cfg)
    assert res is not None, ("%s no longer fits %d KB (+ host-only %.1f KB): %s" % (
        scenario, FW_BUDGET // 1024, H.host_only(ref) / 1024.0, (r.stdout + r.stderr)[-1500:]))
    assert res["recorded"] == ref["recorded"]
    if cfg:
        assert res["uploaded"] == ref["uploaded"]


def test_budget_is_tight_enough_to_catch_a_regression(exe, broker):
    # 8 KB less must not do: a sizeable regression would not pass unnoticed
    cfg = _cfg("tic-historic+mqtt", broker)
    ref, r = H.run_child(exe, "tic-historic+mqtt", 2 * 1024 * 1024, cfg)
    assert ref is not None, (r.stdout + r.stderr)[-2000:]
    res, r = H.run_child(exe, "tic-historic+mqtt", H.host_only(ref) + FW_BUDGET - 8 * 1024, cfg)
    assert res is None
    assert "MemoryError" in r.stdout + r.stderr


def test_a_tls_window_does_not_fit_which_is_why_the_esp8266_refuses_tls(exe, https_port):
    # the whole 38 KB heap is not enough for an HTTPS upload window (axTLS from the
    # same heap): the uplink's refusal of TLS sinks on the ESP8266 stands on this. If
    # this ever fits, lift that refusal (firmware/uplink/uplink.py, Uplink.refused).
    # (axTLS does not check its allocations: out of heap it dereferences NULL -- the
    # process dies here, the chip resets on the device.)
    if not H.has_tls(exe):
        pytest.skip("this MicroPython build has no tls (no axTLS source)")
    cfg = H.scenario_cfg("tic-historic+https", None, https_port)
    ref, r = H.run_child(exe, "tic-historic+https", 2 * 1024 * 1024, cfg)
    assert ref is not None, (r.stdout + r.stderr)[-2000:]
    assert ref["uploaded"] == ref["recorded"] and ref["uploads_ok"] >= 2, ref
    res, r = H.run_child(exe, "tic-historic+https", H.host_only(ref) + 38 * 1024, cfg)
    assert res is None or res["uploaded"] < ref["uploaded"], res
