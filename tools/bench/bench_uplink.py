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


def _run(port, n, batch_records, key):
    from tests.fw.uplink_fixtures import RamFlash, FakePort, fill, tic_like, tmpdir
    from firmware.store.log import Store
    from firmware.uplink.uplink import Uplink
    st = Store(RamFlash(sectors=32))
    fill(st, n)
    cfg = {"mqtt_host": "127.0.0.1", "mqtt_port": port, "hmac_key": key,
           "batch_records": batch_records, "ha_discovery": False}
    up = Uplink(cfg, FakePort(tmpdir("bench")), "0a1b2c")
    t = time.time()
    res = up.send(st, tic_like(n))
    dt = time.time() - t
    msgs = (n + batch_records - 1) // batch_records if batch_records > 1 else n
    return res, dt, msgs


def main():
    from tests.host.uplink_services import Mosquitto
    if not (shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")):
        print("bench_uplink: mosquitto not installed, nothing measured")
        return
    work = tempfile.mkdtemp()
    m = Mosquitto(work).start()
    try:
        n = 720
        print("bench_uplink: %d historic-TIC readings (one hour at 5 s), MQTT QoS 1, signed"
              % n)
        rows = []
        for label, br, k in (("batched (2 KB batches)", 60, n),
                             ("one message per reading", 1, n // 6)):
            res, dt, _ = _run(m.port, k, br, "11" * 16)
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
