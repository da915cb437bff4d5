# DSMR P1 decoder: bytes from the P1 port -> readings (docs/reading-schema.md).
# Covers DSMR 2.2 to 5.0.2 (NL), Belgian eMUCS-H 1.x/2.x (Fluvius), Luxembourg
# Smarty (AES-128-GCM, firmware/frame/smarty.py) and the DSMR-like meters of the
# corpus (EasyMeter Q3D, Iskra IE, Sagemcom HU/T210-D-r, Kamstrup Omnia).
#
# ---- P1 electrical notes for the app (DSMR 5.0.2 P1 companion standard s.4-5) ----
# - DSMR 4.x/5.x, eMUCS-H, Smarty: 115200 Bd 8N1. DSMR 2.2/3.0: 9600 Bd 7E1.
# - The P1 data line is open collector and logically INVERTED: ESP32 UART
#   `invert=` (UART.INV_RX); the ESP8266 UART cannot invert, the board needs the
#   hardware inverter (transistor) in front of RX.
# - Data request (RJ12 pin 2): drive it high (>= 4 V, 5 V on the meter side) only
#   while reading; release it (high-Z) otherwise: the meter then stops sending and
#   the supercap is not drained by the P1 pull-up. A telegram follows within 1 s
#   (DSMR 5) or 10 s (DSMR 2.2-4.2, Smarty).
# - The UART rx ring buffer holds what arrives while the app is not reading the
#   port (rxbuf_for / uart_args); the decoder itself streams.
from firmware.frame.dsmr import (DsmrFramer, K_CRC_OK, K_CRC_BAD, K_NOCRC,
                                 LINE_LEN, ENC_MAX)

UART = {"baud": 115200, "bits": 8, "parity": None, "stop": 1, "invert": True}
UART_DSMR22 = {"baud": 9600, "bits": 7, "parity": 0, "stop": 1, "invert": True}
TELEGRAM_INTERVAL_MS = 10000  # worst case (DSMR 2.2-4.2, Smarty); DSMR 5 sends every 1 s
# Memory: the reader streams (firmware/frame/dsmr.py): one LINE_LEN line buffer
# plus one telegram's pending values, the same on every chip and for every
# telegram length -- a Belgian telegram with a 13-month history and a 1024-char
# text (> 4 KB) costs what a 900-byte Dutch one does. The UART ring (rxbuf_for)
# only has to hold what arrives while the app is busy elsewhere; 2 KB is ~0.18 s
# at 115200 Bd.
DEFAULT_MAX_LEN = LINE_LEN
RXBUF = 2048


