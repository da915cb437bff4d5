"""Collector: a small receiver for those who have no server.

    LINKY_COLLECTOR_KEY=<hex> python -m tools.collector [--data DIR] [--db URL]
        [--bind 127.0.0.1] [--https-port 8443] [--http-port 0] [--keys FILE]
        [--mqtt-host H --mqtt-port 1883 --mqtt-topic 'linky/+/batch' [--mqtt-ca FILE]]
        [--accept-unsigned]

* Batches follow docs/wire-format.md and are received by tools/wire.py (an
  implementation written apart from the firmware): validated whole, the seal checked
  under the device's key, `dev` matched with the transport's device (HTTP header
  X-Linky-Device, MQTT topic level), `ch` with the channel it arrived by, and stored with
  its counter in one transaction (or refused with nothing stored). Signed batches only,
  unless --accept-unsigned (a lab; a device that has a key must still sign).
* Keys never on the command line (`ps` shows it): a file of "device_id hexkey" lines
  (--keys FILE; "* hexkey" = every device) and/or LINKY_COLLECTOR_KEY (one key for every
  device) / LINKY_COLLECTOR_KEYS (path of such a file) in the environment.
* HTTPS: uvicorn + Starlette. On first run it makes its own CA and a server certificate
  in DIR and prints the CA PEM to paste into the device's `ca_pem`. POST any path (the
  device's `https_url`) = one batch. TLS handshakes time out (asyncio, per connection),
  a request must arrive whole within --request-timeout, idle keep-alive connections are
  closed, and connections are capped (uvicorn's limit_concurrency + a hard cap).
* --http-port: plain HTTP for dongles without TLS (ESP8266): signed batches only.
* MQTT: paho-mqtt subscriber (persistent session, QoS 1 acknowledged after the batch is
  stored or refused), reconnects by itself.
* Storage: tools/fleetdb.py (the fleet store's schema): SQLite DIR/collector.sqlite by
  default, --db URL for another file or PostgreSQL ("postgresql://...").
* GET / or /plot.html, /export.csv (formulas neutralised), /export.json, /stats.json,
  /plot.png.
"""
import argparse
import asyncio
import csv
import datetime
import html
import io
import json
import math
import os
import socket
import stat
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tools import wire  # noqa: E402
from tools.fleetdb import CounterReplay, open_db  # noqa: E402
# the collector's CA and server certificate come from the shared host services module
from tools.services import ensure_pki, make_pki  # noqa: E402,F401 (collector API)

ENV_KEY = "LINKY_COLLECTOR_KEY"
ENV_KEYS = "LINKY_COLLECTOR_KEYS"
ENV_MQTT_PASSWORD = "LINKY_MQTT_PASSWORD"

# Per-connection limits (seconds / counts); serve_https/serve_http take them as arguments.
HANDSHAKE_TIMEOUT = 10.0     # TLS handshake, from accept
REQUEST_TIMEOUT = 10.0       # request head + body, from the connection being ready
RESPONSE_TIMEOUT = 60.0      # then the answer must have gone out (a client not reading)
KEEP_ALIVE = 5               # idle between two requests on one connection
MAX_CONNECTIONS = 256        # open connections past the handshake; more are cut at once


