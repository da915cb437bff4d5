"""ngspice transient simulations of the dongle's hardware (hardware/sim/run.py).

What a maker relies on: the TIC demodulator hands the ESP's UART the bytes the meter sent,
at 1200 Bd (historic) and 9600 Bd (standard), over the optocoupler's CTR spread and the
TIC amplitude range; the P1 inverter keeps 115200 Bd edges sharp; the supervisor switches
the ESP on near 4.5 V and off near 4.1 V and then really disconnects it; the supercapacitor
never exceeds its rating. Values come from hardware/design/values.json, so a change there is
re-simulated here. Skipped only when ngspice is not installed.
"""
import copy
import importlib.util
import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIM = os.path.join(ROOT, "hardware", "sim", "run.py")

_spec = importlib.util.spec_from_file_location("hw_sim_run", SIM)
sim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sim)

pytestmark = pytest.mark.skipif(shutil.which("ngspice") is None,
                                reason="ngspice not installed (Debian package 'ngspice'): hardware simulations skipped")

sys.path.insert(0, ROOT)
from firmware.port.boards import BOARDS  # noqa: E402

# Timing budgets (fractions of a bit time). A UART resynchronises on each start bit and
# samples bit centres, so edge-to-edge distortion eats directly into the +-50 % window that
# the baud-rate mismatch over 10 bits (+-2 % x 10) also uses.
MAX_DISTORTION = 0.25
MAX_RX_EDGE_FRAC = 0.05      # 10-90 % rise/fall at the RX pin vs the bit time
SHORT = b"\x02U"             # STX + 0x55: long mark run, then alternating bits


@pytest.fixture(scope="module")
def values():
    return sim.load_values()


@pytest.fixture(scope="module")
def curve():
    return sim.rectifier_curve()


def _assert_clean(r):
    assert r["received"] == r["sent"], (r["received"], r["uart_errors"])
    assert r["uart_errors"] == []
    assert r["rx_edges"] == r["tx_edges"], "glitches or lost edges at the RX pin"
    assert r["min_high_v"] >= sim.VIH and r["max_low_v"] <= sim.VIL
    tbit = r["tbit_us"]
    assert r["rise_us"] <= MAX_RX_EDGE_FRAC * tbit and r["fall_us"] <= MAX_RX_EDGE_FRAC * tbit


# ---------------------------------------------------------------- closed form (no ngspice needed)
def test_values_json_lists_every_part_with_numbers(values):
    for board in ("power", "demod", "relay"):
        assert values[board], board
        for ref, p in values[board].items():
            for key in ("value", "lcsc", "mpn", "footprint", "note", "role"):
                assert key in p, (board, ref, key)
            assert p["mpn"] or ref.startswith("JP"), (board, ref)
    for ref in ("R1", "R2", "R3", "R4", "R8", "R9", "R10", "R11"):
        sim.val(values, "power", ref)  # parses


def test_divider_ratio_agrees_with_firmware_board_table(values):
    c = sim.calc(values)
    for name, ratio in (("d1mini", c["ratio_d1mini"]), ("esp32c3", c["ratio_esp32"])):
        num, den = BOARDS[name]["vcap_ratio"]
        assert abs(ratio - num / den) / (num / den) < 0.02, (name, ratio)
        # the highest VCAP the clamp allows must stay inside the ADC range
        assert c["v_clamp_max"] / ratio * 1000 < BOARDS[name]["adc_full_mv"]
    # ESP32-C3 datasheet (ADC characteristics, 11 dB attenuation): 0-2500 mV. Even at the
    # capacitor's 5.5 V rating the C3's pin stays inside it.
    assert 5.5 / c["ratio_esp32"] < 2.5 - 0.2, c["ratio_esp32"]


def test_thresholds_by_calculation(values):
    c = sim.calc(values)
    assert 4.4 <= c["v_on"] <= 4.6
    assert 4.05 <= c["v_off"] <= 4.25
    assert c["v_on"] < c["v_clamp"] - 0.3 and c["v_clamp_max"] < 5.5


# ---------------------------------------------------------------- optocoupler model anchor
def test_opto_model_reproduces_datasheet_switching_times():
    tr, tf = sim.opto_calibration()
    # LTV-814: tr 4 us, tf 3 us typ, 18 us max at VCE 2 V, IC 2 mA, RL 100 ohm
    assert 2.0 <= tr <= 8.0 and 1.5 <= tf <= 8.0, (tr, tf)


