# TIC decoder benchmark: speed on CPython and MicroPython, heap allocation per frame
# and heap needed after 1 vs 500 frames on the MicroPython unix port.
#
#   python -m tools.bench.bench_tic
#
# MicroPython figures come from subprocesses of the unix port running the decoder
# compiled with mpy-cross (as frozen firmware would be, so the compiler's own memory
# does not count). The unix port is 64-bit: pointers and object headers are twice the
# ESP8266's, so its byte figures are upper bounds for the device.
#   alloc/frame   gc.mem_alloc() delta over many frames with the collector off, i.e.
#                 bytes allocated per decoded frame in steady state (frames cycle through
#                 a real capture, so values change as on a live line)
#   live          gc.mem_alloc() after gc.collect(): decoder + last reading
#   min heap      smallest -X heapsize in which decoding N frames succeeds (binary
#                 search, 1 KB steps): the same after 1 and 500 frames means no growth
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
TIC = os.path.join(ROOT, "tests", "captures", "tic")
VENV = os.path.join(ROOT, ".venv", "bin")
MODULES = ("firmware/__init__", "firmware/frame/__init__", "firmware/frame/tic",
           "firmware/reading/__init__", "firmware/reading/tic",
           "firmware/reading/tic_labels", "firmware/reading/tic_values",
           "firmware/reading/tic_build")
CASES = (("historic mono Tempo", "hist_tempo_mono_pyteleinfo.txt"),
         ("historic tri BASE", "hist_tri_base_ticdecodecpp.bin"),
         ("standard mono", "std_mono_base_ticdecodecpp.bin"),
         ("standard tri producer", "std_tri_tempo_producer_openhab.txt"))


def frames_of(name):
    # the capture's complete STX..ETX frames (a live line repeats frames like these)
    with open(os.path.join(TIC, name), "rb") as f:
        data = f.read()
    out = []
    i = data.find(b"\x02")
    while i >= 0:
        j = data.find(b"\x03", i)
        k = data.find(b"\x02", i + 1)
        if j > 0 and (k < 0 or j < k):
            out.append(data[i:j + 1])
        i = k
    return out


