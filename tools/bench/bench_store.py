# Record store benchmark: flash bytes per reading, records per 4 KB sector, flash writes
# per reading, wear per year at one reading every 5 s, and how many hours of readings a
# 64 KB area (what a 1 MB ESP8266 can spare: 16 sectors) holds without network.
# Then, under the MicroPython unix port (modules precompiled with mpy-cross as frozen
# firmware would be): heap held by an open Store and time per append.
#
#   python -m tools.bench.bench_store
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from firmware.store import record as rec          # noqa: E402
from firmware.store.log import Store              # noqa: E402
from tools.flashsim import FaultFlash              # noqa: E402

PERIOD_S = 5
YEAR_READINGS = 365 * 24 * 3600 // PERIOD_S
SECTORS = 16
T0 = 1767225600


class Rng:
    def __init__(self, s):
        self.s = s

    def below(self, n):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x & 0xFFFFFFFF
        return self.s % n


def historic():
    # HC/HP historic TIC, time from NTP (the historic frame has no clock)
    rng = Rng(11)
    e = 23456789
    t = T0
    i = 0
    while True:
        i += 1
        t += PERIOD_S
        e += rng.below(12)
        yield {"energy_import_wh": e, "apparent_power_va": 400 + rng.below(3000),
               "tariff_period": "HC.." if (i // 2000) % 2 else "HP.."}, t, "ntp"


def standard():
    rng = Rng(12)
    e, x = 12345678, 2345678
    t = T0
    while True:
        t += PERIOD_S
        e += rng.below(10)
        x += rng.below(2)
        yield {"energy_import_wh": e, "energy_export_wh": x,
               "apparent_power_va": 300 + rng.below(4000), "apparent_power_export_va": 0,
               "tariff_index": 2, "tariff_period": "HEURE PLEINE"}, t, "meter"


def dsmr():
    rng = Rng(13)
    e, x = 9876543, 1234567
    t = T0
    while True:
        t += PERIOD_S
        e += rng.below(10)
        x += rng.below(3)
        yield {"energy_import_wh": e, "energy_export_wh": x, "active_power_w": rng.below(5000),
               "active_power_export_w": rng.below(800), "tariff_index": 1,
               "tariff_period": "offpeak"}, t, "meter"


def run(gen, n, ack_every=None, drop=False):
    f = FaultFlash(sectors=SECTORS, sector_size=4096)
    s = Store(f, drop_oldest=drop)
    prev = None
    sizes = 0
    stored = 0
    first_full = None
    for i in range(n):
        r, t, src = next(gen)
        data, prev = rec.encode(r, t, src, prev)
        sizes += len(data)
        q = s.append(data)
        if q is None and first_full is None:
            first_full = i
        if q is not None:
            stored += 1
        if ack_every and i % ack_every == ack_every - 1:
            p = s.peek(10000)
            if p:
                s.ack(p[-1][0])
    return f, s, sizes / n, first_full, stored


def main():
    print("Record store on a 64 KB area (%d x 4 KB sectors), one reading every %d s"
          % (SECTORS, PERIOD_S))
    print()
    print("%-16s %9s %9s %9s %9s %9s %11s %9s" % (
        "reading", "record B", "flash B", "rec/sect", "wr/read", "er/read", "erase/sect/y",
        "hours"))
    for name, g in (("TIC historic", historic), ("TIC standard", standard), ("DSMR", dsmr)):
        n = 20000
        # uplink batch every 60 readings (5 min)
        f, s, rec_b, _, _ = run(g(), n, ack_every=60)
        sect_opens = f.erases
        flash_b = (sect_opens * 4096.0) / n if sect_opens else 0
        per_sector = n / float(sect_opens) if sect_opens else 0
        wr = f.writes / float(n)
        er = f.erases / float(n)
        wear = er * YEAR_READINGS / SECTORS
        # no network: how long until readings are aggregated instead of stored
        f2, s2, _, full_at, _ = run(g(), 12000)
        hours = (full_at if full_at is not None else 12000) * PERIOD_S / 3600.0
        print("%-16s %9.1f %9.1f %9.0f %9.3f %9.4f %11.0f %9.1f" % (
            name, rec_b, flash_b, per_sector, wr, er, wear, hours))
    print()
    print("record B: app-level record (delta form) | flash B: sector space per reading, "
          "framing, headers and ack frames included")
    print("wr/read, er/read: flash writes and sector erases per reading (acks every 60 "
          "readings included)")
    print("erase/sect/y: erase cycles per sector per year (NOR flash is rated ~100000)")
    print("hours: readings kept one by one with no network before aggregation starts")

    # full store: aggregation keeps going for how long, at what cost
    f, s, _, full_at, stored = run(historic(), 60000)
    s.flush()
    print()
    print("No network for %.1f days (historic TIC): %d readings stored one by one, %d merged "
          "into aggregates (spans doubling), dropped %d"
          % (60000 * PERIOD_S / 86400.0, stored, s.aggregated, s.dropped))
    f, s, _, _, _ = run(historic(), 30000, drop=True)
    print("drop_oldest: after %d readings, %d kept, %d dropped (counted)"
          % (30000, s.count, s.dropped))

    # open cost with a full head sector
    f, s, _, _, _ = run(historic(), 3000)
    f.reads = 0
    t = time.time()
    Store(f)
    print()
    print("open: %d flash reads (16 headers + the head sector's frames), %.1f ms on CPython"
          % (f.reads, (time.time() - t) * 1000))
    micropython_figures()


MP_SCRIPT = r"""
import gc, time
from firmware.store import record as rec
from firmware.store.log import Store
from tools.flashsim import FaultFlash
f = FaultFlash(sectors=16, sector_size=4096)
gc.collect()
m0 = gc.mem_free()
s = Store(f)
gc.collect()
print("store_heap", m0 - gc.mem_free())
e = 1000000
t0 = time.ticks_us()
N = 2000
for i in range(N):
    e += 7
    s.add_reading({"energy_import_wh": e, "apparent_power_va": 1234, "tariff_period": "HC.."},
                  1767225600 + 5 * i, "ntp")
    if i % 60 == 59:
        p = s.peek(60)
        s.ack(p[-1][0])
dt = time.ticks_diff(time.ticks_us(), t0)
print("us_per_reading", dt // N)
gc.collect()
m1 = gc.mem_free()
t0 = time.ticks_us()
s2 = Store(f)
print("open_us", time.ticks_diff(time.ticks_us(), t0))
"""


def micropython_figures():
    mp = os.path.join(ROOT, ".venv", "bin", "micropython")
    cross = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
    if not os.path.exists(mp):
        print("(MicroPython unix port not found: skipped)")
        return
    with tempfile.TemporaryDirectory() as d:
        mods = ["firmware/__init__", "firmware/port/__init__", "firmware/store/__init__",
                "firmware/store/record", "firmware/store/log", "tools/__init__", "tools/flashsim"]
        ok = os.path.exists(cross)
        for m in mods:
            src = os.path.join(ROOT, m + ".py")
            out = os.path.join(d, m + ".mpy")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            if not os.path.exists(src):
                open(os.path.join(d, m + ".py"), "w").close()
                continue
            if ok:
                r = subprocess.run([cross, "-march=x64", "-o", out, src], capture_output=True)
                ok = r.returncode == 0
        path = d if ok else ROOT
        env = dict(os.environ)
        env["MICROPYPATH"] = path
        r = subprocess.run([mp, "-X", "heapsize=256K", "-c", MP_SCRIPT], capture_output=True,
                           text=True, env=env, cwd=d, timeout=300)
        if r.returncode:
            print("MicroPython run failed:", r.stderr[-500:])
            return
        vals = dict(line.split() for line in r.stdout.split("\n") if line.strip())
        print()
        print("MicroPython unix port (%s): Store heap after open %s B; %s us per reading "
              "(encode + decode + append, acks every 60); open %s us"
              % ("mpy-cross bytecode" if ok else "source", vals.get("store_heap"),
                 vals.get("us_per_reading"), vals.get("open_us")))
        print("(host CPU figures: the ESP8266 is far slower; compare runs, not devices)")


if __name__ == "__main__":
    main()
