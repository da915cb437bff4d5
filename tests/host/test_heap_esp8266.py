# The application in the ESP8266's heap, as it is installed there: the esp8266 chip
# variant of the unix port (tools/mp32.py, generated from ports/esp8266: 32-bit,
# MICROPY_OBJ_REPR_C, the port's switches) with firmware/, the host port, umqtt and the
# loop FROZEN in (tools/bench/bench_heap.py frozen32), so no bytecode is in the heap,
# as from the stock image's ROMFS or a frozen build.
#
# What the stock image leaves free (bench_heap.free_after_boot): the gc's figure for
# the port's heap[38 * 1024] (38016 B) minus an ESTIMATED 2 KB for the stock boot's own
# objects. Each case must complete in that minus a 4 KB margin (bench_heap.MARGIN): a
# TIC reading boot (historic, standard), a DSMR reading boot, an MQTT upload window, and
# a set-up portal session (GET of the form, POST of every field with a CA certificate,
# driven from this process). `make bench` prints the measured need of each.
# An HTTPS window needs ~45 KB: axTLS takes its buffers from the same heap (as the
# ESP8266 port does), which is why the uplink leaves TLS sinks out on the ESP8266.
import os
import shutil

import pytest

from tools.bench import bench_heap as H
from tools.services import Mosquitto

pytestmark = [pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def exe():
    from tools import mp32
    why = mp32.available()
    if why:
        pytest.skip(why)
    return H.frozen32()


@pytest.fixture(scope="module")
def budget(exe):
    # what a case may use: the stock image's free heap minus the 4 KB margin
    free = H.free_after_boot(exe)
    assert 34 * 1024 < free < 37 * 1024, free
    return free - H.MARGIN


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
def test_fits_the_esp8266_heap(exe, broker, budget, scenario):
    cfg = _cfg(scenario, broker)
    ref, r = H.run_child(exe, scenario, 2 * 1024 * 1024, cfg)
    assert ref is not None, (r.stdout + r.stderr)[-2000:]
    # frozen in: nothing compiled from a file into the heap
    assert not ref["rom"].startswith("/"), ref["rom"]
    assert ref["recorded"] >= 20, ref
    if cfg:
        assert ref["uploaded"] == ref["recorded"] and ref["uploads_ok"] >= 2, ref
    heap = H.host_only(ref) + budget
    res, r = H.run_child(exe, scenario, heap, cfg)
    assert res is not None, ("%s does not fit %.1f KB (+ host-only %.1f KB): %s" % (
        scenario, budget / 1024.0, H.host_only(ref) / 1024.0, (r.stdout + r.stderr)[-1500:]))
    assert res["recorded"] == ref["recorded"]
    if cfg:
        assert res["uploaded"] == ref["uploaded"]


def test_a_portal_session_fits_the_esp8266_heap(exe, budget):
    ref, r = H.portal_session(exe, 2 * 1024 * 1024)
    assert ref is not None and ref[2], (r.stdout + r.stderr)[-2000:]
    base = ref[0]
    res, r = H.portal_session(exe, base + budget)
    assert res is not None and res[2], ("the portal session does not fit %.1f KB: %s" % (
        budget / 1024.0, (r.stdout + r.stderr)[-1500:]))


def test_budget_is_tight_enough_to_catch_a_regression(exe, broker, budget):
    # 8 KB less must not do: a sizeable regression would not pass unnoticed
    cfg = _cfg("tic-historic+mqtt", broker)
    ref, r = H.run_child(exe, "tic-historic+mqtt", 2 * 1024 * 1024, cfg)
    assert ref is not None, (r.stdout + r.stderr)[-2000:]
    res, r = H.run_child(exe, "tic-historic+mqtt", H.host_only(ref) + budget - 8 * 1024, cfg)
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
