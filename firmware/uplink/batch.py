# Compact JSON batches of store records.
#
# One batch is one MQTT message / one HTTPS POST body. It is columnar, so the long
# reading-schema names ("energy_import_wh"...) appear once per batch, not once per record:
#
#   {"v":1,"dev":"0a1b2c","ep":0,"first":41,"last":60,"n":20,"dropped":0,"aggregated":0,
#    "cols":["seq","kind","t","t_src","apparent_power_va",...],
#    "rows":[[41,"reading",1700000000,"meter",1230,...],...],"ch":"mqtt","ctr":17}
#
# cols: "seq", "kind" (reading|relay|aggregate|raw), the time fields exactly as the store
# gives them ("t" unix seconds or null, "t_src" meter|ntp|elapsed, and "dt_s"/"ref_seq"
# when only elapsed time is known), then the other record keys (reading-schema names),
# sorted. A key null in every record of the batch has no column (absent = null); a
# record lacking a column has null there. "dropped"/"aggregated" are the
# store's counters (records it had to discard / merge when flash was full), so the
# receiver sees the loss instead of guessing. "ep" is the store epoch (seq numbering
# restarts only with a new epoch), "ch" the channel a signed batch is sealed for and
# "ctr" that channel's signing counter (sign.py). ch and ctr sit inside the signed bytes
# (docs/wire-format.md "Seal"), so a batch signed for MQTT is refused over HTTPS.
# A record the store cannot decode travels as {"seq":N,"raw":"<hex>"}-style row
# (kind "raw", column "raw") rather than being dropped.
#
# The size is bounded (max_bytes, default 2048: a 38 KB ESP8266 heap holds it twice):
# build() stops before the record that would overflow, always taking at least one.
import json

FIRST_COLS = ("seq", "kind", "t", "t_src")
# raw text of every group: large, and already represented by the named keys
SKIP_KEYS = ("fields",)
MAX_BYTES = 2048
# room build() may need beyond max_bytes in a caller's buffer (the header's numbers are
# estimated, not measured, when records are chosen)
OUT_SLACK = 64
# the channels a signed batch names (docs/wire-format.md: "https" also for http://)
CHANNELS = ("mqtt", "https")


def dumps(obj):
    try:
        return json.dumps(obj, separators=(",", ":"))
    except TypeError:
        # MicroPython before 1.21 has no separators argument
        return json.dumps(obj)


def _row(rec, cols):
    return dumps([rec.get(c) for c in cols])


def _header(dev, epoch, first, last, n, dropped, aggregated):
    return ('{"v":1,"dev":%s,"ep":%d,"first":%d,"last":%d,"n":%d,"dropped":%d,"aggregated":%d'
            % (dumps(dev), epoch, first, last, n, dropped, aggregated))


def _tail(ch, ctr):
    # the signed batch's channel and counter, right before the closing brace
    if ctr is None:
        return ""
    if ch is None:
        return ',"ctr":%d' % ctr
    return ',"ch":"%s","ctr":%d' % (ch, ctr)


def _fit(dev, records, dropped, aggregated, epoch, ctr, max_bytes, ch=None):
    # pass 1: how many records fit, their first/last seq and the columns
    cols = list(FIRST_COLS)
    extra = []
    k = 0
    first = last = None
    rows_len = 0
    nullw = len(dumps([None, None])) - len(dumps([None]))   # ",null" (", null" on old MP)
    fixed = len(_header(dev, epoch, 0, 0, 0, dropped, aggregated)) + 48 + (
        0 if ctr is None else 16 + len(_tail(ch, 0)))
    for rec in records:
        # a key that is null in every record of the batch gets no column at all
        new = [c for c in rec if rec[c] is not None and c not in cols and c not in extra
               and c not in SKIP_KEYS]
        new.sort()
        trial_cols = cols + sorted(extra + new) if new else cols + extra
        size = fixed + len(dumps(trial_cols)) + rows_len + k * nullw * len(new)
        row_len = len(_row(rec, trial_cols)) + 1
        if k and size + row_len > max_bytes:
            break
        extra = sorted(extra + new) if new else extra
        rows_len += k * nullw * len(new) + row_len
        if first is None:
            first = rec["seq"]
        last = rec["seq"]
        k += 1
    if not k:
        raise ValueError("empty batch")
    return k, first, last, cols + extra


