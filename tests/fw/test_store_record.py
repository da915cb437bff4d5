# The compact record codec (firmware/store/record.py): what goes in comes back, in few
# bytes, with the best time known and never an invented one. Runs on both Pythons.
from firmware.store import record as rec
from tests.fw.util import raises, Rng

T0 = 1767225600  # 2026-01-01T00:00:00Z


def historic(e, va, period="HP.."):
    # what the historic TIC decoder gives (HCHC+HCHP summed, PAPP, PTEC)
    return {"protocol": "tic-historic", "meter_id": "021728123456", "timestamp": None,
            "energy_import_wh": e, "registers": {"HCHC": 1000, "HCHP": e - 1000},
            "apparent_power_va": va, "tariff_period": period, "current_a": [7],
            "subscribed_current_a": 30, "fields": {"ADCO": "021728123456"}}


def standard(e_imp, e_exp, va, vax, ntarf):
    return {"protocol": "tic-standard", "energy_import_wh": e_imp, "energy_export_wh": e_exp,
            "apparent_power_va": va, "apparent_power_export_va": vax, "tariff_index": ntarf,
            "tariff_period": "HEURE PLEINE", "voltage_v": [231]}


def test_absolute_roundtrip_keeps_every_stored_field():
    r = standard(43210987, 1234567, 2345, 0, 2)
    data = rec.encode(r, T0 + 17, "meter")[0]
    d = rec.decode(data)
    assert d["kind"] == "reading" and d["t"] == T0 + 17 and d["t_src"] == "meter"
    for k in ("energy_import_wh", "energy_export_wh", "apparent_power_va",
              "apparent_power_export_va", "tariff_index", "tariff_period"):
        assert d[k] == r[k], k
    assert d["active_power_w"] is None   # not in the frame: None, never a default


