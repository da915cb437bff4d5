# The device configuration (config.json), per docs/config-schema.md (the shared contract
# extended by this repository: mqtt_tls, mqtt_plain_ok, the rules across keys, the backup).
#
# One flat JSON object; the captive page's form fields carry the same names. Unknown
# keys are kept, a missing key takes its default, an invalid value is refused with a
# message naming the key. Saving is atomic: write config.json.tmp, read it back, rename
# the current (valid) config.json to config.json.bak, rename the temp file to
# config.json, read that back. A power cut leaves config.json old or new, or - in the
# window between the two renames, and inside MicroPython's FAT rename, which removes
# the target first - no config.json but config.json.bak, the last configuration saved
# in full. load() falls back to that backup, never to config.json.tmp: a temp file is
# whatever a failed or cut save left (issue #19: a corrupt config.json booted the
# leftover of a failed save without a word). Neither file valid: the portal opens and
# says why (ERROR_KEY).
#
# Small and MicroPython-safe: the app, the portal and the host tools all use it.
import json
import os

FILE = "config.json"
BACKUP = ".bak"        # config.json.bak: the previous configuration, saved in full
ERROR_KEY = "_error"   # set by load() when the file was missing/corrupt/invalid; never saved
RECOVERED_KEY = "_recovered"   # set by load() when config.json was missing/corrupt and
                               # the backup was used instead; never saved

SECRETS = ("password", "mqtt_password", "hmac_key", "meter_key", "influx_token")

ENUMS = {
    "meter_protocol": ("auto", "tic", "tic-historic", "tic-standard", "dsmr"),
    "relay_mode": ("auto", "on", "off"),
    # which power supply the energy plan assumes (firmware/power/costs.POWER_BOARDS):
    # ours (hardware/power) or the reference design's
    "power_board": ("ltr", "reference"),
}

DEFAULTS = {
    "ssid": "",
    "password": "",
    "mqtt_host": "",
    "mqtt_port": 1883,          # 8883 with ca_pem or mqtt_tls when no port was given
    "mqtt_user": "",
    "mqtt_password": "",
    "mqtt_tls": False,          # MQTT over TLS (also implied by ca_pem); needs ca_pem
    "mqtt_plain_ok": False,     # the user's explicit consent to send mqtt_password
                                # without TLS (readable by anyone on the network)
    "mqtt_prefix": "",          # "": linky/<device id>, see mqtt_prefix()
    "ha_discovery": True,
    "ca_pem": "",
    "https_url": "",
    "hmac_key": "",
    "influx_url": "",
    "influx_token": "",
    "influx_org": "",
    "influx_bucket": "",
    "meter_protocol": "auto",
    "meter_key": "",
    "meter_aak": "00112233445566778899AABBCCDDEEFF",
    "relay_threshold_va": None,  # None: from the subscription (relay policy)
    "relay_mode": "auto",
    "reading_interval_s": 5,
    "power_board": "ltr",
}

# yes/no keys -> what the form calls them (for messages)
BOOLS = {"ha_discovery": "Home Assistant discovery", "mqtt_tls": "MQTT over TLS",
         "mqtt_plain_ok": "Send the MQTT password without TLS"}

PEM_MAX = 4096   # one CA (ISRG Root X1 is 1939 bytes) or a two-certificate chain
_HEX = "0123456789abcdefABCDEF"
_BEGIN = "-----BEGIN CERTIFICATE-----"
_END = "-----END CERTIFICATE-----"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_HOSTCH = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:"


def defaults():
    return dict(DEFAULTS)


def path_of(fs_root, name=FILE):
    if not fs_root:
        return name
    return fs_root + name if fs_root[-1] == "/" else fs_root + "/" + name


def mqtt_prefix(cfg, device_id):
    return cfg.get("mqtt_prefix") or "linky/" + device_id


# -- validation ---------------------------------------------------------------------
def _nbytes(s):
    return len(s.encode())


def _has_ctrl(s, allow=""):
    for c in s:
        o = ord(c)
        if (o < 32 or o == 127) and c not in allow:
            return True
    return False


def _is_hex(s):
    for c in s:
        if c not in _HEX:
            return False
    return True


def _int(v, lo, hi):
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        n = v
    elif isinstance(v, str):
        s = v.strip()
        if not s or len(s) > 10:
            return None
        for c in s:
            if c not in "0123456789":
                return None
        n = int(s)
    else:
        return None
    return n if lo <= n <= hi else None


