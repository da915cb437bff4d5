# Uplink over MQTT against a real mosquitto, the firmware running on CPython and on the
# MicroPython unix port; the collector subscribes and verifies signatures.
import json
import time

import pytest

from tests.host.uplink_services import Mosquitto, Driver, subscribe_all, publish
from tools.collector import Collector, MqttSubscriber
from firmware.uplink import batch as B
from firmware.uplink import sign

KEY = "3f" * 16
PY = ["cpython", "micropython"]


@pytest.fixture
def broker(tmp_path):
    m = Mosquitto().start()
    yield m
    m.stop()


def _setup(tmp_path, broker, python, key=KEY):
    col = Collector(str(tmp_path / "col"), default_key=sign.parse_key(KEY))
    sub = MqttSubscriber(col, "127.0.0.1", broker.port).start()
    assert sub.connected.wait(10)
    cfg = {"ssid": "x", "mqtt_host": "127.0.0.1", "mqtt_port": broker.port, "hmac_key": key,
           "net_timeout_s": 3}
    return col, sub, Driver(python, cfg, str(tmp_path))


def _wait_count(col, n, timeout=10):
    end = time.time() + timeout
    while time.time() < end and col.count() < n:
        time.sleep(0.05)
    return col.count()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("python", PY)
def test_backlog_discovery_and_state_arrive_with_the_decoded_values(tmp_path, broker, python):
    col, sub, drv = _setup(tmp_path, broker, python)
    try:
        filled = drv.cmd("fill 150 dsmr")
        r = drv.cmd("send")
        res = r["res"]
        assert res["ok"], r
        assert res["records"] == 150 and r["count"] == 0
        conns = [c for c in res["connections"] if c["sink"] == "mqtt"]
        assert len(conns) == 1 and conns[0]["ok"] and conns[0]["records"] == 150
        assert conns[0]["bytes"] > 0
        assert _wait_count(col, 150) == 150
        got = col.readings()
        assert [g["seq"] for g in got] == filled["seqs"]
        from tests.fw.uplink_fixtures import dsmr_reading
        ref = dsmr_reading()
        for i, g in enumerate(got):
            assert g["energy_import_wh"] == ref["energy_import_wh"] + i
            assert g["energy_export_wh"] == ref["energy_export_wh"]
            assert g["active_power_export_w"] == ref["active_power_export_w"]
            assert g["t"] == filled["t"][i] and g["t_src"] == "ntp"
        # retained discovery + state + availability
        disc = subscribe_all(broker.port, "homeassistant/#")
        imp = json.loads(disc["homeassistant/sensor/linky_0a1b2c/energy_import/config"])
        assert imp["device_class"] == "energy" and imp["state_class"] == "total_increasing"
        assert "homeassistant/switch/linky_0a1b2c/relay/config" in disc
        st = subscribe_all(broker.port, "linky/0a1b2c/#")
        state = json.loads(st["linky/0a1b2c/state"])
        assert state["energy_import_wh"] == ref["energy_import_wh"] + 149
        assert state["current_a"] == ref["current_a"]
        assert st["linky/0a1b2c/status"] == b"online"
        # a second window with nothing new does not resend discovery (energy)
        r2 = drv.cmd("send")
        assert r2["res"]["ok"] and r2["res"]["records"] == 0
        assert r2["res"]["connections"][0]["bytes"] < 1500
        assert col.stats()["refused"] == {}
    finally:
        drv.close()
        sub.close()
        col.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("python", PY)
