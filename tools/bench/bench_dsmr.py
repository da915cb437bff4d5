# DSMR P1 decoder benchmark.
#
# 1. CPython, one process: dsmr_parser (the Python reference, CRC checked) and our
#    DsmrDecoder (framing + CRC + decoding into a reading) on the same telegrams;
#    prints microseconds per telegram and the speed ratio (goal >= 5x).
# 2. MicroPython unix port, and the 32-bit build with the ESP8266's object model when
#    tools/mp32 can build it (subprocess): heap allocated per telegram
#    (micropython.mem_total delta), size of the live reading, decode time against the
#    telegram's own time on the wire at 115200 Bd (below 1x the reader keeps up with
#    the meter; the device's CPU is slower than this host), the peak live heap while a
#    telegram streams in (a 3.7 KB / 5.8 KB Belgian telegram with a long text against
#    a short one), and the time to decrypt + decode a Smarty frame.
#    Modules are precompiled with mpy-cross (-march=x64, as frozen firmware would
#    be) so the heap figures are not inflated by the compiler.
#
#   python -m tools.bench.bench_dsmr
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
CORPUS = os.path.join(ROOT, "tests", "captures")
VENV = os.path.join(ROOT, ".venv", "bin")
MODULES = ("firmware/__init__", "firmware/frame/__init__", "firmware/frame/dsmr",
           "firmware/frame/smarty", "firmware/reading/__init__", "firmware/reading/dsmr")


def _spec_for(data):
    from dsmr_parser import telegram_specifications as ts
    h = data[:20]
    if h.startswith(b"/FLU"):
        return ts.BELGIUM_FLUVIUS
    if h.startswith(b"/Lux"):
        return ts.LUXEMBOURG_SMARTY
    if h.startswith(b"/SAG5"):
        return ts.EON_HUNGARY
    if h.startswith(b"/ISk5\x02MIE"):
        return ts.ISKRA_IE
    if h.startswith(b"/EST5"):
        return ts.SAGEMCOM_T210_D_R
    if h.startswith(b"/ESY"):
        return ts.Q3D
    if b"1-3:0.2.8(5" in data:
        return ts.V5
    if b"1-3:0.2.8(4" in data:
        return ts.V4
    return ts.V2_2


def _telegrams():
    # every corpus telegram with a valid CRC, plus the DSMR 2.2/3 ones that end
    # in "!" (dsmr_parser needs it)
    out = []
    with open(os.path.join(CORPUS, "INDEX.json")) as f:
        index = json.load(f)
    for e in index:
        if e["protocol"] != "dsmr" or "-> INVALID" in e["notes"] or "overflow" in e["file"]:
            continue
        with open(os.path.join(CORPUS, e["file"]), "rb") as f:
            data = f.read()
        if b"!" not in data or b"\xff" in data:
            continue
        out.append((e["file"], data))
    return out


def _bench(fn, items, rounds):
    best = None
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(rounds):
            for x in items:
                fn(x)
        dt = (time.perf_counter() - t) / (rounds * len(items))
        best = dt if best is None or dt < best else best
    return best


def cpython_ratio():
    from dsmr_parser.parsers import TelegramParser
    from firmware.reading.dsmr import DsmrDecoder

    items = []
    for name, data in _telegrams():
        spec = _spec_for(data)
        p = TelegramParser(spec)
        text = data.decode("latin-1")
        try:
            p.parse(text)
        except Exception as exc:  # a telegram dsmr_parser cannot read is not compared
            print("  skip %s: dsmr_parser %s" % (name, type(exc).__name__))
            continue
        d = DsmrDecoder()
        assert len(d.feed(data) + d.flush()) == 1, name
        items.append((name, data, text, p))
    dec = DsmrDecoder()

    def ours(it):
        r = dec.feed(it[1])
        if not r:
            dec.flush()

    def ref(it):
        it[3].parse(it[2])

    # interleaved, best of several: the machine is shared, and the ratio must not
    # depend on which of the two ran while another process was busy
    rounds = 10
    t_ref = t_ours = None
    for _ in range(5):
        a = _bench(ref, items, rounds)
        b = _bench(ours, items, rounds)
        t_ref = a if t_ref is None or a < t_ref else t_ref
        t_ours = b if t_ours is None or b < t_ours else t_ours
    nbytes = sum(len(it[1]) for it in items) / len(items)
    print("CPython %s, %d telegrams (mean %d bytes), same process:" % (
        sys.version.split()[0], len(items), nbytes))
    print("  dsmr_parser %-8s %8.1f us/telegram" % (_version("dsmr_parser"), t_ref * 1e6))
    print("  ours                 %8.1f us/telegram" % (t_ours * 1e6))
    print("  speed ratio          %8.1fx  (goal >= 5x)" % (t_ref / t_ours))
    worst = None
    for it in items:
        a = _bench(ref, [it], 20)
        b = _bench(ours, [it], 20)
        if worst is None or a / b < worst[0]:
            worst = (a / b, it[0])
    print("  slowest relative     %8.1fx  (%s)" % worst)
    return t_ref / t_ours


