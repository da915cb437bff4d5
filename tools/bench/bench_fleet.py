# Fleet benchmark: ingest throughput through mosquitto with 1, 2 and 4 worker processes
# into a throw-away PostgreSQL server (durable commits, as a pilot would run it), then
# the time of a month's aggregate for a building of 25 households (10-minute and daily
# steps), on PostgreSQL and on SQLite.
#
#   python -m tools.bench.bench_fleet [--dongles 1000] [--seconds 30]
#
# Target (issue #20): >= 2,000 readings/s (10 x the load of 1,000 dongles reading every
# 5 s) on this 2-core machine, more with 2 workers than with 1. Figures vary with what
# else the machine runs; nothing here asserts them.
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tools import fleetagg, fleetbench, fleetdb  # noqa: E402
from tools.pgserver import PgServer  # noqa: E402

MONTH = 30 * 86400
HOUSEHOLDS = 25
INTERVAL = 60          # one reading a minute: 1.08 M rows for the month


def load_month(db, t0):
    """25 households, a month of readings every INTERVAL s (fleetbench's load model)."""
    n = MONTH // INTERVAL
    devs = ["bldg-%02d" % i for i in range(HOUSEHOLDS)]
    t = time.time()
    for d in devs:
        recs = fleetbench.readings(d, n, t0=t0, interval=INTERVAL, rnd=random.Random(d))
        for i in range(0, n, 5000):
            db.ingest(d, "bench", None, {"ep": 0}, recs[i:i + 5000])
    db.add_members("bldg", "building", devs)
    for d in devs:
        db.grant(d, "building_aggregate", at=t0)
    return devs, HOUSEHOLDS * n, time.time() - t


def time_aggregate(url, label):
    db = fleetdb.open_db(url)
    t0 = fleetbench.T0
    devs, rows, load_s = load_month(db, t0)
    out = {"db": label, "rows": rows, "load_s": round(load_s, 1)}
    for step in ("10min", "day"):
        t = time.time()
        res = fleetagg.aggregate(db, "bldg", "building_aggregate", step, t0, t0 + MONTH,
                                 now=t0 + MONTH + 1)
        out[step + "_s"] = round(time.time() - t, 3)
        out[step + "_steps"] = len(res["rows"])
    db.close()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--dongles", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    print("ingest: %d dongles, %g s of the 2,000 readings/s target, 5%% of batches sent "
          "twice; PostgreSQL 15 (durable commits) in a temp folder" % (a.dongles, a.seconds))
    # rounds alternate 1, 2, 4 workers so a swing in the machine's other load falls on
    # every configuration; the median round is reported
    print("%8s %8s %8s %8s %6s %9s %12s   %s" % ("workers", "sent", "stored", "dup_st",
                                                 "lost", "ingest_s", "readings/s",
                                                 "(each round)"))
    runs = {1: [], 2: [], 4: []}
    for _ in range(a.rounds):
        for w in (1, 2, 4):
            r = subprocess.run([sys.executable, "-m", "tools.fleetbench", "--dongles",
                                str(a.dongles), "--workers", str(w), "--db", "pg",
                                "--seconds", str(a.seconds), "--json"], cwd=ROOT,
                               capture_output=True, text=True)
            if r.returncode not in (0, 1) or not r.stdout.strip():
                print("workers=%d failed: %s" % (w, r.stderr[-500:]))
                return 1
            runs[w].append(json.loads(r.stdout.strip().splitlines()[-1]))
    for w, rs in runs.items():
        rs.sort(key=lambda d: d["readings_per_s"])
        d = rs[len(rs) // 2]
        print("%8d %8d %8d %8d %6d %9.2f %12.0f   %s" % (
            w, d["sent"], d["stored"], d["duplicates_stored"], d["lost"], d["ingest_s"],
            d["readings_per_s"], " ".join("%.0f" % x["readings_per_s"] for x in rs)),
            flush=True)
    # the target load offered at its own pace: do the workers keep up?
    r = subprocess.run([sys.executable, "-m", "tools.fleetbench", "--dongles", str(a.dongles),
                        "--workers", "1", "--db", "pg", "--seconds", str(a.seconds),
                        "--rate", "2000", "--json"], cwd=ROOT, capture_output=True, text=True)
    if r.stdout.strip():
        d = json.loads(r.stdout.strip().splitlines()[-1])
        print("\npaced at 2,000 readings/s, 1 worker: %d stored of %d, %.0f readings/s, "
              "%.2f s behind when the dongles were done" % (d["stored"], d["unique"],
                                                             d["readings_per_s"], d["lag_s"]))
    else:
        print("paced run failed: %s" % r.stderr[-500:])
        return 1
    print("\na month's aggregate, building of %d households, a reading every %d s:"
          % (HOUSEHOLDS, INTERVAL))
    with PgServer() as pg:
        print(json.dumps(time_aggregate(pg.url, "postgresql")), flush=True)
    with tempfile.TemporaryDirectory() as d:
        print(json.dumps(time_aggregate("sqlite:///" + os.path.join(d, "f.sqlite"),
                                        "sqlite")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