def _host_ok(h):
    if not h or len(h) > 253 or h[0] in ".-" or ".." in h:
        return False
    for c in h:
        if c not in _HOSTCH:
            return False
    return True


def _url_ok(u, schemes):
    # scheme://host[:port][/path]; no spaces, no control characters, no credentials
    for sch in schemes:
        if u.startswith(sch + "://"):
            break
    else:
        return False
    rest = u[len(sch) + 3:]
    i = 0
    while i < len(rest) and rest[i] not in "/?#":
        i += 1
    hostport = rest[:i]
    path = rest[i:]
    if " " in u or _has_ctrl(u) or "@" in hostport:
        return False
    host = hostport
    if hostport.count(":") == 1:
        host, p = hostport.split(":")
        if _int(p, 1, 65535) is None:
            return False
    return _host_ok(host) and ("\\" not in path)


def _pem_ok(s):
    # One or more CERTIFICATE blocks of base64 lines whose DER starts with a SEQUENCE.
    try:
        from binascii import a2b_base64
    except ImportError:
        from ubinascii import a2b_base64
    lines = [ln.strip() for ln in s.split("\n")]
    blocks = 0
    body = None
    for ln in lines:
        if not ln:
            continue
        if body is None:
            if ln != _BEGIN:
                return False
            body = []
        elif ln == _END:
            b64 = "".join(body)
            if not b64 or len(b64) % 4:
                return False
            try:
                der = a2b_base64(b64)
            except ValueError:
                return False
            if len(der) < 64 or der[0] != 0x30:
                return False
            blocks += 1
            body = None
        else:
            for c in ln:
                if c not in _B64:
                    return False
            body.append(ln)
    return body is None and blocks > 0


def _text(v, maxb, what, allow=""):
    if not isinstance(v, str):
        return None, what + ": must be text"
    if _has_ctrl(v, allow):
        return None, what + ": control characters are not allowed"
    n = _nbytes(v)
    if n > maxb:
        return None, "%s: at most %d bytes (this one is %d)" % (what, maxb, n)
    return v, None