# -- the collector ------------------------------------------------------------------------
class Collector:
    """keys: {device id: key bytes} (ids normalised here); default_key: the key of every
    device without one of its own (a lab / the demo); accept_unsigned: take unsigned
    batches from devices without a key (never on the plain-HTTP listener)."""

    def __init__(self, data_dir, keys=None, default_key=None, accept_unsigned=False,
                 db_url=None):
        os.makedirs(data_dir, exist_ok=True)
        self.dir = data_dir
        self.keys = {wire.normalise_dev(d): k for d, k in (keys or {}).items()}
        self.default_key = default_key
        self.accept_unsigned = accept_unsigned
        old = None
        if db_url is None:
            db_url = os.path.join(data_dir, "collector.sqlite")
            old = _move_v1_store(db_url)
        self.db = open_db(db_url)
        if old is not None:
            n, left = import_v1_store(self.db, old)
            print("collector: %d readings imported from %s (the previous collector's "
                  "store, kept there), %d left out: not valid v1 values" % (n, old, left),
                  file=sys.stderr)
        self.lock = threading.Lock()
        self.refused = {}
        self.batches = 0

    def key_for(self, dev):
        return self.keys.get(dev, self.default_key)

    # -- ingest ----------------------------------------------------------------------
    def ingest(self, payload, channel, signed_only=False, transport_dev=None):
        """One batch as it arrived -> (http status, response dict). Never raises on bad
        input. signed_only: the plain-HTTP listener, where nothing but the seal protects
        a batch. transport_dev: the device the transport names (or None)."""
        try:
            b = wire.receive(payload, self.key_for, channel, transport_dev,
                             accept_unsigned=self.accept_unsigned and not signed_only)
        except wire.WireError as e:
            return self._refuse(e.status, e.reason)
        rows = b.records()
        try:
            with self.lock:
                stored, dups = self.db.ingest(b.dev, channel, b.ctr, b.header, rows)
                self.batches += 1
        except CounterReplay as e:
            return self._refuse(409, "replay", last_ctr=e.last_ctr)
        except Exception as e:   # disk full, database gone: not stored, the device retries
            return self._refuse(503, "storage", detail=type(e).__name__)
        return 200, {"ok": True, "stored": stored, "duplicates": dups,
                     "last": b.header["last"]}

    def _refuse(self, status, reason, **extra):
        with self.lock:
            self.refused[reason] = self.refused.get(reason, 0) + 1
        return status, dict(error=reason, **extra)

    # -- queries ---------------------------------------------------------------------
    def readings(self, device=None):
        with self.lock:
            rows = self.db.readings(device)
        for r in rows:
            r["device"] = r["dev"]
        return rows

    def count(self, device=None):
        with self.lock:
            return self.db.count(device)

    def stats(self):
        with self.lock:
            devs = self.db.devices()
            refused = dict(self.refused)
        return {"devices": {d["dev"]: {"readings": d["readings"], "batches": d["batches"]}
                            for d in devs},
                "batches": self.batches, "refused": refused}

    def export_csv(self, device=None):
        recs = self.readings(device)
        cols = ["device", "ep", "seq", "kind", "t", "time", "t_src", "dt_s", "ref_seq"]
        extra = sorted({k for r in recs for k in r} - set(cols) - {"dev"})
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow([csv_cell(c) for c in cols + extra])
        for r in recs:
            r = dict(r, time=_iso(r.get("t")))
            w.writerow([csv_cell(r.get(c)) for c in cols + extra])
        return buf.getvalue()

    def load_curve(self, device=None):
        """-> [(t, power, device)] of readings with a time and a power (numbers only: a
        row stored by anything else that is not a number is left out, not drawn)."""
        pts = []
        for r in self.readings(device):
            t = r.get("t")
            if r.get("kind", "reading") != "reading" or not _is_number(t) \
                    or not 0 <= t < T_MAX:
                continue
            p = r.get("apparent_power_va")
            if p is None:
                p = r.get("active_power_w")
            if _is_number(p):
                pts.append((r["t"], p, str(r["device"])))
        return pts

    def plot_png(self, path_or_buf, device=None):
        # matplotlib's object API, not pyplot: pages are drawn in server threads
        from matplotlib.figure import Figure
        pts = self.load_curve(device)
        fig = Figure(figsize=(9, 3.5), dpi=100)
        ax = fig.subplots()
        for dev in sorted({p[2] for p in pts}):
            xs = [_dt(p[0]) for p in pts if p[2] == dev]
            ys = [p[1] for p in pts if p[2] == dev]
            # "$" would start matplotlib's mathtext, which raises on a malformed formula
            ax.plot(xs, ys, drawstyle="steps-post", label=dev.replace("$", r"\$"))
        ax.set_ylabel("power (VA or W)")
        ax.set_title("Load curve (%d readings)" % len(pts))
        if pts:
            ax.legend(loc="upper right")
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path_or_buf, format="png")

    def plot_html(self, device=None):
        pts = self.load_curve(device)
        w, h = 900, 300
        if pts:
            t0 = min(p[0] for p in pts)
            t1 = max(p[0] for p in pts)
            pmax = max(p[1] for p in pts) or 1
            span = max(t1 - t0, 1)
            poly = " ".join("%.1f,%.1f" % (40 + (p[0] - t0) * (w - 50) / span,
                                           h - 20 - p[1] * (h - 40) / pmax) for p in pts)
        else:
            poly, t0, t1, pmax = "", None, None, 0
        devs = ", ".join(sorted({p[2] for p in pts}))
        return ("<!doctype html><meta charset=utf-8><title>Load curve</title>"
                "<h1>Load curve</h1><p>%d readings, %s to %s, max %s</p><p>%s</p>"
                "<svg width=%d height=%d style='border:1px solid #ccc'>"
                "<polyline fill=none stroke='#1565c0' stroke-width=1.5 points='%s'/></svg>"
                "<p><a href=/export.csv>CSV</a> <a href=/export.json>JSON</a> "
                "<a href=/plot.png>PNG</a></p>"
                % (len(pts), _iso(t0), _iso(t1), html.escape(str(pmax)), html.escape(devs),
                   w, h, poly))

    def close(self):
        with self.lock:
            self.db.close()


