# The record store (firmware/store/log.py) over the NOR flash model: what the uplink and
# the app rely on. Runs on both Pythons.

from firmware.port import PowerLost
from firmware.store import record as rec
from firmware.store.log import Store
from tools.flashsim import FaultFlash
from tests.fw.util import raises, Rng

T0 = 1767225600


class Meter:
    # readings as the app would record them: encode against the previous one
    def __init__(self, seed=1, e=5000000):
        self.rng = Rng(seed)
        self.e = e
        self.t = T0
        self.prev = None
        self.sent = []     # decoded readings in append order

    def next(self):
        self.e += self.rng.below(20)
        self.t += 5
        r = {"energy_import_wh": self.e, "apparent_power_va": 100 + self.rng.below(6000),
             "tariff_period": "HC.."}
        data = rec.encode(r, self.t, "meter", self.prev)[0]
        d = rec.decode(data, self.prev)
        self.prev = d
        self.sent.append(key(d))   # compact: long runs stay small on MicroPython
        return data

    def reboot(self):
        self.prev = None


def key(d):
    return (d["energy_import_wh"], d["apparent_power_va"], d["t"], d["t_src"],
            d["tariff_period"])


def same(d, want):
    return key(d) == want


def drain(store, n=50):
    got = []
    while True:
        p = store.peek(n)
        if not p:
            return got
        got.extend(p)
        store.ack(p[-1][0])


def test_append_peek_ack_and_reopen():
    f = FaultFlash(sectors=4, sector_size=1024)
    s = Store(f)
    m = Meter()
    seqs = [s.append(m.next()) for _ in range(30)]
    assert seqs == list(range(1, 31)) and s.count == 30
    p = s.peek(10)
    assert [q for q, _ in p] == list(range(1, 11))
    # peeked records are self-contained: decode needs no previous record
    for (q, data), want in zip(p, m.sent):
        d = rec.decode(data)
        assert d["seq"] == q and same(d, want)
    assert s.peek(10) == p          # peek does not consume
    s.ack(10)
    assert s.count == 20 and s.peek(1)[0][0] == 11
    # after a reboot: same backlog, seq continues, the ack holds
    s2 = Store(f)
    assert s2.count == 20 and s2.peek(1)[0][0] == 11
    m.reboot()
    assert s2.append(m.next()) == 31
    got = drain(s2)
    assert [q for q, _ in got] == list(range(11, 32))
    for (q, data), want in zip(got, m.sent[10:]):
        assert same(rec.decode(data), want)
    assert Store(f).count == 0
    s2.ack(10 ** 6)                  # acking beyond the end is harmless
    assert s2.count == 0 and s2.append(m.next()) == 32


def test_ring_wraps_many_times_without_loss_and_wear_is_even():
    f = FaultFlash(sectors=5, sector_size=512)
    s = Store(f)
    m = Meter(2)
    want = {}      # seq -> reading, until it has been drained
    next_seq = [1]

    def check(got):
        for q, data in got:
            assert q == next_seq[0], (q, next_seq[0])
            assert same(rec.decode(data), want.pop(q))
            next_seq[0] += 1

    for i in range(1500):
        q = s.append(m.next())
        want[q] = m.sent.pop()
        if i % 23 == 22:
            check(drain(s, 17))
        if i % 301 == 300:
            s = Store(f)       # reboots along the way
            m.reboot()
    check(drain(s))
    assert next_seq[0] == 1501 and not want
    assert f.erases >= 5 * 6 and f.set_bits == 0
    assert max(f.sector_erases) - min(f.sector_erases) <= 2
    assert s.dropped == 0 and s.aggregated == 0


def test_opaque_and_relay_records_kept():
    f = FaultFlash(sectors=3, sector_size=512)
    s = Store(f)
    m = Meter(3)
    a = s.append(m.next())
    b = s.append(b"\xffopaque bytes \x00\x01")
    c = s.append(rec.encode_relay(0, "relay_reset", "threshold", 7400, T0, "meter")[0])
    d = s.append(m.next())
    p = dict(Store(f).peek(10))
    assert p[b] == b"\xffopaque bytes \x00\x01"
    r = rec.decode(p[c])
    assert r["kind"] == "relay" and r["reason"] == "threshold" and r["power"] == 7400
    assert same(rec.decode(p[d]), m.sent[1]) and same(rec.decode(p[a]), m.sent[0])
    raises(OSError, s.append, b"x" * 64)    # longer than one frame: refused, not cut


