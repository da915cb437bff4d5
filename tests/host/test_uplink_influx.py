# Influx sink: the firmware POSTs line protocol to the InfluxDB v2 write API. No InfluxDB
# server is installable offline, so a loopback HTTP server stands in for it and checks
# what the v2 API documents: POST /api/v2/write?org=&bucket=&precision=s,
# "Authorization: Token <token>", 204 on success, 401 on a bad token.
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

import pytest

from tests.host.uplink_services import Driver
from tests.fw.uplink_fixtures import tic_like

TOKEN = "s3cr3t-token-value"
PY = ["cpython", "micropython"]


class InfluxStandIn:
    def __init__(self):
        self.lines = []
        self.requests = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                u = urlparse(self.path)
                q = parse_qs(u.query)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((u.path, q, self.headers.get("Authorization")))
                if u.path != "/api/v2/write" or q.get("precision") != ["s"] or \
                        q.get("org") != ["home"] or q.get("bucket") != ["energy"]:
                    status = 400
                elif self.headers.get("Authorization") != "Token " + TOKEN:
                    status = 401
                else:
                    outer.lines.extend(body.decode().strip().split("\n"))
                    status = 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def influx():
    s = InfluxStandIn()
    yield s
    s.close()


def _cfg(port, token=TOKEN):
    return {"ssid": "x", "influx_url": "http://127.0.0.1:%d" % port, "influx_token": token,
            "influx_org": "home", "influx_bucket": "energy", "net_timeout_s": 3}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("python", PY)
def test_lines_carry_store_times_and_values(tmp_path, influx, python):
    drv = Driver(python, _cfg(influx.port), str(tmp_path))
    try:
        filled = drv.cmd("fill 90")
        r = drv.cmd("send")
        assert r["res"]["ok"] and r["count"] == 0, r
        assert len(influx.lines) == 90
        for i, ln in enumerate(influx.lines):
            head, fields, ts = ln.split(" ")
            assert head == "linky,device=0a1b2c"
            assert int(ts) == filled["t"][i]
            f = dict(kv.split("=", 1) for kv in fields.split(","))
            assert f["energy_import_wh"] == "%di" % tic_like(i)["energy_import_wh"]
            assert f["apparent_power_va"] == "%di" % tic_like(i)["apparent_power_va"]
            assert f["tariff_period"] == '"%s"' % tic_like(i)["tariff_period"]
    finally:
        drv.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("python", PY)
def test_refused_token_keeps_the_records_and_is_not_logged(tmp_path, influx, python):
    drv = Driver(python, _cfg(influx.port, token="wrong-token-xyz"), str(tmp_path))
    try:
        drv.cmd("fill 10")
        r = drv.cmd("send")
        assert not r["res"]["ok"] and r["count"] == 10
        assert r["res"]["connections"][0]["error"] == "http 401"
        assert "wrong-token-xyz" not in json.dumps(r)
        assert influx.lines == []
    finally:
        drv.close()