def check(key, v, cfg=None):
    # -> (value, None) or (None, message). Strings are the form's raw input; the file
    # gives JSON types. cfg (the configuration being built) is unused today, kept so a
    # rule may look at a sibling key.
    if key == "ssid":
        v, e = _text(v, 32, "Wi-Fi name")
        return v, e
    if key == "password":
        if not isinstance(v, str):
            return None, "Wi-Fi password: must be text"
        if v == "":
            return v, None
        # WPA2 passphrase: 8..63 printable ASCII (IEEE 802.11i-2004 H.4.1)
        for c in v:
            if not 32 <= ord(c) <= 126:
                return None, "Wi-Fi password: printable ASCII characters only (WPA2)"
        if not 8 <= len(v) <= 63:
            return None, ("Wi-Fi password: 8 to 63 characters for WPA2, or empty for an open "
                          "network (this one has %d)" % len(v))
        return v, None
    if key in ("mqtt_host",):
        if not isinstance(v, str):
            return None, "MQTT host: must be text"
        v = v.strip()
        if v and not _host_ok(v):
            return None, "MQTT host: a host name or IP address only (no mqtt://, no port, no spaces)"
        return v, None
    if key in ("mqtt_port", "reading_interval_s", "relay_threshold_va"):
        if key == "relay_threshold_va" and (v is None or v == "" or
                                            (isinstance(v, str) and not v.strip())):
            return None, None
        lo, hi, what = {"mqtt_port": (1, 65535, "MQTT port"),
                        "reading_interval_s": (1, 86400, "Reading interval"),
                        "relay_threshold_va": (100, 1000000, "Relay threshold")}[key]
        n = _int(v, lo, hi)
        if n is None:
            extra = ", or empty to use the subscription" if key == "relay_threshold_va" else ""
            return None, "%s: a whole number from %d to %d%s" % (what, lo, hi, extra)
        return n, None
    if key == "mqtt_user":
        return _text(v, 64, "MQTT user")
    if key == "mqtt_password":
        return _text(v, 128, "MQTT password")
    if key == "mqtt_prefix":
        v, e = _text(v, 64, "Topic prefix")
        if e:
            return v, e
        v = v.strip()
        if "+" in v or "#" in v or v.startswith("/") or v.endswith("/") or "//" in v \
                or "\x00" in v:
            return None, "Topic prefix: no + or #, no empty level (like linky/kitchen)"
        return v, None
    if key in BOOLS:
        if isinstance(v, bool):
            return v, None
        s = v.strip().lower() if isinstance(v, str) else None
        if s in ("1", "true", "on", "yes"):
            return True, None
        if s in ("0", "false", "off", "no"):
            return False, None
        return None, BOOLS[key] + ": yes or no"
    if key == "ca_pem":
        if not isinstance(v, str):
            return None, "CA certificate: must be text"
        v = v.replace("\r\n", "\n").strip()
        if v == "":
            return v, None
        n = _nbytes(v)
        if n > PEM_MAX:
            return None, "CA certificate: at most %d bytes (this one is %d)" % (PEM_MAX, n)
        if _has_ctrl(v, "\n") or not _pem_ok(v):
            return None, ("CA certificate: paste the PEM text, from -----BEGIN CERTIFICATE----- "
                          "to -----END CERTIFICATE-----")
        return v + "\n", None
    if key in ("https_url", "influx_url"):
        if not isinstance(v, str):
            return None, key + ": must be text"
        v = v.strip()
        if v == "":
            return v, None
        if key == "https_url":
            # http:// too, for the ESP8266 (no room for TLS): validate() then requires an
            # HMAC key, so every batch is at least signed
            if len(v) > 256 or not _url_ok(v, ("https", "http")):
                return None, "HTTPS URL: like https://host/path (at most 256 characters)"
        elif len(v) > 256 or not _url_ok(v, ("http", "https")):
            return None, "InfluxDB URL: like http://host:8086 (at most 256 characters)"
        return v, None
    if key in ("hmac_key", "meter_key", "meter_aak"):
        what = {"hmac_key": "HMAC key", "meter_key": "Smarty key",
                "meter_aak": "Smarty AAK"}[key]
        if not isinstance(v, str):
            return None, what + ": must be text"
        v = v.strip()
        if v == "":
            return (DEFAULTS["meter_aak"] if key == "meter_aak" else ""), None
        if key == "hmac_key":
            if not _is_hex(v) or len(v) % 2 or not 32 <= len(v) <= 128:
                return None, "HMAC key: 32 to 128 hexadecimal digits (16 to 64 bytes), even count"
        elif not _is_hex(v) or len(v) != 32:
            return None, "%s: exactly 32 hexadecimal digits (16 bytes)" % what
        return v.upper(), None
    if key == "influx_token":
        v, e = _text(v, 128, "InfluxDB token")
        if e is None and " " in v:
            return None, "InfluxDB token: no spaces"
        return v, e
    if key in ("influx_org", "influx_bucket"):
        return _text(v, 64, "InfluxDB " + key[7:])
    if key in ENUMS:
        if v in ENUMS[key]:
            return v, None
        return None, "%s: one of %s" % (key, ", ".join(ENUMS[key]))
    return v, None   # unknown key: kept as it is


def validate(fields, old=None, required=("ssid",)):
    # -> (cfg, errors). cfg starts from `old` (or the defaults) with every valid field
    # applied; errors maps key -> message. Unknown keys are kept untouched. Callers save
    # cfg only when errors is empty.
    cfg = dict(old) if old else defaults()
    errors = {}
    for k in fields:
        if k.startswith("_"):
            continue
        v, e = check(k, fields[k], cfg)
        if e:
            errors[k] = e
        else:
            cfg[k] = v
    for k in required:
        if not cfg.get(k) and k not in errors:
            errors[k] = {"ssid": "Wi-Fi name: required"}.get(k, k + ": required")
    if (cfg.get("https_url") or "").startswith("http://") and not cfg.get("hmac_key") \
            and "https_url" not in errors and "hmac_key" not in errors:
        errors["https_url"] = ("HTTPS URL: http:// only with an HMAC key (every batch then "
                               "signed); otherwise https://")
        cfg["https_url"] = (old or DEFAULTS).get("https_url", "")
    mp = fields.get("mqtt_port", 0)
    if mp is None or (isinstance(mp, str) and not mp.strip()):
        # the documented default: 8883 (MQTT over TLS) when a CA is given
        errors.pop("mqtt_port", None)
        cfg["mqtt_port"] = default_mqtt_port(cfg)
    return cfg, errors


