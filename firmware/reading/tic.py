# TIC decoder: Linky / electronic meter frames (historic and standard mode) into
# readings (docs/reading-schema.md), in bounded memory.
#
#   dec = TicDecoder("auto")          # or "historic" / "standard"
#   for reading in dec.feed(chunk):   # any chunking, 1 byte to whole captures
#       ...
#   dec.frames, dec.readings, dec.errors, dec.reset(), dec.want(["EAST", "SINSTS"])
#
# Never a wrong value. A TIC checksum has only 6 bits: a byte changed by a multiple
# of 64 (a digit turned into a lower-case letter, '@' inserted, ...) passes it. So
# every group is also checked against its label (Enedis-NOI-CPT_02E table 6,
# Enedis-NOI-CPT_54E 6.2.3): digits where digits are due, exact lengths, known code
# sets, horodate present exactly where the spec puts one. With these rules no single
# byte substitution, deletion or insertion can turn a valid group into another valid
# group, except inside free text (NGTF, LTARF, MSG1/2) where lower case is allowed:
# there a value that holds characters whose +-64 partner is also allowed (lower case
# vs digits/punctuation) is only taken once the same text came in two frames in a row.
#
# Derived keys (energy_import_wh, current_a, ...) appear only when every group they
# need is valid in that frame; a value is never inferred from a missing group unless
# the frame was received whole (STX, ADCO/ADSC first, nothing rejected, ETX) and got
# past the place where that group would be: overload=False on a historic frame with
# PAPP and no ADPS, a standard frame single-phase once STGE came without any phase 2/3
# label. A frame cut by a lost or inserted STX/ETX never counts as whole.
#
# Memory: the frame lives in the reader's fixed buffer; value strings are kept from one
# frame to the next and reused while the meter repeats them, so a steady stream
# allocates little more than the reading itself. Readings must be treated as
# read-only: unchanged values (and the "stge" dict) are shared between readings.
import array

# tic_build first: the largest module is compiled while the heap is emptiest (matters
# when running from source in a small heap, e.g. tools.decode on the unix port)
from firmware.reading import tic_build as _b
from firmware.frame import tic as _f
from firmware.reading import tic_labels as L

from firmware.reading import tic_values as V
from firmware.reading.tic_values import decode_stge  # noqa: F401 (public)

_MODES = {"auto": _f.MODE_AUTO, "historic": _f.MODE_HIST, "standard": _f.MODE_STD,
          "tic": _f.MODE_AUTO, "tic-historic": _f.MODE_HIST, "tic-standard": _f.MODE_STD}


