# tools/collector.py as a user runs it: `python -m tools.collector`, first run makes its
# CA and prints it, batches POSTed over HTTPS verified with that CA, exports and plots.
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import http.client

import pytest

from tests.host.uplink_services import free_port, wait_port, ROOT
from firmware.uplink import batch as B
from firmware.uplink import sign

KEY = "c0" * 16


def _get(port, ctx, path):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    out = r.status, r.getheader("Content-Type"), r.read()
    c.close()
    return out


def _post(port, ctx, body):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.request("POST", "/ingest", body)
    r = c.getresponse()
    out = r.status, json.loads(r.read())
    c.close()
    return out


@pytest.mark.timeout(120)
def test_collector_cli_prints_its_ca_stores_and_exports(tmp_path):
    port = free_port()
    data = str(tmp_path / "data")
    p = subprocess.Popen([sys.executable, "-m", "tools.collector", "--data", data,
                          "--https-port", str(port), "--key", KEY], cwd=ROOT,
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
        ctx = ssl.create_default_context(cadata=pem)
        recs = [{"seq": i, "kind": "reading", "t": 1700000000 + 5 * i, "t_src": "ntp",
                 "apparent_power_va": 300 + 10 * i, "energy_import_wh": 1000 + i}
                for i in range(1, 41)]
        recs.append({"seq": 41, "kind": "reading", "t": None, "t_src": "elapsed",
                     "dt_s": 5, "ref_seq": 40, "apparent_power_va": 900})
        key = sign.parse_key(KEY)
        st, resp = _post(port, ctx, sign.seal(key, B.build("0a1b2c", recs, ctr=1, max_bytes=8192)[0]))
        assert st == 200 and resp["stored"] == 41
        # the same records again, new counter: stored once
        st, resp = _post(port, ctx, sign.seal(key, B.build("0a1b2c", recs[:5], ctr=2)[0]))
        assert st == 200 and resp["stored"] == 0 and resp["duplicates"] == 5
        st, resp = _post(port, ctx, b"not json")
        assert st == 400
        st, ctype, body = _get(port, ctx, "/export.json")
        rows = json.loads(body)
        assert len(rows) == 41 and rows[-1]["t"] == 1700000000 + 5 * 40 + 5  # elapsed, resolved
        st, ctype, body = _get(port, ctx, "/export.csv")
        assert ctype == "text/csv" and body.decode().count("\n") == 42
        st, ctype, body = _get(port, ctx, "/plot.png")
        assert st == 200 and body[:8] == b"\x89PNG\r\n\x1a\n"
        st, ctype, body = _get(port, ctx, "/plot.html")
        assert b"<polyline" in body and b"41 readings" in body
        st, ctype, body = _get(port, ctx, "/stats.json")
        assert json.loads(body)["devices"]["0a1b2c"]["readings"] == 41
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
