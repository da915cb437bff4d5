# The set-up portal: access point + DNS catch-all + HTTP form, in one poll loop.
#
#   run(port, cfg_dir, status=None, dns_port=53, http_port=80, should_pause=None)
#
# The app calls it on first boot, when the config is missing/invalid, after repeated
# failed Wi-Fi joins, or on a long button press. It returns after the user saved a
# configuration the device could join with (or pressed "finish anyway"), once the
# result page has gone out; the app then reboots into normal operation.
#
# Energy: AP mode draws > 130 mW, more than the meter's supply gives. should_pause()
# is asked every loop turn; when it returns a number of ms the portal drops its
# clients, stops the AP, sleeps that long (the capacitor recharges) and restarts the AP.
import os

from firmware import config
from firmware.portal import http, page, appass
from firmware.portal.dns import DnsServer

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

POLL_MS = const(200)
JOIN_MS = const(15000)
GRACE_MS = const(3000)     # after the result page: let it reach the phone before reboot
TOKENS = const(8)

# The OS captive-portal checks (Android, ChromeOS, Apple, Windows, Firefox/others):
# anything but their expected answer makes the phone show the sign-in page.
PROBES = ("/generate_204", "/gen_204", "/hotspot-detect.html", "/library/test/success.html",
          "/ncsi.txt", "/connecttest.txt", "/redirect", "/canonical.html", "/success.txt")