# ---------------------------------------------------------------- TIC demodulator
@pytest.mark.parametrize("vpk,ctr", [(4.0, 0.2), (18.4, 1.5)])
def test_tic_1200_baud_historic_decodes_over_ctr_and_amplitude(values, vpk, ctr):
    # tic_fast low: 10k pull-up works even with the unranked opto's 20 % minimum CTR
    r = sim.demod(1200, vpk, ctr, fast=False, data=SHORT, values=values)
    _assert_clean(r)
    assert r["distortion_frac"] <= 0.10, r["distortion_us"]


@pytest.mark.parametrize("vpk,ctr", [(4.0, 0.5), (18.4, 1.5)])
def test_tic_9600_baud_standard_decodes_with_tic_fast(values, vpk, ctr):
    r = sim.demod(9600, vpk, ctr, fast=True, data=SHORT, values=values)
    _assert_clean(r)
    assert r["distortion_frac"] <= MAX_DISTORTION, r["distortion_us"]


def test_tic_9600_full_frame_with_schmitt_threshold_corner(values):
    r = sim.demod(9600, 8.0, 1.0, fast=True, values=values, schmitt=sim.SCHMITT_CORNERS[0], phase=1.0)
    _assert_clean(r)
    assert r["distortion_frac"] <= MAX_DISTORTION


def test_tic_fast_pin_is_what_makes_9600_baud_work(values):
    slow = sim.demod(9600, 18.4, 1.5, fast=False, data=SHORT, values=values)
    fast = sim.demod(9600, 18.4, 1.5, fast=True, data=SHORT, values=values)
    assert fast["distortion_frac"] <= MAX_DISTORTION
    assert slow["distortion_frac"] > 2 * fast["distortion_frac"], (slow["distortion_us"], fast["distortion_us"])


def test_unranked_low_ctr_opto_fails_9600_so_rank_a_is_specified(values):
    r = sim.demod(9600, 4.0, 0.2, fast=True, data=SHORT, values=values)
    assert r["received"] != r["sent"] or r["distortion_frac"] > MAX_DISTORTION
    assert "CTR 50-150" in values["demod"]["U1"]["rating"]


# ---------------------------------------------------------------- P1
@pytest.mark.parametrize("c_cable", [100e-12, 1e-9])
def test_p1_115200_through_inverter(values, c_cable):
    r = sim.p1(c_cable=c_cable, values=values)
    _assert_clean(r)
    assert r["rise_us"] < 1.0 and r["distortion_frac"] < 0.10


# ---------------------------------------------------------------- power
def test_rectifier_harvests_most_of_the_130_mw(curve):
    pts = dict(curve)
    p45 = 4.5 * pts[4.5]
    assert 0.060 < p45 < sim.TIC_P_MIN, p45
    currents = [i for _, i in curve]
    assert all(a > b for a, b in zip(currents, currents[1:]))  # less current as VCAP rises


def test_supervisor_hysteresis_with_esp_load(values, curve):
    c = sim.calc(values)
    r = sim.supervisor(v0=4.3, tstop=90.0, tstep=5e-3, values=values, curve=curve)
    assert len(r["v_on"]) >= 2 and len(r["v_off"]) >= 1, r
    for v in r["v_on"]:
        assert abs(v - c["v_on"]) < 0.05 and 4.4 <= v <= 4.6
    for v in r["v_off"]:
        assert abs(v - c["v_off"]) < 0.05 and 4.05 <= v <= 4.25
    # switched off: no current through the load switch, ESP unpowered
    assert r["max_off_switch_a"] < 1e-6 and r["max_off_esp_a"] < 1e-6
    assert r["vcap_min"] > c["v_off"] - 0.05  # never discharged below the off threshold
    assert r["min_on_v33"] >= 3.0  # TX bursts do not brown the ESP out
    # one Wi-Fi join + TLS upload (~5 s at 80 mA) fits in one on-period
    assert min(r["on_time_s"]) > 5.0


