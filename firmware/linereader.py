# The device's meter line reader (LineReader): search, lock, relock and early stop,
# over the line settings and decoders of firmware/meter.py. A module of its own so that
# tools/decode.py, which imports firmware/meter.py for its decoders, stays small enough
# to stream in a 64 KB MicroPython heap.
from firmware.meter import LINES, SEARCH, decoder_for_line

# Reads in a row that heard no valid frame at the locked line setting before the reader
# searches again: the meter changed its TIC mode (historic <-> standard, switched by
# the supplier on request) or the dongle moved to another meter. A TIC meter sends
# without pause, so one listen always spans a whole frame; a DSMR 2.2-4 meter sends
# every 10 s, so a listen may end before the next telegram: more misses before a search.
RELOCK_MISSES = {"tic-historic": 6, "tic-standard": 6, "dsmr": 20, "dsmr-22": 20}
# How long the reader listens at one line setting before it tries the next (autodetect):
# two frames' time, since it may start listening just after a frame began (historic
# frame ~2.3 s at 1200 bd, standard ~1 s at 9600 bd; DSMR 5 sends every 1 s, DSMR 2.2-4
# every 10 s).
SEARCH_LISTEN_MS = {"tic-historic": 5000, "tic-standard": 2500, "dsmr": 11000,
                    "dsmr-22": 11000}
BUF_SIZE = 128
# A read starting this long after the previous one ended follows a sleep: what the rx
# buffer holds is stale.
STALE_MS = 300
# The ESP8266's UART.any() says only whether a byte is there (ports/esp8266/uart.c
# uart_rx_any), the ESP32's how many: on a 1 the loop asks for a chunk, which the
# ESP8266's read fills from the backlog and then from the line while characters keep
# coming (timeout_char), so it never waits long past what is arriving anyway.
READ_CHUNK = 32
# Dropping stale bytes reads small pieces and stops once a read has to wait on the
# line: live characters arrive one per 8.3 ms at 1200 bd, stale ones are in RAM.
DRAIN_PIECE = 8
DRAIN_MS = 20


class LineReader:
    # One job: get readings off the meter port. It finds the meter's line setting
    # (search through SEARCH, lock on the first setting that gives a valid frame, search
    # again after RELOCK_MISSES empty reads), keeps the decoder for it, and once a whole
    # frame has shown which groups the meter sends, stops each later listen as soon as
    # the groups a record needs have arrived (early stop). Counts go into `stats`
    # (frames_seen, errors) shared with the app; what must survive a deep sleep (line,
    # misses, early-stop labels) the app keeps in RTC memory (firmware/rtcstate.py).
    def __init__(self, port, cfg, stats):
        self.port = port
        self.cfg = cfg
        self.stats = stats
        self.buf = bytearray(BUF_SIZE)
        self.mv = memoryview(self.buf)
        self.line = None          # line setting locked by the search (LINES key)
        self.search_i = 0
        self.listened_ms = 0
        self.misses = 0           # reads in a row with nothing at the locked line
        self.uart = None
        self.decoder = None
        self.decoder_line = None
        self.decoder_frames = 0
        self._dec_err_seen = {}
        self._last_read_end = None
        self.early_stop = None    # labels the decoder stops at (() when none apply)
        self.rtc_early_stop = None  # labels kept across a deep sleep, for the next open
        # on_frame(stx_ticks, frame_ms or None): told when a read saw a TIC frame start
        # (the energy manager aligns its next wake-up to the meter's frames)
        self.on_frame = None

    def _err(self, kind, n=1):
        e = self.stats["errors"]
        e[kind] = e.get(kind, 0) + n

    def search_order(self):
        return SEARCH.get(self.cfg.get("meter_protocol") or "auto", SEARCH["auto"])

    def line_now(self):
        if self.line is not None:
            return self.line
        order = self.search_order()
        return order[self.search_i % len(order)]

    def _open(self, line):
        baud, bits, parity, invert = LINES[line]
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
        self.decoder = decoder_for_line(line, key, aak, fields=bool(self.cfg.get("keep_fields")))
        self.decoder_line = line
        self.decoder_frames = 0
        self.early_stop = None
        if self.rtc_early_stop and line == self.line:
            # woken from deep sleep: the meter's groups are known already
            try:
                self.decoder.want(self.rtc_early_stop)
                self.early_stop = self.rtc_early_stop
            except (ValueError, AttributeError):
                pass
            self.rtc_early_stop = None

    def release(self):
        # Free the decoder (the upload window needs the heap); the early-stop labels are
        # kept for the next open, as across a deep sleep.
        if self.decoder is not None:
            self.rtc_early_stop = self.early_stop or None
            self.decoder = None
            self.decoder_line = None

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

    def read(self, max_ms, on_reading):
        # Listen until one reading arrives (the decoder may stop early once the labels
        # a record needs are in), or max_ms passes. Every reading the decoder completes
        # goes to on_reading; -> the last one, or None.
        line = self.line_now()
        if self.decoder is None or self.decoder_line != line:
            self._open(line)
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
            td = port.ticks_ms()
            piece = self.mv[:DRAIN_PIECE]
            while self.uart.any() and k < 256:
                self.uart.readinto(piece)
                k += 1
                if port.ticks_diff(port.ticks_ms(), td) > DRAIN_MS:
                    break          # reading the live line now, not the stale buffer
            if k:
                self.decoder.reset()
        got = None
        ended = False              # the host's capture ran out (not the meter's fault)
        # energy plan (firmware/power/energy.py frame()): when this read sees a TIC frame
        # start, its time (and a whole frame's length) lets the next wake-up come just
        # before a frame instead of half a frame too early on average
        dec = self.decoder
        in0 = getattr(dec, "in_frame", True)
        full = self.early_stop is None
        stx = None
        try:
            uart = self.uart
            while port.ticks_diff(port.ticks_ms(), t0) < max_ms:
                port.feed()        # a listen may last longer than the watchdog's period
                # only what has arrived: machine.UART.readinto(buf) would wait until buf
                # is full, up to 1 s after the frame's end at 1200 bd; with nothing there,
                # wait (UART timeout) for a few characters
                n = uart.any()
                n = uart.readinto(self.mv[:n if 1 < n < BUF_SIZE else
                                          (BUF_SIZE if n > 1 else READ_CHUNK if n else 8)])
                if not n:
                    if getattr(port, "meter_exhausted", None) and port.meter_exhausted():
                        ended = True
                        break
                    continue
                out = self.decoder.feed(self.mv[:n])
                if stx is None and not in0 and dec.in_frame:
                    stx = port.ticks_ms()
                if out:
                    for r in out:
                        got = r
                        on_reading(r)
                    break
        finally:
            if line.startswith("dsmr"):
                port.data_request(False)   # high-Z: the meter stops sending
            self._last_read_end = port.ticks_ms()
        spent = port.ticks_diff(port.ticks_ms(), t0)
        if stx is not None and got is not None and self.on_frame is not None:
            self.on_frame(stx, port.ticks_diff(self._last_read_end, stx) if full else None)
        if got is not None and self.early_stop is None and not got.get("partial"):
            self._set_early_stop(line, got)
        if got is not None and self.line is None:
            self._lock(line)
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
        order = self.search_order()
        self.search_i = (order.index(old) + 1) if old in order else 0
        self.line = None
        self.misses = 0
        self.listened_ms = 0
        self.decoder = None
        self.early_stop = None
        self.rtc_early_stop = None
        self._remember(None)

    def _lock(self, line):
        self.line = line
        self.port.log("meter: %s" % line)
        self._remember(line)

    def _remember(self, line):
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