def _move_v1_store(path):
    """The collector before tools/wire.py kept its own schema (readings.device, counters
    per channel:epoch): such a file is moved aside (collector-v1.sqlite, kept as it is)
    and its rows imported into the new store. -> the moved file's path, or None."""
    import sqlite3
    if not os.path.exists(path):
        return None
    c = sqlite3.connect(path)
    try:
        cols = [r[1] for r in c.execute("PRAGMA table_info(readings)")]
    finally:
        c.close()
    if "device" not in cols:
        return None
    dest = os.path.join(os.path.dirname(path), "collector-v1.sqlite")
    if os.path.exists(dest):
        raise RuntimeError("%s has the previous collector's schema and %s exists already: "
                           "move one of them away" % (path, dest))
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.rename(path + suffix, dest + suffix)
    return dest


def import_v1_store(db, path):
    """Rows and counters of a previous collector's store into db. Every row is checked
    as a received one would be (tools/wire.check_record): the previous collector took
    unchecked values (#19), and those are left out. -> (imported, left out)."""
    import sqlite3
    old = sqlite3.connect(path)
    groups, left = {}, 0
    try:
        for dev, ep, data, ch in old.execute(
                "SELECT device, ep, data, channel FROM readings ORDER BY device, ep, seq"):
            try:
                rec = json.loads(data)
                wire.check_record(rec)
                dev = wire.normalise_dev(dev)
                if type(ep) is not int or ep < 0 or ch not in wire.CHANNELS:
                    raise ValueError("ep/channel")
            except (ValueError, TypeError):
                left += 1
                continue
            groups.setdefault((dev, ep, ch), []).append(rec)
        counters = {}
        for dev, chan, ctr in old.execute("SELECT device, channel, ctr FROM counters"):
            ch = str(chan).split(":")[0]
            try:
                dev = wire.normalise_dev(dev)
            except ValueError:
                continue
            if ch in wire.CHANNELS and type(ctr) is int and ctr >= 0:
                counters[(dev, ch)] = max(ctr, counters.get((dev, ch), 0))
    finally:
        old.close()
    n = 0
    for (dev, ep, ch), recs in sorted(groups.items()):
        stored, _ = db.ingest(dev, ch, None, {"ep": ep}, recs)
        n += stored
    # the last counter accepted per (device, channel): a batch seen by the previous
    # collector stays a replay
    for (dev, ch), ctr in sorted(counters.items()):
        db.ingest(dev, ch, ctr, {"ep": 0}, [])
    return n, left


T_MAX = 253402300800         # 10000-01-01: the last time datetime can show


