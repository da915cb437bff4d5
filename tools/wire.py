"""The batch wire format (docs/wire-format.md), received: parse, validate whole, verify.

Written from the document with CPython's own `json`, `hmac` and `hashlib`, apart from
the firmware (it never imports `firmware/`), so that the firmware's `batch.py` and
`sign.py` are checked against a second implementation and not against themselves. The
collector and the fleet workers receive batches through this module.

    b = wire.receive(data, key_for, channel="https", transport_dev=hdr_dev)
    b.dev, b.ch, b.ctr, b.header, b.cols, b.rows, b.records()

`receive` refuses with `WireError(status, reason)` (status 400 malformed, 403 not
authentic / not this channel, 413 too large) and never raises anything else on bad
input. The per-(dev, ch) counter check (doc rule 4's "greater than the last accepted")
needs the receiver's state: it belongs to the store, in the same transaction as the rows.
"""
import hashlib
import hmac
import json
import math
import re

VERSION = 1
CHANNELS = ("mqtt", "https")
# the seal's tail: ,"sig":"<64 lower-case hex>"}  (docs/wire-format.md "Seal")
TAIL_HEAD = b',"sig":"'
TAIL_LEN = len(TAIL_HEAD) + 64 + 2
MIN_KEY = 16                    # bytes (doc: hmac_key hex, >= 16 bytes)
MAX_BODY = 1 << 20              # a batch is ~2 KB on a device; 1 MiB leaves room for lab use
MAX_ROWS = 20000
MAX_DEV = 64                    # characters of a device id
MAX_INT = (1 << 53) - 1         # seq/ep/ctr: exact in every JSON reader (IEEE double)
HEX64 = re.compile(rb"[0-9a-f]{64}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\Z")
HEADER_INT = ("ep", "first", "last", "n", "dropped", "aggregated")
HEADER_KEYS = ("v", "dev") + HEADER_INT + ("cols", "rows", "ch", "ctr", "sig")
FIRST_COLS = ("seq", "kind", "t", "t_src")
KINDS = ("reading", "relay", "aggregate", "raw")


class WireError(ValueError):
    """A refused batch. status: the HTTP answer (400, 403, 413); reason: short, stable
    text for logs and counters (never the key, never the body)."""

    def __init__(self, status, reason, detail=""):
        ValueError.__init__(self, reason + (": " + detail if detail else ""))
        self.status = status
        self.reason = reason
        self.detail = detail


def _bad(reason, detail=""):
    return WireError(400, reason, detail)


# -- value checks: one per column type --------------------------------------------------
def _is_int(v):
    return type(v) is int          # bool is an int subclass: refused here on purpose


def _is_num(v):
    return (type(v) is int) or (type(v) is float and math.isfinite(v))


def _int(lo, hi):
    def check(v):
        return _is_int(v) and lo <= v <= hi
    return check


def _num(lo, hi):
    def check(v):
        return _is_num(v) and lo <= v <= hi
    return check


def _one_of(*allowed):
    def check(v):
        return type(v) is str and v in allowed
    return check


def _printable(s, maxlen):
    if type(s) is not str or not 0 < len(s) <= maxlen:
        return False
    for ch in s:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o < 0xA0 or o in (0x2028, 0x2029):
            return False
    return True


def _text(maxlen):
    def check(v):
        return _printable(v, maxlen)
    return check


def _timestamp(v):
    # reading-schema `timestamp`: meter time YYYY-MM-DDTHH:MM:SS
    return type(v) is str and TIMESTAMP.match(v) is not None


def _phases(lo, hi):
    # per-phase list (reading-schema current_a / voltage_v): 1 to 3 numbers or nulls
    num = _num(lo, hi)

    def check(v):
        return (type(v) is list and 1 <= len(v) <= 3
                and all(x is None or num(x) for x in v))
    return check


def _registers(v):
    # reading-schema `registers`: energy register label/OBIS code -> Wh
    if type(v) is not dict or len(v) > 32:
        return False
    return all(_printable(k, 16) and ENERGY(x) for k, x in v.items())


