# Uplink over HTTPS to the real collector (certificates generated here), on CPython and on
# the MicroPython unix port: verified CA, impostor/expired certificates refused, signed
# batches, forged HMAC and replayed counters refused, an outage loses nothing.
import datetime
import json
import os
import ssl
import http.client

import pytest

from tests.host.uplink_services import Driver, free_port
from tools.collector import Collector, serve_https, serve_http
from tools.services import make_pki
from firmware.uplink import batch as B
from firmware.uplink import sign

KEY = "5a" * 16
PY = ["cpython", "micropython"]


def _write(d, name, data):
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(data)
    return p


class Server:
    def __init__(self, tmp, col, cert_pem, key_pem, port=None):
        self.cert = _write(tmp, "srv-%d.pem" % id(self), cert_pem)
        self.key = _write(tmp, "srv-%d.key" % id(self), key_pem)
        self.col = col
        self.port = port or free_port()
        self.srv = None

    def start(self):
        self.srv = serve_https(self.col, "127.0.0.1", self.port, self.cert, self.key)
        return self

    def stop(self):
        if self.srv:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None


@pytest.fixture
def pki():
    ca_pem, cert, key, ca = make_pki()
    return ca_pem, cert, key, ca


@pytest.fixture
def collector(tmp_path):
    c = Collector(str(tmp_path / "col"), default_key=sign.parse_key(KEY))
    yield c
    c.close()


def _cfg(port, ca_pem, key=KEY):
    return {"ssid": "x", "https_url": "https://127.0.0.1:%d/ingest" % port,
            "ca_pem": ca_pem.decode(), "hmac_key": key, "net_timeout_s": 3}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("python", PY)
def test_batches_arrive_verified_and_signed_and_an_outage_loses_nothing(
        tmp_path, pki, collector, python):
    ca_pem, cert, key, _ = pki
    srv = Server(str(tmp_path), collector, cert, key).start()
    drv = Driver(python, _cfg(srv.port, ca_pem), str(tmp_path))
    try:
        filled = drv.cmd("fill 120")
        r = drv.cmd("send")
        assert r["res"]["ok"] and r["count"] == 0, r
        conns = r["res"]["connections"]
        assert all(c["sink"] == "https" and c["ok"] for c in conns)
        assert sum(c["records"] for c in conns) == 120
        assert collector.count() == 120
        from tests.fw.uplink_fixtures import tic_like
        got = collector.readings()
        for i, g in enumerate(got):
            assert g["seq"] == filled["seqs"][i]
            assert g["energy_import_wh"] == tic_like(i)["energy_import_wh"]
            assert g["apparent_power_va"] == tic_like(i)["apparent_power_va"]
            assert g["tariff_period"] == tic_like(i)["tariff_period"]
        # outage mid-session
        srv.stop()
        drv.cmd("fill 40")
        r = drv.cmd("send")
        assert not r["res"]["ok"] and r["count"] == 40
        srv.start()
        drv.cmd("fill 5")
        for _ in range(5):
            r = drv.cmd("send")
            if r["count"] == 0:
                break
        assert r["count"] == 0, r
        assert [g["seq"] for g in collector.readings()] == list(range(1, 166))
        assert collector.refused == {}
        # the secret never reaches the log lines
        assert KEY not in json.dumps(r)
    finally:
        drv.close()
        srv.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("python", PY)
def test_impostor_and_expired_certificates_are_refused(tmp_path, pki, collector, python):
    ca_pem, cert, key, ca = pki
    # impostor: a certificate from another CA
    _, icert, ikey, _ = make_pki()
    imp = Server(str(tmp_path), collector, icert, ikey).start()
    # expired: right CA, validity over
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
    _, ecert, ekey, _ = make_pki(not_before=old, days=10, ca=ca)
    exp = Server(str(tmp_path), collector, ecert, ekey).start()
    # wrong name: right CA, certificate for another host
    _, ncert, nkey, _ = make_pki(sans=("collector.example",), ca=ca)
    wrong = Server(str(tmp_path), collector, ncert, nkey).start()
    try:
        for srv in (imp, exp, wrong):
            drv = Driver(python, _cfg(srv.port, ca_pem), str(tmp_path / str(srv.port)))
            try:
                drv.cmd("fill 5")
                r = drv.cmd("send")
                assert not r["res"]["ok"] and r["count"] == 5, r
                assert r["res"]["connections"][0]["error"].startswith("tls"), r
            finally:
                drv.close()
        assert collector.count() == 0
    finally:
        for s in (imp, exp, wrong):
            s.stop()


