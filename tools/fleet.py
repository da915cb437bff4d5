"""Fleet collection: ingest workers, consent registry, aggregates and exports.

    python -m tools.fleet worker --db URL --mqtt HOST:PORT --group G [--keys FILE | --key HEX]
    python -m tools.fleet consent grant|withdraw|list ...
    python -m tools.fleet group add|list ...
    python -m tools.fleet aggregate --group B --use building_aggregate --step 10min|day ...
    python -m tools.fleet curve --dev D ...         (individual curve: consent required)
    python -m tools.fleet plot --group B ...        (a building's 10-minute curve, HTML/PNG)
    python -m tools.fleet log                       (every use and the consents it relied on)

Workers: each takes batches from the MQTT 5 shared subscription `$share/G/linky/+/batch`
(the broker hands each message to one member of group G), so adding workers, on this
machine or others, raises throughput with nothing changed on the dongles. A batch must be
signed (docs/wire-format.md "Seal"): the key registered for its device verifies it, its
device must be the topic's, its channel "mqtt", its counter new for (dev, "mqtt"). It is
stored whole with its counter in one transaction (tools/fleetdb.py), and acknowledged to
the broker (MQTT 5 PUBACK, sent by hand) only after the commit: a worker that dies before
its commit leaves the batch with the broker, which delivers it again. De-duplication is
the database's: (dev, ep, seq) is the primary key.

Shared subscriptions deliver a device's batches to several workers at once, so they can
commit out of order; the counter check therefore accepts each counter once within a window
of 63 below the highest seen (fleetdb's replay window) instead of "strictly above the
last", and still refuses every counter seen before.

Keys: --keys FILE ("device_id hexkey" lines, as tools.collector), --key HEX (one key for
every device), or the environment: FLEET_KEYS (a file path) / FLEET_KEY (hex).
"""
import argparse
import json
import os
import signal
import socket
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (ROOT, os.path.join(ROOT, "tools", "compat", "cpython")):
    if _p not in sys.path:
        sys.path.append(_p)

from tools import fleetdb  # noqa: E402

CHANNEL = "mqtt"
TOPIC = "linky/+/batch"
WINDOW = fleetdb.WINDOW_MAX


class Refused(Exception):
    """A batch not stored; .reason is a short word for the counters and the log."""

    def __init__(self, reason, detail=""):
        Exception.__init__(self, reason + (": " + detail if detail else ""))
        self.reason = reason


# -- verification ------------------------------------------------------------------------
def load_keys(path=None, key_hex=None, env=os.environ):
    """-> (keys {dev: bytes}, default key or None). Files: "device_id hexkey" lines."""
    from tools import wire
    path = path or env.get("FLEET_KEYS")
    key_hex = key_hex or env.get("FLEET_KEY")
    keys = {}
    if path:
        with open(path) as f:
            for n, ln in enumerate(f, 1):
                ln = ln.strip()
                if not ln or ln.startswith("#"):
                    continue
                parts = ln.split()
                if len(parts) < 2:
                    raise ValueError("%s:%d: expected 'device_id hexkey'" % (path, n))
                keys[wire.normalise_dev(parts[0])] = wire.parse_key(parts[1])
    return keys, (wire.parse_key(key_hex) if key_hex else None)


def topic_device(topic, pattern=TOPIC):
    """The device the topic names: the level of the pattern's '+', or None."""
    pl = pattern.split("/")
    if "+" not in pl:
        return None
    tl = topic.split("/")
    if len(tl) != len(pl):
        return None
    return tl[pl.index("+")]


def verify(payload, channel, keys, default_key=None, transport_dev=None):
    """A sealed batch as received -> (dev, ctr, header, rows), or Refused.
    tools/wire.py checks the contract's rules 1-3 and the rows' form (rule 5); rule 4
    (the counter) is the store's, inside the transaction that stores the batch."""
    from tools import wire
    try:
        b = wire.receive(payload, lambda d: keys.get(d, default_key), channel,
                         transport_dev=transport_dev)
    except wire.WireError as e:
        raise Refused(e.reason, e.detail)
    return b.dev, b.ctr, b.header, b.records()


