# The application: what main.py runs on the device and tools.replay / tools.sim run on
# the host, through the port object (firmware/port/__init__.py).
#
#   port (bytes) -> frame/reading (decoder) -> store (flash log) -> uplink (MQTT/HTTPS/Influx)
#
# The energy manager decides every step (read, upload, sleep, deep sleep) from the
# capacitor voltage; this loop only carries out its decisions, keeps what must survive
# deep sleep in RTC memory and what must survive power loss in the store.
from firmware import meter
from firmware.linereader import LineReader
from firmware.relay.policy import RelayPolicy, ON
from firmware.relay.driver import RelayDriver

# After this many failed Wi-Fi joins in a row the device opens the set-up access point.
WIFI_FAILS_FOR_AP = 20
# A press of the set-up button longer than this opens the access point, at any time.
LONG_PRESS_MS = 3000
# While the button is held (not yet long), the loop looks at it this often.
BUTTON_POLL_MS = 100
# Files in fs_root: the access point asked for by the running loop (opened at the next
# boot, before the watchdog starts), and the last exception that stopped the app.
PORTAL_FLAG = "portal.req"
CRASH_FILE = "crash.txt"


class App:
    def __init__(self, port, cfg=None, store=None, uplink=None, energy=None):
        self.port = port
        if cfg is None:
            from firmware import config
            cfg = config.load(port.fs_root)
        self.cfg = cfg
        self.stats = {
            "frames_seen": 0, "readings_recorded": 0, "readings_uploaded": 0,
            "errors": {}, "relay": [], "uploads": [], "boots": 0, "store_full": 0,
        }
        self.meter = LineReader(port, cfg, self.stats)
        self.latest = None
        self.whole = None
        self.last_rec_ticks = None
        self.last_upload = None
        self.wifi_fails = 0
        self.status_srv = None
        self._pending_reason = None

        if store is None:
            from firmware.store.log import Store
            # full store: aggregate the newest readings (default) or drop the oldest
            store = Store(port.flash, drop_oldest=bool(cfg.get("store_drop_oldest")))
        self.store = store
        if energy is None:
            from firmware.power.energy import EnergyManager
            from firmware.power.costs import params_for
            energy = EnergyManager(params_for(cfg, getattr(port, "chip", None)))
        self.em = energy
        self.meter.on_frame = getattr(energy, "frame", None)
        self.policy = RelayPolicy(cfg)
        # seconds awake for the relay policy, counted with ticks_diff: ticks_ms() wraps
        # after 2^30 ms (12.4 days; MicroPython's TICKS_PERIOD on the 32-bit ports), so
        # ticks_ms() // 1000 jumps back and plain differences go negative
        self._tick_last = port.ticks_ms()
        self._awake_ms = 0
        self._awake_secs = 0
        self.relay = RelayDriver(port, cfg.get("relay_pulse_ms", 30))
        self._uplink = uplink
        self._uplink_rtc = None
        self._rtc_policy = None
        self._restore()

    # -- state across deep sleep / power loss ------------------------------------
    def _restore(self):
        from firmware import rtcstate      # (not at import: a portal boot never needs it)
        m = self.meter
        ok = False
        try:
            st = rtcstate.parse(self.port.rtc_read())
            if st is not None:
                if st.line >= 0:
                    names = tuple(meter.LINES)
                    m.line = names[st.line] if st.line < len(names) else None
                self.wifi_fails = st.wifi_fails
                m.misses = st.misses
                self.em.load(st.em)
                self.relay.load_rtc(st.rl)
                self._uplink_rtc = st.up or None
                m.rtc_early_stop = st.labels
                self._rtc_policy = st.rp
                ok = True
        except Exception:
            ok = False
        if not ok:
            # power-on: the line setting may be in the config from an earlier search
            m.line = self.cfg.get("meter_line") or None
            if m.line not in meter.LINES:
                m.line = None
            last = self.relay.load_file()
            if last is not None:
                self.policy.state = last
        if ok and self._rtc_policy:
            self.policy.load(self._rtc_policy, self._awake_s())
        if self.relay.position in (0, 1):
            self.policy.state = self.relay.position

    def save_rtc(self, sleep_ms=0):
        from firmware import rtcstate
        m = self.meter
        names = tuple(meter.LINES)
        up = b""
        if self._uplink is not None and hasattr(self._uplink, "dump"):
            up = self._uplink.dump() or b""
        elif self._uplink_rtc:
            up = self._uplink_rtc
        st = rtcstate.RtcState(
            names.index(m.line) if m.line in names else -1, self.wifi_fails, m.misses,
            self.em.dump(), self.relay.dump(), up, m.early_stop,
            self.policy.dump(self._awake_s(), sleep_ms // 1000))
        self.port.rtc_write(st.pack())

    # -- meter -------------------------------------------------------------------
    @property
    def line(self):
        # the meter line setting the reader locked on (None while searching)
        return self.meter.line

    def _err(self, kind, n=1):
        e = self.stats["errors"]
        e[kind] = e.get(kind, 0) + n

    def read(self, max_ms):
        # one listen on the meter port; every reading heard is recorded
        return self.meter.read(max_ms, self.record)

    # -- store ---------------------------------------------------------------------
    def _time_of(self, reading):
        t = meter.meter_time(reading)
        if t is not None:
            return t, "meter"
        t = self.port.wall_time()
        if t is not None:
            return t, "ntp"
        # no clock: seconds since the previous record of this boot, which the store
        # chains back to the last record with a known time (never an invented time)
        if self.last_rec_ticks is not None:
            dt = self.port.ticks_diff(self.port.ticks_ms(), self.last_rec_ticks) // 1000
            return (dt if dt > 0 else 0), "elapsed"
        return None, "elapsed"

    def record(self, reading):
        # into the store, encoded once there against its delta base (Store.add_reading)
        self.latest = reading
        if not reading.get("partial"):
            self.whole = reading    # discovery's capability set grows from whole ones
        t, src = self._time_of(reading)
        self.port.activity("flash")
        try:
            self.store.add_reading(reading, t, src)
        except (ValueError, TypeError, KeyError):
            self._err("record_encode")
            return
        except OSError:
            # the store could not keep it (flash failure): counted, visible in status
            self._err("store_write")
            return
        self.last_rec_ticks = self.port.ticks_ms()
        self.stats["readings_recorded"] += 1
        self._relay_step(reading)

    # -- relay -------------------------------------------------------------------
    def _awake_s(self):
        # whole seconds since this boot, across ticks_ms() wrap-arounds (kept as seconds
        # and a millisecond remainder: small integers, no allocation)
        t = self.port.ticks_ms()
        self._awake_ms += self.port.ticks_diff(t, self._tick_last)
        self._tick_last = t
        if self._awake_ms >= 1000:
            self._awake_secs += self._awake_ms // 1000
            self._awake_ms %= 1000
        return self._awake_secs

    def _relay_step(self, reading):
        now_s = self._awake_s()
        d = self.policy.update(reading, now_s)
        if d is not None:
            state, reason = d
            self._pending_reason = reason
            self.relay.request(state)
        if self.relay.owed():
            vcap = self.port.vcap_mv()
            done = self.relay.apply(lambda: self.em.can_afford("relay_pulse", vcap))
            if done is not None:
                state, coil = done
                reason = getattr(self, "_pending_reason", None) or "reassert"
                self._pending_reason = None
                power = meter_power(reading)
                ev = {"t_ms": self.port.ticks_ms(), "state": "on" if state == ON else "off",
                      "coil": coil, "reason": reason, "power": power}
                self.stats["relay"].append(ev)
                try:
                    from firmware.store import record as rec
                    t, src = self._time_of(reading)
                    self.store.append(*rec.encode_relay(state, coil, reason, power, t, src))
                except Exception:
                    self._err("relay_record")
            else:
                self._err("relay_deferred")

    def command(self, cmd):
        # remote override from MQTT (ON / OFF / AUTO)
        if self.policy.command(cmd) and self.latest is not None:
            self._relay_step(self.latest)

    # -- uplink ------------------------------------------------------------------
    @property
    def uplink(self):
        if self._uplink is None:
            from firmware.uplink.uplink import Uplink
            self._uplink = Uplink(self.cfg, self.port, self.port.device_id(),
                                  state=self._uplink_rtc)
            self._uplink.on_command = self.command
            # built here: may be dropped between windows (an injected one is kept)
            self._uplink.droppable = True
            # the energy manager backs off after failed windows already; a second,
            # window-count back-off in the uplink would delay the drain after an outage
            self._uplink.backoff = False
            self._uplink.status = self._uplink_status
            # batch sizes for the chip's cost of a connection (energy plan)
            from firmware.power.costs import uplink_sizes
            uplink_sizes(self._uplink, self.cfg, getattr(self.port, "chip", None))
        return self._uplink

    def _uplink_status(self):
        return {"relay": {0: "off", 1: "on"}.get(self.relay.position, "unknown"),
                "relay_mode": self.policy.mode, "vcap_mv": self.port.vcap_mv(),
                "backlog": self.store.count}

    def network_configured(self):
        c = self.cfg
        return bool(c.get("ssid")) and bool(c.get("mqtt_host") or c.get("https_url")
                                          or c.get("influx_url"))

    def upload(self, max_records=None):
        port = self.port
        if not self.network_configured():
            return False
        port.activity("wifi_join")
        # the join timeout is the energy manager's worst case for a join (a failing AP
        # must not cost more than was budgeted)
        join_ms = getattr(self.em, "p", {}).get("join_ms", 10000)
        ok = port.wifi_connect(self.cfg.get("ssid"), self.cfg.get("password") or "", join_ms)
        if not ok:
            self.wifi_fails += 1
            self._err("wifi_join")
            self.stats["uploads"].append({"sink": "wifi", "ok": False, "records": 0,
                                          "bytes": 0, "error": "wifi_join"})
            return False
        self.wifi_fails = 0
        # free the meter decoder for the upload window (the heaviest moment on the
        # ESP8266's heap): its buffers and its modules (their globals, tables and function
        # objects live in RAM even when frozen: ~4.5 KB for TIC); both come back, with the
        # early-stop labels, at the next read
        self.meter.release()
        unload("firmware.reading", "firmware.frame")
        try:
            if port.wall_time() is None:
                port.ntp_sync(self.cfg.get("ntp_host") or "pool.ntp.org")
            vcap = port.vcap_mv
            em = self.em

            def afford(what):
                # asked before every batch and TLS handshake: the window's pace, where
                # the watchdog is fed too (a window outlasts the ESP8266's period)
                port.feed()
                return em.can_afford(what, vcap())
            before = self.store.count
            res = self.uplink.send(self.store, self.latest, afford, whole=self.whole)
            sent = before - self.store.count
            if sent > 0:
                self.stats["readings_uploaded"] += sent
            conns = res.get("connections") if isinstance(res, dict) else None
            if conns:
                self.stats["uploads"].extend(conns)
            self.last_upload = port.ticks_ms()
            return bool(res.get("ok", sent > 0)) if isinstance(res, dict) else sent > 0
        finally:
            if self._status_wanted():
                self._start_status()   # stay on the LAN: /status (USB power only)
            else:
                self._stop_status()
                port.wifi_disconnect()
            self._drop_uplink()

    def _drop_uplink(self):
        # between upload windows the uplink's modules (~5.5 KB on the ESP8266: MQTT,
        # discovery, batches, signing) make room for the decoder; its state goes where
        # a deep sleep would put it (RTC bytes) and the next window rebuilds it from there
        up = self._uplink
        if up is None or not getattr(up, "droppable", False):
            return
        self._uplink_rtc = up.dump() or None
        self._uplink = None
        up = None
        unload("firmware.uplink", "umqtt")

    def _status_wanted(self):
        # The status page needs the radio on between uploads (~15-70 mA): only when the
        # user asked for it (status_page) and the capacitor is at its clamp voltage,
        # i.e. the dongle is on USB power or the meter supplies more than it spends.
        if not self.cfg.get("status_page"):
            return False
        return self.port.vcap_mv() >= int(self.cfg.get("status_min_mv") or 5200)

    def _start_status(self):
        if self.status_srv is None:
            try:
                from firmware.portal.run import StatusServer
                self.status_srv = StatusServer(self.port, self.status,
                                               int(self.cfg.get("status_http_port") or 80))
            except OSError:
                self._err("status_page")
                self.status_srv = None

    def _stop_status(self):
        if self.status_srv is not None:
            self.status_srv.close()
            self.status_srv = None

    # -- the loop ------------------------------------------------------------------
    def status(self):
        # what the /status page and the uplink's diagnostics show
        return {
            "latest": self.latest,
            "vcap_mv": self.port.vcap_mv(),
            "backlog": self.store.count,
            "dropped": getattr(self.store, "dropped", 0),
            "aggregated": getattr(self.store, "aggregated", 0),
            "last_upload_ms": self.last_upload,
            "relay": {0: "off", 1: "on"}.get(self.relay.position, "unknown"),
            "relay_mode": self.policy.mode,
            "line": self.line,
            "stats": self.stats,
            "last_crash": last_crash(self.port),
        }

    def _button(self):
        # The set-up button, looked at every step (the device wakes at least every few
        # seconds): held past LONG_PRESS_MS opens the access point; while it is held
        # the loop waits for it instead of sleeping. -> True when the step is taken.
        held = self.port.button_ms()
        if not held:
            return False
        if held > LONG_PRESS_MS:
            self.open_portal("button held %d ms" % held)
        self.port.sleep_ms(BUTTON_POLL_MS)
        return True

    def open_portal(self, why):
        # The set-up access point from the running loop: everything that must survive
        # is written, a flag file asks the next boot for the portal, and the chip
        # restarts (the portal then runs from a fresh boot, without the watchdog, which
        # cannot be stopped once started).
        port = self.port
        port.log("set-up access point: %s" % why)
        self._stop_status()
        flush = getattr(self.store, "flush", None)
        if flush is not None:
            flush()
        self.wifi_fails = 0
        self.save_rtc()
        try:
            with open(_path(port, PORTAL_FLAG), "w") as f:
                f.write(why)
        except OSError:
            pass
        port.reset()

    def step(self):
        port = self.port
        if self._button():
            return "button"
        now = port.ticks_ms()
        vcap = port.vcap_mv()
        name, arg = self.em.next_action(now, vcap, self.store.count)
        if name == "read":
            ok = self.read(arg)
            self.em.done("read", port.ticks_ms(), ok is not None)
        elif name == "upload":
            ok = self.upload(arg)
            self.em.done("upload", port.ticks_ms(), ok)
            if self.wifi_fails >= WIFI_FAILS_FOR_AP:
                # after many failed joins the network probably changed: let the user fix it
                self.open_portal("%d failed Wi-Fi joins" % self.wifi_fails)
        elif name == "sleep":
            if self.status_srv is not None:
                # on plentiful power (USB) the /status page is served while idle
                port.activity("modem_sleep")
                self.status_srv.poll(arg)
            else:
                port.activity("sleep")
                port.sleep_ms(arg)
            self.em.done("sleep", port.ticks_ms(), True)
        elif name == "deep_sleep":
            self._stop_status()
            # a pending aggregate (full store) lives in RAM: write it before RAM goes
            flush = getattr(self.store, "flush", None)
            if flush is not None:
                flush()
            self.save_rtc(arg)
            port.deep_sleep(arg)   # device: does not return; host: raises DeepSleep
        return name

    def run(self, until=None):
        self.stats["boots"] += 1
        port = self.port
        while True:
            port.feed()
            if until is not None and until(self):
                self.save_rtc()
                return
            self.step()
            self.save_rtc()


def unload(*packages):
    # Forget these packages and their submodules (sys.modules and the parent package's
    # attribute) so their module objects can be collected; the next import loads them
    # again (from flash when frozen). What still holds one of their objects keeps it.
    import sys
    mods = sys.modules
    for name in list(mods):
        for p in packages:
            if name == p or name.startswith(p + "."):
                del mods[name]
                # (no str.rpartition on the ESP8266 image: its mpconfigport.h turns
                # MICROPY_PY_BUILTINS_STR_PARTITION off)
                dot = name.rfind(".")
                pm = mods.get(name[:dot]) if dot > 0 else None
                if pm is not None:
                    try:
                        delattr(pm, name[dot + 1:])
                    except (AttributeError, TypeError):
                        pass
                break
    if sys.implementation.name == "micropython":
        # (CPython frees them by reference counting and its cycle collector; a full
        # collection there costs more than the memory is worth on a host)
        import gc
        gc.collect()


def meter_power(reading):
    p = reading.get("apparent_power_va")
    if p is None:
        p = reading.get("active_power_w")
    return p


def _path(port, name):
    return (port.fs_root + "/" + name) if port.fs_root else name


def _portal(port, app=None):
    # The set-up access point. On meter power it pauses the AP before the capacitor's
    # cut-off and resumes once recharged; /status shows the app's state if it runs.
    # (port.portal_kw: the host's loopback ports for it; the device uses 53 and 80.)
    from firmware.portal import run as portal_run
    res = portal_run.run(port, port.fs_root, status=app.status if app else None,
                         should_pause=portal_run.vcap_pauser(port),
                         **(getattr(port, "portal_kw", None) or {}))
    port.log("portal: %s" % res.get("reason"))
    port.reset()


def _portal_requested(port):
    # the flag open_portal() left for this boot, consumed
    try:
        import os
        os.remove(_path(port, PORTAL_FLAG))
        return True
    except OSError:
        return False


def _long_press_at_boot(port):
    # The button may already be held when the chip starts (a press across a deep
    # sleep): follow it until it is released or long enough.
    while True:
        held = port.button_ms()
        if not held:
            return False
        if held > LONG_PRESS_MS:
            return True
        port.sleep_ms(BUTTON_POLL_MS)


def main(port):
    # Device entry point: safe boot, configuration, the set-up portal when needed, the
    # watchdog, then the loop.
    if port.safe_boot():
        # the safe_boot pin held low at reset (boot.py checks it first on the device):
        # the REPL keeps its UART, nothing starts
        port.log("safe boot: REPL kept, app not started")
        return
    from firmware import config
    cfg = config.load(port.fs_root)
    # first boot, a missing or invalid config.json, a long press of the set-up button,
    # or the running loop asked for it (button, failed joins)
    err = cfg.get(config.ERROR_KEY)
    if err or not cfg.get("ssid") or _portal_requested(port) or _long_press_at_boot(port):
        if err:
            port.log("config: %s, opening the set-up access point" % err)
        _portal(port)
        return
    app = App(port, cfg)
    if app.wifi_fails >= WIFI_FAILS_FOR_AP:
        # (a state saved before the loop could act on it)
        app.wifi_fails = 0
        app.save_rtc()
        _portal(port, app)
        return
    if port.watchdog():
        port.log("watchdog on")
    app.run()


def boot(port):
    # What main.py runs: main() under a catch-all. An exception that escapes the app is
    # recorded in fs_root/crash.txt (with how many times in a row it happened) and the
    # chip restarts: it must never stay in a REPL on the meter's UART with the radio on.
    from firmware.port import DeepSleep, PowerLost, Reset
    try:
        main(port)
    except (DeepSleep, Reset, PowerLost):
        raise                  # the host port's ways of ending a boot, not failures
    except Exception as e:
        try:
            record_crash(port, e)
        except Exception:
            pass
        port.reset()


def record_crash(port, e):
    # crash.txt: "<count> <Type>: <message>"; the count grows while the same error comes
    # back (capped: a crash loop must not rewrite the flash forever)
    msg = "%s: %s" % (type(e).__name__, e)
    msg = msg[:160]
    n = 1
    p = _path(port, CRASH_FILE)
    try:
        with open(p) as f:
            old = f.read()
        i = old.find(" ")          # (no str.partition on the ESP8266)
        if i > 0 and old[i + 1:] == msg:
            n = int(old[:i]) + 1
    except (OSError, ValueError):
        pass
    if n > 100:
        return
    with open(p, "w") as f:
        f.write("%d %s" % (n, msg))
    port.log("crash %d: %s" % (n, msg))


def last_crash(port):
    # -> "<count> <Type>: <message>" of the last recorded crash, or None
    try:
        with open(_path(port, CRASH_FILE)) as f:
            return f.read()
    except OSError:
        return None
