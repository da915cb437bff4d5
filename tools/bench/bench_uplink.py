"""Uplink cost: bytes on the wire per reading, batched vs one message per reading, and
connections per hour. Measured through the real firmware/uplink code on a real
mosquitto (loopback) when installed: the byte counts are the MQTT bytes the socket
carried (CONNECT..DISCONNECT, PUBACKs included), excluding TCP/IP/TLS framing, which
is added as an estimate per packet (40 B TCP/IPv4 + 29 B TLS 1.2 AES-GCM record)."""
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _p in (ROOT, os.path.join(ROOT, ".mplib"), os.path.join(ROOT, "tools", "compat", "cpython")):
    if _p not in sys.path:
        sys.path.append(_p)

PER_PACKET = 40 + 29
READINGS_PER_HOUR = 720          # one every 5 s (reading_interval_s default)
SOURCE = "tic/hist_tempo_mono_pyteleinfo.txt"


def _readings(n):
    # n historic-TIC readings: the frames of a real capture (tests/captures), decoded by
    # the firmware's decoder, cycled with the index advancing as a meter's would
    from tools import captures
    from firmware.reading.tic import TicDecoder
    frames = TicDecoder("historic").feed(captures.read(SOURCE))
    out = []
    for i in range(n):
        r = dict(frames[i % len(frames)])
        r["energy_import_wh"] = frames[-1]["energy_import_wh"] + 7 * i
        out.append(r)
    return out


def _fill(store, readings, t0=1700000000, step=5):
    for i, r in enumerate(readings):
        store.add_reading(r, t0 + step * i, "ntp")   # as the app records it


def _run(port, work, n, batch_records, key):
    from firmware.port.flash import RamFlash
    from firmware.store.log import Store
    from firmware.uplink.uplink import Uplink
    from tools.hostport import HostPort
    st = Store(RamFlash(sectors=32))
    readings = _readings(n)
    _fill(st, readings)
    cfg = {"mqtt_host": "127.0.0.1", "mqtt_port": port, "hmac_key": key,
           "batch_records": batch_records, "ha_discovery": False}
    up = Uplink(cfg, HostPort(fs_root=work), "0a1b2c")
    t = time.time()
    res = up.send(st, readings[-1])
    dt = time.time() - t
    msgs = (n + batch_records - 1) // batch_records if batch_records > 1 else n
    return res, dt, msgs


def main():
    from tools.services import Mosquitto, mosquitto_exe
    if mosquitto_exe() is None:
        print("bench_uplink: mosquitto not installed, nothing measured")
        return
    work = tempfile.mkdtemp()
    m = Mosquitto().start()
    try:
        n = 720
        print("bench_uplink: %d historic-TIC readings (one hour at 5 s), MQTT QoS 1, signed"
              % n)
        rows = []
        for label, br, k in (("batched (2 KB batches)", 60, n),
                             ("one message per reading", 1, n // 6)):
            res, dt, _ = _run(m.port, work, k, br, "11" * 16)
            c = res["connections"][0]
            assert res["records"] == k
            # the single-message case is measured on a sixth of the hour and scaled
            nb = c["bytes"] * n // k
            dt = dt * n / k
            rows.append((label, nb, dt))
            print("  %-26s %7d B MQTT  %6.1f B/reading  (+~%d B/packet TCP+TLS)  %.2f s"
                  % (label, nb, nb / n, PER_PACKET, dt))
        b_batched, b_single = rows[0][1], rows[1][1]
        print("  ratio one-per-reading / batched: %.1fx" % (b_single / b_batched))
        # packets: batched ~ one PUBLISH + one PUBACK per 2 KB batch; single: 2 per reading
        nb_batches = (b_batched // 2048) + 1
        print("  est. with TCP+TLS framing: batched %.1f B/reading, single %.1f B/reading"
              % ((b_batched + 2 * nb_batches * PER_PACKET) / n,
                 (b_single + 2 * n * PER_PACKET) / n))
        print("connections per hour (one connection per upload window):")
        for every_min in (5, 15, 60):
            conns = 60 // every_min
            per = READINGS_PER_HOUR // conns
            print("  window every %2d min: %2d connections/h, %3d readings per connection"
                  % (every_min, conns, per))
        print("  one connection per reading: %d connections/h" % READINGS_PER_HOUR)
    finally:
        m.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
