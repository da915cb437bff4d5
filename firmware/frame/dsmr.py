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
class DsmrFramer:
    # feed(data) copies bytes into the fixed buffer and calls
    # on_frame(kind, end, crc_given) for every complete frame; the frame is
    # buf[0:end] and is only valid during the call. Counters: frames (every frame
    # start that ended, good or bad) and errors (kind -> count).

    def __init__(self, max_len=2048, on_frame=None):
        if max_len < 64:
            max_len = 64
        self.max_len = max_len
        self.buf = bytearray(max_len)
        self.mv = memoryview(self.buf)
        self.on_frame = on_frame
        self.errors = {}
        self.frames = 0
        self.reset()

    def reset(self):
        self.n = 0
        self.state = IDLE
        self.scan = 0
        self.bang = 0
        self.need = 0
        self.junk = False

    def _err(self, kind):
        e = self.errors
        e[kind] = e.get(kind, 0) + 1

    def _consume(self, k):
        # drop buf[0:k], keep the rest at the front
        n = self.n
        if k >= n:
            self.n = 0
            return
        self.mv[0:n - k] = self.mv[k:n]
        self.n = n - k

    def feed(self, data):
        L = len(data)
        pos = 0
        src = memoryview(data) if not isinstance(data, memoryview) else data
        while pos < L:
            free = self.max_len - self.n
            if free == 0:
                # full and nothing could be released: the CRC digits of a telegram
                # that filled the whole buffer are still to come
                self.frames += 1
                self._err("oversize")
                self.n = 0
                self.state = IDLE
                continue
            k = L - pos
            if k > free:
                k = free
            n = self.n
            self.mv[n:n + k] = src[pos:pos + k]
            self.n = n + k
            pos += k
            self._process(False)

    def flush(self):
        # End of input (end of file, or a silent line for longer than a telegram
        # interval): a pending "!" without CRC digits, or a DSMR 2.2 telegram that
        # never sent "!", is complete now.
        if self.state == CRC:
            self._finish_crc(True)
        elif self.state == TEXT:
            n = self.n
            if n and self.buf[n - 1] == _LF:
                self._emit(K_UNTERMINATED, n, -1)
            else:
                self.frames += 1
                self._err("incomplete")
            self.n = 0
            self.state = IDLE
        self._process(True)

    def _junk(self, i):
        # bytes between telegrams: CR/LF and idle-line 0x00/0xFF are normal, anything
        # else is counted once per run of junk
        buf = self.buf
        k = 0
        while k < i and buf[k] in (_CR, _LF, 0, 0xFF):
            k += 1
        if k < i and not self.junk:
            self.junk = True
            self._err("garbage")

    def _emit(self, kind, end, crc):
        self.frames += 1
        cb = self.on_frame
        if cb is not None:
            cb(kind, end, crc)

    def _in_value(self, p):
        # True when buf[p] lies inside a value (open parenthesis on its line) or on
        # a text-message line; "/" and "!" there are data.
        buf = self.buf
        ls = buf.rfind(b"\n", 0, p) + 1
        if buf.count(b"(", ls, p) > buf.count(b")", ls, p):
            return True
        return buf.startswith(b"0-0:96.13.", ls)

    def _process(self, final):
        buf = self.buf
        while True:
            st = self.state
            n = self.n
            if st == IDLE:
                if n == 0:
                    return
                i = buf.find(b"/", 0, n)
                j = buf.find(b"\xdb", 0, n)
                if j >= 0 and (i < 0 or j < i):
                    i = j
                if i < 0:
                    self._junk(n)
                    self.n = 0
                    return
                if i > 0:
                    self._junk(i)
                    self._consume(i)
                    n = self.n
                self.junk = False
                if buf[0] == _SLASH:
                    self.state = TEXT
                    self.scan = 1
                    continue
                # possible encrypted frame header
                if n < ENC_HDR + 1:
                    if final:
                        self._junk(n)
                        self.n = 0
                    return
                if buf[1] != 0x08 or buf[10] != 0x82 or buf[ENC_HDR] != 0x30:
                    self._junk(1)
                    self._consume(1)
                    continue
                total = ENC_HDR + ((buf[11] << 8) | buf[12])
                if total < ENC_HDR + 5 + 12:
                    self._consume(1)
                    continue
                if total > self.max_len:
                    # too long for the buffer (or a damaged length byte): drop the
                    # tag byte and keep scanning, so a corrupted length cannot make
                    # the framer skip over the frames that follow
                    self.frames += 1
                    self._err("oversize")
                    self.junk = True
                    self._consume(1)
                    continue
                self.need = total
                self.state = ENC
                continue
            if st == ENC:
                if n < self.need:
                    return
                self._emit(K_ENC, self.need, -1)
                self._consume(self.need)
                self.state = IDLE
                continue
            if st == TEXT:
                p = self.scan
                while True:
                    b = buf.find(b"!", p, n)
                    lim = b if b >= 0 else n
                    s = buf.find(b"/", p, lim)
                    # 0xDB never occurs in an (ASCII) telegram: an encrypted frame
                    # started, the text telegram was cut
                    x = buf.find(b"\xdb", p, s if s >= 0 else lim)
                    if x >= 0:
                        p = x
                        break
                    q = s if s >= 0 else b
                    if q < 0:
                        p = -1
                        break
                    if self._in_value(q):
                        p = q + 1
                        continue
                    p = q
                    break
                if p < 0:
                    if n >= self.max_len:
                        # telegram does not fit: drop it, resync on the next "/"
                        self.frames += 1
                        self._err("oversize")
                        self.n = 0
                        self.state = IDLE
                        return
                    self.scan = n
                    return
                if buf[p] != _BANG:
                    # new header before the end of this telegram: the telegram was
                    # cut (a DSMR 2.2 telegram without "!" only ends at flush(): a
                    # "/" replacing the first byte of a line must not turn the lines
                    # before it into a short telegram)
                    self.frames += 1
                    self._err("incomplete")
                    self._consume(p)
                    if buf[0] == _SLASH:
                        self.scan = 1
                    else:
                        self.state = IDLE
                    continue
                self.bang = p
                self.state = CRC
                continue
            if st == CRC:
                if not self._finish_crc(final):
                    return
                continue
            return

    def _finish_crc(self, final):
        # Reads 0..4 hex digits after "!". Returns False when more bytes are needed.
        buf = self.buf
        n = self.n
        bang = self.bang
        i = bang + 1
        crc = 0
        while i < n and i - bang <= 4:
            h = _hexval(buf[i])
            if h < 0:
                break
            crc = (crc << 4) | h
            i += 1
        digits = i - bang - 1
        if digits < 4 and i >= n and not final:
            return False
        end = bang + 1
        if digits == 0:
            # DSMR 2.2/3: "!" must start its line and be followed by a line end
            ok = buf[bang - 1] == _LF and (i >= n or buf[i] in (_CR, _LF))
            if ok:
                self._emit(K_NOCRC, end, -1)
            else:
                self.frames += 1
                self._err("crc")
        else:
            if crc16(buf, 0, end) == crc:
                self._emit(K_CRC_OK, end, crc)
            else:
                self._err("crc")
                self._emit(K_CRC_BAD, end, crc)
        self._consume(i)
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
