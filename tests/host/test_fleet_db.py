# tools/fleetdb.py on a real PostgreSQL server and on SQLite: the same calls give the same
# answers; a row's identity is (dev, ep, seq) (docs/wire-format.md "Body") and stays
# unique when several processes write at once; a signed batch's counter follows the
# contract's rule 4 ("greater than the last counter accepted for (dev, ch)").
import multiprocessing

import pytest

from tests.host.fleet_fixtures import db_url, pg_server, pg_url  # noqa: F401 (fixtures)
from tools import fleetdb

T0 = 1_700_000_000


def rows(first, n, e0=10_000):
    return [{"seq": s, "kind": "reading", "t": T0 + 5 * s, "t_src": "meter",
             "energy_import_wh": e0 + 3 * s, "apparent_power_va": 500 + s}
            for s in range(first, first + n)]


def test_ingest_dedupe_and_counters(db_url):
    db = fleetdb.open_db(db_url)
    assert db.ingest("aa01", "mqtt", 5, {"ep": 0, "first": 0, "last": 19}, rows(0, 20)) == (20, 0)
    # the same rows re-sealed with a new counter (a device that lost the ack): kept once
    assert db.ingest("aa01", "mqtt", 6, {"ep": 0}, rows(10, 20)) == (10, 10)
    # counter not above the last: refused, nothing stored, the last counter reported
    for ctr in (6, 5, 0):
        with pytest.raises(fleetdb.CounterReplay) as e:
            db.ingest("aa01", "mqtt", ctr, {"ep": 0}, rows(100, 3))
        assert e.value.last_ctr == 6
    assert db.count() == 30
    # counters are per channel and per device
    assert db.ingest("aa01", "https", 1, {"ep": 0}, rows(30, 1)) == (1, 0)
    assert db.ingest("bb02", "mqtt", 1, {"ep": 0}, rows(0, 2)) == (2, 0)
    # a new store epoch numbers seq from 0 again: different identities
    assert db.ingest("aa01", "mqtt", 7, {"ep": 1}, rows(0, 4)) == (4, 0)
    # unsigned (ctr None): no counter involved, still de-duplicated
    assert db.ingest("cc03", "mqtt", None, {"ep": 0}, rows(0, 3) + rows(0, 3)) == (3, 3)
    assert db.count() == 30 + 1 + 2 + 4 + 3
    assert db.count("aa01") == 35
    devs = {d["dev"]: d for d in db.devices()}
    assert sorted(devs) == ["aa01", "bb02", "cc03"]
    assert devs["aa01"]["readings"] == 35 and devs["aa01"]["batches"] == 4
    assert db.last_ctr("aa01", "mqtt") == 7 and db.last_ctr("zz", "mqtt") is None
    db.close()


def test_replay_window(db_url):
    # window=63 (workers sharing a subscription): each counter accepted once, in any
    # order, within 63 of the highest; older or repeated ones refused
    db = fleetdb.open_db(db_url)
    order = [10, 12, 11, 80, 20, 17, 16, 79, 78]
    accepted = []
    for c in order + [12, 80, 16]:
        try:
            db.ingest("dd", "mqtt", c, {"ep": 0}, rows(c, 1), window=63)
            accepted.append(c)
        except fleetdb.CounterReplay as e:
            assert e.last_ctr == 80
    # 80 - 63 = 17: counters 17..79 are inside the window; 16, and 10-12 after 80, are not
    assert accepted == [10, 12, 11, 80, 20, 17, 79, 78]
    with pytest.raises(ValueError):
        db.ingest("dd", "mqtt", 81, {"ep": 0}, rows(0, 1), window=64)
    db.close()


def test_bad_input_stores_nothing(db_url):
    db = fleetdb.open_db(db_url)
    bad = [
        ("aa", "mqtt", True, {"ep": 0}, rows(0, 1)),            # bool is not a counter
        ("aa", "mqtt", -1, {"ep": 0}, rows(0, 1)),
        ("aa", "mqtt", 1, {"ep": "0"}, rows(0, 1)),
        ("aa", "mqtt", 1, {"ep": 0}, rows(0, 2) + [{"seq": "3"}]),
        ("aa", "mqtt", 1, {"ep": 0}, rows(0, 2) + [{"kind": "reading"}]),
        ("", "mqtt", 1, {"ep": 0}, rows(0, 1)),
    ]
    for args in bad:
        with pytest.raises(ValueError):
            db.ingest(*args)
    assert db.count() == 0 and db.last_ctr("aa", "mqtt") is None
    # a well-formed batch after them is taken (nothing half-open was left behind)
    assert db.ingest("aa", "mqtt", 1, {"ep": 0}, rows(0, 2)) == (2, 0)
    db.close()


