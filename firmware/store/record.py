# Compact record codec: one reading (or relay event, or aggregate) in a few bytes.
#
# Layout (all integers LEB128 varints, "z" = zigzag-signed varint):
#
#   byte 0  flags   bits 0-1 kind: 0 reading, 1 relay, 2 aggregate (never 3, so the
#                                  byte is never 0xFF = erased flash)
#                   bits 2-3 time: 0 unknown, 1 meter clock, 2 NTP clock, 3 elapsed
#                   bit 4 D: delta form (energies and time relative to `prev`)
#                   bit 5 S: seq present
#                   bit 6 R: ref_seq present (elapsed time measured from that record)
#                   bit 7 aggregate: span present
#   [seq]           if S
#   time            meter/NTP: t - EPOCH as 4 bytes little-endian, or z(t - prev.t) when D
#                   elapsed:   dt_s, then ref_seq if R (no R: the previous record)
#                   unknown:   nothing. A time is never invented.
#   reading / aggregate:
#     [n] [span]    aggregate only: readings merged, t - t_first (if bit 7)
#     mask          which fields follow, in FIELDS order (D: a field left out has the
#                   previous reading's value; a field that disappears forces absolute)
#     fields        energies: Wh (delta vs prev when D); powers W/VA; tariff index;
#                   tariff period: code < 0x40 from PERIODS, else 0x80|len + ASCII
#   relay:
#     byte          bit 0 state on, bit 1 SET coil, bit 2 power present, bits 3-7 reason
#                   code (31: length-prefixed text follows)
#     [power]
#
# A historic TIC reading every 5 s in delta form is ~6 bytes (flags, mask, dt, dE, VA);
# absolute it is ~13. Energy is integer Wh throughout (the ESP8266's 30-bit
# floats cannot hold a meter index exactly).

EPOCH = 1577836800  # 2020-01-01T00:00:00Z; 4 bytes reach 2156. A clock outside that range
T_SPAN = 1 << 32     # (a meter that lost its clock says 2000) is recorded as no time at all

K_READING = 0
K_RELAY = 1
K_AGGREGATE = 2
KINDS = ("reading", "relay", "aggregate")

T_NONE = 0
T_METER = 1
T_NTP = 2
T_ELAPSED = 3
TSRC = (None, "meter", "ntp", "elapsed")

F_D = 0x10
F_S = 0x20
F_R = 0x40
F_SPAN = 0x80

# order matters: it is the mask bit order
FIELDS = ("energy_import_wh", "energy_export_wh", "apparent_power_va", "active_power_w",
          "tariff_index", "tariff_period", "apparent_power_export_va", "active_power_export_w")
ENERGY_BITS = 0x03   # the two cumulative indexes: delta-coded
# tariff periods as the decoders give them (historic PTEC, DSMR tariff indicator)
# (append only: the index is the on-flash code)
PERIODS = ("TH..", "HC..", "HP..", "HN..", "PM..", "HCJB", "HCJW", "HCJR", "HPJB", "HPJW",
           "HPJR", "offpeak", "peak", "BASE", "HC", "HP", "HEURE CREUSE", "HEURE PLEINE",
           "HC BLEU", "HP BLEU", "HC BLANC", "HP BLANC", "HC ROUGE", "HP ROUGE",
           "HEURE NORMALE", "HEURE POINTE")
REASONS = ("remote_on", "remote_off", "overload", "threshold", "restore", "reassert",
           "tempo_red", "tempo_white", "peak", "ejp")
COILS = ("relay_reset", "relay_set")


# -- varints -------------------------------------------------------------------------
def _uv(out, v):
    if v < 0:
        raise ValueError("negative")
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _zv(out, v):
    _uv(out, (v << 1) if v >= 0 else ((-v) << 1) - 1)


