# The HTTP and DNS checks against `tools.portal` running the real portal code as a
# separate process: under the MicroPython unix port (what the device runs) and under
# CPython, over loopback sockets.
import re
import urllib.parse

import pytest

from tests.host.portal_proc import PortalProc, http_raw, dns_query
from firmware.portal.run import PROBES

IMPLS = ["micropython", "cpython"]


@pytest.fixture(params=IMPLS)
def portal(request, tmp_path):
    p = PortalProc(tmp_path, request.param)
    yield p
    p.stop()


def get(p, path, host=None):
    return http_raw(p.port, ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: test\r\n\r\n"
                             % (path, host or p.host())).encode())


def token(p):
    st, h, body = get(p, "/")
    assert st == 200
    return re.search(rb'name=_token value="([0-9a-f]+)"', body).group(1).decode()


def form(p, **change):
    fields = {"_token": token(p), "ssid": "HomeNet", "password": "correct horse",
              "mqtt_host": "broker.lan", "mqtt_port": "", "mqtt_tls": "0", "mqtt_user": "",
              "mqtt_password": "", "mqtt_plain_ok": "0", "mqtt_prefix": "", "ha_discovery": "1", "https_url": "", "hmac_key": "",
              "ca_pem": "", "influx_url": "", "influx_token": "", "influx_org": "",
              "influx_bucket": "", "meter_protocol": "auto", "meter_key": "", "meter_aak": "",
              "relay_threshold_va": "", "relay_mode": "auto", "reading_interval_s": "5"}
    fields.update(change)
    return urllib.parse.urlencode(fields).encode()


def post(p, body, origin="same", ctype="application/x-www-form-urlencoded"):
    hdr = ("POST /save HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
           % (p.host(), ctype, len(body)))
    if origin:
        hdr += "Origin: %s\r\n" % ("http://" + p.host() if origin == "same" else origin)
    return http_raw(p.port, hdr.encode() + b"\r\n" + body)


def test_probes_redirect_to_the_form(portal):
    for path in PROBES:
        st, h, body = get(portal, path, host="connectivitycheck.gstatic.com")
        assert st == 302, path
        assert h["location"] == portal.base() + "/"
    st, h, body = get(portal, "/")
    assert st == 200 and b"<form method=post action=/save" in body
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in body and b"<script>" not in body


def test_dns_resolves_any_name_to_the_ap(portal):
    for name in ("connectivitycheck.gstatic.com", "captive.apple.com", "example.org",
                 "www.msftconnecttest.com", "x.y.z.invalid"):
        r = dns_query(portal.dns_port, name)
        assert r[:2] == b"\x42\x42" and r[6:8] == b"\x00\x01"
        assert r[-4:] == bytes([127, 0, 0, 1]), name
    r = dns_query(portal.dns_port, "example.org", qtype=28)
    assert r[6:8] == b"\x00\x00"
    # malformed packets are dropped, and the server keeps answering
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    for junk in (b"", b"\x00", b"\xff" * 40, b"\x12\x34\x81\x80" + b"\x00" * 20):
        s.sendto(junk, ("127.0.0.1", portal.dns_port))
        with pytest.raises(socket.timeout):
            s.recv(512)
    s.close()
    assert dns_query(portal.dns_port, "still.works")[-4:] == bytes([127, 0, 0, 1])


def test_caps_and_junk(portal):
    p = portal.port
    assert http_raw(p, b"GET /" + b"a" * 700 + b" HTTP/1.1\r\n\r\n")[0] == 414
    assert http_raw(p, b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 3000 + b"\r\n\r\n")[0] == 431
    assert http_raw(p, b"POST /save HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"a" * 9000)[0] \
        == 413
    assert http_raw(p, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n")[0] == 400
    assert http_raw(p, b"GET /\xc3\x28 HTTP/1.1\r\n\r\n")[0] == 400
    assert http_raw(p, b"BREW / HTTP/1.1\r\n\r\n")[0] == 405
    assert http_raw(p, b"GET / HTTP/1.1\r\nHost: x\r\n", shut=True)[0] in (None, 400, 408)
    assert get(portal, "/")[0] == 200


def test_save_then_bad_inputs_leave_file_unchanged(portal):
    st, h, body = post(portal, form(portal))
    assert st == 200 and b"Connected" in body, body[:300]
    assert portal.wait_for("portal: restarting", 10)
    assert portal.wait_for("portal: access point", 10, count=2)
    saved = portal.config_bytes()
    assert b'"ssid": "HomeNet"' in saved and b'"mqtt_host": "broker.lan"' in saved
    bad = {"ssid": "x" * 33, "password": "short", "mqtt_port": "0", "https_url": "ftp://x",
           "ca_pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----",
           "hmac_key": "abc", "meter_key": "00"}
    for key, value in bad.items():
        st, h, body = post(portal, form(portal, **{key: value}))
        assert st == 400, key
        assert ("id=err-%s>" % key).encode() in body, key
        assert portal.config_bytes() == saved, key
    for junk in (form(portal)[:-3] + b"%FF", form(portal) + b"&evil=1",
                 form(portal).replace(b"mqtt_host=broker.lan&", b"")):
        assert post(portal, junk)[0] == 400
        assert portal.config_bytes() == saved
    assert post(portal, form(portal, ssid="Evil"), origin="http://evil.example")[0] == 403
    assert post(portal, form(portal, ssid="Evil"), ctype="text/plain")[0] == 415
    assert post(portal, form(portal, _token="f" * 32))[0] == 403
    assert portal.config_bytes() == saved
    for line in portal.lines:
        assert "correct horse" not in line


def test_stalled_posts_do_not_block_saves(portal):
    # issue #19 against the portal process (the device's code on the MicroPython unix
    # port, and on CPython): two connections announce a 7000-byte form and send no
    # body (they stay open: the request timeout is the device's 10 s); every genuine
    # form is read and answered - refused for its bad value, or saved - never 503.
    import socket
    stalled = []
    for _ in range(2):
        c = socket.create_connection(("127.0.0.1", portal.port), timeout=5)
        c.sendall(("POST /save HTTP/1.1\r\nHost: %s\r\nContent-Type: application/"
                   "x-www-form-urlencoded\r\nContent-Length: 7000\r\n\r\n"
                   % portal.host()).encode())
        stalled.append(c)
    try:
        for i in range(12):
            st, h, body = post(portal, form(portal, reading_interval_s="0"))
            assert st == 400 and b"id=err-reading_interval_s>" in body, (i, st, body[:200])
        st, h, body = post(portal, form(portal))
        assert st == 200 and b"Connected" in body, body[:300]
        assert b'"ssid": "HomeNet"' in portal.config_bytes()
    finally:
        for c in stalled:
            c.close()


def test_status_page_served(portal):
    st, h, body = get(portal, "/status")
    assert st == 200 and b"Last reading" in body and b"none yet" in body


def test_micropython_flag_reruns_on_the_unix_port(tmp_path):
    p = PortalProc(tmp_path, "cpython", extra=["--micropython"])
    try:
        assert any("(micropython)" in ln for ln in p.lines), p.lines
        assert get(p, "/generate_204")[0] == 302
    finally:
        p.stop()
