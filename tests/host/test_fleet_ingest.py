# Fleet ingest through the real pieces: mosquitto (MQTT 5 shared subscription), worker
# processes (`python -m tools.fleet worker`), PostgreSQL (and SQLite). Batches are the
# firmware's own bodies (firmware/uplink/batch.py) sealed by its sign.py.
import json

import pytest

from tests.host.fleet_fixtures import db_url, pg_server  # noqa: F401 (fixtures)
from tools import fleetbench, fleetdb
from tools.fleetbench import Broker, WorkerPool

DEV = "a1b2c3d4e5f6"
KEY = fleetbench.dongle_key(DEV)


def publish(port, msgs):
    fleetbench.publish(port, msgs, conns=1)


@pytest.fixture
def setup(tmp_path, db_url):
    keys = tmp_path / "keys"
    keys.write_text("# dev key\n%s %s\n" % (DEV.upper(), KEY.hex()))
    with Broker() as broker:
        yield broker, str(keys), db_url


def test_batch_delivered_twice_through_two_workers_is_stored_once(setup):
    broker, keys, url = setup
    recs = fleetbench.readings(DEV, 12)
    sealed, k = fleetbench.seal_batch(DEV, KEY, recs, ctr=1)
    assert k == 12
    # the same rows re-sealed (a dongle that lost its acknowledgement sends them again
    # with its next counter)
    again, _ = fleetbench.seal_batch(DEV, KEY, recs, ctr=2)
    topic = "linky/%s/batch" % DEV
    with WorkerPool(2, url, broker.port, keys, group="g1") as pool:
        # four messages to a group of two: the broker deals them to both workers
        publish(broker.port, [(topic, sealed), (topic, sealed), (topic, again), (topic, again)])
        assert pool.wait_handled(4, idle=20) == 4
        stats = pool.stop()
    assert all(s["batches"] + sum(s["refused"].values()) >= 1 for s in stats), stats
    # stored once; the counter-repeating copies refused as replays, the re-sealed one
    # accepted with all its rows already there
    assert sum(s["stored"] for s in stats) == 12
    assert sum(s["batches"] for s in stats) == 2
    assert sum(s["duplicates"] for s in stats) == 12
    assert sum(s["refused"].get("replay", 0) for s in stats) == 2
    db = fleetdb.open_db(url)
    got = db.readings(DEV)
    assert [r["seq"] for r in got] == list(range(12))
    assert [r["energy_import_wh"] for r in got] == [r["energy_import_wh"] for r in recs]
    assert db.last_ctr(DEV, "mqtt") == 2
    db.close()


def test_workers_refuse_what_the_contract_refuses(setup):
    broker, keys, url = setup
    recs = fleetbench.readings(DEV, 5)
    good, _ = fleetbench.seal_batch(DEV, KEY, recs, ctr=7)
    other = "ffeeddccbbaa"
    forged, _ = fleetbench.seal_batch(DEV, b"\x01" * 32, recs, ctr=8)
    unknown, _ = fleetbench.seal_batch(other, KEY, recs, ctr=1)
    unsigned = good[:-fleetbench_tail()] + b"}"
    https = good.replace(b'"ch":"mqtt"', b'"ch":"https"')
    msgs = [("linky/%s/batch" % DEV, forged),
            ("linky/%s/batch" % DEV, unsigned),
            ("linky/%s/batch" % other, unknown),
            ("linky/%s/batch" % other, good),            # topic names another device
            ("linky/%s/batch" % DEV, https),             # altered channel: seal broken
            ("linky/%s/batch" % DEV, b"\xff not json"),
            ("linky/%s/batch" % DEV, good)]
    with WorkerPool(1, url, broker.port, keys, group="g2") as pool:
        publish(broker.port, msgs)
        assert pool.wait_handled(len(msgs), idle=20) == len(msgs)
        (st,) = pool.stop()
    assert st["batches"] == 1 and st["stored"] == 5
    assert st["refused"] == {"bad signature": 2, "unsigned": 1, "unknown device": 1,
                             "device mismatch": 1, "malformed": 1}, st
    db = fleetdb.open_db(url)
    assert db.count() == 5 and [d["dev"] for d in db.devices()] == [DEV]
    db.close()


def fleetbench_tail():
    from firmware.uplink import sign
    return sign.TAIL_LEN


def test_worker_needs_keys(tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "tools.fleet", "worker", "--db",
                        str(tmp_path / "x.sqlite")], cwd=fleetbench.ROOT, text=True,
                       capture_output=True, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode != 0 and "signed batches only" in r.stderr


def test_bench_small_run_is_exact(pg_server):
    # the load test itself, small: every distinct reading stored once, none lost
    r = fleetbench.run(dongles=40, workers=2, db_url=pg_server.url, per_dongle=60,
                       dup=0.3)
    assert r["unique"] == 40 * 60
    assert r["stored"] == r["unique"] and r["lost"] == 0 and r["duplicates_stored"] == 0
    assert r["sent"] > r["unique"]                  # some batches did go twice
    assert sum(r["per_worker_batches"]) + sum(r["refused"].values()) == r["batches_sent"]
    json.dumps(r)


def test_database_outage_keeps_the_batch_until_it_is_stored(tmp_path):
    # the worker acknowledges a batch only after its commit: with PostgreSQL down it
    # holds the batch and retries; once the server is back the batch is stored, once
    from tools.pgserver import PgServer
    keys = tmp_path / "keys"
    keys.write_text("%s %s\n" % (DEV, KEY.hex()))
    recs = fleetbench.readings(DEV, 20)
    first, _ = fleetbench.seal_batch(DEV, KEY, recs[:10], ctr=1)
    second, _ = fleetbench.seal_batch(DEV, KEY, recs[10:], ctr=2)
    topic = "linky/%s/batch" % DEV
    pg = PgServer(durable=False).start()
    try:
        with Broker() as broker, WorkerPool(1, pg.url, broker.port, str(keys),
                                            group="g3") as pool:
            publish(broker.port, [(topic, first)])
            assert pool.wait_handled(1, idle=20) == 1
            pg.stop(keep=True)
            publish(broker.port, [(topic, second)])
            # nothing can be stored now, and nothing is counted as handled
            assert pool.wait_handled(2, idle=3) == 1
            pg.start()
            assert pool.wait_handled(2, idle=30) == 2
            (st,) = pool.stop()
        assert st["stored"] == 20 and st["refused"] == {}
        db = fleetdb.open_db(pg.url)
        assert [r["seq"] for r in db.readings(DEV)] == list(range(20))
        db.close()
    finally:
        pg.stop()


def test_worker_keys_from_file_or_environment(tmp_path):
    from tools import fleet
    f = tmp_path / "keys"
    f.write_text("# comment\n\n  AbC123 %s\nDEF456 %s extra\n" % ("11" * 16, "22" * 20))
    keys, default = fleet.load_keys(str(f), env={})
    assert keys == {"abc123": b"\x11" * 16, "def456": b"\x22" * 20} and default is None
    keys, default = fleet.load_keys(env={"FLEET_KEYS": str(f), "FLEET_KEY": "33" * 16})
    assert len(keys) == 2 and default == b"\x33" * 16
    for bad in ("abc\n", "abc 1234\n", "abc zz%s\n" % ("0" * 30)):
        f.write_text(bad)
        with pytest.raises(ValueError):
            fleet.load_keys(str(f), env={})