def test_broker_restart_mid_session_loses_and_duplicates_nothing(tmp_path, broker, python):
    col, sub, drv = _setup(tmp_path, broker, python)
    try:
        drv.cmd("fill 80")
        assert drv.cmd("send")["res"]["ok"]
        # the broker (no persistence) has acknowledged them to the device; it is stopped
        # once it has handed them on, or the last batch would die with it
        assert _wait_count(col, 80) == 80
        broker.stop()
        drv.cmd("fill 60")
        r = drv.cmd("send")
        assert not r["res"]["ok"] and r["count"] == 60     # kept in the store
        err = r["res"]["connections"][0]["error"]
        assert err.startswith("connect") or err.startswith("timeout"), err
        # the broker keeps nothing across its restart (no persistence): the collector
        # must have seen the drop and subscribed again before the device publishes, or
        # what is published in between has no subscriber. Its 'connected' is cleared on
        # the disconnect and set again at the new SUBACK.
        t0 = time.time()
        while sub.connected.is_set() and time.time() - t0 < 15:
            time.sleep(0.05)
        assert not sub.connected.is_set(), "the collector did not see the broker go"
        broker.start()
        assert sub.connected.wait(15)
        drv.cmd("fill 10")
        # backoff: the sink is retried every 2nd window (more windows allowed for a
        # loaded machine, where one may time out)
        for _ in range(12):
            r = drv.cmd("send")
            if r["count"] == 0:
                break
        assert r["count"] == 0, r
        assert _wait_count(col, 150) == 150
        seqs = [g["seq"] for g in col.readings()]
        assert seqs == list(range(1, 151))
        assert col.stats()["refused"] == {}
    finally:
        drv.close()
        sub.close()
        col.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("python", PY)
def test_relay_command_sent_while_asleep_reaches_the_app(tmp_path, broker, python):
    col, sub, drv = _setup(tmp_path, broker, python)
    try:
        drv.cmd("fill 3")
        assert drv.cmd("send")["res"]["commands"] == []
        # the dongle is asleep (disconnected): Home Assistant sends OFF with QoS 1
        publish(broker.port, "linky/0a1b2c/relay/set", b"OFF", qos=1)
        publish(broker.port, "linky/0a1b2c/relay/set", b"bogus", qos=1)
        drv.cmd("fill 1")
        r = drv.cmd("send")
        assert r["res"]["ok"]
        assert r["commands"] == ["OFF"], r
    finally:
        drv.close()
        sub.close()
        col.close()


@pytest.mark.timeout(60)
def test_collector_refuses_forged_and_replayed_mqtt_batches(tmp_path, broker):
    col = Collector(str(tmp_path / "col"), default_key=sign.parse_key(KEY))
    sub = MqttSubscriber(col, "127.0.0.1", broker.port).start()
    try:
        assert sub.connected.wait(10)
        recs = [{"seq": 1, "kind": "reading", "t": 1700000000, "t_src": "ntp",
                 "apparent_power_va": 500}]
        good = sign.seal(sign.parse_key(KEY), B.build("0a1b2c", recs, ctr=5, ch="mqtt")[0])
        forged = sign.seal(b"x" * 16, B.build("0a1b2c", recs, ctr=6, ch="mqtt")[0])
        publish(broker.port, "linky/0a1b2c/batch", forged)
        publish(broker.port, "linky/0a1b2c/batch", good)
        publish(broker.port, "linky/0a1b2c/batch", good)      # replay
        end = time.time() + 5
        while time.time() < end and sum(col.refused.values()) < 2:
            time.sleep(0.05)
        assert col.refused == {"bad signature": 1, "replay": 1}
        assert col.count() == 1
    finally:
        sub.close()
        col.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("python", PY)
def test_mqtt_over_tls_verifies_the_broker(tmp_path, python):
    from tools.services import make_pki
    ca_pem, cert, key, _ = make_pki()
    paths = []
    for name, data in (("ca.pem", ca_pem), ("srv.pem", cert), ("srv.key", key)):
        p = tmp_path / name
        p.write_bytes(data)
        paths.append(str(p))
    m = Mosquitto(tls=paths).start()
    other_ca = make_pki()[0]
    try:
        for ca, ok in ((ca_pem, True), (other_ca, False)):
            cfg = {"ssid": "x", "mqtt_host": "127.0.0.1", "mqtt_port": m.tls_port,
                   "ca_pem": ca.decode(), "net_timeout_s": 3}
            drv = Driver(python, cfg, str(tmp_path / ("ok" if ok else "bad")))
            try:
                drv.cmd("fill 20")
                r = drv.cmd("send")
                assert r["res"]["ok"] is ok, r
                assert r["count"] == (0 if ok else 20)
                if not ok:
                    assert r["res"]["connections"][0]["error"].startswith("tls"), r
            finally:
                drv.close()
        st = subscribe_all(m.port, "linky/0a1b2c/#")
        assert json.loads(st["linky/0a1b2c/state"])["energy_import_wh"] is not None
    finally:
        m.stop()
