# InfluxDB v2 line protocol (https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/)
# for the write API: POST <influx_url>/api/v2/write?org=..&bucket=..&precision=s with
# "Authorization: Token <influx_token>".
#
#   linky,device=0a1b2c,meter=021728123456 energy_import_wh=12345678i,apparent_power_va=1230i,
#        current_a_1=5i,tariff_period="HP",overload=false 1700000000
#
# Timestamps come from the store's record times (seconds). A record whose time is only
# known as elapsed time (t null, dt_s after ref_seq) is placed at t(ref_seq) + dt_s when
# that reference record's time is known in the same batch (or was seen earlier this
# session); otherwise it is SKIPPED from Influx (counted, still acknowledged by the
# other sinks' rules): writing it at "now" would put history at the wrong time, and
# Influx has no way to express "unknown time".

MEASUREMENT = "linky"
# numeric / text keys written as fields (reading-schema names)
INT_KEYS = ("energy_import_wh", "energy_export_wh", "apparent_power_va",
            "apparent_power_export_va", "active_power_w", "active_power_export_w",
            "tariff_index", "average_demand_w", "peak_demand_w", "subscribed_current_a",
            "subscribed_power_kva", "power")
STR_KEYS = ("tariff_period", "tomorrow", "state", "reason")
LIST_KEYS = ("current_a", "voltage_v")


def _tag(v):
    s = str(v)
    out = []
    for ch in s:
        if ch in ", =\\":
            out.append("\\")
        out.append(ch)
    return "".join(out)


def _str(v):
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _num(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return "%di" % v
    if isinstance(v, float):
        return repr(v)
    return None


def line(dev, rec, t):
    """One record -> one line (str), or None when it carries no field."""
    fields = []
    for k in INT_KEYS:
        v = rec.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            fields.append("%s=%s" % (k, _num(v)))
    for k in LIST_KEYS:
        v = rec.get(k)
        if isinstance(v, (list, tuple)):
            for i in range(len(v)):
                if isinstance(v[i], (int, float)) and not isinstance(v[i], bool):
                    fields.append("%s_%d=%s" % (k, i + 1, _num(v[i])))
    g = rec.get("gas_m3")
    if isinstance(g, (int, float)) and not isinstance(g, bool):
        fields.append("gas_m3=%s" % repr(float(g)))
    ov = rec.get("overload")
    if isinstance(ov, bool):
        fields.append("overload=%s" % ("true" if ov else "false"))
    for k in STR_KEYS:
        v = rec.get(k)
        if isinstance(v, str):
            fields.append("%s=%s" % (k, _str(v)))
    if not fields:
        return None
    tags = "device=" + _tag(dev)
    if rec.get("meter_id"):
        tags += ",meter=" + _tag(rec["meter_id"])
    kind = rec.get("kind")
    if kind and kind != "reading":
        tags += ",kind=" + _tag(kind)
    return "%s,%s %s %d" % (MEASUREMENT, tags, ",".join(fields), t)


def lines(dev, records, known_times=None):
    """records (decoded store records, oldest first) -> (body bytes, written, skipped).
    known_times: dict seq -> t kept across batches of a session (updated here)."""
    times = {} if known_times is None else known_times
    out = []
    skipped = 0
    for rec in records:
        t = rec.get("t")
        if t is None and rec.get("dt_s") is not None:
            ref = times.get(rec.get("ref_seq"))
            if ref is not None:
                t = ref + rec["dt_s"]
        if t is None:
            skipped += 1
            continue
        if rec.get("t") is not None:
            times[rec.get("seq")] = rec["t"]
        ln = line(dev, rec, int(t))
        if ln is None:
            skipped += 1
            continue
        out.append(ln)
    # keep the time table small: the newest few references are enough
    if len(times) > 32:
        for k in sorted(times)[:-16]:
            del times[k]
    return ("\n".join(out) + ("\n" if out else "")).encode(), len(out), skipped


def write_path(org, bucket):
    return "/api/v2/write?org=%s&bucket=%s&precision=s" % (quote(org), quote(bucket))


def quote(s):
    out = []
    for b in str(s).encode():
        c = chr(b)
        if ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9") or c in "-_.~":
            out.append(c)
        else:
            out.append("%%%02X" % b)
    return "".join(out)


