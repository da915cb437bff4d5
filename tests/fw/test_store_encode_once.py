# The data path encodes a reading once (issue 17): Store.add_reading calls record.encode
# once against the head sector's delta base and writes those bytes; nothing is decoded
# or packed again, and what lands on flash reads back as the reading (runs on both
# Pythons).
from firmware.port.flash import RamFlash
from firmware.store import record as rec
from firmware.store.log import Store

T0 = 1767225600


def _reading(i):
    return {"energy_import_wh": 40000000 + 11 * i, "apparent_power_va": 300 + 17 * (i % 50),
            "tariff_period": ("HC..", "HP..")[(i // 30) % 2]}


class Count:
    # wraps a record.py function, counting calls
    def __init__(self, name):
        self.name = name
        self.fn = getattr(rec, name)
        self.n = 0

    def __call__(self, *a, **kw):
        self.n += 1
        return self.fn(*a, **kw)


def test_add_reading_encodes_once_and_decodes_nothing():
    # 512-byte sectors: the 200 readings cross several sector boundaries
    s = Store(RamFlash(sectors=16, sector_size=512))
    s.add_reading(_reading(0), T0, "meter")          # the head's delta base is known now
    calls = [Count("encode"), Count("pack"), Count("decode")]
    for c in calls:
        setattr(rec, c.name, c)
    try:
        n = 0
        for i in range(1, 200):
            before = s.head
            s.add_reading(_reading(i), T0 + 5 * i, "meter")
            if s.head == before:
                n += 1
    finally:
        for c in calls:
            setattr(rec, c.name, c.fn)
    enc, pack, dec = [c.n for c in calls]
    assert dec == 0
    assert enc == 199
    # encode packs once per reading; the store packs again only for the first record of
    # a fresh sector (self-contained), never otherwise
    assert pack == enc + (199 - n), (pack, enc, n)
    assert 199 - n >= 2
    assert s.count == 200 and s.aggregated == 0


def test_what_add_reading_wrote_reads_back_as_the_readings():
    s = Store(RamFlash(sectors=8))
    for i in range(300):
        s.add_reading(_reading(i), T0 + 5 * i, "meter")
    got = Store(s.f).peek(1000)
    assert [q for q, _ in got] == list(range(1, 301))
    for q, data in got:
        d = rec.decode(data)       # peek gives self-contained records
        r = _reading(q - 1)
        assert d["t"] == T0 + 5 * (q - 1) and d["t_src"] == "meter"
        for k in r:
            assert d[k] == r[k], (q, k)


def test_elapsed_time_refers_to_the_previous_reading_appended():
    s = Store(RamFlash(sectors=4))
    a = s.add_reading(_reading(0), 12, "elapsed")    # nothing before it: no time at all
    b = s.add_reading(_reading(1), 5, "elapsed")     # 5 s after a
    got = dict(Store(s.f).peek(10))
    da, db = rec.decode(got[a]), rec.decode(got[b])
    assert da["t"] is None and da["dt_s"] is None and da["ref_seq"] is None
    assert db["dt_s"] == 5 and db["ref_seq"] == a


def test_a_value_no_record_can_hold_stores_nothing():
    s = Store(RamFlash(sectors=4))
    s.add_reading(_reading(0), T0, "meter")
    bad = _reading(1)
    bad["energy_import_wh"] = 1.5
    try:
        s.add_reading(bad, T0 + 5, "meter")
        raise AssertionError("a float index was stored")
    except TypeError:
        pass
    assert s.count == 1 and s.next_seq == 2
    s.add_reading(_reading(2), T0 + 10, "meter")
    assert [rec.decode(d)["energy_import_wh"] for _, d in Store(s.f).peek(5)] == [
        40000000, 40000022]
