# Decoding a file or stream of unknown origin (tools/decode.py): a TIC and a DSMR decoder
# fed side by side until one of them produces a reading. On the device the line settings
# already tell TIC from P1 (firmware/meterline.py LineReader), so the app never pays for two
# decoders, nor loads this module. Kept apart from firmware/meter.py so that the decode
# CLI imports only what decoding needs (it streams in a 64 KB MicroPython heap).


# what make_decoder() takes (the config's meter_protocol values)
PROTOCOLS = ("auto", "tic", "tic-historic", "tic-standard", "dsmr")


def make_decoder(protocol="auto", key=None, aak=None):
    if protocol == "tic":
        from firmware.reading.tic import TicDecoder
        return TicDecoder("auto")
    if protocol in ("tic-historic", "tic-standard"):
        from firmware.reading.tic import TicDecoder
        return TicDecoder(protocol[4:])
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
