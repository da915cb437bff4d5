# Energy simulator of the whole board: the firmware's own app loop and energy manager
# (firmware/app.py, firmware/power/energy.py) run on SimPort (tools/simport.py), which
# integrates the supercapacitor over a virtual clock; the meter UART replays a capture
# at wire speed; the store is the real flash log (firmware/store/log.py on the
# tools/flashsim NOR model); readings leave through the real uplink code
# (firmware/uplink/uplink.py, HTTPS sink, real TLS with a generated CA) to a collector
# on 127.0.0.1 that acknowledges batches and timestamps every record on the virtual
# clock. Every reading is counted from measured (recorded by the app) to delivered
# (acknowledged by the collector).
#
#   python -m tools.sim [--policy paper|firmware] [--chip esp8266|esp32c3]
#                       [--board ltr|ltr-low|ltr-high|paper] [--source constant|meter]
#                       [--tls|--no-tls] [--power-mw P] [--power-profile hours_mw.csv]
#                       [--hours H] [--seed N] [--outage START:END] [--json] [--plot OUT.png]
#                       [--capture corpus/rel/path] [--sink https|mqtt]
#                       [--target esp8266|esp32c3]
#
# --target: the firmware's boot/app loop (tools/simdevice.py, the same loop as in-process)
#   runs on that chip's variant of the MicroPython unix port; its port calls are answered
#   by SimPort here over a loopback socket (tools/simremote.py). The report is the same.
# --sink mqtt: the uplink publishes to a mosquitto on loopback (with Home Assistant
#   discovery) instead of POSTing to the HTTP(S) collector; bytes per kind of message.
# --chip: the chip's currents, durations, sleep modes and ADC (tools/simparams.py CHIPS);
#   the firmware sees it as port.chip (its energy plan per chip, its uplink's rules: the
#   ESP8266 leaves TLS sinks out, so there the uplink is http:// with signed batches;
#   TLS is the default where the chip can, with ca_pem verified).
# --source meter: the meter's TIC supply as the ngspice Thevenin model of
#   hardware/sim/rectifier.cir sees it (tools/simmeter.py), instead of a constant power
#   at the rectifier input (--power-mw).
# The report's "energy" block accounts for every joule (harvested, shed at the clamp,
# per chip state, regulator, ESR, supervisor, dividers, leakage), time per state,
# listening time per reading, Wi-Fi join failures and bytes sent; --plot adds a panel.
#
# --policy paper: the reference design (Couraud et al., Linky TIC Reader) as its published
#   firmware behaves: each wake it reads one value and, when the capacitor is high
#   enough, sends it in one HTTPS request, then deep-sleeps 20 s (PaperPolicy below).
# --outage START:END: hours from the start during which the collector drops every
#   connection (the device joins Wi-Fi, the upload fails).
import json
import os
import shutil
import sys
import tempfile
import threading

from tools import simparams as SP


# -- the reference design's behaviour ----------------------------------------------------
class PaperPolicy:
    # The reference design's published ESP8266 firmware (bcouraud/Linky-TIC-Reader,
    # Code_ESP/2025_06_19_ChargeAngels_Linky_Wemos_1200b, setup(); the paper's ref. [11]),
    # one wake at a time: after power-on or the deep-sleep timer it reads V1 on A0; above
    # the read threshold it reads the TIC until it has one value (5 s timeout); if V1 was
    # above the send threshold and a value was read it joins Wi-Fi, waits for NTP, opens
    # one TLS connection and POSTs (setup_wifi(): one request, no answer awaited); then
    # it commits its EEPROM and deep-sleeps 20 s. Thresholds and durations:
    # tools/simparams.py (REF_*). Same interface as firmware.power.energy.EnergyManager,
    # so the same app loop runs it; it is created anew at every wake, like setup().
    def __init__(self, params=None):
        self.stage = 0
        self.v_wake = None
        self.requests = 0

    def next_action(self, now_ms, vcap_mv, backlog):
        if self.stage == 0:
            # BatteryVoltage = analogRead(A0) before anything else
            self.v_wake = vcap_mv
            if vcap_mv < SP.REF_V_READ * 1000:
                self.stage = 2
                return "deep_sleep", SP.REF_SLEEP_MS
            return "read", SP.REF_READ_TIMEOUT_MS
        if self.stage == 1:
            self.requests = 0
            return "upload", 1
        return "deep_sleep", SP.REF_SLEEP_MS

    def done(self, what, now_ms, ok):
        if what == "read":
            send = ok and self.v_wake is not None and self.v_wake >= SP.REF_V_SEND * 1000
            self.stage = 1 if send else 2
        elif what == "upload":
            self.stage = 2

    def can_afford(self, what, vcap_mv):
        # it never checks the capacitor once started; one request per wake
        if what == "batch":
            self.requests += 1
            return self.requests == 1
        return True

    def load(self, data):
        return False

    def dump(self):
        return b""