def test_full_store_aggregates_newest_and_loses_no_energy():
    f = FaultFlash(sectors=4, sector_size=512)
    s = Store(f, agg_span=4)
    m = Meter(4)
    stored = 0
    for i in range(400):
        if s.append(m.next()) is not None:
            stored += 1
    assert s.aggregated > 0 and s.dropped == 0
    assert stored + s.aggregated == 400
    s.flush()
    assert Store(f).aggregated == s.aggregated   # the count survives a reboot
    got = drain(s)
    ds = [rec.decode(x) for _, x in got]
    aggs = [d for d in ds if d["kind"] == "aggregate"]
    assert aggs and sum(d["n"] for d in aggs) == s.aggregated
    # the newest energy index reached the store: nothing of the energy is lost
    assert ds[-1]["energy_import_wh"] == m.e and ds[-1]["t"] == m.t
    # spans double: the reserve lasts
    ns = [d["n"] for d in aggs]
    assert ns[0] == 4 and ns[1] == 8
    # acknowledged: room again, readings stored one by one
    assert s.append(m.next()) is not None and s.append(m.next()) is not None


def test_drop_oldest_when_configured_counts_and_persists():
    f = FaultFlash(sectors=4, sector_size=512)
    s = Store(f, drop_oldest=True)
    m = Meter(5)
    for i in range(300):
        assert s.append(m.next()) is not None
    assert s.dropped > 0 and s.aggregated == 0
    got = drain(Store(f, drop_oldest=True))
    seqs = [q for q, _ in got]
    # what is left is the newest, contiguous, and the count adds up
    assert seqs == list(range(301 - len(seqs), 301))
    assert len(seqs) + s.dropped == 300
    assert Store(f).dropped == s.dropped
    assert same(rec.decode(got[-1][1]), m.sent[-1])


def test_torn_append_then_reopen_continues_in_a_fresh_sector():
    f = FaultFlash(sectors=4, sector_size=512, seed=9)
    s = Store(f)
    m = Meter(6)
    for _ in range(5):
        s.append(m.next())
    f.arm_cut(0, tear=True)
    raises(PowerLost, s.append, m.next())
    m.sent.pop()
    s = Store(f)
    m.reboot()
    # the torn record is gone (or, if the tear came after its last byte, whole)
    n = s.count
    assert n in (5, 6) and (s.sealed or n == 6)
    if n == 6:
        m.sent.append(key(rec.decode(s.peek(6)[5][1])))
        assert m.sent[-1][2] == T0 + 30
    assert s.append(m.next()) == n + 1
    got = drain(Store(f))
    assert [q for q, _ in got] == list(range(1, n + 2))
    for (q, data), want in zip(got, m.sent):
        assert same(rec.decode(data), want)


def test_half_erased_sector_is_not_trusted():
    for seed in (5, 6, 7, 8):   # the model erases from the start, the end, or in a scatter
        f = FaultFlash(sectors=3, sector_size=512, seed=seed)
        s = Store(f)
        m = Meter(seed)
        for _ in range(70):
            s.append(m.next())
        drain(s)
        # dry run from a snapshot: how many flash ops until the next erase
        snap = f.snapshot()
        saved = (m.e, m.t, m.rng.s, len(m.sent))
        kinds = []
        f.on_op = lambda kind, a, n: kinds.append(kind)
        while "erase" not in kinds:
            s.append(m.next())
        f.on_op = None
        k = kinds.index("erase")
        # again, with the power cut in the middle of that erase
        f.restore(snap)
        m.e, m.t, m.rng.s = saved[0], saved[1], saved[2]
        del m.sent[saved[3]:]
        m.prev = None
        s = Store(f)
        f.arm_cut(k, tear=True)
        try:
            for _ in range(200):
                s.append(m.next())
        except PowerLost:
            pass
        assert f.last_cut == "erase"
        s = Store(f)
        # its header was zeroed before the erase: whatever is left is not a sector
        assert s.gen.count(-1) == 1
        # every append that returned is there; the one in flight (it needed the new
        # sector) is not
        assert s.count == len(m.sent) - 70 - 1
        m.sent.pop()
        for q, data in s.peek(1000):
            assert q > 70 and same(rec.decode(data), m.sent[q - 1])
        m.reboot()
        q = s.append(m.next())
        got = Store(f).peek(1000)
        assert got[-1][0] == q and same(rec.decode(got[-1][1]), m.sent[-1])


def test_garbage_flash_opens_empty():
    f = FaultFlash(sectors=3, sector_size=256, fill=0x5A)
    s = Store(f)
    assert s.count == 0 and s.peek(5) == []
    assert s.append(Meter(8).next()) == 1
    assert Store(f).count == 1