def _post(port, ca_pem, body):
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    c.request("POST", "/ingest", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    out = r.status, json.loads(r.read())
    c.close()
    return out


@pytest.mark.timeout(120)
@pytest.mark.parametrize("python", PY)
def test_forged_hmac_and_replayed_counter_are_refused(tmp_path, pki, collector, python):
    ca_pem, cert, key, _ = pki
    srv = Server(str(tmp_path), collector, cert, key).start()
    try:
        # a device with the wrong key: refused, nothing acknowledged in its store
        drv = Driver(python, _cfg(srv.port, ca_pem, key="77" * 16), str(tmp_path / "bad"))
        try:
            drv.cmd("fill 7")
            r = drv.cmd("send")
            assert not r["res"]["ok"] and r["count"] == 7
            assert r["res"]["connections"][0]["error"] == "http 403"
        finally:
            drv.close()
        assert collector.count() == 0
        # replay: the same sealed batch twice
        recs = [{"seq": 1, "kind": "reading", "t": 1700000000, "t_src": "ntp",
                 "apparent_power_va": 900}]
        body = sign.seal(sign.parse_key(KEY), B.build("0a1b2c", recs, epoch=77, ctr=1000, ch="https")[0])
        assert _post(srv.port, ca_pem, body)[0] == 200
        status, resp = _post(srv.port, ca_pem, body)
        assert status == 409 and resp["error"] == "replay" and resp["last_ctr"] == 1000
        assert _post(srv.port, ca_pem, body.replace(b"900", b"901"))[0] == 403
        assert _post(srv.port, ca_pem, B.build("0a1b2c", recs, epoch=77, ctr=1001, ch="https")[0])[0] == 403
        assert collector.count() == 1
        # a device whose counter restarted within the same numbering epoch (state file
        # restored from an old copy) jumps past the receiver's last counter on the 409 and
        # its batch goes through: nothing stuck, nothing replayed
        good = tmp_path / "good"
        (good / ("fs-" + python)).mkdir(parents=True)
        (good / ("fs-" + python) / "uplink.json").write_text('{"ep": 77}')
        drv = Driver(python, _cfg(srv.port, ca_pem), str(good))
        try:
            drv.cmd("fill 3")
            r = drv.cmd("send")
            assert r["res"]["ok"] and r["count"] == 0, r
            assert [c["error"] for c in r["res"]["connections"]] == ["http 409", None]
        finally:
            drv.close()
        assert collector.count() == 3      # seq 1 was already there: de-duplicated
    finally:
        srv.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("python", PY)
def test_plain_http_with_signed_batches_the_esp8266_way(tmp_path, collector, python):
    # no room for TLS on the ESP8266: http:// with hmac_key to the collector's plain
    # listener, which takes signed batches only
    srv = serve_http(collector, "127.0.0.1", 0)
    port = srv.server_port
    cfg = {"ssid": "x", "https_url": "http://127.0.0.1:%d/ingest" % port, "hmac_key": KEY,
           "net_timeout_s": 3}
    drv = Driver(python, cfg, str(tmp_path))
    try:
        drv.cmd("fill 30")
        r = drv.cmd("send")
        assert r["res"]["ok"] and r["count"] == 0, r
        assert collector.count() == 30 and collector.refused == {}
        recs = [{"seq": 99, "kind": "reading", "t": 1700000000, "t_src": "ntp",
                 "apparent_power_va": 1}]
        unsigned = B.build("0a1b2c", recs)[0]
        forged = sign.seal(b"y" * 16, B.build("0a1b2c", recs, ctr=1001, ch="https")[0])
        for body in (unsigned, forged):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", "/ingest", body)
            assert conn.getresponse().status == 403
            conn.close()
        assert collector.count() == 30
    finally:
        drv.close()
        srv.shutdown()
    # a collector that knows no key for the device refuses everything on plain HTTP
    bare = Collector(str(tmp_path / "bare"))
    srv = serve_http(bare, "127.0.0.1", 0)
    try:
        body = sign.seal(sign.parse_key(KEY), B.build("0a1b2c", recs, ctr=1, ch="https")[0])
        conn = http.client.HTTPConnection("127.0.0.1", srv.server_port, timeout=5)
        conn.request("POST", "/ingest", body)
        resp = conn.getresponse()
        assert resp.status == 403 and b"unknown device" in resp.read()
        assert bare.count() == 0
    finally:
        srv.shutdown()
        bare.close()
