# Home Assistant discovery payloads (firmware/uplink/discovery.py). The templates are
# rendered with Jinja2 in tests/host/test_uplink_discovery.py.
import json

from firmware.uplink import discovery as D
from tests.fw.uplink_fixtures import tic_like, dsmr_reading


def _configs(reading, relay=False, prefix="linky/0a1b2c"):
    out = {}
    for topic, payload in D.messages("0a1b2c", prefix, reading, relay):
        out[topic] = json.loads(payload)
    return out


def test_energy_entities_feed_the_energy_dashboard():
    c = _configs(dsmr_reading())
    imp = c["homeassistant/sensor/linky_0a1b2c/energy_import/config"]
    exp = c["homeassistant/sensor/linky_0a1b2c/energy_export/config"]
    for e in (imp, exp):
        assert e["device_class"] == "energy"
        assert e["state_class"] == "total_increasing"
        # the state carries integer Wh: the unit says Wh, no scaling in the template
        assert e["unit_of_measurement"] == "Wh"
        assert e["state_topic"] == "linky/0a1b2c/state"
        assert e["availability_topic"] == "linky/0a1b2c/status"
        assert e["device"]["identifiers"] == ["linky_0a1b2c"]
    assert imp["unique_id"] != exp["unique_id"]
    gas = c["homeassistant/sensor/linky_0a1b2c/gas/config"]
    assert gas["device_class"] == "gas" and gas["state_class"] == "total_increasing"
    assert gas["unit_of_measurement"] == "m\u00b3"


def test_only_what_the_meter_provides_is_announced():
    tic = _configs(tic_like(1))
    names = [t.split("/")[3] for t in tic]
    assert "apparent_power" in names and "current_l1" in names and "tariff_period" in names
    assert "overload" in names
    assert "voltage_l1" not in names and "gas" not in names and "current_l2" not in names
    tri = _configs(dsmr_reading())
    names = [t.split("/")[3] for t in tri]
    assert "current_l1" in names and "current_l3" in names and "active_power" in names
    assert tri["homeassistant/sensor/linky_0a1b2c/active_power/config"]["device_class"] == "power"
    tempo = dict(tic_like(1), tomorrow="BLEU")
    t = _configs(tempo)["homeassistant/sensor/linky_0a1b2c/tomorrow/config"]
    assert t["device_class"] == "enum" and "ROUG" in t["options"]


def test_diagnostics_and_relay_switch():
    c = _configs(tic_like(1), relay=True)
    v = c["homeassistant/sensor/linky_0a1b2c/vcap/config"]
    assert v["entity_category"] == "diagnostic" and v["unit_of_measurement"] == "mV"
    assert c["homeassistant/sensor/linky_0a1b2c/backlog/config"]["entity_category"] == \
        "diagnostic"
    sw = c["homeassistant/switch/linky_0a1b2c/relay/config"]
    assert sw["command_topic"] == "linky/0a1b2c/relay/set"
    assert sw["payload_on"] == "ON" and sw["payload_off"] == "OFF" and sw["qos"] == 1
    sel = c["homeassistant/select/linky_0a1b2c/relay_mode/config"]
    assert sel["options"] == ["AUTO", "ON", "OFF"]
    assert "homeassistant/switch/linky_0a1b2c/relay/config" not in _configs(tic_like(1))


def test_hash_changes_with_configuration_not_with_values():
    a = D.config_hash("0a1b2c", "linky/0a1b2c", tic_like(1))
    assert a == D.config_hash("0a1b2c", "linky/0a1b2c", tic_like(2))   # values differ
    assert a != D.config_hash("0a1b2c", "home/meter", tic_like(1))     # prefix changed
    assert a != D.config_hash("0a1b2c", "linky/0a1b2c", tic_like(1), True)
    assert a != D.config_hash("0a1b2c", "linky/0a1b2c", dsmr_reading())


def test_state_payload_carries_reading_values_and_nulls():
    r = tic_like(3)
    st = json.loads(D.state_payload(r, {"vcap_mv": 4700, "backlog": 3}, 1, "auto"))
    assert st["energy_import_wh"] == r["energy_import_wh"]
    assert st["apparent_power_va"] == r["apparent_power_va"]
    assert st["current_a"] == r["current_a"] and st["voltage_v"] is None
    assert st["relay"] == "ON" and st["relay_mode"] == "AUTO" and st["vcap_mv"] == 4700
    assert st["up_bytes"] is None