def _hex(v):
    return (type(v) is str and 0 < len(v) <= 8192 and len(v) % 2 == 0
            and all(c in "0123456789abcdef" for c in v))


# Sane bounds, not meter limits: an index in Wh below 10^13 (a 9-digit kWh register is
# 10^12 Wh), a power below 10 MW, a unix time below 2^33 (year 2242).
ENERGY = _int(0, 10 ** 13)
POWER = _int(0, 10 ** 7)
TIME = _int(0, 1 << 33)

# Every column a v1 batch may carry: the record's own (seq, kind, time, relay event,
# aggregate, raw) and the reading-schema names (docs/reading-schema.md: text only
# where that table says str; `fields` never travels, batch bodies leave it out).
COLUMNS = {
    "seq": _int(0, MAX_INT),
    "kind": _one_of(*KINDS),
    "t": TIME,
    "t_src": _one_of("meter", "ntp", "elapsed"),
    "dt_s": _int(0, 1 << 32),
    "ref_seq": _int(0, MAX_INT),
    # reading schema
    "protocol": _one_of("tic-historic", "tic-standard", "dsmr"),
    "meter_id": _text(64),
    "timestamp": _timestamp,
    "energy_import_wh": ENERGY,
    "energy_export_wh": ENERGY,
    "registers": _registers,
    "active_power_w": POWER,
    "active_power_export_w": POWER,
    "apparent_power_va": POWER,
    "apparent_power_export_va": POWER,
    "current_a": _phases(0, 10 ** 4),
    "voltage_v": _phases(0, 10 ** 3),
    "tariff_period": _text(32),
    "tariff_index": _int(0, 99),
    "subscribed_current_a": _int(0, 1000),
    "subscribed_power_kva": _int(0, 1000),
    "overload": lambda v: type(v) is bool,
    "tomorrow": _one_of("BLEU", "BLAN", "ROUG"),
    "average_demand_w": POWER,
    "peak_demand_w": POWER,
    "gas_m3": _num(0, 10 ** 9),
    # relay events (kind "relay")
    "state": _one_of("on", "off"),
    "coil": _one_of("relay_reset", "relay_set"),
    "reason": _text(32),
    "power": POWER,
    # aggregates (kind "aggregate"): readings merged, time of the first
    "n": _int(0, 1 << 32),
    "t_first": TIME,
    # a record the store could not decode, as hex
    "raw": _hex,
}


# -- device ids ---------------------------------------------------------------------------
def normalise_dev(dev):
    """Device id as compared and stored: stripped, lower-case (doc rule 1). -> str, or
    WireError 400 when it is not a short printable string."""
    if type(dev) is not str:
        raise _bad("dev")
    d = dev.strip().lower()
    if not _printable(d, MAX_DEV) or not d.isascii() or "/" in d or "+" in d or "#" in d:
        # ASCII only: no look-alike of a registered id ("0а1b2c" with a Cyrillic a);
        # /, + and # would make it an MQTT topic level of its own or a wildcard
        raise _bad("dev")
    return d


# -- the seal -----------------------------------------------------------------------------
def split_seal(data):
    """-> (signed bytes, sig hex bytes) when data ends in a seal tail, else (data, None).
    The signed bytes are the body with the tail cut and "}" put back (no re-serialising)."""
    if len(data) >= TAIL_LEN + 2 and data[-TAIL_LEN:-TAIL_LEN + len(TAIL_HEAD)] == TAIL_HEAD \
            and data[-2:] == b'"}':
        sig = data[-66:-2]
        if HEX64.fullmatch(sig) is None:
            raise WireError(403, "bad signature", "not 64 lower-case hex")
        return data[:-TAIL_LEN] + b"}", sig
    return data, None


def mac(key, body):
    """HMAC-SHA256 (RFC 2104) of body under key -> 64 lower-case hex bytes."""
    return hmac.new(key, body, hashlib.sha256).hexdigest().encode()


def seal(key, body):
    """Sign an unsealed body (bytes ending in "}", with ch and ctr in it): for tests and
    lab tools that speak for a device."""
    if body[-1:] != b"}":
        raise ValueError("body must end with }")
    return body[:-1] + TAIL_HEAD + mac(key, body) + b'"}'


