"""ngspice runner for the dongle's hardware simulations.

Reads component values from hardware/design/values.json, fills the netlist templates in
this directory ($name placeholders), runs `ngspice -b`, parses the `wrdata` ASCII output
and measures what a user of the board relies on: bytes recovered by a UART at the ESP RX
pin, rise/fall and pulse-width distortion against the bit time, supervisor thresholds and
load current after switch-off.

    python3 hardware/sim/run.py            # every simulation, prints the figures
    python3 hardware/sim/run.py --keep DIR # also keep the generated netlists and data

Stdlib only (CPython 3.7+), so it runs from the system python as well as the venv.
"""
import json
import math
import os
import shutil
import string
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
VALUES = os.path.join(HERE, "..", "design", "values.json")
VDD = 3.3
# ESP8266EX datasheet, "Digital I/O": VIL <= 0.25 VDD, VIH >= 0.75 VDD.
VIL = 0.25 * VDD
VIH = 0.75 * VDD
# 74LVC1G14 at VCC 3.3 V (TI SCES218): typical VT+ 1.75 V, VT- 1.05 V. Sweeps also use the
# narrowest plausible window corners below.
SCHMITT_TYP = (1.75, 1.05)
SCHMITT_CORNERS = ((2.0, 1.2), (1.5, 0.8))
TIC_CARRIER_HZ = 50000.0  # Enedis-NOI-CPT_54E: ASK, 50 kHz carrier

_SUFFIX = {"p": 1e-12, "n": 1e-9, "u": 1e-6, "µ": 1e-6, "m": 1e-3, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}


class SimError(Exception):
    pass


def parse_value(text):
    """'4.7k' -> 4700.0, '100nF' -> 1e-7, '2.5F 5.5V' -> 2.5, '1.5M' -> 1.5e6, '4k7' -> 4700."""
    s = str(text).strip().split()[0]
    for unit in ("F", "ohm", "Ω", "R", "V", "A", "H"):
        if s.endswith(unit) and len(s) > len(unit):
            s = s[: -len(unit)]
            break
    for k, mult in _SUFFIX.items():
        if k in s and not s.endswith(k):  # 4k7 style
            a, b = s.split(k, 1)
            return float((a or "0") + "." + b) * mult
    if s[-1] in _SUFFIX:
        return float(s[:-1]) * _SUFFIX[s[-1]]
    return float(s)


def load_values(path=VALUES):
    with open(path) as f:
        return json.load(f)


def val(values, board, ref):
    return parse_value(values[board][ref]["value"])


def ngspice():
    return shutil.which("ngspice")


def spice_num(x):
    return "%.6g" % x


def run_template(name, params, keep=None):
    """Fill hardware/sim/<name>.cir, run ngspice in batch mode, return {vector: [floats]}."""
    with open(os.path.join(HERE, name + ".cir")) as f:
        tmpl = string.Template(f.read())
    exe = ngspice()
    if not exe:
        raise SimError("ngspice not found on PATH")
    work = tempfile.mkdtemp(prefix="sim-" + name + "-")
    try:
        shutil.copy(os.path.join(HERE, "models.lib"), work)
        out = os.path.join(work, name + ".dat")
        p = dict(params)
        p["out"] = out
        text = tmpl.substitute({k: (spice_num(v) if isinstance(v, float) else str(v)) for k, v in p.items()})
        cir = os.path.join(work, name + ".cir")
        with open(cir, "w") as f:
            f.write(text)
        r = subprocess.run([exe, "-b", cir], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=120)
        if r.returncode != 0 or not os.path.exists(out):
            raise SimError("ngspice failed on %s:\n%s" % (name, r.stdout[-3000:]))
        data = read_wrdata(out)
        if keep:
            os.makedirs(keep, exist_ok=True)
            for fn in os.listdir(work):
                shutil.copy(os.path.join(work, fn), os.path.join(keep, fn))
        return data
    finally:
        shutil.rmtree(work, ignore_errors=True)


