"""Collector: a small receiver for those who have no server.

    python -m tools.collector [--data DIR] [--bind 127.0.0.1] [--https-port 8443]
                              [--mqtt-host H --mqtt-port 1883 --mqtt-topic 'linky/+/batch']
                              [--key HEX | --keys FILE] [--require-signature]

* HTTPS: on first run it makes its own CA and a server certificate (for --bind and
  localhost, or the names given with --san) in DIR, and prints the CA PEM to paste into
  the device's `ca_pem`. POST any path (the device's `https_url`) = one batch.
* MQTT: subscribes to the batches (umqtt.simple through tools/compat/cpython), reconnects.
* Signed batches (firmware/uplink/sign.py) are verified with the device key (--key for
  every device, or --keys FILE of "device_id hexkey" lines); a bad signature is refused
  (403), a counter not above the last one seen on that channel is refused (409, with
  "last_ctr"), unsigned batches from a device with a key are refused.
* Readings are de-duplicated by (device, store epoch, seq) in SQLite (DIR/collector.sqlite).
* GET /export.csv, /export.json, /stats.json, /plot.png, /plot.html (load curve).
"""
import argparse
import csv
import datetime
import io
import json
import os
import sqlite3
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (ROOT, os.path.join(ROOT, ".mplib"), os.path.join(ROOT, "tools", "compat", "cpython")):
    if _p not in sys.path:
        sys.path.append(_p)

from firmware.uplink import batch as B  # noqa: E402
from firmware.uplink import sign  # noqa: E402

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
  device TEXT, ep INTEGER, seq INTEGER, kind TEXT, t INTEGER, t_src TEXT, dt_s INTEGER,
  ref_seq INTEGER, data TEXT, channel TEXT, received REAL,
  PRIMARY KEY (device, ep, seq));
CREATE TABLE IF NOT EXISTS counters (device TEXT, channel TEXT, ctr INTEGER,
  PRIMARY KEY (device, channel));
CREATE TABLE IF NOT EXISTS batches (device TEXT, channel TEXT, first INTEGER, last INTEGER,
  n INTEGER, stored INTEGER, dropped INTEGER, aggregated INTEGER, received REAL);
