# firmware/port/device.py against a stand-in for the chips' `machine`, `network` and
# `micropython` modules (physical hardware: the only fakes), recording every call: the
# watchdog is created with the arguments each port's C source accepts (MicroPython
# v1.28 ports/esp8266/machine_wdt.c: no timeout; ports/esp32/machine_wdt.c: timeout),
# the port's waits feed it, and the REPL's Ctrl-C is switched off before the meter's
# UART opens.
import importlib
import sys
import types

import pytest


def _fake_machine(calls):
    m = types.ModuleType("machine")

    class Pin:
        IN, OUT, PULL_UP = 0, 1, 2
        level = {}

        def __init__(self, n, mode=None, pull=None, value=None):
            self.n = n

        def value(self, v=None):
            if v is None:
                return Pin.level.get(self.n, 1)
            calls.append(("pin", self.n, v))

    class ADC:
        ATTN_11DB = 3

        def __init__(self, *a):
            pass

        def atten(self, a):
            pass

    class RTC:
        def memory(self, data=None):
            return b""

    class UART:
        INV_RX = 4

        def __init__(self, uid, **kw):
            calls.append(("uart", uid, kw.get("baudrate")))

    class WDT:
        def __init__(self, *a, **kw):
            calls.append(("wdt", a, kw))

        def feed(self):
            calls.append(("feed",))
    m.Pin, m.ADC, m.RTC, m.UART, m.WDT = Pin, ADC, RTC, UART, WDT
    m.lightsleep = lambda ms: calls.append(("lightsleep", ms))
    m.deepsleep = lambda ms: calls.append(("deepsleep", ms))
    m.reset_cause = lambda: 0
    m.unique_id = lambda: b"\x01\x02\x03\x04\x05\x06"
    m.DEEPSLEEP_RESET, m.PWRON_RESET, m.WDT_RESET, m.SOFT_RESET = 5, 1, 3, 4
    return m


@pytest.fixture
def dev(monkeypatch):
    calls = []
    mach = _fake_machine(calls)
    mp = types.ModuleType("micropython")
    mp.kbd_intr = lambda c: calls.append(("kbd_intr", c))
    monkeypatch.setitem(sys.modules, "machine", mach)
    monkeypatch.setitem(sys.modules, "network", types.ModuleType("network"))
    monkeypatch.setitem(sys.modules, "micropython", mp)
    monkeypatch.delitem(sys.modules, "firmware.port.device", raising=False)
    device = importlib.import_module("firmware.port.device")
    t = types.SimpleNamespace(
        sleep_ms=lambda ms: calls.append(("sleep_ms", ms)), ticks_ms=lambda: 1000,
        ticks_diff=lambda a, b: a - b)
    monkeypatch.setattr(device, "time", t)
    yield device, calls, mach
    sys.modules.pop("firmware.port.device", None)
    import firmware.port
    if getattr(firmware.port, "device", None) is device:
        del firmware.port.device


def _port(device, monkeypatch, chip):
    monkeypatch.setattr(device, "detect_chip", lambda: chip)
    return device.Port()


def test_esp8266_watchdog_takes_no_timeout_and_waits_feed_it(dev, monkeypatch):
    device, calls, _ = dev
    p = _port(device, monkeypatch, "esp8266")
    assert p.watchdog() is True
    assert [c for c in calls if c[0] == "wdt"] == [("wdt", (), {})]
    del calls[:]
    p.sleep_ms(3500)
    # never longer than 1 s without a feed (the ESP8266's period is ~3 s)
    assert calls == [("sleep_ms", 1000), ("feed",), ("sleep_ms", 1000), ("feed",),
                     ("sleep_ms", 1000), ("feed",), ("sleep_ms", 500), ("feed",)]


def test_esp32c3_watchdog_gets_its_timeout_and_light_sleeps_in_slices(dev, monkeypatch):
    device, calls, _ = dev
    from firmware.port import WDT_TIMEOUT_MS
    p = _port(device, monkeypatch, "esp32c3")
    assert p.watchdog() is True
    assert [c for c in calls if c[0] == "wdt"] == [("wdt", (), {"timeout": WDT_TIMEOUT_MS})]
    del calls[:]
    p.sleep_ms(2500)
    assert calls == [("lightsleep", 1000), ("feed",), ("lightsleep", 1000), ("feed",),
                     ("lightsleep", 500), ("feed",)]


def test_without_watchdog_a_sleep_is_one_call(dev, monkeypatch):
    device, calls, _ = dev
    p = _port(device, monkeypatch, "esp32c3")
    del calls[:]
    p.sleep_ms(2500)
    assert calls == [("lightsleep", 2500)]


@pytest.mark.parametrize("chip,uart", [("esp8266", 0), ("esp32c3", 1), ("esp32c6", 1)])
def test_ctrl_c_is_off_before_the_meter_uart_opens(dev, monkeypatch, chip, uart):
    device, calls, _ = dev
    p = _port(device, monkeypatch, chip)
    del calls[:]
    p.uart_open(1200, 7, 0, 1, 1024, False)
    k = calls.index(("kbd_intr", -1))
    assert calls[k + 1:] and calls[k + 1][0:2] == ("uart", uart)


def test_button_and_safe_boot_pins(dev, monkeypatch):
    device, calls, mach = dev
    p = _port(device, monkeypatch, "esp8266")
    b = p.board
    assert p.button_ms() == 0 and p.safe_boot() is False
    mach.Pin.level[b["button"]] = 0          # pressed (active low)
    assert p.button_ms() >= 1                # a press is never 0
    mach.Pin.level[b["safe_boot"]] = 0
    assert p.safe_boot() is True