def parse_key(hexkey):
    """Hex key text (a key file's or the environment's) -> bytes; ValueError naming no
    secret when it is not hex or shorter than 16 bytes."""
    try:
        k = bytes.fromhex(hexkey.strip())
    except (ValueError, AttributeError):
        raise ValueError("key is not hex")
    if len(k) < MIN_KEY:
        raise ValueError("key shorter than %d bytes" % MIN_KEY)
    return k


# -- parsing ------------------------------------------------------------------------------
def _no_duplicates(pairs):
    # Two readers that resolve a repeated key differently ("ctr" twice: first or last?)
    # would see two different batches under one signature: refuse the ambiguity.
    d = {}
    for k, v in pairs:
        if k in d:
            raise _bad("malformed", "duplicate key %r" % k[:20])
        d[k] = v
    return d


def _no_constant(name):
    raise _bad("malformed", "%s is not JSON" % name)


def loads(body):
    """Strict JSON (RFC 8259, UTF-8 without BOM): no NaN/Infinity, no repeated keys.
    -> the decoded value; WireError 400 otherwise."""
    if type(body) is not bytes:
        body = bytes(body)
    if body[:3] == b"\xef\xbb\xbf":
        raise _bad("malformed", "BOM")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("malformed", "not UTF-8")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates,
                          parse_constant=_no_constant)
    except WireError:
        raise
    except (ValueError, RecursionError) as e:
        raise _bad("malformed", type(e).__name__)


class Batch:
    """One validated batch. header: every top-level key but cols/rows (dev normalised);
    cols: column names; rows: lists as wide as cols; signed: True when sealed."""

    def __init__(self, header, cols, rows, signed):
        self.header = header
        self.cols = cols
        self.rows = rows
        self.signed = signed
        self.dev = header["dev"]
        self.ch = header.get("ch")
        self.ctr = header.get("ctr")
        self.ep = header["ep"]

    def records(self):
        """-> one dict per row, null columns left out (absent = null)."""
        out = []
        for row in self.rows:
            out.append({c: v for c, v in zip(self.cols, row) if v is not None})
        return out


def validate(obj, signed):
    """A decoded batch object -> Batch, checked whole (every key, every cell); WireError
    400 naming the first thing wrong."""
    if type(obj) is not dict:
        raise _bad("malformed", "not an object")
    for k in obj:
        if k not in HEADER_KEYS:
            raise _bad("malformed", "unknown key %r" % k[:20])
    if obj.get("v") != VERSION or not _is_int(obj.get("v")):
        raise _bad("version")
    header = {"v": VERSION, "dev": normalise_dev(obj.get("dev"))}
    for k in HEADER_INT:
        v = obj.get(k)
        if not _is_int(v) or not 0 <= v <= MAX_INT:
            raise _bad("header", k)
        header[k] = v
    if "sig" in obj:
        raise _bad("malformed", "sig inside the signed bytes")
    if signed:
        # doc: ch and ctr are present in every signed batch, and covered by the seal
        if obj.get("ch") not in CHANNELS or type(obj.get("ch")) is not str:
            raise _bad("ch")
        ctr = obj.get("ctr")
        if not _is_int(ctr) or not 0 <= ctr <= MAX_INT:
            raise _bad("ctr", "an integer >= 0 (not a boolean)")
        header["ch"] = obj["ch"]
        header["ctr"] = ctr
    elif "ch" in obj or "ctr" in obj:
        raise _bad("malformed", "ch/ctr in an unsigned batch")
    cols = obj.get("cols")
    if type(cols) is not list or len(cols) < len(FIRST_COLS) or len(cols) > len(COLUMNS):
        raise _bad("cols")
    if tuple(cols[:len(FIRST_COLS)]) != FIRST_COLS:
        raise _bad("cols", "must start with seq, kind, t, t_src")
    rest = cols[len(FIRST_COLS):]
    for c in rest:
        if type(c) is not str or c not in COLUMNS:
            raise _bad("cols", "unknown column")
        if c in FIRST_COLS:
            raise _bad("cols", "repeated column")
    if rest != sorted(set(rest)):
        raise _bad("cols", "not sorted or repeated")
    rows = obj.get("rows")
    if type(rows) is not list or not 1 <= len(rows) <= MAX_ROWS:
        raise _bad("rows")
    if header["n"] != len(rows):
        raise _bad("header", "n is not the number of rows")
    checks = [COLUMNS[c] for c in cols]
    width = len(cols)
    i_raw = cols.index("raw") if "raw" in cols else None
    prev = -1
    for i, row in enumerate(rows):
        if type(row) is not list or len(row) != width:
            raise _bad("row", "%d: width" % i)
        for j in range(width):
            v = row[j]
            if v is None:
                if j < 2:           # seq and kind are never absent
                    raise _bad("row", "%d: %s missing" % (i, cols[j]))
                continue
            if not checks[j](v):
                raise _bad("row", "%d: %s" % (i, cols[j]))
        seq = row[0]
        if seq <= prev:
            raise _bad("row", "%d: seq not increasing" % i)
        prev = seq
        # a raw record carries its bytes, and only a raw record does
        if (row[1] == "raw") != (i_raw is not None and row[i_raw] is not None):
            raise _bad("row", "%d: raw" % i)
    if header["first"] != rows[0][0] or header["last"] != rows[-1][0]:
        raise _bad("header", "first/last are not the rows' seq")
    return Batch(header, list(cols), rows, signed)


