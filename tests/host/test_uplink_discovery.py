# The value_templates the discovery configs give render, with Jinja2 (Home Assistant's
# template engine), exactly the values of the decoded reading in the state payload.
import json

import jinja2

from firmware.uplink import discovery as D
from tests.fw.uplink_fixtures import tic_like, dsmr_reading


def _render(tpl, state_bytes):
    env = jinja2.Environment()
    return env.from_string(tpl).render(value_json=json.loads(state_bytes))


def _check(reading, relay=None, mode=None):
    diag = {"vcap_mv": 4650, "backlog": 12, "up_records": 40, "up_bytes": 2400,
            "up_errors": 0, "dropped": 0}
    state = D.state_payload(reading, diag, relay, mode)
    n = 0
    for topic, payload in D.messages("0a1b2c", "linky/0a1b2c", reading, relay is not None):
        cfg = json.loads(payload)
        out = _render(cfg["value_template"], state)
        obj = topic.split("/")[3]
        ent = [e for e in D.entities(reading, True) if e[0] == obj][0]
        key, idx = ent[2], ent[3]
        if obj == "relay":
            assert out == ("ON" if relay else "OFF")
        elif obj == "relay_mode":
            assert out == mode.upper()
        elif key in diag:
            assert out == str(diag[key])
        elif idx is not None:
            assert out == str(reading[key][idx]), (obj, out)
        elif cfg.get("unit_of_measurement") is None and ent[1] == "binary_sensor":
            assert out == ("ON" if reading[key] else "OFF")
        else:
            assert out == str(reading[key]), (obj, out)
        if cfg.get("device_class") == "energy":
            # Wh integers: the rendered state parses as the exact index
            assert int(out) == reading[key]
        n += 1
    return n


def test_templates_render_the_tic_reading():
    assert _check(tic_like(7), relay=1, mode="auto") >= 10
    assert _check(dict(tic_like(49), tomorrow="ROUG")) >= 10


def test_templates_render_the_dsmr_reading():
    r = dsmr_reading()
    assert r["current_a"] and r["gas_m3"]
    assert _check(r) >= 12


def test_missing_values_render_none_which_home_assistant_shows_as_unknown():
    r = tic_like(1)
    configs = {t.split("/")[3]: json.loads(p)
               for t, p in D.messages("0a1b2c", "p", r, False)}
    r2 = dict(r, apparent_power_va=None, current_a=None, overload=None)
    state = D.state_payload(r2, None)
    for obj in ("apparent_power", "current_l1", "overload", "vcap"):
        assert _render(configs[obj]["value_template"], state) == "None", obj
