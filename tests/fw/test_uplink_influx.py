# InfluxDB line protocol (firmware/uplink/influx.py).
from firmware.uplink import influx


def test_reading_line_has_integer_fields_tags_and_store_time():
    rec = {"seq": 3, "kind": "reading", "t": 1700000000, "t_src": "meter",
           "meter_id": "0217 28=1,2", "energy_import_wh": 12345678, "apparent_power_va": 1230,
           "tariff_period": 'HP "x"', "current_a": [5, 6, 7], "gas_m3": 12.5,
           "overload": True, "active_power_w": None}
    ln = influx.line("0a1b2c", rec, 1700000000)
    assert ln.startswith("linky,device=0a1b2c,meter=0217\\ 28\\=1\\,2 ")
    assert ln.endswith(" 1700000000")
    f = ln.split(" ")
    fields = ln[len("linky,device=0a1b2c,meter=0217\\ 28\\=1\\,2 "):ln.rindex(" ")]
    assert "energy_import_wh=12345678i" in fields
    assert "apparent_power_va=1230i" in fields
    assert "current_a_1=5i,current_a_2=6i,current_a_3=7i" in fields
    assert "gas_m3=12.5" in fields and "overload=true" in fields
    assert 'tariff_period="HP \\"x\\""' in fields
    assert "active_power_w" not in fields
    assert f[0] == "linky,device=0a1b2c,meter=0217\\"


def test_elapsed_time_is_placed_from_its_reference_or_skipped():
    recs = [{"seq": 1, "t": 1000, "t_src": "ntp", "apparent_power_va": 1},
            {"seq": 2, "t": None, "t_src": "elapsed", "dt_s": 5, "ref_seq": 1,
             "apparent_power_va": 2},
            {"seq": 3, "t": None, "t_src": "elapsed", "dt_s": 5, "ref_seq": 99,
             "apparent_power_va": 3},
            {"seq": 4, "t": None, "t_src": "elapsed", "apparent_power_va": 4}]
    body, written, skipped = influx.lines("d", recs)
    lines = body.decode().strip().split("\n")
    assert written == 2 and skipped == 2
    assert lines[0].endswith(" 1000") and lines[1].endswith(" 1005")
    assert "apparent_power_va=2i" in lines[1]
    # the reference may come from an earlier batch of the same session
    times = {}
    influx.lines("d", recs[:1], times)
    body, written, skipped = influx.lines("d", recs[1:2], times)
    assert written == 1 and body.decode().strip().endswith(" 1005")


def test_write_path_quotes_org_and_bucket():
    assert influx.write_path("my org", "b/1") == \
        "/api/v2/write?org=my%20org&bucket=b%2F1&precision=s"