def smarty_cpython():
    from firmware.reading.dsmr import DsmrDecoder
    with open(os.path.join(CORPUS, "dsmr/lu_smarty_real.bin"), "rb") as f:
        frame = f.read()
    d = DsmrDecoder(key="D491470F47126332B07D1923B3504188")
    t = _bench(lambda x: d.feed(x), [frame], 50)
    print("  Smarty frame (647 B) decrypt+verify+decode: %.0f us" % (t * 1e6))


def _version(mod):
    try:
        from importlib.metadata import version
        return version(mod.replace("_", "-"))
    except Exception:
        return "?"


MP_SCRIPT = r"""
import gc, micropython, time
from firmware.reading.dsmr import DsmrDecoder
C = %(corpus)r
KEY = b'\xd4\x91\x47\x0f\x47\x12\x63\x32\xb0\x7d\x19\x23\xb3\x50\x41\x88'
def load(n):
    f = open(C + '/dsmr/' + n, 'rb'); d = f.read(); f.close(); return d
def live(r):
    gc.collect(); a = gc.mem_free(); r = None; gc.collect(); return gc.mem_free() - a
def peak(d, data):
    # live heap sampled after every 64-byte chunk, as the UART delivers it
    gc.collect(); base = gc.mem_alloc(); top = base
    for i in range(0, len(data), 64):
        d.feed(data[i:i + 64])
        gc.collect(); a = gc.mem_alloc()
        if a > top:
            top = a
    return top - base
try:
    import cryptolib
    AES = True
except ImportError:
    AES = False           # a build without AES (the 32-bit one without axTLS)
for name, key, keep in %(files)r:
    if key and not AES:
        continue
    d = DsmrDecoder(key=KEY if key else None, keep_fields=keep)
    data = load(name)
    d.feed(data)          # warm-up (first call creates lazily built objects)
    gc.collect()
    t0 = micropython.mem_total()
    out = d.feed(data)
    alloc = micropython.mem_total() - t0
    n = len(out)
    gc.collect(); a = gc.mem_free(); out = None; gc.collect(); keep = gc.mem_free() - a
    best = None
    for _ in range(5):
        t = time.ticks_us()
        out = d.feed(data)
        dt = time.ticks_diff(time.ticks_us(), t)
        out = None
        best = dt if best is None or dt < best else best
    print('MP', name + ('' if d.keep_fields else ',no-fields'), len(data), n, alloc, keep, best,
          peak(d, data))
if AES:
    from firmware.frame import smarty
for name, key, aak in () if not AES else (('lu_smarty_real.bin', KEY, None),
                       ('lu_smarty_athom_spec_encrypted_with-aad.bin', b'0123456789ABCDEF',
                        b'\xff\xee\xdd\xcc\xbb\xaa\x99\x88\x77\x66\x55\x44\x33\x22\x11\x00')):
    import binascii
    if name.startswith('lu_smarty_athom'):
        key = binascii.unhexlify('0123456789ABCDEF0123456789ABCDEF')
    g = smarty.Gcm(key)
    data = load(name)
    aad = smarty.aad_for(aak)
    best = None
    for _ in range(5):
        buf = bytearray(data)
        gc.collect()
        t0 = micropython.mem_total(); t = time.ticks_us()
        ok = smarty.decrypt_frame(g, buf, len(buf), aad)
        dt = time.ticks_diff(time.ticks_us(), t)
        alloc = micropython.mem_total() - t0
        assert ok
        best = dt if best is None or dt < best else best
    print('DEC', name, len(data), best, alloc, 'viper' if g.fast else 'int')
"""

MP_FILES = (("nl_v5_basjes_iskra_am550.txt", False, True), ("nl_v2.2_basjes_kamstrup_2.txt", False, True),
            ("be_fluvius_ndokter_2.txt", False, True), ("hu_eon_sagemcom_ndokter.txt", False, True),
            ("hu_eon_sagemcom_ndokter.txt", False, False),
            ("nl_v5_basjes_iskra_am550.txt", False, False),
            ("../be_long_text.txt", False, False), ("../be_long_text_2x.txt", False, False),
            ("lu_smarty_real.plain.txt", False, True), ("lu_smarty_real.bin", True, True))
WIRE_BPS = 115200 / 10      # P1 8N1 at 115200 Bd: 10 bits a byte (DSMR 5.0.2 s.4.2)