def rxbuf_for(max_len):
    # one whole telegram plus slack for the CRLF/next header, rounded to 256 B
    return ((max_len + 128 + 255) // 256) * 256


def uart_args(max_len=RXBUF, dsmr22=False):
    # keyword arguments for port.uart_open(**uart_args(...))
    d = dict(UART_DSMR22 if dsmr22 else UART)
    d["rxbuf"] = rxbuf_for(max_len)
    return d



try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# kinds of known OBIS objects
_E = const(1)       # active energy register (Wh)
_Q = const(2)       # reactive energy register (varh)
_P = const(3)       # active power import/export total (W)
_PP = const(4)      # per-phase active power (W)
_AVG = const(5)     # eMUCS-H 1-0:1.4.0 quarter-hour average demand (W)
_V = const(6)       # per-phase voltage
_I = const(7)       # per-phase current
_TS = const(8)      # 0-0:1.0.0 meter time
_ID = const(9)      # equipment identifier
_VER = const(10)    # P1 version
_TAR = const(11)    # tariff index
_CNT = const(12)    # plain counters (power failures, sags, swells, breaker)
_LOG = const(13)    # power failure event log
_TXT = const(14)    # text message
_PK = const(15)     # eMUCS-H 1-0:1.6.0 month peak with time
_HIST = const(16)   # eMUCS-H 0-0:98.1.0 peak history
_MT = const(17)     # M-Bus device type
_MID = const(18)    # M-Bus equipment id
_MV = const(19)     # M-Bus value with capture time (24.2.1, 24.2.3)
_M22 = const(20)    # DSMR 2.2/3 M-Bus 24.3.0 (value on the next line)
_UNK = const(21)
_THR = const(22)    # 0-0:17.0.0 actual threshold electricity: kW (DSMR 4+), A (DSMR 3)

# Known objects, keyed by the usual spelling -> kind | index << 5. Literal str
# keys are interned (qstr) in frozen firmware, so the table costs one small dict
# of ints in RAM. M-Bus objects are listed for channel 1 and matched for 0-1..0-4;
# other spellings (1-1:, .255, *255) go through _lookup().
_P_NAMES = ("active_power_w", "active_power_export_w")
_CNT_NAMES = ("breaker_state", "power_failures", "long_power_failures")
_OBJ = {
    "1-0:1.8.0": _E, "1-0:1.8.1": _E, "1-0:1.8.2": _E, "1-0:1.8.3": _E, "1-0:1.8.4": _E,
    "1-0:2.8.0": _E, "1-0:2.8.1": _E, "1-0:2.8.2": _E, "1-0:2.8.3": _E, "1-0:2.8.4": _E,
    "1-0:15.8.0": _E,
    "1-0:3.8.0": _Q, "1-0:3.8.1": _Q, "1-0:3.8.2": _Q, "1-0:4.8.0": _Q, "1-0:4.8.1": _Q,
    "1-0:4.8.2": _Q, "1-0:5.8.0": _Q, "1-0:6.8.0": _Q, "1-0:7.8.0": _Q, "1-0:8.8.0": _Q,
    "1-0:1.7.0": _P, "1-0:2.7.0": _P | 32,
    "1-0:21.7.0": _PP, "1-0:41.7.0": _PP | 32, "1-0:61.7.0": _PP | 64,
    "1-0:22.7.0": _PP | 96, "1-0:42.7.0": _PP | 128, "1-0:62.7.0": _PP | 160,
    "1-0:32.7.0": _V, "1-0:52.7.0": _V | 32, "1-0:72.7.0": _V | 64,
    "1-0:31.7.0": _I, "1-0:51.7.0": _I | 32, "1-0:71.7.0": _I | 64,
    "1-0:32.32.0": _CNT | 96, "1-0:52.32.0": _CNT | 128, "1-0:72.32.0": _CNT | 160,
    "1-0:32.36.0": _CNT | 192, "1-0:52.36.0": _CNT | 224, "1-0:72.36.0": _CNT | 256,
    "1-0:99.97.0": _LOG, "1-0:1.4.0": _AVG, "1-0:1.6.0": _PK,
    # actual threshold electricity (kW): DSMR 5.0.2 / eMUCS-H, the relay policy's limit
    "0-0:17.0.0": _THR,
    "1-3:0.2.8": _VER,
    "0-0:1.0.0": _TS,
    "0-0:96.1.1": _ID, "0-0:42.0.0": _ID | 32, "0-0:96.1.0": _ID | 64,
    "0-0:96.1.4": _VER, "0-0:96.14.0": _TAR,
    "0-0:96.3.10": _CNT, "0-0:96.7.21": _CNT | 32, "0-0:96.7.9": _CNT | 64,
    "0-0:96.13.0": _TXT, "0-0:98.1.0": _HIST,
    "0-1:24.1.0": _MT, "0-1:96.1.0": _MID, "0-1:96.1.1": _MID,
    "0-1:24.2.1": _MV, "0-1:24.2.3": _MV, "0-1:24.3.0": _M22,
    # frequent objects kept only in "fields" (listed so they skip _lookup)
    "0-0:96.13.1": _UNK, "0-0:96.1.2": _UNK, "1-0:31.4.0": _UNK,
    "1-0:51.4.0": _UNK, "1-0:71.4.0": _UNK, "1-0:3.7.0": _UNK, "1-0:4.7.0": _UNK,
    "0-1:24.4.0": _UNK, "0-1:96.3.10": _UNK, "0-1:96.1.2": _UNK, "0-0:96.13.2": _UNK,
}

_POW10 = (1, 10, 100, 1000, 10000, 100000, 1000000)
_EUNIT = {"kwh": 3, "wh": 0}
_QUNIT = {"kvarh": 3, "varh": 0}
_PUNIT = {"kw": 3, "w": 0}
# the spellings meters print (DSMR 5.0.2 s.6.4), then any case through .lower()
_UNITS = (None, {"kWh": 3, "Wh": 0}, {"kvarh": 3, "kVArh": 3, "varh": 0},
          {"kW": 3, "W": 0}, {"kW": 3, "W": 0}, {"kW": 3, "W": 0})
_LUNITS = (None, _EUNIT, _QUNIT, _PUNIT, _PUNIT, _PUNIT)
_GAS_T = (3,)
_WATER_T = (6, 7, 21, 22)
_HEAT_T = (4, 12, 13)
_HEAT_GJ = {"gj": 1.0, "mj": 0.001, "kwh": 0.0036, "mwh": 3.6}
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_HEX = "0123456789ABCDEFabcdef"

# CPython: one C call checks a whole line for bytes outside printable ASCII
_PRINTABLE = bytes(range(0x20, 0x7F))
try:
    b"a".translate(None, _PRINTABLE)
    _HAS_TRANSLATE = True
except (AttributeError, TypeError):
    _HAS_TRANSLATE = False


_PRINT_CRLF = _PRINTABLE + b"\r\n"


def _printable(s):
    if _HAS_TRANSLATE:
        return not s.translate(None, _PRINTABLE)
    for c in s:
        if c < 0x20 or c > 0x7E:
            return False
    return True


def _ascii_region(buf, a, b):
    # True when buf[a:b] holds only printable ASCII, CR and LF (DSMR 5.0.2 6.4:
    # the telegram is ASCII; a control or 8-bit byte means line noise)
    for i in range(a, b):
        c = buf[i]
        if (c < 0x20 and c != 0x0D and c != 0x0A) or c > 0x7E:
            return False
    return True


def _scaled(num, d):
    # "000576.239" with d=3 -> 576239 (decimal digits only, truncated to d
    # decimals; never through float: ESP8266 floats have 30 bits)
    i = num.find(".")
    if i < 0:
        if not num.isdigit():
            return None
        return int(num) * _POW10[d]
    ip = num[:i]
    fp = num[i + 1:]
    if not ip.isdigit() or not fp.isdigit():
        return None
    v = int(ip) * _POW10[d]
    if d:
        f = fp[:d]
        v += int(f) * _POW10[d - len(f)]
    return v


def _number(num):
    # int when the meter sends no decimals, float otherwise; None if malformed
    i = num.find(".")
    if i < 0:
        return int(num) if num.isdigit() else None
    if num[:i].isdigit() and num[i + 1:].isdigit():
        return float(num)
    return None


def _split_unit(v):
    i = v.find("*")
    if i < 0:
        return v, ""
    return v[:i], v[i + 1:].lower()


def _ts(v):
    # "YYMMDDhhmmssX" (X = S summer / W winter; DSMR 2.2 has no X; Landis+Gyr
    # E350 DSMR 4.0 prints the gas time's flag in lower case).
    # -> "20YY-MM-DDThh:mm:ss", None if not a calendar time (meters print
    # 000000000000W, 632525252525S or 700101010000W -- the Unix epoch, 1970 -- for
    # "unset"), False if malformed.
    n = len(v)
    if n == 13:
        if v[12] not in "SWsw":
            return False
        v = v[:12]
    elif n != 12:
        return False
    if not v.isdigit():
        return False
    if v[0:6] == "700101":
        return None
    mo = int(v[2:4])
    d = int(v[4:6])
    if not 1 <= mo <= 12 or not 1 <= d <= _DAYS[mo - 1] or int(v[6:8]) > 23 \
            or int(v[8:10]) > 59 or int(v[10:12]) > 59:
        return None
    if mo == 2 and d == 29 and int(v[0:2]) % 4:
        return None
    s = v
    return "20" + s[0:2] + "-" + s[2:4] + "-" + s[4:6] + "T" + s[6:8] + ":" + s[8:10] + ":" + s[10:12]


def _dst(v):
    # season flag of a DSMR time: True summer (S), False winter (W), None absent
    c = v[12:13]
    if c == "S" or c == "s":
        return True
    if c == "W" or c == "w":
        return False
    return None


def _hex_region(buf, a, b):
    # True when buf[a:b] holds hex digits only
    for i in range(a, b):
        c = buf[i]
        if not (48 <= c <= 57 or 65 <= c <= 70 or 97 <= c <= 102):
            return False
    return True


try:
    # machine code, guarded (firmware/native.py): each check tried once here, the
    # pure-Python one above kept when the native module is missing or refused
    from firmware import native as _nat

    def _ascii_region(buf, a, b):  # noqa: F811
        return _nat.ascii_ok(buf, a, b) == 1

    _ascii_region(b"ab", 0, 2)

    def _hex_region(buf, a, b):  # noqa: F811
        return _nat.hex_ok(buf, a, b) == 1

    _hex_region(b"ab", 0, 2)
except Exception:
    pass


def _is_hex(v):
    return not v.strip(_HEX)


_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _id_ok(v):
    # An equipment id is a hex-coded octet string (DSMR 5.0.2 s.6.5), or plain
    # letters and digits on meters that print it as text (EasyMeter "1ESY...").
    # Hex with one stray character in it is damage, not a text id.
    if _is_hex(v):
        return True
    if v.strip(_ALNUM):
        return False
    odd = 0
    for c in v:
        if c not in _HEX:
            odd += 1
    return odd > 1 or len(v) < 8


def _unhex_text(v):
    # COSEM octet strings are printed in hex: decode when it gives printable text
    if v and not len(v) & 1 and _is_hex(v):
        try:
            import binascii
            t = binascii.unhexlify(v)
        except Exception:
            return v
        if _printable(t):
            return t.decode()
    return v


def _obis(key):
    # "A-B:C.D.E" (+ ".255" or "*255") -> (A, B, "C.D.E") or None if malformed.
    i = key.find("-")
    j = key.find(":")
    if i != 1 or j < 3 or key[0] not in "01456789":
        return None
    a = ord(key[0]) - 48
    b = key[2:j]
    if not b.isdigit() or len(b) > 3:
        return None
    rest = key[j + 1:]
    k = rest.find("*")
    if k >= 0:
        f = rest[k + 1:]
        rest = rest[:k]
        if not f.isdigit() or len(f) > 3:
            return None
    parts = rest.split(".")
    if len(parts) == 4:
        f = parts.pop()
        if not f.isdigit() or len(f) > 3:
            return None
    if len(parts) != 3:
        return None
    for p in parts:
        if not p.isdigit() or len(p) > 3:
            return None
    return a, int(b), ".".join(parts)


def _lookup(ks):
    # -> (code, channel, register name); None when the OBIS code is malformed
    if ks[0:2] == "0-" and ks[3:4] == ":" and ks[2:3] in ("2", "3", "4"):
        code = _OBJ.get("0-1:" + ks[4:])
        if code is not None:
            return code, int(ks[2]), None
    o = _obis(ks)
    if o is None:
        return None
    a, b, cde = o
    code = None
    if a == 1:
        code = _OBJ.get("1-0:" + cde) if cde != "0.2.8" else (_VER if b == 3 else None)
    elif a == 0 and b == 0:
        code = _OBJ.get("0-0:" + cde)
    elif a == 0 and 1 <= b <= 4:
        code = _OBJ.get("0-1:" + cde)
    if code is None:
        return _UNK, 0, None
    return code, (b if a == 0 else 0), cde


# spellings outside _OBJ seen recently (EasyMeter "*255", XT211 "1-1:"), so
# those meters do not pay the OBIS parse on every line
_CACHE = {}


class _Bad(Exception):
    pass


def _phase_list(v):
    # [l1, l2, l3] with trailing absent phases dropped; None when none present
    n = 3
    while n and v[n - 1] is None:
        n -= 1
    return v[:n] if n else None


class _Telegram:
    # The values of one telegram, pending: lines are parsed one at a time as the
    # framer delivers them; finish() commits them once the CRC has decided.
    # Policy (why): the CRC-16 decides whether the bytes arrived intact. After a
    # valid CRC a line that does not parse or fails its type check is a meter quirk
    # (or a CRC collision): that line's values are dropped and counted under its
    # OBIS code in errors, the rest of the telegram is kept. Values derived from
    # several lines (energy totals, meter id) appear only when all their inputs
    # were valid. Without a CRC (DSMR 2.2/3) any bad line rejects the telegram,
    # since nothing else tells line noise from data.

    def __init__(self, country=None, keep_fields=True):
        self.country = country
        self.keep_fields = keep_fields
        self.begin(b"")

    def begin(self, header):
        self.header = header
        # identification line: "/" + 3-letter manufacturer code (IEC 62056-21 s.6.3.14)
        self.hdr_ok = len(header) >= 5 and header[0] == 0x2F and header[1:4].isalpha()
        self.regs = {}
        self.qregs = {}
        self.fields = {}
        self.r = {"protocol": "dsmr"}
        self.ph = [None] * 6
        self.volt = [None] * 3
        self.cur = [None] * 3
        self.sags = [None] * 3
        self.swells = [None] * 3
        self.ids = [None, None, None]
        self.mbus = {}
        self.pend = None            # DSMR 2.2 24.3.0 channel waiting for its value line
        self.known = 0
        self.ver = None
        self.be = False
        self.bad = None             # OBIS code (or "line") -> lines dropped
        self.kind = None            # the first bad line's reason (strict mode)
        self.bad_e = None           # names of energy registers whose line was bad
        self.bad_id = False

    def block(self, buf, a, b, first):
        # complete lines buf[a:b] (each ends in "\n", the last may not); first: the
        # identification line leads
        if first:
            e = buf.find(b"\n", a, b)
            if e < 0:
                e = b
            h = e - 1 if e > a and buf[e - 1] == 0x0D else e
            self.begin(bytes(memoryview(buf)[a:h]))
            a = e + 1
        if a >= b:
            return
        if _HAS_TRANSLATE:
            # CPython: one copy, one C-level check and split for the whole block
            body = bytes(memoryview(buf)[a:b])
            if not body.translate(None, _PRINT_CRLF):
                line = self.line
                for s in body.decode().split("\n"):
                    if s[-1:] == "\r":
                        s = s[:-1]
                    if "\r" in s:
                        self._bad_str(s)
                    else:
                        line(s)
                return
        while a < b:
            e = buf.find(b"\n", a, b)
            if e < 0:
                e = b
            h = e - 1 if e > a and buf[e - 1] == 0x0D else e
            self.line_bytes(buf, a, h)
            a = e + 1

    def _bad_str(self, s):
        # a line with a CR inside (CPython block path): counted under its OBIS code
        b = s.encode()
        self._bad_bytes(b, 0, len(b))

    def line_bytes(self, buf, a, b, trunc=False):
        # one line buf[a:b] (CR/LF removed) -> parsed into the pending values
        if a >= b:
            return              # empty line (after the header; a split's tail)
        if trunc:
            self._long(buf, a, b)
            return
        if _HAS_TRANSLATE:
            lb = bytes(memoryview(buf)[a:b])
            if lb.translate(None, _PRINTABLE):
                # DSMR 5.0.2 6.4: the telegram is printable ASCII; a control or
                # 8-bit byte means line noise
                self._bad_bytes(buf, a, b)
                return
            s = lb.decode()
        else:
            if not _ascii_region(buf, a, b):
                self._bad_bytes(buf, a, b)
                return
            s = str(memoryview(buf)[a:b], "ascii")
            if "\r" in s:
                self._bad_bytes(buf, a, b)
                return
        self.line(s)

    def _long(self, buf, a, b):
        # The head of a line longer than the line buffer. A text message keeps what
        # the head holds, decoded straight from the buffer (no copy of the line) and
        # flagged; any other object cannot be cut and is dropped (counted).
        self.pend = None
        i = buf.find(b"(", a, b)
        ent = None
        ks = None
        if i > a and _ascii_region(buf, a, i):
            ks = str(memoryview(buf)[a:i], "ascii")
            c = _OBJ.get(ks)
            ent = (c, 0, None) if c is not None else _lookup(ks)
        if ent is None:
            self._bad(None, "line", 0, 0)
            return
        if ent[0] & 31 != _TXT:
            self._bad(ks, "line", ent[0], ent[1], ent[2])
            return
        e = b - ((b - i - 1) & 1)
        t = None
        if e > i + 1 and _hex_region(buf, i + 1, e):
            import binascii
            h = binascii.unhexlify(memoryview(buf)[i + 1:e])
            if _printable(h):
                t = h.decode()
        if t is None:
            # not hex-coded printable text (DSMR 2.2 prints plain text): the head as is
            if not _ascii_region(buf, i + 1, b):
                self._bad(ks, "line", ent[0], ent[1], ent[2])
                return
            t = str(memoryview(buf)[i + 1:b], "ascii")
        self.r["text_message"] = t
        self.r["text_message_truncated"] = True

    def _bad_bytes(self, buf, a, b):
        # a line with a byte outside printable ASCII: counted under its OBIS code
        # when the code itself is readable
        i = buf.find(b"(", a, b)
        ks = None
        ent = None
        if i > a and _ascii_region(buf, a, i):
            ks = str(memoryview(buf)[a:i], "ascii")
            if "\r" not in ks:
                c = _OBJ.get(ks)
                ent = (c, 0, None) if c is not None else _lookup(ks)
        if ent is None:
            self._bad(None, "line", 0, 0)
        else:
            self._bad(ks, "line", ent[0], ent[1], ent[2])

    def _bad(self, ks, why, code, chn, name=None):
        if self.kind is None:
            self.kind = why
        self.pend = None
        key = ks if ks and code else "line"
        b = self.bad
        if b is None:
            b = self.bad = {}
        if key not in b and len(b) >= 16:
            key = "line"        # bounded: a flood of odd codes must not grow the heap
        b[key] = b.get(key, 0) + 1
        kind = code & 31
        if kind == _E:
            if self.bad_e is None:
                self.bad_e = []
            self.bad_e.append(name or ks[4:])
        elif kind == _ID:
            self.bad_id = True
        elif kind >= _MT and kind <= _M22:
            ch = self.mbus.get(chn or 1)
            if ch is not None:
                ch["_bad"] = True
            else:
                self.mbus[chn or 1] = {"channel": chn or 1, "type": None, "id": None,
                                       "timestamp": None, "value": None, "milli": None,
                                       "unit": None, "_bad": True}

    def line(self, s):
        # one line as str: "OBIS(value)(value)..." or "(value)" (DSMR 2.2 M-Bus)
        i = s.find("(")
        if i < 0:
            if s:
                self._bad(None, "line", 0, 0)
            return
        ks = s[:i]
        code = _OBJ.get(ks)
        chn = 0
        name = None
        if code is None and ks:
            ent = _CACHE.get(ks)
            if ent is None:
                ent = _lookup(ks)
                if ent is None:
                    self._bad(None, "line", 0, 0)
                    return
                if len(_CACHE) >= 40:
                    _CACHE.clear()   # bounded: garbage must not grow the heap
                _CACHE[ks] = ent
            code, chn, name = ent
        # one try for the whole line (a method call per line costs as much as the
        # parse on CPython)
        try:
            if s[-1:] != ")":
                raise _Bad("line")
            inner = s[i + 1:-1]
            groups = None
            if "(" in inner or ")" in inner:
                groups = inner.split(")(")
                for g in groups:
                    if "(" in g or ")" in g:
                        raise _Bad("line")
            r = self.r
            if code is None:
                # DSMR 2.2/3: M-Bus value on its own line after 0-n:24.3.0
                pend = self.pend
                self.pend = None
                if pend is None or groups is not None:
                    raise _Bad("line")
                ch = self.mbus[pend]
                if ch.get("_u") is not None and inner:
                    x = _number(inner)
                    if x is None:
                        ch["_bad"] = True
                        raise _Bad("value")
                    ch["value"] = x
                    ch["milli"] = _scaled(inner, 3)
                    ch["unit"] = ch["_u"]
                return
            self.pend = None
            kind = code & 31
            if kind == _UNK:
                if self.keep_fields is True or (self.keep_fields and ks in self.keep_fields):
                    self.fields[ks] = inner if groups is None else groups
                return
            arg = code >> 5
            if kind <= _AVG:
                # value*unit -> integer Wh / varh / W
                i = inner.find("*")
                if groups is not None or i < 0:
                    raise _Bad("unit")
                u = inner[i + 1:]
                d = _UNITS[kind].get(u)
                if d is None:
                    d = _LUNITS[kind].get(u.lower())
                if d is None:
                    raise _Bad("unit")
                # inline _scaled(): this is the hot path of every telegram
                j = inner.find(".", 0, i)
                if j < 0:
                    num = inner[:i]
                    if not num.isdigit():
                        raise _Bad("value")
                    x = int(num) * _POW10[d]
                else:
                    num = inner[:j]
                    fp = inner[j + 1:i]
                    if not num.isdigit() or not fp.isdigit():
                        raise _Bad("value")
                    x = int(num) * _POW10[d]
                    if d:
                        fp = fp[:d]
                        x += int(fp) * _POW10[d - len(fp)]
                if kind == _E:
                    self.regs[name or ks[4:]] = x
                elif kind == _Q:
                    self.qregs[name or ks[4:]] = x
                elif kind == _P:
                    r[_P_NAMES[arg]] = x
                elif kind == _PP:
                    self.ph[arg] = x
                else:
                    r["average_demand_w"] = x
            elif kind <= _I:
                if groups is not None:
                    raise _Bad("line")
                num, unit = _split_unit(inner)
                if unit != ("v" if kind == _V else "a"):
                    raise _Bad("unit")
                x = _number(num)
                if x is None:
                    raise _Bad("value")
                (self.volt if kind == _V else self.cur)[arg] = x
            elif kind == _THR:
                num, unit = _split_unit(inner)
                if groups is not None:
                    raise _Bad("line")
                if unit == "a":
                    x = _number(num)
                    if x is None:
                        raise _Bad("value")
                    r["threshold_a"] = x
                elif unit == "kva" or unit == "va":
                    # Smarty (Luxembourg): the limiter threshold is apparent power
                    x = _scaled(num, 3 if unit == "kva" else 0)
                    if x is None:
                        raise _Bad("value")
                    r["threshold_va"] = x
                elif unit:
                    d = _PUNIT.get(unit)
                    x = _scaled(num, d) if d is not None else None
                    if x is None:
                        raise _Bad("unit" if d is None else "value")
                    r["threshold_w"] = x
                # no unit (a real Smarty prints "(77.376)"): no typed value, raw only
            elif kind == _TS:
                if groups is not None:
                    raise _Bad("line")
                t = _ts(inner)
                if t is False:
                    raise _Bad("value")
                r["timestamp"] = t
                # the season flag the meter's clock runs on (DSMR 5.0.2 s.6.4: S/W)
                r["dst"] = _dst(inner) if t else None
            elif kind == _TAR or kind == _CNT or kind == _VER:
                if groups is not None or not inner.isdigit():
                    raise _Bad("value")
                if kind == _TAR:
                    r["tariff_index"] = int(inner)
                elif kind == _VER:
                    self.ver = inner
                    if ks[0] == "0":
                        self.be = True      # 0-0:96.1.4 exists only in eMUCS-H (Belgium)
                elif arg < 3:
                    r[_CNT_NAMES[arg]] = int(inner)
                elif arg < 6:
                    self.sags[arg - 3] = int(inner)
                else:
                    self.swells[arg - 6] = int(inner)
            elif kind == _ID:
                if groups is not None:
                    raise _Bad("line")
                # hex-coded octet string; some meters print plain text: kept as it is
                if not _id_ok(inner):
                    raise _Bad("value")
                self.ids[arg] = inner
            elif kind == _TXT:
                if groups is not None:
                    raise _Bad("line")
                r["text_message"] = _unhex_text(inner)
            elif kind == _LOG:
                # count, 0-0:96.7.19, then (end time, duration*s) pairs; an empty "()"
                # is an empty log (Iskra AM550)
                if groups is None:
                    if inner == "":
                        r["power_failure_log"] = []
                        self.known += 1
                        return
                    groups = [inner]
                if not groups[0].isdigit() or len(groups) != 2 + 2 * int(groups[0]):
                    raise _Bad("value")
                log = []
                for k in range(2, len(groups), 2):
                    t = _ts(groups[k])
                    num, unit = _split_unit(groups[k + 1])
                    if t is False or unit not in ("", "s") or not num.isdigit():
                        raise _Bad("value")
                    log.append([t, int(num)])
                r["power_failure_log"] = log
            elif kind == _PK:
                if groups is None or len(groups) != 2:
                    raise _Bad("line")
                t = _ts(groups[0])
                num, unit = _split_unit(groups[1])
                if unit not in _PUNIT:
                    raise _Bad("unit")
                x = _scaled(num, _PUNIT[unit])
                if t is False or x is None:
                    raise _Bad("value")
                r["peak_demand_w"] = x
                r["peak_demand_time"] = t
            elif kind == _HIST:
                # eMUCS-H: (n)(1-0:1.6.0)(1-0:1.6.0) then n x (month start)(peak time)(peak*kW)
                if groups is not None and len(groups) >= 3 and groups[1] == "1-0:1.6.0" \
                        and groups[0].isdigit():
                    if len(groups) != 3 + 3 * int(groups[0]):
                        raise _Bad("value")
                    hist = []
                    for k in range(3, len(groups), 3):
                        t0 = _ts(groups[k])
                        t1 = _ts(groups[k + 1])
                        num, unit = _split_unit(groups[k + 2])
                        if unit not in _PUNIT:
                            raise _Bad("unit")
                        x = _scaled(num, _PUNIT[unit])
                        if t0 is False or t1 is False or x is None:
                            raise _Bad("value")
                        hist.append([t0, t1, x])
                    r["peak_history"] = hist
                    self.be = True
            else:
                # M-Bus channel objects (the _OBJ spelling is channel 1)
                if not chn:
                    chn = 1
                mbus = self.mbus
                ch = mbus.get(chn)
                if ch is None:
                    ch = {"channel": chn, "type": None, "id": None, "timestamp": None,
                          "value": None, "milli": None, "unit": None}
                    mbus[chn] = ch
                if kind == _MT:
                    if groups is not None or (inner and not inner.isdigit()):
                        raise _Bad("value")
                    ch["type"] = int(inner) if inner else None
                elif kind == _MID:
                    if groups is not None:
                        raise _Bad("line")
                    if not _id_ok(inner):
                        raise _Bad("value")
                    ch["id"] = _unhex_text(inner) if inner else None
                elif kind == _MV:
                    if groups is None or len(groups) != 2:
                        raise _Bad("line")
                    t = _ts(groups[0])
                    if t is False:
                        raise _Bad("value")
                    num, unit = _split_unit(groups[1])
                    x = _number(num)
                    if x is None:
                        raise _Bad("value")
                    ch["timestamp"] = t
                    if unit:
                        ch["value"] = x
                        ch["milli"] = _scaled(num, 3)
                        ch["unit"] = groups[1][len(num) + 1:]
                else:
                    # 24.3.0: (time)(interval)(..)(..)(0-n:24.2.1)(unit), value next line
                    if groups is None or len(groups) != 6:
                        raise _Bad("line")
                    t = _ts(groups[0])
                    if t is False:
                        raise _Bad("value")
                    ch["timestamp"] = t
                    ch["_u"] = groups[5] if groups[5] else None
                    self.pend = chn
            self.known += 1
            if self.keep_fields is True or (self.keep_fields and ks in self.keep_fields):
                self.fields[ks] = inner if groups is None else groups
        except _Bad as x:
            self._bad(ks, x.args[0], code or 0, chn, name)

    def finish(self, strict, errors):
        # -> the reading, or None (reason counted in errors). strict: no CRC vouched
        # for the bytes, so any bad line rejects the telegram.
        if not self.hdr_ok:
            errors["header"] = errors.get("header", 0) + 1
            return None
        if self.bad is not None:
            if strict:
                k = self.kind
                errors[k] = errors.get(k, 0) + 1
                return None
            for k in self.bad:
                errors[k] = errors.get(k, 0) + self.bad[k]
        if not self.known:
            errors["empty"] = errors.get("empty", 0) + 1
            return None
        r = self.r
        regs = self.regs
        # identity: only when every id line was valid (else another object's id
        # could stand in for the one that failed)
        ids = self.ids
        mid = ids[0] if ids[0] is not None else ids[1] if ids[1] is not None else ids[2]
        r["meter_id"] = _unhex_text(mid) if mid and not self.bad_id else None
        r["dsmr_version"] = self.ver
        if "timestamp" not in r:
            r["timestamp"] = None
            r["dst"] = None
        # energy totals: the meter's total register, else the sum of the tariff
        # registers, only when tariffs 1 and 2 are both present and no register
        # line of that direction was dropped
        bad_e = self.bad_e
        for d, key in (("1", "energy_import_wh"), ("2", "energy_export_wh")):
            tot = regs.get(d + ".8.0")
            if tot is None and (d + ".8.1") in regs and (d + ".8.2") in regs:
                tot = 0
                for t in "1234":
                    tot += regs.get(d + ".8." + t, 0)
                if bad_e is not None:
                    for nm in bad_e:
                        if nm[0:1] == d and nm[1:4] == ".8.":
                            tot = None
            r[key] = tot
        r["registers"] = regs
        if self.qregs:
            r["reactive_registers"] = self.qregs
        ph = self.ph
        r["active_power_phase_w"] = _phase_list(ph[0:3])
        r["active_power_export_phase_w"] = _phase_list(ph[3:6])
        r["voltage_v"] = _phase_list(self.volt)
        r["current_a"] = _phase_list(self.cur)
        sg = _phase_list(self.sags)
        if sg is not None:
            r["voltage_sags"] = sg
        sw = _phase_list(self.swells)
        if sw is not None:
            r["voltage_swells"] = sw
        # tariff numbering: NL 1 = low/off-peak, 2 = normal; Belgium (eMUCS-H) 1 = day
        # (peak), 2 = night (off-peak) -- same index, opposite meaning
        country = self.country
        if country is None:
            country = "be" if self.be or self.header[1:4] == b"FLU" else "nl"
        ti = r.get("tariff_index")
        if ti in (1, 2):
            r["tariff_period"] = ("offpeak", "peak")[ti - 1] if country != "be" else ("peak", "offpeak")[ti - 1]
        # M-Bus: units checked against the device type (EN 13757-3 device types)
        chans = []
        mbus = self.mbus
        for n in sorted(mbus):
            ch = mbus[n]
            if "_u" in ch:
                del ch["_u"]
            bad = ch.pop("_bad", False)
            chans.append(ch)
            t = ch["type"]
            if ch["value"] is None or bad:
                # a dropped line of this channel (type, value): nothing derived
                continue
            u = ch["unit"].lower()
            if t in _GAS_T or t in _WATER_T:
                if u != "m3":
                    k = "0-%d:24.2.1" % n
                    errors[k] = errors.get(k, 0) + 1
                    if strict:
                        return None
                    ch["value"] = None
                    ch["milli"] = None
                    continue
                k = "gas" if t in _GAS_T else "water"
                if (k + "_m3") not in r:
                    r[k + "_m3"] = ch["value"]
                    # exact integer litres for storage (ESP8266 floats have 30 bits)
                    r[k + "_l"] = ch["milli"]
                    r[k + "_timestamp"] = ch["timestamp"]
            elif t in _HEAT_T:
                f = _HEAT_GJ.get(u)
                if f is None:
                    k = "0-%d:24.2.1" % n
                    errors[k] = errors.get(k, 0) + 1
                    if strict:
                        return None
                    ch["value"] = None
                    ch["milli"] = None
                    continue
                if "heat_gj" not in r:
                    r["heat_gj"] = ch["value"] * f if f != 1.0 else ch["value"]
                    r["heat_timestamp"] = ch["timestamp"]
        if chans:
            r["mbus"] = chans
        if "gas_m3" not in r:
            r["gas_m3"] = None
        if self.keep_fields:
            r["fields"] = self.fields
        return r


def parse_telegram(buf, start, end, strict=True, errors=None, country=None, keep_fields=True):
    # Decode a whole telegram held in buf[start:end] ("/" .. last line, without "!"):
    # the same line parser as the stream reader, for telegrams already in memory
    # (decrypted Smarty plaintext, tests). strict: any bad line rejects the
    # telegram (no CRC vouched for it); otherwise bad lines are dropped and counted.
    # Returns the reading dict or None; errors (dict) gets the reason counted.
    if errors is None:
        errors = {}
    t = _Telegram(country, keep_fields)
    _lines_into(t, buf, start, end)
    return t.finish(strict, errors)


def _lines_into(t, buf, pos, end):
    if end > pos:
        t.block(buf, pos, end, True)
    else:
        t.begin(b"")


class DsmrDecoder:
    # feed(data) -> list of readings completed by this chunk. Counters: frames
    # (every telegram/frame seen, good or bad), readings, errors (kind -> count:
    # "crc", "garbage", "oversize", "incomplete", "header", "line", "value",
    # "unit", "empty", "decrypt", "encrypted_no_key", "no_aes", and the OBIS code
    # of every line dropped from a CRC-valid telegram).
    #
    # Memory: the framer's line buffer (line_len, LINE_LEN by default) and the
    # pending values of one telegram, whatever the telegram's length; a Smarty
    # frame buffer (ENC_MAX) only when a key is given.
    #
    # check_crc=False is a diagnostic mode (spec examples, upstream-edited
    # telegrams): CRC mismatches do not drop the telegram and bad lines are
    # dropped alone even without a CRC.
    # Readings carry "crc": True (valid), False (only in diagnostic mode, or when a
    # GCM-authenticated Smarty plaintext has a wrong inner CRC), None (DSMR 2.2/3).
    # keep_fields=False leaves out the raw "fields" dict (about half of a
    # reading's RAM; the firmware reads only typed keys); a tuple of OBIS codes
    # keeps only those raw lines.
    def __init__(self, key=None, aak=None, max_len=LINE_LEN, check_crc=True, country=None,
                 keep_fields=True):
        self.keep_fields = keep_fields
        self.readings = 0
        self.check_crc = check_crc
        self.country = country
        self.last_header = None
        self._out = None
        self.gcm = None
        self._crc_seen = False
        self._t = _Telegram(country, keep_fields)
        if isinstance(key, str):
            key = _unhex(key)
        if isinstance(aak, str):
            aak = _unhex(aak)
        if key:
            try:
                from firmware.frame import smarty
            except ImportError:
                # a build without AES (no cryptolib): encrypted telegrams are counted
                # as "no_aes", plaintext ones still decode
                smarty = None
            if smarty is not None:
                self._smarty = smarty
                self.gcm = smarty.Gcm(key)
                self.aad = smarty.aad_for(aak)
            else:
                self.gcm = False
        self.framer = DsmrFramer(self, max_len, ENC_MAX if self.gcm else 0)
        self.errors = self.framer.errors

    @property
    def frames(self):
        return self.framer.frames

    def reset(self):
        self.framer.reset()
        self._crc_seen = False

    def feed(self, data):
        out = []
        self._out = out
        self.framer.feed(data)
        self._out = None
        return out

    def flush(self):
        # End of input: completes a DSMR 2.2/3 telegram that ended in "!" at the
        # very end or never sent "!" (call after a silent line or at end of file).
        out = []
        self._out = out
        self.framer.flush()
        self._out = None
        return out

    def _err(self, k):
        self.errors[k] = self.errors.get(k, 0) + 1

    # -- framer callbacks ----------------------------------------------------------
    def _block(self, buf, a, b, first):
        self._t.block(buf, a, b, first)

    def _line(self, buf, a, b, first, trunc):
        t = self._t
        if first:
            t.begin(bytes(memoryview(buf)[a:b]))
        else:
            t.line_bytes(buf, a, b, trunc)

    def _abort(self):
        self._t.begin(b"")

    def _end(self, kind, crc):
        if kind == K_CRC_BAD:
            if self.check_crc:
                self._t.begin(b"")
                return
            self._commit(False, False, False)
            return
        if kind == K_CRC_OK:
            self._commit(True, False, False)
            return
        # no CRC: DSMR 2.2/3 only; DSMR >= 4.0 (1-3:0.2.8 >= 40) and eMUCS-H
        # always send one, so its absence there means the CRC was lost
        self._commit(None, self.check_crc, False)

    def _enc(self, ebuf, end):
        if ebuf is None:
            self._err("no_aes" if self.gcm is False else "encrypted_no_key")
            return
        res = self._smarty.decrypt_frame(self.gcm, ebuf, end, self.aad)
        if res is None:
            self._err("decrypt")
            return
        a, b = res
        # the plaintext is a whole telegram "/..!CRC\r\n"
        bang = ebuf.rfind(b"!", a, b)
        if ebuf[a] != 0x2F or bang < 0:
            self._err("decrypt")
            return
        from firmware.frame.dsmr import crc16, _hexval
        i = bang + 1
        given = 0
        while i < b and i - bang <= 4 and _hexval(ebuf[i]) >= 0:
            given = (given << 4) | _hexval(ebuf[i])
            i += 1
        crc_ok = None
        if i > bang + 1:
            crc_ok = crc16(ebuf, a, bang + 1) == given
        # GCM already authenticated the plaintext (96-bit tag): a wrong inner
        # CRC (spec examples) is reported in the reading, not fatal
        _lines_into(self._t, ebuf, a, bang)
        self._commit(crc_ok, False, True)

    def _commit(self, crc_ok, strict, encrypted):
        t = self._t
        r = t.finish(strict, self.errors)
        h = t.header
        t.begin(b"")
        if r is None:
            return
        if crc_ok is None and self.check_crc and not encrypted:
            v = r.get("dsmr_version")
            if self._crc_seen or (v is not None and (len(v) > 2 or int(v) >= 40)):
                self._err("crc")
                return
        if crc_ok is not None and not encrypted:
            # a meter does not switch DSMR versions: once a CRC was seen, a
            # telegram without one is a damaged telegram (until reset())
            self._crc_seen = True
        try:
            self.last_header = h.rstrip(b"\r").decode()
        except Exception:
            self.last_header = None
        r["crc"] = crc_ok
        if encrypted:
            r["encrypted"] = True
        self.readings += 1
        self._out.append(r)


def _unhex(s):
    import binascii
    return binascii.unhexlify(s.replace(" ", ""))
