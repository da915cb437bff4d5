# The port layer: the one place the firmware meets the hardware.
#
# Only firmware/port/device.py imports machine / network / esp / esp32. Everything
# else in firmware/ receives a `port` object and calls the methods below; the host
# gives it fakes with the same names (tools/hostport.py) and a virtual clock.
#
# The interface (every implementation provides all of it):
#
#   Clock
#     ticks_ms()            monotonic milliseconds (int, may wrap on device: use ticks_diff)
#     ticks_diff(a, b)      a - b with wrap handling
#     sleep_ms(ms)          stay awake-idle (light sleep where the chip can), clock advances
#     deep_sleep(ms)        power down; on the device it never returns (reset on wake-up),
#                           on the host it raises port.DeepSleep, and the harness restarts
#                           the app with RTC memory kept
#     wall_time()           unix seconds (int) if the clock is known (NTP / set), else None
#     set_wall_time(t)      set the clock from a trusted source (NTP, meter DATE)
#     ntp_sync(host)        True when the clock was set from NTP
#
#   Meter line
#     uart_open(baud, bits=7, parity=0, stop=1, rxbuf=1024, invert=False)
#                           -> object with readinto(buf) -> n (0 when nothing, never blocks
#                           longer than the configured timeout), any() -> n, deinit().
#                           parity: None, 0 (even) or 1 (odd), as machine.UART.
#     data_request(on)      P1 request line: True drives it, False releases it (high-Z)
#     tic_fast(on)          demodulator time constant for 9600 bd (no-op if the board lacks it)
#
#   Power
#     vcap_mv()             capacitor voltage in mV (switches the divider on, averages the
#                           ADC, switches it off)
#     activity(state)       tells the power model what the chip is doing now: one of
#                           "active", "listen", "flash", "wifi_join", "tls", "tx",
#                           "modem_sleep", "ap", "sleep", "deep_sleep"; the device ignores it, the simulator
#                           integrates energy per state
#     reset_cause()         one of the RESET_* constants below
#     rtc_read()            bytes kept across deep sleep (b"" after power loss)
#     rtc_write(data)       at most RTC_SIZE bytes
#
#   Outputs
#     pulse(name, ms)       drive a board pin (board table name, e.g. "relay_set") high for
#                           ms then low. Exactly one pin at a time.
#     led(on)
#     button_ms()           how long the set-up button has been held now: 0 only when
#                           released (at least 1 from the first look at a press)
#     safe_boot()           True when the safe_boot pin is held low (keep the REPL)
#     reset()               restart the chip (host: raises port.Reset)
#
#   Watchdog
#     watchdog()            start the chip's watchdog (machine.WDT: fixed ~3 s on the
#                           ESP8266, WDT_TIMEOUT_MS on the ESP32 family); -> True when
#                           started. It cannot be stopped; a reset or deep sleep ends it.
#     feed()                feed it (no-op without one). The app loop feeds every step
#                           and every pass of a meter read; the port's own waits
#                           (sleep_ms, wifi_connect) feed it every WDT_SLICE_MS.
#
#   Network
#     wifi_connect(ssid, password, timeout_ms) -> True/False
#     wifi_disconnect()     radio off
#     wifi_scan()           -> list of (ssid_bytes, rssi)
#     ap_start(ssid, password) -> ip address string
#     ap_stop()
#     sockets: firmware code uses the `socket` / `ssl` modules directly (both Pythons and
#     MicroPython have them); on the host they are real loopback sockets.
#
#   Storage
#     flash                 raw record area: SECTOR_SIZE, sectors, read(addr, n),
#                           readinto(addr, buf), write(addr, data), erase(sector)
#     fs_root               directory for config.json and small state files
#
#   Identity / logging
#     device_id()           short hex id (6 hex digits, from the MAC / unique_id)
#     chip                  "esp8266", "esp32c3", "esp32c6", "esp32s3", or "host"
#     board                 the board pin map (firmware.port.boards.BOARDS entry)
#     log(msg)              one line to the console (never given secrets)

RESET_POWER_ON = 0
RESET_DEEP_SLEEP = 1
RESET_BROWNOUT = 2
RESET_WATCHDOG = 3
RESET_SOFT = 4
RESET_OTHER = 5

# ESP32 task watchdog timeout: longer than the longest blocking call between feeds (a
# socket operation with the uplink's 10 s net_timeout_s, plus a TLS handshake).
WDT_TIMEOUT_MS = 30000
# Longest wait without a feed inside the port: well under the ESP8266's fixed period.
WDT_SLICE_MS = 1000

RTC_SIZE_ESP8266 = 492
RTC_SIZE_ESP32 = 2048

ACTIVITIES = ("active", "listen", "flash", "wifi_join", "tls", "tx", "modem_sleep", "ap", "sleep",
              "deep_sleep")


class DeepSleep(Exception):
    # Raised by host ports from deep_sleep(): the harness catches it and restarts the
    # app as the device would after waking up.
    def __init__(self, ms):
        # (no Exception.__init__ call: MicroPython's Exception has no __init__ attribute)
        self.ms = ms


class Reset(Exception):
    # Raised by host ports from reset(): the harness restarts the app (RTC memory kept).
    pass


class PowerLost(Exception):
    # Raised by host ports when the simulated capacitor falls below the supervisor's
    # cut-off: everything not in flash or config is gone.
    pass


def ticks_diff(a, b):
    return a - b