def _long_belgian(tmp):
    # the Fluvius telegram with a 13-month history, two more M-Bus devices and a
    # 1024-character text (and one twice as long): tools/p1long.py, as the memory test
    from tools.p1long import belgian
    with open(os.path.join(CORPUS, "dsmr", "be_fluvius_ndokter_1.txt"), "rb") as f:
        base = f.read()
    for fname, n in (("be_long_text.txt", 1024), ("be_long_text_2x.txt", 2048)):
        text = b"".join(b"%02X" % (0x41 + i % 26) for i in range(n))
        t = belgian(base, text)
        with open(os.path.join(tmp, fname), "wb") as f:
            f.write(t)


def _mp32():
    # the 32-bit build with the ESP8266's object model (tools/mp32.py), when it can be
    # built here; else None
    try:
        from tools import mp32
        why = mp32.available()
        if why:
            print("  (32-bit ESP8266-model build not available: %s)" % why)
            return None
        return mp32.plain()
    except Exception as e:
        print("  (32-bit ESP8266-model build not available: %s)" % e)
        return None


def micropython_figures():
    for label, mp, march in (("unix port, 64-bit", os.path.join(VENV, "micropython"), "x64"),
                             ("32-bit ESP8266 object model (tools/mp32)", _mp32(), "x86")):
        if mp is None or not os.path.exists(mp):
            print("MicroPython %s: not found, skipped" % label)
            continue
        _micropython_figures(label, mp, march)


def _micropython_figures(label, mp, march):
    cross = os.path.join(VENV, "mpy-cross")
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "c", "dsmr"))
        _long_belgian(os.path.join(tmp, "c"))
        compiled = os.path.exists(cross)
        if compiled:
            for m in MODULES:
                out = os.path.join(tmp, m + ".mpy")
                os.makedirs(os.path.dirname(out), exist_ok=True)
                subprocess.run([cross, "-march=" + march, "-o", out, os.path.join(ROOT, m + ".py")],
                               check=True)
        path = tmp if compiled else ROOT
        script = os.path.join(tmp, "bench_mp.py")
        with open(script, "w") as f:
            f.write(MP_SCRIPT % {"corpus": os.path.join(tmp, "c"), "files": MP_FILES})
        for n in os.listdir(os.path.join(CORPUS, "dsmr")):
            os.symlink(os.path.join(CORPUS, "dsmr", n), os.path.join(tmp, "c", "dsmr", n))
        res = subprocess.run([mp, "-X", "heapsize=256K", script], capture_output=True, text=True,
                             env=dict(os.environ, MICROPYPATH=path), timeout=300, cwd=tmp)
        if res.returncode:
            print("MicroPython run failed:", res.stderr[-500:], res.stdout[-500:])
            return
        print("MicroPython %s (%s modules), per telegram (wire: the telegram at 115200 Bd 8N1;"
              " peak: the decoder's live heap between 64-byte chunks):" % (label, "mpy-cross" if compiled else "source"))
        print("  %-42s %6s %8s %9s %8s %8s %7s %7s" % ("telegram", "bytes", "alloc B", "reading B",
                                                   "time us", "wire us", "% wire", "peak B"))
        for line in res.stdout.splitlines():
            if line.startswith("DEC "):
                _, name, size, dt, alloc, how = line.split()
                print("  Smarty decrypt+verify only (%s GHASH): %-44s %5s B %6s us %6s B allocated" % (
                    how, name, size, dt, alloc))
                continue
            if not line.startswith("MP "):
                continue
            _, name, size, n, alloc, keep, dt, pk = line.split()
            assert n == "1", line
            name = name.replace("../", "")
            label = name.replace(",no-fields", " no fields")
            label += " (Smarty)" if name.endswith(".bin") else ""
            wire = int(size) / WIRE_BPS * 1e6
            print("  %-42s %6s %8s %9s %8s %8.0f %6.2f%% %7s" % (label, size, alloc, keep, dt, wire,
                                                            100.0 * int(dt) / wire, pk))
        # smallest heap that still decodes the longest real telegram
        for heap in ("48K", "56K", "64K", "72K", "80K", "96K", "128K"):
            r = subprocess.run([mp, "-X", "heapsize=" + heap, script], capture_output=True, text=True,
                               env=dict(os.environ, MICROPYPATH=path), timeout=300, cwd=tmp)
            if r.returncode == 0:
                print("  all of the above decode with -X heapsize=%s (modules loaded into RAM, not frozen)" % heap)
                break


def main():
    ratio = cpython_ratio()
    smarty_cpython()
    micropython_figures()
    return ratio


if __name__ == "__main__":
    main()
