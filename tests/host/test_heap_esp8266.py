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
# The ESP8266's axTLS cannot verify a certificate (checked below against the variant's
# tls module), which is why the uplink leaves TLS sinks out on the ESP8266.
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


def test_the_esp8266_tls_cannot_verify_which_is_why_the_esp8266_refuses_tls(exe):
    # The uplink leaves TLS sinks out on the ESP8266 (firmware/uplink/uplink.py) and
    # https.make_context refuses a TLS module that cannot verify. The ground for it is
    # the port's TLS module itself, axTLS as extmod/modtls_axtls.c (v1.28) builds it:
    # no CERT_REQUIRED constant, and verify_mode reads back CERT_NONE (0) whatever was
    # set ("CERT_NONE is the only supported verify_mode value"). (An unverified HTTPS
    # window also needed ~45 KB of this heap, measured before the firmware stopped
    # opening unverified connections on every chip.)
    if not H.has_tls(exe):
        raise AssertionError("the esp8266 variant must have axTLS's tls module, as the "
                             "stock image does")
    import subprocess
    code = ("import tls\n"
            "c = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)\n"
            "c.verify_mode = 2\n"
            "print('mode', c.verify_mode, hasattr(tls, 'CERT_REQUIRED'))\n"
            "from firmware.uplink import https\n"
            "try:\n"
            "    https.make_context(b'x')\n"
            "    print('made')\n"
            "except https.NetError as e:\n"
            "    print('refused', e.kind)\n")
    r = subprocess.run([exe, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split("\n")[:2] == ["mode 0 False", "refused tls"], r.stdout + r.stderr