def _ruv(b, p):
    v = 0
    sh = 0
    while True:
        if p >= len(b) or sh > 63:
            raise ValueError("truncated")
        c = b[p]
        p += 1
        v |= (c & 0x7F) << sh
        if c < 0x80:
            return v, p
        sh += 7


def _rzv(b, p):
    v, p = _ruv(b, p)
    return ((v >> 1) if not (v & 1) else -((v + 1) >> 1)), p


def _int(v):
    # values from decoders are ints; bools and floats are refused (never rounded)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError("integer expected")
    return v


# -- encoding ------------------------------------------------------------------------
def _tcode(t_src, t):
    if t is None:
        return T_NONE
    if t_src in ("meter", "ntp") and not 0 <= t - EPOCH < T_SPAN:
        return T_NONE
    if t_src == "meter":
        return T_METER
    if t_src == "ntp":
        return T_NTP
    if t_src == "elapsed":
        return T_ELAPSED
    raise ValueError("t_src")


def _put_time(out, d, prev, delta):
    tc = _tcode(d.get("t_src"), d.get("t") if d.get("t_src") != "elapsed" else d.get("dt_s"))
    if tc == T_METER or tc == T_NTP:
        t = _int(d["t"])
        if delta:
            _zv(out, t - prev["t"])
        else:
            v = t - EPOCH
            out.extend(bytes((v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF, v >> 24)))
    elif tc == T_ELAPSED:
        _uv(out, _int(d["dt_s"]))
        if d.get("ref_seq") is not None:
            _uv(out, _int(d["ref_seq"]))
    return tc


def _fields_mask(d):
    m = 0
    for i in range(8):
        if d.get(FIELDS[i]) is not None:
            m |= 1 << i
    return m


def _can_delta(d, prev):
    # delta form only when every delta-coded value has a base and the indexes did not
    # go backwards (a meter swap or a reset gets an absolute record)
    if prev is None or prev.get("kind", "reading") != "reading":
        return False
    tc = _tcode(d.get("t_src"), d.get("t") if d.get("t_src") != "elapsed" else d.get("dt_s"))
    if tc == T_METER or tc == T_NTP:
        if prev.get("t") is None or prev.get("t_src") not in ("meter", "ntp"):
            return False
        if _tcode(prev.get("t_src"), prev.get("t")) == T_NONE:
            return False
    for i in range(8):
        f = FIELDS[i]
        v = d.get(f)
        pv = prev.get(f)
        if v is None:
            if pv is not None:
                return False     # a field that went away: only an absolute record says so
        elif i < 2 and (pv is None or v < pv):
            return False
    return True


def pack(d, prev=None, seq=None):
    # Encode a decoded dict (the shape decode() returns). prev: the previous reading
    # (decoded) to delta against, or None for a self-contained record.
    kind = KINDS.index(d.get("kind", "reading"))
    out = bytearray(1)
    delta = kind == K_READING and _can_delta(d, prev)
    flags = kind
    if delta:
        flags |= F_D
    if seq is not None:
        flags |= F_S
        _uv(out, seq)
    if d.get("t_src") == "elapsed" and d.get("dt_s") is not None and d.get("ref_seq") is not None:
        flags |= F_R
    tc = _put_time(out, d, prev, delta)
    flags |= tc << 2
    if kind == K_RELAY:
        reason = d.get("reason")
        rc = REASONS.index(reason) if reason in REASONS else 31
        power = _int(d.get("power"))
        st = d.get("state")
        on = 1 if st in (1, True, "on") else 0
        coil = 1 if d.get("coil") in ("relay_set", 1, True) else 0
        out.append(on | (coil << 1) | ((0 if power is None else 1) << 2) | (rc << 3))
        if rc == 31:
            s = str(reason or "").encode()[:24]
            out.append(len(s))
            out.extend(s)
        if power is not None:
            _uv(out, power)
    else:
        if kind == K_AGGREGATE:
            _uv(out, _int(d.get("n") or 0))
            if d.get("t_first") is not None and tc in (T_METER, T_NTP):
                flags |= F_SPAN
                _uv(out, _int(d["t"]) - _int(d["t_first"]))
        m = _fields_mask(d)
        if delta:
            # a value equal to the previous reading's is left out: decode inherits it
            for i in range(8):
                if (m >> i) & 1 and d[FIELDS[i]] == prev.get(FIELDS[i]):
                    m &= ~(1 << i)
        out.append(m)
        for i in range(8):
            if not (m >> i) & 1:
                continue
            f = FIELDS[i]
            v = d[f]
            if i < 2:
                v = _int(v)
                _uv(out, v - prev[f] if delta else v)
            elif f == "tariff_period":
                v = str(v)
                if v in PERIODS:
                    out.append(PERIODS.index(v))
                else:
                    s = v.encode()[:24]   # LTARF is 16 characters at most (Enedis-NOI-CPT_54E)
                    out.append(0x80 | len(s))
                    out.extend(s)
            elif f == "tariff_index":
                _uv(out, _int(v))
            else:
                _uv(out, _int(v))   # powers are unsigned in every protocol
    out[0] = flags
    return bytes(out)


