# A pilot end to end, as the README tells it: dongles' signed batches through mosquitto
# to two workers into PostgreSQL, then the command line: a building, its households'
# consents, the building's 10-minute aggregate as CSV, a curve page, the use log. The
# expected aggregate is worked out here from the readings the dongles sent (index
# differences per 10 minutes, statistics.quantiles), not by tools/fleetagg.py.
import csv
import io
import json
import math
import statistics
import subprocess
import sys

from tests.host.fleet_fixtures import pg_server, pg_url  # noqa: F401 (fixtures)
from tools import fleetbench
from tools.fleetbench import Broker, WorkerPool

N = 12
PER = 360               # 30 minutes of readings every 5 s


def cli(url, *args, check=True):
    r = subprocess.run([sys.executable, "-m", "tools.fleet"] + list(args) + ["--db", url],
                       cwd=fleetbench.ROOT, capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_pilot_end_to_end(tmp_path, pg_url):
    devs = fleetbench.dongle_ids(N, seed=99)
    keys = tmp_path / "keys"
    fleetbench.write_keys(str(keys), devs)
    msgs, unique, sent = fleetbench.make_batches(devs, PER, dup=0.2, seed=4)
    with Broker() as broker:
        with WorkerPool(2, pg_url, broker.port, str(keys), group="pilot") as pool:
            fleetbench.publish(broker.port, msgs, conns=2)
            assert pool.wait_handled(len(msgs), idle=30) == len(msgs)
    seen = [json.loads(ln) for ln in cli(pg_url, "devices").stdout.splitlines()]
    assert sorted(d["dev"] for d in seen) == sorted(devs)
    assert sum(d["readings"] for d in seen) == unique == N * PER

    cli(pg_url, "group", "add", "rue-a", *devs, "--kind", "building")
    cli(pg_url, "consent", "grant", *devs, "--use", "building_aggregate",
        "--at", "2025-12-01T00:00:00")
    since, until = fleetbench.T0, fleetbench.T0 + PER * 5
    r = cli(pg_url, "aggregate", "--group", "rue-a", "--format", "csv",
            "--since", str(since), "--until", str(until))
    rows = list(csv.DictReader(io.StringIO(r.stdout)))

    # independent: each household's index at its last reading in every 10 minutes
    last = {}
    for d in devs:
        for rec in fleetbench.readings(d, PER):
            last.setdefault(d, {})[rec["t"] // 600 * 600] = rec["energy_import_wh"]
    starts = sorted(s for s in last[devs[0]] if s - 600 in last[devs[0]])
    assert [int(x["start"]) for x in rows] == starts and len(starts) == 2
    for row in rows:
        s = int(row["start"])
        vals = [last[d][s] - last[d][s - 600] for d in devs]
        q = statistics.quantiles(vals, n=4, method="inclusive")
        assert row["group"] == "rue-a" and row["rule"] == "restricted"
        assert int(row["group_size"]) == N and int(row["threshold"]) == 11
        assert int(row["households"]) == N and int(row["sum_wh"]) == sum(vals)
        assert [int(row[k]) for k in ("q1_wh", "median_wh", "q3_wh")] == \
            [math.ceil(x) for x in q]

    # two households withdraw: 10 left, under the restricted rule's 11
    cli(pg_url, "consent", "withdraw", devs[0], devs[1], "--use", "building_aggregate")
    r = cli(pg_url, "aggregate", "--group", "rue-a", "--since", str(since), "--until",
            str(until), check=False)
    assert r.returncode == 3 and "10 household(s)" in r.stderr and "at least 11" in r.stderr
    # ... unless the operator's configured threshold is lower (here 10)
    page = tmp_path / "rue-a.html"
    cli(pg_url, "plot", "--group", "rue-a", "--restricted", "10", "--since", str(since),
        "--until", str(until), "--out", str(page))
    assert "<svg" in page.read_text() and "10 households" in page.read_text()
    # individual curve: no consent, no curve
    r = cli(pg_url, "curve", "--dev", devs[2], check=False)
    assert r.returncode == 3 and "no individual_curve consent" in r.stderr
    cli(pg_url, "consent", "grant", devs[2], "--use", "individual_curve")
    r = cli(pg_url, "curve", "--dev", devs[2], "--format", "json")
    assert len(json.loads(r.stdout)["rows"]) == PER
    log = [json.loads(ln) for ln in cli(pg_url, "log").stdout.splitlines()]
    assert [u["what"] for u in log] == ["aggregate", "aggregate refused", "aggregate",
                                        "curve refused", "individual_curve"]
    assert len(log[0]["consents"]) == N and len(log[2]["consents"]) == N - 2
