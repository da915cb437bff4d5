# Home Assistant MQTT discovery (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery)
#
# One retained config message per entity under
#     homeassistant/<component>/linky_<id>/<object>/config
# all pointing at one retained state message (<prefix>/state, built by state_payload()
# below) through a value_template. A template renders "None" when the value is null,
# which Home Assistant's MQTT sensor/binary_sensor/switch treat as "unknown" (their
# PAYLOAD_NONE), so a frame that lacks a value never shows a made-up one.
#
# Only entities the meter actually provides are announced (a historic TIC meter has no
# voltage, a DSMR meter no Tempo colour). The set and its payloads are hashed; the app
# republishes discovery only when that hash changes (config or meter changed), not at
# every wake-up: discovery costs ~5 KB on the air.
import hashlib
from binascii import hexlify

from firmware.uplink.batch import dumps

DISCOVERY_PREFIX = "homeassistant"

# (object id, component, reading key, phase index or None, extra config)
_M = "measurement"
_DIAG = "diagnostic"
ENTITIES = (
    ("energy_import", "sensor", "energy_import_wh", None,
     {"name": "Energy imported", "device_class": "energy", "state_class": "total_increasing",
      "unit_of_measurement": "Wh"}),
    ("energy_export", "sensor", "energy_export_wh", None,
     {"name": "Energy exported", "device_class": "energy", "state_class": "total_increasing",
      "unit_of_measurement": "Wh"}),
    ("apparent_power", "sensor", "apparent_power_va", None,
     {"name": "Apparent power", "device_class": "apparent_power", "state_class": _M,
      "unit_of_measurement": "VA"}),
    ("apparent_power_export", "sensor", "apparent_power_export_va", None,
     {"name": "Apparent power exported", "device_class": "apparent_power", "state_class": _M,
      "unit_of_measurement": "VA"}),
    ("active_power", "sensor", "active_power_w", None,
     {"name": "Active power", "device_class": "power", "state_class": _M,
      "unit_of_measurement": "W"}),
    ("active_power_export", "sensor", "active_power_export_w", None,
     {"name": "Active power exported", "device_class": "power", "state_class": _M,
      "unit_of_measurement": "W"}),
    ("average_demand", "sensor", "average_demand_w", None,
     {"name": "Quarter-hour average demand", "device_class": "power", "state_class": _M,
      "unit_of_measurement": "W"}),
    ("peak_demand", "sensor", "peak_demand_w", None,
     {"name": "Month peak demand", "device_class": "power", "state_class": _M,
      "unit_of_measurement": "W"}),
    ("current_l1", "sensor", "current_a", 0,
     {"name": "Current L1", "device_class": "current", "state_class": _M,
      "unit_of_measurement": "A"}),
    ("current_l2", "sensor", "current_a", 1,
     {"name": "Current L2", "device_class": "current", "state_class": _M,
      "unit_of_measurement": "A"}),
    ("current_l3", "sensor", "current_a", 2,
     {"name": "Current L3", "device_class": "current", "state_class": _M,
      "unit_of_measurement": "A"}),
    ("voltage_l1", "sensor", "voltage_v", 0,
     {"name": "Voltage L1", "device_class": "voltage", "state_class": _M,
      "unit_of_measurement": "V"}),
    ("voltage_l2", "sensor", "voltage_v", 1,
     {"name": "Voltage L2", "device_class": "voltage", "state_class": _M,
      "unit_of_measurement": "V"}),
    ("voltage_l3", "sensor", "voltage_v", 2,
     {"name": "Voltage L3", "device_class": "voltage", "state_class": _M,
      "unit_of_measurement": "V"}),
    ("tariff_period", "sensor", "tariff_period", None, {"name": "Tariff period"}),
    ("tariff_index", "sensor", "tariff_index", None, {"name": "Tariff index"}),
    ("tomorrow", "sensor", "tomorrow", None,
     {"name": "Tempo tomorrow", "device_class": "enum", "options": ["BLEU", "BLAN", "ROUG"]}),
    ("overload", "binary_sensor", "overload", None,
     {"name": "Overload", "device_class": "problem"}),
    ("gas", "sensor", "gas_m3", None,
     {"name": "Gas", "device_class": "gas", "state_class": "total_increasing",
      "unit_of_measurement": "m\u00b3"}),
    # diagnostics: always present (the dongle's own state)
    ("vcap", "sensor", "vcap_mv", None,
     {"name": "Capacitor voltage", "device_class": "voltage", "state_class": _M,
      "unit_of_measurement": "mV", "entity_category": _DIAG}),
    ("backlog", "sensor", "backlog", None,
     {"name": "Upload backlog", "state_class": _M, "unit_of_measurement": "records",
      "entity_category": _DIAG}),
    ("uploaded", "sensor", "up_records", None,
     {"name": "Records uploaded (last window)", "state_class": _M,
      "unit_of_measurement": "records", "entity_category": _DIAG}),
    ("upload_bytes", "sensor", "up_bytes", None,
     {"name": "Bytes sent (last window)", "device_class": "data_size", "state_class": _M,
      "unit_of_measurement": "B", "entity_category": _DIAG}),
    ("upload_errors", "sensor", "up_errors", None,
     {"name": "Upload errors (last window)", "state_class": _M, "entity_category": _DIAG}),
    ("dropped", "sensor", "dropped", None,
     {"name": "Records dropped (flash full)", "state_class": "total_increasing",
      "entity_category": _DIAG}),
)
DIAG_KEYS = ("vcap_mv", "backlog", "up_records", "up_bytes", "up_errors", "dropped")
# reading keys the state payload carries (the ones entities point at)
STATE_KEYS = ("energy_import_wh", "energy_export_wh", "apparent_power_va",
              "apparent_power_export_va", "active_power_w", "active_power_export_w",
              "average_demand_w", "peak_demand_w", "current_a", "voltage_v", "tariff_period",
              "tariff_index", "tomorrow", "overload", "gas_m3", "meter_id", "timestamp")