def test_delta_chain_is_small_and_exact():
    prev = None
    e = 98765432
    sizes = []
    rng = Rng(3)
    for i in range(200):
        e += rng.below(20)
        r = historic(e, 300 + rng.below(5000), ("HC..", "HP..")[i // 100])
        data = rec.encode(r, T0 + 5 * i, "meter", prev)[0]
        d = rec.decode(data, prev)
        assert d["energy_import_wh"] == e and d["apparent_power_va"] == r["apparent_power_va"]
        assert d["t"] == T0 + 5 * i and d["tariff_period"] == r["tariff_period"]
        sizes.append(len(data))
        prev = d
    assert sizes[0] <= 16
    # every later reading is a delta: a handful of bytes
    assert max(sizes[1:]) <= 8, max(sizes[1:])


def test_sizes_absolute_and_delta():
    # the first record of every flash sector is absolute, the others deltas
    h = historic(43210987, 2300, "HC..")
    assert len(rec.encode(h, T0, "meter")[0]) <= 13
    r = standard(43210987, 1234567, 9000, 3000, 2)
    a = rec.encode(r, T0, "ntp")[0]
    assert len(a) <= 19
    r2 = standard(43210999, 1234568, 9100, 2900, 2)
    assert len(rec.encode(r2, T0 + 5, "ntp", rec.decode(a))[0]) <= 11
    # text LTARF outside the table is kept verbatim
    r["tariff_period"] = "SPECIAL 7"
    assert rec.decode(rec.encode(r, T0, "ntp")[0])["tariff_period"] == "SPECIAL 7"


def test_index_going_back_gets_an_absolute_record():
    # a meter swap: the new index is lower; the record must not need the old one
    a = rec.decode(rec.encode(historic(5000000, 100), T0, "meter")[0])
    data = rec.encode(historic(12, 100), T0 + 5, "meter", a)[0]
    d = rec.decode(data)          # decodable without prev: absolute
    assert d["energy_import_wh"] == 12


def test_time_sources_and_no_invented_time():
    r = historic(1000, 10)
    d = rec.decode(rec.encode(r, T0, "ntp")[0])
    assert d["t"] == T0 and d["t_src"] == "ntp"
    d = rec.decode(rec.encode(r, None, "elapsed")[0])
    assert d["t"] is None and d["dt_s"] is None and d["ref_seq"] is None
    d = rec.decode(rec.encode(r, (41, 3600), "elapsed")[0])
    assert d["t"] is None and d["t_src"] == "elapsed" and d["dt_s"] == 3600 and d["ref_seq"] == 41
    # dt relative to the previous record: the reference is the previous record's seq
    prev = {"kind": "reading", "seq": 77, "t": None, "t_src": "elapsed",
            "energy_import_wh": 999}
    d = rec.decode(rec.encode(r, 5, "elapsed", prev)[0], prev)
    assert d["dt_s"] == 5 and d["ref_seq"] == 77 and d["t"] is None
    # a meter clock that says 2000 (clock lost) is not a time: recorded as none
    d = rec.decode(rec.encode(r, 946684800, "meter")[0])
    assert d["t"] is None and d["dt_s"] is None


def test_relay_record():
    data = rec.encode_relay(1, "relay_set", "restore", 1800, T0 + 9, "meter")[0]
    d = rec.decode(data)
    assert d["kind"] == "relay" and d["state"] == "on" and d["coil"] == "relay_set"
    assert d["reason"] == "restore" and d["power"] == 1800 and d["t"] == T0 + 9
    d = rec.decode(rec.encode_relay(0, "relay_reset", "tempo-custom", None, None, "elapsed")[0])
    assert d["state"] == "off" and d["reason"] == "tempo-custom" and d["power"] is None
    assert d["t"] is None


def test_aggregate_keeps_newest_indexes_count_and_peak():
    agg = None
    for i in range(10):
        r = rec.decode(rec.encode(historic(5000 + 7 * i, 100 * i), T0 + 5 * i, "meter")[0])
        agg = rec.merge(agg, r)
    d = rec.decode(rec.pack(agg, None, 12))
    assert d["kind"] == "aggregate" and d["n"] == 10 and d["seq"] == 12
    assert d["energy_import_wh"] == 5063 and d["apparent_power_va"] == 900
    assert d["t"] == T0 + 45 and d["t_first"] == T0


def test_energy_must_be_integer_wh():
    r = historic(1000, 10)
    r["energy_import_wh"] = 1000.5
    raises(TypeError, rec.encode, r, T0, "meter")
    raises(ValueError, rec.encode, historic(1000, 10), T0, "gps")


def test_every_truncation_and_bad_byte_is_refused():
    prev = None
    recs = []
    for i in range(3):
        data = rec.encode(standard(10 ** 6 + i, 5 + i, 3000, 2, 1), T0 + i, "meter", prev)[0]
        recs.append((data, prev))
        prev = rec.decode(data, prev)
    recs.append((rec.encode_relay(1, "relay_set", "x-rule", 12, T0, "ntp")[0], None))
    for data, p in recs:
        for n in range(len(data)):
            raises(ValueError, rec.decode, data[:n], p)
        raises(ValueError, rec.decode, data + b"\x00", p)
    raises(ValueError, rec.decode, b"\x03\x00")            # kind 3 does not exist
    raises(ValueError, rec.decode, recs[1][0], None)       # a delta without its base


def test_unchanged_fields_are_left_out_and_a_vanished_one_is_explicit():
    a = rec.decode(rec.encode(standard(10 ** 6, 500, 3000, 0, 2), T0, "meter")[0])
    data = rec.encode(standard(10 ** 6 + 4, 500, 3100, 0, 2), T0 + 5, "meter", a)[0]
    b = rec.decode(data, a)
    # flags, dt, mask, import delta, VA: the rest is the previous reading's
    assert len(data) <= 6, len(data)
    assert b["energy_export_wh"] == 500 and b["tariff_index"] == 2 and b["apparent_power_va"] == 3100
    r = standard(10 ** 6 + 9, 500, 3100, 0, 2)
    del r["tariff_index"]                      # the frame lost NTARF: not inherited
    data = rec.encode(r, T0 + 10, "meter", b)[0]
    c = rec.decode(data)                       # absolute: decodable alone
    assert c["tariff_index"] is None and c["energy_import_wh"] == 10 ** 6 + 9


def test_encode_hands_back_what_the_bytes_say():
    # rec (what the next delta needs) equals what decode(data, prev) reads back from
    # the bytes, field by field, along a delta chain with elapsed and meter times
    prev = None
    rng = Rng(5)
    e = 5000000
    for i in range(60):
        e += rng.below(30)
        r = standard(e, 100 + i // 7, 500 + rng.below(4000), 0, 1 + (i // 20))
        if i % 13 == 5:
            del r["tariff_index"]
        t, src = (T0 + 5 * i, "meter") if i % 9 else ((7, 5), "elapsed")
        data, got = rec.encode(r, t, src, prev)
        d = rec.decode(data, prev)
        assert "seq" not in got and d.pop("seq") is None
        for k in d:
            assert d[k] == got.get(k), (i, k, d[k], got.get(k))
        prev = got