def count(dev, records, max_bytes=MAX_BYTES):
    # how many of these records the next batch would take
    return _fit(dev, records, 0, 0, 0, None, max_bytes)[0]


def _put(buf, w, s):
    # append s at w; -> the new end, or -1 when it does not fit
    b = s.encode() if isinstance(s, str) else s
    e = w + len(b)
    if w < 0 or e > len(buf):
        return -1
    buf[w:e] = b
    return e


def build(dev, records, dropped=0, aggregated=0, epoch=0, ctr=None, max_bytes=MAX_BYTES,
          out=None, ch=None):
    """records: decoded store records (dicts with "seq"), oldest first; a list, or any
    sequence that can be iterated twice (uplink.Records decodes them one at a time, so
    a batch never holds all its records as dicts at once).
    out: a bytearray (at least max_bytes + OUT_SLACK) to write the body into; the body
    is then a memoryview of it. On a small heap one buffer, allocated before anything
    else and reused for every batch, does not have to be found in one piece among the
    rows' garbage (the ESP8266's upload peak was a 900-byte join failing that way).
    ch: "mqtt" or "https", the channel a signed batch (ctr given) is sealed for; it is
    written right before "ctr" (docs/wire-format.md).
    -> (body, first_seq, last_seq, count) for the longest prefix that fits."""
    if ch is not None and (ch not in CHANNELS or ctr is None):
        raise ValueError("ch: mqtt or https, with a counter")
    k, first, last, allc = _fit(dev, records, dropped, aggregated, epoch, ctr, max_bytes, ch)
    buf = out if out is not None else bytearray(max_bytes + OUT_SLACK)
    w = 0
    tail = _tail(ch, ctr)
    for piece in _pieces(dev, records, k, first, last, allc, dropped, aggregated, epoch, tail):
        w = _put(buf, w, piece)
        if w < 0:
            # the estimate was short (it is not meant to be): the plain way
            body = "".join(_pieces(dev, records, k, first, last, allc, dropped, aggregated,
                                   epoch, tail)).encode()
            return body, first, last, k
    if out is None:
        return bytes(buf[:w]), first, last, k
    return memoryview(buf)[:w], first, last, k


def _pieces(dev, records, k, first, last, allc, dropped, aggregated, epoch, tail):
    # the body, piece by piece: header, columns, the first k records' rows, channel and
    # counter
    yield _header(dev, epoch, first, last, k, dropped, aggregated)
    yield ',"cols":'
    yield dumps(allc)
    yield ',"rows":['
    i = 0
    for rec in records:
        if i == k:
            break
        if i:
            yield ","
        yield _row(rec, allc)
        i += 1
    yield "]"
    if tail:
        yield tail
    yield "}"


def parse(body):
    """Receiver side: batch bytes/str -> (header dict, list of record dicts without nulls)."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        body = bytes(body).decode()
    d = json.loads(body)
    if not isinstance(d, dict) or d.get("v") != 1:
        raise ValueError("not a v1 batch")
    cols = d.get("cols")
    rows = d.get("rows")
    if not isinstance(cols, list) or not isinstance(rows, list):
        raise ValueError("batch without cols/rows")
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) != len(cols):
            raise ValueError("row width")
        rec = {}
        for i in range(len(cols)):
            if row[i] is not None:
                rec[cols[i]] = row[i]
        if "seq" not in rec:
            raise ValueError("row without seq")
        out.append(rec)
    head = {}
    for k in d:
        if k not in ("cols", "rows"):
            head[k] = d[k]
    return head, out


def raw_record(seq, data):
    # a record the store could not decode: kept, as hex, for the receiver
    from binascii import hexlify
    return {"seq": seq, "kind": "raw", "raw": hexlify(bytes(data)).decode()}
