# The energy simulator (python -m tools.sim) against issues 6 and 21:
#   * the reference design's policy reproduces Table I of Couraud et al. (TLS: mean
#     54.6 s, min 20, max 140; no TLS: mean 33 s, min 19, max 68) within +/-20 % on the
#     mean, min and max inside the paper's ranges;
#   * the firmware on the ESP32-C3 fed by the meter model (the ngspice Thevenin TIC
#     supply, tools/simmeter.py) with TLS (ca_pem verified): a reading at least every
#     5 s on average, mean latency <= 60 s, nothing lost, no brown-out; the same within
#     20 % on the tolerance-corner boards;
#   * the firmware on the ESP8266 (no TLS there: http:// with signed batches) on the
#     meter model and at 130 / 90 / 60 mW: nothing lost, no brown-out, coarser with less;
#   * a server outage: nothing lost, the backlog drains after.
# Simulated durations are short (the 6-hour figures are `make bench`'s); every run is
# the CLI with --json (the contract), started together so they overlap.
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RUNS = {
    "paper_tls": ["--policy", "paper", "--tls", "--hours", "3"],
    "paper_notls": ["--policy", "paper", "--no-tls", "--hours", "2"],
    "c3_meter": ["--chip", "esp32c3", "--source", "meter", "--tls", "--hours", "1.5"],
    "c3_meter_low": ["--chip", "esp32c3", "--source", "meter", "--tls", "--hours", "1.5",
                     "--board", "ltr-low"],
    "c3_meter_high": ["--chip", "esp32c3", "--source", "meter", "--tls", "--hours", "1.5",
                      "--board", "ltr-high"],
    "e8_meter": ["--chip", "esp8266", "--source", "meter", "--hours", "1.5"],
    "fw_130": ["--chip", "esp8266", "--power-mw", "130", "--hours", "1.5"],
    # the firmware on the reference design's supervisor (4.5 V / 20 checks on, 4.1 V /
    # 200 checks off, paper §III-D) instead of our comparator board
    "fw_130_paper_board": ["--board", "paper", "--power-mw", "130", "--hours", "1.5"],
    "fw_90": ["--power-mw", "90", "--hours", "1.5"],
    "fw_60": ["--power-mw", "60", "--hours", "1.5"],
    "fw_outage": ["--chip", "esp32c3", "--tls", "--power-mw", "130", "--hours", "2",
                  "--outage", "0.25:1"],
}


