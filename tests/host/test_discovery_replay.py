# Home Assistant discovery is sent once per capability set: the configs come from the
# meter's capability set (union of whole readings, kept across boots), so early-stopped
# (partial) readings between whole ones no longer make discovery flap. Real mosquitto;
# the discovery messages are counted by a subscriber at the broker.
import threading
import time

import pytest

from tests.fw.util import corpus_path
from tests.host.uplink_services import Mosquitto

KEY = "3f" * 16
DIAG = {"vcap", "backlog", "uploaded", "upload_bytes", "upload_errors", "dropped"}
RELAY = {"relay", "relay_mode"}     # the reference board has the latching relay


class Counter:
    """Every message on homeassistant/# while it runs (live, so each publish counts)."""

    def __init__(self, port):
        from umqtt.simple import MQTTClient
        self.topics = []
        self.c = MQTTClient(b"disc-counter", "127.0.0.1", port)
        self.c.set_callback(lambda t, m: self.topics.append(t.decode().split("/")[3]))
        self.c.connect()
        self.c.subscribe(b"homeassistant/#")
        self.c.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                self.c.wait_msg()
            except OSError:
                pass

    def close(self, settle=0.5):
        time.sleep(settle)
        self.stop.set()
        self.th.join(5)
        self.c.disconnect()
        return self.topics


@pytest.fixture
def broker(tmp_path):
    m = Mosquitto().start()
    yield m
    m.stop()


def _cfg(broker):
    return {"ssid": "x", "mqtt_host": "127.0.0.1", "mqtt_port": broker.port, "hmac_key": KEY,
            "ha_discovery": True, "net_timeout_s": 3}


def test_alternating_whole_and_partial_readings_send_discovery_once(tmp_path, broker):
    from tests.fw.uplink_fixtures import RamFlash, FakePort, fill, tic_like
    from firmware.store.log import Store
    from firmware.uplink.uplink import Uplink
    cnt = Counter(broker.port)
    port = FakePort(str(tmp_path))
    store = Store(RamFlash(sectors=32))
    whole = dict(tic_like(1), partial=False)
    # an early-stopped frame: the meter's groups after the ones looked for are missing
    part = dict(whole, partial=True, apparent_power_va=None, overload=None, current_a=None)
    t = 1700000000
    for k in range(8):
        up = Uplink(_cfg(broker), port, "0a1b2c")       # a new boot every other window
        for j in range(2):
            fill(store, 2, t, 5, whole)
            t += 10
            latest = whole if (k + j) % 3 == 0 else part
            res = up.send(store, latest, whole=whole if latest is whole else None)
            assert res["ok"], res
    topics = cnt.close()
    want = {"energy_import", "apparent_power", "current_l1", "tariff_period",
            "overload"} | DIAG | RELAY
    assert sorted(topics) == sorted(want), " ".join(topics)
    # a reading with a value never seen before grows the set: sent again, once
    cnt = Counter(broker.port)
    time.sleep(0.5)
    assert sorted(cnt.topics) == sorted(want)     # the retained configs, at subscribe
    del cnt.topics[:]
    up = Uplink(_cfg(broker), port, "0a1b2c")
    fill(store, 1, t, 5, whole)
    more = dict(whole, tomorrow="BLEU")
    assert up.send(store, more)["ok"]
    assert up.send(store, part)["ok"]
    topics = cnt.close()
    assert sorted(topics) == sorted(want | {"tomorrow"}), topics


def test_replay_publishes_each_discovery_topic_once(tmp_path, broker):
    from tools import replay
    cnt = Counter(broker.port)
    cfg = replay.load_config(None)
    cfg.update(_cfg(broker))
    rep, rows = replay.run(corpus_path("tic/hist_tempo_mono_pyteleinfo.txt"), cfg,
                           repeat=12, fs_root=str(tmp_path / "fs"))
    topics = cnt.close()
    # the replay had whole and early-stopped readings, deep sleeps, several windows
    assert any(r["partial"] for r in rows) and any(not r["partial"] for r in rows)
    assert len(rep["uploads"]) >= 5 and rep["deep_sleeps"] >= 5, rep["uploads"]
    # hist_tempo_mono_pyteleinfo: historic TIC, Tempo option (BBR), single phase; the
    # entities such a meter has (Enedis-NOI-CPT_02E): energy (BBR sum), PAPP, IINST,
    # PTEC, DEMAIN, ADPS -> overload
    want = {"energy_import", "apparent_power", "current_l1", "tariff_period", "tomorrow",
            "overload"} | DIAG | RELAY
    assert sorted(topics) == sorted(want), topics