def test_readings_range_and_elapsed_times(db_url):
    db = fleetdb.open_db(db_url)
    rs = rows(0, 10)
    # a record timed only by elapsed seconds since another (reading-schema t_src
    # "elapsed"): its time is the reference's plus dt_s
    rs.append({"seq": 10, "kind": "reading", "t_src": "elapsed", "dt_s": 51, "ref_seq": 9,
               "energy_import_wh": 10_031})
    rs.append({"seq": 11, "kind": "raw", "raw": "0a0b"})          # no time at all
    db.ingest("ee", "mqtt", 1, {"ep": 0}, rs)
    got = db.readings("ee")
    assert [r["seq"] for r in got] == list(range(12))
    assert got[10]["t"] == T0 + 45 + 51 and got[10]["t_src"] == "elapsed"
    assert "t" not in got[11] and got[11]["raw"] == "0a0b"
    # since <= t < until
    win = db.readings(since=T0 + 10, until=T0 + 30)
    assert [r["seq"] for r in win] == [2, 3, 4, 5]
    assert all(r["dev"] == "ee" and r["ep"] == 0 for r in win)
    assert [r["seq"] for r in db.readings(since=T0 + 90)] == [10]
    db.close()


def test_time_index_is_brin_on_postgresql(pg_url):
    db = fleetdb.open_db(pg_url)
    (idx,), = db.query("SELECT indexdef FROM pg_indexes WHERE indexname = 'readings_t'")
    assert "USING brin (t)" in idx
    # the identity is the primary key (a database constraint, not process memory)
    (pk,), = db.query("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                      "WHERE conrelid = 'readings'::regclass AND contype = 'p'")
    assert pk == "PRIMARY KEY (dev, ep, seq)"
    db.close()


def _writer(url, start, q):
    db = fleetdb.open_db(url)
    total = 0
    # overlapping batches of one device, each re-sealed with this writer's counters on
    # its own channel, so both writers reach the INSERT for the same identities
    for i in range(40):
        s, _ = db.ingest("ff", "w%d" % start, i + 1, {"ep": 0}, rows(i * 5, 10))
        total += s
    db.close()
    q.put(total)


def test_concurrent_writers_store_each_identity_once(db_url):
    fleetdb.open_db(db_url).close()            # schema made once, as the workers do
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    ps = [ctx.Process(target=_writer, args=(db_url, k, q)) for k in range(3)]
    for p in ps:
        p.start()
    totals = [q.get(timeout=120) for _ in ps]
    for p in ps:
        p.join(30)
    db = fleetdb.open_db(db_url)
    # identities 0..204 (batch 39 covers 195..204): each stored by exactly one writer
    assert db.count() == 205
    assert sum(totals) == 205
    assert sorted(r["seq"] for r in db.readings("ff")) == list(range(205))
    db.close()


def test_concurrent_first_counter(pg_url):
    # many processes racing on the first batch of the same (dev, ch) with the same
    # counter: exactly one is accepted, the others see a replay
    fleetdb.open_db(pg_url).close()
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    ps = [ctx.Process(target=_same_ctr, args=(pg_url, q)) for _ in range(4)]
    for p in ps:
        p.start()
    res = sorted(q.get(timeout=120) for _ in ps)
    for p in ps:
        p.join(30)
    assert res == ["ok", "replay", "replay", "replay"]


def _same_ctr(url, q):
    db = fleetdb.open_db(url)
    try:
        db.ingest("gg", "mqtt", 1, {"ep": 0}, rows(0, 5))
        q.put("ok")
    except fleetdb.CounterReplay:
        q.put("replay")
    db.close()


def test_open_db_urls(tmp_path):
    for url in ("sqlite:///" + str(tmp_path / "a.sqlite"), str(tmp_path / "b.sqlite"),
                "sqlite:" + str(tmp_path / "c.sqlite")):
        db = fleetdb.open_db(url)
        assert db.engine == "sqlite"
        db.close()
    assert sorted(p.name for p in tmp_path.glob("*.sqlite")) == ["a.sqlite", "b.sqlite",
                                                                 "c.sqlite"]
    with pytest.raises(ValueError):
        fleetdb.open_db("sqlite://host/x")


def test_columns_null_in_a_whole_batch(db_url):
    # a batch of raw records only: no time, no energy in any row (arrays of NULLs on
    # PostgreSQL), and an empty batch
    db = fleetdb.open_db(db_url)
    raw = [{"seq": 1, "kind": "raw", "raw": "00"}, {"seq": 2, "kind": "raw", "raw": "01"}]
    assert db.ingest("hh", "mqtt", 1, {"ep": 0}, raw) == (2, 0)
    assert db.ingest("hh", "mqtt", 2, {"ep": 0}, []) == (0, 0)
    big = {"seq": 3, "kind": "reading", "t": T0, "energy_import_wh": 10 ** 13}
    assert db.ingest("hh", "mqtt", 3, {"ep": 0}, [big]) == (1, 0)
    assert [r.get("raw") for r in db.readings("hh")] == ["00", "01", None]
    assert db.readings("hh")[2]["energy_import_wh"] == 10 ** 13
    assert db.devices()[0]["batches"] == 3
    db.close()
