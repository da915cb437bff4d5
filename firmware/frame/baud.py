# TIC line speed search: historic mode sends at 1200 bd, standard mode at 9600 bd, both
# 7E1 (Enedis-NOI-CPT_54E 5.3.2 / 6.2.2). The meter's mode can be changed remotely by
# the distributor, so the dongle cannot rely on a setting: it listens at one speed,
# judges what the decoder got, and switches until frames check out.
#
# Pure logic. The app owns the UART, the decoder and the clock; after each listen
# window it calls observe() with what happened in that window and acts on the answer:
#   "keep"    go on listening at .baud
#   "switch"  reopen the UART at the new .baud and reset the decoder
#   "locked"  a valid frame arrived at .baud: persist .baud (RTC memory + config) so the
#             next wake-up starts there (BaudSearch(initial=baud))
#
# Why byte and group counts, not time: at the wrong speed a UART still delivers bytes
# (framing garbage), and the TIC decoder counts garbled groups; a valid frame at the
# wrong speed cannot happen (every group is checksummed and type-checked). A meter
# that is silent gives neither: the app's own listen timeout handles that case.
BAUDS = (1200, 9600)

# bytes without a single valid frame before giving up on a speed: a little more than two
# frames (historic ~300 bytes, standard mono ~900, tri ~1400) so a search that starts
# just after a frame began still sees one whole frame
LIMIT_BYTES = {1200: 800, 9600: 3000}
# garbled groups without a valid frame: garbage at the wrong speed rarely even forms
# groups, a noisy line at the right speed still gives valid frames in between
LIMIT_BAD = 12
# bytes that no TIC stream contains (control characters other than STX ETX EOT HT LF
# CR, 8-bit values): about one in five at the wrong speed, none on a clean line at the
# right one. The quickest evidence.
LIMIT_NOISE = 24
# once locked, how much silence-of-valid-frames makes us search again (meter switched
# mode, or the line went bad)
LOST_FACTOR = 4


class BaudSearch:
    def __init__(self, initial=None):
        self.remembered = initial in BAUDS
        self.baud = initial if self.remembered else BAUDS[0]
        self.locked = False
        self.switches = 0
        self._window()

    @property
    def mode(self):
        return "historic" if self.baud == 1200 else "standard"

    def _window(self):
        self.bytes = 0
        self.bad = 0
        self.noise = 0

    def _limits(self):
        k = 1
        if self.locked:
            k = LOST_FACTOR
        elif self.remembered:
            # the last known speed deserves patience before searching
            k = 2
        return LIMIT_BYTES[self.baud] * k, LIMIT_BAD * k, LIMIT_NOISE * k

    def observe(self, valid_frames, bad_groups, bytes_seen, noise_bytes=0):
        # counts for the window since the previous call (not cumulative); noise_bytes:
        # the decoder's .noise delta (DecoderStats.window() gives all four)
        if valid_frames > 0:
            self.locked = True
            self._window()
            return "locked"
        self.bytes += bytes_seen
        self.bad += bad_groups
        self.noise += noise_bytes
        n, b, z = self._limits()
        if self.bytes >= n or self.bad >= b or self.noise >= z:
            self.baud = BAUDS[1] if self.baud == BAUDS[0] else BAUDS[0]
            self.locked = False
            self.remembered = False
            self.switches += 1
            self._window()
            return "switch"
        return "locked" if self.locked else "keep"


class DecoderStats:
    # Turns a decoder's cumulative counters (readings, errors) into the per-window
    # figures observe() takes. bad groups = every error kind except frame-level ones.
    def __init__(self, dec):
        self.dec = dec
        self.mark()

    def _bad(self):
        n = 0
        for k, v in self.dec.errors.items():
            if k != "interrupted":
                n += v
        return n

    def mark(self):
        self.r = self.dec.readings
        self.b = self._bad()
        self.z = self.dec.noise

    def window(self):
        # -> (valid_frames, bad_groups, noise_bytes) since the last call
        r = self.dec.readings - self.r
        b = self._bad() - self.b
        z = self.dec.noise - self.z
        self.mark()
        return r, b, z