def read_wrdata(path):
    """wrdata with wr_singlescale + wr_vecnames: header line of names, then columns."""
    with open(path) as f:
        names = f.readline().split()
        cols = [[] for _ in names]
        for line in f:
            parts = line.split()
            if len(parts) != len(names):
                continue
            for c, x in zip(cols, parts):
                c.append(float(x))
    return dict(zip(names, cols))


# ------------------------------------------------------------------------------------------
# UART framing and a software UART receiver
def uart_bits(data, bits=7, parity="even", stop=1):
    """Line levels (1 = mark) for each byte: start 0, data LSB first, parity, stop 1.
    TIC: 7E1 (Enedis-NOI-CPT_54E); DSMR P1 5.0.2: 8N1 at 115200 Bd."""
    out = []
    for b in data:
        d = [(b >> i) & 1 for i in range(bits)]
        out.append(0)
        out += d
        if parity == "even":
            out.append(sum(d) & 1)
        elif parity == "odd":
            out.append(1 - (sum(d) & 1))
        out += [1] * stop
    return out


def pwl_from_levels(levels, tbit, t0, edge, high, low):
    """PWL text for a level sequence starting at t0 (idle = levels' first value before t0)."""
    pts = [(0.0, levels[0])]
    for i, lv in enumerate(levels):
        t = t0 + i * tbit
        if lv != pts[-1][1]:
            pts.append((t, pts[-1][1]))
            pts.append((t + edge, lv))
    v = lambda lv: high if lv else low
    return " ".join("%s %s" % (spice_num(t), spice_num(v(lv))) for t, lv in pts)


def crossings(t, v, level):
    """[(time, direction)] where v crosses level (linear interpolation); direction +1 rising."""
    out = []
    for i in range(1, len(v)):
        a, b = v[i - 1] - level, v[i] - level
        if (a < 0) != (b < 0):
            tc = t[i - 1] + (t[i] - t[i - 1]) * (a / (a - b)) if a != b else t[i]
            out.append((tc, 1 if b >= 0 else -1))
    return out


def sample(t, v, when):
    """Linear interpolation of v at time `when` (t ascending)."""
    lo, hi = 0, len(t) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if t[mid] <= when:
            lo = mid
        else:
            hi = mid
    if t[hi] == t[lo]:
        return v[lo]
    return v[lo] + (v[hi] - v[lo]) * (when - t[lo]) / (t[hi] - t[lo])


def soft_uart(t, v, baud, bits=7, parity="even", threshold=VDD / 2):
    """Receive bytes like a UART: wait for a falling edge while idle, sample every bit at its
    centre relative to that edge. Returns (bytes, errors, centre_levels) where centre_levels
    is [(expected_level_decoded, voltage)] for every sampled bit."""
    tbit = 1.0 / baud
    nbits = 1 + bits + (1 if parity else 0) + 1
    out = bytearray()
    errors = []
    levels = []
    edges = [tc for tc, d in crossings(t, v, threshold) if d < 0]
    busy_until = -1.0
    for te in edges:
        if te < busy_until:
            continue
        if te + nbits * tbit > t[-1]:
            break
        samples = [sample(t, v, te + (i + 0.5) * tbit) for i in range(nbits)]
        lv = [1 if s > threshold else 0 for s in samples]
        levels += list(zip(lv, samples))
        if lv[0] != 0:
            errors.append("start bit glitch at %.6f" % te)
            continue
        d = lv[1:1 + bits]
        val_ = sum(b << i for i, b in enumerate(d))
        if parity:
            p = lv[1 + bits]
            want = (sum(d) & 1) if parity == "even" else 1 - (sum(d) & 1)
            if p != want:
                errors.append("parity at %.6f" % te)
        if lv[-1] != 1:
            errors.append("framing at %.6f" % te)
        out.append(val_)
        busy_until = te + (nbits - 0.5) * tbit
    return bytes(out), errors, levels


