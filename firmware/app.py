# The application: what main.py runs on the device and tools.replay / tools.sim run on
# the host, through the port object (firmware/port/__init__.py).
#
#   port (bytes) -> frame/reading (decoder) -> store (flash log) -> uplink (MQTT/HTTPS/Influx)
#
# The energy manager decides every step (read, upload, sleep, deep sleep) from the
# capacitor voltage; this loop only carries out its decisions, keeps what must survive
# deep sleep in RTC memory and what must survive power loss in the store.
import struct

from firmware import meter
from firmware.relay.policy import RelayPolicy, ON
from firmware.relay.driver import RelayDriver

RTC_MAGIC = b"LK6"
# Reads in a row that heard no valid frame at the locked line setting before the app
# searches again: the meter changed its TIC mode (historic <-> standard, switched by
# the supplier on request) or the dongle moved to another meter. A TIC meter sends
# without pause, so one listen always spans a whole frame; a DSMR 2.2-4 meter sends
# every 10 s, so a listen may end before the next telegram: more misses before a search.
RELOCK_MISSES = {"tic-historic": 6, "tic-standard": 6, "dsmr": 20, "dsmr-22": 20}
# After this many failed Wi-Fi joins in a row the device opens the set-up access point.
WIFI_FAILS_FOR_AP = 20
# How long the app listens at one line setting before it tries the next (autodetect):
# two frames' time, since it may start listening just after a frame began (historic
# frame ~2.3 s at 1200 bd, standard ~1 s at 9600 bd; DSMR 5 sends every 1 s, DSMR 2.2-4
# every 10 s).
SEARCH_LISTEN_MS = {"tic-historic": 5000, "tic-standard": 2500, "dsmr": 11000,
                    "dsmr-22": 11000}
BUF_SIZE = 128
# A read starting this long after the previous one ended follows a sleep: what the rx
# buffer holds is stale.
STALE_MS = 300