def cpython_speed():
    from firmware.reading.tic import TicDecoder
    print("CPython %s: frames per second (whole frames fed in 128-byte chunks)"
          % sys.version.split()[0])
    for label, name in CASES:
        frames = frames_of(name)
        stream = b"".join(frames)
        chunks = [stream[i:i + 128] for i in range(0, len(stream), 128)]
        best = None
        for _ in range(3):
            dec = TicDecoder("auto")
            t = time.perf_counter()
            rounds = 0
            while time.perf_counter() - t < 0.5:
                for c in chunks:
                    dec.feed(c)
                rounds += 1
            dt = (time.perf_counter() - t) / (rounds * len(frames))
            best = dt if best is None or dt < best else best
        print("  %-24s %5d B/frame  %8.0f frames/s  %7.2f ms/frame"
              % (label, len(stream) // len(frames), 1 / best, best * 1000))


MP_SCRIPT = r'''
import gc, sys, time
mode = sys.argv[1]
path = sys.argv[2]
fields = sys.argv[3] == "1"
n = int(sys.argv[4])
data = open(path, "rb").read()
frames = []
i = data.find(b"\x02")
while i >= 0:
    j = data.find(b"\x03", i)
    k = data.find(b"\x02", i + 1)
    if j > 0 and (k < 0 or j < k):
        frames.append(data[i:j + 1])
    i = k
data = None
# the frames cut into 128-byte chunks beforehand, so the loop below allocates nothing
# of its own: what the collector sees is the decoder's
chunks = []
for f in frames:
    for p in range(0, len(f), 128):
        chunks.append(f[p:p + 128])
frames = None
gc.collect()
m0 = gc.mem_alloc()
from firmware.reading.tic import TicDecoder
gc.collect()
m1 = gc.mem_alloc()
dec = TicDecoder("auto", fields=fields)
gc.collect()
m2 = gc.mem_alloc()
# a second instance, to size one decoder alone (the first import may free garbage)
extra = TicDecoder("auto", fields=fields)
gc.collect()
m3 = gc.mem_alloc()
extra = None
gc.collect()

def run(count):
    got = 0
    last = None
    k = 0
    nc = len(chunks)
    while got < count:
        for r in dec.feed(chunks[k]):
            got += 1
            last = r
        k += 1
        if k == nc:
            k = 0
    return last

if mode == "alloc":
    run(2 * len(chunks))            # warm: every value seen once
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    run(n)
    b = gc.mem_alloc()
    gc.enable()
    last = run(1)
    gc.collect()
    live = gc.mem_alloc()
    t = time.ticks_us()
    run(n)
    dt = time.ticks_diff(time.ticks_us(), t)
    print("RESULT", (b - a) // n, m1 - m0, m3 - m2, live - m0, n * 1000000 // dt)
else:
    run(n)
    gc.collect()
    print("RESULT", gc.mem_alloc())
'''


def build_mpy(tmp):
    mpy_cross = os.path.join(VENV, "mpy-cross")
    if not os.path.exists(mpy_cross):
        mpy_cross = shutil.which("mpy-cross") or mpy_cross
    for m in MODULES:
        dst = os.path.join(tmp, m + ".mpy")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        subprocess.run([mpy_cross, "-o", dst, m + ".py"], cwd=ROOT, check=True)
    with open(os.path.join(tmp, "bench_tic_mp.py"), "w") as f:
        f.write(MP_SCRIPT)


def mp_run(tmp, heap, args):
    mp = os.path.join(VENV, "micropython")
    env = dict(os.environ)
    env["MICROPYPATH"] = tmp
    r = subprocess.run([mp, "-X", "heapsize=" + heap, os.path.join(tmp, "bench_tic_mp.py")]
                       + [str(a) for a in args], cwd=tmp, env=env, capture_output=True,
                       text=True, timeout=300)
    for ln in r.stdout.splitlines():
        if ln.startswith("RESULT"):
            return [int(x) for x in ln.split()[1:]]
    return None


def min_heap(tmp, path, fields, n):
    lo, hi = 16, 256   # KB
    if mp_run(tmp, "%dK" % hi, ["peak", path, fields, n]) is None:
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mp_run(tmp, "%dK" % mid, ["peak", path, fields, n]) is None:
            lo = mid
        else:
            hi = mid
    return hi


def micropython_figures():
    mp = os.path.join(VENV, "micropython")
    if not os.path.exists(mp):
        print("MicroPython unix port not found at", mp)
        return
    tmp = tempfile.mkdtemp(prefix="bench_tic_")
    try:
        build_mpy(tmp)
        print()
        print("MicroPython unix port (64-bit), decoder from .mpy; fields=all / fields=DATE only")
        print("  %-24s %-6s %10s %8s %9s %8s %9s %12s"
              % ("capture", "fields", "alloc/frm", "code", "instance", "live", "frames/s",
                 "min heap 1/500"))
        for label, name in CASES:
            path = os.path.join(TIC, name)
            for fields in (1, 0):
                r = mp_run(tmp, "2M", ["alloc", path, fields, 500])
                if r is None:
                    print("  %-24s failed" % label)
                    continue
                alloc, code, inst, live, fps = r
                h1 = min_heap(tmp, path, fields, 1)
                h500 = min_heap(tmp, path, fields, 500)
                print("  %-24s %-6s %8d B %6d B %7d B %6d B %9d %6sK/%sK"
                      % (label, "all" if fields else "DATE", alloc, code, inst, live, fps,
                         h1, h500))
        print("  (alloc/frm: steady-state bytes allocated per decoded frame; code: heap")
        print("   taken by importing the .mpy modules, in flash when frozen on the device;")
        print("   instance: TicDecoder buffers and caches; live: decoder + last reading +")
        print("   code after gc; min heap: whole process incl. the capture held in RAM)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    cpython_speed()
    micropython_figures()
    return 0


if __name__ == "__main__":
    sys.exit(main())