def edge_times(t, v, lo_frac=0.1, hi_frac=0.9, vlo=0.0, vhi=VDD):
    """10-90 % rise and fall times of every transition of v."""
    lo = vlo + lo_frac * (vhi - vlo)
    hi = vlo + hi_frac * (vhi - vlo)
    rises, falls = [], []
    cl = crossings(t, v, lo)
    ch = crossings(t, v, hi)
    for tc, d in cl:
        if d > 0:  # rising: low crossing then next high crossing
            nxt = [x for x, dd in ch if dd > 0 and x >= tc]
            if nxt:
                rises.append(nxt[0] - tc)
    for tc, d in ch:
        if d < 0:
            nxt = [x for x, dd in cl if dd < 0 and x >= tc]
            if nxt:
                falls.append(nxt[0] - tc)
    return rises, falls


# ------------------------------------------------------------------------------------------
TIC_SAMPLE = b"\x02\nADCO 0U\x03"  # STX, LF, label chars, 'U' (0x55: alternating bits), ETX


def demod(baud, vpk, ctr=1.0, fast=None, data=TIC_SAMPLE, schmitt=SCHMITT_TYP, values=None,
          c_rx=20e-12, phase=0.0, keep=None):
    """Simulate the TIC path. fast: tic_fast pin level (None = firmware rule: high at 9600 Bd).
    Returns a dict of measured figures."""
    v = values or load_values()
    if fast is None:
        fast = baud > 2400
    tbit = 1.0 / baud
    levels = [1, 1] + uart_bits(data) + [1, 1, 1]
    t0 = 2 * tbit
    env = pwl_from_levels([1 - x for x in levels], tbit, 0.0, 0.2e-6, 1.0, 0.0)
    tstop = len(levels) * tbit
    vtp, vtm = schmitt
    params = {
        "vpk": float(vpk), "ctr": float(ctr), "env_pwl": env, "fcarrier": TIC_CARRIER_HZ,
        "phase": float(phase),
        "R1": val(v, "demod", "R1"), "R2": val(v, "demod", "R2"), "C1": val(v, "demod", "C1"),
        "R3": val(v, "demod", "R3"), "R4": val(v, "demod", "R4"),
        "vfast": VDD if fast else 0.0, "sch_vt": (vtp + vtm) / 2, "sch_vh": (vtp - vtm) / 2,
        "c_rx": float(c_rx), "tstep": min(tbit / 400.0, 0.25e-6), "tstop": tstop,
    }
    d = run_template("demod", params, keep=keep)
    t, rx, oc = d["time"], d["v(rx)"], d["v(oc)"]
    got, errors, centre = soft_uart(t, rx, baud, bits=7, parity="even")
    # transmitted line edges vs RX crossings at VDD/2 (pulse-width distortion)
    tx_edges = [t0 + i * tbit for i in range(1, len(levels) - 2) if levels[i + 2] != levels[i + 1]]
    tx_edges = [(i * tbit, levels[i] - levels[i - 1]) for i in range(1, len(levels)) if levels[i] != levels[i - 1]]
    rx_edges = crossings(t, rx, VDD / 2)
    delays = []
    if len(rx_edges) == len(tx_edges):
        delays = [(r[0] - e[0], e[1]) for r, e in zip(rx_edges, tx_edges)]
    rises, falls = edge_times(t, rx)
    ones = [s for lv, s in centre if lv == 1]
    zeros = [s for lv, s in centre if lv == 0]
    res = {
        "baud": baud, "vpk": vpk, "ctr": ctr, "fast": bool(fast), "schmitt": schmitt,
        "sent": data, "received": got, "uart_errors": errors,
        "tx_edges": len(tx_edges), "rx_edges": len(rx_edges),
        "delay_rise_us": [x * 1e6 for x, dirn in delays if dirn > 0],
        "delay_fall_us": [x * 1e6 for x, dirn in delays if dirn < 0],
        "min_high_v": min(ones) if ones else None, "max_low_v": max(zeros) if zeros else None,
        "rise_us": max(rises) * 1e6 if rises else None, "fall_us": max(falls) * 1e6 if falls else None,
        "oc_min_v": min(oc), "oc_max_v": max(oc), "tbit_us": tbit * 1e6,
    }
    if delays:
        ds = [x for x, _ in delays]
        res["distortion_us"] = (max(ds) - min(ds)) * 1e6
        res["distortion_frac"] = (max(ds) - min(ds)) / tbit
        res["delay_max_us"] = max(ds) * 1e6
    else:
        res["distortion_us"] = res["distortion_frac"] = res["delay_max_us"] = None
    return res


