# End-to-end checks across issues 3, 8 and 9: the replay harness running the firmware
# app publishes to a real collector that stores the very values the firmware recorded
# (checked value by value, and against the capture read by hand), and a replayed load
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


def replay(capture, cfg, tmp_path, micropython=False, readings=None):
    cfg_p = tmp_path / "config.json"
    cfg_p.write_text(json.dumps(cfg))
    rep_p = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "tools.replay", str(capture), "--config", str(cfg_p),
           "--report", str(rep_p)]
    if readings:
        cmd += ["--readings", str(readings)]
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


def historic_frames(data):
    """The capture read here, apart from the firmware's decoders (Enedis-NOI-CPT_02E:
    STX frame ETX, groups LF label SP value SP checksum CR, checksum = (sum of label SP
    value) & 0x3F + 0x20): -> [{label: value}] of the frames whose groups all check."""
    frames = []
    for part in data.split(b"\x02")[1:]:
        if b"\x03" not in part:
            continue
        groups = {}
        ok = True
        for ln in part.split(b"\x03")[0].split(b"\n"):
            ln = ln.strip(b"\r")
            if not ln:
                continue
            label, value, chk = ln.split(b" ")
            ok &= len(chk) == 1 and (sum(label + b" " + value) & 0x3F) + 0x20 == chk[0]
            groups[label.decode()] = value.decode()
        if ok and groups:
            frames.append(groups)
    return frames


def test_replay_publishes_and_the_collector_stores_the_recorded_values(tmp_path):
    # what the firmware recorded (replay --readings: every reading the app handed its
    # store) against what the collector stored (received by tools/wire.py), value by
    # value, and both against the capture's frames read by hand above
    from tools.collector import Collector, ensure_pki, serve_https
    from tools import captures
    import binascii
    key = binascii.hexlify(os.urandom(16)).decode()
    col = Collector(str(tmp_path / "col"), keys={"0a1b2c": binascii.unhexlify(key)})
    ca_pem, cert, kfile = ensure_pki(str(tmp_path / "col"))
    srv = serve_https(col, "127.0.0.1", 0, cert, kfile)
    rel = "tic/hist_tempo_mono_pyteleinfo.txt"
    wall = int(time.time()) - 3600
    try:
        cfg = {"ssid": "home", "https_url": "https://127.0.0.1:%d/ingest" % srv.server_port,
               "ca_pem": ca_pem, "hmac_key": key, "replay_wall_start": wall}
        rd = tmp_path / "readings.jsonl"
        rep = replay(captures.path(rel), cfg, tmp_path, micropython=True, readings=rd)
        recorded = [json.loads(ln) for ln in rd.read_text().splitlines()]
        stored = [r for r in col.readings() if r["kind"] == "reading"]
        assert rep["backlog"] == 0 and all(u["ok"] for u in rep["uploads"])
        assert col.refused == {}
        assert len(recorded) >= 3
        names = ("energy_import_wh", "apparent_power_va", "tariff_period")
        assert [[r.get(k) for k in names] for r in stored] == \
            [[r.get(k) for k in names] for r in recorded]
        # and each of them is a frame of the capture: PAPP, the six Tempo index registers
        # summed (reading-schema energy_import_wh), PTEC
        frames = [(sum(int(f[k]) for k in ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW",
                                            "BBRHCJR", "BBRHPJR")), int(f["PAPP"]), f["PTEC"])
                  for f in historic_frames(captures.read(rel))]
        assert len(frames) == 10
        for r in stored:
            assert (r["energy_import_wh"], r["apparent_power_va"], r["tariff_period"]) \
                in frames, r
        seqs = [r["seq"] for r in stored]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        # times: NTP seconds from the replay's wall clock on, in order; a reading taken
        # before the clock was set has none (t_src "elapsed", never a guessed time)
        timed = [r for r in stored if r["t_src"] == "ntp"]
        assert len(timed) >= len(stored) - 1
        assert all("t" not in r for r in stored if r["t_src"] != "ntp")
        ts = [r["t"] for r in timed]
        assert ts == sorted(ts) and wall <= ts[0] and ts[-1] <= wall + rep["virtual_s"] + 60
        assert {r["dev"] for r in stored} == {"0a1b2c"}
    finally:
        srv.shutdown()
        srv.server_close()
        col.close()
