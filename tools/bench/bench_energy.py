"""Energy: the reference design (Couraud et al., Table I) next to our firmware, on the
same simulated board (tools/simparams.py), 130 mW from the meter, 6 hours, TLS and no
TLS, plus the firmware at 90 and 60 mW. One run of each; prints the table and writes
the capacitor-voltage plot (first 20 minutes, paper vs firmware, TLS) to
tools/bench/energy_paper_vs_firmware.png (override with BENCH_ENERGY_PLOT).

    python -m tools.bench.bench_energy [hours]
"""
import os
import sys
from concurrent.futures import ProcessPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
PLOT = os.environ.get("BENCH_ENERGY_PLOT") or os.path.join(HERE, "energy_paper_vs_firmware.png")

CASES = [
    ("paper", True, 130.0),
    ("paper", False, 130.0),
    ("firmware", True, 130.0),
    ("firmware", False, 130.0),
    ("firmware", True, 90.0),
    ("firmware", True, 60.0),
]


def one(args):
    policy, tls, mw, hours = args
    from tools import sim
    rep, trace = sim.run(policy, tls, mw, hours, seed=1)
    # keep the first 20 minutes of the trace for the plot (pickling the whole run is slow)
    cut = 20 * 60.0
    keep = [(t, v) for t, v in zip(trace.t, trace.v) if t <= cut]
    trace.t = [t for t, _ in keep]
    trace.v = [v for _, v in keep]
    trace.marks = [(t, k) for t, k in trace.marks if t <= cut]
    return rep, trace


def fmt(x, nd=1):
    return "-" if x is None else ("%.*f" % (nd, x))


def main():
    hours = float(sys.argv[1]) if len(sys.argv) > 1 else 6.0
    with ProcessPoolExecutor(max_workers=2) as ex:
        res = list(ex.map(one, [(p, t, mw, hours) for p, t, mw in CASES]))
    paper_ref = {True: (54.6, 20, 140), False: (33.0, 19, 68)}
    print("simulated %.1f h per case, seed 1, board: tools/simparams.py" % hours)
    print()
    head = ("policy", "TLS", "mW", "upload s mean/min/max (p95)", "reading s mean/max",
            "latency s mean", "measured", "delivered", "lost", "cuts", "Vmin")
    print("%-9s %-4s %4s  %-30s %-18s %-9s %8s %9s %4s %5s %5s" % head)
    for (p, t, mw), (rep, _) in zip(CASES, res):
        u = rep["upload_interval_s"]
        r = rep["reading_interval_s"]
        print("%-9s %-4s %4d  %-30s %-18s %-9s %8d %9d %4d %5d %5s" % (
            p, "yes" if t else "no", mw,
            "%s/%s/%s (%s)" % (fmt(u["mean"]), fmt(u["min"]), fmt(u["max"]), fmt(u.get("p95"))),
            "%s/%s" % (fmt(r["mean"]), fmt(r["max"])), fmt(rep["latency_s"]["mean"]),
            rep["readings_measured"], rep["readings_delivered"], rep["readings_lost"],
            rep["brownouts"], fmt(rep["vcap_min_v"], 2)))
    print()
    print("paper Table I (measured): TLS mean 54.6 s min 20 max 140; no TLS mean 33 s min 19 max 68")
    for (p, t, mw), (rep, _) in zip(CASES, res):
        if p == "paper":
            ref = paper_ref[t]
            m = rep["upload_interval_s"]["mean"]
            print("  paper %-6s simulated mean %.1f s = %+.0f %% of the measured %.1f s" % (
                "TLS" if t else "no TLS", m, 100.0 * (m - ref[0]) / ref[0], ref[0]))
    fw = res[2][0]
    pp = res[0][0]
    print("  data rate, TLS, 130 mW: firmware one reading per %.2f s vs paper one per %.1f s "
          "(x%.1f)" % (fw["reading_interval_s"]["mean"], pp["upload_interval_s"]["mean"],
                       pp["upload_interval_s"]["mean"] / fw["reading_interval_s"]["mean"]))
    from tools import sim
    sim.plot_panels([(res[0][1], "paper policy (reference design), TLS, 130 mW: first 20 min"),
                     (res[2][1], "firmware policy (our app + energy manager), TLS, 130 mW: first 20 min")],
                    PLOT, 0.0, 20 * 60.0)
    print()
    print("plot:", os.path.relpath(PLOT))


if __name__ == "__main__":
    main()