"""


class Refused(Exception):
    def __init__(self, status, error, **extra):
        Exception.__init__(self, error)
        self.status = status
        self.body = dict(error=error, **extra)


class Collector:
    def __init__(self, data_dir, keys=None, default_key=None, require_signature=False):
        os.makedirs(data_dir, exist_ok=True)
        self.dir = data_dir
        self.keys = dict(keys or {})
        self.default_key = default_key
        self.require_signature = require_signature
        self.lock = threading.Lock()
        self.db = sqlite3.connect(os.path.join(data_dir, "collector.sqlite"),
                                  check_same_thread=False)
        self.db.executescript(SCHEMA)
        self.db.commit()
        self.refused = {}

    def key_for(self, dev):
        return self.keys.get(dev, self.default_key)

    # -- ingest ----------------------------------------------------------------------
    def ingest(self, payload, channel, signed_only=False):
        """-> (http status, response dict). Never raises on bad input. signed_only: the
        batch must be signed with a key this collector knows for the device (plain HTTP,
        where nothing else protects it)."""
        try:
            return 200, self._ingest(bytes(payload), channel, signed_only)
        except Refused as e:
            self.refused[e.body["error"]] = self.refused.get(e.body["error"], 0) + 1
            return e.status, e.body
        except Exception as e:  # malformed JSON etc.
            self.refused["malformed"] = self.refused.get("malformed", 0) + 1
            return 400, {"error": "malformed", "detail": str(e)[:100]}

    def _ingest(self, payload, channel, signed_only=False):
        try:
            outer = json.loads(payload)
        except ValueError:
            raise Refused(400, "malformed")
        dev = outer.get("dev") if isinstance(outer, dict) else None
        if not isinstance(dev, str) or not dev:
            raise Refused(400, "malformed")
        key = self.key_for(dev)
        body = payload
        signed = sign.is_sealed(payload)
        if key is not None:
            if not signed:
                raise Refused(403, "unsigned")
            try:
                body = sign.unseal(key, payload)
            except ValueError:
                raise Refused(403, "bad signature")
        elif self.require_signature or signed_only:
            raise Refused(403, "no key for device")
        elif signed:
            body = payload[:-sign.TAIL_LEN] + b"}"
        head, recs = B.parse(body)
        # counters run per device, channel and numbering epoch (the epoch is inside the
        # signed body: an old batch replayed keeps its old epoch and counter)
        chan = "%s:%s" % (channel, head.get("ep") or 0)
        with self.lock:
            if key is not None:
                ctr = head.get("ctr")
                if not isinstance(ctr, int):
                    raise Refused(403, "no counter")
                row = self.db.execute("SELECT ctr FROM counters WHERE device=? AND channel=?",
                                      (dev, chan)).fetchone()
                if row is not None and ctr <= row[0]:
                    raise Refused(409, "replay", last_ctr=row[0])
                self.db.execute("INSERT OR REPLACE INTO counters VALUES (?,?,?)",
                                (dev, chan, ctr))
            ep = int(head.get("ep") or 0)
            now = time.time()
            stored = 0
            for r in recs:
                data = dict(r)
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO readings VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (dev, ep, r["seq"], r.get("kind"), r.get("t"), r.get("t_src"),
                     r.get("dt_s"), r.get("ref_seq"), json.dumps(data), channel, now))
                stored += cur.rowcount
            self.db.execute("INSERT INTO batches VALUES (?,?,?,?,?,?,?,?,?)",
                            (dev, channel, head.get("first"), head.get("last"), len(recs),
                             stored, head.get("dropped"), head.get("aggregated"), now))
            self.db.commit()
        return {"ok": True, "stored": stored, "duplicates": len(recs) - stored,
                "last": head.get("last")}

    # -- queries ---------------------------------------------------------------------
    def readings(self, device=None):
        """-> list of dicts (record keys + device), times resolved: an elapsed-time record
        gets t = t(ref_seq) + dt_s when the reference is known (t_src "elapsed+ref")."""
        q = "SELECT device, ep, seq, data FROM readings"
        args = ()
        if device:
            q += " WHERE device=?"
            args = (device,)
        with self.lock:
            rows = self.db.execute(q + " ORDER BY device, ep, seq", args).fetchall()
        out = []
        times = {}
        for dev, ep, seq, data in rows:
            r = json.loads(data)
            r["device"] = dev
            if r.get("t") is not None:
                times[(dev, ep, seq)] = r["t"]
            elif r.get("dt_s") is not None and r.get("ref_seq") is not None:
                base = times.get((dev, ep, r["ref_seq"]))
                if base is not None:
                    r["t"] = base + r["dt_s"]
                    times[(dev, ep, seq)] = r["t"]
            out.append(r)
        return out

    def count(self, device=None):
        with self.lock:
            if device:
                return self.db.execute("SELECT COUNT(*) FROM readings WHERE device=?",
                                       (device,)).fetchone()[0]
            return self.db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]

    def stats(self):
        with self.lock:
            devs = self.db.execute(
                "SELECT device, COUNT(*), MIN(seq), MAX(seq) FROM readings GROUP BY device"
            ).fetchall()
            nb = self.db.execute("SELECT COUNT(*) FROM batches").fetchone()[0]
        return {"devices": {d: {"readings": n, "first_seq": a, "last_seq": b}
                            for d, n, a, b in devs},
                "batches": nb, "refused": dict(self.refused)}

    def export_csv(self, device=None):
        recs = self.readings(device)
        cols = ["device", "seq", "kind", "t", "time", "t_src", "dt_s", "ref_seq"]
        extra = sorted({k for r in recs for k in r} - set(cols))
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(cols + extra)
        for r in recs:
            t = r.get("t")
            r = dict(r, time=_iso(t))
            w.writerow([_cell(r.get(c)) for c in cols + extra])
        return buf.getvalue()

    def load_curve(self, device=None):
        pts = []
        for r in self.readings(device):
            if r.get("kind", "reading") != "reading" or r.get("t") is None:
                continue
            p = r.get("apparent_power_va")
            if p is None:
                p = r.get("active_power_w")
            if p is not None:
                pts.append((r["t"], p, r["device"]))
        return pts

    def plot_png(self, path_or_buf, device=None):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        pts = self.load_curve(device)
        fig, ax = plt.subplots(figsize=(9, 3.5), dpi=100)
        for dev in sorted({p[2] for p in pts}):
            xs = [datetime.datetime.fromtimestamp(p[0], datetime.timezone.utc)
                  for p in pts if p[2] == dev]
            ys = [p[1] for p in pts if p[2] == dev]
            ax.plot(xs, ys, drawstyle="steps-post", label=dev)
        ax.set_ylabel("power (VA or W)")
        ax.set_title("Load curve (%d readings)" % len(pts))
        if pts:
            ax.legend(loc="upper right")
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path_or_buf, format="png")
        plt.close(fig)

    def plot_html(self, device=None):
        pts = self.load_curve(device)
        w, h = 900, 300
        if pts:
            t0 = min(p[0] for p in pts)
            t1 = max(p[0] for p in pts) or t0 + 1
            pmax = max(p[1] for p in pts) or 1
            span = max(t1 - t0, 1)
            poly = " ".join("%.1f,%.1f" % (40 + (p[0] - t0) * (w - 50) / span,
                                           h - 20 - p[1] * (h - 40) / pmax) for p in pts)
        else:
            poly, t0, t1, pmax = "", 0, 0, 0
        return ("<!doctype html><meta charset=utf-8><title>Load curve</title>"
                "<h1>Load curve</h1><p>%d readings, %s to %s, max %s</p>"
                "<svg width=%d height=%d style='border:1px solid #ccc'>"
                "<polyline fill=none stroke='#1565c0' stroke-width=1.5 points='%s'/></svg>"
                "<p><a href=/export.csv>CSV</a> <a href=/export.json>JSON</a> "
                "<a href=/plot.png>PNG</a></p>"
                % (len(pts), _iso(t0), _iso(t1), pmax, w, h, poly))

    def close(self):
        with self.lock:
            self.db.close()


def _iso(t):
    if t is None:
        return ""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _cell(v):
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return "" if v is None else v


# -- PKI ----------------------------------------------------------------------------------
# the collector's CA and server certificate come from the shared host services module
from tools.services import ensure_pki, make_pki  # noqa: E402,F401 (collector API)


# -- HTTPS server -------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    collector = None
    plain = False          # the plain-HTTP listener: signed batches only
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: batches are counted, not logged
        pass

    def _send(self, status, body, ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_POST(self):
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if n < 0 or n > 1 << 20:
            return self._send(413, {"error": "size"})
        data = self.rfile.read(n)
        # one counter space for the device's "https" sink, whichever scheme carried it
        status, body = self.collector.ingest(data, "https", signed_only=self.plain)
        self._send(status, body)

    def do_GET(self):
        c = self.collector
        path = self.path.split("?")[0]
        if path == "/export.csv":
            return self._send(200, c.export_csv(), "text/csv")
        if path == "/export.json":
            return self._send(200, c.readings())
        if path == "/stats.json":
            return self._send(200, c.stats())
        if path == "/plot.png":
            buf = io.BytesIO()
            c.plot_png(buf)
            return self._send(200, buf.getvalue(), "image/png")
        if path in ("/", "/plot.html"):
            return self._send(200, c.plot_html(), "text/html; charset=utf-8")
        self._send(404, {"error": "not found"})


def serve_https(collector, bind, port, cert, key, ciphers=None):
    """Start the HTTPS receiver in a thread. -> server (server.server_port, .shutdown()).
    ciphers: an OpenSSL cipher list to add (axTLS clients, the ESP8266's, offer RSA key
    exchange suites only: "DEFAULT:AES128-SHA256:AES128-SHA")."""
    handler = type("H", (Handler,), {"collector": collector})
    srv = ThreadingHTTPServer((bind, port), handler)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if ciphers:
        ctx.set_ciphers(ciphers)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    return srv


def serve_http(collector, bind, port):
    """Start a plain HTTP receiver in a thread, for dongles that cannot do TLS (ESP8266):
    it takes batches signed with a key the collector knows for the device and refuses the
    rest (403). The export and plot pages are served too. -> server."""
    handler = type("H", (Handler,), {"collector": collector, "plain": True})
    srv = ThreadingHTTPServer((bind, port), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# -- MQTT subscriber ----------------------------------------------------------------------
class MqttSubscriber:
    """Subscribes to batches; reconnects with backoff when the broker goes away."""

    def __init__(self, collector, host, port, topic="linky/+/batch", client_id=None):
        self.c = collector
        self.host = host
        self.port = port
        self.topic = topic
        self.client_id = client_id or "linky-collector-%d" % os.getpid()
        self.stop = threading.Event()
        self.connected = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.th.start()
        return self

    def _on(self, topic, msg):
        self.c.ingest(msg, "mqtt")

    def _run(self):
        from umqtt.simple import MQTTClient
        delay = 0.2
        while not self.stop.is_set():
            cl = MQTTClient(self.client_id.encode(), self.host, self.port, keepalive=30)
            cl.set_callback(self._on)
            try:
                # persistent session: QoS 1 batches published while we were away are kept
                cl.connect(clean_session=False)
                cl.sock.settimeout(1.0)
                cl.subscribe(self.topic.encode(), 1)
                self.connected.set()
                delay = 0.2
                last_ping = time.time()
                while not self.stop.is_set():
                    try:
                        cl.wait_msg()
                    except OSError as e:
                        if "timed out" not in str(e) and not isinstance(e, TimeoutError):
                            raise
                    if time.time() - last_ping > 10:
                        cl.ping()
                        last_ping = time.time()
            except Exception:
                self.connected.clear()
                try:
                    cl.sock.close()
                except Exception:
                    pass
                self.stop.wait(delay)
                delay = min(delay * 2, 5.0)
        try:
            cl.disconnect()
        except Exception:
            pass

    def close(self):
        self.stop.set()
        self.th.join(timeout=5)


def load_keys(path):
    keys = {}
    with open(path) as f:
        for ln in f:
            ln = ln.strip()
            if ln and not ln.startswith("#"):
                dev, hexkey = ln.split()[:2]
                keys[dev] = sign.parse_key(hexkey)
    return keys


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="collector-data")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--https-port", type=int, default=8443, help="0: no HTTPS")
    ap.add_argument("--http-port", type=int, default=0,
                    help="plain HTTP for dongles without TLS (ESP8266): signed batches only, "
                         "needs --key or --keys; 0: off")
    ap.add_argument("--san", action="append", help="extra certificate name/address")
    ap.add_argument("--mqtt-host", default=None)
    ap.add_argument("--mqtt-port", type=int, default=1883)
    ap.add_argument("--mqtt-topic", default="linky/+/batch")
    ap.add_argument("--key", default=None, help="hex HMAC key for every device")
    ap.add_argument("--keys", default=None, help='file of "device_id hexkey" lines')
    ap.add_argument("--require-signature", action="store_true")
    ap.add_argument("--plot", default=None, help="write the PNG load curve here and exit")
    a = ap.parse_args(argv)
    if a.http_port and not (a.key or a.keys):
        ap.error("--http-port takes signed batches only: give --key or --keys")
    keys = load_keys(a.keys) if a.keys else {}
    col = Collector(a.data, keys, sign.parse_key(a.key) if a.key else None,
                    a.require_signature)
    if a.plot:
        col.plot_png(a.plot)
        print("wrote", a.plot, "(%d readings)" % col.count())
        return 0
    srv = sub = plain = None
    if a.http_port:
        plain = serve_http(col, a.bind, a.http_port)
        print("HTTP collector (signed batches only) on http://%s:%d/" % (
            a.bind, plain.server_port))
    if a.https_port:
        sans = [a.bind, "localhost"] + (a.san or [])
        ca_pem, cert, key = ensure_pki(a.data, sans)
        srv = serve_https(col, a.bind, a.https_port, cert, key)
        print("HTTPS collector on https://%s:%d/ — device config ca_pem:" % (
            a.bind, srv.server_port))
        print(ca_pem)
    if a.mqtt_host:
        sub = MqttSubscriber(col, a.mqtt_host, a.mqtt_port, a.mqtt_topic).start()
        print("MQTT: subscribed to %s on %s:%d" % (a.mqtt_topic, a.mqtt_host, a.mqtt_port))
    sys.stdout.flush()
    try:
        while True:
            time.sleep(5)
            print("readings: %d" % col.count())
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        if sub:
            sub.close()
        if srv:
            srv.shutdown()
        if plain:
            plain.shutdown()
        col.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
