"""`make demo`: replay real meter captures through the firmware (MicroPython unix port)
to a local MQTT broker and the HTTPS collector, show the readings arriving, plot them.

    python -m tools.demo [--out demo-out] [--cpython] [CAPTURE ...]

Starts mosquitto on free loopback ports (when installed; otherwise the MQTT sink is left
out and only HTTPS is used), the collector (HTTPS with its own CA + MQTT subscriber),
writes a device config.json with the collector's CA and a fresh HMAC key, runs
`python -m tools.replay CAPTURE --config CFG --micropython` for each capture (one
simulated dongle per capture), prints per dongle the readings recorded, uploaded and
received by the collector, writes OUT/load_curve.png and .html, and stops everything.
Everything binds to 127.0.0.1.

Exit status: 0 when every dongle delivered every reading it recorded to the collector,
1 when any did not (a replay failed, recorded nothing, or left readings behind).
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
CORPUS = os.path.join(ROOT, "tests", "captures")
# (capture, device id, repeat): one dongle per meter, so the collector shows three
# devices; the historic capture (10 real frames, 23 s) is replayed 12 times (~4.6 min of
# meter time, ~60 readings at 5 s). P1 telegrams repeat once per second by themselves.
CAPTURES = [("tic/hist_tempo_mono_pyteleinfo.txt", "a1b2c3", 12),
            ("tic/std_mono_base_ticdecodecpp.bin", "d4e5f6", 6),
            ("dsmr/nl_v5_athom_iskra_am550.txt", "0f1e2d", 60)]
BUDGET_S = 100      # the whole demo stays under two minutes


def start_broker(certfile=None, keyfile=None):
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
    try:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": ["replay still running after %d s, stopped" % timeout]}
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout).strip().splitlines()[-1:] or ["failed"]}
    try:
        with open(report_path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"error": ["no report"]}


class Progress:
    # a live count of the collector's readings while a replay runs (terminals only: in a
    # log the carriage returns would pile up)
    def __init__(self, col):
        self.col = col
        self.tty = sys.stdout.isatty()
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
        if self.tty:
            self.th.start()
        return self

    def __exit__(self, *a):
        if self.tty:
            self.stop.set()
            self.th.join()
            sys.stdout.write("\r" + " " * 40 + "\r")


def sink_summary(uploads):
    # per sink: windows ok / failed, records and bytes acknowledged (firmware's report)
    by = {}
    for c in uploads:
        s = by.setdefault(c.get("sink"), {"ok": 0, "failed": 0, "records": 0, "bytes": 0,
                                          "errors": []})
        if c.get("ok"):
            s["ok"] += 1
            s["records"] += c.get("records") or 0
            s["bytes"] += c.get("bytes") or 0
        else:
            s["failed"] += 1
            if c.get("error") and c["error"] not in s["errors"]:
                s["errors"].append(c["error"])
    return by


def verdict(rep, received):
    """-> None when the dongle delivered every reading it recorded, else why not."""
    if "error" in rep:
        return "replay failed: " + " ".join(rep["error"])
    rec = rep.get("readings_recorded", 0)
    if rec == 0:
        return "no reading recorded"
    if rep.get("backlog"):
        return "%d readings left in the dongle's store" % rep["backlog"]
    if received < rec:
        return "collector received %d of %d readings" % (received, rec)
    return None


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
    broker = start_broker(cert, kfile)
    srv = sub = None
    rows = []
    try:
        srv = serve_https(col, "127.0.0.1", 0, cert, kfile)
        hport = srv.server_port
        print("collector: https://127.0.0.1:%d/ (own CA, printed into the device config)"
              % hport)
        cfg = {"ssid": "demo", "password": "", "https_url": "https://127.0.0.1:%d/ingest" % hport,
               "ca_pem": ca_pem, "hmac_key": key, "replay_wall_start": int(time.time()) - 3600}
        if broker is not None:
            sub = MqttSubscriber(col, "127.0.0.1", broker.port).start()
            sub.connected.wait(10)
            cfg.update({"mqtt_host": "127.0.0.1", "mqtt_port": broker.tls_port,
                        "ha_discovery": True})
            print("broker: mosquitto on 127.0.0.1:%d (TLS, dongles) and :%d (collector)"
                  % (broker.tls_port, broker.port))
        else:
            print("broker: mosquitto not installed, MQTT sink left out")
        cfg_path = os.path.join(work, "config.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        if a.captures:
            caps = [(c, "%06x" % (0xd0000 + i), None) for i, c in enumerate(a.captures)]
        else:
            caps = [(os.path.join(CORPUS, c), d, n) for c, d, n in CAPTURES]
        where = "CPython" if a.cpython else "MicroPython unix port"
        for cap, dev, rep_n in caps:
            name = os.path.basename(cap)
            left = BUDGET_S - (time.time() - t0)
            if left < 10:
                rows.append((dev, name, {"error": ["time budget reached, not run"]}, 0))
                continue
            print("dongle %s: replay %s (%s)" % (dev, name, where))
            with Progress(col):
                rep = replay(cap, cfg_path, os.path.join(work, "report.json"),
                             not a.cpython, timeout=min(60, left), device_id=dev,
                             repeat=rep_n)
                # the MQTT subscriber may still be storing the last batch
                end = time.time() + 3
                while time.time() < end and col.count(dev) < rep.get("readings_recorded", 0):
                    time.sleep(0.1)
            received = col.count(dev)
            for sink, s in sorted(sink_summary(rep.get("uploads", [])).items()):
                print("  %-6s %2d windows ok, %2d failed: %4d records, %6d bytes%s" % (
                    sink, s["ok"], s["failed"], s["records"], s["bytes"],
                    " (%s)" % ", ".join(s["errors"]) if s["errors"] else ""))
            why = verdict(rep, received)
            if why:
                print("  FAILED:", why)
            rows.append((dev, name, rep, received))
        # one plot per dongle: each meter has its own clock (the standard TIC and DSMR
        # captures carry their recording dates), so they do not share a time axis
        plots = []
        for i, (dev, _, _, _) in enumerate(rows):
            p = os.path.join(a.out, "load_curve.png" if i == 0 else "load_curve_%s.png" % dev)
            col.plot_png(p, dev)
            plots.append(p)
        html = os.path.join(a.out, "load_curve.html")
        with open(html, "w") as f:
            f.write(col.plot_html())
        csv_path = os.path.join(a.out, "readings.csv")
        with open(csv_path, "w") as f:
            f.write(col.export_csv())
        print()
        print("%-7s %-36s %8s %8s %9s" % ("dongle", "capture", "recorded", "uploaded",
                                          "collector"))
        failed = []
        for dev, name, rep, received in rows:
            why = verdict(rep, received)
            print("%-7s %-36s %8d %8d %9d  %s" % (
                dev, name, rep.get("readings_recorded", 0), rep.get("readings_uploaded", 0),
                received, "ok" if why is None else "FAILED"))
            if why:
                failed.append("%s (%s): %s" % (dev, name, why))
        print()
        print("plot: %s" % plots[0] if plots else "plot: none (no dongle ran)")
        for p in plots[1:]:
            print("      %s" % p)
        print("      %s, %s" % (html, csv_path))
        if failed or not rows:
            for f in failed:
                print("demo FAILED: dongle " + f)
            return 1
        print("demo ok: %d dongles, every reading delivered (%d at the collector, %.0f s)"
              % (len(rows), col.count(), time.time() - t0))
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
