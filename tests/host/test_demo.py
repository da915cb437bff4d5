# `make demo` (tools/demo.py) end to end on the MicroPython unix port, mosquitto and the
# HTTPS collector: its exit status says whether every dongle delivered, and what it
# prints per dongle is what the collector holds.
import csv
import os
import re
import subprocess
import sys

import pytest

from tests.host.mpy import ROOT
from tools import captures

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _demo(tmp_path, *caps):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "tools.demo", "--out", str(out)] + list(caps),
                       cwd=ROOT, capture_output=True, text=True, timeout=240)
    return r, out


def _row(stdout, name):
    # the summary table: dongle, capture, recorded, uploaded, collector, verdict
    m = re.search(r"^(\w{6}) +%s +(\d+) +(\d+) +(\d+) +(ok|FAILED)$" % re.escape(name),
                  stdout, re.M)
    assert m, stdout
    return int(m.group(2)), int(m.group(3)), int(m.group(4)), m.group(5)


def test_demo_delivers_and_reports_what_the_collector_holds(tmp_path):
    cap = captures.path("tic/hist_tempo_mono_pyteleinfo.txt")
    r, out = _demo(tmp_path, cap)
    assert r.returncode == 0, r.stdout + r.stderr
    rec, up, got, ok = _row(r.stdout, "hist_tempo_mono_pyteleinfo.txt")
    assert ok == "ok" and rec > 0 and rec == up == got
    # what the collector exported: one row per reading, and every energy index is the
    # sum of the six Tempo indexes of a frame the meter sent, read here from the
    # capture's bytes (Enedis-NOI-CPT_02E historic groups: LF label SP value SP check CR)
    rows = list(csv.DictReader(open(out / "readings.csv")))
    assert len(rows) == got
    frames = open(cap, "rb").read().split(b"\x02")[1:]
    sums = {sum(int(v) for v in re.findall(rb"\nBBRH[CP]J[BWR] (\d{9}) .\r", f))
            for f in frames}
    assert {int(x["energy_import_wh"]) for x in rows} <= sums, sums
    plot = re.search(r"^plot: (\S+)$", r.stdout, re.M).group(1)
    assert plot == str(out / "load_curve.png") and os.path.getsize(plot) > 1000


def test_demo_exits_non_zero_when_a_dongle_delivers_nothing(tmp_path):
    junk = tmp_path / "noise.bin"
    junk.write_bytes(bytes((i * 73 + 11) & 0xFF for i in range(20000)))
    good = captures.path("tic/hist_hchp_mono_pyteleinfo.txt")
    r, _ = _demo(tmp_path, good, str(junk))
    assert r.returncode == 1, r.stdout + r.stderr
    assert _row(r.stdout, "noise.bin")[3] == "FAILED"
    assert re.search(r"^demo FAILED: dongle \w{6} \(noise.bin\): no reading recorded$",
                     r.stdout, re.M), r.stdout
    # the good one is still reported as delivered
    rec, up, got, ok = _row(r.stdout, "hist_hchp_mono_pyteleinfo.txt")
    assert ok == "ok" and rec == up == got > 0
