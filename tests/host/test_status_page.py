# The /status page in normal operation (issue 10): on plentiful power (capacitor at its
# clamp voltage, i.e. USB) and with `status_page` set, the app stays on the LAN after an
# upload and serves the page while idle; on meter power it never keeps the radio on.
import os
import socket
import threading

from tests.host.uplink_services import Mosquitto, free_port
from tools.hostport import HostPort
from firmware.app import App
from tools import captures
from firmware.port import DeepSleep

CAP = captures.path("tic/hist_tempo_mono_pyteleinfo.txt")


def get(port, path):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
    s.close()
    return data


def run_until_upload(port, cfg, limit=400, need_reading=True):
    # the app as the device runs it: a deep sleep restarts it (RTC memory kept)
    app = App(port, dict(cfg))
    for _ in range(limit):
        try:
            # an upload window of an app that has read the meter since it woke up
            if app.step() == "upload" and (app.latest is not None or not need_reading):
                return app
        except DeepSleep:
            app = App(port, dict(cfg))
    raise AssertionError("no upload window")


def make_app(tmp_path, vcap, broker_port, http_port, need_reading=True):
    cap = open(CAP, "rb").read()
    port = HostPort(capture=cap, meter_baud=1200, fs_root=str(tmp_path), vcap_mv=vcap,
                    repeat=20)
    cfg = {"ssid": "home", "mqtt_host": "127.0.0.1", "mqtt_port": broker_port,
           "ha_discovery": False, "status_page": True, "status_http_port": http_port,
           "meter_line": "tic-historic"}
    return run_until_upload(port, cfg, need_reading=need_reading), port


def test_status_page_served_on_usb_power(tmp_path):
    broker = Mosquitto().start()
    try:
        http_port = free_port()
        app, port = make_app(tmp_path, 5400, broker.port, http_port)
        assert app.status_srv is not None and port.wifi_up
        box = {}
        t = threading.Thread(target=lambda: box.setdefault("r", get(http_port, "/status")))
        t.start()
        for _ in range(20):
            if "r" in box:
                break
            app.status_srv.poll(200)
        t.join(5)
        page = box["r"].decode("utf-8", "replace")
        assert page.startswith("HTTP/1.") and " 200 " in page.split("\r\n")[0]
        # the page shows the last reading and the backlog the app holds
        assert str(app.latest["apparent_power_va"]) in page
        assert "backlog" in page.lower()
        app._stop_status()
    finally:
        broker.stop()


def test_no_status_page_on_meter_power(tmp_path):
    broker = Mosquitto().start()
    try:
        app, port = make_app(tmp_path, 5150, broker.port, free_port(), need_reading=False)
        assert app.status_srv is None and not port.wifi_up
    finally:
        broker.stop()
