"""Aggregates, individual curves and exports under the publication rules of the Lyon
Linky deployment (Smarter Together D3.4.2, §4.2-4.3; ../shared/background/
lyon-linky-rollout-privacy.md in the working files):

* an individual load curve only with the household's consent (use "individual_curve");
* otherwise daily (or 10-minute) consumption of a set of delivery points, published as
  the sum or as rounded-up quartiles (median included), over at least 11 points for
  restricted use and at least 101 for public use ("rounded up quartiles to kWh" for the
  public tables). Here each household counts only with its consent to that use
  ("building_aggregate" -> restricted rule, "public_aggregate" -> public rule).

Energy of a household in a step = its energy index (energy_import_wh) at its last reading
in the step minus the index at its last reading in the previous step: the way daily
consumption is derived from indexes. A step without a reading in the step before it, or
with a falling index (meter replaced), gives that household no value for the step.

A group whose consenting households are fewer than the rule's threshold yields nothing,
and says why; a step with fewer contributing households than the threshold is left out
(counted in "suppressed"). Every aggregate, curve and refusal is written to the use log
with the consent ids it relied on (fleetdb.Db.record_use).

Quartiles: the linear interpolation between order statistics at (n-1)p ("type 7",
PostgreSQL's percentile_cont, Python statistics.quantiles(method="inclusive")),
computed exactly with fractions and then rounded up to the rule's unit.
"""
import csv
import datetime
import io
import json
import math
import time
from fractions import Fraction

STEPS = {"10min": 600, "day": 86400}
RULES = {
    # rule: minimum households, quartiles rounded up to this many Wh
    "restricted": {"threshold": 11, "round_wh": 1},
    "public": {"threshold": 101, "round_wh": 1000},
}
USE_RULE = {"building_aggregate": "restricted", "public_aggregate": "public"}


class Refusal(Exception):
    """Nothing may be produced; .result carries the reason and the log id."""

    def __init__(self, result):
        Exception.__init__(self, result["reason"])
        self.result = result


def quartiles(values):
    """Q1, median, Q3 of a non-empty list of integers, as exact Fractions (type 7)."""
    d = sorted(values)
    n = len(d)
    if n == 1:
        return [Fraction(d[0])] * 3
    out = []
    for i in (1, 2, 3):
        h = Fraction((n - 1) * i, 4)
        j = math.floor(h)
        lo = d[j]
        hi = d[j + 1] if j + 1 < n else d[j]
        out.append(lo + (h - j) * (hi - lo))
    return out


def round_up(q, unit):
    """Round a Fraction up to a multiple of unit (int)."""
    return int(math.ceil(q / unit)) * unit


def _tz(name):
    if name in (None, "UTC", "utc"):
        return datetime.timezone.utc
    from zoneinfo import ZoneInfo
    return ZoneInfo(name)


def _day_start(t, tz):
    d = datetime.datetime.fromtimestamp(t, tz).date()
    return int(datetime.datetime(d.year, d.month, d.day, tzinfo=tz).timestamp())


def last_index_per_step(db, devs, since, until, tz="UTC"):
    """{dev: {10-minute step start: max energy index}} from since - 1 day (to have the
    step before the first) to until. The database does the reduction (one row per
    household and 10 minutes), so a month of 5-second readings comes back small."""
    out = {d: {} for d in devs}
    if not devs:
        return out
    lo = int(since) - 2 * 86400
    # 10-minute steps are aligned on UTC; every zone of whole or half hours keeps them
    # aligned with its own clock
    q = ("SELECT dev, t / 600, MAX(energy_wh) FROM readings WHERE dev IN (%s) AND "
         "t >= ? AND t < ? AND energy_wh IS NOT NULL AND kind = 'reading' "
         "GROUP BY dev, t / 600" % ",".join("?" * len(devs)))
    for dev, b, e in db.query(q, list(devs) + [lo, int(until)]):
        out[dev][int(b) * 600] = int(e)
    return out