def encode(reading, t, t_src, prev=None):
    # One reading -> (data, rec), encoded once:
    #   data  the record bytes, delta-coded against prev (the previous reading's rec)
    #         whenever every delta-coded value has a base there, else self-contained
    #   rec   the record as a dict, the shape decode(data, prev) returns (less "seq",
    #         which the store assigns): what the next record's delta needs, and what the
    #         store files and aggregates it by. Nothing is decoded back.
    # t: unix seconds from the meter clock ("meter") or an NTP-synced clock ("ntp");
    # for "elapsed", the seconds since the previous record (int) or (ref_seq, dt_s);
    # None when no time is known at all. Raises ValueError / TypeError on values a
    # record cannot hold (never rounds or guesses).
    d = _dict_of(reading, "reading")
    _set_time(d, t, t_src)
    return pack(d, prev), d


def encode_relay(state, coil, reason, power, t, t_src):
    # One relay switching -> (data, rec), self-contained (relay records are never deltas)
    d = {"kind": "relay", "state": state, "coil": coil, "reason": reason, "power": power}
    _set_time(d, t, t_src)
    return pack(d, None), d


def _dict_of(reading, kind):
    d = {"kind": kind}
    for f in FIELDS:
        v = reading.get(f)
        if v is not None:
            d[f] = v
    return d


def _set_time(d, t, t_src):
    if t is None:
        d["t"] = None
        d["t_src"] = "elapsed"
        d["dt_s"] = None
        return
    if t_src in ("meter", "ntp"):
        d["t"] = _int(t)
        d["t_src"] = t_src
    elif t_src == "elapsed":
        d["t"] = None
        d["t_src"] = "elapsed"
        if isinstance(t, tuple):
            d["ref_seq"] = _int(t[0])
            d["dt_s"] = _int(t[1])
        else:
            d["dt_s"] = _int(t)
    else:
        raise ValueError("t_src")