def _is_number(v):
    return (type(v) is int or (type(v) is float and math.isfinite(v))) and abs(v) < 1 << 53


def _finite(v):
    # NaN/Infinity are not JSON (RFC 8259 §6): a stored one is exported as null
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v


def json_text(obj):
    """Strict JSON of anything a store holds (non-finite numbers become null)."""
    return json.dumps(_finite(obj), allow_nan=False)


def _dt(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc)


def _iso(t):
    if not _is_number(t):
        return ""
    try:
        return _dt(t).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return ""


# Spreadsheets run a cell that starts with = + - @ (or tab / CR before one) as a formula
# (OWASP "CSV Injection"): such text cells get a leading apostrophe, which the
# spreadsheet shows as text. Numbers stay numbers.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if type(v) in (int, float):
        return v
    if isinstance(v, (list, dict)):
        v = json.dumps(v, separators=(",", ":"))
    v = str(v)
    if v.startswith(FORMULA_START):
        return "'" + v
    return v


# -- HTTP(S): Starlette app on uvicorn ----------------------------------------------------
def make_app(collector, plain=False):
    """The ASGI app. plain: the plain-HTTP listener (signed batches only)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def js(status, body):
        return JSONResponse(body, status_code=status, headers={"Connection": "close"})

    async def post(request):
        cl = request.headers.get("content-length")
        if cl is None:
            return js(411, {"error": "length required"})
        if not cl.isdigit():
            return js(400, {"error": "content-length"})
        if int(cl) > wire.MAX_BODY:
            return js(413, {"error": "too large"})
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > wire.MAX_BODY:
                    return js(413, {"error": "too large"})
        except ClientDisconnect:
            # the client went away before its body was whole (shorter than its
            # Content-Length): nothing is stored and there is nobody to answer
            return Response(status_code=400)
        if len(body) != int(cl):
            return js(400, {"error": "length"})
        # one counter space for the device's "https" sink, whichever scheme carried it
        status, resp = await run_in_threadpool(
            collector.ingest, bytes(body), "https", plain,
            request.headers.get("x-linky-device"))
        return js(status, resp)

    def page(fn, ctype):
        async def get(request):
            try:
                body = await run_in_threadpool(fn)
            except Exception as e:      # a page never takes the server down with it
                return js(500, {"error": type(e).__name__})
            if isinstance(body, str):
                body = body.encode()
            return Response(body, media_type=ctype)
        return get

    def png():
        buf = io.BytesIO()
        collector.plot_png(buf)
        return buf.getvalue()

    pages = [
        ("/", collector.plot_html, "text/html; charset=utf-8"),
        ("/plot.html", collector.plot_html, "text/html; charset=utf-8"),
        ("/export.csv", collector.export_csv, "text/csv; charset=utf-8"),
        ("/export.json", lambda: json_text(collector.readings()), "application/json"),
        ("/stats.json", lambda: json.dumps(collector.stats()), "application/json"),
        ("/plot.png", png, "image/png"),
    ]
    routes = [Route(p, page(fn, ct), methods=["GET"]) for p, fn, ct in pages]
    routes.append(Route("/{path:path}", post, methods=["POST"]))
    return Starlette(routes=routes)


def _guarded_protocol(request_timeout, response_timeout, max_connections):
    """uvicorn's h11 protocol with per-connection deadlines: uvicorn closes connections
    idle between requests (timeout_keep_alive), but a connection that sends its request
    head or body slowly, or nothing at all, would be held for ever; here it is cut when
    the request is not whole request_timeout after the connection was ready (or after
    the previous answer), and when the answer has not gone out response_timeout later.
    Past max_connections open connections, a new one is cut at once."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Guarded(H11Protocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._deadline = None
            if len(self.connections) > max_connections:
                transport.abort()
                return
            self._arm(request_timeout, self._request_late)

        def _arm(self, delay, fn):
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(delay, fn)

        def _request_late(self):
            self._deadline = None
            if self.transport.is_closing():
                return
            if self.conn.their_state is h11.DONE:
                # the request is whole and being answered: the answer gets its own time
                self._arm(response_timeout, self._response_late)
            else:
                self.transport.abort()

        def _response_late(self):
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.abort()

        def on_response_complete(self):
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm(request_timeout, self._request_late)

        def shutdown(self):
            # the server is stopping: an idle connection goes at once (a TLS close would
            # wait for the peer's close_notify), one being answered finishes first
            super().shutdown()
            if self.cycle is None or self.cycle.response_complete:
                self.transport.abort()

        def connection_lost(self, exc):
            if getattr(self, "_deadline", None) is not None:
                self._deadline.cancel()
                self._deadline = None
            super().connection_lost(exc)

    return Guarded