# -- worker ------------------------------------------------------------------------------
class Worker:
    """One ingest process: MQTT 5 shared subscription -> verify -> store -> PUBACK."""

    def __init__(self, db_url, host, port, group, keys, default_key=None, topic=TOPIC,
                 client_id=None, out=sys.stdout, stats_every=0):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        self.db = fleetdb.open_db(db_url)
        self.host, self.port = host, port
        self.topic = topic
        self.sub = "$share/%s/%s" % (group, topic)
        self.keys, self.default_key = keys, default_key
        self.client_id = client_id or "fleet-%s-%s-%d" % (group, socket.gethostname(),
                                                          os.getpid())
        self.out = out
        self.stats_every = stats_every
        self.stats = {"batches": 0, "stored": 0, "duplicates": 0, "refused": {},
                      "connects": 0}
        self.t0 = None
        self.t_last = None
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.reconnect_delay_set(0.2, 5)

    def _on_connect(self, c, userdata, flags, reason, props):
        if reason.is_failure:
            return
        self.stats["connects"] += 1
        c.subscribe(self.sub, qos=1)
        self.connected.set()

    def _on_subscribe(self, c, userdata, mid, reasons, props):
        if reasons and not reasons[0].is_failure and self.stats["connects"] == 1:
            # the first subscription is in place: from now on no batch is missed
            print(json.dumps({"ready": self.client_id, "sub": self.sub}), file=self.out,
                  flush=True)

    def _on_disconnect(self, c, userdata, flags, reason, props):
        self.connected.clear()

    def handle(self, payload, topic):
        """One message -> "stored" or the refusal reason. Never raises on bad input."""
        now = time.time()
        if self.t0 is None:
            self.t0 = now
        try:
            dev, ctr, head, rows = verify(payload, CHANNEL, self.keys, self.default_key,
                                          topic_device(topic, self.topic))
            stored, dup = self.db.ingest(dev, CHANNEL, ctr, head, rows, window=WINDOW)
        except Refused as e:
            return self._refuse(e.reason)
        except fleetdb.CounterReplay:
            return self._refuse("replay")
        except ValueError:
            return self._refuse("malformed")
        with self.lock:
            self.stats["batches"] += 1
            self.stats["stored"] += stored
            self.stats["duplicates"] += dup
            self.t_last = time.time()
        return "stored"

    def _refuse(self, reason):
        with self.lock:
            r = self.stats["refused"]
            r[reason] = r.get(reason, 0) + 1
            self.t_last = time.time()
        return reason

    def _on_message(self, c, userdata, msg):
        delay = 0.5
        while True:
            try:
                self.handle(msg.payload, msg.topic)
                break
            except Exception as e:
                if not _transient(e):
                    # the database refused this batch itself (not its connection): a
                    # batch that can never be stored must not block the ones after it
                    print("fleet worker: batch refused by the store: %s" % e,
                          file=sys.stderr, flush=True)
                    self._refuse("store error")
                    self._reopen()
                    break
                # the database is unreachable: keep the batch unacknowledged and retry
                # (the broker still holds it; if this worker stops now, it delivers it
                # again to this session or, after the session expires, to the group)
                print("fleet worker: store unavailable (%s); retrying in %.1f s"
                      % (str(e).strip()[:120], delay), file=sys.stderr, flush=True)
                if self.stopping.wait(delay):
                    return
                delay = min(delay * 2, 10.0)
                self._reopen()
        # PUBACK only now: the batch is committed (or refused for good)
        c.ack(msg.mid, msg.qos)

    def _reopen(self):
        url = self.db.url
        self.db.close()
        try:
            self.db = fleetdb.open_db(url)
        except Exception:
            # still down: keep a closed handle, the next attempt fails fast and retries
            pass

    def report(self):
        # the MQTT thread updates the figures; copy them whole under the lock
        with self.lock:
            s = dict(self.stats, refused=dict(self.stats["refused"]),
                     client_id=self.client_id, t_first=self.t0, t_last=self.t_last)
        print(json.dumps(s), file=self.out, flush=True)

    def run(self, stop=None):
        """Until stop (an Event) is set, or SIGTERM/SIGINT in the main thread."""
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        stop = stop or threading.Event()
        self.stopping = stop
        props = Properties(PacketTypes.CONNECT)
        # a persistent session: QoS 1 batches for this worker wait at the broker for an
        # hour while it restarts
        props.SessionExpiryInterval = 3600
        self.c.connect_async(self.host, self.port, keepalive=30, clean_start=False,
                             properties=props)
        self.c.loop_start()
        last = time.time()
        try:
            while not stop.wait(0.2):
                if self.stats_every and time.time() - last >= self.stats_every:
                    self.report()
                    last = time.time()
        finally:
            self.c.disconnect()
            self.c.loop_stop()
            self.db.close()
            self.report()