P1_SAMPLE = b"/ISK5\\2M550T-1012\r\n!1A2B\r\n"


def p1(baud=115200, data=P1_SAMPLE, c_cable=200e-12, r_oc=30.0, c_rx=30e-12, values=None, keep=None):
    """DSMR P1 path at 115200 8N1 through the ESP8266 inverter. The meter's transistor is on
    (line low) for a mark bit: DSMR 5.0.2 inverted signalling."""
    v = values or load_values()
    tbit = 1.0 / baud
    levels = [1, 1] + uart_bits(data, bits=8, parity=None) + [1, 1]
    drv = pwl_from_levels(levels, tbit, 0.0, 20e-9, 1.0, 0.0)
    params = {"drv_pwl": drv, "r_oc": float(r_oc), "c_cable": float(c_cable), "R9": val(v, "demod", "R9"),
              "R10": val(v, "demod", "R10"), "R4": val(v, "demod", "R4"), "c_rx": float(c_rx),
              "tstep": tbit / 200.0, "tstop": len(levels) * tbit}
    d = run_template("p1", params, keep=keep)
    t, rx = d["time"], d["v(rx)"]
    got, errors, centre = soft_uart(t, rx, baud, bits=8, parity=None)
    tx_edges = [(i * tbit, levels[i] - levels[i - 1]) for i in range(1, len(levels)) if levels[i] != levels[i - 1]]
    rx_edges = crossings(t, rx, VDD / 2)
    rises, falls = edge_times(t, rx)
    res = {"baud": baud, "sent": data, "received": got, "uart_errors": errors,
           "tx_edges": len(tx_edges), "rx_edges": len(rx_edges), "tbit_us": tbit * 1e6,
           "rise_us": max(rises) * 1e6 if rises else None, "fall_us": max(falls) * 1e6 if falls else None,
           "min_high_v": min(s for lv, s in centre if lv == 1), "max_low_v": max(s for lv, s in centre if lv == 0)}
    if len(rx_edges) == len(tx_edges):
        ds = [r[0] - e[0] for r, e in zip(rx_edges, tx_edges)]
        res["distortion_us"] = (max(ds) - min(ds)) * 1e6
        res["distortion_frac"] = (max(ds) - min(ds)) / tbit
        res["delay_max_us"] = max(ds) * 1e6
    return res


# ------------------------------------------------------------------------------------------
# TIC power harvest and the supervisor
TIC_VOC_RMS = 13.0   # unloaded TIC supply (issue 11)
TIC_P_MIN = 0.130    # Enedis-NOI-CPT_54E: >= 130 mW available (paper: 6 Vrms, 130 mW)
TIC_RS = TIC_VOC_RMS ** 2 / (4 * TIC_P_MIN)  # Thevenin resistance whose maximum power is 130 mW
R_PTC = 10.0         # 50 mA-hold 1206 PTC, cold resistance (datasheet range ~3.5-50 ohm), assumed


def rectifier_point(vcap, voc_rms=TIC_VOC_RMS, rs=TIC_RS, r_ptc=R_PTC, diode="DBAT54", keep=None):
    """Average charging current (A) into a supercapacitor held at vcap."""
    period = 1.0 / TIC_CARRIER_HZ
    params = {"vpk": voc_rms * math.sqrt(2), "fcarrier": TIC_CARRIER_HZ, "rs": float(rs),
              "r_ptc": float(r_ptc), "vcap": float(vcap), "diode": diode, "tstep": period / 200, "tstop": 30 * period}
    d = run_template("rectifier", params, keep=keep)
    t, i = d["time"], d["i(vcap)"]
    t_from = 10 * period  # skip the start-up cycles
    pts = [(a, b) for a, b in zip(t, i) if a >= t_from]
    area = sum((pts[k][0] - pts[k - 1][0]) * (pts[k][1] + pts[k - 1][1]) / 2 for k in range(1, len(pts)))
    return area / (pts[-1][0] - pts[0][0])


