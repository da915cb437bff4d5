"""The energy simulator with the firmware on the chips' own interpreters
(`tools.sim --target`, tools/simremote.py) next to the same run in-process on CPython:
readings, losses, port calls made across the loopback link, wall time per simulated
hour, and how many report figures differ from CPython's (the batch byte counts are left
out: the store epoch in every batch is random, its digit count varies).

    python -m tools.bench.bench_sim_target [hours]
"""
import sys
import time

# without TLS on both: the ESP8266 leaves it out, the C3 variant's axTLS cannot verify
CASES = ["esp8266", "esp32c3"]
def _run(chip, hours, target):
    from tools import sim
    t0 = time.time()
    rep, _ = sim.run("firmware", False, 130.0, hours, seed=1, chip=chip, source="meter",
                     target=target)
    return rep, time.time() - t0


def main(argv):
    hours = float(argv[0]) if argv else 1.0
    from tools import mp32
    why = mp32.available()
    if why:
        print("chip variants not available: %s" % why)
        return 1
    print("simulated %.1f h per case, seed 1, meter model, board ltr" % hours)
    fm = "%-8s %-8s %8s %9s %5s %10s %12s %8s"
    print(fm % ("chip", "runs on", "readings", "delivered", "lost", "port calls",
                "wall s / h", "diffs"))
    for chip in CASES:
        ref, t_ref = _run(chip, hours, None)
        rep, t_rep = _run(chip, hours, chip)
        from tools.sim import report_diff
        diffs = report_diff(ref, rep)
        for r, where, t, d in ((ref, "CPython", t_ref, "-"), (rep, chip, t_rep, str(len(diffs)))):
            print(fm % (chip, where, r["readings_measured"], r["readings_delivered"],
                        r["readings_lost"], r.get("port_calls") or "-", "%.1f" % (t / hours), d))
        if diffs:
            print("  differing figures:", ", ".join(sorted(diffs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
