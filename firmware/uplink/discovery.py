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
# voltage, a DSMR meter no Tempo colour). What the meter provides is its capability
# set: the union of the entities seen in its readings (grow()), kept by the uplink
# across boots. Every value a reading carries is one the meter sends, so any reading
# may add to the set: a whole one (the app hands the uplink its latest), an early-
# stopped one ("partial") or a stored record. One that lacks values never shrinks it:
# the set only grows, and the config hash with it. (An ESP8266 that deep-sleeps before
# its first upload window loses the cold boot's whole reading with its RAM and reads
# early-stopped frames from then on: those still announce what they carry.) The app
# republishes discovery only when that hash changes (configuration changed or the set
# grew), not at every wake-up: discovery costs ~5 KB on the air, a supercapacitor's
# budget.
import hashlib
from binascii import hexlify

from firmware.uplink.batch import dumps

DISCOVERY_PREFIX = "homeassistant"

# (object id, component, reading key, phase index or None, name, device_class,
#  state_class, unit, diagnostic?, options): tuples of constants, which a frozen build
#  keeps in flash; dicts would be built in the heap at import (25 of them, ~4 KB on the
#  ESP8266). The config dict of one entity is made when its message is sent.
_M = "measurement"
_TI = "total_increasing"
ENTITIES = (
    ("energy_import", "sensor", "energy_import_wh", None, "Energy imported", "energy", _TI,
     "Wh", 0, None),
    ("energy_export", "sensor", "energy_export_wh", None, "Energy exported", "energy", _TI,
     "Wh", 0, None),
    ("apparent_power", "sensor", "apparent_power_va", None, "Apparent power",
     "apparent_power", _M, "VA", 0, None),
    ("apparent_power_export", "sensor", "apparent_power_export_va", None,
     "Apparent power exported", "apparent_power", _M, "VA", 0, None),
    ("active_power", "sensor", "active_power_w", None, "Active power", "power", _M, "W", 0,
     None),
    ("active_power_export", "sensor", "active_power_export_w", None, "Active power exported",
     "power", _M, "W", 0, None),
    ("average_demand", "sensor", "average_demand_w", None, "Quarter-hour average demand",
     "power", _M, "W", 0, None),
    ("peak_demand", "sensor", "peak_demand_w", None, "Month peak demand", "power", _M, "W", 0,
     None),
    ("current_l1", "sensor", "current_a", 0, "Current L1", "current", _M, "A", 0, None),
    ("current_l2", "sensor", "current_a", 1, "Current L2", "current", _M, "A", 0, None),
    ("current_l3", "sensor", "current_a", 2, "Current L3", "current", _M, "A", 0, None),
    ("voltage_l1", "sensor", "voltage_v", 0, "Voltage L1", "voltage", _M, "V", 0, None),
    ("voltage_l2", "sensor", "voltage_v", 1, "Voltage L2", "voltage", _M, "V", 0, None),
    ("voltage_l3", "sensor", "voltage_v", 2, "Voltage L3", "voltage", _M, "V", 0, None),
    ("tariff_period", "sensor", "tariff_period", None, "Tariff period", None, None, None, 0,
     None),
    ("tariff_index", "sensor", "tariff_index", None, "Tariff index", None, None, None, 0,
     None),
    ("tomorrow", "sensor", "tomorrow", None, "Tempo tomorrow", "enum", None, None, 0,
     ("BLEU", "BLAN", "ROUG")),
    ("overload", "binary_sensor", "overload", None, "Overload", "problem", None, None, 0,
     None),
    ("gas", "sensor", "gas_m3", None, "Gas", "gas", _TI, "m\u00b3", 0, None),
    # diagnostics: always present (the dongle's own state)
    ("vcap", "sensor", "vcap_mv", None, "Capacitor voltage", "voltage", _M, "mV", 1, None),
    ("backlog", "sensor", "backlog", None, "Upload backlog", None, _M, "records", 1, None),
    ("uploaded", "sensor", "up_records", None, "Records uploaded (last window)", None, _M,
     "records", 1, None),
    ("upload_bytes", "sensor", "up_bytes", None, "Bytes sent (last window)", "data_size", _M,
     "B", 1, None),
    ("upload_errors", "sensor", "up_errors", None, "Upload errors (last window)", None, _M,
     None, 1, None),
    ("dropped", "sensor", "dropped", None, "Records dropped (flash full)", None, _TI, None, 1,
     None),
)
_RELAY = (("relay", "switch", "relay", None, "Relay", None, None, None, 0, None),
          ("relay_mode", "select", "relay_mode", None, "Relay mode", None, None, None, 0,
           ("AUTO", "ON", "OFF")))
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


def capability_mask(reading):
    """-> int, bit i set when ENTITIES[i] (a meter entity) has a value in reading."""
    m = 0
    for i in range(len(ENTITIES)):
        e = ENTITIES[i]
        if e[2] not in DIAG_KEYS and _present(reading, e[2], e[3]):
            m |= 1 << i
    return m


def grow(caps, reading):
    """The capability set after reading: caps is None or [mask, protocol] (JSON-able,
    persisted by the uplink); the same object when reading adds nothing."""
    if reading is None:
        return caps
    m = capability_mask(reading)
    if caps is None:
        return [m, reading.get("protocol")]
    if m & ~caps[0]:
        return [caps[0] | m, caps[1] or reading.get("protocol")]
    return caps


def entities(reading, has_relay=False, caps=None):
    """-> list of the ENTITIES rows (object id, component, key, index, ...) the device
    announces: those of the capability set caps ([mask, protocol]) when given, else
    those present in reading."""
    out = []
    for i in range(len(ENTITIES)):
        e = ENTITIES[i]
        if e[2] in DIAG_KEYS:
            out.append(e)
        elif caps is not None:
            if caps[0] >> i & 1:
                out.append(e)
        elif _present(reading, e[2], e[3]):
            out.append(e)
    if has_relay:
        out.extend(_RELAY)
    return out


def node_id(dev):
    return "linky_" + dev


def messages(dev, prefix, reading, has_relay=False, model=None, caps=None):
    """Yield (topic, payload bytes) of every retained discovery config, one at a time
    (the ESP8266 heap does not hold all of them at once). caps: the capability set
    (grow()); then reading is not looked at."""
    node = node_id(dev)
    if caps is not None:
        proto = caps[1]
    else:
        proto = reading.get("protocol") if reading else None
    device = {"identifiers": [node], "name": "Linky " + dev,
              "manufacturer": "open Linky/P1 dongle",
              "model": model or proto or "meter"}
    state_t = prefix + "/state"
    for obj, comp, key, idx, name, dclass, sclass, unit, diag, options in entities(
            reading, has_relay, caps):
        cfg = {"unique_id": node + "_" + obj, "object_id": node + "_" + obj,
               "state_topic": state_t, "availability_topic": prefix + "/status",
               "payload_available": "online", "payload_not_available": "offline",
               "device": device, "name": name}
        if dclass:
            cfg["device_class"] = dclass
        if options:
            cfg["options"] = list(options)
        if sclass:
            cfg["state_class"] = sclass
        if unit:
            cfg["unit_of_measurement"] = unit
        if diag:
            cfg["entity_category"] = "diagnostic"
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


def config_hash(dev, prefix, reading, has_relay=False, model=None, caps=None):
    h = hashlib.sha256()
    for topic, payload in messages(dev, prefix, reading, has_relay, model, caps):
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