class App:
    def __init__(self, port, cfg=None, store=None, uplink=None, energy=None):
        self.port = port
        if cfg is None:
            from firmware import config
            cfg = config.load(port.fs_root)
        self.cfg = cfg
        self.buf = bytearray(BUF_SIZE)
        self.mv = memoryview(self.buf)
        self.stats = {
            "frames_seen": 0, "readings_recorded": 0, "readings_uploaded": 0,
            "errors": {}, "relay": [], "uploads": [], "boots": 0, "store_full": 0,
        }
        self.latest = None
        self.whole = None
        self.prev_record = None
        self.last_rec_ticks = None
        self.last_upload = None
        self.line = None          # line setting locked by the search (meter.LINES key)
        self.search_i = 0
        self.listened_ms = 0
        self.misses = 0           # reads in a row with nothing at the locked line
        self.wifi_fails = 0
        self.status_srv = None
        self._last_read_end = None
        self.decoder = None
        self.decoder_line = None
        self.decoder_frames = 0
        self._dec_err_seen = {}
        self._pending_reason = None
        self.uart = None

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
        self.policy = RelayPolicy(cfg)
        self.relay = RelayDriver(port, cfg.get("relay_pulse_ms", 30))
        self._uplink = uplink
        self._uplink_rtc = None
        self._rtc_early_stop = None
        self._rtc_policy = None
        self.early_stop = None
        self._restore()

    # -- state across deep sleep / power loss ------------------------------------
    def _restore(self):
        data = self.port.rtc_read()
        ok = False
        if data and data[:3] == RTC_MAGIC and len(data) >= 11:
            try:
                line_i, wifi_fails, misses, n_em, n_rl, n_up, n_es, n_rp = struct.unpack(
                    "<bBBBBBBB", data[3:11])
                p = 11
                if line_i >= 0:
                    self.line = tuple(meter.LINES)[line_i] if line_i < len(meter.LINES) else None
                self.wifi_fails = wifi_fails
                self.misses = misses
                self.em.load(bytes(data[p:p + n_em]))
                p += n_em
                self.relay.load_rtc(bytes(data[p:p + n_rl]))
                p += n_rl
                self._uplink_rtc = bytes(data[p:p + n_up]) or None
                p += n_up
                es = bytes(data[p:p + n_es]).decode()
                self._rtc_early_stop = es.split(",") if es else None
                p += n_es
                self._rtc_policy = bytes(data[p:p + n_rp])
                ok = True
            except Exception:
                ok = False
        if not ok:
            # power-on: the line setting may be in the config from an earlier search
            self.line = self.cfg.get("meter_line") or None
            if self.line not in meter.LINES:
                self.line = None
            last = self.relay.load_file()
            if last is not None:
                self.policy.state = last
        if ok and self._rtc_policy:
            self.policy.load(self._rtc_policy, self.port.ticks_ms() // 1000)
        if self.relay.position in (0, 1):
            self.policy.state = self.relay.position

    def save_rtc(self, sleep_ms=0):
        em = self.em.dump()
        rl = self.relay.dump()
        names = tuple(meter.LINES)
        li = names.index(self.line) if self.line in names else -1
        up = b""
        if self._uplink is not None and hasattr(self._uplink, "dump"):
            up = self._uplink.dump() or b""
        elif self._uplink_rtc:
            up = self._uplink_rtc
        es = ",".join(self.early_stop).encode() if self.early_stop else b""
        if len(es) > 160:
            es = b""
        rp = self.policy.dump(self.port.ticks_ms() // 1000, sleep_ms // 1000)
        data = RTC_MAGIC + struct.pack("<bBBBBBBB", li, min(self.wifi_fails, 255),
                                       min(self.misses, 255), len(em), len(rl), len(up),
                                       len(es), len(rp)) + em + rl + up + es + rp
        self.port.rtc_write(data)

    # -- meter -------------------------------------------------------------------
    def _search_order(self):
        return meter.SEARCH.get(self.cfg.get("meter_protocol") or "auto", meter.SEARCH["auto"])

    def _line_now(self):
        if self.line is not None:
            return self.line
        order = self._search_order()
        return order[self.search_i % len(order)]

    def _open_line(self, line):
        baud, bits, parity, invert = meter.LINES[line]
        # rx buffer: one P1 telegram (DSMR can exceed 1 KB) or ~1 s of TIC standard
        rxbuf = 2048 if line.startswith("dsmr") else 1024
        self.uart = self.port.uart_open(baud, bits, parity, 1, rxbuf, invert)
        self.port.tic_fast(line == "tic-standard")
        key = self.cfg.get("meter_key") or None
        aak = self.cfg.get("meter_aak") or None
        try:
            from binascii import unhexlify
            key = unhexlify(key) if key else None
            aak = unhexlify(aak) if aak else None
        except ValueError:
            key = aak = None
            self._err("config_key")
        self.decoder = meter.decoder_for_line(line, key, aak,
                                              fields=bool(self.cfg.get("keep_fields")))
        self.decoder_line = line
        self.decoder_frames = 0
        self.early_stop = None
        if self._rtc_early_stop and line == self.line:
            # woken from deep sleep: the meter's groups are known already
            try:
                self.decoder.want(self._rtc_early_stop)
                self.early_stop = self._rtc_early_stop
            except (ValueError, AttributeError):
                pass
            self._rtc_early_stop = None

    def _err(self, kind, n=1):
        e = self.stats["errors"]
        e[kind] = e.get(kind, 0) + n

    def _collect_decoder_errors(self):
        d = self.decoder
        if d is None:
            return
        if self.line is None:
            # while searching for the baud rate, garbage is expected, not a meter fault
            self._dec_err_seen = dict(d.errors)
            self.decoder_frames = d.frames
            return
        for k, v in d.errors.items():
            seen = self._dec_err_seen.get(k, 0)
            if v < seen:
                self._dec_err_seen[k] = seen = 0
            if v > seen:
                self._err(k, v - seen)
                self._dec_err_seen[k] = v
        if d.frames > self.decoder_frames:
            self.stats["frames_seen"] += d.frames - self.decoder_frames
            self.decoder_frames = d.frames

    def read(self, max_ms):
        # Listen until one reading arrives (the decoder may stop early once the labels
        # the app needs are in), or max_ms passes.
        line = self._line_now()
        if self.decoder is None or self.decoder_line != line:
            self._open_line(line)
            self._dec_err_seen = {}
        port = self.port
        port.activity("listen")
        if line.startswith("dsmr"):
            port.data_request(True)
        t0 = port.ticks_ms()
        # After a sleep, bytes that waited in the rx buffer are stale and the buffer may
        # have overflowed (it keeps the oldest bytes, then a gap): drop them and the
        # decoder's partial frame, and listen from the next frame start (a reading is
        # stamped when it is heard). Back to back, the frame in progress is kept: the
        # decoder already holds its beginning.
        last = self._last_read_end
        if last is None or port.ticks_diff(t0, last) > STALE_MS:
            k = 0
            while self.uart.any() and k < 64:
                self.uart.readinto(self.buf)
                k += 1
            if k:
                self.decoder.reset()
        got = None
        ended = False              # the host's capture ran out (not the meter's fault)
        try:
            uart = self.uart
            while port.ticks_diff(port.ticks_ms(), t0) < max_ms:
                # only what has arrived: machine.UART.readinto(buf) would wait until buf
                # is full, up to 1 s after the frame's end at 1200 bd; with nothing there,
                # wait (UART timeout) for a few characters
                n = uart.any()
                n = uart.readinto(self.mv[:n if 0 < n < BUF_SIZE else
                                          (BUF_SIZE if n else 8)])
                if not n:
                    if getattr(port, "meter_exhausted", None) and port.meter_exhausted():
                        ended = True
                        break
                    continue
                out = self.decoder.feed(self.mv[:n])
                if out:
                    for r in out:
                        got = r
                        self.record(r)
                    break
        finally:
            if line.startswith("dsmr"):
                port.data_request(False)   # high-Z: the meter stops sending
            self._last_read_end = port.ticks_ms()
        spent = port.ticks_diff(port.ticks_ms(), t0)
        if got is not None and self.early_stop is None and not got.get("partial"):
            self._set_early_stop(line, got)
        if got is not None and self.line is None:
            self._lock_line(line)
            self.stats["frames_seen"] += 1
            self.decoder_frames = self.decoder.frames
        self._collect_decoder_errors()
        if got is not None:
            self.listened_ms = 0
            self.misses = 0
        elif self.line is not None:
            if not ended:
                self.misses += 1
                if self.misses >= RELOCK_MISSES.get(self.line, 20):
                    self._unlock()
        elif self.line is None:
            self.listened_ms += spent
            if self.listened_ms >= SEARCH_LISTEN_MS.get(line, 5000):
                # nothing valid at this setting: next baud/format
                self.search_i += 1
                self.listened_ms = 0
                self.decoder = None
        return got

    def _set_early_stop(self, line, reading):
        # Once a whole frame has shown which groups this meter sends, later reads stop
        # as soon as the groups a record needs have arrived (a historic frame lasts
        # 2.3 s: stopping after PAPP saves the tail of every listen on supercap energy).
        want = early_stop_labels(line, reading)
        self.early_stop = want or ()
        if want:
            try:
                self.decoder.want(want)
            except (ValueError, AttributeError):
                self.early_stop = ()

    def _unlock(self):
        # search again, starting with the settings after the one that stopped working
        old = self.line
        self.port.log("meter: nothing valid at %s, searching" % old)
        self._err("line_lost")
        order = self._search_order()
        self.search_i = (order.index(old) + 1) if old in order else 0
        self.line = None
        self.misses = 0
        self.listened_ms = 0
        self.decoder = None
        self.early_stop = None
        self._rtc_early_stop = None
        self._remember_line(None)

    def _lock_line(self, line):
        self.line = line
        self.port.log("meter: %s" % line)
        self._remember_line(line)

    def _remember_line(self, line):
        # across power loss too: config.json keeps it (the file keeps unknown keys)
        if self.cfg.get("meter_line") == line:
            return
        if line is None:
            self.cfg.pop("meter_line", None)
        else:
            self.cfg["meter_line"] = line
        try:
            from firmware import config
            config.save(self.port.fs_root, self.cfg)
        except Exception:
            pass

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
        from firmware.store import record as rec
        self.latest = reading
        if not reading.get("partial"):
            self.whole = reading    # discovery's capability set grows from whole ones
        t, src = self._time_of(reading)
        self.port.activity("flash")
        try:
            data = rec.encode(reading, t, src, self.prev_record)
        except (ValueError, TypeError, KeyError):
            self._err("record_encode")
            return
        try:
            self.store.append(data)
        except OSError:
            # the store could not keep it (flash failure): counted, visible in status
            self._err("store_write")
            return
        self.last_rec_ticks = self.port.ticks_ms()
        try:
            self.prev_record = rec.decode(data, self.prev_record)
        except Exception:
            self.prev_record = None
        self.stats["readings_recorded"] += 1
        self._relay_step(reading)

    # -- relay -------------------------------------------------------------------
    def _relay_step(self, reading):
        now_s = self.port.ticks_ms() // 1000
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
                    self.store.append(rec.encode_relay(state, coil, reason, power, t, src))
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
        if self.decoder is not None:
            self._rtc_early_stop = self.early_stop or None
            self.decoder = None
            self.decoder_line = None
        unload("firmware.reading", "firmware.frame")
        try:
            if port.wall_time() is None:
                port.ntp_sync(self.cfg.get("ntp_host") or "pool.ntp.org")
            vcap = port.vcap_mv
            em = self.em
            before = self.store.count
            res = self.uplink.send(self.store, self.latest,
                                   lambda what: em.can_afford(what, vcap()),
                                   whole=self.whole)
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
        }

    def step(self):
        port = self.port
        now = port.ticks_ms()
        vcap = port.vcap_mv()
        name, arg = self.em.next_action(now, vcap, self.store.count)
        if name == "read":
            ok = self.read(arg)
            self.em.done("read", port.ticks_ms(), ok is not None)
        elif name == "upload":
            ok = self.upload(arg)
            self.em.done("upload", port.ticks_ms(), ok)
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
        while True:
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
                parent, _, child = name.rpartition(".")
                pm = mods.get(parent)
                if pm is not None:
                    try:
                        delattr(pm, child)
                    except (AttributeError, TypeError):
                        pass
                break
    if sys.implementation.name == "micropython":
        # (CPython frees them by reference counting and its cycle collector; a full
        # collection there costs more than the memory is worth on a host)
        import gc
        gc.collect()


def early_stop_labels(line, reading):
    # The TIC labels a record needs, in the order the meter sends them
    # (Enedis-NOI-CPT_02E §6 historic, Enedis-NOI-CPT_54E §6.2 standard); None for P1.
    regs = list((reading.get("registers") or {}).keys())
    if line == "tic-historic":
        if not regs or reading.get("apparent_power_va") is None:
            return None
        want = ["OPTARIF", "ISOUSC"] + regs + ["PTEC", "PAPP"]
        if reading.get("subscribed_current_a") is None:
            want.remove("ISOUSC")
        if reading.get("tariff_period") is None:
            want.remove("PTEC")
        return want
    if line == "tic-standard":
        if reading.get("energy_import_wh") is None or reading.get("apparent_power_va") is None:
            return None
        want = ["EAST", "SINSTS"]
        if reading.get("energy_export_wh") is not None:
            want.append("EAIT")
        if reading.get("apparent_power_export_va") is not None:
            want.append("SINSTI")
        if reading.get("tariff_index") is not None:
            want.append("NTARF")
        if reading.get("subscribed_power_kva") is not None:
            want.append("PREF")
        return want
    return None


def meter_power(reading):
    p = reading.get("apparent_power_va")
    if p is None:
        p = reading.get("active_power_w")
    return p


def _portal(port, app=None):
    # The set-up access point. On meter power it pauses the AP before the capacitor's
    # cut-off and resumes once recharged; /status shows the app's state if it runs.
    from firmware.portal import run as portal_run
    res = portal_run.run(port, port.fs_root, status=app.status if app else None,
                         should_pause=portal_run.vcap_pauser(port))
    port.log("portal: %s" % res.get("reason"))
    port.reset()


def main(port):
    # Device entry point (main.py): configuration, set-up portal when needed, then the loop.
    from firmware import config
    cfg = config.load(port.fs_root)
    # first boot, a missing or invalid config.json, or a long press of the set-up button
    if cfg.get(config.ERROR_KEY) or not cfg.get("ssid") or port.button_ms() > 3000:
        if cfg.get(config.ERROR_KEY):
            port.log("config: %s, opening the set-up access point" % cfg.get(config.ERROR_KEY))
        _portal(port)
        return
    app = App(port, cfg)
    if app.wifi_fails >= WIFI_FAILS_FOR_AP:
        # after many failed joins the network probably changed: let the user fix it
        app.wifi_fails = 0
        app.save_rtc()
        _portal(port, app)
        return
    app.run()