@pytest.fixture(scope="module")
def results():
    procs = {}
    for name, args in RUNS.items():
        procs[name] = subprocess.Popen([sys.executable, "-m", "tools.sim", "--json", "--seed", "1"]
                                       + args, cwd=ROOT, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    out = {}
    for name, p in procs.items():
        so, se = p.communicate(timeout=600)
        assert p.returncode == 0, (name, se[-2000:])
        out[name] = json.loads(so)
    return out


def within(x, ref, tol=0.20):
    return abs(x - ref) <= tol * ref


def test_report_keys(results):
    r = results["c3_meter"]
    for k in ("policy", "chip", "source", "tls", "power_mw", "hours", "upload_interval_s",
              "reading_interval_s", "latency_s", "readings_measured", "readings_delivered",
              "readings_lost", "brownouts", "vcap_min_v", "energy", "listen_s_per_reading",
              "wifi_joins", "wifi_join_failures", "bytes_sent", "bytes_per_reading"):
        assert k in r, k
    assert set(("mean", "min", "max")) <= set(r["upload_interval_s"])
    assert set(("mean", "max")) <= set(r["reading_interval_s"])
    assert set(("mean", "max")) <= set(r["latency_s"])
    assert r["policy"] == "firmware" and r["tls"] is True and r["chip"] == "esp32c3"
    assert r["source"] == "meter" and r["power_mw"] is None and r["hours"] == 1.5
    assert results["fw_130"]["power_mw"] == 130 and results["fw_130"]["tls"] is False


def test_paper_policy_reproduces_table_1_with_tls(results):
    r = results["paper_tls"]
    u = r["upload_interval_s"]
    assert within(u["mean"], 54.6), u
    # min and max inside the range the paper measured (20-140 s)
    assert 20 <= u["min"] and u["max"] <= 140, u
    assert u["n"] >= 3 * 3600 / 54.6 * 0.8, u
    # the reference wakes every 20 s and sends only when A0 says the capacitor is high
    # enough: more wakes than uploads, every wake ends in deep sleep
    assert r["boots"] > 1.3 * r["uploads"], r
    assert r["deep_sleeps"] >= r["boots"] - 1, r


def test_paper_policy_reproduces_table_1_without_tls(results):
    u = results["paper_notls"]["upload_interval_s"]
    assert within(u["mean"], 33.0), u
    assert 19 <= u["min"] and u["max"] <= 68, u
    # TLS costs the reference design resolution (Table I), the simulation agrees
    assert results["paper_tls"]["upload_interval_s"]["mean"] > u["mean"] * 1.3


def _goal(r, name):
    # issue 21's "done when" for one run
    assert r["reading_interval_s"]["mean"] <= 5.0, (name, r["reading_interval_s"])
    assert r["latency_s"]["mean"] <= 60.0, (name, r["latency_s"])
    assert r["readings_lost"] == 0 and r["brownouts"] == 0, name
    # delivered = measured except the last upload period still in the store
    assert r["readings_measured"] - r["readings_delivered"] == r["readings_waiting"], name
    assert r["readings_waiting"] * r["reading_interval_s"]["mean"] <= 2 * r["upload_interval_s"]["max"]


def test_c3_on_the_meter_model_with_tls_reads_every_5_s_nothing_lost(results):
    r = results["c3_meter"]
    _goal(r, "c3_meter")
    # uploads went over TLS to the collector's certificate (the firmware verifies it
    # with ca_pem: a failed check would leave everything waiting)
    assert r["collector_requests"] >= r["uploads"] > 0
    assert r["readings_delivered"] >= 1.5 * 3600 / 5.0 * 0.8
    # the capacitor never went near the cut-off (4.15 V; 4.24 V at the tolerance end)
    assert r["vcap_min_v"] > 4.24
    # ten times the paper's data rate with TLS (one reading per 54.6 s, Table I)
    assert r["reading_interval_s"]["mean"] * 10 <= 54.6


def test_c3_tolerance_corners_within_20_percent(results):
    nom = results["c3_meter"]["reading_interval_s"]["mean"]
    for name in ("c3_meter_low", "c3_meter_high"):
        r = results[name]
        _goal(r, name)
        assert within(r["reading_interval_s"]["mean"], nom), (name, r["reading_interval_s"], nom)
        assert within(r["latency_s"]["mean"], results["c3_meter"]["latency_s"]["mean"]), name
    assert results["c3_meter_low"]["board"] == "ltr-low"
    assert results["c3_meter_low"]["vcap_min_v"] > 4.24 + 0.05


def test_meter_model_delivers_what_ngspice_says(results):
    # the harvested power is the ngspice rectifier's at the voltages the capacitor spent
    # the run at: between its value at the cut-off and at the clamp (computed here
    # from the committed table, which test_meter_table_matches_ngspice checks)
    from tools.simmeter import MeterSource
    src = MeterSource()
    lo, hi = 1000 * src.power(4.15), 1000 * src.power(5.24)
    for name in ("c3_meter", "e8_meter"):
        e = results[name]["energy"]
        # the first minutes charge the capacitor from empty (from 0 V the source gives less)
        assert lo * 0.9 <= e["harvested_mw"] <= hi, (name, e["harvested_mw"], lo, hi)


def test_energy_breakdown_adds_up_and_the_regulator_loss_is_the_ldo_s(results):
    for name in ("c3_meter", "e8_meter", "fw_130"):
        e = results[name]["energy"]
        used = e["chip_total_j"] + sum(e["losses_j"].values()) + e["stored_end_j"]
        assert abs(e["harvested_j"] - used) <= 0.005 * e["harvested_j"] + 0.1, (name, e)
        assert abs(sum(e["chip_j"].values()) - e["chip_total_j"]) < 0.1
        # a linear regulator loses (Vcap - 3.3 V) x I: with Vcap between 4.15 and 5.43 V
        # the loss is 26-65 % of what reaches the chip (+ the 120 uA IQ)
        ratio = e["losses_j"]["regulator"] / e["chip_total_j"]
        assert (4.15 - 3.3) / 3.3 <= ratio <= (5.43 - 3.3) / 3.3 + 0.05, (name, ratio)
        # time per state adds up to the run minus the time the regulator was off (the
        # last action may end after the run's end: an upload window lasts ~10 s at most)
        t = sum(e["time_s"].values()) + e["off_s"]
        assert 1.5 * 3600 - 2.0 <= t <= 1.5 * 3600 + 15.0, (name, t)


def test_c3_wakes_just_before_a_frame(results):
    # historic TIC frame of the default capture: 275 characters x 10 bits at 1200 bd =
    # 2.29 s, PAPP (the early-stop label) ends ~250 characters in (2.08 s). Woken at a
    # random point a read would wait half a frame on average first (~3.2 s in all, as the
    # ESP8266's reads after a sleep do); aligned, it listens lead + 2.08 s
    frame_s = 275 * 10 / 1200.0
    c3 = results["c3_meter"]["listen_s_per_reading"]
    assert c3 <= 250 * 10 / 1200.0 + 0.25, c3
    assert c3 < frame_s
    assert results["e8_meter"]["listen_s_per_reading"] > frame_s


def test_esp8266_on_the_meter_model_nothing_lost(results):
    r = results["e8_meter"]
    assert r["chip"] == "esp8266" and r["tls"] is False
    assert r["readings_lost"] == 0 and r["brownouts"] == 0
    assert r["readings_delivered"] > 0 and r["latency_s"]["mean"] <= 90
    # its modem-sleep idle (15 mA) costs it resolution against the C3's light sleep
    assert r["reading_interval_s"]["mean"] > results["c3_meter"]["reading_interval_s"]["mean"]


def test_firmware_130mw_esp8266_nothing_lost(results):
    r = results["fw_130"]
    _goal(r, "fw_130")
    assert r["vcap_min_v"] > 4.1 + 0.1, r["vcap_min_v"]


def test_firmware_on_the_reference_board_too(results):
    r = results["fw_130_paper_board"]
    assert r["board"] == "paper"
    _goal(r, "fw_130_paper_board")
    assert r["vcap_min_v"] > 4.1 + 0.1


def test_firmware_lower_power_degrades_gracefully(results):
    prev = results["fw_130"]
    for name in ("fw_90", "fw_60"):
        r = results[name]
        assert r["readings_lost"] == 0, name
        assert r["brownouts"] == 0, name
        assert r["vcap_min_v"] > 4.2, name
        # coarser resolution and/or rarer uploads, never finer with less power
        assert r["reading_interval_s"]["mean"] >= prev["reading_interval_s"]["mean"] - 0.2, name
        assert r["upload_interval_s"]["mean"] >= prev["upload_interval_s"]["mean"] - 2, name
        assert r["readings_delivered"] > 0 and r["upload_interval_s"]["n"] >= 5, name
        prev = r
    assert results["fw_60"]["reading_interval_s"]["mean"] > results["fw_130"]["reading_interval_s"]["mean"]


def test_firmware_outage_nothing_lost_backlog_drains(results):
    r = results["fw_outage"]
    assert r["readings_lost"] == 0
    assert r["brownouts"] == 0
    # readings went on during the 45-minute outage and every one of them reached the
    # collector afterwards
    assert r["outage_readings"] >= 0.75 * 3600 / 6.0
    assert r["outage_drained_s"] is not None, r
    assert r["outage_drained_s"] <= 3600
    # at the end only the last period's readings are waiting
    assert r["readings_waiting"] * r["reading_interval_s"]["mean"] <= 2 * 110


@pytest.mark.parametrize("chip", ["esp32c3", "esp8266"])
def test_mqtt_sink_discovery_published_once_nothing_lost(chip):
    # --sink mqtt: the uplink publishes to a real mosquitto (over TLS with the CA
    # verified on the C3, in the clear with signed batches on the ESP8266); a subscriber
    # counts what the broker delivers. Home Assistant discovery goes out once per entity
    # (its content does not change during the run), batches and state once per window.
    r = subprocess.run([sys.executable, "-m", "tools.sim", "--json", "--hours", "0.6",
                        "--chip", chip, "--source", "meter", "--sink", "mqtt"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    assert rep["sink"] == "mqtt" and rep["tls"] is (chip == "esp32c3")
    assert rep["readings_lost"] == 0 and rep["brownouts"] == 0
    assert rep["readings_measured"] - rep["readings_delivered"] == rep["readings_waiting"]
    m = rep["mqtt_messages"]
    # one session per window: status and retained state once, batches of at most
    # batch_records rows (24 on the ESP8266's heap, 60 on the C3) one or more
    assert m["state"] == m["status"] == rep["wifi_joins"] >= 5, (m, rep["wifi_joins"])
    assert m["batch"] >= m["state"], m
    assert rep["latency_s"]["mean"] <= 90
    if chip == "esp8266":
        # (the ESP8266 on the meter model deep-sleeps before its first window: the whole
        # reading of the cold boot, which discovery's capability set needs, is gone with
        # the RAM and every later read is early-stopped, so it never announces itself;
        # reported to the uplink/app owners, not asserted here)
        return
    assert 5 <= m["discovery"] == rep["mqtt_discovery_topics"], (m, rep["mqtt_discovery_topics"])
    assert rep["mqtt_bytes"]["discovery"] > 100 * m["discovery"]


def test_flaky_wifi_costs_joins_not_readings():
    # --wifi-fail 0.2: one join in five runs to the app's timeout unanswered; the plan
    # retries once soon, nothing is lost, the latency goal still holds
    r = subprocess.run([sys.executable, "-m", "tools.sim", "--json", "--hours", "1.5",
                        "--chip", "esp32c3", "--source", "meter", "--wifi-fail", "0.2"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    frac = rep["wifi_join_failures"] / float(rep["wifi_joins"])
    assert 0.08 <= frac <= 0.35, (rep["wifi_join_failures"], rep["wifi_joins"])
    assert rep["readings_lost"] == 0 and rep["brownouts"] == 0
    assert rep["latency_s"]["mean"] <= 60.0, rep["latency_s"]
    assert rep["reading_interval_s"]["mean"] <= 5.0, rep["reading_interval_s"]


def test_c3_verifies_the_collector_certificate():
    # the same run with a CA that did not sign the collector's certificate: every
    # handshake is refused, nothing is delivered, and nothing is lost either (all of it
    # waits in the store)
    from tools import sim
    from tools.services import make_pki
    other_ca = make_pki()[0].decode()
    rep, _ = sim.run("firmware", True, hours=0.25, chip="esp32c3", ca_pem=other_ca)
    assert rep["readings_measured"] > 50
    assert rep["readings_delivered"] == 0 and rep["collector_requests"] == 0
    assert rep["readings_lost"] == 0 and rep["brownouts"] == 0
    assert rep["readings_waiting"] == rep["readings_measured"]
    assert rep["wifi_joins"] >= 1


def test_tls_on_the_esp8266_is_refused_with_the_reason():
    r = subprocess.run([sys.executable, "-m", "tools.sim", "--json", "--hours", "0.05",
                        "--chip", "esp8266", "--tls"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "ESP8266" in r.stderr and "--no-tls" in r.stderr


def test_meter_table_matches_ngspice(tmp_path):
    # tools/simmeter.csv is what ngspice computes now on hardware/sim/rectifier.cir
    # with hardware/sim/run.py's source (a hardware change shows up here)
    import shutil
    from tools import simmeter
    if not shutil.which("ngspice"):
        pytest.fail("ngspice not installed (tools/setup_system.sh)")
    rows, src = simmeter.compute()
    committed = simmeter.load()
    assert [v for v, _ in rows] == [v for v, _ in committed]
    for (v, i), (_, j) in zip(rows, committed):
        assert abs(i - j) <= 0.002 * abs(i) + 1e-6, (v, i, j)
    # the source is the 13 Vrms / 325 ohm Thevenin meter (130 mW at its best): by the
    # maximum power theorem no load can take more than 130 mW from it
    assert abs(src["voc_rms"] ** 2 / (4 * src["rs_ohm"]) - 0.130) < 0.001
    assert all(v * i < 0.130 for v, i in rows)
    # and the file says how it was made
    with open(simmeter.TABLE) as f:
        head = f.read(600)
    assert "python -m tools.simmeter --write" in head and "ngspice" in head


def test_a_cut_during_a_flash_write_tears_it_and_the_store_recovers(tmp_path):
    # issue 7 in the simulator: when the supervisor cuts while the store writes, the
    # write is torn (a prefix programmed); after the reboot the store opens, keeps every
    # record written before, and the torn one is simply absent (counted as lost by the
    # simulator's accounting: measured, never delivered)
    from tools.simport import SimPort
    from tools.flashsim import FaultFlash
    from firmware.store.log import Store
    from firmware.store import record
    from firmware.port import PowerLost
    flash = FaultFlash(sectors=8, sector_size=4096)
    port = SimPort(b"\x02\x03", power_mw=130, fs_root=str(tmp_path), flash=flash)
    store = Store(flash)
    prev = None
    for i in range(5):
        r = {"energy_import_wh": 1000 + i, "apparent_power_va": 500}
        store.append(record.encode(r, 1700000000 + 5 * i, "meter", prev)[0])
        prev = record.decode(record.encode(r, 1700000000 + 5 * i, "meter", prev)[0], prev)
    port.state = "flash"
    port._cut()                                   # the capacitor hits the cut-off now
    with pytest.raises(PowerLost):
        store.append(record.encode({"energy_import_wh": 1005, "apparent_power_va": 500},
                                   1700000025, "meter", prev)[0])
    assert port.torn_writes == 1 and flash.writes >= 6
    reopened = Store(flash)
    got = [record.decode(d)["energy_import_wh"] for _, d in reopened.peek(10)]
    assert got == [1000, 1001, 1002, 1003, 1004]


def test_relay_pulses_on_meter_power_without_brownout(tmp_path):
    # issue 9 in the simulator: real meter frames whose apparent power swings between
    # 2000 and 6200 VA every ~70 s (PAPP rewritten, checksums recomputed) make the
    # firmware shed and restore the relay; the coil pulses are paid from the capacitor
    # with no brown-out and no reading lost
    from tools import loadcapture
    cap = tmp_path / "swing.txt"
    assert loadcapture.main([str(cap), "2000x30", "6200x30"]) == 0
    r = subprocess.run([sys.executable, "-m", "tools.sim", "--json", "--hours", "0.4",
                        "--capture", str(cap), "--relay-threshold", "5400"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    # 0.4 h = ~10 swings; min on/off 30 s and shed/restore delays let most through
    assert rep["relay_pulses"] >= 6, rep["relay_pulses"]
    assert rep["brownouts"] == 0 and rep["readings_lost"] == 0
    assert rep["vcap_min_v"] > 4.3


def test_power_profile_dip_adapts_and_loses_nothing(tmp_path):
    # the meter's power as a profile: 130 mW, a dip to 50 mW from 0.5 h to 1.5 h, back to
    # 130 mW. The energy manager learns the lower slope and reads less often during the
    # dip; nothing is lost, no brown-out, and it speeds up again afterwards.
    prof = tmp_path / "dip.csv"
    prof.write_text("hours,mW\n0,130\n0.5,130\n0.55,50\n1.5,50\n1.55,130\n2.5,130\n")
    r = subprocess.run([sys.executable, "-m", "tools.sim", "--json", "--hours", "2.5",
                        "--power-profile", str(prof), "--plot", str(tmp_path / "dip.png")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    assert rep["readings_lost"] == 0 and rep["brownouts"] == 0, rep
    assert rep["vcap_min_v"] > 4.2
    assert 85 < rep["power_mw"] < 115, rep["power_mw"]      # the profile's mean
    assert rep["power_profile"] == str(prof)
    # coarser than at a constant 130 mW on average, still far finer than the reference
    assert 4.0 < rep["reading_interval_s"]["mean"] < 15.0, rep["reading_interval_s"]
    assert (tmp_path / "dip.png").stat().st_size > 10000


def test_power_profile_file_errors_are_reported(tmp_path):
    for text in ("hours,mW\n", "0,130\n0,90\n", "0,abc\n", "1,-5\n"):
        prof = tmp_path / "bad.csv"
        prof.write_text(text)
        r = subprocess.run([sys.executable, "-m", "tools.sim", "--json", "--hours", "0.1",
                            "--power-profile", str(prof)], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (text, r.stderr)
        assert "bad.csv" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "tools.sim", "--hours", "0.1",
                        "--power-profile", str(tmp_path / "missing.csv")], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.parametrize("board", ["ltr-low", "ltr-high"])
def test_firmware_safe_at_the_board_tolerance_corners(board):
    # the firmware plans with the nominal board (2.5 F, 4.15 V cut-off, 5.24 V clamp);
    # a real board may cut off at 4.24 V, clamp at 5.05 V and hold 2.0 F, or the other
    # way round: on the ESP8266 at 130 and 60 mW nothing lost, no brown-out, and 130 mW
    # still gives 5 s readings
    runs = {}
    for mw, hours in ((130, "1.5"), (60, "1")):
        r = subprocess.run([sys.executable, "-m", "tools.sim", "--json", "--board", board,
                            "--power-mw", str(mw), "--hours", hours], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        runs[mw] = json.loads(r.stdout)
        assert runs[mw]["board"] == board
        assert runs[mw]["readings_lost"] == 0 and runs[mw]["brownouts"] == 0, (mw, runs[mw])
        assert runs[mw]["readings_delivered"] > 0
    assert runs[130]["reading_interval_s"]["mean"] <= 5.0, runs[130]["reading_interval_s"]
    assert runs[60]["reading_interval_s"]["mean"] > runs[130]["reading_interval_s"]["mean"]