# -- decoding ------------------------------------------------------------------------
def decode(data, prev=None, seq=None):
    # Record bytes -> dict with reading-schema keys plus kind, t, t_src, seq (when the
    # record carries it or the store gives it), dt_s/ref_seq for elapsed time.
    # Raises ValueError on malformed data (never returns a guessed value).
    b = data
    n = len(b)
    if n < 1:
        raise ValueError("empty")
    flags = b[0]
    kind = flags & 3
    if kind == 3:
        raise ValueError("kind")
    tc = (flags >> 2) & 3
    delta = flags & F_D
    p = 1
    if flags & F_S:
        seq, p = _ruv(b, p)
    if delta and (prev is None or prev.get("kind", "reading") != "reading"):
        raise ValueError("delta record needs the previous reading")
    d = {"kind": KINDS[kind], "seq": seq, "t": None,
         "t_src": TSRC[tc] if tc else "elapsed"}
    if tc == T_METER or tc == T_NTP:
        if delta:
            v, p = _rzv(b, p)
            if prev.get("t") is None:
                raise ValueError("delta time without base")
            d["t"] = prev["t"] + v
        else:
            if p + 4 > n:
                raise ValueError("truncated")
            d["t"] = EPOCH + (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24))
            p += 4
    elif tc == T_ELAPSED:
        d["dt_s"], p = _ruv(b, p)
        if flags & F_R:
            d["ref_seq"], p = _ruv(b, p)
        else:
            d["ref_seq"] = prev.get("seq") if prev is not None else None
    else:
        d["dt_s"] = None
        d["ref_seq"] = None
    if kind == K_RELAY:
        if p >= n:
            raise ValueError("truncated")
        c = b[p]
        p += 1
        rc = c >> 3
        if rc == 31:
            if p >= n:
                raise ValueError("truncated")
            ln = b[p]
            p += 1
            if p + ln > n:
                raise ValueError("truncated")
            d["reason"] = bytes(b[p:p + ln]).decode()
            p += ln
        elif rc < len(REASONS):
            d["reason"] = REASONS[rc]
        else:
            raise ValueError("reason")
        d["state"] = "on" if c & 1 else "off"
        d["coil"] = COILS[(c >> 1) & 1]
        d["power"] = None
        if c & 4:
            d["power"], p = _ruv(b, p)
    else:
        if kind == K_AGGREGATE:
            d["n"], p = _ruv(b, p)
            d["t_first"] = None
            if flags & F_SPAN:
                span, p = _ruv(b, p)
                if d["t"] is not None:
                    d["t_first"] = d["t"] - span
        if p >= n:
            raise ValueError("truncated")
        m = b[p]
        p += 1
        for i in range(8):
            f = FIELDS[i]
            if not (m >> i) & 1:
                d[f] = prev.get(f) if delta else None
                continue
            if i < 2:
                v, p = _ruv(b, p)
                if delta:
                    if prev.get(f) is None:
                        raise ValueError("delta energy without base")
                    v += prev[f]
            elif f == "tariff_period":
                if p >= n:
                    raise ValueError("truncated")
                c = b[p]
                p += 1
                if c & 0x80:
                    ln = c & 0x7F
                    if p + ln > n:
                        raise ValueError("truncated")
                    v = bytes(b[p:p + ln]).decode()
                    p += ln
                elif c < len(PERIODS):
                    v = PERIODS[c]
                else:
                    raise ValueError("period")
            elif f == "tariff_index":
                v, p = _ruv(b, p)
            else:
                v, p = _ruv(b, p)
            d[f] = v
    if p != n:
        raise ValueError("trailing bytes")
    return d


# -- aggregation (full store) -----------------------------------------------------------
def merge(agg, d):
    # Fold reading d (decoded) into aggregate agg (decoded, or None): the time and the
    # energy indexes of the newest reading (the indexes are cumulative, so no energy is
    # lost), the count, the first time, and the highest powers seen.
    if agg is None:
        agg = {"kind": "aggregate", "n": 0, "t_first": None}
        for f in FIELDS:
            agg[f] = None
        if d.get("t") is not None and d.get("t_src") in ("meter", "ntp"):
            agg["t_first"] = d["t"]
    agg["n"] += (d.get("n") or 1) if d.get("kind") == "aggregate" else 1
    for k in ("t", "t_src", "dt_s", "ref_seq"):
        agg[k] = d.get(k)
    if agg["t_src"] not in ("meter", "ntp"):
        agg["t_first"] = None
    for i in range(8):
        f = FIELDS[i]
        v = d.get(f)
        if v is None:
            continue
        if i in (2, 3, 6, 7):
            if agg[f] is None or v > agg[f]:
                agg[f] = v
        else:
            agg[f] = v
    return agg
