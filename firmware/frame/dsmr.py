# DSMR P1 telegram framer: cuts a byte stream into telegrams without ever growing
# beyond one preallocated buffer.
#
# Wire format (DSMR 5.0.2 P1 companion standard section 6.2): "/" + identification
# line, data lines "OBIS(value)...", then "!" and, from DSMR 4.0 on, a CRC-16 in 4
# hex digits over every byte from "/" through "!" (CRC-16/ARC: poly 0x8005
# reflected = 0xA001, init 0). DSMR 2.2/3.0 end with "!" alone. One real meter
# (NWA Warmtelink) prints the CRC without zero padding, so 1..4 digits are read.
# Luxembourg Smarty meters wrap the whole telegram in a binary DLMS
# general-glo-ciphering frame (0xDB 0x08 <system title> 0x82 <len16> ...): the
# framer recognises that header and cuts the frame by its length field.
#
# Framing rules (why):
# - "/" and "!" inside parentheses are data: a DSMR 2.2/3 plain-text message
#   (0-0:96.13.0) may contain them. Parenthesis depth is counted per line, since
#   values never span lines, so a lost ")" cannot swallow the telegram end.
# - Any other "/" restarts the frame: the meter was unplugged or bytes were lost,
#   and the overflow captures show new headers glued to a cut line.
# - A telegram longer than the buffer is dropped and counted ("oversize"); the
#   framer resynchronises on the next "/".
# - "!" without CRC is only a telegram end when it starts a line and a line end
#   follows (DSMR 2.2/3); otherwise a "!" that replaced or joined a data byte
#   would turn a truncated telegram into an apparently complete one.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

import sys

IDLE = const(0)
TEXT = const(1)
CRC = const(2)
ENC = const(3)

# Frame kinds handed to on_frame(kind, end, crc_given)
K_CRC_OK = const(1)       # buf[0:end] is "/".."!", CRC present and valid
K_CRC_BAD = const(2)      # CRC present, mismatch (decoder may still parse it when CRC checks are off)
K_NOCRC = const(3)        # DSMR 2.2/3 "!" alone
K_UNTERMINATED = const(4) # no "!" at all, ended by flush() after complete lines
K_ENC = const(5)          # buf[0:end] is a general-glo-ciphering frame

ENC_HDR = const(13)       # DB 08 <systitle 8> 82 <len 2>

_SLASH = const(0x2F)
_BANG = const(0x21)
_LF = const(0x0A)
_CR = const(0x0D)

# ---------------------------------------------------------------- CRC-16/ARC
import array

# 512-byte table (an array, not a list of 256 int objects: ESP8266 heap)
_T8 = array.array("H", bytes(512))
for _i in range(256):
    _c = _i
    for _k in range(8):
        _c = (_c >> 1) ^ 0xA001 if _c & 1 else _c >> 1
    _T8[_i] = _c
del _i, _c, _k

_crc_fast = None

# CPython: memoryview.cast("H") lets the loop eat two bytes per lookup: the CRC
# state is 16 bits, so state ^ little-endian word indexes a 65536-entry table
# (an array("H"): 128 KB, built on first use; host only). MicroPython has no
# cast and uses the viper loop below.
_T16 = None
try:
    if sys.byteorder == "little":
        memoryview(b"ab").cast("H")

        def _crc_fast(data, start, end, crc):
            global _T16
            t = _T16
            if t is None:
                t8 = _T8
                ta = [(t8[i] >> 8) ^ t8[t8[i] & 0xFF] for i in range(256)]
                # by linearity: low byte through two zero bytes ^ high byte through one
                t = _T16 = array.array("H", [ta[w & 0xFF] ^ t8[w >> 8] for w in range(65536)])
            if (end - start) & 1:
                end -= 1
                last = data[end]
            else:
                last = -1
            for w in memoryview(data)[start:end].cast("H"):
                crc = t[crc ^ w]
            if last >= 0:
                crc = (crc >> 8) ^ _T8[(crc ^ last) & 0xFF]
            return crc