def template(key, index=None, component="sensor"):
    if index is not None:
        return ("{{ value_json.%s[%d] if value_json.%s and value_json.%s|length > %d "
                "else none }}" % (key, index, key, key, index))
    if component == "binary_sensor":
        return ("{{ none if value_json.%s is none else ('ON' if value_json.%s else 'OFF') }}"
                % (key, key))
    return "{{ value_json.%s }}" % key


def _present(reading, key, index):
    if reading is None:
        return False
    v = reading.get(key)
    if v is None:
        return False
    if index is not None:
        return isinstance(v, (list, tuple)) and len(v) > index
    return True


def entities(reading, has_relay=False):
    """-> list of (object id, component, key, index, extra) the device announces."""
    out = []
    for e in ENTITIES:
        obj, comp, key, idx, extra = e
        if key in DIAG_KEYS or _present(reading, key, idx):
            out.append(e)
    if has_relay:
        out.append(("relay", "switch", "relay", None, {"name": "Relay"}))
        out.append(("relay_mode", "select", "relay_mode", None,
                    {"name": "Relay mode", "options": ["AUTO", "ON", "OFF"]}))
    return out


def node_id(dev):
    return "linky_" + dev


def messages(dev, prefix, reading, has_relay=False, model=None):
    """Yield (topic, payload bytes) of every retained discovery config, one at a time
    (the ESP8266 heap does not hold all of them at once)."""
    node = node_id(dev)
    device = {"identifiers": [node], "name": "Linky " + dev,
              "manufacturer": "open Linky/P1 dongle",
              "model": model or (reading.get("protocol") if reading else None) or "meter"}
    state_t = prefix + "/state"
    for obj, comp, key, idx, extra in entities(reading, has_relay):
        cfg = {"unique_id": node + "_" + obj, "object_id": node + "_" + obj,
               "state_topic": state_t, "availability_topic": prefix + "/status",
               "payload_available": "online", "payload_not_available": "offline",
               "device": device}
        for k in extra:
            cfg[k] = extra[k]
        if comp == "switch":
            cfg["command_topic"] = prefix + "/relay/set"
            cfg["value_template"] = "{{ value_json.relay }}"
            cfg["payload_on"] = "ON"
            cfg["payload_off"] = "OFF"
            cfg["state_on"] = "ON"
            cfg["state_off"] = "OFF"
            cfg["qos"] = 1
        elif comp == "select":
            cfg["command_topic"] = prefix + "/relay/set"
            cfg["value_template"] = "{{ value_json.relay_mode }}"
            cfg["qos"] = 1
        else:
            cfg["value_template"] = template(key, idx, comp)
        yield ("%s/%s/%s/%s/config" % (DISCOVERY_PREFIX, comp, node, obj),
               dumps(cfg).encode())


def config_hash(dev, prefix, reading, has_relay=False, model=None):
    h = hashlib.sha256()
    for topic, payload in messages(dev, prefix, reading, has_relay, model):
        h.update(topic.encode())
        h.update(payload)
    return hexlify(h.digest()[:8]).decode()


def state_payload(reading, diag=None, relay=None, relay_mode=None):
    """The retained <prefix>/state message every entity renders from. reading: a reading
    (schema names) or a decoded store record; diag: {vcap_mv, backlog, up_records, ...}."""
    st = {}
    for k in STATE_KEYS:
        st[k] = reading.get(k) if reading else None
    for k in DIAG_KEYS:
        st[k] = diag.get(k) if diag else None
    st["relay"] = None if relay is None else ("ON" if relay in (1, True, "on", "ON") else "OFF")
    st["relay_mode"] = relay_mode.upper() if isinstance(relay_mode, str) else None
    return dumps(st).encode()
