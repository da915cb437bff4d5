# The replay harness (issue 3): the firmware application on the host port, fed from a
# real capture; CPython and the MicroPython unix port must record the same readings.
import json
import os
import subprocess
import sys

import pytest

from tests.host.mpy import ROOT
from tools import captures

SHARED = captures.BASE
CAPTURES = ["tic/hist_tempo_mono_pyteleinfo.txt", "tic/std_mono_base_ticdecodecpp.bin"]


def replay(capture, tmp_path, micropython=False, config=None):
    report = tmp_path / ("report-mp.json" if micropython else "report-cp.json")
    readings = tmp_path / ("readings-mp.jsonl" if micropython else "readings-cp.jsonl")
    cmd = [sys.executable, "-m", "tools.replay", os.path.join(SHARED, capture),
           "--report", str(report), "--readings", str(readings)]
    if config:
        cmd += ["--config", str(config)]
    if micropython:
        cmd.append("--micropython")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads(report.read_text())
    rows = [json.loads(ln) for ln in readings.read_text().splitlines() if ln.strip()]
    return rep, rows


@pytest.mark.parametrize("capture", CAPTURES)
def test_replay_same_readings_on_both_pythons(capture, tmp_path):
    rep_cp, rows_cp = replay(capture, tmp_path)
    rep_mp, rows_mp = replay(capture, tmp_path, micropython=True)
    assert rep_cp["python"] == "cpython" and rep_mp["python"] == "micropython"
    assert rows_cp, "no reading recorded"
    assert rows_cp == rows_mp
    for key in ("frames_seen", "readings_recorded", "readings_uploaded", "errors", "relay",
                "uploads"):
        assert key in rep_cp
        assert rep_cp[key] == rep_mp[key], key
    assert rep_cp["readings_recorded"] == len(rows_cp)
    assert rep_cp["frames_seen"] >= rep_cp["readings_recorded"]


@pytest.mark.parametrize("capture,line", [
    ("tic/hist_tempo_mono_pyteleinfo.txt", "tic-historic"),
    ("tic/std_mono_base_ticdecodecpp.bin", "tic-standard"),
    ("dsmr/nl_v5_athom_iskra_am550.txt", "dsmr"),
])
def test_app_finds_the_meter_line_by_itself(capture, line, tmp_path):
    # no meter_line in the config: the app tries baud rates / formats on the bit-level
    # UART model until frames check out, and reports what it locked on
    rep, rows = replay(capture, tmp_path)
    assert rep["line"] == line
    assert rows and all(r["protocol"].startswith(line[:4]) for r in rows)


def test_early_stop_after_the_first_whole_frame(tmp_path):
    # the first whole frame shows which groups the meter sends; later listens stop once
    # the groups a record needs arrived (also across deep sleeps: kept in RTC memory)
    rep, rows = replay("tic/hist_tempo_mono_pyteleinfo.txt", tmp_path)
    assert len(rows) >= 3
    assert rows[0]["partial"] is False
    later = rows[1:]
    assert all(r["partial"] is True for r in later)
    for r in later:
        assert r["energy_import_wh"] == sum(r["registers"].values())
        assert r["apparent_power_va"] is not None and r["tariff_period"] == "HCJB"