def default_mqtt_port(cfg):
    # 8883 (IANA "secure-mqtt", MQTT over TLS) when TLS is on, else 1883 ("mqtt")
    return 8883 if (cfg.get("ca_pem") or yes(cfg.get("mqtt_tls"))) else 1883


def yes(v):
    # a yes/no value as check() stores it, or as a hand-written file may give it
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "on", "yes")
    return v is True or (isinstance(v, int) and not isinstance(v, bool) and v == 1)


def tls_sinks(cfg):
    # -> the sinks these settings send over TLS, as the uplink connects them: https://
    # URLs; MQTT with a CA or mqtt_tls. (The ESP8266 cannot hold a TLS connection:
    # chip_errors below, the uplink's refused sinks, the energy plan's budget.)
    out = []
    if cfg.get("mqtt_host") and (cfg.get("ca_pem") or yes(cfg.get("mqtt_tls"))):
        out.append("mqtt")
    for sink, key in (("https", "https_url"), ("influx", "influx_url")):
        if (cfg.get(key) or "").startswith("https:"):
            out.append(sink)
    return out


def sink_errors(cfg, chip):
    # -> [(sink or None, key, message)]: settings this chip cannot carry out safely.
    # * ESP8266: no room for TLS beside the application in its 38 KB heap (measured: an
    #   HTTPS window needs ~45 KB, tools/bench/bench_heap.py --frozen32); its way is
    #   plain MQTT / http:// with every batch signed (hmac_key).
    # * Every other chip verifies the server: a TLS sink without ca_pem would have to
    #   take any certificate, and an impostor's "200" would make the device drop
    #   readings it never delivered. So TLS without a CA is refused, not weakened.
    # * mqtt_password never crosses the network in the clear unless the user said so
    #   (mqtt_plain_ok); on the ESP8266, where MQTT cannot be TLS, that is the only way
    #   to use a broker password.
    # The portal refuses these at save; the uplink leaves such a sink out, with the
    # message in every window's report, if the file says so anyway.
    out = []
    tls = tls_sinks(cfg)
    esp = chip == "esp8266"
    why = "the ESP8266 has no room for TLS"
    for sink, k, what in (("https", "https_url", "HTTPS URL"),
                          ("influx", "influx_url", "InfluxDB URL")):
        if sink not in tls:
            continue
        if esp:
            out.append((sink, k, "%s: %s: use http:// with an HMAC key (every batch "
                        "signed), or an ESP32 board" % (what, why)))
        elif not cfg.get("ca_pem"):
            out.append((sink, k, "%s: https:// needs the server's CA certificate (TLS "
                        "section), so that no other server can take the readings" % what))
    if esp and cfg.get("ca_pem"):
        out.append((None, "ca_pem", "CA certificate: %s (nor can it verify one): leave it "
                    "empty and set an HMAC key, or use an ESP32 board" % why))
    if "mqtt" in tls:
        if esp:
            if not cfg.get("ca_pem"):
                out.append(("mqtt", "mqtt_tls", "MQTT over TLS: %s: use MQTT without TLS "
                            "and an HMAC key, or an ESP32 board" % why))
            else:
                out.append(("mqtt", None, "mqtt: %s: use MQTT without TLS and an HMAC key"
                            % why))
        elif not cfg.get("ca_pem"):
            out.append(("mqtt", "mqtt_tls", "MQTT over TLS: needs the broker's CA "
                        "certificate (TLS section), so that no other server can take the "
                        "password and readings"))
    elif cfg.get("mqtt_host") and cfg.get("mqtt_password") and \
            not yes(cfg.get("mqtt_plain_ok")):
        out.append(("mqtt", "mqtt_password", "MQTT password: not sent without TLS: %s, or "
                    "allow sending it in the clear (readable by anyone on the network)" % (
                        "the ESP8266 has no TLS" if esp else
                        "give the broker's CA certificate (MQTT over TLS)")))
    return out


def chip_errors(cfg, chip):
    # -> {key: message} for the portal (sink_errors above)
    e = {}
    for sink, k, msg in sink_errors(cfg, chip):
        if k is not None and k not in e:
            e[k] = msg
    return e


def plain_credentials(cfg):
    # True when these settings send mqtt_password without TLS (the user allowed it):
    # the status page says so
    return bool(cfg.get("mqtt_host") and cfg.get("mqtt_password") and
                "mqtt" not in tls_sinks(cfg) and yes(cfg.get("mqtt_plain_ok")))


