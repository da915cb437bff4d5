# TIC line speed search (firmware/frame/baud.py): on synthetic decoder statistics, and
# end to end on the host port's bit-level UART model (tools/hostport.py: the meter
# serialises its capture at its own baud, our receiver samples at the configured
# one), driving a real TicDecoder.
from tests.fw.util import corpus
from firmware.frame.baud import (BaudSearch, DecoderStats, LIMIT_BYTES, LIMIT_BAD,
                                 LIMIT_NOISE)
from firmware.reading.tic import TicDecoder


def test_starts_historic_and_switches_on_garbage_bytes():
    b = BaudSearch()
    assert b.baud == 1200 and b.mode == "historic" and not b.locked
    assert b.observe(0, 0, LIMIT_BYTES[1200] - 1) == "keep"
    assert b.observe(0, 0, 1) == "switch"
    assert b.baud == 9600 and b.mode == "standard" and b.switches == 1
    # the window restarts after a switch
    assert b.observe(0, 0, LIMIT_BYTES[1200]) == "keep"
    assert b.observe(1, 3, 500) == "locked"
    assert b.locked and b.baud == 9600


def test_switches_on_garbled_groups_or_noise_bytes():
    b = BaudSearch()
    assert b.observe(0, LIMIT_BAD - 1, 10) == "keep"
    assert b.observe(0, 1, 10) == "switch"
    assert b.observe(0, 0, 100, LIMIT_NOISE - 1) == "keep"
    assert b.observe(0, 0, 10, 1) == "switch" and b.baud == 1200


def test_remembered_speed_gets_patience_then_searches():
    b = BaudSearch(initial=9600)
    assert b.baud == 9600 and b.remembered
    assert b.observe(0, 0, LIMIT_BYTES[9600]) == "keep"   # twice the patience
    assert b.observe(0, 0, LIMIT_BYTES[9600]) == "switch"
    assert b.baud == 1200
    assert BaudSearch(initial=4800).baud == 1200          # junk in RTC memory


def test_locked_line_tolerates_noise_but_notices_a_mode_change():
    b = BaudSearch()
    assert b.observe(2, 0, 600) == "locked"
    # noise: some bad groups, valid frames in between keep the lock
    for _ in range(20):
        assert b.observe(0, 2, 100) == "locked"
        assert b.observe(1, 1, 300) == "locked"
    # the meter was switched to standard mode: no valid frame for long
    r = "locked"
    n = 0
    while r == "locked":
        r = b.observe(0, 1, 200)
        n += 1
    assert r == "switch" and b.baud == 9600 and not b.locked and n > 5


def test_silence_is_not_evidence():
    b = BaudSearch()
    for _ in range(100):
        assert b.observe(0, 0, 0) == "keep"
    assert b.baud == 1200


def _search(capture, meter_baud, initial, max_ms):
    # the app's loop: listen in ~100 ms windows, feed the decoder, ask BaudSearch
    from tools.hostport import Clock, MeterLine, FakeUart
    clock = Clock()
    line = MeterLine(capture, meter_baud, 7, 0, loop=True)
    bs = BaudSearch(initial)
    uart = FakeUart(line, clock, bs.baud, 7, 0, rxbuf=1024, timeout=20)
    dec = TicDecoder("auto")
    st = DecoderStats(dec)
    buf = bytearray(128)
    mv = memoryview(buf)
    got = None
    while clock.ms < max_ms:
        t0 = clock.ms
        nbytes = 0
        while clock.ms - t0 < 100:
            n = uart.readinto(buf)
            nbytes += n
            for r in dec.feed(mv[:n]):
                got = r
        v, bad, noise = st.window()
        d = bs.observe(v, bad, nbytes, noise)
        if d == "switch":
            uart.configure(bs.baud, 7, 0)
            dec.reset()
            st.mark()
        elif d == "locked":
            return bs, got, clock.ms
    return bs, got, clock.ms


def _one_frame(name):
    data = corpus("tic/" + name)
    i = data.find(b"\x02")
    return data[i:data.find(b"\x03", i) + 1]


def test_finds_standard_meter_from_historic_start_on_uart_model():
    f = _one_frame("std_mono_hcwe_goteleinfo.txt")
    bs, got, ms = _search(f, 9600, None, 30000)
    assert bs.locked and bs.baud == 9600 and bs.switches == 1, (bs.baud, ms)
    assert got["protocol"] == "tic-standard" and got["energy_import_wh"] == 17026175
    # noise bytes give the wrong speed away within about a second
    assert ms < 3000, ms


def test_finds_historic_meter_after_remembered_standard_on_uart_model():
    f = _one_frame("hist_hchp_mono_pyteleinfo.txt")
    bs, got, ms = _search(f, 1200, 9600, 60000)
    assert bs.locked and bs.baud == 1200 and bs.switches == 1, (bs.baud, ms)
    assert got["protocol"] == "tic-historic" and got["apparent_power_va"] == 2160
    # the remembered right speed locks without switching
    bs, got, ms = _search(f, 1200, 1200, 60000)
    assert bs.locked and bs.switches == 0 and ms < 6000
