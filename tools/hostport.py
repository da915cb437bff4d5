# Host port: fakes of exactly the interface in firmware/port/__init__.py, driven by a
# virtual clock, so the real firmware runs on CPython and on the MicroPython unix port.
#
# Only physical hardware is faked (UART line, pins, ADC, RTC memory, sleep, radio
# association); sockets are real, the store runs on a flash model.
#
# The meter UART models the wire honestly: the capture is serialised into the bit
# stream the meter sends (start bit, data bits LSB first, parity, stop bit at the
# meter's baud) and re-sampled by a receiver at the baud and format the firmware
# configured. The same baud and format deliver the capture byte for byte; a wrong
# baud delivers what a real UART would: framing garbage.
import os
import sys

from firmware.port import DeepSleep, PowerLost, Reset, RESET_POWER_ON, RESET_DEEP_SLEEP
from firmware.port import RESET_SOFT, RESET_WATCHDOG, WDT_SLICE_MS, WDT_TIMEOUT_MS
from firmware.port import boards


class Clock:
    # Virtual time in microseconds (integers: the same results on both Pythons).
    def __init__(self, start_us=0):
        self.us = start_us

    def advance_us(self, us):
        if us > 0:
            self.us += int(us)

    def advance_ms(self, ms):
        self.advance_us(int(ms) * 1000)

    @property
    def ms(self):
        return self.us // 1000


def frame_bits(bits, parity, stop):
    return 1 + bits + (0 if parity is None else 1) + stop


def _parity_bit(byte, bits, parity):
    ones = 0
    v = byte & ((1 << bits) - 1)
    while v:
        ones += v & 1
        v >>= 1
    # parity 0 = even: the parity bit makes the count of ones even (machine.UART convention)
    if parity == 0:
        return ones & 1
    return (ones & 1) ^ 1


class MeterLine:
    # The meter's transmitter: a capture sent from t0_us, characters back to back,
    # `repeat` times (or forever with loop=True). With period_us each repetition starts
    # period_us after the previous one, the line idle in between (a DSMR meter sends one
    # telegram per second or per ten seconds; a TIC meter sends without pause).
    def __init__(self, capture, baud, bits=7, parity=0, stop=1, t0_us=0, loop=False,
                 repeat=1, period_us=None):
        self.data = bytes(capture)
        self.n = len(self.data)
        self.baud = baud
        self.bits = bits
        self.parity = parity
        self.stop = stop
        self.t0 = t0_us
        self.loop = loop
        self.repeat = repeat
        self.nbits = frame_bits(bits, parity, stop)
        # character time in us, kept as a rational (nbits * 1e6 / baud) to avoid drift
        self.char_num = self.nbits * 1000000
        self.char_den = baud
        if period_us is not None and period_us * baud < self.n * self.char_num:
            period_us = None  # the capture is longer than the period: back to back
        self.period = period_us

    def char_start_us(self, i):
        if self.period is None:
            return self.t0 + (i * self.char_num) // self.char_den
        k = i // self.n
        j = i - k * self.n
        return self.t0 + k * self.period + (j * self.char_num) // self.char_den

    def char_us(self):
        return self.char_num // self.char_den

    def locate(self, t_us):
        # -> (i, start_us, inside): the character being sent at t_us (inside=True), or
        # the next one to be sent when the line is idle at t_us
        if t_us < self.t0:
            return 0, self.t0, False
        if self.period is None:
            i = ((t_us - self.t0) * self.char_den) // self.char_num
            return i, self.char_start_us(i), True
        k = (t_us - self.t0) // self.period
        within = t_us - self.t0 - k * self.period
        j = (within * self.char_den) // self.char_num
        if j < self.n:
            i = k * self.n + j
            return i, self.char_start_us(i), True
        i = (k + 1) * self.n
        return i, self.char_start_us(i), False

    def total_chars(self):
        return None if self.loop else self.n * self.repeat

    def byte(self, i):
        if self.n == 0 or i < 0:
            return None
        if self.loop:
            return self.data[i % self.n]
        if i >= self.n * self.repeat:
            return None
        return self.data[i % self.n]

    def end_us(self):
        if self.loop:
            return None
        return self.char_start_us(self.n * self.repeat - 1) + self.char_us() + 1

    def level(self, t_us):
        # line level (1 idle/mark, 0 space) at time t_us
        i, start, inside = self.locate(t_us)
        if not inside:
            return 1
        b = self.byte(i)
        if b is None:
            return 1
        k = ((t_us - start) * self.baud) // 1000000  # bit index within the character
        if k == 0:
            return 0
        if k <= self.bits:
            return (b >> (k - 1)) & 1
        if self.parity is not None and k == self.bits + 1:
            return _parity_bit(b, self.bits, self.parity)
        return 1


