# What is on the meter port: line settings per protocol, decoder construction, the
# search order for autodetection, and the meter's clock turned into unix time. The
# device's line reader (search, lock, early stop) is firmware/linereader.py.
#
# Line settings:
#   TIC historic  1200 bd 7E1, TIC standard 9600 bd 7E1 (Enedis-NOI-CPT_54E §5.3.2 / §6.2.2)
#   DSMR P1       115200 bd 8N1, signal inverted on the wire (DSMR 5.0.2 P1 §4.2/§5.3)
#                 (DSMR 2.2/3.0 meters use 9600 7E1, same inversion)

PROTOCOLS = ("auto", "tic", "tic-historic", "tic-standard", "dsmr")

# name -> (baud, bits, parity, invert); parity 0 = even, None = none
LINES = {
    "tic-historic": (1200, 7, 0, False),
    "tic-standard": (9600, 7, 0, False),
    "dsmr": (115200, 8, None, True),
    "dsmr-22": (9600, 7, 0, True),
}

# The order in which the app tries line settings when it does not know the meter yet:
# TIC first (France is the main market), then P1.
SEARCH = {
    "auto": ("tic-historic", "tic-standard", "dsmr", "dsmr-22"),
    "tic": ("tic-historic", "tic-standard"),
    "tic-historic": ("tic-historic",),
    "tic-standard": ("tic-standard",),
    "dsmr": ("dsmr", "dsmr-22"),
}


def decoder_for_line(line, key=None, aak=None, fields=True):
    # The decoder that matches a line setting found by the search; the same
    # configuration on every chip (the DSMR reader streams through one line buffer).
    # fields=False (the device) keeps no raw groups/lines: the firmware reads only
    # typed reading keys (timestamp + dst for the clock, threshold_w, ejp_notice), so
    # a P1 reading is about half the RAM and a TIC frame's allocation stays under 1 KB.
    if line == "tic-historic":
        from firmware.reading.tic import TicDecoder
        return TicDecoder("historic", fields=fields)
    if line == "tic-standard":
        from firmware.reading.tic import TicDecoder
        return TicDecoder("standard", fields=fields)
    from firmware.reading.dsmr import DsmrDecoder
    return DsmrDecoder(key=key, aak=aak, keep_fields=bool(fields))


def make_decoder(protocol="auto", key=None, aak=None):
    if protocol == "tic":
        from firmware.reading.tic import TicDecoder
        return TicDecoder("auto")
    if protocol in ("tic-historic", "tic-standard"):
        return decoder_for_line(protocol)
    if protocol == "dsmr":
        from firmware.reading.dsmr import DsmrDecoder
        return DsmrDecoder(key=key, aak=aak)
    if protocol == "auto":
        return AutoDecoder(key, aak)
    raise ValueError("unknown protocol " + str(protocol))


class AutoDecoder:
    # For files and streams of unknown origin (tools.decode): feeds a TIC and a DSMR
    # decoder side by side until one of them produces a reading, then keeps only that
    # one. On the device the line settings already tell TIC from P1, so the app uses
    # decoder_for_line() instead and never pays for two decoders.
    def __init__(self, key=None, aak=None):
        from firmware.reading.tic import TicDecoder
        from firmware.reading.dsmr import DsmrDecoder
        self.subs = [TicDecoder("auto"), DsmrDecoder(key=key, aak=aak)]
        self.chosen = None

    def feed(self, data):
        if self.chosen is not None:
            return self.chosen.feed(data)
        out = []
        for d in self.subs:
            r = d.feed(data)
            if r and self.chosen is None:
                self.chosen = d
                out = r
        return out

    def flush(self):
        # end of input (files): a telegram without its "!" completes only here. Before
        # a choice every candidate is flushed: a DSMR 2.2 telegram that ends the input
        # without "!" (or without the CR LF after it) has given the DSMR decoder no
        # frame yet, so it cannot be picked by its frame count.
        if self.chosen is not None:
            f = getattr(self.chosen, "flush", None)
            return f() if f is not None else []
        out = []
        for d in self.subs:
            f = getattr(d, "flush", None)
            r = f() if f is not None else []
            if r and self.chosen is None:
                self.chosen = d
                out = r
        return out

    def _pick(self):
        if self.chosen is not None:
            return self.chosen
        # before any reading: a DSMR telegram or encrypted frame is a strong signature
        # (an encrypted frame without key or with a wrong key must be reported as such,
        # not as garbage), while STX bytes turn up in any binary data
        tic, dsmr = self.subs
        if dsmr.frames:
            return dsmr
        return tic

    @property
    def frames(self):
        return self._pick().frames

    @property
    def readings(self):
        return self._pick().readings

    @property
    def errors(self):
        return self._pick().errors

    def reset(self):
        for d in self.subs:
            d.reset()


# -- the meter's clock ---------------------------------------------------------------

def days_from_civil(y, m, d):
    # days since 1970-01-01 (proleptic Gregorian), integer only (H. Hinnant's algorithm)
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_timestamp(ts):
    # "YYYY-MM-DDTHH:MM:SS" -> seconds since epoch of that civil time (no zone), or None
    if not ts or len(ts) < 19:
        return None
    try:
        y = int(ts[0:4])
        mo = int(ts[5:7])
        d = int(ts[8:10])
        h = int(ts[11:13])
        mi = int(ts[14:16])
        s = int(ts[17:19])
    except ValueError:
        return None
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61 and y >= 2000):
        return None
    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s


def season_offset_s(reading):
    # UTC offset of the meter's local time from its season flag (reading["dst"]).
    # France, the Netherlands, Belgium and Luxembourg all use CET/CEST: summer +2 h,
    # winter +1 h. The decoders set "dst" from the TIC standard DATE horodate (E/H;
    # lower case = degraded clock -> None, Enedis-NOI-CPT_54E s.6.2.3.1) and the DSMR
    # 0-0:1.0.0 flag (S/W, DSMR 5.0.2 s.6.4); None when absent (DSMR 2.2, historic TIC).
    d = reading.get("dst")
    if d is True:
        return 7200
    if d is False:
        return 3600
    return None


def meter_time(reading):
    # Unix time of the reading from the meter's own clock, or None if the meter gives
    # no trustworthy time (historic TIC, degraded clock, missing season flag).
    local = parse_timestamp(reading.get("timestamp"))
    if local is None:
        return None
    off = season_offset_s(reading)
    if off is None:
        return None
    return local - off