def redacted(cfg):
    # a copy safe for logs: secrets masked, the PEM shortened
    out = {}
    for k in cfg:
        v = cfg[k]
        if k in SECRETS:
            v = "***" if v else ""
        elif k == "ca_pem" and v:
            v = "<PEM %d bytes>" % len(v)
        out[k] = v
    return out


# -- file -----------------------------------------------------------------------------
# Indirections so tests can inject failures (disk full, power cut) on both Pythons.
_open = open
_rename = os.rename
_remove = os.remove


def dumps(cfg):
    # Deterministic bytes: sorted keys, one per line; "_" keys (load flags) left out.
    keys = sorted(k for k in cfg if not k.startswith("_"))
    parts = ["{"]
    for i in range(len(keys)):
        k = keys[i]
        parts.append("\n" + json.dumps(k) + ": " + json.dumps(cfg[k]) +
                     ("," if i + 1 < len(keys) else ""))
    parts.append("\n}\n")
    return "".join(parts).encode()


def _read_json(path):
    try:
        with _open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None, "missing"
    try:
        d = json.loads(data)
    except (ValueError, UnicodeError):
        return None, "corrupt"
    if not isinstance(d, dict):
        return None, "corrupt"
    return d, None


def load(fs_root):
    # -> cfg (defaults for whatever is missing). cfg[ERROR_KEY] says why it is not the
    # file as written: "missing", "corrupt" (neither config.json nor its backup could
    # be read), or "invalid: key,key" (those keys took their defaults). The app opens
    # the set-up portal when it is set, and the portal shows it (error_text()).
    # cfg[RECOVERED_KEY]: config.json was missing/corrupt, the backup was used.
    path = path_of(fs_root)
    data, err = _read_json(path)
    recovered = None
    if data is None:
        data, _ = _read_json(path + BACKUP)
        if data is None:
            cfg = defaults()
            cfg[ERROR_KEY] = err
            return cfg
        recovered = err
    cfg, errors = validate(data, None, ())
    if recovered:
        cfg[RECOVERED_KEY] = recovered
    if "mqtt_port" not in data:
        cfg["mqtt_port"] = default_mqtt_port(cfg)
    if errors:
        cfg[ERROR_KEY] = "invalid: " + ",".join(sorted(errors))
    return cfg


def _same(path, data):
    mv = memoryview(data)
    pos = 0
    with _open(path, "rb") as f:
        while True:
            chunk = f.read(256)
            if not chunk:
                break
            n = len(chunk)
            if bytes(mv[pos:pos + n]) != chunk:
                return False
            pos += n
    return pos == len(data)


def _sync(f):
    f.flush()
    try:
        os.fsync(f.fileno())          # CPython
    except (AttributeError, OSError):
        try:
            os.sync()                 # MicroPython ports that have it
        except (AttributeError, OSError):
            pass


def error_text(why):
    # load()'s ERROR_KEY -> a sentence for the set-up page (None: first boot, nothing
    # to explain)
    if not why or why == "missing":
        return None
    if why == "corrupt":
        return ("The saved configuration (config.json) is damaged and there is no valid "
                "backup: please enter the settings again.")
    if why.startswith("invalid: "):
        return ("The saved configuration has invalid values for %s (defaults used "
                "instead): please check them." % why[9:].replace(",", ", "))
    return "The saved configuration could not be used (%s)." % why


def save(fs_root, cfg):
    # Atomic replace; raises OSError (config.json unchanged) when the flash refuses.
    path = path_of(fs_root)
    tmp = path + ".tmp"
    data = dumps(cfg)
    mv = memoryview(data)
    with _open(tmp, "wb") as f:
        for i in range(0, len(data), 512):
            f.write(mv[i:i + 512])
        _sync(f)
    if not _same(tmp, data):
        raise OSError(5, "config: temp file read back differs")
    # the current file, if it is a valid configuration, becomes the backup: from here
    # to the next rename a power cut leaves no config.json, and load() takes the backup
    # (a damaged config.json is not kept as one)
    if _read_json(path)[0] is not None:
        _rename(path, path + BACKUP)
    _rename(tmp, path)
    if not _same(path, data):
        raise OSError(5, "config: file read back differs")
    return len(data)