def check_record(rec):
    """One record in the shape Batch.records() gives (a dict, nulls left out), checked
    against the v1 columns (for rows that come from elsewhere, e.g. an older store):
    -> None, or WireError 400 naming the first thing wrong."""
    if type(rec) is not dict:
        raise _bad("row", "not an object")
    for k, v in rec.items():
        if k not in COLUMNS:
            raise _bad("row", "unknown column")
        if v is not None and not COLUMNS[k](v):
            raise _bad("row", k)
    if rec.get("seq") is None or rec.get("kind") is None:
        raise _bad("row", "seq and kind are never absent")
    if (rec["kind"] == "raw") != (rec.get("raw") is not None):
        raise _bad("row", "raw")


def parse(body, signed=False):
    """Body bytes (unsealed, or the signed bytes of a sealed one) -> Batch."""
    return validate(loads(body), signed)


# -- receiving ----------------------------------------------------------------------------
def receive(data, key_for, channel, transport_dev=None, accept_unsigned=False):
    """Everything docs/wire-format.md asks of a receiver but the counter's history:

    data: the bytes as they arrived; key_for(dev) -> key bytes or None for a normalised
    device id; channel: "mqtt" or "https", the way it arrived; transport_dev: the device
    the transport names (MQTT topic level, HTTP X-Linky-Device), or None.
    Unsigned batches are refused (403) unless accept_unsigned and no key is registered
    for the device. -> Batch (signed ones with .ch == channel and an int .ctr)."""
    if channel not in CHANNELS:
        raise ValueError("channel")
    data = bytes(data)
    if len(data) > MAX_BODY:
        raise WireError(413, "too large")
    signed_bytes, sig = split_seal(data)
    obj = loads(signed_bytes)
    if type(obj) is not dict:
        raise _bad("malformed", "not an object")
    dev = normalise_dev(obj.get("dev"))
    key = key_for(dev)
    if sig is None:
        if key is not None:
            raise WireError(403, "unsigned", "the device has a key")
        if not accept_unsigned:
            raise WireError(403, "unsigned", "signed batches only")
    else:
        if key is None:
            raise WireError(403, "unknown device")
        # rule 1: the seal under the key registered for dev (constant-time compare)
        if not hmac.compare_digest(mac(key, signed_bytes), sig):
            raise WireError(403, "bad signature")
    b = validate(obj, sig is not None)
    if transport_dev is not None:
        # rule 2: the device the transport names is the one inside the (signed) body
        try:
            named = normalise_dev(transport_dev)
        except WireError:
            raise WireError(403, "device mismatch")
        if named != b.dev:
            raise WireError(403, "device mismatch")
    if b.signed and b.ch != channel:
        # rule 3: a batch sealed for one channel is not replayable on another
        raise WireError(403, "channel mismatch")
    return b