def test_ack_survives_a_full_head():
    # many acks in one sector use the room kept for them, never a record slot
    f = FaultFlash(sectors=3, sector_size=512)
    s = Store(f)
    m = Meter(9)
    for i in range(60):
        s.append(m.next())
    for k in range(1, 61):
        s.ack(k)
        assert Store(f).count == 60 - k


def test_open_reads_headers_and_one_sector_only():
    f = FaultFlash(sectors=16, sector_size=4096)
    s = Store(f)
    m = Meter(10)
    for i in range(3000):
        s.append(m.next())
        m.sent.pop()
    f.reads = 0
    Store(f)
    # one read per sector header, one per frame of the head sector (frames >= 9 bytes)
    assert f.reads <= 16 + 4096 // 9 + 1, f.reads


class FlakyFlash(FaultFlash):
    # writes that fail (OSError) or silently do not program (a weak, worn cell)
    def __init__(self, **kw):
        FaultFlash.__init__(self, **kw)
        self.fail = 0
        self.weak = 0

    def write(self, addr, data):
        if self.fail:
            self.fail -= 1
            raise OSError(5)
        if self.weak:
            self.weak -= 1
            data = bytes(data[:-1]) + b"\xff"    # the last byte never programmed
        FaultFlash.write(self, addr, data)


def test_weak_write_is_caught_by_read_back_and_rewritten_elsewhere():
    f = FlakyFlash(sectors=4, sector_size=512)
    s = Store(f)
    m = Meter(11)
    s.append(m.next())
    f.weak = 1
    assert s.append(m.next()) == 2       # verified, sealed, written again in a new sector
    s.append(m.next())
    got = drain(Store(f))
    assert [q for q, _ in got] == [1, 2, 3]
    for (q, data), want in zip(got, m.sent):
        assert same(rec.decode(data), want)


def test_failed_append_keeps_the_delta_chain_of_the_caller():
    f = FlakyFlash(sectors=4, sector_size=512)
    s = Store(f)
    m = Meter(12)
    s.append(m.next())
    keep = m.prev
    f.fail = 2                           # the write and its retry both fail
    raises(OSError, s.append, m.next())
    m.sent.pop()
    m.prev = keep                        # the app keeps its previous reading, as app.py does
    assert s.append(m.next()) == 2
    got = drain(Store(f))
    assert len(got) == 2 and same(rec.decode(got[1][1]), m.sent[1])


def test_pending_aggregate_crosses_a_deep_sleep_in_rtc():
    f = FaultFlash(sectors=4, sector_size=512)
    s = Store(f, agg_span=50)
    m = Meter(13)
    while s.aggregated < 7:
        s.append(m.next())
    rtc = s.rtc_dump()
    assert 13 <= len(rtc) <= 60
    s = Store(f, agg_span=50)            # deep sleep: RAM gone, RTC kept
    m.reboot()
    assert s.aggregated < 7 and s.rtc_load(rtc) and s.aggregated == 7
    assert not Store(f).rtc_load(rtc[:5])
    s.append(m.next())
    assert s.aggregated == 8 and s.flush()
    aggs = [rec.decode(x) for _, x in drain(s) if rec.decode(x)["kind"] == "aggregate"]
    assert aggs[-1]["n"] == 8 and aggs[-1]["energy_import_wh"] == m.e
    # a dump from before other appends does not belong to the log any more
    s2 = Store(f)
    s2.append(m.next())
    assert not s2.rtc_load(rtc)


def test_frame_crc_is_the_low_16_bits_of_crc32_on_every_build():
    # The format (firmware/store/log.py header): crc = low 16 bits of CRC-32 (IEEE 802.3,
    # reflected, 0xEDB88320). Check values from the CRC catalogue (CRC-32/ISO-HDLC, check
    # 0xCBF43926 for "123456789") and the well-known 0x414FA339 for the fox sentence,
    # with binascii.crc32 where the build has it and with the store's own computation
    # (what the ESP8266, which has none, runs) on every build.
    from firmware.store import log
    fox = b"The quick brown fox jumps over the lazy dog"
    have = log.crc32
    try:
        for impl in (have, None):
            if impl is None and have is None:
                continue
            log.crc32 = impl
            assert log._crc16(b"123456789") == 0x3926
            assert log._crc16(fox) == 0xA339
            assert log._crc16(b"") == 0x0000
            assert log._crc16(memoryview(b"xx123456789")[2:]) == 0x3926
            # the last byte is never 0xFF (a torn write must fail). CRC-32 by zlib:
            # "a" 0xE8B7BE43 -> 0xBE43 kept; "#" 0x70659EFF ends in 0xFF -> 0x9EFE
            assert log._crc16(b"a") == 0xBE43
            assert log._crc16(b"#") == 0x9EFE
    finally:
        log.crc32 = have