RECT_GRID = (0.0, 2.0, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0)


def rectifier_curve(grid=RECT_GRID, **kw):
    return [(vc, rectifier_point(vc, **kw)) for vc in grid]


def cap_params(values):
    """Supercapacitor figures used by the simulations (and by the firmware energy model)."""
    c1 = values["power"]["C1"]
    return {"c_f": parse_value(c1["value"]), "esr_ohm": float(c1.get("esr_ohm", 0.2)),
            "leak_a": float(c1.get("leakage_a", 20e-6))}


def esp_profile(tstop, active_a=0.070, tx_a=0.170, tx_every=0.050, tx_len=0.005):
    """ESP8266 wanting to run Wi-Fi all the time it is powered: 70 mA with 170 mA TX bursts
    (ESP8266EX datasheet: RX 56 mA, TX 802.11n 120-170 mA). PWL text."""
    pts = []
    t = 0.0
    while t < tstop:
        pts += [(t, active_a), (t + 1e-5, tx_a), (t + tx_len, tx_a), (t + tx_len + 1e-5, active_a)]
        t += tx_every
    return " ".join("%s %s" % (spice_num(a), spice_num(b)) for a, b in pts)


# spice node of each power-board net the simulated part of the circuit touches
POWER_NODES = {"VCAP": "vcap", "OVP_REF": "ovref", "GND": "0"}
_PINS = {}


def board_pins(board, ref):
    """{pad number: net name} of one part, from the board's KiCad netlist (kicad-cli via
    hardware/check.py): the simulation wires the part the way the board does."""
    if (board, ref) not in _PINS:
        sys.path.insert(0, os.path.join(HERE, ".."))
        import check
        with tempfile.TemporaryDirectory() as tmp:
            nets, _ = check.netlist(board, tmp)
        for name, nodes in nets.items():
            for node in nodes:
                r, pad = node.split(".", 1)
                _PINS.setdefault((board, r), {})[pad] = name
    return dict(_PINS[(board, ref)])


def spice_nodes(pins, nodes=POWER_NODES):
    out = {}
    for pad, net in pins.items():
        if net not in nodes:
            raise SimError("pad %s is on net %s, which the simulation does not model" % (pad, net))
        out[pad] = nodes[net]
    return out