except (AttributeError, TypeError, ValueError, NameError):
    _crc_fast = None

_crc_viper = None
if _crc_fast is None:
    try:
        from firmware import native as _nat   # machine code, guarded (firmware/native.py)
        _TA = _T8

        def _crc_viper(data, start, end, crc):
            return _nat.crc16_arc(data, start, end, crc, _TA)

        _crc_viper(b"1", 0, 1, 0)
    except Exception:
        _crc_viper = None


def crc16(data, start=0, end=None, crc=0):
    # CRC-16/ARC of data[start:end]; chainable through crc.
    if end is None:
        end = len(data)
    if _crc_fast is not None:
        return _crc_fast(data, start, end, crc)
    if _crc_viper is not None:
        return _crc_viper(data, start, end, crc)
    t = _T8
    for i in range(start, end):
        crc = (crc >> 8) ^ t[(crc ^ data[i]) & 0xFF]
    return crc


def _hexval(b):
    if 48 <= b <= 57:
        return b - 48
    if 65 <= b <= 70:
        return b - 55
    if 97 <= b <= 102:
        return b - 87
    return -1


# ---------------------------------------------------------------- framer
# Stream reader: memory does not depend on the telegram's length. Text telegrams
# go through one bounded line buffer: each line is CRC'd as it completes and handed
# to the sink, which keeps its values pending until the CRC after "!" decides
# (sink._end) or the telegram is cut (sink._abort). A line longer than the buffer
# (a Fluvius 0-0:96.13.0 text message may be 1024 characters = 2048 hex digits,
# fluvius-p1-s1-user-ports.md s.4.5.2) is handed over truncated (flag set) and
# the rest of it is CRC'd and skipped, so the telegram still checks. Encrypted
# Smarty frames are authenticated as a whole (AES-GCM tag at the end), so they
# are copied into a frame buffer of ENC_MAX bytes, allocated only when a key is
# configured; without a key the frame is skipped by its length field.
LINE_LEN = const(1024)    # every line of a corpus telegram and a 13-month Fluvius
                          # 0-0:98.1.0 history (~600 chars) fits; only text does not
ENC_MAX = const(2048)     # Smarty frame bound (the spec's example frame is 1515 B)
MAX_LINES = const(128)    # a telegram has < 60 lines; an endless one is cut here
LONG = const(5)           # inside the tail of a line longer than the buffer
ESKIP = const(6)          # skipping an encrypted frame nobody can decrypt