def energy_per_step(idx, step, tz="UTC"):
    """{dev: {10-minute start: index}} -> {dev: {step start: Wh consumed in the step}}."""
    tzinfo = _tz(tz)
    res = {}
    for dev, per10 in idx.items():
        if step == "10min":
            last = per10
            prev_of = lambda s: s - 600  # noqa: E731
        else:
            last = {}
            for s, e in per10.items():
                ds = _day_start(s, tzinfo)
                if e > last.get(ds, -1):
                    last[ds] = e
            prev_of = lambda s: _day_start(s - 1, tzinfo)  # noqa: E731
        vals = {}
        for s, e in last.items():
            p = last.get(prev_of(s))
            if p is not None and e >= p:
                vals[s] = e - p
        res[dev] = vals
    return res


def _consenting(db, grp, use, now):
    members = db.members(grp)
    cons = {c["dev"]: c["id"] for c in db.consents(use=use, at=now) if c["dev"] in members}
    return members, cons


def aggregate(db, grp, use, step="10min", since=None, until=None, tz="UTC",
              thresholds=None, round_wh=None, now=None):
    """Aggregate of group `grp` for `use` ("building_aggregate" or "public_aggregate")
    over since <= t < until at `step` ("10min" or "day"). -> result dict with rows;
    raises Refusal (result with "reason") when the rule forbids it. Logged either way."""
    if use not in USE_RULE:
        raise ValueError("aggregate use: %s" % " or ".join(USE_RULE))
    if step not in STEPS:
        raise ValueError("step: %s" % " or ".join(STEPS))
    now = time.time() if now is None else now
    until = int(now if until is None else until)
    since = int(until - 30 * 86400 if since is None else since)
    rule = USE_RULE[use]
    threshold = (thresholds or {}).get(rule, RULES[rule]["threshold"])
    unit = (round_wh or {}).get(rule, RULES[rule]["round_wh"])
    members, cons = _consenting(db, grp, use, now)
    res = {"what": "aggregate", "group": grp, "use": use, "rule": rule,
           "threshold": threshold, "round_up_wh": unit, "step": step, "tz": tz,
           "since": since, "until": until, "members": len(members),
           "group_size": len(cons), "consents": sorted(cons.values()), "rows": [],
           "suppressed_steps": 0}
    if len(cons) < threshold:
        res["reason"] = ("group %r: %d household(s) consent to %s, the %s rule needs at "
                         "least %d" % (grp, len(cons), use, rule, threshold))
        res["log_id"] = db.record_use("aggregate refused", grp, use, rule, len(cons),
                                      res["reason"], res["consents"], at=now)
        raise Refusal(res)
    devs = sorted(cons)
    per = energy_per_step(last_index_per_step(db, devs, since, until, tz), step, tz)
    steps = sorted({s for v in per.values() for s in v if since <= s < until})
    for s in steps:
        vals = [per[d][s] for d in devs if s in per[d]]
        if len(vals) < threshold:
            res["suppressed_steps"] += 1
            continue
        q1, med, q3 = quartiles(vals)
        res["rows"].append({"start": s, "time": _iso(s, tz), "households": len(vals),
                            "sum_wh": sum(vals), "q1_wh": round_up(q1, unit),
                            "median_wh": round_up(med, unit), "q3_wh": round_up(q3, unit)})
    res["log_id"] = db.record_use("aggregate", grp, use, rule, len(cons),
                                  "%d steps, %d suppressed" % (len(res["rows"]),
                                                               res["suppressed_steps"]),
                                  res["consents"], at=now)
    return res


def individual_curve(db, dev, since=None, until=None, now=None):
    """A household's readings (load curve), only with its "individual_curve" consent in
    force now. -> result dict with "rows"; Refusal otherwise. Logged either way."""
    now = time.time() if now is None else now
    cons = db.consents(dev=dev, use="individual_curve", at=now)
    res = {"what": "individual_curve", "dev": dev, "use": "individual_curve",
           "rule": "consent", "group_size": 1, "since": since, "until": until,
           "consents": [c["id"] for c in cons], "rows": []}
    if not cons:
        res["reason"] = "device %r: no individual_curve consent in force" % dev
        res["log_id"] = db.record_use("curve refused", dev, "individual_curve", "consent",
                                      0, res["reason"], [], at=now)
        raise Refusal(res)
    for r in db.readings(dev, since, until):
        if r.get("kind", "reading") == "reading" and r.get("t") is not None:
            res["rows"].append({"t": r["t"], "time": _iso(r["t"]),
                                "energy_import_wh": r.get("energy_import_wh"),
                                "apparent_power_va": r.get("apparent_power_va"),
                                "active_power_w": r.get("active_power_w")})
    res["log_id"] = db.record_use("individual_curve", dev, "individual_curve", "consent", 1,
                                  "%d readings" % len(res["rows"]), res["consents"], at=now)
    return res