def supervisor(v0=4.0, tstop=150.0, profile=None, values=None, curve=None, tstep=2e-3, keep=None, u3_pins=None):
    """Charge from v0 with the harvested current, let the supervisor switch the ESP load on
    and off. Returns measured thresholds and the load current while switched off.
    u3_pins: {pad: net} of the TL431 (default: the power board's netlist)."""
    v = values or load_values()
    u3 = spice_nodes(u3_pins if u3_pins is not None else board_pins("power", "U3"))
    cp = cap_params(v)
    curve = curve or rectifier_curve()
    harv = ", ".join("%s, %s" % (spice_num(a), spice_num(b)) for a, b in curve)
    params = {
        "harv_pwl": harv, "csc": cp["c_f"], "esr": cp["esr_ohm"], "rleak": 5.0 / cp["leak_a"],
        "v0": float(v0), "vref": 1.242,
        "R10": val(v, "power", "R10"), "R11": val(v, "power", "R11"),
        "R1": val(v, "power", "R1"), "R2": val(v, "power", "R2"), "R3": val(v, "power", "R3"),
        "R4": val(v, "power", "R4"), "C3": val(v, "power", "C3"), "R5": val(v, "power", "R5"),
        "prof_pwl": profile or esp_profile(tstop), "tstep": float(tstep), "tstop": float(tstop),
        "u3_1": u3["1"], "u3_2": u3["2"], "u3_3": u3["3"],
    }
    d = run_template("supervisor", params, keep=keep)
    t, vc, vsw, v33, iesp, iq1 = (d["time"], d["v(vcap)"], d["v(vsw)"], d["v(v33)"], d["i(vesp)"],
                                  d["i(vq1)"])
    sout = d["v(sout)"]
    vgs = [a - b for a, b in zip(vc, sout)]  # load switch |VGS|: on when the comparator pulls low
    on, off = [], []
    for tc, dirn in crossings(t, vgs, vc[0] / 2):
        # VCAP just before the switch moves: afterwards ESR x load step shifts it
        (on if dirn > 0 else off).append((tc, sample(t, vc, tc - 2 * tstep)))
    # load current while the switch is open (after each switch-off + 50 ms for C4/C5 to drain)
    off_load = []
    for k, (toff, _) in enumerate(off):
        nxt = [x for x, _ in on if x > toff]
        end = nxt[0] if nxt else t[-1]
        off_load += [(abs(i), abs(j), w) for tt, i, j, w in zip(t, iesp, iq1, vsw) if toff + 0.05 <= tt <= end]
    # supply to the ESP while switched on and above the off threshold
    on_v33 = []
    for k, (ton, _) in enumerate(on):
        nxt = [x for x, _ in off if x > ton]
        end = nxt[0] if nxt else t[-1]
        on_v33 += [x for tt, x in zip(t, v33) if ton + 0.01 <= tt <= end - 0.01]
    on_time = []
    for ton, _ in on:
        nxt = [x for x, _ in off if x > ton]
        if nxt:
            on_time.append(nxt[0] - ton)
    return {"v_on": [x for _, x in on], "v_off": [x for _, x in off], "t_on": [x for x, _ in on],
            "t_off": [x for x, _ in off], "on_time_s": on_time,
            "max_off_esp_a": max(x[0] for x in off_load) if off_load else None,
            "max_off_switch_a": max(x[1] for x in off_load) if off_load else None,
            "max_off_vsw": max(x[2] for x in off_load) if off_load else None,
            "min_on_v33": min(on_v33) if on_v33 else None,
            "vcap_max": max(vc), "vcap_min": min(vc), "curve": curve, "cap": cp}


def ovp(v0=5.2, tstop=60.0, sleep_a=20e-6, values=None, curve=None, keep=None, u3_pins=None):
    """ESP8266 in deep sleep (20 uA, ESP8266EX datasheet) while the TIC keeps charging: the
    TL431 shunt must hold VCAP below the supercapacitor's 5.5 V rating. 60 s: long enough
    for an unclamped capacitor to pass 5.5 V (~19 mA into 2.5 F = 7.6 mV/s)."""
    prof = "0 %s %s %s" % (spice_num(sleep_a), spice_num(tstop + 1), spice_num(sleep_a))
    r = supervisor(v0=v0, tstop=tstop, profile=prof, values=values, curve=curve, tstep=10e-3, keep=keep,
                   u3_pins=u3_pins)
    return r