class _Loop(asyncio.SelectorEventLoop):
    """The listener's event loop: every TLS server it creates gets a handshake timeout
    (asyncio's own ssl_handshake_timeout, which uvicorn does not set: it would be
    asyncio's default of 60 s)."""

    def __init__(self, handshake_timeout):
        asyncio.SelectorEventLoop.__init__(self)
        self.handshake_timeout = handshake_timeout

    async def create_server(self, *args, **kw):
        if kw.get("ssl") is not None:
            kw["ssl_handshake_timeout"] = self.handshake_timeout
        return await asyncio.SelectorEventLoop.create_server(self, *args, **kw)


class Listener:
    """A uvicorn server on its own event loop thread. .server_port, .shutdown()."""

    def __init__(self, app, bind, port, ssl_files=None, ciphers=None,
                 handshake_timeout=HANDSHAKE_TIMEOUT, request_timeout=REQUEST_TIMEOUT,
                 response_timeout=RESPONSE_TIMEOUT, keep_alive=KEEP_ALIVE,
                 max_connections=MAX_CONNECTIONS):
        import uvicorn
        # the socket is bound here, so a busy port fails in the caller and port 0 works
        fam = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((bind, port))
        self.server_port = self.sock.getsockname()[1]
        kw = {}
        if ssl_files:
            kw = dict(ssl_certfile=ssl_files[0], ssl_keyfile=ssl_files[1],
                      ssl_ciphers=ciphers or "DEFAULT")
        config = uvicorn.Config(
            app, lifespan="off", log_level="warning", access_log=False,
            http=_guarded_protocol(request_timeout, response_timeout, max_connections),
            timeout_keep_alive=keep_alive, limit_concurrency=max_connections,
            timeout_graceful_shutdown=2, backlog=128, server_header=False, **kw)
        self.server = uvicorn.Server(config)
        self.loop = _Loop(handshake_timeout)
        self.error = None
        started = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self._serve(started))
            except BaseException as e:   # noqa: B902 (uvicorn sys.exit()s on start-up errors)
                self.error = e
            finally:
                started.set()
                self.loop.close()
        self.thread = threading.Thread(target=run, daemon=True, name="collector-%d" % port)
        self.thread.start()
        started.wait(30)
        if self.error is not None or not self.server.started:
            raise RuntimeError("listener on %s:%d did not start: %r" % (bind, port, self.error))

    async def _serve(self, started):
        async def watch():
            while not self.server.started and not self.server.should_exit:
                await asyncio.sleep(0.01)
            started.set()
        w = asyncio.ensure_future(watch())
        await self.server.serve(sockets=[self.sock])
        await w

    def shutdown(self):
        self.server.should_exit = True
        self.thread.join(15)

    def server_close(self):
        if self.thread.is_alive():
            self.shutdown()
        self.sock.close()


def serve_https(collector, bind, port, cert, key, ciphers=None, **limits):
    """Start the HTTPS receiver. -> Listener (.server_port, .shutdown()). ciphers: an
    OpenSSL cipher list (axTLS clients, the ESP8266's, offer RSA key exchange suites
    only: "DEFAULT:AES128-SHA256:AES128-SHA"). limits: handshake_timeout,
    request_timeout, response_timeout, keep_alive, max_connections."""
    return Listener(make_app(collector), bind, port, (cert, key), ciphers, **limits)


