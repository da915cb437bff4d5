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
    from firmware.reading.dsmr import _iter_lines
    buf = b"1-0:1.8.1(000123.456*kWh)\r\n0-0:96.13.0()\r\nno paren\r\n"
    got = list(_iter_lines(buf, 0, len(buf)))
    assert got == [("1-0:1.8.1", "(", "000123.456*kWh)"), ("0-0:96.13.0", "(", ")"),
                   ("no paren", "", "")], got
