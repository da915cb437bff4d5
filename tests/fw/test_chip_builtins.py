# What the stock chip images lack, met by the firmware's code paths that used it
# (issue #15). These run on CPython, the 64-bit unix port and the chip variants
# (tests/host/test_micropython.py); on the esp8266 variant each failed before its fix:
# str.rpartition (app.unload), str.partition (https bracketed hosts,
# the DSMR line split).
import sys

from firmware.uplink.https import parse_url, NetError


def test_unload_forgets_a_package_and_its_submodules_without_rpartition():
    from firmware.app import unload
    import firmware
    import firmware.relay.policy   # noqa: F401
    import firmware.relay.driver   # noqa: F401
    assert "firmware.relay.policy" in sys.modules
    unload("firmware.relay")
    for name in ("firmware.relay", "firmware.relay.policy", "firmware.relay.driver"):
        assert name not in sys.modules, name
    # the parent package no longer holds it: the next import loads it again
    assert "relay" not in firmware.__dict__
    import firmware.relay.policy as again
    assert again.__name__ == "firmware.relay.policy"


def test_bracketed_ipv6_host_and_port():
    assert parse_url("https://[::1]:8443/ingest") == ("https", "::1", 8443, "/ingest")
    assert parse_url("http://[fe80::2]/x/y") == ("http", "fe80::2", 80, "/x/y")
    try:
        parse_url("https://[::1/ingest")
    except NetError as e:
        assert e.kind == "config"
    else:
        raise AssertionError("an unclosed bracket must be refused")


def test_dsmr_lines_split_without_str_partition():
    # The DSMR reader splits each line into OBIS code and value itself (the stock
    # ESP8266 image has no str.partition/splitlines): on the esp8266 variant this decode
    # fails with AttributeError if either is used. Values by hand from the lines:
    # 123.456 kWh + 1.000 kWh = 124456 Wh; an empty "()" text message is "".
    from firmware.reading.dsmr import DsmrDecoder
    d = DsmrDecoder()
    t = (b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1(000123.456*kWh)\r\n"
         b"1-0:1.8.2(000001.000*kWh)\r\n0-0:96.13.0()\r\n!\r\n")
    out = d.feed(t) + d.flush()
    assert len(out) == 1, d.errors
    r = out[0]
    assert r["energy_import_wh"] == 124456, r
    assert r["registers"] == {"1.8.1": 123456, "1.8.2": 1000}, r
    assert r["text_message"] == "", r


class _LwipSocketModule:
    # The ESP8266's socket module as extmod/modlwip.c (v1.28) binds lwIP: setsockopt()
    # switches on the option number only (the level is not looked at); its constants are
    # lwIP's SOF_REUSEADDR 0x04, SOF_BROADCAST 0x20, IP_ADD_MEMBERSHIP 0x400 and
    # TCP_NODELAY = TF_NODELAY 0x40 (lwip/tcpbase.h); anything else prints
    # "Warning: lwip.setsockopt() not implemented" and changes nothing.
    SOL_SOCKET = 1
    SO_REUSEADDR = 0x04
    SO_BROADCAST = 0x20
    IPPROTO_TCP = 6
    TCP_NODELAY = 0x40

    class socket:
        def __init__(self, *args):
            self.flags = set()
            self.warnings = 0

        def settimeout(self, t):
            pass

        def setsockopt(self, level, opt, val):
            if opt in (0x04, 0x20, 0x40):
                (self.flags.add if val else self.flags.discard)(opt)
            elif opt in (0x400, 0x401):
                pass
            else:
                self.warnings += 1


def test_tcp_nodelay_is_set_with_the_modules_constant():
    from firmware.uplink.mqtt import _SockFactory
    lw = _LwipSocketModule()
    s = _SockFactory(lw, 5).socket()
    assert s.flags == {0x40} and s.warnings == 0, (s.flags, s.warnings)
    # the host's own socket module: Nagle off there too
    import socket
    fac = _SockFactory(socket, 5)
    real = fac.socket()
    try:
        if hasattr(socket, "TCP_NODELAY"):   # CPython (the unix ports have no constant)
            assert real.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        real.close()
