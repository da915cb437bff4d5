# What the device actually puts on the wire, checked against docs/wire-format.md with
# CPython's own json/hmac/hashlib (not firmware/uplink/sign.py): every signed batch names
# its channel ("ch") and device inside the signed bytes, right before "ctr", and the
# counters are per channel. The firmware runs on CPython and on the MicroPython unix
# port; the batches are taken from a real mosquitto and from an HTTP server here.
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.host.uplink_services import Driver
from tools.services import Mosquitto

KEY_HEX = "c3" * 24
KEY = bytes.fromhex(KEY_HEX)
PY = ["cpython", "micropython"]
TAIL = 74     # ,"sig":" + 64 hex + "}  (docs/wire-format.md, "Seal")


class Capture:
    """Plain HTTP receiver that keeps every POST body and answers 200 (an http://
    endpoint: the channel is still "https", docs/wire-format.md)."""

    def __init__(self):
        self.bodies = []
        self.headers = []
        cap = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers["Content-Length"])
                cap.bodies.append(self.rfile.read(n))
                cap.headers.append(dict(self.headers))
                out = b'{"ok":true}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class MqttTap:
    """Subscribes to <prefix>/batch before the device sends, keeps every payload."""

    def __init__(self, port, topic):
        from umqtt.simple import MQTTClient
        self.got = []
        self.c = MQTTClient(b"tap", "127.0.0.1", port)
        self.c.set_callback(lambda t, m: self.got.append(bytes(m)))
        self.c.connect()
        self.c.subscribe(topic.encode(), 1)

    def drain(self, want, timeout=10):
        self.c.sock.settimeout(0.5)
        end = time.time() + timeout
        while len(self.got) < want and time.time() < end:
            try:
                self.c.wait_msg()
            except OSError:
                pass
        return self.got

    def close(self):
        try:
            self.c.disconnect()
        except OSError:
            pass


def _check_seal(body, channel, dev="0a1b2c"):
    # -> the batch as a dict; asserts the contract on the exact bytes
    assert body[-2:] == b'"}' and body[-TAIL:-TAIL + 8] == b',"sig":"', body[-120:]
    signed = body[:-TAIL] + b"}"
    sig = body[-66:-2].decode()
    assert sig == hmac.new(KEY, signed, hashlib.sha256).hexdigest()
    d = json.loads(body)
    keys = list(d)
    # key order of the contract: ... rows, ch, ctr, sig (sig last)
    assert keys[-3:] == ["ch", "ctr", "sig"], keys
    assert keys[:2] == ["v", "dev"]
    assert d["ch"] == channel and d["dev"] == dev
    assert isinstance(d["ctr"], int) and not isinstance(d["ctr"], bool)
    # dev, ch and ctr are inside the signed bytes: the seal does not survive a change
    for a, b in ((b'"ch":"%s"' % channel.encode(),
                  b'"ch":"%s"' % (b"https" if channel == "mqtt" else b"mqtt")),
                 (b'"dev":"%s"' % dev.encode(), b'"dev":"0a1b2d"'),
                 (b'"ctr":%d' % d["ctr"], b'"ctr":%d' % (d["ctr"] + 1))):
        assert a in signed
        other = signed.replace(a, b)
        assert hmac.new(KEY, other, hashlib.sha256).hexdigest() != sig
    return d


@pytest.mark.timeout(180)
@pytest.mark.parametrize("python", PY)
def test_signed_batches_name_their_channel_and_count_per_channel(tmp_path, python):
    broker = Mosquitto().start()
    cap = Capture()
    tap = MqttTap(broker.port, "linky/0a1b2c/batch")
    cfg = {"ssid": "x", "mqtt_host": "127.0.0.1", "mqtt_port": broker.port,
           "https_url": "http://127.0.0.1:%d/ingest" % cap.port, "hmac_key": KEY_HEX,
           "net_timeout_s": 5, "ha_discovery": False}
    drv = Driver(python, cfg, str(tmp_path))
    try:
        drv.cmd("fill 90")
        r = drv.cmd("send")
        assert r["res"]["ok"] and r["count"] == 0, r
        drv.cmd("fill 30")
        r = drv.cmd("send")
        assert r["res"]["ok"] and r["count"] == 0, r
        n_mqtt = sum(c["records"] for c in r["res"]["connections"] if c["sink"] == "mqtt")
        assert n_mqtt == 30
        assert len(cap.bodies) >= 2
        got = tap.drain(len(cap.bodies))
        assert len(got) >= 2
        per = {}
        for channel, bodies in (("https", cap.bodies), ("mqtt", got)):
            seqs = []
            ctrs = []
            for b in bodies:
                d = _check_seal(b, channel)
                ctrs.append(d["ctr"])
                for row in d["rows"]:
                    seqs.append(row[0])
            # every record once per channel, counters strictly increasing on each
            assert seqs == list(range(1, 121)), (channel, seqs)
            assert ctrs == sorted(set(ctrs)), (channel, ctrs)
            per[channel] = ctrs
        # one counter per channel: each starts from its own state, neither skips the
        # values the other used
        assert per["mqtt"][0] == per["https"][0] == 0, per
        assert per["https"] == list(range(len(per["https"])))
        assert per["mqtt"] == list(range(len(per["mqtt"])))
        # the HTTP transport names the same device the signed bytes do
        assert all(h.get("X-Linky-Device") == "0a1b2c" for h in cap.headers)
    finally:
        drv.close()
        tap.close()
        cap.close()
        broker.stop()
