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


def test_capability_set_is_the_union_of_whole_readings():
    whole = tic_like(1)
    assert whole.get("partial") is not True
    caps = D.grow(None, whole)
    names = sorted(e[0] for e in D.entities(None, False, caps))
    # tic_like(1) has apparent power, current L1, tariff period, overload, energy
    assert "apparent_power" in names and "current_l1" in names and "overload" in names
    # an early-stopped reading lacks values: it never shrinks the set
    part = dict(whole, partial=True, apparent_power_va=None, overload=None)
    assert D.grow(caps, part) is caps
    # a whole reading with fewer values keeps the set; one with more grows it
    assert D.grow(caps, dict(whole, apparent_power_va=None)) is caps
    more = D.grow(caps, dict(whole, tomorrow="BLEU"))
    assert more[0] == caps[0] | D.capability_mask({"tomorrow": "BLEU"}) and more[1] == caps[1]
    # what an early-stopped reading or a stored record does carry is the meter's too
    # (an ESP8266 that lost its cold boot's whole reading announces from those)
    assert D.grow(caps, dict(part, tomorrow="BLEU")) == more
    assert D.grow(caps, dict(whole, kind="reading", tomorrow="BLEU")) == more
    seed = D.grow(None, part)
    assert seed[0] == D.capability_mask(part) and seed[0] & ~caps[0] == 0
    h = D.config_hash("0a1b2c", "linky/0a1b2c", None, caps=caps)
    assert h == D.config_hash("0a1b2c", "linky/0a1b2c", None, caps=D.grow(caps, part))
    assert h != D.config_hash("0a1b2c", "linky/0a1b2c", None, caps=more)
    # the set survives JSON (the uplink's file) unchanged
    assert json.loads(json.dumps(more)) == more
    assert D.config_hash("0a1b2c", "linky/0a1b2c", None, caps=json.loads(json.dumps(more))) == \
        D.config_hash("0a1b2c", "linky/0a1b2c", None, caps=more)
    # the configs from the set equal those from a reading with the same values
    assert list(D.messages("0a1b2c", "p", None, caps=more)) == \
        list(D.messages("0a1b2c", "p", dict(whole, tomorrow="BLEU")))
