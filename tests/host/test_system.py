# End-to-end checks across issues 3, 8 and 9: the replay harness running the firmware
# app publishes to a real collector that agrees with its report, and a replayed load
# that crosses the subscription gives exactly the expected relay events.
import json
import os
import subprocess
import sys
import time

import pytest

from tools.loadcapture import real_frames, with_papp
from tests.host.mpy import ROOT
from tools import captures

CORPUS = captures.BASE


def replay(capture, cfg, tmp_path, micropython=False):
    cfg_p = tmp_path / "config.json"
    cfg_p.write_text(json.dumps(cfg))
    rep_p = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "tools.replay", str(capture), "--config", str(cfg_p),
           "--report", str(rep_p)]
    if micropython:
        cmd.append("--micropython")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return json.loads(rep_p.read_text())


@pytest.mark.parametrize("micropython", [False, True], ids=["cpython", "micropython"])
def test_relay_sheds_and_restores_on_a_replayed_load(tmp_path, micropython):
    frames = real_frames()
    # ISOUSC 30 A -> 6000 VA subscribed, shed above 5400 VA, restore below 4320 VA
    profile = [2830] * 8 + [6200] * 16 + [2000] * 40
    cap = b"".join(with_papp(frames[i % len(frames)], va) for i, va in enumerate(profile))
    path = tmp_path / "load.txt"
    path.write_bytes(cap)
    cfg = {"relay_shed_after_s": 5, "relay_restore_after_s": 20, "relay_min_on_s": 0,
           "relay_min_off_s": 30, "relay_pulse_ms": 20}
    rep = replay(path, cfg, tmp_path, micropython)
    events = [(e["state"], e["coil"], e["reason"]) for e in rep["relay"]]
    assert events == [("off", "relay_reset", "threshold"), ("on", "relay_set", "restore")]
    assert [p[1:] for p in rep["pulses"]] == [["relay_reset", 20], ["relay_set", 20]]
    off, on = rep["relay"]
    assert off["power"] == 6200 and on["power"] == 2000
    # 2.3 s per historic frame: the load rose at frame 8 and fell at frame 24
    assert 8 * 2290 <= off["t_ms"] <= 24 * 2300
    assert on["t_ms"] - off["t_ms"] >= 30000          # minimum off time


def test_replay_publishes_and_the_collector_agrees(tmp_path):
    from tools.collector import Collector, ensure_pki, serve_https
    import binascii
    key = binascii.hexlify(os.urandom(16)).decode()
    col = Collector(str(tmp_path / "col"), default_key=binascii.unhexlify(key))
    ca_pem, cert, kfile = ensure_pki(str(tmp_path / "col"))
    srv = serve_https(col, "127.0.0.1", 0, cert, kfile)
    try:
        cfg = {"ssid": "home", "https_url": "https://127.0.0.1:%d/ingest" % srv.server_port,
               "ca_pem": ca_pem, "hmac_key": key,
               "replay_wall_start": int(time.time()) - 3600}
        rep = replay(os.path.join(CORPUS, "tic/hist_tempo_mono_pyteleinfo.txt"), cfg,
                     tmp_path, micropython=True)
        assert rep["readings_recorded"] >= 3
        assert rep["readings_uploaded"] == rep["readings_recorded"]
        assert rep["backlog"] == 0
        assert col.count() == rep["readings_uploaded"]
        assert all(u["ok"] for u in rep["uploads"])
    finally:
        srv.shutdown()
        srv.server_close()