def _transient(e):
    """A failure of the database connection (retry later), not of the batch."""
    import sqlite3
    kinds = [sqlite3.OperationalError]
    try:
        import psycopg
        kinds += [psycopg.OperationalError, psycopg.InterfaceError]
    except ImportError:
        pass
    return isinstance(e, tuple(kinds))


def hostport(s, default=1883):
    host, _, port = s.rpartition(":")
    if not host:
        return s, default
    return host, int(port)


def cmd_worker(a):
    keys, default = load_keys(a.keys, a.key)
    if not keys and default is None:
        raise SystemExit("worker: signed batches only; give --keys FILE, --key HEX, or set "
                         "FLEET_KEYS / FLEET_KEY")
    host, port = hostport(a.mqtt)
    w = Worker(a.db, host, port, a.group, keys, default, a.topic, a.client_id,
               stats_every=a.stats_every)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    w.run(stop)
    return 0


def _time(s):
    """ISO date/time (naive = UTC) or unix seconds -> unix seconds; None passes."""
    if s is None:
        return None
    try:
        return float(s)
    except ValueError:
        import datetime
        d = datetime.datetime.fromisoformat(s)
        if d.tzinfo is None:
            d = d.replace(tzinfo=datetime.timezone.utc)
        return d.timestamp()


def _open(a):
    url = a.db or os.environ.get("FLEET_DB")
    if not url:
        raise SystemExit("give --db URL (or set FLEET_DB)")
    return fleetdb.open_db(url)


def cmd_consent(a):
    db = _open(a)
    try:
        if a.action == "grant":
            for dev in a.dev:
                print(json.dumps({"dev": dev, "use": a.use,
                                  "id": db.grant(dev, a.use, _time(a.at), a.note)}))
        elif a.action == "withdraw":
            for dev in a.dev:
                print(json.dumps({"dev": dev, "use": a.use or "all",
                                  "withdrawn": db.withdraw(dev, a.use, _time(a.at))}))
        else:
            for c in db.consent_history(a.dev[0] if a.dev else None):
                print(json.dumps(c))
    finally:
        db.close()
    return 0


def cmd_group(a):
    db = _open(a)
    try:
        if a.action == "add":
            db.add_members(a.name, a.kind, a.dev)
        elif a.action == "remove":
            for d in a.dev:
                db.remove_member(a.name, d)
        if a.action == "list" and not a.name:
            for g in db.groups():
                print(json.dumps(g))
        else:
            print(json.dumps({"group": a.name, "members": db.members(a.name)}))
    finally:
        db.close()
    return 0