def serve_http(collector, bind, port, **limits):
    """Start a plain HTTP receiver, for dongles that cannot do TLS (ESP8266): it takes
    batches signed with a key the collector knows for the device and refuses the rest
    (403). The export and plot pages are served too. -> Listener."""
    return Listener(make_app(collector, plain=True), bind, port, **limits)


# -- MQTT subscriber ----------------------------------------------------------------------
class MqttSubscriber:
    """paho-mqtt subscriber: persistent session (QoS 1 batches published while the
    collector was away are kept by the broker), reconnects with backoff. A batch is
    acknowledged (PUBACK) once ingest has stored or refused it; one that could not be
    stored (the database failed: 503) is not, and the connection is dropped, so the
    broker sends it again when the subscriber is back (MQTT 3.1.1 §4.4)."""

    def __init__(self, collector, host, port, topic="linky/+/batch", client_id=None,
                 ca_file=None, username=None, password=None):
        import paho.mqtt.client as mqtt
        self.c = collector
        self.topic = topic
        self.connected = threading.Event()
        if client_id is None:
            # the broker keeps a persistent session per client id: the same id on every
            # start (one per data directory) finds the batches queued while it was away
            import hashlib
            client_id = "linky-collector-" + hashlib.sha256(
                os.path.abspath(collector.dir).encode()).hexdigest()[:12]
        self.client_id = client_id
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=False, manual_ack=True)
        if ca_file:
            self.client.tls_set(ca_certs=ca_file)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.2, 5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_subscribe = self._on_subscribe
        self.failures = 0       # connection attempts that failed (broker down, TLS refused)
        self.unstored = 0       # batches left unacknowledged because storing them failed
        self.client.on_message = self._on_message
        self.host, self.port = host, port
        # the topic level that names the device: "linky/+/batch" -> 1
        levels = topic.split("/")
        self.dev_level = levels.index("+") if levels.count("+") == 1 else None

    def start(self):
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        return self

    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        if reason_code == 0:
            client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties=None):
        # connected = subscribed: from the SUBACK on, the broker keeps our batches
        if all(not rc.is_failure for rc in reason_codes):
            self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None):
        self.connected.clear()

    def _on_connect_fail(self, client, userdata):
        self.failures += 1

    def _on_message(self, client, userdata, msg):
        dev = None
        if self.dev_level is not None:
            levels = msg.topic.split("/")
            if len(levels) > self.dev_level:
                dev = levels[self.dev_level]
        status, _ = self.c.ingest(msg.payload, "mqtt", transport_dev=dev)
        if status == 503:
            self.unstored += 1
            sock = client.socket()
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return
        client.ack(msg.mid, msg.qos)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


# -- keys ---------------------------------------------------------------------------------
def load_keys(path):
    """A key file: "device_id hexkey" lines ("# ..." comments; "*" as the id = every
    device). -> ({normalised id: key}, default key or None). ValueError names the line,
    never the key."""
    keys, default = {}, None
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        print("warning: %s is readable by other users (chmod 600 it)" % path,
              file=sys.stderr)
    with open(path) as f:
        for i, ln in enumerate(f, 1):
            ln = ln.strip()
            if not ln or ln.startswith("#"):
                continue
            parts = ln.split()
            if len(parts) != 2:
                raise ValueError("%s:%d: expected 'device_id hexkey'" % (path, i))
            try:
                k = wire.parse_key(parts[1])
                if parts[0] == "*":
                    default = k
                else:
                    keys[wire.normalise_dev(parts[0])] = k
            except ValueError as e:
                raise ValueError("%s:%d: %s" % (path, i, e))
    return keys, default


