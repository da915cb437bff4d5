# The device port: the only module of the firmware that imports machine, network,
# esp and esp32. It adapts one board (firmware/port/boards.py) to the interface
# documented in firmware/port/__init__.py.
import sys
import time

import machine
import network

from firmware.port import (RESET_POWER_ON, RESET_DEEP_SLEEP, RESET_BROWNOUT, RESET_WATCHDOG,
                           RESET_SOFT, RESET_OTHER, RTC_SIZE_ESP8266, RTC_SIZE_ESP32,
                           WDT_SLICE_MS, WDT_TIMEOUT_MS)
from firmware.port import boards

try:
    import esp
except ImportError:
    esp = None
try:
    import esp32
except ImportError:
    esp32 = None


def detect_chip():
    m = sys.implementation._machine if hasattr(sys.implementation, "_machine") else ""
    m = m.upper()
    if "ESP8266" in m:
        return "esp8266"
    if "C3" in m:
        return "esp32c3"
    if "C6" in m:
        return "esp32c6"
    if "S3" in m:
        return "esp32s3"
    return "esp32c3"


class Port:
    def __init__(self, board=None, fs_root=""):
        self.chip = detect_chip()
        self.board = boards.BOARDS[board or boards.DEFAULT_BOARD[self.chip]]
        self.fs_root = fs_root
        self._rtc = machine.RTC()
        self._sta = None
        self._ap = None
        self.uart = None
        self._flash = None
        b = self.board
        # Relay MOSFET gates: outputs, low. The board's gate pull-downs keep them off
        # during reset; we never leave them floating once running.
        self._pins = {}
        for name in ("relay_set", "relay_reset", "vcap_en", "p1_request", "tic_fast"):
            if b.get(name) is not None:
                p = machine.Pin(b[name], machine.Pin.OUT, value=0)
                self._pins[name] = p
        if b.get("p1_request") is not None:
            # released (high-Z) until a reading is wanted: the meter stops sending
            machine.Pin(b["p1_request"], machine.Pin.IN)
        self._button = machine.Pin(b["button"], machine.Pin.IN, machine.Pin.PULL_UP)
        self._led = machine.Pin(b["led"], machine.Pin.OUT, value=1) if b.get("led") is not None \
            else None
        self._adc = machine.ADC(b["vcap_adc"] if self.chip == "esp8266"
                                else machine.Pin(b["vcap_adc"]))
        if self.chip != "esp8266":
            try:
                self._adc.atten(machine.ADC.ATTN_11DB)
            except AttributeError:
                pass
        self._press_start = None
        self._wdt = None

    # -- clock -------------------------------------------------------------------
    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def sleep_ms(self, ms):
        # light sleep where the chip keeps RAM and the UART's state; the ESP8266
        # port's lightsleep stops the UART, so it idles in modem sleep instead. On the
        # ESP32 family the meter UART is clock-gated meanwhile (what the meter sends is
        # not received) and works again on wake-up: the energy plan wakes the chip just
        # before the next frame (firmware/power/energy.py _align) and the app drops the
        # stale bytes (app.read). With the watchdog on, in slices of WDT_SLICE_MS with a
        # feed between them.
        while ms > 0:
            k = ms if (self._wdt is None or ms < WDT_SLICE_MS) else WDT_SLICE_MS
            if self.chip != "esp8266" and k > 20:
                machine.lightsleep(k)
            else:
                time.sleep_ms(k)
            ms -= k
            self.feed()

    # -- watchdog ------------------------------------------------------------------
    def watchdog(self):
        # machine.WDT as the v1.28 ports implement it: the ESP8266's has a fixed period
        # and refuses any timeout argument but the default (ports/esp8266/machine_wdt.c:
        # ValueError), the ESP32 family's is the task watchdog with the timeout given
        # (ports/esp32/machine_wdt.c). Neither can be stopped.
        if self._wdt is not None:
            return True
        wdt = getattr(machine, "WDT", None)
        if wdt is None:
            return False
        try:
            self._wdt = wdt() if self.chip == "esp8266" else wdt(timeout=WDT_TIMEOUT_MS)
        except (ValueError, OSError):
            return False
        return True

    def feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    def deep_sleep(self, ms):
        if self._sta is not None:
            self._sta.active(False)
        machine.deepsleep(ms)

    def wall_time(self):
        t = time.time()
        # MicroPython's epoch is 2000 on some ports; anything before 2024 means the
        # clock was never set
        if time.gmtime(0)[0] == 2000:
            t += 946684800
        return t if t > 1704067200 else None

    def set_wall_time(self, t):
        if time.gmtime(0)[0] == 2000:
            t -= 946684800
        tm = time.gmtime(t)
        self._rtc.datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0))

    def ntp_sync(self, host="pool.ntp.org"):
        try:
            import ntptime
            ntptime.host = host
            ntptime.settime()
            return True
        except Exception:
            return False

    # -- meter line ----------------------------------------------------------------
    def uart_open(self, baud, bits=7, parity=0, stop=1, rxbuf=1024, invert=False, timeout=50):
        b = self.board
        kw = {"baudrate": baud, "bits": bits, "parity": parity, "stop": stop,
              "rxbuf": rxbuf, "timeout": timeout}
        # The meter now owns the REPL's receive pin (ESP8266: UART0 RX; ESP32-C3/C6
        # boards: the meter's RX is U0RXD, still routed to the REPL's UART0): a 0x03 from
        # the meter must not raise KeyboardInterrupt in the app. The safe_boot pin is the
        # way back to a REPL.
        try:
            import micropython
            micropython.kbd_intr(-1)
        except (ImportError, AttributeError):
            pass
        if self.chip == "esp8266":
            # UART0 is the only receiving UART: detach the REPL from it (boot.py gives a
            # safe way back with the safe_boot pin). No RX inversion on this chip: P1
            # needs the board's transistor inverter.
            try:
                import os
                os.dupterm(None, 1)
            except Exception:
                pass
            u = machine.UART(0, **kw)
        else:
            # ESP32 port (ports/esp32/machine_uart.c, v1.28): UART objects are static
            # and an init keeps every setting it is not given (invert among them) while
            # the driver is installed; UART1's pins default to rx 9 / tx 10. So the RX
            # inversion is always passed (a P1 search must not leave TIC inverted) and
            # TX always goes to the board's free pin.
            kw["rx"] = b["meter_rx"]
            kw["tx"] = b["uart_tx"]
            kw["invert"] = machine.UART.INV_RX if (invert and b.get("rx_invert")) else 0
            u = machine.UART(b["uart"], **kw)
        self.uart = u
        return u

    def data_request(self, on):
        n = self.board.get("p1_request")
        if n is None:
            return
        if on:
            machine.Pin(n, machine.Pin.OUT, value=1)
        else:
            machine.Pin(n, machine.Pin.IN)

    def tic_fast(self, on):
        p = self._pins.get("tic_fast")
        if p is not None:
            p.value(1 if on else 0)

    # -- power ---------------------------------------------------------------------
    def vcap_mv(self):
        b = self.board
        en = self._pins["vcap_en"]
        en.value(1)
        time.sleep_ms(2)   # divider + ADC input settle (RC of the divider, hardware/README)
        total = 0
        for _ in range(8):
            total += self._adc.read() if self.chip == "esp8266" else self._adc.read_u16() >> 4
        en.value(0)
        raw = total // 8
        full = (1 << b["adc_bits"]) - 1
        num, den = b["vcap_ratio"]
        return raw * b["adc_full_mv"] * num // (full * den)

    def activity(self, state):
        if state == "sleep" and self._led is not None:
            self._led.value(1)

    def reset_cause(self):
        c = machine.reset_cause()
        if c == machine.DEEPSLEEP_RESET:
            return RESET_DEEP_SLEEP
        if c == machine.PWRON_RESET:
            return RESET_POWER_ON
        if c == machine.WDT_RESET:
            return RESET_WATCHDOG
        if c == machine.SOFT_RESET:
            return RESET_SOFT
        if hasattr(machine, "BROWNOUT_RESET") and c == machine.BROWNOUT_RESET:
            return RESET_BROWNOUT
        return RESET_OTHER

    def rtc_read(self):
        if self.reset_cause() != RESET_DEEP_SLEEP and self.chip == "esp8266":
            # ESP8266 RTC memory survives a reset but not a power loss; after power-on
            # it holds noise
            return b""
        try:
            return self._rtc.memory()
        except Exception:
            return b""

    def rtc_write(self, data):
        size = RTC_SIZE_ESP8266 if self.chip == "esp8266" else RTC_SIZE_ESP32
        if len(data) > size:
            raise ValueError("RTC memory holds %d bytes" % size)
        self._rtc.memory(data)

    # -- outputs -------------------------------------------------------------------
    def pulse(self, name, ms):
        # one coil at a time: the other MOSFET is forced off first
        other = "relay_reset" if name == "relay_set" else "relay_set" \
            if name == "relay_reset" else None
        if other in self._pins:
            self._pins[other].value(0)
        p = self._pins[name]
        p.value(1)
        time.sleep_ms(ms)
        p.value(0)

    def led(self, on):
        if self._led is not None:
            self._led.value(0 if on else 1)

    def button_ms(self):
        # 0 only when released: a press is at least 1 ms from the first look at it
        if self._button.value() == 0:
            if self._press_start is None:
                self._press_start = time.ticks_ms()
            return max(1, time.ticks_diff(time.ticks_ms(), self._press_start))
        self._press_start = None
        return 0

    def safe_boot(self):
        b = self.board
        if b.get("safe_boot") is None:
            return False
        return machine.Pin(b["safe_boot"], machine.Pin.IN, machine.Pin.PULL_UP).value() == 0

    def reset(self):
        machine.reset()

    # -- network -------------------------------------------------------------------
    def wifi_connect(self, ssid, password, timeout_ms=10000):
        if self._sta is None:
            self._sta = network.WLAN(network.STA_IF)
        sta = self._sta
        sta.active(True)
        if sta.isconnected():
            return True
        sta.connect(ssid, password)
        t0 = time.ticks_ms()
        while not sta.isconnected():
            if time.ticks_diff(time.ticks_ms(), t0) > timeout_ms:
                sta.active(False)
                return False
            time.sleep_ms(50)
            self.feed()
        return True

    def wifi_disconnect(self):
        if self._sta is not None:
            try:
                self._sta.disconnect()
            except OSError:
                pass
            self._sta.active(False)

    def wifi_scan(self):
        if self._sta is None:
            self._sta = network.WLAN(network.STA_IF)
        self._sta.active(True)
        try:
            return [(n[0], n[3]) for n in self._sta.scan()]
        except OSError:
            return []

    def ap_start(self, ssid, password):
        ap = network.WLAN(network.AP_IF)
        ap.active(True)
        ap.config(essid=ssid, password=password, authmode=network.AUTH_WPA2_PSK)
        self._ap = ap
        return ap.ifconfig()[0]

    def ap_stop(self):
        if self._ap is not None:
            self._ap.active(False)

    # -- storage -------------------------------------------------------------------
    @property
    def flash(self):
        if self._flash is None:
            from firmware.port.flash import device_flash
            self._flash = device_flash(self.chip)
        return self._flash

    # -- identity / log ------------------------------------------------------------
    def device_id(self):
        import binascii
        return binascii.hexlify(machine.unique_id()).decode()[-6:]

    def log(self, msg):
        print(msg)