# -- the collector -------------------------------------------------------------------------
def make_cert(tmpdir):
    # the collector's certificate for 127.0.0.1 and the CA the firmware verifies it with
    # (made as the real collector makes them) -> cert, key, CA PEM
    from tools.services import write_pki
    return write_pki(tmpdir, prefix="collector")


class Collector:
    # HTTP(S) receiver on 127.0.0.1: parses each batch (firmware/uplink/batch.py),
    # stamps every seq with the virtual time it arrived, answers 200. While `down` it
    # drops the connection without an answer (the upload fails, nothing is acked).
    def __init__(self, clock, tls, tmpdir, window=None):
        import http.server
        import ssl
        self.clock = clock
        self.down = False
        self.received = {}         # seq -> virtual us of first arrival
        self.requests = 0
        self.failed = 0
        self.bytes = 0             # request bodies received (acknowledged or not)
        self.window = window       # -> id of the device's current upload window
        self.acked = {}            # window id -> virtual us of its last acknowledged request
        col = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                col.bytes += len(body)
                if col.down:
                    col.failed += 1
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                t = col.clock.us
                try:
                    doc = json.loads(body)
                    cols = doc.get("cols") or []
                    i = cols.index("seq") if "seq" in cols else 0
                    for row in doc.get("rows") or []:
                        seq = row[i] if isinstance(row, list) else row.get("seq")
                        if seq is not None and seq not in col.received:
                            col.received[seq] = t
                except (ValueError, AttributeError, IndexError, TypeError):
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                col.requests += 1
                w = col.window() if col.window else col.requests
                col.acked[w] = t
                out = b'{"ok":true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.ca_pem = ""
        if tls:
            cp, kp, pem = make_cert(tmpdir)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cp, kp)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.ca_pem = pem
        port = self.httpd.server_address[1]
        self.url = "%s://127.0.0.1:%d/ingest" % ("https" if tls else "http", port)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class MqttCollector:
    # --sink mqtt: a mosquitto on loopback (TLS listener with the same generated CA when
    # the firmware uses TLS) and a subscriber to everything the device publishes. Every
    # batch's seqs are stamped with the virtual time they arrive; bytes are counted per
    # kind of message as the broker delivers them (Home Assistant discovery, batches,
    # retained state, status), independently of the firmware's own byte counts.
    def __init__(self, clock, tls, tmpdir, window=None):
        import paho.mqtt.client as mqtt
        from tools.services import Mosquitto
        self.clock = clock
        self.down = False          # (outages are the HTTP collector's)
        self.received = {}
        self.requests = 0
        self.failed = 0
        self.bytes = 0
        self.by_kind = {}          # discovery / batch / state / status / other -> bytes
        self.msgs = {}
        self.disc_topics = set()
        self.window = window
        self.acked = {}
        self.ca_pem = ""
        files = None
        if tls:
            cp, kp, pem = make_cert(tmpdir)
            files = (cp, kp)
            self.ca_pem = pem
        self.broker = Mosquitto(tls=files).start()
        self.port = self.broker.tls_port if tls else self.broker.port
        col = self

        def on_message(client, userdata, msg):
            t = col.clock.us
            topic = msg.topic
            kind = ("discovery" if topic.startswith("homeassistant/") else
                    topic.rsplit("/", 1)[-1] if topic.startswith("linky/") else "other")
            if kind not in ("discovery", "batch", "state", "status"):
                kind = "other"
            n = len(msg.payload)
            col.by_kind[kind] = col.by_kind.get(kind, 0) + n
            col.msgs[kind] = col.msgs.get(kind, 0) + 1
            if kind == "discovery":
                col.disc_topics.add(topic)
            if kind != "batch":
                return
            col.bytes += n
            try:
                doc = json.loads(msg.payload)
                cols = doc.get("cols") or []
                i = cols.index("seq") if "seq" in cols else 0
                for row in doc.get("rows") or []:
                    seq = row[i]
                    if seq is not None and seq not in col.received:
                        col.received[seq] = t
            except (ValueError, AttributeError, IndexError, TypeError):
                col.failed += 1
                return
            col.requests += 1
            w = col.window() if col.window else col.requests
            col.acked[w] = t

        cl = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sim-collector")
        cl.on_message = on_message
        cl.connect("127.0.0.1", self.broker.port)
        cl.subscribe([("linky/#", 1), ("homeassistant/#", 1)])
        cl.loop_start()
        self.client = cl
        self.idle()

    def idle(self, quiet_s=0.05, limit_s=5.0):
        # wait until the broker has delivered what the device published (real time)
        import time
        end = time.time() + limit_s
        last = -1
        while time.time() < end:
            n = sum(self.msgs.values())
            if n == last:
                return
            last = n
            time.sleep(quiet_s)

    def close(self):
        self.idle()
        self.client.loop_stop()
        self.client.disconnect()
        self.broker.stop()