def _emit(a, res, text):
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
        print("wrote %s (%d rows, log id %s)" % (a.out, len(res["rows"]), res["log_id"]),
              file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _thresholds(a):
    th, rw = {}, {}
    if a.restricted is not None:
        th["restricted"] = a.restricted
    if a.public is not None:
        th["public"] = a.public
    if a.round_public is not None:
        rw["public"] = a.round_public
    if a.round_restricted is not None:
        rw["restricted"] = a.round_restricted
    return th, rw


def cmd_aggregate(a):
    from tools import fleetagg
    db = _open(a)
    th, rw = _thresholds(a)
    try:
        res = fleetagg.aggregate(db, a.group, a.use, a.step, _time(a.since), _time(a.until),
                                 a.tz, th, rw)
    except fleetagg.Refusal as e:
        print("refused: " + e.result["reason"], file=sys.stderr)
        if a.format == "json":
            _emit(a, e.result, fleetagg.to_json(e.result))
        return 3
    finally:
        db.close()
    if a.format == "csv":
        _emit(a, res, fleetagg.to_csv(res))
    elif a.format == "html":
        _emit(a, res, fleetagg.plot_html(res))
    elif a.format == "png":
        if not a.out:
            raise SystemExit("--format png needs --out FILE")
        fleetagg.plot_png(res, a.out)
        print("wrote %s" % a.out, file=sys.stderr)
    else:
        _emit(a, res, fleetagg.to_json(res))
    return 0


def cmd_curve(a):
    from tools import fleetagg
    db = _open(a)
    try:
        res = fleetagg.individual_curve(db, a.dev, _time(a.since), _time(a.until))
    except fleetagg.Refusal as e:
        print("refused: " + e.result["reason"], file=sys.stderr)
        return 3
    finally:
        db.close()
    _emit(a, res, fleetagg.to_csv(res) if a.format == "csv" else fleetagg.to_json(res))
    return 0


def cmd_log(a):
    db = _open(a)
    try:
        for u in db.uses_log():
            print(json.dumps(u))
    finally:
        db.close()
    return 0


def cmd_devices(a):
    db = _open(a)
    try:
        for d in db.devices():
            print(json.dumps(d))
    finally:
        db.close()
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.fleet",
                                 description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker", help="ingest batches from an MQTT 5 shared subscription")
    w.add_argument("--db", required=True, help="postgresql://... or sqlite:///path")
    w.add_argument("--mqtt", default="127.0.0.1:1883", help="broker HOST:PORT")
    w.add_argument("--group", default="fleet", help="shared-subscription group name")
    w.add_argument("--topic", default=TOPIC, help="batch topic; '+' is the device level")
    w.add_argument("--keys", default=None, help='file of "device_id hexkey" lines')
    w.add_argument("--key", default=None, help="hex HMAC key for every device")
    w.add_argument("--client-id", default=None,
                   help="stable id = persistent session across restarts")
    w.add_argument("--stats-every", type=float, default=0,
                   help="print a JSON stats line every S seconds (and always at exit)")
    w.set_defaults(fn=cmd_worker)

    def dbarg(p):
        p.add_argument("--db", default=None, help="store URL (default: $FLEET_DB)")

    from tools.fleetdb import USES
    c = sub.add_parser("consent", help="grant, withdraw or list a household's consents")
    dbarg(c)
    c.add_argument("action", choices=("grant", "withdraw", "list"))
    c.add_argument("dev", nargs="*")
    c.add_argument("--use", choices=USES, default=None)
    c.add_argument("--at", default=None, help="ISO time or unix seconds (default now)")
    c.add_argument("--note", default=None, help="e.g. the signed form's reference")
    c.set_defaults(fn=cmd_consent)
    g = sub.add_parser("group", help="groups of devices (building, district)")
    dbarg(g)
    g.add_argument("action", choices=("add", "remove", "list"))
    g.add_argument("name", nargs="?")
    g.add_argument("dev", nargs="*")
    g.add_argument("--kind", default="building")
    g.set_defaults(fn=cmd_group)
    for name, fn, hlp in (("aggregate", cmd_aggregate, "a group's sums and quartiles"),
                          ("plot", cmd_aggregate, "a group's 10-minute curve (HTML/PNG)")):
        p = sub.add_parser(name, help=hlp)
        dbarg(p)
        p.add_argument("--group", required=True)
        p.add_argument("--use", default="building_aggregate",
                       choices=("building_aggregate", "public_aggregate"))
        p.add_argument("--step", default="10min", choices=("10min", "day"))
        p.add_argument("--since", default=None, help="ISO time (UTC if naive) or unix s")
        p.add_argument("--until", default=None)
        p.add_argument("--tz", default="UTC", help="days cut at this zone's midnight")
        p.add_argument("--restricted", type=int, default=None, help="threshold (11)")
        p.add_argument("--public", type=int, default=None, help="threshold (101)")
        p.add_argument("--round-restricted", type=int, default=None, help="Wh (1)")
        p.add_argument("--round-public", type=int, default=None, help="Wh (1000)")
        p.add_argument("--format", default="html" if name == "plot" else "json",
                       choices=("json", "csv", "html", "png"))
        p.add_argument("--out", default=None)
        p.set_defaults(fn=fn)
    cv = sub.add_parser("curve", help="one household's readings (its consent required)")
    dbarg(cv)
    cv.add_argument("--dev", required=True)
    cv.add_argument("--since", default=None)
    cv.add_argument("--until", default=None)
    cv.add_argument("--format", default="csv", choices=("csv", "json"))
    cv.add_argument("--out", default=None)
    cv.set_defaults(fn=cmd_curve)
    lg = sub.add_parser("log", help="every use and the consents it relied on")
    dbarg(lg)
    lg.set_defaults(fn=cmd_log)
    dv = sub.add_parser("devices", help="devices seen, readings stored")
    dbarg(dv)
    dv.set_defaults(fn=cmd_devices)
    a = ap.parse_args(argv)
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
