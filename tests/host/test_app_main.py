# app.main() / app.boot() (what main.py runs) on the host port, booted as the device
# boots: every deep sleep and reset starts it again with RTC memory (and the files in
# fs_root) kept. The set-up portal is the real one, served on loopback ports; the
# button, the safe_boot pin, the radio's joins and the watchdog are the host port's
# fakes of that hardware (the watchdog behaving as the chips' machine.WDT).
import http.client
import json
import os
import threading

import pytest

from firmware import app as A
from firmware import config
from firmware.port import DeepSleep, Reset, RESET_WATCHDOG
from tools import captures
from tools.hostport import FakeWdt, HostPort, Clock
from tools.services import free_port

CAP = captures.read("tic/hist_tempo_mono_pyteleinfo.txt")


def _port(tmp_path, **kw):
    p = HostPort(capture=CAP, meter_baud=1200, loop=True, fs_root=str(tmp_path), **kw)
    p.portal_kw = {"dns_port": free_port(socket_kind()), "http_port": free_port(),
                   "bind": "127.0.0.1", "max_ms": 60000}
    return p


def socket_kind():
    import socket
    return socket.SOCK_DGRAM


def _write_cfg(tmp_path, **cfg):
    c = config.defaults()
    c.update(cfg)
    config.save(str(tmp_path), c)
    return c


def _boot(port, until, max_boots=400):
    # boot after boot as the device does, until until(port) holds after a boot ended;
    # -> how that boot ended: "deep_sleep", "reset" or "returned"
    for _ in range(max_boots):
        try:
            A.boot(port)
            how = "returned"
        except DeepSleep:
            how = "deep_sleep"
        except Reset:
            how = "reset"
        if until(port, how):
            return how
    raise AssertionError("not reached in %d boots; log tail: %s" % (
        max_boots, port.logs[-10:]))


def _portal_in_thread(port):
    # run one boot whose portal is expected; from this thread, fetch the set-up page
    # (proof that the real portal serves), then let 61 s of virtual time pass so the
    # portal times out and main() resets -> (how the boot ended, status, page)
    out = {}

    def client():
        hp = port.portal_kw["http_port"]
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", hp, timeout=5)
                c.request("GET", "/")
                r = c.getresponse()
                out["status"], out["page"] = r.status, r.read().decode()
                c.close()
                break
            except OSError:
                threading.Event().wait(0.05)
        port.clock.advance_ms(61000)

    th = threading.Thread(target=client, daemon=True)
    th.start()
    try:
        A.boot(port)
        how = "returned"
    except Reset:
        how = "reset"
    th.join(10)
    return how, out.get("status"), out.get("page", "")


def _opened_portal(port, how, status, page):
    assert how == "reset", port.logs[-5:]
    assert status == 200 and "ssid" in page.lower()
    assert any("portal: access point" in ln for ln in port.logs)
    assert any(ln.endswith("portal: timeout") for ln in port.logs)
    assert port.uart is None         # the meter line was never opened


def test_first_boot_opens_the_portal(tmp_path):
    port = _port(tmp_path)                      # no config.json at all
    _opened_portal(port, *_portal_in_thread(port))
    assert any("config: missing" in ln for ln in port.logs)


def test_invalid_config_opens_the_portal(tmp_path):
    (tmp_path / "config.json").write_text("{\"ssid\": \"home\", \"mqtt_port\": ")
    port = _port(tmp_path)
    _opened_portal(port, *_portal_in_thread(port))
    assert any("config: corrupt" in ln for ln in port.logs)


def test_safe_boot_pin_starts_nothing(tmp_path):
    _write_cfg(tmp_path, ssid="home", password="secret123")
    port = _port(tmp_path)
    port.safe_boot_held = True
    A.boot(port)                                 # returns: the REPL is the user's
    assert port.logs[-1].endswith("safe boot: REPL kept, app not started")
    assert port.uart is None and port.events == [] and port.rtc == b""


def _readings(port):
    from firmware.store.log import Store
    return Store(port.flash).count


def test_long_press_at_any_time_opens_the_portal_and_keeps_the_readings(tmp_path):
    _write_cfg(tmp_path, ssid="home", password="secret123")   # no sink: no uploads
    port = _port(tmp_path)
    # running: a few readings recorded across deep sleeps; each press below starts half
    # a second into a boot, while the app is listening to the meter
    _boot(port, lambda p, how: _readings(p) >= 3 and how == "deep_sleep")
    n = _readings(port)
    # a short press (1 s) changes nothing
    port.press(1000, at_ms=port.clock.ms + 500)
    _boot(port, lambda p, how: how == "deep_sleep" and _readings(p) >= n + 2)
    assert not (tmp_path / A.PORTAL_FLAG).exists()
    assert not any("set-up access point" in ln for ln in port.logs)
    n = _readings(port)
    # a long press (6 s) while the app runs: the loop notices, asks for the portal
    t0 = port.clock.ms + 500
    port.press(6000, at_ms=t0)
    how = _boot(port, lambda p, how: how == "reset")
    assert any("set-up access point: button held" in ln for ln in port.logs)
    # seen while still held, once held longer than 3 s
    assert 3000 < port.clock.ms - t0 < 6000
    assert (tmp_path / A.PORTAL_FLAG).exists()
    # the next boot opens the portal; nothing recorded was lost
    _opened_portal(port, *_portal_in_thread(port))
    assert not (tmp_path / A.PORTAL_FLAG).exists()
    assert _readings(port) >= n


