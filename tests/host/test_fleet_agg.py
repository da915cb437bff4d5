# Consent registry and aggregates (tools/fleetagg.py) on PostgreSQL and SQLite, against
# the publication rules of the Lyon deployment (D3.4.2 §4.3: >= 11 delivery points for
# restricted use, >= 101 for public use, sums and rounded-up quartiles incl. the median;
# individual curves with consent only). Expected figures come from the data the test
# builds (each household's consumption per step is chosen here) and from Python's
# `statistics` module, not from the code under test.
import datetime
import math
import random
import statistics
from zoneinfo import ZoneInfo

import pytest

from tests.host.fleet_fixtures import db_url, pg_server, pg_url  # noqa: F401 (fixtures)
from tools import fleetagg, fleetdb

DAY0 = 1_767_225_600            # 2026-01-01T00:00:00Z
STEP = 600


def household(db, dev, consumption, start=DAY0, e0=5_000_000):
    """Store readings for one household whose energy in each 10-minute step starting at
    start + i*600 is consumption[i] Wh: three readings per step (at +0, +300, +590 s),
    the last one carrying the index at the step's end. One extra step before `start`
    gives the first step its previous index. -> the index series' end."""
    rs = []
    seq = 0
    e = e0
    rs.append({"seq": seq, "kind": "reading", "t": start - 10, "t_src": "ntp",
               "energy_import_wh": e})
    for i, wh in enumerate(consumption):
        s = start + i * STEP
        for dt, part in ((0, wh // 3), (300, wh // 3), (590, wh - 2 * (wh // 3))):
            seq += 1
            e += part
            rs.append({"seq": seq, "kind": "reading", "t": s + dt, "t_src": "ntp",
                       "energy_import_wh": e, "apparent_power_va": part * 12})
    for i in range(0, len(rs), 200):
        db.ingest(dev, "mqtt", None, {"ep": 0}, rs[i:i + 200])
    return e


def town(db, n, steps, grp="b1", uses=("building_aggregate",), seed=3, kind="building"):
    """n households with random consumption per step; all in group grp, consenting to
    `uses`. -> {dev: [Wh per step]}."""
    rnd = random.Random(seed)
    out = {}
    for i in range(n):
        dev = "%s-%03d" % (grp, i)
        cons = [rnd.randint(20, 400) for _ in range(steps)]
        household(db, dev, cons)
        out[dev] = cons
    db.add_members(grp, kind, list(out))
    for dev in out:
        for u in uses:
            db.grant(dev, u, at=DAY0 - 86400)
    return out


def expected(values, unit):
    q = statistics.quantiles(values, n=4, method="inclusive")
    return {"households": len(values), "sum_wh": sum(values),
            "q1_wh": math.ceil(q[0] / unit) * unit, "median_wh": math.ceil(q[1] / unit) * unit,
            "q3_wh": math.ceil(q[2] / unit) * unit}


def agg(db, grp, use, **kw):
    kw.setdefault("since", DAY0)
    kw.setdefault("until", DAY0 + 86400)
    return fleetagg.aggregate(db, grp, use, now=DAY0 + 2 * 86400, **kw)


def test_building_aggregate_matches_statistics(db_url):
    db = fleetdb.open_db(db_url)
    data = town(db, 25, 6)
    res = agg(db, "b1", "building_aggregate")
    assert res["rule"] == "restricted" and res["threshold"] == 11 and res["group_size"] == 25
    assert [r["start"] for r in res["rows"]] == [DAY0 + i * STEP for i in range(6)]
    for i, row in enumerate(res["rows"]):
        vals = [c[i] for c in data.values()]
        assert {k: row[k] for k in expected(vals, 1)} == expected(vals, 1)
    # the use log names every consent relied on
    log = db.uses_log()[-1]
    assert log["what"] == "aggregate" and log["grp"] == "b1" and log["size"] == 25
    want = sorted(c["id"] for c in db.consents(use="building_aggregate"))
    assert log["consents"] == want == res["consents"] and len(want) == 25
    db.close()


def test_quartiles_on_awkward_sizes():
    # sizes where the order-statistic positions fall on quarters, odd/even, repeats
    rnd = random.Random(11)
    for n in (1, 2, 3, 4, 5, 11, 12, 101, 250):
        vals = [rnd.randint(0, 5000) for _ in range(n)]
        if n > 3:
            vals[:3] = [vals[3]] * 3
        got = fleetagg.quartiles(vals)
        if n == 1:
            assert got == [vals[0]] * 3
            continue
        want = statistics.quantiles(vals, n=4, method="inclusive")
        assert [float(q) for q in got] == pytest.approx(want, abs=1e-9)
        for unit in (1, 10, 1000):
            assert [fleetagg.round_up(q, unit) for q in got] == \
                [math.ceil(w / unit) * unit for w in want]


def test_public_threshold_10_vs_101(db_url):
    db = fleetdb.open_db(db_url)
    town(db, 10, 3, grp="small", uses=("public_aggregate",))
    with pytest.raises(fleetagg.Refusal) as e:
        agg(db, "small", "public_aggregate")
    r = e.value.result
    assert r["rows"] == [] and r["group_size"] == 10
    assert "10 household(s)" in r["reason"] and "at least 101" in r["reason"]
    # the refusal is logged too, with what it looked at
    assert db.uses_log()[-1]["what"] == "aggregate refused"
    data = town(db, 101, 3, grp="district", uses=("public_aggregate",), seed=5,
                kind="district")
    res = agg(db, "district", "public_aggregate")
    assert res["rule"] == "public" and res["group_size"] == 101 and len(res["rows"]) == 3
    for i, row in enumerate(res["rows"]):
        vals = [c[i] for c in data.values()]
        # public tables: quartiles rounded up to kWh (D3.4.2 §4.3)
        assert {k: row[k] for k in expected(vals, 1000)} == expected(vals, 1000)
    # consent to the building aggregate is not consent to publish
    with pytest.raises(fleetagg.Refusal):
        agg(db, "district", "building_aggregate")
    db.close()


def test_withdrawing_consent_drops_the_household_from_the_next_aggregate(db_url):
    db = fleetdb.open_db(db_url)
    data = town(db, 12, 2)
    first = agg(db, "b1", "building_aggregate")
    assert [r["households"] for r in first["rows"]] == [12, 12]
    gone = "b1-004"
    (cid,) = [c["id"] for c in db.consents(dev=gone, use="building_aggregate")]
    assert db.withdraw(gone, "building_aggregate", at=DAY0 + 86400) == [cid]
    second = agg(db, "b1", "building_aggregate")
    assert [r["households"] for r in second["rows"]] == [11, 11]
    for i in range(2):
        vals = [c[i] for d, c in data.items() if d != gone]
        assert second["rows"][i]["sum_wh"] == first["rows"][i]["sum_wh"] - data[gone][i]
        assert {k: second["rows"][i][k] for k in expected(vals, 1)} == expected(vals, 1)
    assert cid not in second["consents"] and cid in first["consents"]
    # history keeps the dates; one more withdrawal and the building falls under 11
    hist = [c for c in db.consent_history(gone)]
    assert hist[0]["withdrawn"] == DAY0 + 86400
    db.withdraw("b1-007", at=DAY0 + 86400)
    with pytest.raises(fleetagg.Refusal) as e:
        agg(db, "b1", "building_aggregate")
    assert "10 household(s)" in e.value.result["reason"]
    assert e.value.result["group_size"] == 10
    db.close()


def test_steps_with_too_few_households_are_left_out(db_url):
    db = fleetdb.open_db(db_url)
    data = town(db, 11, 4)
    # one more household in the building, consenting, that has data for 2 steps only
    household(db, "b1-late", [100, 100])
    db.add_members("b1", "building", ["b1-late"])
    db.grant("b1-late", "building_aggregate", at=DAY0)
    res = agg(db, "b1", "building_aggregate")
    assert [r["households"] for r in res["rows"]] == [12, 12, 11, 11]
    assert res["suppressed_steps"] == 0
    res = agg(db, "b1", "building_aggregate", thresholds={"restricted": 12})
    assert [r["start"] for r in res["rows"]] == [DAY0, DAY0 + STEP]
    assert res["suppressed_steps"] == 2 and res["threshold"] == 12
    assert data  # built
    db.close()


def test_daily_step_in_local_time(db_url):
    # 11 households over 3 local days in Paris (UTC+1 in January): a day's energy is
    # the sum of its 10-minute consumptions, days cut at local midnight
    db = fleetdb.open_db(db_url)
    paris = ZoneInfo("Europe/Paris")
    start = int(datetime.datetime(2026, 1, 1, tzinfo=paris).timestamp())
    steps = 3 * 144
    rnd = random.Random(8)
    data = {}
    for i in range(11):
        dev = "day-%02d" % i
        cons = [rnd.randint(0, 60) for _ in range(steps)]
        household(db, dev, cons, start=start)
        data[dev] = cons
    db.add_members("bd", "building", list(data))
    for dev in data:
        db.grant(dev, "building_aggregate", at=0)
    res = fleetagg.aggregate(db, "bd", "building_aggregate", step="day", tz="Europe/Paris",
                             since=start, until=start + 3 * 86400, now=start + 4 * 86400)
    # the day before the first holds one reading (10 s before midnight): the first
    # day's index difference starts from it
    assert [r["time"] for r in res["rows"]] == ["2026-01-0%dT00:00:00+01:00" % d
                                                for d in (1, 2, 3)]
    for d, row in enumerate(res["rows"]):
        vals = [sum(c[d * 144:(d + 1) * 144]) for c in data.values()]
        assert {k: row[k] for k in expected(vals, 1)} == expected(vals, 1)
    db.close()


def test_individual_curve_needs_consent(db_url):
    db = fleetdb.open_db(db_url)
    household(db, "solo", [30, 40, 50])
    with pytest.raises(fleetagg.Refusal) as e:
        fleetagg.individual_curve(db, "solo", now=DAY0 + 86400)
    assert "no individual_curve consent" in e.value.result["reason"]
    # consent to aggregates is not consent to the curve
    db.grant("solo", "building_aggregate", at=DAY0)
    with pytest.raises(fleetagg.Refusal):
        fleetagg.individual_curve(db, "solo", now=DAY0 + 86400)
    cid = db.grant("solo", "individual_curve", at=DAY0)
    res = fleetagg.individual_curve(db, "solo", now=DAY0 + 86400)
    assert len(res["rows"]) == 10 and res["consents"] == [cid]
    assert db.uses_log()[-1]["consents"] == [cid]
    csv = fleetagg.to_csv(res).splitlines()
    assert csv[0].startswith("dev,use,rule,threshold,group_size") and len(csv) == 11
    db.withdraw("solo", "individual_curve", at=DAY0 + 86400)
    with pytest.raises(fleetagg.Refusal):
        fleetagg.individual_curve(db, "solo", now=DAY0 + 86400 + 1)
    # a consent granted in the future is not in force yet
    db.grant("solo", "individual_curve", at=DAY0 + 10 * 86400)
    with pytest.raises(fleetagg.Refusal):
        fleetagg.individual_curve(db, "solo", now=DAY0 + 86400 + 2)
    db.close()


def test_sqlite_and_postgresql_agree(tmp_path, pg_url):
    results = []
    for url in ("sqlite:///" + str(tmp_path / "f.sqlite"), pg_url):
        db = fleetdb.open_db(url)
        town(db, 30, 12, seed=21)
        db.withdraw("b1-003", at=DAY0 + 86400)
        r10 = agg(db, "b1", "building_aggregate")
        rday = agg(db, "b1", "building_aggregate", step="day")
        results.append((r10["rows"], rday["rows"], r10["consents"], r10["group_size"]))
        db.close()
    assert results[0] == results[1]
    assert results[0][3] == 29 and len(results[0][0]) == 12


def test_exports_carry_size_and_rule(db_url, tmp_path):
    db = fleetdb.open_db(db_url)
    town(db, 11, 3)
    res = agg(db, "b1", "building_aggregate")
    lines = fleetagg.to_csv(res).splitlines()
    assert lines[0] == ("group,use,rule,threshold,group_size,step,log_id,time,start,"
                        "households,sum_wh,q1_wh,median_wh,q3_wh")
    assert lines[1].startswith("b1,building_aggregate,restricted,11,11,10min,%d,"
                               % res["log_id"])
    import json
    back = json.loads(fleetagg.to_json(res))
    assert back["group_size"] == 11 and back["rule"] == "restricted"
    page = fleetagg.plot_html(res)
    assert page.count("<polyline") == 2 and "restricted rule, 11 households" in page
    fleetagg.plot_png(res, str(tmp_path / "b1.png"))
    assert (tmp_path / "b1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    db.close()


def test_daily_step_across_the_spring_clock_change(db_url):
    # Paris moves to summer time on 2026-03-29 at 02:00 (a 23-hour day): each local day's
    # value is the sum of the 10-minute steps that start on that local date
    db = fleetdb.open_db(db_url)
    paris = ZoneInfo("Europe/Paris")
    start = int(datetime.datetime(2026, 3, 28, tzinfo=paris).timestamp())
    end = int(datetime.datetime(2026, 3, 31, tzinfo=paris).timestamp())
    steps = (end - start) // STEP
    assert steps == 3 * 144 - 6
    rnd = random.Random(12)
    data = {}
    for i in range(11):
        dev = "dst-%02d" % i
        data[dev] = [rnd.randint(0, 50) for _ in range(steps)]
        household(db, dev, data[dev], start=start)
    db.add_members("bdst", "building", list(data))
    for dev in data:
        db.grant(dev, "building_aggregate", at=0)
    res = fleetagg.aggregate(db, "bdst", "building_aggregate", step="day",
                             tz="Europe/Paris", since=start, until=end, now=end + 86400)
    day_of = [datetime.datetime.fromtimestamp(start + i * STEP, paris).date()
              for i in range(steps)]
    days = sorted(set(day_of))
    assert [r["time"][:10] for r in res["rows"]] == [str(d) for d in days]
    assert [r["time"][19:] for r in res["rows"]] == ["+01:00", "+01:00", "+02:00"]
    for row, d in zip(res["rows"], days):
        vals = [sum(v for v, dd in zip(c, day_of) if dd == d) for c in data.values()]
        assert {k: row[k] for k in expected(vals, 1)} == expected(vals, 1)
    db.close()
