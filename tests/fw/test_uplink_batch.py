# Batch encoding of store records (firmware/uplink/batch.py) with the real store codec.
import json

from firmware.uplink import batch as B
from firmware.store.log import Store
from firmware.store import record
from tests.fw.util import raises
from tests.fw.uplink_fixtures import RamFlash, fill, dsmr_reading


def _records(n, reading=None):
    st = Store(RamFlash())
    fill(st, n, reading=reading)
    return [record.decode(d, None, s) for s, d in st.peek(n)]


def test_roundtrip_keeps_every_value_the_store_gives():
    recs = _records(30)
    body, first, last, n = B.build("0a1b2c", recs, 2, 5, 0, 41)
    head, out = B.parse(body)
    assert (first, last, n) == (recs[0]["seq"], recs[n - 1]["seq"], n)
    assert head["dev"] == "0a1b2c" and head["dropped"] == 2 and head["aggregated"] == 5
    assert head["ctr"] == 41 and head["n"] == n
    for a, b in zip(recs[:n], out):
        want = {}
        for k in a:
            if a[k] is not None:
                want[k] = a[k]
        assert b == want, (a, b)


def test_values_equal_the_decoded_readings():
    # what leaves the device is what the decoder read (via the store), not a rounding
    r = dsmr_reading()
    recs = _records(3, r)
    _, out = B.parse(B.build("d", recs)[0])
    assert out[0]["energy_import_wh"] == r["energy_import_wh"]
    assert out[0]["energy_export_wh"] == r["energy_export_wh"]
    assert out[0]["active_power_export_w"] == r["active_power_export_w"]
    assert out[0]["tariff_index"] == r["tariff_index"]
    assert out[2]["energy_import_wh"] == r["energy_import_wh"] + 2


def test_size_is_bounded_and_at_least_one_record_goes():
    recs = _records(80)
    for limit in (300, 700, 1024, 2048, 4096):
        body, first, last, n = B.build("0a1b2c", recs, max_bytes=limit)
        assert len(body) <= limit, (limit, len(body))
        assert n >= 1
        # it is the longest prefix that fits
        if n < len(recs):
            body2 = B.build("0a1b2c", recs[:n + 1], max_bytes=1 << 20)[0]
            assert len(body2) > limit - 60
    body, first, last, n = B.build("0a1b2c", recs, max_bytes=10)
    assert n == 1


def test_null_columns_are_left_out_and_time_fields_kept_as_given():
    # elapsed-time record: t null, dt_s/ref_seq as the store gives them
    recs = [{"seq": 7, "kind": "reading", "t": 1700000000, "t_src": "ntp",
             "apparent_power_va": 100, "active_power_w": None},
            {"seq": 8, "kind": "reading", "t": None, "t_src": "elapsed", "dt_s": 5,
             "ref_seq": 7, "apparent_power_va": 120, "active_power_w": None}]
    body = B.build("x", recs)[0]
    d = json.loads(body)
    assert "active_power_w" not in d["cols"]
    _, out = B.parse(body)
    assert out[1] == {"seq": 8, "kind": "reading", "t_src": "elapsed", "dt_s": 5,
                      "ref_seq": 7, "apparent_power_va": 120}
    assert "dt_s" not in out[0]


def test_undecodable_record_travels_as_hex():
    rec = B.raw_record(9, b"\x07\xff\x00")
    _, out = B.parse(B.build("x", [rec])[0])
    assert out == [{"seq": 9, "kind": "raw", "raw": "07ff00"}]


def test_parse_refuses_malformed_batches():
    raises(ValueError, B.parse, b'{"v":2}')
    raises(ValueError, B.parse, b'{"v":1,"cols":["seq"],"rows":[[1,2]]}')
    raises(ValueError, B.parse, b'{"v":1,"cols":["t"],"rows":[[1]]}')
    raises(ValueError, B.parse, b'[1]')
    raises(ValueError, B.build, "x", [])


def test_body_written_into_a_callers_buffer_and_from_lazily_decoded_records():
    # the ESP8266 path: records of a peek decoded one at a time (uplink.Records), the
    # body written into one buffer taken when the window opens and sealed in place.
    # Same bytes as the plain path, for every size limit.
    from firmware.uplink.uplink import Records
    from firmware.uplink import sign
    st = Store(RamFlash())
    fill(st, 40, reading=dsmr_reading())
    items = st.peek(40)
    lazy = Records(items, record.decode)
    plain = [record.decode(d, None, s) for s, d in items]
    for p, s in zip(plain, items):
        p["seq"] = s[0]
    key = b"k" * 16
    for limit in (400, 1024, 2048):
        buf = bytearray(limit + B.OUT_SLACK)
        got, first, last, n = B.build("0a1b2c", lazy, 1, 2, 7, 9, limit - sign.TAIL_LEN, buf,
                                      "mqtt")
        want = B.build("0a1b2c", plain, 1, 2, 7, 9, limit - sign.TAIL_LEN, ch="mqtt")
        assert len(want[0]) <= limit - sign.TAIL_LEN
        assert bytes(got) == want[0] and (first, last, n) == want[1:], limit
        m = sign.seal_into(key, buf, len(got))
        assert bytes(buf[:m]) == sign.seal(key, want[0])
        assert m <= len(buf)
    assert B.count("0a1b2c", lazy, 400) == B.build("0a1b2c", plain, max_bytes=400)[3]
    # a buffer with no room for the seal is refused, not overrun
    small = bytearray(b'{"a":1}')
    assert raises(ValueError, sign.seal_into, key, small, len(small))
    assert raises(ValueError, sign.seal_into, key, bytearray(b"[1]"), 3)


def test_signed_batch_names_its_channel_right_before_the_counter():
    # docs/wire-format.md: signed batches end ...,"rows":[...],"ch":"<channel>","ctr":N}
    # (the bytes below written by hand from that table, not by the code under test)
    recs = [{"seq": 3, "kind": "reading", "t": 1700000000, "t_src": "ntp",
             "apparent_power_va": 250}]
    want = ('{"v":1,"dev":"0a1b2c","ep":5,"first":3,"last":3,"n":1,"dropped":0,'
            '"aggregated":0,"cols":["seq","kind","t","t_src","apparent_power_va"],'
            '"rows":[[3,"reading",1700000000,"ntp",250]],"ch":"%s","ctr":12}')
    for ch in ("mqtt", "https"):
        body = B.build("0a1b2c", recs, 0, 0, 5, 12, ch=ch)[0]
        assert bytes(body) == (want % ch).encode(), body
        buf = bytearray(B.MAX_BYTES + B.OUT_SLACK)
        body = B.build("0a1b2c", recs, 0, 0, 5, 12, B.MAX_BYTES, buf, ch)[0]
        assert bytes(body) == (want % ch).encode()
    # unsigned batches carry neither; a channel without a counter, or an unknown one,
    # is a programming error
    assert b'"ch"' not in B.build("0a1b2c", recs)[0]
    raises(ValueError, B.build, "0a1b2c", recs, ch="mqtt")
    raises(ValueError, B.build, "0a1b2c", recs, ctr=1, ch="influx")
    # the size bound holds with the channel too: a limit of L gives at most L bytes
    many = _records(60)
    for limit in (300, 1024, 2048):
        body, _, _, n = B.build("0a1b2c", many, 0, 0, 0, 2147483647, limit, None, "https")
        assert len(body) <= limit and n >= 1, (limit, len(body))