class DsmrFramer:
    # feed(data) / flush() call back into sink:
    #   sink._block(buf, a, b, first)            complete lines buf[a:b] ("\n" ends
    #                                            each, the last may lack it; first:
    #                                            the identification line leads)
    #   sink._line(buf, a, b, first, True)       the head of an overlong line
    #   sink._end(kind, crc_given)               the telegram ended (K_CRC_OK, ...)
    #   sink._abort()                            the telegram was cut: drop its lines
    #   sink._enc(ebuf, end)                     an encrypted frame ebuf[0:end]
    #                                            (ebuf None: no frame buffer)
    # Counters: frames (every frame start that ended, good or bad) and errors
    # (kind -> count).

    def __init__(self, sink=None, line_len=LINE_LEN, enc_len=0):
        if line_len < 64:
            line_len = 64
        # a line of up to line_len characters fits whole with its CR LF
        self.max_len = line_len
        self.size = line_len + 2
        self.buf = bytearray(self.size)
        self.mv = memoryview(self.buf)
        self.ebuf = bytearray(enc_len) if enc_len else None
        self.sink = sink
        self.errors = {}
        self.frames = 0
        self.reset()

    def reset(self):
        self.n = 0
        self.p0 = 0        # start of unprocessed bytes (start of the current line)
        self.state = IDLE
        self.scan = 0      # where the search for line end / "!" / "/" resumes
        self.crc = 0       # CRC of the telegram bytes before buf[p0]
        self.first = False
        self.lines = 0
        self.depth = 0     # LONG: parenthesis depth at the start of the buffer
        self.text = False  # LONG: the long line is a text message
        self.bang_ls = False
        self.need = 0
        self.got = 0
        self.junk = False

    def _err(self, kind):
        e = self.errors
        e[kind] = e.get(kind, 0) + 1

    def feed(self, data):
        L = len(data)
        pos = 0
        src = memoryview(data) if not isinstance(data, memoryview) else data
        mv = self.mv
        while pos < L:
            p0 = self.p0
            n = self.n
            if p0:
                # keep the unprocessed bytes at the front (at most one partial line)
                if p0 < n:
                    mv[0:n - p0] = mv[p0:n]
                n -= p0
                self.scan -= p0
                if self.scan < 0:
                    self.scan = 0
                self.p0 = 0
                self.n = n
            k = self.size - n
            if k <= 0:
                # cannot happen (_process always frees a full buffer); never spin
                self._cut("oversize")
                self.reset()
                continue
            if k > L - pos:
                k = L - pos
            mv[n:n + k] = src[pos:pos + k]
            self.n = n + k
            pos += k
            self._process(False)

    def flush(self):
        # End of input (end of file, or a silent line for longer than a telegram
        # interval): a pending "!" without CRC digits, or a DSMR 2.2 telegram that
        # never sent "!", is complete now.
        st = self.state
        if st == CRC:
            self._finish_crc(True)
        elif st == TEXT or st == LONG:
            if st == TEXT and self.p0 >= self.n:
                self._emit(K_UNTERMINATED, -1)
            else:
                self._cut()
            self.n = self.p0 = 0
            self.state = IDLE
        elif st == ENC or st == ESKIP:
            self._cut()
            self.n = self.p0 = 0
            self.state = IDLE
        self._process(True)

    def _junk(self, a, b):
        # bytes between telegrams: CR/LF and idle-line 0x00/0xFF are normal, anything
        # else is counted once per run of junk
        buf = self.buf
        k = a
        while k < b and buf[k] in (_CR, _LF, 0, 0xFF):
            k += 1
        if k < b and not self.junk:
            self.junk = True
            self._err("garbage")

    def _emit(self, kind, crc):
        self.frames += 1
        if self.sink is not None:
            self.sink._end(kind, crc)

    def _cut(self, why="incomplete"):
        # the telegram in progress ends without its end: its lines are dropped
        self.frames += 1
        self._err(why)
        if self.sink is not None:
            self.sink._abort()

    def _process(self, final):
        buf = self.buf
        while True:
            st = self.state
            n = self.n
            p0 = self.p0
            if st == IDLE:
                if p0 >= n:
                    self.n = self.p0 = 0
                    return
                i = buf.find(b"/", p0, n)
                j = buf.find(b"\xdb", p0, n)
                if j >= 0 and (i < 0 or j < i):
                    i = j
                if i < 0:
                    self._junk(p0, n)
                    self.n = self.p0 = 0
                    return
                if i > p0:
                    self._junk(p0, i)
                    self.p0 = p0 = i
                self.junk = False
                if buf[p0] == _SLASH:
                    self.state = TEXT
                    self.scan = p0 + 1
                    self.crc = 0
                    self.first = True
                    self.lines = 0
                    continue
                # possible encrypted frame header
                if n - p0 < ENC_HDR + 1:
                    if final:
                        self._junk(p0, n)
                        self.n = self.p0 = 0
                    return
                if buf[p0 + 1] != 0x08 or buf[p0 + 10] != 0x82 or buf[p0 + ENC_HDR] != 0x30:
                    self._junk(p0, p0 + 1)
                    self.p0 = p0 + 1
                    continue
                total = ENC_HDR + ((buf[p0 + 11] << 8) | buf[p0 + 12])
                if total < ENC_HDR + 5 + 12:
                    self.p0 = p0 + 1
                    continue
                if total > ENC_MAX:
                    # too long for any Smarty frame (or a damaged length byte): drop
                    # the tag byte and keep scanning, so a corrupted length cannot
                    # make the framer skip over the frames that follow
                    self.frames += 1
                    self._err("oversize")
                    self.junk = True
                    self.p0 = p0 + 1
                    continue
                self.need = total
                self.got = 0
                self.state = ENC if self.ebuf is not None else ESKIP
                continue
            if st == ENC or st == ESKIP:
                k = self.need - self.got
                if k > n - p0:
                    k = n - p0
                if st == ENC:
                    g = self.got
                    memoryview(self.ebuf)[g:g + k] = self.mv[p0:p0 + k]
                self.got += k
                self.p0 = p0 + k
                if self.got < self.need:
                    return
                self.frames += 1
                self.state = IDLE
                if self.sink is not None:
                    self.sink._enc(self.ebuf if st == ENC else None, self.need)
                continue
            if st == TEXT or st == LONG:
                if not self._lines(st == LONG):
                    return
                continue
            if st == CRC:
                if not self._finish_crc(final):
                    return
                continue
            return

    def _in_value(self, ls, q, long):
        # True when buf[q] lies inside a value (open parenthesis on its line) or on
        # a text-message line; "/" and "!" there are data (a DSMR 2.2/3 text may
        # hold them). Values never span lines, so a lost ")" cannot swallow the end.
        buf = self.buf
        if long:
            if self.text:
                return True
            return self.depth + buf.count(b"(", 0, q) - buf.count(b")", 0, q) > 0
        if buf.count(b"(", ls, q) > buf.count(b")", ls, q):
            return True
        return buf.startswith(b"0-0:96.13.", ls)

    def _find(self, s, e, p, long):
        # the first "!" or "/" outside a value in buf[s:e] (lines starting at p), or
        # a 0xDB byte (never in an ASCII telegram: an encrypted frame started); -1
        buf = self.buf
        q = -1
        while s < e:
            b = buf.find(b"!", s, e)
            m = b if b >= 0 else e
            c = buf.find(b"/", s, m)
            if c >= 0:
                b = c
            if b < 0:
                break
            ls = buf.rfind(b"\n", p, b)
            ls = ls + 1 if ls >= 0 else p
            if self._in_value(ls, b, long and ls == p):
                s = b + 1
                continue
            q = b
            break
        x = buf.find(b"\xdb", p, q if q >= 0 else e)
        if x >= 0:
            q = x
        return q

    def _lines(self, long):
        # Hands the complete lines of buf[p0:n] to the sink, as blocks (one call for
        # all the lines a chunk completed: the CRC and, on CPython, the text checks
        # run once per block). Returns True when the state changed (telegram end or
        # cut), False when more bytes are needed.
        buf = self.buf
        n = self.n
        p = self.p0
        if long:
            # the tail of a line longer than the buffer: CRC'd and skipped
            lf = buf.find(b"\n", p, n)
            lim = lf if lf >= 0 else n
            q = self._find(self.scan, lim, p, True)
            if q < 0:
                if lf < 0:
                    if not self.text:
                        self.depth += buf.count(b"(", p, n) - buf.count(b")", p, n)
                    self.crc = crc16(buf, p, n, self.crc)
                    self.n = self.p0 = self.scan = 0
                    return False
                self.crc = crc16(buf, p, lf + 1, self.crc)
                self.p0 = self.scan = lf + 1
                self.state = TEXT
                return True
        else:
            q = self._find(self.scan, n, p, False)
        lim = q if q >= 0 else n
        if not long:
            e = buf.rfind(b"\n", p, lim)
            if e >= 0:
                # complete lines buf[p:e+1]
                e += 1
                self.crc = crc16(buf, p, e, self.crc)
                if not self._block(p, e):
                    return True
                p = e
                self.p0 = self.scan = p
        if q >= 0:
            if buf[q] != _BANG:
                # a new header (or frame) before the end of this telegram: it was cut
                # (a DSMR 2.2 telegram without "!" only ends at flush(): a "/"
                # replacing the first byte of a line must not turn the lines before
                # it into a short telegram)
                self._cut()
                self.p0 = q
                self.state = IDLE
                return True
            if q > p and not long:
                # data before "!" on its line: the last line of the telegram
                if not self._block(p, q):
                    return True
            self.crc = crc16(buf, p, q + 1, self.crc)
            self.bang_ls = q == p and not long and not self.first
            self.p0 = q + 1
            self.state = CRC
            return True
        if p == 0 and n >= self.size:
            # a line longer than the buffer: its head goes to the sink truncated,
            # the tail is CRC'd and skipped (state LONG)
            self.text = buf.startswith(b"0-0:96.13.")
            self.depth = buf.count(b"(", 0, n) - buf.count(b")", 0, n)
            self.lines += 1
            first = self.first
            self.first = False
            if self.sink is not None:
                self.sink._line(buf, 0, n - 1 if buf[n - 1] == _CR else n, first, True)
            self.crc = crc16(buf, 0, n, self.crc)
            self.n = self.p0 = self.scan = 0
            self.state = LONG
            return True
        self.p0 = p
        self.scan = n
        return False

    def _block(self, a, b):
        # lines buf[a:b] to the sink; False when the telegram has too many (cut)
        buf = self.buf
        self.lines += buf.count(b"\n", a, b) + (buf[b - 1] != _LF)
        if self.lines > MAX_LINES:
            self._cut("oversize")
            self.state = IDLE
            self.p0 = b
            return False
        first = self.first
        self.first = False
        if self.sink is not None:
            self.sink._block(buf, a, b, first)
        return True

    def _finish_crc(self, final):
        # Reads 0..4 hex digits after "!". Returns False when more bytes are needed.
        buf = self.buf
        n = self.n
        p = self.p0
        i = p
        crc = 0
        while i < n and i - p < 4:
            h = _hexval(buf[i])
            if h < 0:
                break
            crc = (crc << 4) | h
            i += 1
        digits = i - p
        if digits < 4 and i >= n and not final:
            return False
        if digits == 0:
            # DSMR 2.2/3: "!" must start its line and be followed by a line end
            if self.bang_ls and (i >= n or buf[i] in (_CR, _LF)):
                self._emit(K_NOCRC, -1)
            else:
                self._cut("crc")
        elif self.crc == crc:
            self._emit(K_CRC_OK, crc)
        else:
            self._err("crc")
            self._emit(K_CRC_BAD, crc)
        self.p0 = i
        self.state = IDLE
        return True


def sniff(data):
    # Protocol guess for auto-detection (firmware/meter.py, tools/decode.py):
    # "smarty" for a general-glo-ciphering header, "dsmr" for a P1 identification
    # line followed by an OBIS line, else None. Looks at the bytes given only.
    n = len(data)
    i = 0
    while True:
        i = data.find(b"\xdb\x08", i)
        if i < 0 or i + 14 > n:
            break
        if data[i + 10] == 0x82 and data[i + 13] == 0x30:
            return "smarty"
        i += 1
    i = 0
    while True:
        i = data.find(b"/", i)
        if i < 0 or i + 5 > n:
            return None
        if bytes(data[i + 1:i + 4]).isalpha():
            e = data.find(b"\n", i)
            if e > 0 and e + 6 <= n:
                ln = bytes(data[e + 1:e + 40])
                if ln[:1] in (b"\r", b"\n"):
                    ln = ln.lstrip(b"\r\n")
                if len(ln) > 5 and ln[1:2] == b"-" and ln[3:4] == b":" and b"(" in ln:
                    return "dsmr"
        i += 1
