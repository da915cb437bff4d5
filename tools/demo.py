"""`make demo`: replay real meter captures through the firmware (MicroPython unix port)
to a local MQTT broker and the HTTPS collector, show the readings arriving, plot them.

    python -m tools.demo [--out demo-out] [--cpython] [CAPTURE ...]

Starts mosquitto on a free loopback port (when /usr/sbin/mosquitto or `mosquitto` on
PATH exists; otherwise the MQTT sink is left out and only HTTPS is used), the collector
(HTTPS with its own CA + MQTT subscriber), writes a device config.json with the
collector's CA and a fresh HMAC key, runs `python -m tools.replay CAPTURE --config CFG
--micropython` for each capture, prints progress, writes OUT/load_curve.png and .html,
and stops everything. Everything binds to 127.0.0.1.
"""
import argparse
import binascii
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "..", "shared", "corpus")
# (capture, device id, repeat): one dongle per meter, so the collector shows three
# devices; the historic capture (10 real frames, 23 s) is replayed 12 times (~4.6 min of
# meter time, ~60 readings at 5 s). P1 telegrams repeat once per second by themselves.
CAPTURES = [("tic/hist_tempo_mono_pyteleinfo.txt", "a1b2c3", 12),
            ("tic/std_mono_base_ticdecodecpp.bin", "d4e5f6", 6),
            ("dsmr/nl_v5_athom_iskra_am550.txt", "0f1e2d", 60)]
BUDGET_S = 100      # the whole demo stays under two minutes


def start_broker(workdir, certfile=None, keyfile=None):
    """-> a started services.Mosquitto, or None when no broker is installed.

    The device side connects with TLS (the config carries the collector's CA in ca_pem,
    which turns MQTT TLS on, as it would on a real network); the collector's subscriber
    uses the plain listener on loopback."""
    from tools.services import Mosquitto, mosquitto_exe
    if mosquitto_exe() is None:
        return None
    return Mosquitto(tls=(certfile, keyfile) if certfile else None).start()


def replay(capture, cfg_path, report_path, micropython=True, timeout=60, device_id=None,
           repeat=None):
    """The one call into the firmware: the lead's replay harness. -> report dict."""
    cmd = [sys.executable, "-m", "tools.replay", capture, "--config", cfg_path,
           "--report", report_path]
    if device_id:
        cmd += ["--device-id", device_id]
    if repeat:
        cmd += ["--repeat", str(repeat)]
    if micropython:
        cmd.append("--micropython")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout).strip().splitlines()[-1:] or ["failed"]}
    try:
        with open(report_path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"error": ["no report"]}


class Progress:
    def __init__(self, col):
        self.col = col
        self.stop = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        spin = "|/-\\"
        i = 0
        while not self.stop.wait(0.25):
            sys.stdout.write("\r  collector: %5d readings %s" % (self.col.count(), spin[i % 4]))
            sys.stdout.flush()
            i += 1

    def __enter__(self):
        self.th.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        self.th.join()
        sys.stdout.write("\r  collector: %5d readings  \n" % self.col.count())


def main(argv=None):
    ap = argparse.ArgumentParser(description="end-to-end demo")
    ap.add_argument("captures", nargs="*")
    ap.add_argument("--out", default=os.path.join(ROOT, "demo-out"))
    ap.add_argument("--cpython", action="store_true", help="run the firmware on CPython")
    a = ap.parse_args(argv)
    sys.path[:0] = [ROOT]
    from tools.collector import Collector, MqttSubscriber, serve_https
    from tools.services import ensure_pki
    t0 = time.time()
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="linky-demo-")
    key = binascii.hexlify(os.urandom(16)).decode()
    col = Collector(os.path.join(work, "collector"), default_key=binascii.unhexlify(key))
    ca_pem, cert, kfile = ensure_pki(os.path.join(work, "collector"))
    broker = start_broker(work, cert, kfile)
    srv = sub = None
    summary = []
    try:
        srv = serve_https(col, "127.0.0.1", 0, cert, kfile)
        hport = srv.server_port
        print("collector: https://127.0.0.1:%d/ (own CA, printed into the device config)"
              % hport)
        cfg = {"ssid": "demo", "password": "", "https_url": "https://127.0.0.1:%d/ingest" % hport,
               "ca_pem": ca_pem, "hmac_key": key, "replay_wall_start": int(time.time()) - 3600}
        if broker is not None:
            mport, mtls = broker.port, broker.tls_port
            sub = MqttSubscriber(col, "127.0.0.1", mport).start()
            sub.connected.wait(10)
            cfg.update({"mqtt_host": "127.0.0.1", "mqtt_port": mtls, "ha_discovery": True})
            print("broker: mosquitto on 127.0.0.1:%d (TLS, device) and :%d (collector)"
                  % (mtls, mport))
        else:
            print("broker: mosquitto not installed, MQTT sink left out")
        cfg_path = os.path.join(work, "config.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        caps = ([(c, None, None) for c in a.captures] if a.captures else
                [(os.path.join(CORPUS, c), d, n) for c, d, n in CAPTURES])
        for cap, dev, rep_n in caps:
            left = BUDGET_S - (time.time() - t0)
            if left < 10:
                print("time budget reached, skipping", os.path.basename(cap))
                continue
            before = col.count()
            print("replay %s (%s)" % (os.path.basename(cap),
                                      "CPython" if a.cpython else "MicroPython unix port"))
            with Progress(col):
                rep = replay(cap, cfg_path, os.path.join(work, "report.json"),
                             not a.cpython, timeout=min(60, left), device_id=dev,
                             repeat=rep_n)
                time.sleep(0.5)     # let the MQTT subscriber drain
            got = col.count() - before
            if "error" in rep:
                print("  replay failed:", " ".join(rep["error"]))
            else:
                print("  recorded %d, uploaded %d (firmware report), collector +%d, backlog %s"
                      % (rep.get("readings_recorded", 0), rep.get("readings_uploaded", 0),
                         got, rep.get("backlog")))
                for c in rep.get("uploads", []):
                    print("    %-6s %s %d records, %d bytes%s" % (
                        c.get("sink"), "ok    " if c.get("ok") else "FAILED", c.get("records") or 0,
                        c.get("bytes") or 0, "" if c.get("ok") else " (%s)" % c.get("error")))
            summary.append((os.path.basename(cap), rep, got))
        # one plot per dongle: each meter has its own clock (the standard TIC and DSMR
        # captures carry their recording dates), so they do not share a time axis
        png = os.path.join(a.out, "load_curve.png")
        devs = [d for _, d, _ in CAPTURES] if not a.captures else [None]
        col.plot_png(png, devs[0])
        for d in devs[1:]:
            col.plot_png(os.path.join(a.out, "load_curve_%s.png" % d), d)
        with open(os.path.join(a.out, "load_curve.html"), "w") as f:
            f.write(col.plot_html())
        with open(os.path.join(a.out, "readings.csv"), "w") as f:
            f.write(col.export_csv())
        print("wrote %s, load_curve.html, readings.csv (%d readings, %.0f s)"
              % (png, col.count(), time.time() - t0))
        return 0
    finally:
        if sub:
            sub.close()
        if srv:
            srv.shutdown()
            srv.server_close()
        if broker is not None:
            broker.stop()
        col.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
