# tools.replay --target: the firmware app on each chip variant of the unix port
# (tools/mp32.py), a TIC and a DSMR capture, uploading over MQTT to a real mosquitto.
# Every reading recorded is uploaded, and the readings are the ones CPython records.
import json
import os
import subprocess
import sys

import pytest

from tests.host.mpy import ROOT
from tests.fw.util import corpus_path
from tools.services import Mosquitto

CAPTURES = ["tic/hist_tempo_mono_pyteleinfo.txt", "dsmr/nl_v5_athom_iskra_am550.txt"]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    if not os.path.exists("/usr/sbin/mosquitto"):
        pytest.skip("no mosquitto")
    with Mosquitto() as m:
        yield m.port


def _replay(capture, tmp_path, cfg, target=None):
    tag = target or "cpython"
    report, readings = tmp_path / ("r-%s.json" % tag), tmp_path / ("r-%s.jsonl" % tag)
    cmd = [sys.executable, "-m", "tools.replay", corpus_path(capture), "--config", str(cfg),
           "--report", str(report), "--readings", str(readings)]
    if target:
        cmd += ["--target", target]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = [json.loads(ln) for ln in readings.read_text().splitlines() if ln.strip()]
    return json.loads(report.read_text()), rows


@pytest.mark.parametrize("target", ["esp8266", "esp32c3"])
@pytest.mark.parametrize("capture", CAPTURES)
def test_replay_on_the_chip_variant_records_and_uploads_every_reading(capture, target,
                                                                     broker, tmp_path):
    from tools import mp32
    why = mp32.available()
    if why:
        pytest.skip(why)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"ssid": "bench", "password": "benchbench",
                               "mqtt_host": "127.0.0.1", "mqtt_port": broker}))
    rep, rows = _replay(capture, tmp_path, cfg, target)
    assert rep["python"] == "micropython" and rep["target"] == target
    assert rep["readings_recorded"] >= 2 and rows
    assert rep["readings_uploaded"] == rep["readings_recorded"], rep
    assert rep["backlog"] == 0, rep
    ref, ref_rows = _replay(capture, tmp_path, cfg)
    assert rows == ref_rows
    assert rep["readings_recorded"] == ref["readings_recorded"]
