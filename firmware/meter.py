# What is on the meter port: line settings per protocol, decoder construction, the
# search order for autodetection, and the meter's clock turned into unix time.
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
    # The decoder that matches a line setting found by the search. fields=False (the
    # device) keeps only the raw groups the firmware uses (DATE), which holds the TIC
    # decoder's allocation under 1 KB per frame.
    if line == "tic-historic":
        from firmware.reading.tic import TicDecoder
        return TicDecoder("historic", fields=fields)
    if line == "tic-standard":
        from firmware.reading.tic import TicDecoder
        return TicDecoder("standard", fields=fields)
    from firmware.reading.dsmr import DsmrDecoder
    # fields=False: only the raw line the relay policy reads (0-0:17.0.0, the
    # contracted power threshold, which has no reading-schema name), not every raw
    # line: a P1 reading is ~6 KB on the 64-bit unix port with them, ~2.7 KB without
    # (tools/bench/bench_heap.py)
    return DsmrDecoder(key=key, aak=aak,
                       keep_fields=True if fields else DSMR_FIELDS)


# raw P1 lines a reading keeps when fields=False (firmware/relay/policy.py)
DSMR_FIELDS = ("0-0:17.0.0",)


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
        # end of input (files): a telegram without its "!" completes only here
        d = self._pick()
        f = getattr(d, "flush", None)
        return f() if f is not None else []

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
    # UTC offset of the meter's local time from its season flag. France, the Netherlands,
    # Belgium and Luxembourg all use CET/CEST: summer +2 h, winter +1 h.
    #   TIC standard DATE horodate: first char E (ete, summer) / H (hiver, winter); lower
    #   case means the meter's clock is degraded (Enedis-NOI-CPT_54E §6.2.3.1) -> not trusted.
    #   DSMR 0-0:1.0.0 (YYMMDDhhmmssX): X = S (summer) / W (winter) (DSMR 5.0.2 §6.4).
    f = reading.get("fields") or {}
    v = f.get("DATE")
    if v:
        c = v[0]
        if c == "E":
            return 7200
        if c == "H":
            return 3600
        return None
    v = f.get("0-0:1.0.0")
    if v:
        c = v[-1]
        if c == "S":
            return 7200
        if c == "W":
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