# -- statistics --------------------------------------------------------------------------
def _stats(xs):
    if not xs:
        return {"mean": None, "min": None, "max": None, "p50": None, "p95": None, "n": 0}
    ys = sorted(xs)
    n = len(ys)
    return {"mean": round(sum(ys) / n, 2), "min": round(ys[0], 2), "max": round(ys[-1], 2),
            "p50": round(ys[n // 2], 2), "p95": round(ys[min(n - 1, (95 * n) // 100)], 2), "n": n}


def _diffs(ts):
    return [(b - a) for a, b in zip(ts, ts[1:])]


def load_profile(path):
    # Meter power over time for --power-profile: a CSV of "hours,mW" rows (a header
    # line and '#' comments allowed), hours increasing; linear between rows, the first
    # and last values held before and after. Returns f(t_s) -> watts.
    pts = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            a, _, b = line.partition(",")
            try:
                h, mw = float(a), float(b)
            except ValueError:
                if not pts and n == 1:
                    continue          # header
                raise ValueError("%s:%d: expected 'hours,mW', got %r" % (path, n, line))
            if h < 0 or mw < 0 or (pts and h * 3600.0 <= pts[-1][0]):
                raise ValueError("%s:%d: hours must increase from 0, mW >= 0" % (path, n))
            pts.append((h * 3600.0, mw / 1000.0))
    if not pts:
        raise ValueError("%s: no 'hours,mW' rows" % path)

    def f(t_s):
        if t_s <= pts[0][0]:
            return pts[0][1]
        for (t0, p0), (t1, p1) in zip(pts, pts[1:]):
            if t_s <= t1:
                return p0 + (p1 - p0) * (t_s - t0) / (t1 - t0)
        return pts[-1][1]
    return f


def parse_outage(s):
    if not s:
        return None
    a, b = s.split(":")
    a, b = float(a), float(b)
    if not (0 <= a < b):
        raise ValueError("--outage START:END with 0 <= START < END (hours)")
    return a, b


# -- the run -----------------------------------------------------------------------------
TARGETS = ("esp8266", "esp32c3")


class LocalHooks:
    # The simulator's side of the device loop (tools/simdevice.py): powers and boots the
    # chip on SimPort, ends the run, takes the outage windows to the collector, times
    # every reading the app records on the virtual clock. With --target the same object
    # answers the chip variant's calls (tools/simremote.py).
    def __init__(self, port, col, end_us, out_us, trace, sink):
        self.port = port
        self.col = col
        self.end_us = end_us
        self.out_us = out_us
        self.trace = trace
        self.sink = sink
        self.measured_us = {}        # seq -> virtual us when the app recorded the reading
        self.read_times = []
        self.counters = {"cuts_running": 0, "deep_sleeps": 0, "boots": 0}
        self.port_calls = None       # --target: port calls the device process made

    def boot(self):
        port = self.port
        if port.clock.us >= self.end_us:
            return False
        if not port.on and not port.charge_until_on(self.end_us):
            return False
        self.until(None)
        port.boot()
        self.counters["boots"] += 1
        return True

    def until(self, app):
        t = self.port.clock.us
        if self.out_us is not None:
            self.col.down = self.out_us[0] <= t < self.out_us[1]
        return t >= self.end_us

    def measured(self, seq):
        t = self.port.clock.us
        self.measured_us[seq] = t
        self.read_times.append(t)
        self.trace.mark(t / 1e6, "read")

    def window_done(self):
        # the broker delivers to the subscriber in real time while the virtual clock
        # would run on: hold the device after each window until everything it published
        # has arrived, so arrivals are stamped with the window's end
        if self.sink == "mqtt":
            self.col.idle()

    def ended(self, kind):
        self.counters["deep_sleeps" if kind == "deep_sleep" else "cuts_running"] += 1


def run(policy="firmware", tls=None, power_mw=130.0, hours=6.0, seed=1, outage=None,
        capture=None, trace_every=2.0, meter="tic-historic", relay=None, profile=None,
        board=None, chip=None, source="constant", sink="https", wifi_fail=0.0,
        ca_pem=None, target=None):
    from tools.simport import SimPort, Trace
    from tools.flashsim import FaultFlash
    from tools.replay import WIRE
    from firmware.store.log import Store
    from firmware import config
    from tools import captures

    if capture and os.path.exists(capture):
        with open(capture, "rb") as f:
            data = f.read()
    else:
        data = captures.read(capture or SP.CAPTURE)
    baud, bits, parity, inv = WIRE[meter]
    board = board or SP.BOARD_FOR_POLICY[policy]
    SP.board(board)            # an unknown board fails here, before anything starts
    if target is not None:
        # the firmware on a chip variant: the chip's figures unless told otherwise
        if target not in TARGETS:
            raise ValueError("--target: one of %s" % ", ".join(TARGETS))
        if policy != "firmware":
            raise ValueError("--target runs our firmware; --policy paper is the reference "
                             "design's Arduino firmware, simulated in-process only")
        if chip is not None and chip != target:
            raise ValueError("--chip %s with --target %s: the firmware would plan for "
                             "one chip and run on another" % (chip, target))
        chip = target
    chip = chip or SP.DEFAULT_CHIP
    SP.chip(chip)
    tls_note = None
    if target == "esp32c3":
        # the stock C3 image verifies with mbedTLS; the variant has the TLS stack the
        # MicroPython source brings (axTLS, tools/mp32.py: lib/mbedtls is not in the
        # toolchain tarball), which cannot verify a certificate, and the firmware refuses
        # an unverified TLS sink (firmware/uplink/https.py)
        if tls:
            raise ValueError("--target esp32c3 --tls: the variant's TLS is axTLS, which "
                             "cannot verify the collector (the chip's mbedTLS source is "
                             "not in the toolchain); run with --no-tls")
        if tls is None:
            tls = False
            tls_note = ("http:// with signed batches: the esp32c3 variant's axTLS cannot "
                        "verify a certificate (the chip itself uses TLS with ca_pem)")
    if tls is None:
        # TLS where the firmware does it; the reference's own Arduino firmware does it
        # on the ESP8266
        tls = policy == "paper" or chip != "esp8266"
    if tls and policy == "firmware" and chip == "esp8266":
        raise ValueError("the firmware leaves TLS sinks out on the ESP8266 (heap): "
                         "--no-tls (http:// with signed batches) or --chip esp32c3")
    msource = None
    if source == "meter":
        from tools.simmeter import MeterSource
        msource = MeterSource()
    elif source != "constant":
        raise ValueError("unknown source %r (constant, meter)" % source)
    tmp = tempfile.mkdtemp(prefix="linky-sim-")
    trace = Trace(trace_every)
    trace.board = board
    flash = FaultFlash(sectors=64, sector_size=4096)
    period = 1000 if meter == "dsmr" else None
    port = SimPort(data, power_mw=power_mw, seed=seed, fs_root=tmp, flash=flash,
                   power_profile=profile, board=board, chip=chip, source=msource,
                   fw_chip=chip if policy == "firmware" else None,
                   ntp_s=SP.REF_NTP_S if policy == "paper" else None,
                   trace=trace, baud=baud, meter_bits=bits, meter_parity=parity,
                   meter_invert=inv, period_ms=period, wall_start=1700000000)
    port.wifi_fail = float(wifi_fail or 0.0)
    if sink == "mqtt":
        if outage:
            raise ValueError("--outage needs the HTTPS collector (--sink https)")
        col = MqttCollector(port.clock, tls, tmp, window=lambda: port.joins)
        where = {"mqtt_host": "127.0.0.1", "mqtt_port": col.port, "ha_discovery": True}
    elif sink == "https":
        col = Collector(port.clock, tls, tmp, window=lambda: port.joins)
        where = {"https_url": col.url, "ha_discovery": False}
    else:
        raise ValueError("unknown sink %r (https, mqtt)" % sink)
    cfg = config.defaults()
    cfg.update(where)
    cfg.update({"ssid": "sim", "password": "simulation",
                # ca_pem: the CA the firmware verifies the collector with (a test gives
                # another one to see the handshake refused)
                "ca_pem": col.ca_pem if ca_pem is None else ca_pem, "meter_protocol": meter if meter != "dsmr" else "dsmr",
                # the firmware plans with the figures of the board it runs on
                "power_board": "reference" if board == "paper" else "ltr"})
    if not tls:
        # in the clear, the firmware signs every batch (config: http:// needs hmac_key)
        cfg["hmac_key"] = "5e" * 16
    if relay:
        # load shedding settings (config.json keys): the relay's coil pulses then show on
        # the plot and are paid from the same capacitor
        cfg.update(relay)
    end_us = int(hours * 3600e6)
    out_us = None if not outage else (int(outage[0] * 3600e6), int(outage[1] * 3600e6))

    hooks = LocalHooks(port, col, end_us, out_us, trace, sink)
    try:
        if target is None:
            from tools import simdevice
            simdevice.run(port, cfg, hooks, energy=PaperPolicy if policy == "paper" else None)
        else:
            from tools import simremote
            hooks.port_calls = simremote.drive(target, port, cfg, hooks)
    finally:
        col.close()
    measured, read_times, counters = hooks.measured_us, hooks.read_times, hooks.counters
    # what is still waiting in the store at the end (not lost: it goes with the next upload)
    waiting = set()
    try:
        st = Store(port.flash)
        for seq, _ in st.peek(st.count):
            waiting.add(seq)
    except Exception:
        pass
    shutil.rmtree(tmp, ignore_errors=True)

    # an upload = a Wi-Fi window in which the collector acknowledged at least one batch
    # (counted at the collector: the reference design may be cut before it knows)
    uploads = sorted(col.acked.values())
    for t in uploads:
        trace.mark(t / 1e6, "upload")
    delivered = [s for s in measured if s in col.received]
    lost = [s for s in measured if s not in col.received and s not in waiting]
    lat = [(col.received[s] - measured[s]) / 1e6 for s in delivered]
    ui = [d / 1e6 for d in _diffs(uploads)]
    ri = [d / 1e6 for d in _diffs(sorted(read_times))]
    rs = _stats(ri)
    ls = _stats(lat)
    report = {
        "policy": policy,
        "chip": chip,
        "source": source,
        "board": board,
        "tls": bool(tls),
        # with a profile: its mean over the run
        "power_mw": (None if msource else power_mw if profile is None else round(
            sum(profile(60.0 * i) for i in range(max(1, int(hours * 60)))) * 1000.0
            / max(1, int(hours * 60)), 1)),
        "hours": hours,
        "seed": seed,
        "outage": list(outage) if outage else None,
        "upload_interval_s": _stats(ui),
        "reading_interval_s": {"mean": rs["mean"], "max": rs["max"]},
        "latency_s": {"mean": ls["mean"], "max": ls["max"]},
        "readings_measured": len(measured),
        "readings_delivered": len(delivered),
        "readings_waiting": len([s for s in measured if s in waiting and s not in col.received]),
        "readings_lost": len(lost),
        # supervisor cuts while the chip was running (for the paper design this is how
        # every power cycle ends; the firmware must never get there)
        "brownouts": port.cuts,
        "vcap_min_v": round(port.vmin, 3) if port.vmin is not None else None,
        "uploads": len(uploads),
        "boots": counters["boots"],
        "relay_pulses": len(port.pulses),
        "deep_sleeps": counters["deep_sleeps"],
        "collector_requests": col.requests,
        "collector_refused": col.failed,
        "energy_j_by_state": dict((k, round(v, 2)) for k, v in sorted(port.energy_by_state.items())),
        "energy": breakdown(port, len(measured), hours),
        "listen_s_per_reading": (round(port.time_s.get("listen", 0.0) / len(measured), 3)
                                 if measured else None),
        "wifi_joins": port.joins,
        "wifi_join_failures": port.join_fails,
        "bytes_sent": col.bytes,
        "bytes_per_reading": round(col.bytes / len(delivered), 1) if delivered else None,
        "sink": sink,
        # where the firmware ran: in-process on CPython, or on a chip variant of the
        # MicroPython unix port with this many port calls answered by the simulator
        "target": target or "cpython",
    }
    if target:
        report["port_calls"] = hooks.port_calls
    if tls_note:
        report["tls_note"] = tls_note
    if sink == "mqtt":
        # what the broker delivered, per kind: discovery is published again only when its
        # content changes (firmware/uplink/uplink.py keeps its hash)
        report["mqtt_bytes"] = dict(sorted(col.by_kind.items()))
        report["mqtt_messages"] = dict(sorted(col.msgs.items()))
        report["mqtt_discovery_topics"] = len(col.disc_topics)
    if outage:
        # backlog drained: the last reading measured during the outage reached the collector
        # this long after the outage ended
        during = [s for s in measured if out_us[0] <= measured[s] < out_us[1]]
        got = [col.received[s] for s in during if s in col.received]
        report["outage_readings"] = len(during)
        report["outage_drained_s"] = (round((max(got) - out_us[1]) / 1e6, 1)
                                      if got and len(got) == len(during) else None)
    return report, trace


# figures that may differ between two runs of the same seed: the batch bytes (HTTP
# bodies, MQTT batch payloads) carry the store epoch drawn from os.urandom at first boot
# (firmware/uplink/uplink.py _random31), whose digit count varies; where the firmware
# ran and how many port calls it made
RUN_SPECIFIC = ("bytes_sent", "bytes_per_reading", "mqtt_bytes.batch", "target", "port_calls")


def report_diff(a, b, ignore=RUN_SPECIFIC):
    # -> {figure: (a's, b's)} for every figure of two reports (nested keys joined with
    # ".") that differs, the run-specific ones left out
    def flat(d, pre=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, pre + k + ".")
            else:
                yield pre + k, v
    fa, fb = dict(flat(a)), dict(flat(b))
    return dict((k, (fa.get(k), fb.get(k))) for k in set(fa) | set(fb)
                if k not in ignore and fa.get(k) != fb.get(k))


def breakdown(port, readings, hours):
    # where the energy went over the run: joules and mean milliwatts, per chip state
    # (at the 3.3 V side) and per loss, with time per state; the identity
    # harvested = chip + losses + stored change holds to the integration step
    a = port.acct
    secs = hours * 3600.0
    chip = dict((k, round(v, 2)) for k, v in sorted(port.chip_j.items()))
    losses = dict((k[:-2], round(a[k], 2)) for k in ("regulator_j", "esr_j", "supervisor_j",
                                                      "sense_divider_j", "leakage_j",
                                                      "adc_divider_j", "relay_coil_j"))
    out = {
        "harvested_j": round(a["harvested_j"], 2),
        "harvested_mw": round(1000.0 * a["harvested_j"] / secs, 1) if secs else None,
        "clamp_shed_j": round(a["clamp_shed_j"], 2),
        "chip_j": chip,
        "chip_total_j": round(sum(port.chip_j.values()), 2),
        "losses_j": losses,
        "stored_end_j": round(port.E, 2),
        "time_s": dict((k, round(v, 1)) for k, v in sorted(port.time_s.items())),
        "off_s": round(port.off_s, 1),
        "j_per_reading": (round((sum(port.chip_j.values()) + a["regulator_j"]) / readings, 3)
                          if readings else None),
    }
    return out


def plot_breakdown(ax, rep, title):
    # one horizontal bar per use of energy (J over the run)
    e = rep["energy"]
    items = [("chip: " + k, v) for k, v in e["chip_j"].items() if v > 0]
    items += [(k, v) for k, v in e["losses_j"].items() if v > 0]
    items += [("shed at clamp", e["clamp_shed_j"])]
    items.sort(key=lambda kv: kv[1])
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:orange")
    ax.set_xlabel("J over %g h (harvested %.0f J, %.1f mW mean)" % (
        rep["hours"], e["harvested_j"], e["harvested_mw"] or 0))
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=7)


def _panel(ax, trace, title, t_from=0.0, t_to=None):
    t_to = t_to if t_to is not None else (trace.t[-1] if trace.t else 0.0)
    pts = [(t, v) for t, v in zip(trace.t, trace.v) if t_from <= t <= t_to]
    ax.plot([(t - t_from) / 60 for t, _ in pts], [v for _, v in pts], lw=0.8, color="tab:blue",
            label="capacitor voltage")
    style = {"read": ("|", "tab:green", 4.2), "upload": ("v", "tab:red", 5.5),
             "relay": ("*", "tab:purple", 5.45), "cut": ("x", "black", 4.05)}
    for kind in ("read", "upload", "relay", "cut"):
        xs = [(t - t_from) / 60 for t, k in trace.marks if k == kind and t_from <= t <= t_to]
        if xs:
            m, c, y = style[kind]
            ax.scatter(xs, [y] * len(xs), marker=m, color=c, s=14, label="%s (%d)" % (kind, len(xs)))
    b = SP.board(getattr(trace, "board", None) or "ltr")
    ax.axhline(b["V_ON"], color="gray", ls="--", lw=0.6)
    ax.axhline(b["V_OFF"], color="gray", ls=":", lw=0.6)
    ax.set_ylabel("V")
    ax.set_ylim(3.95, 5.6)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=7, ncol=5)


def plot(trace, path, title, t_from=0.0, t_to=None, rep=None):
    # capacitor voltage over time, readings / uploads / relay pulses / cuts marked; with
    # a report, its energy breakdown beside it
    if rep is None:
        plot_panels([(trace, title)], path, t_from, t_to)
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(17, 4.2), gridspec_kw={"width_ratios": [2.2, 1]})
    _panel(a1, trace, title, t_from, t_to)
    a1.set_xlabel("minutes")
    plot_breakdown(a2, rep, "where the energy went")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_panels(items, path, t_from=0.0, t_to=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(items), 1, figsize=(12, 3.6 * len(items)), squeeze=False)
    for ax, (trace, title) in zip([a[0] for a in axes], items):
        _panel(ax, trace, title, t_from, t_to)
    axes[-1][0].set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="python -m tools.sim",
                                 description="Energy simulator of the meter-powered dongle")
    ap.add_argument("--policy", choices=("paper", "firmware"), default="firmware")
    ap.add_argument("--chip", choices=sorted(SP.CHIPS), default=None,
                    help="the chip simulated (currents, durations, sleep modes, ADC)")
    ap.add_argument("--source", choices=("constant", "meter"), default="constant",
                    help="constant: --power-mw at the rectifier input; meter: the ngspice "
                         "Thevenin model of the TIC supply (tools/simmeter.csv)")
    ap.add_argument("--board", choices=sorted(SP.BOARDS), default=None,
                    help="power supply simulated: ltr = ours (hardware/power), paper = the "
                         "reference design's (default: the policy's own)")
    ap.add_argument("--sink", choices=("https", "mqtt"), default="https",
                    help="https: the HTTP(S) collector; mqtt: mosquitto with Home Assistant "
                         "discovery (bytes per kind in the report)")
    ap.add_argument("--tls", dest="tls", action="store_true", default=None,
                    help="default: TLS where the firmware does it (not on the ESP8266)")
    ap.add_argument("--no-tls", dest="tls", action="store_false")
    ap.add_argument("--power-mw", type=float, default=130.0)
    ap.add_argument("--power-profile", default=None,
                    help="CSV of 'hours,mW' rows: meter power over time (overrides --power-mw)")
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--outage", default=None, help="START:END hours with the server down")
    ap.add_argument("--capture", default=None, help="corpus file (default %s)" % SP.CAPTURE)
    ap.add_argument("--meter", default="tic-historic", choices=("tic-historic", "tic-standard", "dsmr"))
    ap.add_argument("--relay-threshold", type=int, default=None,
                    help="shed the relay above this many VA (relay_threshold_va)")
    ap.add_argument("--wifi-fail", type=float, default=0.0,
                    help="probability that a Wi-Fi join fails (runs to the join timeout)")
    ap.add_argument("--target", choices=TARGETS, default=None,
                    help="run the firmware on that chip's variant of the MicroPython unix "
                         "port (tools/mp32.py; implies --chip), the physics here")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--plot", default=None)
    a = ap.parse_args(argv)
    try:
        outage = parse_outage(a.outage)
        profile = load_profile(a.power_profile) if a.power_profile else None
    except (ValueError, OSError) as e:
        ap.error(str(e))
    relay = None
    if a.relay_threshold is not None:
        relay = {"relay_threshold_va": a.relay_threshold, "relay_hysteresis_pct": 0,
                 "relay_shed_after_s": 5, "relay_restore_after_s": 20, "relay_min_on_s": 30,
                 "relay_min_off_s": 30}
    try:
        rep, trace = run(a.policy, a.tls, a.power_mw, a.hours, a.seed, outage, a.capture,
                         meter=a.meter, relay=relay, profile=profile, board=a.board,
                         chip=a.chip, source=a.source, sink=a.sink,
                         wifi_fail=a.wifi_fail, target=a.target)
    except ValueError as e:
        ap.error(str(e))
    except RuntimeError as e:
        # the chip variant could not be built or the firmware stopped on it
        print("tools.sim: %s" % e, file=sys.stderr)
        return 1
    if profile:
        rep["power_profile"] = a.power_profile
    if a.plot:
        plot(trace, a.plot, "%s, %s, %s, %s, %g h" % (
            a.policy, rep["chip"], "TLS" if rep["tls"] else "no TLS",
            "meter model" if a.source == "meter" else
            ("profile %s" % os.path.basename(a.power_profile)) if profile else "%g mW" % a.power_mw,
            a.hours), rep=rep)
    if a.json:
        print(json.dumps(rep, sort_keys=True))
    else:
        for k in sorted(rep):
            print("%-22s %s" % (k, rep[k]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
