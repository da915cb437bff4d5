# tools.sim --target esp8266|esp32c3 (issue 15): the firmware runs on the chip's variant
# of the MicroPython unix port (tools/mp32.py), the physics stays in the simulator
# (tools/simremote.py). The oracle is the other interpreter: the same run with the
# firmware in-process on CPython. The firmware's decisions are integer arithmetic on
# the same port answers, so the two runs must agree on every figure - readings, uploads,
# joules per state, latencies - except the batch bytes, whose store epoch "ep" is drawn
# from os.urandom at first boot (firmware/uplink/uplink.py _random31: its digit count
# varies). Independently of CPython, the collector counts what it received: every reading
# the app recorded is delivered or still waiting in the store, none lost.
#
# This is what found that the store's frames written on the ESP8266 (no binascii.crc32)
# carried CRC-16/CCITT instead of the CRC-32 the format specifies: the host read the
# variant's flash as empty and the reading still waiting there was counted lost.
import json
import subprocess
import sys

import pytest

from tests.host.mpy import ROOT

# runs kept short: the 6-hour figures are `make bench`'s
CASES = {
    "tic_esp8266": ("esp8266", ["--hours", "0.5"]),
    "tic_esp32c3": ("esp32c3", ["--hours", "0.5", "--no-tls"]),
    "dsmr_esp8266": ("esp8266", ["--hours", "0.2", "--meter", "dsmr",
                                 "--capture", "dsmr/nl_v5_athom_iskra_am550.txt"]),
    "meter_relay_mqtt_esp8266": ("esp8266", ["--hours", "0.3", "--source", "meter",
                                             "--relay-threshold", "2000", "--sink", "mqtt"]),
}


def _needs_variants():
    from tools import mp32
    why = mp32.available()
    if why:
        pytest.skip("chip variants not built: %s" % why)


def _sim(args):
    r = subprocess.run([sys.executable, "-m", "tools.sim", "--json", "--seed", "3"] + args,
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_firmware_on_the_chip_variant_loses_nothing_and_matches_cpython(case):
    _needs_variants()
    target, args = CASES[case]
    rep = _sim(args + ["--target", target])
    assert rep["target"] == target and rep["chip"] == target
    assert rep["port_calls"] > 1000          # the firmware really ran over there
    assert rep["readings_measured"] > 20
    assert rep["readings_lost"] == 0, rep
    assert rep["readings_delivered"] + rep["readings_waiting"] == rep["readings_measured"]
    assert rep["brownouts"] == 0
    ref = _sim(args + ["--chip", target])
    assert ref["target"] == "cpython"
    from tools.sim import report_diff       # (a dict diff; tools/sim.py RUN_SPECIFIC)
    diff = report_diff(ref, rep)
    if "mqtt" in args:
        # MQTT arrivals are stamped when the broker delivers them to the subscriber in real
        # time (tools/sim.py MqttCollector.idle waits for a quiet broker): on a loaded
        # machine a late delivery shifts the figures derived from arrival times, not the
        # readings, energies or message counts
        diff = dict((k, v) for k, v in diff.items()
                    if not k.startswith(("latency_s.", "upload_interval_s.")) and k != "uploads")
    assert not diff, diff


def test_the_esp32c3_variant_cannot_verify_tls_so_it_is_refused_with_the_reason():
    # the variant's TLS is axTLS (no certificate verification); the firmware refuses an
    # unverified TLS sink, so the simulator says so instead of reporting a dead uplink
    r = subprocess.run([sys.executable, "-m", "tools.sim", "--json", "--hours", "0.05",
                        "--target", "esp32c3", "--tls"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "axTLS" in r.stderr and "--no-tls" in r.stderr


@pytest.mark.parametrize("args,words", [
    (["--target", "esp8266", "--policy", "paper"], "reference design"),
    (["--target", "esp8266", "--chip", "esp32c3"], "--chip esp32c3 with --target esp8266"),
])
def test_contradictory_target_options_are_refused(args, words):
    r = subprocess.run([sys.executable, "-m", "tools.sim", "--json", "--hours", "0.05"] + args,
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert words in r.stderr


def test_the_default_c3_target_run_says_why_it_is_not_tls():
    _needs_variants()
    rep = _sim(["--hours", "0.2", "--target", "esp32c3"])
    assert rep["tls"] is False and "axTLS" in rep["tls_note"]
    assert rep["readings_lost"] == 0 and rep["readings_measured"] > 0


def test_a_port_call_outside_the_interface_is_refused():
    # the device process gets the port interface and nothing else of the simulator
    from tools.simremote import Server

    class P:
        chip = "esp8266"
    s = Server(P(), {}, None)
    for target, name in (("p", "charge_until_on"), ("p", "_integrate"), ("f", "arm_cut"),
                         ("s", "__init__"), ("x", "ticks_ms")):
        with pytest.raises(ValueError):
            s.dispatch(target, name, [])
