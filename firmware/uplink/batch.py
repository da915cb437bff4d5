# Compact JSON batches of store records.
#
# One batch is one MQTT message / one HTTPS POST body. It is columnar, so the long
# reading-schema names ("energy_import_wh"...) appear once per batch, not once per record:
#
#   {"v":1,"dev":"0a1b2c","ep":0,"first":41,"last":60,"n":20,"dropped":0,"aggregated":0,
#    "cols":["seq","kind","t","t_src","apparent_power_va",...],
#    "rows":[[41,"reading",1700000000,"meter",1230,...],...],"ctr":17}
#
# cols: "seq", "kind" (reading|relay|aggregate|raw), the time fields exactly as the store
# gives them ("t" unix seconds or null, "t_src" meter|ntp|elapsed, and "dt_s"/"ref_seq"
# when only elapsed time is known), then the other record keys (reading-schema names),
# sorted. A key null in every record of the batch has no column (absent = null); a
# record lacking a column has null there. "dropped"/"aggregated" are the
# store's counters (records it had to discard / merge when flash was full), so the
# receiver sees the loss instead of guessing. "ep" is the store epoch (seq numbering
# restarts only with a new epoch) and "ctr" the signing counter (sign.py).
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


def build(dev, records, dropped=0, aggregated=0, epoch=0, ctr=None, max_bytes=MAX_BYTES):
    """records: decoded store records (dicts with "seq"), oldest first.
    -> (body bytes, first_seq, last_seq, count) for the longest prefix that fits."""
    if not records:
        raise ValueError("empty batch")
    cols = list(FIRST_COLS)
    extra = []
    take = []
    rows_len = 0
    fixed = len(_header(dev, epoch, 0, 0, 0, dropped, aggregated)) + 48 + (
        0 if ctr is None else 24)
    for rec in records:
        # a key that is null in every record of the batch gets no column at all
        new = [k for k in rec if rec[k] is not None and k not in cols and k not in extra
               and k not in SKIP_KEYS]
        new.sort()
        trial_cols = cols + sorted(extra + new) if new else cols + extra
        size = fixed + len(dumps(trial_cols)) + rows_len + len(take) * 5 * len(new)
        row_len = len(_row(rec, trial_cols)) + 1
        if take and size + row_len > max_bytes:
            break
        extra = sorted(extra + new) if new else extra
        rows_len += len(take) * 5 * len(new) + row_len
        take.append(rec)
    allc = cols + extra
    first = take[0]["seq"]
    last = take[-1]["seq"]
    parts = [_header(dev, epoch, first, last, len(take), dropped, aggregated),
             ',"cols":', dumps(allc), ',"rows":[']
    for i in range(len(take)):
        if i:
            parts.append(",")
        parts.append(_row(take[i], allc))
    parts.append("]")
    if ctr is not None:
        parts.append(',"ctr":%d' % ctr)
    parts.append("}")
    # the pieces go before the bytes are made: at most two copies of the body are
    # alive at once, not three (the upload's heap peak on the ESP8266 is here)
    body = "".join(parts)
    parts = None
    return body.encode(), first, last, len(take)


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
