# The P1 stream reader's memory does not depend on the telegram's length: a Belgian
# telegram with a 13-month 0-0:98.1.0 history and a 1024-character text message
# (Fluvius user ports, s.4.5.2: up to 1024 characters = 2048 hex digits) decodes in
# the same line buffer as a short one, with the same peak heap up to the part of the
# text it keeps; a stream of mixed long and short telegrams gives every reading. Runs on
# CPython (tracemalloc peak) and on MicroPython (live heap sampled after every chunk, as
# the UART delivers it).
MICROPYTHON_HEAP = "192K"   # the 64-bit unix port compiles this module and the decoder from source

import gc

from tests.fw.util import corpus, chunks, is_micropython
from firmware.frame.dsmr import LINE_LEN
from firmware.reading.dsmr import DsmrDecoder
from tools.p1long import belgian

CHUNK = 64


def _belgian(text_hex, history=13):
    # be_fluvius_ndokter_1 with a longer history, a text message and two more M-Bus
    # devices (tools/p1long.py; every line is the spec's own format, CRC computed there)
    return belgian(corpus("dsmr/be_fluvius_ndokter_1.txt"), text_hex, history)


def _peak(data, dec):
    # bytes of heap in use at the worst moment while the telegram streams through an
    # already-made decoder, above what was in use before it (readings are dropped as
    # they come, as the app does after storing them)
    n = 0
    if is_micropython():
        gc.collect()
        base = gc.mem_alloc()
        top = base
        for c in chunks(data, CHUNK):
            n += len(dec.feed(c))
            gc.collect()
            a = gc.mem_alloc()
            if a > top:
                top = a
        return top - base, n
    import tracemalloc
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for c in chunks(data, CHUNK):
            n += len(dec.feed(c))
        top = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return top - base, n


def test_long_telegram_costs_the_heap_of_a_short_one():
    short = _belgian(b"")                       # empty text, as meters send today
    text = b"".join(b"%02X" % (0x41 + i % 26) for i in range(1024))   # 1024 chars
    long_ = _belgian(text)
    # beyond the spec's 1024: twice the text (or 1024 characters that need two bytes
    # each in UTF-8), a 5.8 KB telegram
    longer = _belgian(text + text)
    assert len(short) < 1700 and 3600 < len(long_) < 3800 and len(longer) > 5700, (
        len(short), len(long_), len(longer))
    dec = DsmrDecoder(keep_fields=False)        # the device's configuration
    for d in (short, long_, longer):
        assert len(dec.feed(d)) == 1            # warm-up: caches, lazily made objects
    p_short, n1 = _peak(short, dec)
    p_long, n2 = _peak(long_, dec)
    p_longer, n3 = _peak(longer, dec)
    assert n1 == n2 == n3 == 1 and not dec.errors, dec.errors
    # the only extra the long telegram may keep is the head of its text the line
    # buffer held: (LINE_LEN + 2 - 12) // 2 = 507 characters, plus object headers
    kept = (LINE_LEN + 2 - 12) // 2
    assert p_long - p_short <= kept + 512, (p_short, p_long)
    # and a text twice as long costs nothing more: memory is independent of length
    assert abs(p_longer - p_long) <= 128, (p_long, p_longer)
    # the reading: the text's head, flagged; everything else whole
    r = dec.feed(long_)[0]
    assert r["text_message"] == "".join(chr(0x41 + i % 26) for i in range(kept))
    assert r["text_message_truncated"] is True
    assert len(r["peak_history"]) == 13 and r["peak_history"][12][2] == 13120
    assert r["energy_import_wh"] == 34 + 15758 and r["crc"] is True
    assert [c["channel"] for c in r["mbus"]] == [1, 2, 3, 4]
    assert r["heat_gj"] == 12.345 and r["water_m3"] == 872.234


def _pieces(ts, n):
    # the telegrams back to back in n-byte chunks that straddle telegram boundaries,
    # without building the whole stream (60 KB) in the heap
    carry = b""
    for t in ts:
        i = 0
        if carry:
            i = n - len(carry)
            yield carry + t[:i]
        while i + n <= len(t):
            yield t[i:i + n]
            i += n
        carry = t[i:]
    if carry:
        yield carry


def test_stream_of_twenty_mixed_long_and_short_telegrams():
    text = b"".join(b"%02X" % (0x30 + i % 10) for i in range(1024))
    # (a meter sends one DSMR version: no CRC-less DSMR 2.2 telegram in this stream)
    kinds = [_belgian(text), corpus("dsmr/nl_v5_basjes_iskra_am550.txt"), _belgian(b""),
             corpus("dsmr/nl_v4.2_basjes_landisgyr_e350_gas.txt"), _belgian(text, history=0),
             _belgian(text + text)]
    seq = [kinds[(i * 3) % len(kinds)] for i in range(20)]
    want = [t[1:4] for t in seq]
    dec = DsmrDecoder(keep_fields=False)
    out = []

    def keep(rs):
        # a summary per reading (20 whole readings would fill a small heap)
        for r in rs:
            out.append((r["meter_id"], "peak_demand_w" in r, r.get("text_message_truncated"),
                        len(r.get("text_message") or "")))
    for c in _pieces(seq, 97):
        keep(dec.feed(c))
    keep(dec.flush())
    assert len(out) == 20 and dec.readings == 20 and dec.frames == 20, dec.errors
    assert not dec.errors, dec.errors
    # every telegram came out in order, the long texts kept in part and flagged
    for (mid, be, trunc, n), t, h in zip(out, seq, want):
        assert mid is not None and be == (h == b"FLU")
        long_text = b"0-0:96.13.0(3031" in t
        assert trunc is (True if long_text else None) and (n == 507 if long_text else n == 0)