def power_paths(vp1=5.0, vcap=0.0, q1_on=False, usb=False, or_diode=True, tstop=0.2, r_cable=0.5,
                profile=None, keep=None):
    """Regulator input fed by the P1 port and/or the supercapacitor, with or without USB on
    the module (p1power.cir). Returns the supply at the ESP and the currents into the meter
    and into the supercapacitor (back-feed is current *into* a source: positive here)."""
    prof = profile or esp_profile(tstop)
    params = {"vp1": float(vp1), "r_cable": float(r_cable), "vcap": float(vcap), "q1_on": 1 if q1_on else 0,
              "vusb": 3.3 if usb else 0.0, "prof_pwl": prof, "tstep": 20e-6, "tstop": float(tstop),
              "d4_line": "XD4 vsw q1d SCHOTTKY_KA" if or_diode else "Rd4 q1d vsw 1m"}
    d = run_template("p1power", params, keep=keep)
    t = d["time"]
    settle = [k for k, x in enumerate(t) if x >= 0.02]   # after C4/C5 charge
    k0 = settle[0]
    # the 0 V sense sources sit between the meter / the capacitor and the board, + side on
    # the source: positive current = the source supplies, negative = it is back-fed
    return {"min_v33": min(d["v(v33)"][k0:]), "min_vsw": min(d["v(vsw)"][k0:]),
            "max_vsw": max(d["v(vsw)"][k0:]),
            "p1_out_max_a": max(d["i(vip1)"][k0:]),
            "p1_backfeed_a": max(-x for x in d["i(vip1)"][k0:]),
            "cap_backfeed_a": max(-x for x in d["i(vicap)"][k0:]),
            "cap_out_max_a": max(d["i(vicap)"][k0:]),
            "esp_max_a": max(d["i(vesp)"][k0:])}


def opto_calibration(rl=100.0, ic=2e-3, vce=2.0, keep=None):
    """LTV-814 datasheet switching test (VCE = 2 V, IC = 2 mA, RL = 100 ohm): returns
    (tr_us, tf_us) of the model, 10-90 %."""
    vcc = vce + ic * rl
    params = {"ifw": ic, "rl": float(rl), "vcc": float(vcc), "tstep": 0.02e-6, "tstop": 200e-6}
    d = run_template("opto_cal", params, keep=keep)
    t, vc = d["time"], d["v(c)"]
    vlo = sample(t, vc, 90e-6)
    rises, falls = edge_times(t, vc, vlo=vlo, vhi=vcc)
    # output falls when the LED turns on (opto turn-on = datasheet tr), rises at turn-off (tf)
    return falls[0] * 1e6, rises[0] * 1e6


# ------------------------------------------------------------------------------------------
D1MINI_A0_LOAD = 320e3  # LOLIN D1 mini: A0 -> 220k -> ADC pin -> 100k -> GND
TL431_VREF, TL431_IREF_MAX, TLV3012_VREF = 2.495, 4e-6, 1.242