class FakeUart:
    # A UART receiver on the meter line, modelled on the port's machine.UART (model):
    #   "esp8266" (default): ports/esp8266/uart.c uart_rx_any() says only whether a byte
    #     is there (any() -> 0 or 1); machine_uart.c read() waits up to `timeout` ms for
    #     the first byte, then keeps taking bytes while each next one arrives within
    #     timeout_char ms (at least 13000 / baud + 1, the port's minimum) until the
    #     buffer is full;
    #   "esp32": any() is the count buffered (uart_get_buffered_data_len), read() waits
    #     until the buffer is full or `timeout` ms have passed (uart_read_bytes).
    # Time is the virtual clock: a read advances it to the end of the last character it
    # took, or to its deadline.
    def __init__(self, line, clock, baud, bits=7, parity=0, stop=1, rxbuf=256, invert=False,
                 timeout=50, model="esp8266", timeout_char=0):
        self.line = line
        self.clock = clock
        self.timeout = timeout
        self.timeout_char = timeout_char
        self.rxbuf = rxbuf
        self.model = model
        self.overflow = 0
        self.reads = 0            # readinto() calls (tests count them)
        self._buf = bytearray()
        self.configure(baud, bits, parity, stop, invert)

    def configure(self, baud, bits=7, parity=0, stop=1, invert=False):
        self.baud = baud
        self.bits = bits
        self.parity = parity
        self.stop = stop
        self.invert = invert
        self._buf = bytearray()
        ln = self.line
        self._exact = (ln is not None and baud == ln.baud and bits == ln.bits
                       and parity == ln.parity and not invert)
        self._pos_us = self.clock.us  # receiver has looked at the line up to here
        self._next_char = None
        if ln is not None and self._exact:
            # the first whole character after opening
            i, st, inside = ln.locate(self._pos_us)
            if inside and st < self._pos_us:
                i += 1
            self._next_char = i
        self._pending = None  # (end_us, byte) decoded but not yet due

    def deinit(self):
        self.line_closed = True

    # -- receiver ---------------------------------------------------------------
    def _next_exact(self):
        ln = self.line
        i = self._next_char
        b = ln.byte(i)
        if b is None:
            return None
        self._next_char = i + 1
        return ln.char_start_us(i) + ln.char_us(), b

    def _next_sampled(self):
        # Bit-level receiver: find a falling edge, sample mid-bit at our own baud.
        ln = self.line
        bit_us_num = 1000000
        t = self._pos_us
        end = ln.end_us()
        while True:
            if end is not None and t >= end:
                self._pos_us = end
                return None
            # scan for a space (0) at the meter's bit granularity
            lvl = ln.level(t) ^ (1 if self.invert else 0)
            if lvl == 1:
                # jump to the next meter bit boundary (or the next character after idle)
                i, cs, inside = ln.locate(t)
                if not inside:
                    if ln.byte(i) is None:
                        self._pos_us = t if end is None else end
                        return None
                    t = cs
                    continue
                k = ((t - cs) * ln.baud) // 1000000
                t = cs + ((k + 1) * 1000000 + ln.baud - 1) // ln.baud
                continue
            start = t

            def sample(nbit_half):
                # level at start + nbit_half/2 bit times (our baud)
                ts = start + (nbit_half * bit_us_num) // (2 * self.baud)
                return ln.level(ts) ^ (1 if self.invert else 0), ts

            s, _ = sample(1)
            if s != 0:
                t = start + 1
                continue  # glitch, not a start bit
            val = 0
            for k in range(self.bits):
                s, _ = sample(3 + 2 * k)
                val |= s << k
            n = self.bits
            if self.parity is not None:
                n += 1
            _, ts = sample(3 + 2 * n)  # stop bit sample point
            # the receiver looks for the next start after the stop bit's middle
            self._pos_us = ts + 1
            return ts, val

    def _pump(self, until_us):
        # move characters completed by until_us into the ring buffer
        while True:
            if self._pending is None:
                if self.line is None:
                    return
                self._pending = self._next_exact() if self._exact else self._next_sampled()
                if self._pending is None:
                    return
            end, b = self._pending
            if end > until_us:
                return
            self._pending = None
            if len(self._buf) < self.rxbuf:
                self._buf.append(b)
            else:
                self.overflow += 1

    def exhausted(self):
        # True when the meter line has nothing more to send and the buffer is empty
        self._pump(self.clock.us)
        if self._buf or self._pending is not None:
            return False
        if self.line is None:
            return True
        if self._exact:
            return self.line.byte(self._next_char) is None
        end = self.line.end_us()
        return end is not None and self._pos_us >= end

    def any(self):
        self._pump(self.clock.us)
        if self.model == "esp8266":
            return 1 if self._buf else 0
        return len(self._buf)

    def _peek(self):
        # the next character not yet in the ring buffer: (end_us, byte) or None
        if self._pending is None and self.line is not None:
            self._pending = self._next_exact() if self._exact else self._next_sampled()
        return self._pending

    def _take_until(self, n, deadline_us, gap_us):
        # move arriving characters into the ring until it holds n, the next one ends
        # after deadline_us, or (gap_us) arrives later than gap_us after the previous
        while len(self._buf) < n:
            p = self._peek()
            if p is None:
                return
            end = p[0]
            if end > deadline_us or (gap_us is not None and end > self.clock.us + gap_us):
                return
            self.clock.us = max(self.clock.us, end)
            self._pending = None
            self._buf.append(p[1])

    def readinto(self, buf, nbytes=None):
        self.reads += 1
        n = len(buf) if nbytes is None else min(nbytes, len(buf))
        if n == 0:
            return 0
        self._pump(self.clock.us)
        deadline = self.clock.us + self.timeout * 1000
        if self.model == "esp8266":
            if not self._buf:
                self._take_until(1, deadline, None)
                if not self._buf:
                    self.clock.us = max(self.clock.us, deadline)
                    return 0
            tc = max(self.timeout_char, 13000 // self.baud + 1) * 1000
            self._take_until(n, 1 << 62, tc)
        else:
            self._take_until(n, deadline, None)
            if len(self._buf) < n:
                self.clock.us = max(self.clock.us, deadline)
                self._pump(self.clock.us)
        k = min(n, len(self._buf))
        if k:
            buf[:k] = self._buf[:k]
            self._buf = self._buf[k:]
        return k

    def read(self, n=-1):
        buf = bytearray(self.rxbuf if n is None or n < 0 else n)
        k = self.readinto(buf)
        return bytes(buf[:k]) if k else None


class FakeWdt:
    # machine.WDT as the chips' MicroPython ports implement it (v1.28 C source):
    #   ESP8266 (ports/esp8266/machine_wdt.c): the timeout is fixed; any timeout argument
    #     other than the default 5000 raises ValueError; the SDK's software watchdog
    #     resets the chip when not fed for about 3 s (modelled: 3000 ms).
    #   ESP32 family (ports/esp32/machine_wdt.c): the task watchdog with the timeout given
    #     (default 5000 ms, <= 0 raises ValueError); creating it again reconfigures it.
    #   Neither can be stopped once started, and neither has timeout_ms() (the ports do
    #   not set MICROPY_PY_MACHINE_WDT_TIMEOUT_MS). It resets the chip; a reset ends it.
    def __init__(self, model, clock, timeout=5000):
        if model == "esp8266":
            if timeout != 5000:
                raise ValueError()
            self.expiry_ms = 3000
        elif model == "esp32":
            if timeout <= 0:
                raise ValueError("WDT timeout too short")
            self.expiry_ms = timeout
        else:
            raise ValueError("no watchdog model " + str(model))
        self.clock = clock
        self.fed_ms = clock.ms
        self.feeds = 0

    def feed(self):
        self.fed_ms = self.clock.ms
        self.feeds += 1

    def expired(self):
        return self.clock.ms - self.fed_ms > self.expiry_ms


class HostPort:
    chip = "host"
    uart_class = FakeUart   # the receiver model (the simulator reads whole buffers)

    def __init__(self, capture=None, meter_baud=1200, meter_bits=7, meter_parity=0,
                 meter_invert=False, loop=False, repeat=1, period_ms=None, fs_root=None, flash=None, board="d1mini",
                 clock=None, vcap_mv=5400, device_id="0a1b2c", wall_start=None,
                 wifi_ok=True, scan=None, rtc_size=492, quiet=True, uart_model="esp8266",
                 ticks_offset_ms=0, wdt_model=None):
        self.clock = clock or Clock()
        self.uart_model = uart_model   # FakeUart: "esp8266" (any() 0/1) or "esp32"
        self.ticks_offset_ms = ticks_offset_ms
        self.board = boards.BOARDS[board]
        self.line = None
        if capture is not None:
            self.line = MeterLine(capture, meter_baud, meter_bits, meter_parity,
                                  1, self.clock.us, loop, repeat,
                                  None if period_ms is None else period_ms * 1000)
        self.meter_invert = meter_invert  # a P1 line is inverted on the wire
        self.fs_root = fs_root or "."
        self._flash = flash
        self._vcap = vcap_mv
        self._id = device_id
        self._wall_base = None
        self._wall_at_us = 0
        self._wall_start = wall_start  # what ntp_sync() sets the clock to (None: no NTP)
        self.wifi_ok = wifi_ok
        self.wifi_up = False
        self.scan = scan or []
        self.rtc = b""
        self.rtc_size = rtc_size
        self.reset_kind = RESET_POWER_ON
        self.uart = None
        self.events = []      # (ms, what, detail) hardware events: pulses, wifi, sleeps
        self.pulses = []      # (ms, pin name, ms)
        self.state = "active"
        self.request = False
        self.fast = False
        self.quiet = quiet
        self.logs = []
        self.presses = []     # (from ms, until ms) of the set-up button, virtual clock
        self.safe_boot_held = False   # the safe_boot pin bridged to GND at reset
        self.wdt_model = wdt_model    # None (no watchdog), "esp8266" or "esp32"
        self.wdt = None
        self.ap_ip = "127.0.0.1"

    # -- clock ---------------------------------------------------------------
    # time.ticks_ms() as the chips count it: it wraps after TICKS_PERIOD = 2^30 ms
    # (MicroPython, py/mphal + extmod/modtime.c: MICROPY_PY_TIME_TICKS_PERIOD is
    # MP_SMALL_INT_POSITIVE_MASK + 1 on these 32-bit ports); ticks_offset_ms starts the
    # count elsewhere than 0 (a test puts the wrap a few seconds ahead)
    TICKS_PERIOD = 1 << 30

    def ticks_ms(self):
        self._wdt_check()
        return (self.clock.ms + self.ticks_offset_ms) & (self.TICKS_PERIOD - 1)

    def ticks_diff(self, a, b):
        half = self.TICKS_PERIOD >> 1
        return ((a - b + half) & (self.TICKS_PERIOD - 1)) - half

    def sleep_ms(self, ms):
        self.activity("sleep")
        self._wait_ms(ms)

    def _wait_ms(self, ms):
        # as the device port waits: in slices of at most WDT_SLICE_MS, feeding the
        # watchdog between them
        while ms > 0:
            k = ms if ms < WDT_SLICE_MS else WDT_SLICE_MS
            self.clock.advance_ms(k)
            ms -= k
            self.feed()

    def deep_sleep(self, ms):
        self.activity("deep_sleep")
        self.close_uart()
        self.wifi_up = False
        self.wdt = None       # the chip is off: its watchdog with it
        self.clock.advance_ms(ms)
        self.reset_kind = RESET_DEEP_SLEEP
        self.events.append((self.clock.ms, "deep_sleep", ms))
        raise DeepSleep(ms)

    def reset(self):
        self.close_uart()
        self.wifi_up = False
        self.reset_kind = RESET_SOFT
        self.wdt = None
        raise Reset()

    # -- watchdog ------------------------------------------------------------
    def watchdog(self):
        # start the chip's watchdog as firmware/port/device.py does; -> True if started
        if self.wdt_model is None:
            return False
        if self.wdt_model == "esp8266":
            self.wdt = FakeWdt("esp8266", self.clock)
        else:
            self.wdt = FakeWdt("esp32", self.clock, WDT_TIMEOUT_MS)
        self.events.append((self.clock.ms, "wdt", self.wdt.expiry_ms))
        return True

    def feed(self):
        self._wdt_check()
        if self.wdt is not None:
            self.wdt.feed()

    def _wdt_check(self):
        w = self.wdt
        if w is not None and w.expired():
            # the chip resets: like reset(), with the watchdog as its cause
            self.events.append((self.clock.ms, "wdt_reset", self.clock.ms - w.fed_ms))
            self.close_uart()
            self.wifi_up = False
            self.wdt = None
            self.reset_kind = RESET_WATCHDOG
            raise Reset()

    def power_lost(self):
        # the supervisor cut the regulator: RAM and RTC memory are gone
        self.close_uart()
        self.rtc = b""
        self.wifi_up = False
        self.wdt = None
        self.reset_kind = RESET_POWER_ON
        self._wall_base = None
        raise PowerLost()

    def wall_time(self):
        if self._wall_base is None:
            return None
        return self._wall_base + (self.clock.us - self._wall_at_us) // 1000000

    def set_wall_time(self, t):
        self._wall_base = int(t)
        self._wall_at_us = self.clock.us

    def ntp_sync(self, host=None):
        if self._wall_start is None or not self.wifi_up:
            return False
        self.set_wall_time(self._wall_start + self.clock.us // 1000000)
        return True

    # -- meter line ----------------------------------------------------------
    def uart_open(self, baud, bits=7, parity=0, stop=1, rxbuf=1024, invert=False, timeout=50):
        inv = bool(invert) != bool(self.meter_invert)
        if self.uart is None:
            self.uart = self.uart_class(self.line, self.clock, baud, bits, parity, stop,
                                        rxbuf, inv, timeout, self.uart_model)
        else:
            self.uart.rxbuf = rxbuf
            self.uart.timeout = timeout
            self.uart.configure(baud, bits, parity, stop, inv)
        return self.uart

    def close_uart(self):
        self.uart = None

    def meter_exhausted(self):
        # host only: the capture has been sent completely and read
        if self.line is None:
            return True
        if self.line.loop:
            return False
        if self.uart is None:
            end = self.line.end_us()
            return end is not None and self.clock.us >= end
        return self.uart.exhausted()

    def data_request(self, on):
        self.request = bool(on)

    def tic_fast(self, on):
        self.fast = bool(on)

    # -- power ---------------------------------------------------------------
    def vcap_mv(self):
        return self._vcap

    def activity(self, state):
        self.state = state

    def reset_cause(self):
        return self.reset_kind

    def rtc_read(self):
        return self.rtc

    def rtc_write(self, data):
        if len(data) > self.rtc_size:
            raise ValueError("RTC memory holds %d bytes" % self.rtc_size)
        self.rtc = bytes(data)

    # -- outputs -------------------------------------------------------------
    def pulse(self, name, ms):
        if name not in self.board:
            raise ValueError("no pin " + name)
        self.activity("active")
        self.pulses.append((self.clock.ms, name, ms))
        self.events.append((self.clock.ms, "pulse", name))
        self.clock.advance_ms(ms)

    def led(self, on):
        pass

    def press(self, ms, at_ms=None):
        # hold the set-up button for ms, from at_ms (virtual clock; default: now)
        t = self.clock.ms if at_ms is None else at_ms
        self.presses.append((t, t + ms))

    def button_ms(self):
        now = self.clock.ms
        for a, b in self.presses:
            if a <= now < b:
                return max(1, now - a)
        return 0

    def safe_boot(self):
        return bool(self.safe_boot_held)

    # -- network -------------------------------------------------------------
    def wifi_connect(self, ssid, password, timeout_ms=10000):
        self.activity("wifi_join")
        self.events.append((self.clock.ms, "wifi_join", bool(self.wifi_ok)))
        if not self.wifi_ok:
            self._wait_ms(timeout_ms)
            return False
        self.wifi_up = True
        return True

    def wifi_disconnect(self):
        self.wifi_up = False
        self.activity("active")

    def wifi_scan(self):
        return [(s["ssid"].encode() if isinstance(s["ssid"], str) else s["ssid"], s["rssi"])
                for s in self.scan]

    def ap_start(self, ssid, password):
        self.activity("ap")
        return self.ap_ip

    def ap_stop(self):
        self.activity("active")

    # -- storage -------------------------------------------------------------
    @property
    def flash(self):
        if self._flash is None:
            from tools.flashsim import FaultFlash
            self._flash = FaultFlash(sectors=16, sector_size=4096)
        return self._flash

    # -- identity / log ------------------------------------------------------
    def device_id(self):
        return self._id

    def log(self, msg):
        line = "[%9.3f] %s" % (self.clock.us / 1000000, msg)
        self.logs.append(line)
        if not self.quiet:
            sys.stderr.write(line + "\n")


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False