def test_a_press_held_across_a_deep_sleep_is_followed_at_boot(tmp_path):
    _write_cfg(tmp_path, ssid="home", password="secret123")
    port = _port(tmp_path)
    _boot(port, lambda p, how: how == "deep_sleep")
    port.press(3500)           # held when the chip wakes up
    _opened_portal(port, *_portal_in_thread(port))


def test_twenty_failed_joins_in_a_row_open_the_portal(tmp_path):
    _write_cfg(tmp_path, ssid="home", password="secret123",
               https_url="https://127.0.0.1:%d/ingest" % free_port(),
               hmac_key="00112233445566778899aabbccddeeff")
    port = _port(tmp_path, wifi_ok=False)        # the access point is gone

    def joins(p):
        return [e for e in p.events if e[1] == "wifi_join"]
    how = _boot(port, lambda p, how: how == "reset", max_boots=3000)
    assert how == "reset"
    # exactly WIFI_FAILS_FOR_AP (20, README: "20 failed Wi-Fi joins in a row") joins,
    # all failed, then the request for the portal
    assert [e[2] for e in joins(port)] == [False] * 20
    assert any("set-up access point: 20 failed Wi-Fi joins" in ln for ln in port.logs)
    _opened_portal(port, *_portal_in_thread(port))


def test_an_exception_is_recorded_and_the_chip_reset(tmp_path):
    _write_cfg(tmp_path, ssid="home", password="secret123")
    port = _port(tmp_path)

    class Broken:                  # a flash that answers nothing it should
        SECTOR_SIZE = 4096
        sectors = 16

        def readinto(self, addr, buf):
            raise RuntimeError("flash controller stuck")
    port._flash = Broken()
    for n in (1, 2):
        with pytest.raises(Reset):
            A.boot(port)
        assert (tmp_path / A.CRASH_FILE).read_text() == \
            "%d RuntimeError: flash controller stuck" % n
    assert A.last_crash(port).startswith("2 RuntimeError")


def test_watchdog_is_fed_by_the_loop_and_resets_a_hung_app(tmp_path):
    _write_cfg(tmp_path, ssid="home", password="secret123")
    port = _port(tmp_path, wdt_model="esp8266")
    _boot(port, lambda p, how: _readings(p) >= 5)
    starts = [e for e in port.events if e[1] == "wdt"]
    assert starts and starts[0][2] == 3000
    assert not [e for e in port.events if e[1] == "wdt_reset"]

    # now the meter read hangs for 4 s inside the UART driver (nothing feeds)
    orig = port.uart_open

    def stuck_open(*a, **kw):
        u = orig(*a, **kw)
        real = u.readinto

        def readinto(buf, n=None):
            port.clock.advance_ms(4000)
            return real(buf) if n is None else real(buf, n)
        u.readinto = readinto
        return u
    port.uart_open = stuck_open
    with pytest.raises(Reset):
        A.boot(port)
    assert port.reset_cause() == RESET_WATCHDOG
    assert [e for e in port.events if e[1] == "wdt_reset"]


def test_fake_watchdog_takes_the_arguments_the_chips_take():
    c = Clock()
    # ports/esp8266/machine_wdt.c: a timeout other than the default raises ValueError
    with pytest.raises(ValueError):
        FakeWdt("esp8266", c, 8000)
    w = FakeWdt("esp8266", c)
    # ports/esp32/machine_wdt.c: timeout <= 0 raises ValueError
    with pytest.raises(ValueError):
        FakeWdt("esp32", c, 0)
    e = FakeWdt("esp32", c, 30000)
    c.advance_ms(2999)
    assert not w.expired()
    c.advance_ms(2)
    assert w.expired() and not e.expired()
    w.feed()
    assert not w.expired()
    assert not hasattr(w, "timeout_ms")    # no MICROPY_PY_MACHINE_WDT_TIMEOUT_MS


def test_esp32_watchdog_gets_the_configured_timeout(tmp_path):
    _write_cfg(tmp_path, ssid="home", password="secret123")
    port = _port(tmp_path, wdt_model="esp32")
    _boot(port, lambda p, how: _readings(p) >= 2)
    from firmware.port import WDT_TIMEOUT_MS
    assert [e[2] for e in port.events if e[1] == "wdt"][0] == WDT_TIMEOUT_MS