def calc(values=None):
    """Closed-form figures from values.json (hardware/README.md shows the same equations)."""
    v = values or load_values()
    g = lambda ref: val(v, "power", ref)
    k = g("R2") / (g("R1") + g("R2"))
    a = g("R3") / (g("R3") + g("R4"))
    out = {"k": k, "a": a,
           "v_on": TLV3012_VREF * (1 - a) / (k - a), "v_off": TLV3012_VREF * (1 - a) / k}
    out["v_clamp"] = TL431_VREF * (1 + g("R10") / g("R11"))
    out["v_clamp_max"] = 1.01 * TL431_VREF * (1 + g("R10") / g("R11")) * 1.01 + TL431_IREF_MAX * g("R10")
    rt, rb = g("R8"), g("R9")
    par = rb * D1MINI_A0_LOAD / (rb + D1MINI_A0_LOAD)
    out["ratio_d1mini"] = (rt + par) / par
    out["ratio_esp32"] = (rt + rb) / rb
    out["divider_on_a"] = 4.5 / (rt + par)
    out["sense_drain_a"] = 4.5 / (g("R1") + g("R2"))
    out["ovp_divider_a"] = 4.5 / (g("R10") + g("R11"))
    c = cap_params(v)["c_f"]
    out["c_f"] = c
    out["energy_window_j"] = {cf: 0.5 * cf * (out["v_on"] ** 2 - out["v_off"] ** 2) for cf in (1.5, 2.0, 2.5)}
    out["energy_to_clamp_j"] = 0.5 * c * (out["v_clamp"] ** 2 - out["v_off"] ** 2)
    d = lambda ref: val(v, "demod", ref)
    fast = d("R2") * d("R3") / (d("R2") + d("R3"))
    out["r_pullup_slow"], out["r_pullup_fast"] = d("R2"), fast
    out["tau_slow_us"] = d("R2") * d("C1") * 1e6
    out["tau_fast_us"] = fast * d("C1") * 1e6
    out["rx_tau_us"] = d("R4") * 20e-12 * 1e6
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    keep = argv[argv.index("--keep") + 1] if "--keep" in argv else None
    v = load_values()
    c = calc(v)
    print("calculated: V_on %.3f V, V_off %.3f V, clamp %.3f V (max %.3f V), ADC ratio d1mini %.4f esp32 %.4f"
          % (c["v_on"], c["v_off"], c["v_clamp"], c["v_clamp_max"], c["ratio_d1mini"], c["ratio_esp32"]))
    print("energy 4.5->V_off: " + ", ".join("%.1f F %.2f J" % (k, e) for k, e in sorted(c["energy_window_j"].items()))
          + "; %.1f F clamp->V_off %.2f J" % (c["c_f"], c["energy_to_clamp_j"]))
    print("opto model tr/tf at RL=100 ohm: %.2f / %.2f us (datasheet 4 / 3 typ)" % opto_calibration(keep=keep))
    for baud, fast in ((1200, False), (9600, True), (9600, False)):
        for vpk, ctr in ((4.0, 0.5), (18.4, 1.5)):
            r = demod(baud, vpk, ctr, fast=fast, keep=keep)
            print("TIC %5d Bd tic_fast=%d %4.1f Vpk CTR %.1f: %s, distortion %.1f us (%.0f %% of bit), RX rise %.2f us"
                  % (baud, fast, vpk, ctr, "OK" if r["received"] == r["sent"] else "BAD %r" % r["received"],
                     r["distortion_us"] or -1, 100 * (r["distortion_frac"] or -1), r["rise_us"] or -1))
    r = p1(keep=keep)
    print("P1 115200 Bd: %s, RX rise %.2f us fall %.2f us, distortion %.2f us (%.1f %% of bit)"
          % ("OK" if r["received"] == r["sent"] else "BAD", r["rise_us"], r["fall_us"], r["distortion_us"],
             100 * r["distortion_frac"]))
    curve = rectifier_curve()
    print("harvest: " + ", ".join("%.1f V %.1f mA (%.0f mW)" % (vc, i * 1e3, vc * i * 1e3) for vc, i in curve
                                  if vc in (4.0, 4.5, 5.0)))
    s = supervisor(v0=4.3, tstop=90.0, tstep=5e-3, curve=curve, keep=keep)
    print("supervisor: on at %s V, off at %s V, on-time %s s at 80 mA avg, switch current when off %.2g A"
          % (["%.3f" % x for x in s["v_on"]], ["%.3f" % x for x in s["v_off"]],
             ["%.1f" % x for x in s["on_time_s"]], s["max_off_switch_a"]))
    o = ovp(curve=curve, keep=keep)
    print("over-voltage: VCAP max %.3f V with the ESP asleep (rating 5.5 V)" % o["vcap_max"])
    for name, kw in (("P1 only (supercap empty)", dict(vp1=5.0, vcap=0.0)),
                     ("P1 at 4.75 V only", dict(vp1=4.75, vcap=0.0)),
                     ("USB only, meter P1 unpowered", dict(vp1=0.0, vcap=0.0, usb=True)),
                     ("USB only, supercap at 4.3 V, switch on", dict(vp1=0.0, vcap=4.3, q1_on=True, usb=True)),
                     ("TIC only (VCAP 4.15 V, switch on)", dict(vp1=0.0, vcap=4.15, q1_on=True))):
        p = power_paths(keep=keep, **kw)
        print("power %s: 3V3 min %.3f V, P1 out max %.0f mA, into meter %.2g A, into supercap %.2g A"
              % (name, p["min_v33"], max(0.0, 1e3 * p["p1_out_max_a"]), max(0.0, p["p1_backfeed_a"]),
                 max(0.0, p["cap_backfeed_a"])))


if __name__ == "__main__":
    main()
