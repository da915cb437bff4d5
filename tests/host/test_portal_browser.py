# The set-up portal in a real headless Chromium (selenium + /usr/bin/chromedriver),
# served by `python -m tools.portal` on loopback: what a phone user does.
import http.server
import os
import re
import shutil
import struct
import tempfile
import threading
import urllib.request

import pytest

from tests.fw.portal_util import CA_PEM
from tests.host.portal_proc import PortalProc, ROOT

selenium = pytest.importorskip("selenium")
from selenium import webdriver                                   # noqa: E402
from selenium.webdriver.chrome.service import Service             # noqa: E402
from selenium.webdriver.common.by import By                       # noqa: E402
from selenium.common.exceptions import NoAlertPresentException    # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait           # noqa: E402
from selenium.common.exceptions import WebDriverException         # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACT = os.path.join(ROOT, "tests", "artifacts", "portal_phone.png")

pytestmark = pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
                                reason="system Chromium/chromedriver not installed")

PEM = CA_PEM   # the same test CA as the firmware portal tests


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="linky-chromium-")
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--user-data-dir=" + profile):
        o.add_argument(a)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
    d.set_page_load_timeout(20)
    # a phone: 390 x 844 CSS pixels, touch, mobile viewport rules
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def portal(tmp_path):
    p = PortalProc(tmp_path, "cpython")
    yield p
    p.stop()


def fill(d, values):
    for key, value in values.items():
        el = d.find_element(By.NAME, key)
        if el.tag_name == "select":
            d.execute_script("arguments[0].value = arguments[1]", el, value)
            continue
        el.clear()
        if value:
            if "\n" in value or len(value) > 200:
                # typing a PEM key by key is slow; set it as a paste would
                d.execute_script("arguments[0].value = arguments[1]", el, value)
            else:
                el.send_keys(value)


def submit(d):
    # click, then wait until the browser has replaced the page (click() may return
    # before the navigation that a form submission starts)
    d.execute_script("window.__old_page = 1")
    d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(d, 15, ignored_exceptions=(WebDriverException,)).until(
        lambda drv: drv.execute_script(
            "return window.__old_page === undefined && document.readyState === 'complete'"))


