"""Fleet load test: N simulated dongles -> mosquitto -> W ingest workers -> the database.

    python -m tools.fleetbench --dongles 1000 --workers 2 --db postgresql://... --json
    python -m tools.fleetbench --dongles 1000 --workers 2 --db pg --json   (throw-away server)

Every dongle has its own id and HMAC key, reads every --interval seconds (simulated time)
and sends the firmware's own batches: bodies built by firmware/uplink/batch.py (2 KB
maximum, as on the device) and sealed by firmware/uplink/sign.py with the device's
counter on channel "mqtt", published QoS 1 to linky/<dev>/batch. A fraction of batches is
sent twice (--dup): half as the very same message (a broker redelivery: the counter
repeats, the worker refuses it as a replay), half re-sealed with a new counter (a device
that lost its acknowledgement: the rows repeat, the database keeps them once).

The batches are built before the clock starts, then published as fast as the broker
takes them (or at --rate readings/s); the workers (`python -m tools.fleet worker`, one
process each, one MQTT 5 shared subscription) drain them. Printed figures:
  sent              readings published (duplicates included)
  unique            distinct (dev, ep, seq) published
  stored            rows in the database afterwards
  duplicates_stored rows the workers reported stored beyond the distinct ones (0: exact)
  lost              distinct readings published but not in the database
  readings_per_s    stored / (last commit - first message received), over all workers
  lag_s             last commit - end of publishing (with --rate: how far behind the
                    workers were when the dongles had sent everything)
Nothing here asserts a speed; `make bench` prints these.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (ROOT, os.path.join(ROOT, "tools", "compat", "cpython")):
    if _p not in sys.path:
        sys.path.append(_p)

from tools import fleetdb  # noqa: E402
from tools.pgserver import PgServer  # noqa: E402
from tools.services import Mosquitto  # noqa: E402

T0 = 1_767_225_600          # 2026-01-01T00:00:00Z, start of the simulated readings


class Broker(Mosquitto):
    """mosquitto (tools/services.py) with unbounded queues (max_queued_messages 0): a
    burst of batches waiting for busy workers must not be dropped (mosquitto's default
    drops QoS 1 messages beyond 1000 queued per client)."""

    def config(self):
        return Mosquitto.config(self) + "max_queued_messages 0\nmax_inflight_messages 100\n"


# -- simulated dongles ---------------------------------------------------------------------
def dongle_ids(n, seed=1):
    rnd = random.Random(seed)
    return ["%012x" % rnd.getrandbits(48) for _ in range(n)]


def dongle_key(dev):
    # a distinct 32-byte key per device, derived so the bench and its workers agree
    import hashlib
    return hashlib.sha256(b"fleetbench key " + dev.encode()).digest()


def readings(dev, n, start_seq=0, t0=T0, interval=5, rnd=None):
    """n decoded Linky readings (reading-schema names) of one household, every
    `interval` seconds: a power that wanders between 150 VA and 6 kVA, and the energy
    index that integrates it (Wh)."""
    rnd = rnd or random.Random(dev)
    p = rnd.randint(200, 1500)
    e = rnd.randint(1_000_000, 40_000_000)
    frac = 0.0
    out = []
    for i in range(n):
        p = min(6000, max(150, p + rnd.randint(-120, 120)))
        frac += p * interval / 3600.0
        whole = int(frac)
        e += whole
        frac -= whole
        seq = start_seq + i
        out.append({"seq": seq, "kind": "reading", "t": t0 + seq * interval, "t_src": "ntp",
                    "energy_import_wh": e, "apparent_power_va": p,
                    "tariff_period": "HC.." if (seq * interval // 3600) % 24 < 6 else "HP..",
                    "tariff_index": 1 if (seq * interval // 3600) % 24 < 6 else 2})
    return out


def seal_batch(dev, key, recs, ctr, epoch=0, max_bytes=2048):
    """The firmware's body for the longest prefix of recs that fits, sealed for MQTT.
    -> (sealed bytes, number of records taken)."""
    from firmware.uplink import batch as B
    from firmware.uplink import sign
    body, first, last, k = B.build(dev, recs, epoch=epoch, ctr=ctr, max_bytes=max_bytes,
                                   ch="mqtt")
    body = bytes(body)
    return sign.seal(key, body), k


def make_batches(devs, per_dongle, interval=5, dup=0.05, seed=7):
    """-> (messages [(topic, payload)], unique readings, readings sent). Every device's
    readings cut into firmware batches; a `dup` fraction of them sent twice."""
    rnd = random.Random(seed)
    msgs = []
    unique = sent = 0
    for dev in devs:
        key = dongle_key(dev)
        recs = readings(dev, per_dongle, interval=interval, rnd=random.Random(dev))
        ctr = 1
        i = 0
        while i < len(recs):
            sealed, k = seal_batch(dev, key, recs[i:], ctr)
            topic = "linky/%s/batch" % dev
            msgs.append((topic, sealed))
            unique += k
            sent += k
            if rnd.random() < dup:
                if rnd.random() < 0.5:
                    msgs.append((topic, sealed))                 # redelivered as is
                else:
                    ctr += 1
                    again, k2 = seal_batch(dev, key, recs[i:i + k], ctr)   # re-sealed
                    msgs.append((topic, again))
                sent += k
            ctr += 1
            i += k
    # dongles publish concurrently: interleave devices, keeping each one's order
    # roughly (a device's batches may still reach different workers out of order)
    rnd.shuffle(msgs)
    return msgs, unique, sent


def write_keys(path, devs):
    with open(path, "w") as f:
        for d in devs:
            f.write("%s %s\n" % (d, dongle_key(d).hex()))


def publish(port, msgs, conns=4, rate=0, readings_per_msg=1):
    """Publish QoS 1 over `conns` connections; -> seconds taken. rate: readings/s to
    pace at (0: as fast as the broker takes them)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    clients = []
    for i in range(conns):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleetbench-pub-%d-%d" % (
            os.getpid(), i), protocol=mqtt.MQTTv5)
        c.max_inflight_messages_set(100)
        c.max_queued_messages_set(0)
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients.append(c)
    t0 = time.time()
    infos = []
    for n, (topic, payload) in enumerate(msgs):
        if rate:
            due = t0 + n * readings_per_msg / rate
            d = due - time.time()
            if d > 0:
                time.sleep(d)
        infos.append(clients[n % conns].publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    dt = time.time() - t0
    for c in clients:
        c.disconnect()
        c.loop_stop()
    return dt


# -- workers ---------------------------------------------------------------------------------
class WorkerPool:
    """W `python -m tools.fleet worker` processes in one shared-subscription group, their
    latest stats line (printed every 0.2 s) kept per worker."""

    def __init__(self, n, db_url, port, keys_path, group="bench", extra=()):
        self.procs = []
        self.latest = {}
        self.lock = threading.Lock()
        for i in range(n):
            p = subprocess.Popen(
                [sys.executable, "-m", "tools.fleet", "worker", "--db", db_url,
                 "--mqtt", "127.0.0.1:%d" % port, "--group", group, "--keys", keys_path,
                 "--client-id", "fleet-%s-%d-%d" % (group, os.getpid(), i),
                 "--stats-every", "0.2"] + list(extra),
                cwd=ROOT, stdout=subprocess.PIPE, text=True)
            self.procs.append(p)
        # each prints {"ready": ...} once its subscription is acknowledged: a batch
        # published before that would find no member of the group
        for p in self.procs:
            line = p.stdout.readline()
            if not line or "ready" not in json.loads(line):
                self.stop()
                raise RuntimeError("worker did not start: %r" % line)
        self.readers = [threading.Thread(target=self._read, args=(i, p), daemon=True)
                        for i, p in enumerate(self.procs)]
        for t in self.readers:
            t.start()

    def _read(self, i, p):
        for line in p.stdout:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if "batches" in d:
                with self.lock:
                    self.latest[i] = d

    def stats(self):
        with self.lock:
            return [self.latest.get(i, {"batches": 0, "stored": 0, "duplicates": 0,
                                         "refused": {}, "t_first": None, "t_last": None})
                    for i in range(len(self.procs))]

    def handled(self):
        """Messages taken so far (stored or refused), over all workers."""
        return sum(s["batches"] + sum(s["refused"].values()) for s in self.stats())

    def wait_handled(self, n, idle=15.0, timeout=900):
        """Until n messages are handled, or none for `idle` s. -> handled."""
        last, since = -1, time.time()
        end = time.time() + timeout
        while time.time() < end:
            h = self.handled()
            if h >= n:
                return h
            if h != last:
                last, since = h, time.time()
            elif time.time() - since > idle:
                return h
            time.sleep(0.1)
        return self.handled()

    def stop(self):
        """SIGTERM every worker; -> their final stats (printed at exit)."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for t in getattr(self, "readers", ()):
            t.join(5)
        return self.stats()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def run(dongles, workers, db_url, seconds=None, per_dongle=None, interval=5, dup=0.05,
        rate=0, conns=4, log=None):
    """One load test -> result dict. per_dongle readings per dongle (default: enough for
    `seconds` of the target load, 10 x 1,000 dongles reading every 5 s = 2,000 /s)."""
    if per_dongle is None:
        per_dongle = max(1, int(round(2000.0 * (seconds or 20) / dongles)))
    devs = dongle_ids(dongles)
    work = tempfile.mkdtemp(prefix="fleetbench-")
    pg = None
    try:
        if db_url in ("pg", "postgresql"):
            pg = PgServer().start()      # its own folder: the postgres user must reach it
            db_url = pg.url
        elif db_url in ("sqlite", None):
            db_url = "sqlite:///" + os.path.join(work, "fleet.sqlite")
        t_build = time.time()
        msgs, unique, sent = make_batches(devs, per_dongle, interval, dup)
        t_build = time.time() - t_build
        keys = os.path.join(work, "keys")
        write_keys(keys, devs)
        db = fleetdb.open_db(db_url)
        before = db.count()
        with Broker() as broker:
            pool = WorkerPool(workers, db_url, broker.port, keys)
            try:
                t_pub = publish(broker.port, msgs, conns, rate, sent / max(len(msgs), 1))
                pub_end = time.time()
                pool.wait_handled(len(msgs))
            finally:
                stats = pool.stop()
        stored = db.count() - before
        db.close()
        t_first = min(s["t_first"] for s in stats if s.get("t_first"))
        t_last = max(s["t_last"] for s in stats if s.get("t_last"))
        reported = sum(s["stored"] for s in stats)
        refused = {}
        for s in stats:
            for k, v in s["refused"].items():
                refused[k] = refused.get(k, 0) + v
        return {
            "dongles": dongles, "workers": workers,
            "db": db_url.split(":")[0], "batches_sent": len(msgs),
            "sent": sent, "unique": unique, "stored": stored,
            "duplicates_stored": reported - unique if reported > unique else 0,
            "lost": unique - stored if unique > stored else 0,
            "refused": refused,
            "per_worker_batches": [s["batches"] for s in stats],
            "publish_s": round(t_pub, 3), "build_s": round(t_build, 3),
            "ingest_s": round(t_last - t_first, 3),
            # how far the workers were behind when the dongles had sent everything: near
            # 0 when they keep up with a paced load (--rate)
            "lag_s": round(max(t_last - pub_end, 0), 3),
            "readings_per_s": round(stored / max(t_last - t_first, 1e-9), 1),
        }
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dongles", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--db", default="pg",
                    help="postgresql://... | sqlite:///path | pg (a throw-away server) | "
                         "sqlite (a throw-away file)")
    ap.add_argument("--seconds", type=float, default=20,
                    help="amount of data: this many seconds of the 2,000 readings/s target")
    ap.add_argument("--per-dongle", type=int, default=None,
                    help="readings per dongle (overrides --seconds)")
    ap.add_argument("--interval", type=int, default=5, help="dongle reading period, s")
    ap.add_argument("--dup", type=float, default=0.05, help="fraction of batches sent twice")
    ap.add_argument("--rate", type=float, default=0,
                    help="pace publishing at this many readings/s (0: flat out)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args(argv)
    r = run(a.dongles, a.workers, a.db, a.seconds, a.per_dongle, a.interval, a.dup, a.rate)
    if a.json:
        print(json.dumps(r))
    else:
        for k, v in r.items():
            print("%-18s %s" % (k, v))
    return 0 if r["lost"] == 0 and r["duplicates_stored"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