class TicDecoder(_f.TicFramer):
    # mode: "auto" | "historic" | "standard" (also accepts "tic", "tic-historic",
    # "tic-standard"). fields: True keeps every valid group in reading["fields"];
    # False keeps none ("fields" is None: the firmware reads only typed keys such as
    # "dst" and "ejp_notice"), which saves RAM on the ESP8266.
    # frame_size / max_groups: buffer for the groups of one frame; by default 1600 B /
    # 96 groups (three-phase standard frames), 512 B / 40 groups in historic mode
    # (frames of ~170..330 bytes, 11..23 groups).
    def __init__(self, mode="auto", fields=True, frame_size=None, max_groups=None):
        if mode not in _MODES:
            raise ValueError("unknown TIC mode " + str(mode))
        hist = _MODES[mode] == _f.MODE_HIST
        if frame_size is None:
            frame_size = 512 if hist else 1600
        if max_groups is None:
            max_groups = 40 if hist else 96
        n = L.COUNT
        self.keep_fields = fields
        self._seen = bytearray(n)
        self._gen = 0
        self._wantmark = bytearray(n)
        self._nwant = 0
        self._left = 0
        self._raw = [None] * n    # last raw value bytes per label (also text candidates)
        self._str = [None] * n    # its str, made on first use
        self._ival = array.array("l", [0] * n)   # value of fixed-length digit fields
        self._names = [None] * n
        self._stge_src = None
        self._stge = None
        self._period_src = None
        self._period = None
        self._ts = bytearray(b"2000-00-00T00:00:00")
        self._last_cur = None
        self._last_volt = None
        self._last_regs = None
        self._ge = 0
        self._tri = False
        # 1 or 3 once known (a whole frame without phase 2/3 labels, or any such label);
        # the app may persist and restore it
        self.phases = None
        _f.TicFramer.__init__(self, _MODES[mode], frame_size, max_groups)
        self._mv = memoryview(self.buf)

    # -- early stop --------------------------------------------------------------------
    def want(self, labels):
        # feed() returns a reading (reading["partial"] = True) as soon as all these
        # labels arrived valid in the current frame, then skips the rest of that frame.
        # want(None) or want(()) turns it off. Unknown labels raise ValueError.
        m = self._wantmark
        for i in range(len(m)):
            m[i] = 0
        n = 0
        for lb in labels or ():
            e = L.lookup(lb)
            if e < 0:
                raise ValueError("unknown TIC label " + str(lb))
            if not m[e]:
                m[e] = 1
                n += 1
        self._nwant = n
        self._left = n

    # -- framer hooks ------------------------------------------------------------------
    def _begin(self):
        g = self._gen + 1
        if g > 255:
            s = self._seen
            for i in range(len(s)):
                s[i] = 0
            g = 1
        self._gen = g
        self._left = self._nwant
        self._tri = False

    def _group(self, a, p1, p2, ve, std):
        buf = self.buf
        e = L.find(buf, a, p1)
        if e < 0:
            return _f.G_LABEL
        at = L.ATTRS
        k = 7 * e
        if at[k] != (L.M_STD if std else L.M_HIST):
            return _f.G_MODE
        hd = p2 != p1
        if hd != (at[k + 1] == 1):
            return _f.G_VALUE
        if hd and not V.horodate_ok(buf, p1 + 1, p2):
            return _f.G_VALUE
        ok = V.value_ok(at[k + 2], buf, p2 + 1, ve, at[k + 3], at[k + 4])
        if not ok:
            return _f.G_VALUE
        if self._seen[e] == self._gen:
            return _f.G_DUP
        if ok == 2 and not self._same(e, p1 + 1, ve):
            # free text seen for the first time (or changed): remember, take it when
            # the next frame repeats it
            self._raw[e] = bytes(buf[p1 + 1:ve])
            self._str[e] = None
            return _f.G_PENDING
        self._seen[e] = self._gen
        self._ge = e
        ph = at[k + 6]
        if ph >= 2 or at[k + 5] == L.R_TRI:
            self._tri = True
        if self._wantmark[e]:
            self._left -= 1
            if self._left == 0:
                return _f.G_STOP
        return _f.G_KEEP

    def _same(self, e, a, b):
        r = self._raw[e]
        if r is None or len(r) != b - a:
            return False
        buf = self.buf
        for i in range(b - a):
            if r[i] != buf[a + i]:
                return False
        return True

    def _text(self, e, a, b):
        # str of buf[a:b], reused from the last frame when the value is the same
        k = 7 * e
        at = L.ATTRS
        if at[k + 2] == L.T_DIG and at[k + 1] == 0 and at[k + 3] == at[k + 4] <= 9:
            # fixed-length digits: the number itself tells whether the text changed, so
            # no copy of the bytes is kept (small int, no allocation)
            v = V.int_of(self.buf, a, b)
            s = self._str[e]
            if s is None or self._ival[e] != v:
                self._ival[e] = v
                s = self._str[e] = str(self._mv[a:b], "ascii")
            return s
        if self._same(e, a, b):
            s = self._str[e]
            if s is None:
                s = self._str[e] = self._raw[e].decode()
            return s
        r = self._raw[e] = bytes(self._mv[a:b])
        s = self._str[e] = r.decode()
        return s

    def _name(self, e):
        s = self._names[e]
        if s is None:
            s = self._names[e] = L.name_bytes(e).decode()
        return s

    def _end(self, how):
        if self.ng == 0:
            return
        r = self._build(how)
        self.readings += 1
        if self._out is None:
            self._out = [r]
        else:
            self._out.append(r)

    def _build(self, how):
        return _b.build(self, how)