def test_probe_redirects_to_form_and_ssid_is_text(browser, portal):
    d = browser
    d.get(portal.base() + "/generate_204")
    assert d.current_url == portal.base() + "/"
    assert d.find_element(By.NAME, "ssid").get_attribute("list") == "nets"
    items = [li.text for li in d.find_elements(By.CSS_SELECTOR, "#nets-list li")]
    assert any(t.startswith("<script>alert(1)</script>") for t in items), items
    assert any(t.startswith("Café & \"Co\"") for t in items), items
    assert items[0].startswith("HomeNet") and "-48 dBm" in items[0]
    with pytest.raises(NoAlertPresentException):
        d.switch_to.alert.text
    assert d.execute_script("return document.scripts.length") == 0
    # mobile-first: nothing wider than the phone
    assert d.execute_script("return document.documentElement.scrollWidth") <= 390
    # a tap on a network fills in its name
    d.find_element(By.LINK_TEXT, "<script>alert(1)</script>").click()
    WebDriverWait(d, 10).until(
        lambda drv: drv.find_element(By.NAME, "ssid").get_attribute("value")
        == "<script>alert(1)</script>")
    with pytest.raises(NoAlertPresentException):
        d.switch_to.alert.text
    d.get(portal.base() + "/hotspot-detect.html")
    assert d.current_url == portal.base() + "/"
    os.makedirs(os.path.dirname(ARTIFACT), exist_ok=True)
    d.save_screenshot(ARTIFACT)
    with open(ARTIFACT, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (390, 844)


def test_fill_form_saves_config(browser, portal):
    d = browser
    d.get(portal.base() + "/")
    fill(d, {"ssid": "HomeNet", "password": "correct horse", "mqtt_host": "192.168.1.20",
             "mqtt_user": "dongle", "mqtt_password": "mq pass", "ca_pem": PEM,
             "meter_protocol": "tic-historic", "relay_threshold_va": "5400"})
    submit(d)
    assert "joined \"HomeNet\"" in d.find_element(By.ID, "result").text
    assert portal.wait_for("portal: restarting", 10)
    raw = portal.config_bytes()
    assert raw is not None
    import json
    cfg = json.loads(raw)
    assert cfg["ssid"] == "HomeNet" and cfg["password"] == "correct horse"
    assert cfg["mqtt_host"] == "192.168.1.20" and cfg["mqtt_port"] == 8883
    assert cfg["ca_pem"] == PEM and cfg["meter_protocol"] == "tic-historic"
    assert cfg["relay_threshold_va"] == 5400 and cfg["mqtt_password"] == "mq pass"
    # back on the form: secrets are not in the page, they show as "unchanged"
    assert portal.wait_for("portal: access point", 10, count=2)
    d.get(portal.base() + "/")
    assert "correct horse" not in d.page_source and "mq pass" not in d.page_source
    assert d.find_element(By.NAME, "password").get_attribute("placeholder") == "unchanged"
    assert d.find_element(By.NAME, "mqtt_host").get_attribute("value") == "192.168.1.20"


BAD = (("ssid", "x" * 33, "at most 32 bytes"),
       ("ssid", "é" * 17, "this one is 34"),
       ("ssid", "", "required"),
       ("password", "short", "8 to 63 characters"),
       ("password", "p" * 64, "8 to 63 characters"),
       ("mqtt_port", "65536", "1 to 65535"),
       ("mqtt_port", "port", "1 to 65535"),
       ("mqtt_host", "mqtt://broker:1883", "host name"),
       ("https_url", "http://collector.example/", "http:// only with an HMAC key"),
       ("https_url", "https://bad host/", "like https://host/path"),
       ("influx_url", "influx.lan", "InfluxDB URL"),
       ("ca_pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----",
        "paste the PEM"),
       ("ca_pem", PEM * 8, "at most 4096 bytes"),
       ("hmac_key", "0123", "32 to 128 hexadecimal"),
       ("meter_key", "zz" * 16, "exactly 32 hexadecimal"),
       ("meter_aak", "00", "exactly 32 hexadecimal"),
       ("relay_threshold_va", "12", "100 to 1000000"),
       ("reading_interval_s", "0", "1 to 86400"),
       ("mqtt_prefix", "linky/#", "no + or #"))


def test_every_bad_input_gives_its_message_and_file_unchanged(browser, portal):
    d = browser
    d.get(portal.base() + "/")
    fill(d, {"ssid": "HomeNet", "password": "correct horse", "mqtt_host": "broker.lan"})
    submit(d)
    assert portal.wait_for("portal: access point", 10, count=2)
    before = portal.config_bytes()
    assert before
    for key, value, words in BAD:
        d.get(portal.base() + "/")
        fill(d, {"mqtt_user": "kept", key: value})
        submit(d)
        err = d.find_element(By.ID, "err-" + key)
        assert words in err.text, (key, err.text)
        assert d.find_element(By.NAME, key).get_attribute("aria-invalid") == "true"
        assert d.find_element(By.NAME, "mqtt_user").get_attribute("value") == "kept"
        if key not in ("password", "hmac_key", "meter_key"):   # secrets are never echoed
            assert d.find_element(By.NAME, key).get_attribute("value") == value, key
        assert portal.config_bytes() == before, key
    # fixing the field on the error page then saves
    fill(d, {"mqtt_prefix": "linky/kitchen"})
    submit(d)
    assert "joined \"HomeNet\"" in d.find_element(By.ID, "result").text
    assert b'"mqtt_prefix": "linky/kitchen"' in portal.config_bytes()


class _Evil(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *a):
        pass


def test_cross_origin_post_refused(browser, portal):
    d = browser
    # the attacker even holds a valid page token: Origin/Sec-Fetch-Site alone must stop it
    with urllib.request.urlopen(portal.base() + "/") as r:
        tok = re.search(rb'name=_token value="([0-9a-f]+)"', r.read()).group(1).decode()
    before = portal.config_bytes()
    _Evil.page = ("<form id=f method=post action='%s/save'>"
                  "<input name=_token value='%s'><input name=ssid value=EvilNet>"
                  "<input name=password value='evil-password'></form>"
                  "<script>document.getElementById('f').submit()</script>"
                  % (portal.base(), tok)).encode()
    # threaded: Chromium's speculative pre-connections must not block the evil server
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Evil)
    srv.daemon_threads = True
    srv.block_on_close = False
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        d.get("http://localhost:%d/" % srv.server_address[1])
        for _ in range(100):
            if "403" in d.page_source:
                break
            import time
            time.sleep(0.05)
        assert "403" in d.page_source and "cross-" in d.page_source
    finally:
        srv.shutdown()
        srv.server_close()
    assert portal.config_bytes() == before