def keys_from_env(environ=None):
    """-> ({id: key}, default key) from LINKY_COLLECTOR_KEYS (a key file's path) and
    LINKY_COLLECTOR_KEY (hex, every device)."""
    env = os.environ if environ is None else environ
    keys, default = {}, None
    if env.get(ENV_KEYS):
        keys, default = load_keys(env[ENV_KEYS])
    if env.get(ENV_KEY):
        default = wire.parse_key(env[ENV_KEY])
    return keys, default


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="collector-data")
    ap.add_argument("--db", default=None, help="storage URL (default: sqlite in --data)")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--https-port", type=int, default=8443, help="0: no HTTPS")
    ap.add_argument("--http-port", type=int, default=0,
                    help="plain HTTP for dongles without TLS (ESP8266): signed batches "
                         "only; 0: off")
    ap.add_argument("--san", action="append", help="extra certificate name/address")
    ap.add_argument("--mqtt-host", default=None)
    ap.add_argument("--mqtt-port", type=int, default=1883)
    ap.add_argument("--mqtt-topic", default="linky/+/batch",
                    help="its one '+' level names the device (checked against the batch's "
                         "dev); a topic without '+' (custom mqtt_prefix) checks nothing there")
    ap.add_argument("--mqtt-ca", default=None, help="CA file: MQTT over TLS")
    ap.add_argument("--mqtt-user", default=None,
                    help="MQTT user; the password comes from " + ENV_MQTT_PASSWORD)
    ap.add_argument("--keys", default=None,
                    help='file of "device_id hexkey" lines ("* hexkey": every device)')
    ap.add_argument("--key", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--accept-unsigned", action="store_true",
                    help="lab only: take unsigned batches from devices without a key")
    ap.add_argument("--request-timeout", type=float, default=REQUEST_TIMEOUT)
    ap.add_argument("--handshake-timeout", type=float, default=HANDSHAKE_TIMEOUT)
    ap.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS)
    ap.add_argument("--plot", default=None, help="write the PNG load curve here and exit")
    a = ap.parse_args(argv)
    if a.key is not None:
        ap.error("--key is refused: a key on the command line shows in `ps`; use --keys "
                 "FILE or the environment (%s, %s)" % (ENV_KEY, ENV_KEYS))
    try:
        keys, default = keys_from_env()
        if a.keys:
            fk, fd = load_keys(a.keys)
            keys.update(fk)
            default = fd or default
    except (OSError, ValueError) as e:
        ap.error(str(e))
    if a.http_port and not (keys or default):
        ap.error("--http-port takes signed batches only: give --keys or %s" % ENV_KEY)
    col = Collector(a.data, keys, default, a.accept_unsigned, db_url=a.db)
    if a.plot:
        col.plot_png(a.plot)
        print("wrote", a.plot, "(%d readings)" % col.count())
        col.close()
        return 0
    limits = dict(request_timeout=a.request_timeout, handshake_timeout=a.handshake_timeout,
                  max_connections=a.max_connections)
    servers = []
    sub = None
    try:
        if a.http_port:
            plain = serve_http(col, a.bind, a.http_port, **limits)
            servers.append(plain)
            print("HTTP collector (signed batches only) on http://%s:%d/" % (
                a.bind, plain.server_port))
        if a.https_port:
            sans = [a.bind, "localhost"] + (a.san or [])
            ca_pem, cert, key = ensure_pki(a.data, sans)
            srv = serve_https(col, a.bind, a.https_port, cert, key, **limits)
            servers.append(srv)
            print("HTTPS collector on https://%s:%d/ — device config ca_pem:" % (
                a.bind, srv.server_port))
            print(ca_pem)
        if a.mqtt_host:
            sub = MqttSubscriber(col, a.mqtt_host, a.mqtt_port, a.mqtt_topic,
                                 ca_file=a.mqtt_ca, username=a.mqtt_user,
                                 password=os.environ.get(ENV_MQTT_PASSWORD)).start()
            print("MQTT: subscribed to %s on %s:%d" % (a.mqtt_topic, a.mqtt_host,
                                                      a.mqtt_port))
        print("signed batches required" + (
            " from devices with a key; unsigned taken from the others (--accept-unsigned)"
            if a.accept_unsigned else ""))
        sys.stdout.flush()
        while True:
            time.sleep(5)
            print("readings: %d" % col.count())
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        if sub:
            sub.close()
        for s in servers:
            s.server_close()
        col.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