def test_high_esr_coin_cell_supercap_would_not_power_the_esp(values, curve):
    v = copy.deepcopy(values)
    v["power"]["C1"]["esr_ohm"] = 30.0  # 5.5 V coin-stack supercapacitor class
    r = sim.supervisor(v0=4.3, tstop=40.0, tstep=5e-3, values=v, curve=curve)
    assert not r["on_time_s"] or min(r["on_time_s"]) < 5.0 or r["min_on_v33"] < 3.0


def test_overvoltage_shunt_keeps_supercap_below_rating(values, curve):
    # U3 wired pad by pad as the power board's netlist has it (TI TL431AIDBZR: 1 = K, 2 = REF,
    # 3 = A); 5.35 V leaves margin below the 5.5 V rating of C1 and of the TLV3012
    assert sim.board_pins("power", "U3") == {"1": "VCAP", "2": "OVP_REF", "3": "GND"}
    r = sim.ovp(values=values, curve=curve)
    assert 5.1 < r["vcap_max"] <= 5.35, r["vcap_max"]


def test_tl432_pinout_would_not_clamp(values, curve):
    """The first drawing used the TL432's SOT-23 pinout (1 = REF, 2 = K): the pin-level model
    sees REF on VCAP and the cathode on the divider tap, and the capacitor passes 5.5 V."""
    r = sim.ovp(values=values, curve=curve, u3_pins={"1": "OVP_REF", "2": "VCAP", "3": "GND"})
    assert r["vcap_max"] > 5.5, r["vcap_max"]


# ---------------------------------------------------------------- P1 / USB / TIC power paths
# DSMR 5.0.2 P1 port: +5 V on RJ12 pin 1, at most 250 mA. "No back-feed": what flows into a
# source is a Schottky's reverse leakage, not a supply current (limit 100 uA).
BACKFEED_MAX_A = 100e-6


def test_power_paths_simulated_are_the_ones_drawn():
    # the boards' netlists: P1 +5 V -> D2 (demod) -> J9.5 -> VSW; Q1 -> D4 -> VSW (power)
    assert sim.board_pins("demod", "D2") == {"1": "P1_PWR", "2": "P1_5V"}
    assert sim.board_pins("demod", "J9")["5"] == "P1_PWR"
    assert sim.board_pins("power", "J9")["5"] == "VSW"
    assert sim.board_pins("power", "D4") == {"1": "VSW", "2": "VSW_TIC"}
    assert sim.board_pins("power", "Q1") == {"1": "SUP_OUT", "2": "VCAP", "3": "VSW_TIC"}
    assert sim.board_pins("power", "U2")["1"] == "VSW"


def test_p1_alone_powers_the_esp_without_charging_the_supercap():
    for vp1 in (5.0, 4.75):                       # nominal and -5 %
        r = sim.power_paths(vp1=vp1, vcap=0.0)
        assert r["min_v33"] >= 3.2, (vp1, r)       # TX bursts included
        assert 0.1 < r["p1_out_max_a"] <= 0.25, r  # the ESP's 170 mA bursts, within the port's limit
        assert r["cap_backfeed_a"] < BACKFEED_MAX_A, r


def test_usb_alone_back_feeds_neither_the_meter_nor_the_supercap():
    for vcap, q1 in ((0.0, False), (4.3, True)):
        r = sim.power_paths(vp1=0.0, vcap=vcap, q1_on=q1, usb=True)
        assert r["min_v33"] >= 3.2, r
        assert r["p1_backfeed_a"] < BACKFEED_MAX_A, r
        if not q1:
            assert r["cap_backfeed_a"] < BACKFEED_MAX_A, r


def test_tic_path_still_regulates_at_the_switch_off_threshold(values):
    v_off = sim.calc(values)["v_off"]
    r = sim.power_paths(vp1=0.0, vcap=v_off, q1_on=True)
    assert r["min_v33"] >= 3.2 and r["p1_backfeed_a"] < BACKFEED_MAX_A, r


def test_without_the_or_diode_usb_and_p1_would_feed_the_supercap():
    """D4 is what separates the paths: shorted, USB back-feeds the capacitor through the
    regulator's and Q1's body diodes, and P1 dumps amperes into an empty capacitor."""
    usb = sim.power_paths(vp1=0.0, vcap=0.0, usb=True, or_diode=False)
    assert usb["cap_backfeed_a"] > 0.1, usb
    p1 = sim.power_paths(vp1=5.0, vcap=0.0, or_diode=False)
    assert p1["p1_out_max_a"] > 0.25, p1
