# The host port's meter line (issue 3): the capture reaches the firmware at the wire
# rate of the virtual clock, and a wrong baud gives what a real UART would: garbage.
from tools.hostport import HostPort, MeterLine, FakeUart, Clock
from tests.fw.util import corpus


HIST = "tic/hist_tempo_mono_pyteleinfo.txt"
STD = "tic/std_mono_base_ticdecodecpp.bin"


def drain(port, baud, bits=7, parity=0, n=64):
    u = port.uart_open(baud, bits, parity)
    buf = bytearray(n)
    out = bytearray()
    while not port.meter_exhausted():
        k = u.readinto(buf)
        out += buf[:k]
    return bytes(out)


def test_same_settings_deliver_the_capture_at_wire_speed():
    cap = corpus(HIST)
    port = HostPort(capture=cap, meter_baud=1200)
    got = drain(port, 1200)
    assert got == cap
    # 10 bits per 7E1 character at 1200 bd: the virtual clock ran for the whole capture
    want_ms = len(cap) * 10 * 1000 // 1200
    assert abs(port.ticks_ms() - want_ms) <= 2


def decode_all(data, mode):
    from firmware.reading.tic import TicDecoder
    d = TicDecoder(mode)
    n = len(d.feed(data))
    return n, d


def test_right_baud_decodes_wrong_baud_gives_no_valid_frame():
    for rel, meter_baud, wrong, mode in ((HIST, 1200, 9600, "historic"),
                                         (STD, 9600, 1200, "standard")):
        cap = corpus(rel)
        ok = drain(HostPort(capture=cap, meter_baud=meter_baud), meter_baud)
        n_ok, _ = decode_all(ok, mode)
        assert n_ok >= 1, rel
        for mode_try in ("historic", "standard", "auto"):
            bad = drain(HostPort(capture=cap, meter_baud=meter_baud), wrong)
            assert bad != cap and len(bad) > 0
            n_bad, _ = decode_all(bad, mode_try)
            assert n_bad == 0, (rel, wrong, mode_try)


def test_framing_and_parity_follow_the_receiver_settings():
    # 8N1 at the right baud on a 7E1 line: characters are misread (parity bit taken as
    # data, stop bit misplaced), so the bytes differ
    cap = corpus(HIST)[:300]
    bad = drain(HostPort(capture=cap, meter_baud=1200), 1200, 8, None)
    assert bad != cap


def test_bytes_arriving_while_nobody_reads_overflow_the_ring_buffer():
    cap = corpus(HIST)
    port = HostPort(capture=cap, meter_baud=1200)
    u = port.uart_open(1200, 7, 0, rxbuf=64)
    port.sleep_ms(2000)          # ~240 characters arrive, 64 fit
    assert u.any() == 1          # the ESP8266's uart_rx_any(): a byte is there, not how many
    assert u.overflow >= 150
    # the esp32 model counts: 64 held, and a read of 64 returns at once
    p32 = HostPort(capture=cap, meter_baud=1200, uart_model="esp32")
    u32 = p32.uart_open(1200, 7, 0, rxbuf=64)
    p32.sleep_ms(2000)
    assert u32.any() == 64
    buf = bytearray(64)
    t = p32.ticks_ms()
    assert u32.readinto(buf) == 64 and p32.ticks_ms() == t
    assert bytes(buf) == cap[:64]
    # ESP8266 (machine_uart.c read): the 64 held, then live characters while each comes
    # within timeout_char (11 ms at 1200 bd: 13000 // 1200 + 1): the ones that arrived
    # while the ring was full are lost, the read goes on with the line
    buf = bytearray(80)
    t = port.ticks_ms()
    assert u.readinto(buf) == 80
    assert bytes(buf[:64]) == cap[:64] and bytes(buf[64:]) != cap[64:80]
    # 16 live characters of 10 bits at 1200 bd: 133 ms of line time
    assert 125 <= port.ticks_ms() - t <= 142, port.ticks_ms() - t


def test_opening_mid_character_loses_only_that_character():
    cap = corpus(HIST)
    clock = Clock()
    line = MeterLine(cap, 1200, 7, 0, 1, 0)
    clock.advance_us(12345)      # mid-way through character 1
    u = FakeUart(line, clock, 1200, 7, 0)
    buf = bytearray(32)
    n = u.readinto(buf)
    assert bytes(buf[:n]) == cap[2:2 + n]


def test_periodic_telegrams_with_idle_line_between():
    # a P1 meter sends one telegram per second at 115200 8N1, the line idle between
    cap = corpus("dsmr/nl_v5_athom_iskra_am550.txt")
    port = HostPort(capture=cap, meter_baud=115200, meter_bits=8, meter_parity=None,
                    repeat=3, period_ms=1000)
    got = drain(port, 115200, 8, None, n=256)
    assert got == cap * 3
    assert 2000 <= port.ticks_ms() <= 2000 + len(cap) * 10 // 115 + 2
    # sampled at the wrong baud across the gaps: garbage, and the receiver still ends
    bad = drain(HostPort(capture=cap, meter_baud=115200, meter_bits=8, meter_parity=None,
                         repeat=3, period_ms=1000), 9600, 7, 0)
    assert bad != cap * 3 and b"1-0:1.8.1" not in bad
