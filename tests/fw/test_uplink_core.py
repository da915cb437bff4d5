# Uplink decisions that need no server: refusing unsafe configurations before any byte
# leaves, RTC state across deep sleep, relay commands (firmware/uplink/uplink.py).
from firmware.uplink.uplink import Uplink
from firmware.store.log import Store
from tests.fw.uplink_fixtures import RamFlash, FakePort, fill, tmpdir
from tests.fw.portal_util import CA_PEM


def _store(n):
    st = Store(RamFlash(sectors=8))
    fill(st, n)
    return st


def test_bad_hmac_key_is_a_config_error_and_nothing_is_sent():
    port = FakePort(tmpdir("core1"))
    up = Uplink({"https_url": "https://127.0.0.1:9/x", "hmac_key": "nothex-secret"}, port, "ab")
    st = _store(5)
    res = up.send(st, None)
    assert not res["ok"] and st.count == 5
    assert res["connections"][0]["sink"] == "config"
    assert "nothex-secret" not in repr(res) and "nothex-secret" not in repr(port.logs)


def test_unverifiable_tls_is_refused_before_connecting():
    # Without ca_pem an https:// sink would take any certificate: an impostor's 200
    # made the store acknowledge readings it never delivered (issue #19), signed or
    # not. Refused on every chip, before any byte; port 9 (discard) is never contacted.
    for chip, cfg in (("esp8266", {"ca_pem": ""}), ("esp32c3", {}),
                      ("esp32c3", {"hmac_key": "11" * 16}), ("host", {"hmac_key": "11" * 16}),
                      ("esp32c6", {"mqtt_host": "127.0.0.1", "mqtt_tls": True,
                                   "mqtt_port": 9})):
        port = FakePort(tmpdir("core2"), chip=chip)
        if "mqtt_host" not in cfg:
            cfg = dict(cfg, https_url="https://127.0.0.1:9/x")
        up = Uplink(cfg, port, "ab")
        assert up.sinks == [] and up.refused, (chip, cfg)
        st = _store(4)
        for _ in range(2):
            # in every window's report, nothing acknowledged
            res = up.send(st, None)
            assert not res["ok"] and st.count == 4 and res["records"] == 0
            assert len(res["connections"]) == 1, res
            err = res["connections"][0]["error"]
            if chip == "esp8266":
                # on the ESP8266 any TLS sink is left out first (it does not fit the heap)
                assert "no room for TLS" in err, res
            else:
                assert "CA certificate" in err, res
        assert "tx" not in port.activities and "tls" not in port.activities


def test_mqtt_password_never_goes_in_the_clear_unless_allowed():
    # a broker on port 9 (discard): the refusal comes before any connection
    cfg = {"mqtt_host": "127.0.0.1", "mqtt_port": 9, "mqtt_user": "u",
           "mqtt_password": "s3cret-pw", "hmac_key": "11" * 16}
    for chip in ("esp8266", "esp32c3"):
        port = FakePort(tmpdir("core7"), chip=chip)
        up = Uplink(cfg, port, "ab")
        assert up.sinks == [] and "mqtt" in up.refused
        st = _store(2)
        res = up.send(st, None)
        assert not res["ok"] and st.count == 2
        assert "MQTT password" in res["connections"][0]["error"]
        assert "s3cret-pw" not in repr(res) and "s3cret-pw" not in repr(port.logs)
        assert "tx" not in port.activities
        # the owner's explicit consent turns it back on
        up2 = Uplink(dict(cfg, mqtt_plain_ok=True), port, "ab")
        assert up2.sinks == ["mqtt"] and not up2.refused


def test_esp8266_leaves_tls_sinks_out_and_says_why():
    # measured (tools/bench/bench_heap.py --frozen32): an HTTPS window with axTLS needs
    # ~45 KB of the ESP8266's 38 KB heap. TLS sinks are left out with a clear error in
    # every window's report; the plain ones still deliver and acknowledge the store.
    port = FakePort(tmpdir("core5"), chip="esp8266")
    cfg = {"mqtt_host": "127.0.0.1", "ca_pem": "", "https_url": "https://h/x",
           "influx_url": "https://i:8086", "hmac_key": "11" * 16}
    up = Uplink(cfg, port, "ab")
    assert up.sinks == ["mqtt"]
    assert sorted(up.refused) == ["https", "influx"]
    assert "http:// with an HMAC key" in up.refused["https"]
    # plain http and plain MQTT stay on the ESP8266; the same TLS sinks stay elsewhere
    up2 = Uplink(dict(cfg, https_url="http://h/x", influx_url="http://i:8086"), port, "ab")
    assert up2.sinks == ["mqtt", "https", "influx"] and not up2.refused
    up3 = Uplink(dict(cfg, mqtt_tls=True), port, "ab")
    assert "mqtt" in up3.refused
    up4 = Uplink(dict(cfg, ca_pem=CA_PEM), FakePort(tmpdir("core6"), chip="esp32c3"), "ab")
    assert up4.sinks == ["mqtt", "https", "influx"] and not up4.refused
    # reported in the window, nothing sent to them
    only = Uplink({"https_url": "https://127.0.0.1:9/x", "hmac_key": "11" * 16}, port, "ab")
    st = _store(3)
    res = only.send(st, None)
    assert not res["ok"] and st.count == 3
    assert res["connections"] == [{"sink": "https", "ok": False, "records": 0, "bytes": 0,
                                   "error": only.refused["https"]}]
    assert "tx" not in port.activities


def test_rtc_state_keeps_counters_and_backoff_across_deep_sleep():
    port = FakePort(tmpdir("core3"))
    cfg = {"mqtt_host": "127.0.0.1", "https_url": "https://h/x", "hmac_key": "11" * 16}
    up = Uplink(cfg, port, "ab")
    for _ in range(3):
        up.counters["mqtt"].take()
    up.counters["https"].take()
    up.done["https"] = 41
    up.fails["mqtt"] = 2
    up.window = 7
    rtc = up.dump()
    assert len(rtc) <= 16
    up2 = Uplink(cfg, port, "ab", rtc)
    assert up2.counters["mqtt"].take() == 3 and up2.counters["https"].take() == 1
    assert up2.fails == {"mqtt": 2} and up2.window == 7
    # what sinks confirmed is not trusted across a reboot: resent, de-duplicated
    assert up2.done == {}
    # no RTC (power loss): counters resume above anything used, never below
    up3 = Uplink(cfg, port, "ab")
    assert up3.counters["mqtt"].take() >= 3
    assert up3.epoch == up.epoch          # same file system, same numbering epoch


def test_relay_commands_reach_the_app_and_junk_does_not():
    port = FakePort(tmpdir("core4"))
    up = Uplink({"mqtt_host": "h", "mqtt_prefix": "home/linky"}, port, "ab")
    got = []
    up.on_command = got.append
    up._res = {"commands": []}
    up._on_message(b"home/linky/relay/set", b" on\n")
    up._on_message(b"home/linky/relay/set", b"AUTO")
    up._on_message(b"home/linky/relay/set", b"explode")
    up._on_message(b"home/linky/relay/set", b"\xff\xfe")
    up._on_message(b"other/relay/set", b"OFF")
    assert got == ["ON", "AUTO"] and up._res["commands"] == ["ON", "AUTO"]
