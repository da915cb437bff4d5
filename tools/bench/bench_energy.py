"""Energy: the reference design (Couraud et al., Table I) next to our firmware on the
ESP8266 and on the ESP32-C3, each fed by a constant 130 mW at the rectifier input and
by the meter model (the ngspice Thevenin TIC supply, tools/simmeter.py), 6 hours each
on the simulated board (tools/simparams.py). Prints the side-by-side table, the
per-state energy breakdown of every case, and writes the plot (first 20 minutes of the
reference and of the C3 on the meter model, with their breakdowns) to
tools/bench/energy_paper_vs_firmware.png (override with BENCH_ENERGY_PLOT).

    python -m tools.bench.bench_energy [hours]
"""
import os
import sys
from concurrent.futures import ProcessPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
PLOT = os.environ.get("BENCH_ENERGY_PLOT") or os.path.join(HERE, "energy_paper_vs_firmware.png")

# (label, policy, chip, tls, source, board, mW)
CASES = [
    ("paper", "paper", "esp8266", True, "constant", None, 130.0),
    ("paper", "paper", "esp8266", True, "meter", None, 130.0),
    ("paper", "paper", "esp8266", False, "constant", None, 130.0),
    ("ESP8266", "firmware", "esp8266", False, "constant", None, 130.0),
    ("ESP8266", "firmware", "esp8266", False, "meter", None, 130.0),
    ("ESP32-C3", "firmware", "esp32c3", True, "constant", None, 130.0),
    ("ESP32-C3", "firmware", "esp32c3", True, "meter", None, 130.0),
    ("ESP32-C3", "firmware", "esp32c3", True, "meter", "ltr-low", 130.0),
    ("ESP32-C3", "firmware", "esp32c3", True, "meter", "ltr-high", 130.0),
]
STATES = ("listen", "sleep", "wifi_join", "tls", "tx", "boot", "flash", "deep_sleep", "active")


def one(args):
    label, policy, chip, tls, source, board, mw, hours = args
    from tools import sim
    rep, trace = sim.run(policy, tls, mw, hours, seed=1, chip=chip, source=source, board=board)
    # keep the first 20 minutes of the trace for the plot (pickling the whole run is slow)
    cut = 20 * 60.0
    keep = [(t, v) for t, v in zip(trace.t, trace.v) if t <= cut]
    trace.t = [t for t, _ in keep]
    trace.v = [v for _, v in keep]
    trace.marks = [(t, k) for t, k in trace.marks if t <= cut]
    return rep, trace


def fmt(x, nd=1):
    return "-" if x is None else ("%.*f" % (nd, x))


def name(case):
    label, policy, chip, tls, source, board, mw = case
    return "%s%s" % (label, " (%s)" % board if board else "")


def main():
    hours = float(sys.argv[1]) if len(sys.argv) > 1 else 6.0
    with ProcessPoolExecutor(max_workers=2) as ex:
        res = list(ex.map(one, [c + (hours,) for c in CASES]))
    secs = hours * 3600.0
    print("simulated %.1f h per case, seed 1; board ltr (ours) unless said, the reference's own for"
          " 'paper'; parameters and sources: tools/simparams.py" % hours)
    print("source: 130 mW = constant at the rectifier input; meter = ngspice Thevenin TIC supply "
          "(13 Vrms / 325 ohm, tools/simmeter.csv)")
    print()
    head = ("design", "TLS", "source", "in mW", "reading s mean/max", "upload s mean/min/max",
            "latency s", "measured", "lost", "cuts", "Vmin")
    fm = "%-20s %-4s %-7s %6s  %-18s %-22s %-9s %8s %4s %4s %5s"
    print(fm % head)
    for c, (rep, _) in zip(CASES, res):
        u = rep["upload_interval_s"]
        r = rep["reading_interval_s"]
        # the reference's "reading" is the average it sends: its resolution is its upload
        rd = u if c[1] == "paper" else r
        print(fm % (name(c), "yes" if rep["tls"] else "no",
                    "meter" if c[4] == "meter" else "%d mW" % c[6],
                    fmt(rep["energy"]["harvested_mw"]),
                    "%s/%s" % (fmt(rd["mean"]), fmt(rd["max"])),
                    "%s/%s/%s" % (fmt(u["mean"]), fmt(u["min"]), fmt(u["max"])),
                    fmt(rep["latency_s"]["mean"]), rep["readings_measured"],
                    rep["readings_lost"], rep["brownouts"], fmt(rep["vcap_min_v"], 2)))
    print()
    print("paper Table I (measured): TLS mean 54.6 s min 20 max 140; no TLS mean 33 s min 19 max 68")
    for c, (rep, _) in zip(CASES, res):
        if c[1] == "paper" and c[4] == "constant":
            ref = 54.6 if rep["tls"] else 33.0
            m = rep["upload_interval_s"]["mean"]
            print("  paper %-6s simulated mean %.1f s = %+.0f %% of the measured %.1f s" % (
                "TLS" if rep["tls"] else "no TLS", m, 100.0 * (m - ref) / ref, ref))
    nom = [rep for c, (rep, _) in zip(CASES, res) if c[2] == "esp32c3" and c[4] == "meter"
           and c[5] is None][0]
    for c, (rep, _) in zip(CASES, res):
        if c[5]:
            d = rep["reading_interval_s"]["mean"] / nom["reading_interval_s"]["mean"] - 1
            print("  ESP32-C3 on the meter model, board %s: reading %+.0f %% of the nominal board's"
                  % (c[5], 100 * d))
    print()
    print("where the energy went (mean mW over the run; chip states at the regulator's 3.3 V"
          " output, losses at the capacitor)")
    cols = STATES + ("regulator", "always-on", "shed")
    print("%-20s %-7s " % ("design", "source") + " ".join("%9s" % k[:9] for k in cols)
          + "  listen s/rd  J/rd  joins(fail)  B/rd")
    for c, (rep, _) in zip(CASES, res):
        e = rep["energy"]
        row = [1000.0 * e["chip_j"].get(k, 0.0) / secs for k in STATES]
        lo = e["losses_j"]
        row.append(1000.0 * lo["regulator"] / secs)
        row.append(1000.0 * (lo["supervisor"] + lo["sense_divider"] + lo["leakage"]
                             + lo["adc_divider"] + lo["esr"]) / secs)
        row.append(1000.0 * e["clamp_shed_j"] / secs)
        print("%-20s %-7s " % (name(c), "meter" if c[4] == "meter" else "130 mW")
              + " ".join("%9.1f" % x for x in row)
              + "  %11s %5s %6d(%d) %6s" % (fmt(rep["listen_s_per_reading"], 2),
                                           fmt(e["j_per_reading"], 2), rep["wifi_joins"],
                                           rep["wifi_join_failures"],
                                           fmt(rep["bytes_per_reading"], 0)))
    from tools import sim
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pick = [(0, "reference design (paper policy), TLS, 130 mW"),
            (6, "this firmware on the ESP32-C3, TLS, meter model")]
    fig, axes = plt.subplots(len(pick), 2, figsize=(17, 4.2 * len(pick)),
                             gridspec_kw={"width_ratios": [2.2, 1]}, squeeze=False)
    for row, (i, title) in zip(axes, pick):
        rep, trace = res[i]
        sim._panel(row[0], trace, title + ": first 20 min", 0.0, 20 * 60.0)
        row[0].set_xlabel("minutes")
        sim.plot_breakdown(row[1], rep, "where the energy went (%g h)" % hours)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=100)
    plt.close(fig)
    print()
    print("plot:", os.path.relpath(PLOT))


if __name__ == "__main__":
    main()