def _iso(t, tz="UTC"):
    return datetime.datetime.fromtimestamp(t, _tz(tz)).isoformat()


META = ("group", "use", "rule", "threshold", "group_size", "step", "log_id")


def to_csv(res):
    """Aggregate or curve result -> CSV text; every row carries the group's size, the
    rule applied and the log id (the consents it relied on are in the use log)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    if res["what"] == "aggregate":
        cols = ["time", "start", "households", "sum_wh", "q1_wh", "median_wh", "q3_wh"]
        meta = [res.get(k) for k in META]
        w.writerow(list(META) + cols)
    else:
        cols = ["time", "t", "energy_import_wh", "apparent_power_va", "active_power_w"]
        meta = [res["dev"], res["use"], res["rule"], 1, 1, "reading", res.get("log_id")]
        w.writerow(["dev", "use", "rule", "threshold", "group_size", "step", "log_id"] + cols)
    for r in res["rows"]:
        w.writerow(meta + ["" if r.get(c) is None else r.get(c) for c in cols])
    return buf.getvalue()


def to_json(res):
    return json.dumps(res, indent=1)


def plot_html(res):
    """A page with the group's 10-minute curve (sum and median per household) as inline
    SVG: no script, no network."""
    rows = res["rows"]
    w, h, pad = 960, 320, 50
    title = "Group %s: energy per %s (%s rule, %d households)" % (
        res["group"], res["step"], res["rule"], res["group_size"])
    parts = ["<!doctype html><meta charset=utf-8><title>%s</title>" % _esc(title),
             "<h1>%s</h1>" % _esc(title)]
    if rows:
        t0, t1 = rows[0]["start"], rows[-1]["start"]
        span = max(t1 - t0, 1)
        top = max(r["sum_wh"] for r in rows) or 1
        mtop = max(r["median_wh"] for r in rows) or 1

        def line(key, vmax, colour):
            pts = " ".join("%.1f,%.1f" % (pad + (r["start"] - t0) * (w - 2 * pad) / span,
                                          h - pad - r[key] * (h - 2 * pad) / vmax)
                           for r in rows)
            return ("<polyline fill=none stroke='%s' stroke-width=1.5 points='%s'/>"
                    % (colour, pts))
        parts.append("<svg width=%d height=%d style='border:1px solid #ccc'>" % (w, h))
        parts.append(line("sum_wh", top, "#1565c0"))
        parts.append(line("median_wh", mtop, "#c62828"))
        parts.append("<text x=%d y=20 fill='#1565c0'>sum, max %d Wh</text>" % (pad, top))
        parts.append("<text x=%d y=38 fill='#c62828'>median household, max %d Wh</text>"
                     % (pad, mtop))
        parts.append("<text x=%d y=%d>%s</text><text x=%d y=%d text-anchor=end>%s</text>"
                     % (pad, h - 10, rows[0]["time"], w - pad, h - 10, rows[-1]["time"]))
        parts.append("</svg>")
    parts.append("<p>%d steps shown, %d left out (fewer than %d households). Use log id "
                 "%s; consents relied on: %d.</p>" % (len(rows), res["suppressed_steps"],
                                                      res["threshold"], res.get("log_id"),
                                                      len(res["consents"])))
    return "".join(parts)


def plot_png(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = res["rows"]
    xs = [datetime.datetime.fromtimestamp(r["start"], datetime.timezone.utc) for r in rows]
    fig, ax = plt.subplots(figsize=(10, 3.8), dpi=100)
    h1, = ax.plot(xs, [r["sum_wh"] for r in rows], drawstyle="steps-post", label="sum")
    ax2 = ax.twinx()
    h2, = ax2.plot(xs, [r["median_wh"] for r in rows], drawstyle="steps-post",
                   color="#c62828", label="median household")
    ax.legend(handles=[h1, h2], loc="upper left")
    ax.set_ylabel("Wh per %s (sum)" % res["step"])
    ax2.set_ylabel("Wh (median household)")
    ax.set_title("Group %s, %s rule, %d households" % (res["group"], res["rule"],
                                                         res["group_size"]))
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