CSP = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HTML = (("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
        ("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"), ("Referrer-Policy", "same-origin"))

FORM_FIELDS = page.fields()
ALLOWED = set(FORM_FIELDS)
ALLOWED.add("_token")
for _k in config.SECRETS:
    ALLOWED.add("clear_" + _k)


def _hex(b):
    try:
        from binascii import hexlify
    except ImportError:
        from ubinascii import hexlify
    return hexlify(b).decode()


def _eq(a, b):
    # constant-time comparison of two tokens
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= ord(a[i]) ^ ord(b[i])
    return r == 0


class Portal:
    def __init__(self, port, cfg_dir, status=None, dns_port=53, http_port=80,
                 bind="0.0.0.0"):
        self.port = port
        self.cfg_dir = cfg_dir
        self.status = status
        self.http_port = http_port
        self.cfg = config.load(cfg_dir)
        self.dev = port.device_id()
        self.ap_ssid = "Linky-" + self.dev
        self.ap_password = appass.get(cfg_dir, port.log)
        self.ip = port.ap_start(self.ap_ssid, self.ap_password)
        self.scan = self._scan()
        self.tokens = []
        self.done = None          # why the portal ends: "joined" / "finish"
        self.joined = None
        self.saved = False
        self.paused = False
        self.dns = DnsServer(self.ip, dns_port, bind) if dns_port else None
        self.server = http.Server(self.handle, http_port, bind,
                                  (self.dns,) if self.dns else ())
        port.log("portal: access point %s at %s" % (self.ap_ssid, self.url()))

    # -- helpers ------------------------------------------------------------------
    def _scan(self):
        try:
            return self.port.wifi_scan()
        except Exception:
            return []

    def url(self):
        if self.http_port == 80:
            return "http://%s/" % self.ip
        return "http://%s:%d/" % (self.ip, self.http_port)

    def _our_host(self, req):
        h = req.header("host")
        if h is None:
            return req.method != "POST"    # HTTP/1.0 clients may omit it; never for a POST
        want = self.ip if self.http_port == 80 else "%s:%d" % (self.ip, self.http_port)
        return h == want or (self.http_port == 80 and h == self.ip + ":80")

    def _token(self):
        t = _hex(os.urandom(16))
        self.tokens.append(t)
        if len(self.tokens) > TOKENS:
            self.tokens.pop(0)
        return t

    def _use_token(self, t):
        if not t:
            return False
        for i in range(len(self.tokens)):
            if _eq(self.tokens[i], t):
                self.tokens.pop(i)
                return True
        return False

    def _saved_cfg(self):
        c = dict(self.cfg)
        c.pop(config.ERROR_KEY, None)
        return c

    def _redirect(self, where=None, status=302):
        loc = where or self.url()
        return status, (("Location", loc), ("Cache-Control", "no-store"),
                        ("Content-Type", "text/html; charset=utf-8")), \
            "<a href=\"%s\">set-up</a>\n" % page.esc(loc)

    def _form(self, values=None, errors=None, notice=None, status=200):
        if notice is None:
            # why the portal opened, when the saved configuration could not be used
            notice = config.error_text(self.cfg.get(config.ERROR_KEY))
        return status, HTML, page.form_page(self._saved_cfg(), self._token(), self.dev,
                                            self.scan, values, errors, notice)

    def _message(self, title, text, ok, links=(), status=200, finish=False):
        tok = self._token() if finish else None
        return status, HTML, page.message_page(title, text, ok, links, tok, finish)

    def _status(self):
        st = self.status() if callable(self.status) else self.status
        return 200, HTML, page.status_page(st, self.port.ticks_ms(), self.dev,
                                           page.notes(self.cfg))

    # -- requests -----------------------------------------------------------------
    def handle(self, req):
        path = req.path
        if req.method in ("GET", "HEAD"):
            if path in PROBES or not self._our_host(req):
                return self._redirect()
            if path == "/" or path == "/index.html":
                values = None
                if req.query.startswith("ssid="):
                    # a tapped network: its name prefilled (a bad query is just ignored)
                    try:
                        values = http.parse_form(req.query.encode(), ("ssid",))
                    except http.HttpError:
                        values = None
                return self._form(values)
            if path == "/status":
                return self._status()
            if path == "/scan":
                self.scan = self._scan()
                return self._redirect("/", 303)
            raise http.HttpError(404, "no such page")
        if path == "/save":
            return self._save(req)
        if path == "/finish":
            self._check_post(req)
            f = http.parse_form(req.body, ALLOWED)
            if not self._use_token(f.get("_token")):
                raise http.HttpError(403, "this page has expired: reload it")
            self.done = "finish"
            return self._message("Restarting", "The dongle restarts into normal operation.",
                                 True)
        raise http.HttpError(404, "no such form")

    def _check_post(self, req):
        # Cross-site request forgery: a page elsewhere (or a name rebound to our
        # address) must not submit the form. Host must be our address, the browser's
        # Sec-Fetch-Site and Origin must say same-origin, and the page token must match.
        if not self._our_host(req):
            raise http.HttpError(403, "wrong host")
        sfs = req.header("sec-fetch-site")
        if sfs is not None and sfs not in ("same-origin", "none"):
            raise http.HttpError(403, "cross-site form refused")
        origin = req.header("origin")
        if origin is not None and origin != "http://" + req.header("host"):
            raise http.HttpError(403, "cross-origin form refused")
        ct = req.header("content-type") or ""
        if ct.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            raise http.HttpError(415, "form encoding expected")

    def _save(self, req):
        self._check_post(req)
        f = http.parse_form(req.body, ALLOWED)
        if not self._use_token(f.pop("_token", None)):
            raise http.HttpError(403, "this page has expired: reload it and submit again")
        for k in FORM_FIELDS:
            if k not in f:
                raise http.HttpError(400, "missing field " + k)
        for k in config.SECRETS:
            clear = f.pop("clear_" + k, None)
            if f[k] == "" and not clear:
                del f[k]          # empty secret input: keep the saved one
        old = self._saved_cfg()
        cfg, errors = config.validate(f, old)
        if not errors:
            errors = config.chip_errors(cfg, getattr(self.port, "chip", ""))
        if errors:
            for k in config.SECRETS:
                f.pop(k, None)    # never echo a secret back
            return self._form(f, errors, None, 400)
        try:
            config.save(self.cfg_dir, cfg)
        except OSError as e:
            self.port.log("portal: config not saved: %s" % e)
            return self._message("Not saved",
                                 "The configuration could not be written (flash full or "
                                 "failing). The previous settings are unchanged.", False,
                                 (("/", "Back"),), 500)
        self.cfg = cfg
        self.saved = True
        self.port.log("portal: config saved")
        ssid = cfg.get("ssid")
        ok = False
        try:
            ok = self.port.wifi_connect(ssid, cfg.get("password") or "", JOIN_MS)
        except Exception as e:
            self.port.log("portal: join error %s" % e)
        self.joined = bool(ok)
        try:
            self.port.wifi_disconnect()
        except Exception:
            pass
        if ok:
            self.done = "joined"
            return self._message("Connected",
                                 "Saved. The dongle joined \"%s\" and now restarts into normal "
                                 "operation; you can close this page." % ssid, True)
        return self._message("Could not join",
                             "Saved, but the dongle could not join \"%s\" (wrong password or "
                             "out of range?). Correct the settings, or finish anyway: it will "
                             "keep trying and reopen this set-up after repeated failures."
                             % ssid, False, (("/", "Back to the settings"),), 200, True)

    # -- loop -----------------------------------------------------------------------
    def pause(self, ms):
        # AP off (clients dropped) and sleep ms; resume() brings it back
        if not self.paused:
            self.server.drop_clients()
            self.port.ap_stop()
            self.paused = True
            self.port.log("portal: access point paused (capacitor low)")
        self.port.sleep_ms(ms)

    def resume(self):
        self.ip = self.port.ap_start(self.ap_ssid, self.ap_password)
        if self.dns is not None:
            self.dns.set_ip(self.ip)
        self.paused = False
        self.port.log("portal: access point back")

    def serve(self, should_pause=None, max_ms=None):
        port = self.port
        t0 = port.ticks_ms()
        done_at = None
        while True:
            if should_pause is not None:
                ms = should_pause()
                if ms:
                    self.pause(ms)
                    continue
                if self.paused:
                    self.resume()
            self.server.poll(POLL_MS)
            now = port.ticks_ms()
            if self.done:
                if done_at is None:
                    done_at = now
                if not self.server.busy() or port.ticks_diff(now, done_at) > GRACE_MS:
                    # the result page is out: give the phone a moment to read the socket
                    end = port.ticks_ms()
                    while port.ticks_diff(port.ticks_ms(), end) < 300:
                        self.server.poll(50)
                    return self.result(self.done)
            if max_ms is not None and port.ticks_diff(now, t0) > max_ms:
                return self.result("timeout")

    def result(self, why):
        return {"saved": self.saved, "joined": self.joined, "reason": why}

    def close(self):
        self.server.close()
        if self.dns is not None:
            self.dns.close()
        try:
            self.port.ap_stop()
        except Exception:
            pass


def vcap_pauser(port, pause_mv=4350, resume_mv=4800, step_ms=2000):
    # A should_pause for meter power: the AP (> 130 mW, more than the meter supplies)
    # stops when the capacitor falls to pause_mv - above the supervisor's 4.1 V cut-off
    # plus the 0.4 A TX dip (firmware/power/costs.py v_floor_mv) - and comes back once
    # it has recharged to resume_mv, checked every step_ms of sleep.
    state = [False]

    def should_pause():
        v = port.vcap_mv()
        if v < pause_mv or (state[0] and v < resume_mv):
            state[0] = True
            return step_ms
        state[0] = False
        return 0
    return should_pause


def run(port, cfg_dir, status=None, dns_port=53, http_port=80, should_pause=None,
        bind="0.0.0.0", max_ms=None):
    # -> {"saved": bool, "joined": bool or None, "reason": "joined"|"finish"|"timeout"}
    p = Portal(port, cfg_dir, status, dns_port, http_port, bind)
    try:
        return p.serve(should_pause, max_ms)
    finally:
        p.close()


class StatusServer:
    # The /status page in normal operation (on the LAN, when energy allows, e.g. on USB
    # power): the app calls poll(ms) when it has time and close() before sleeping.
    def __init__(self, port, status, http_port=80, bind="0.0.0.0", warnings=None):
        self.port = port
        self.status = status
        # the settings' warnings (page.notes), worked out once: the config itself is not
        # kept in RAM beside the app's copy
        if warnings is None:
            warnings = page.notes(config.load(port.fs_root))
        self.warnings = warnings
        self.server = http.Server(self.handle, http_port, bind)

    def handle(self, req):
        if req.method not in ("GET", "HEAD"):
            raise http.HttpError(405, "read-only")
        if req.path in ("/", "/status"):
            st = self.status() if callable(self.status) else self.status
            return 200, HTML, page.status_page(st, self.port.ticks_ms(),
                                               self.port.device_id(), self.warnings)
        raise http.HttpError(404, "no such page")

    def poll(self, timeout_ms):
        return self.server.poll(timeout_ms)

    def close(self):
        self.server.close()
