# config.json: defaults, the validation table (one clear message per key), unknown
# keys kept, secrets redacted, and an atomic save that survives a power cut at every
# byte and at the rename (old or new file, never a broken one). Both Pythons.
from firmware import config
from tests.fw.util import raises, is_micropython, ROOT
from tests.fw.portal_util import tmpdir, rmtree, read, CA_PEM

GOOD = {"ssid": "HomeNet", "password": "correct horse", "mqtt_host": "192.168.1.10"}


def _cfg(**kw):
    c, e = config.validate(GOOD)
    assert not e, e
    for k in kw:
        c[k] = kw[k]
    return c


# (key, input, expected value or None when refused, words the message must contain)
TABLE = (
    ("ssid", "HomeNet", "HomeNet", None),
    ("ssid", "x" * 32, "x" * 32, None),
    ("ssid", "x" * 33, None, "32 bytes"),
    ("ssid", "é" * 16, "é" * 16, None),          # 32 bytes of UTF-8
    ("ssid", "é" * 17, None, "this one is 34"),  # 17 characters, 34 bytes
    ("ssid", "", None, "required"),
    ("ssid", "a\x00b", None, "control"),
    ("ssid", 5, None, "text"),
    ("password", "", "", None),
    ("password", "12345678", "12345678", None),
    ("password", "1234567", None, "8 to 63"),
    ("password", "p" * 63, "p" * 63, None),
    ("password", "p" * 64, None, "8 to 63"),
    ("password", "mot de passeé", None, "ASCII"),
    ("mqtt_host", "broker.lan", "broker.lan", None),
    ("mqtt_host", " 10.0.0.2 ", "10.0.0.2", None),
    ("mqtt_host", "mqtt://broker", None, "host name"),
    ("mqtt_host", "bro ker", None, "host name"),
    ("mqtt_host", "", "", None),
    ("mqtt_port", "1883", 1883, None),
    ("mqtt_port", "65535", 65535, None),
    ("mqtt_port", "0", None, "1 to 65535"),
    ("mqtt_port", "65536", None, "1 to 65535"),
    ("mqtt_port", "18x3", None, "1 to 65535"),
    ("mqtt_port", "-1", None, "1 to 65535"),
    ("mqtt_port", 8883, 8883, None),
    ("mqtt_port", True, None, "1 to 65535"),
    ("mqtt_user", "u" * 65, None, "64 bytes"),
    ("mqtt_password", "p" * 129, None, "128 bytes"),
    ("mqtt_prefix", "linky/kitchen", "linky/kitchen", None),
    ("mqtt_prefix", "linky/#", None, "no + or #"),
    ("mqtt_prefix", "/linky", None, "empty level"),
    ("ha_discovery", "0", False, None),
    ("ha_discovery", "1", True, None),
    ("ha_discovery", False, False, None),
    ("ha_discovery", "maybe", None, "yes or no"),
    ("https_url", "https://collect.example.org/v1/batch", "https://collect.example.org/v1/batch",
     None),
    ("https_url", "https://10.0.0.5:8443/in", "https://10.0.0.5:8443/in", None),
    ("https_url", "http://collect.example.org/", None, "http:// only with an HMAC key"),
    ("https_url", "https://", None, "like https://host/path"),
    ("https_url", "https://a b/", None, "like https://host/path"),
    ("https_url", "ftp://collect.example.org/", None, "like https://host/path"),
    ("https_url", "https://host:99999/", None, "like https://host/path"),
    ("https_url", "https://user:pw@host/", None, "like https://host/path"),
    ("https_url", "https://h/" + "p" * 260, None, "256"),
    ("influx_url", "http://influx.lan:8086", "http://influx.lan:8086", None),
    ("influx_url", "ftp://influx.lan", None, "InfluxDB URL"),
    ("hmac_key", "00" * 16, "00" * 16, None),
    ("hmac_key", "ab" * 32, "AB" * 32, None),
    ("hmac_key", "0" * 31, None, "32 to 128"),
    ("hmac_key", "0" * 33, None, "even"),
    ("hmac_key", "zz" * 16, None, "hexadecimal"),
    ("meter_key", "", "", None),
    ("meter_key", "0123456789abcdef0123456789ABCDEF", "0123456789ABCDEF0123456789ABCDEF", None),
    ("meter_key", "0123", None, "exactly 32"),
    ("meter_aak", "", "00112233445566778899AABBCCDDEEFF", None),
    ("meter_aak", "g" * 32, None, "exactly 32"),
    ("meter_protocol", "dsmr", "dsmr", None),
    ("meter_protocol", "modbus", None, "one of auto"),
    ("relay_mode", "off", "off", None),
    ("relay_mode", "OFF", None, "one of auto"),
    ("relay_threshold_va", "", None, None),
    ("relay_threshold_va", "6000", 6000, None),
    ("relay_threshold_va", "12", None, "100 to 1000000"),
    ("reading_interval_s", "5", 5, None),
    ("reading_interval_s", "0", None, "1 to 86400"),
    ("influx_token", "abc def", None, "no spaces"),
    ("influx_bucket", "b" * 65, None, "64 bytes"),
    ("ca_pem", "", "", None),
    ("ca_pem", CA_PEM, CA_PEM, None),
    ("ca_pem", CA_PEM.replace("\n", "\r\n"), CA_PEM, None),
    ("ca_pem", CA_PEM + CA_PEM, CA_PEM + CA_PEM, None),
    ("ca_pem", "hello", None, "BEGIN CERTIFICATE"),
    ("ca_pem", CA_PEM.replace("MII", "M!I"), None, "BEGIN CERTIFICATE"),
    ("ca_pem", CA_PEM[:200], None, "BEGIN CERTIFICATE"),
    ("ca_pem", CA_PEM * 8, None, "4096 bytes"),
)


def test_validation_table():
    for key, value, want, words in TABLE:
        fields = dict(GOOD)
        fields[key] = value
        cfg, errors = config.validate(fields)
        if words is None:
            assert not errors, (key, value, errors)
            assert cfg[key] == want, (key, value, cfg[key])
        else:
            assert key in errors, (key, value, "accepted")
            assert words in errors[key], (key, value, errors[key])
            assert list(errors) == [key], (key, errors)
            # the refused value is not applied
            assert cfg.get(key) != value or key == "ssid" and value == "", (key, value)


def test_plain_http_endpoint_only_with_signed_batches():
    # the ESP8266 way (no room for TLS): http:// is accepted with an HMAC key, and only so
    cfg, errors = config.validate(dict(GOOD, https_url="http://192.168.1.10:8080/in",
                                       hmac_key="00112233445566778899aabbccddeeff"))
    assert not errors and cfg["https_url"] == "http://192.168.1.10:8080/in"
    old = dict(cfg)
    cfg2, errors = config.validate({"hmac_key": "", "https_url": "http://h/in"}, old)
    assert "https_url" in errors
    assert cfg2["https_url"] == old["https_url"]
    assert config.chip_errors(cfg, "esp8266") == {}
    assert config.chip_errors(dict(cfg, https_url="https://h/in"), "esp8266")
    assert config.chip_errors(dict(cfg, https_url="https://h/in", ca_pem=CA_PEM),
                              "esp32c3") == {}


# (settings beside GOOD, chip, {key: words of its message}) - the rules of
# config.sink_errors, written out case by case: TLS only verified, a broker password
# only over TLS unless the owner allowed it in the clear, no TLS at all on the ESP8266
SINK_CASES = (
    # the hole of issue #19: https:// with a signing key but no CA was sent unverified
    ({"https_url": "https://c.lan/in", "hmac_key": "11" * 16}, "esp32c3",
     {"https_url": "CA certificate"}),
    ({"https_url": "https://c.lan/in", "hmac_key": "11" * 16}, "host",
     {"https_url": "CA certificate"}),
    ({"https_url": "https://c.lan/in", "ca_pem": CA_PEM}, "esp32c6", {}),
    ({"influx_url": "https://i.lan:8086"}, "esp32c3", {"influx_url": "CA certificate"}),
    ({"influx_url": "http://i.lan:8086"}, "esp32c3", {}),
    ({"mqtt_tls": True}, "esp32c3", {"mqtt_tls": "CA certificate"}),
    ({"mqtt_tls": "1", "ca_pem": CA_PEM}, "esp32c3", {}),
    ({"mqtt_tls": True}, "esp8266", {"mqtt_tls": "no room for TLS"}),
    # credentials in the clear: refused unless allowed, on every chip
    ({"mqtt_user": "u", "mqtt_password": "pw"}, "esp32c3", {"mqtt_password": "in the clear"}),
    ({"mqtt_user": "u", "mqtt_password": "pw"}, "esp8266", {"mqtt_password": "no TLS"}),
    ({"mqtt_user": "u", "mqtt_password": "pw", "mqtt_plain_ok": True}, "esp8266", {}),
    ({"mqtt_user": "u", "mqtt_password": "pw", "mqtt_plain_ok": "0"}, "esp32c3",
     {"mqtt_password": "allow"}),
    ({"mqtt_user": "u", "mqtt_password": "pw", "ca_pem": CA_PEM}, "esp32c3", {}),
    ({"mqtt_user": "u", "mqtt_password": "pw", "mqtt_host": ""}, "esp32c3", {}),
    ({"mqtt_user": "u"}, "esp32c3", {}),
    ({"https_url": "https://c.lan/in", "ca_pem": CA_PEM}, "esp8266",
     {"https_url": "no room for TLS", "ca_pem": "no room for TLS"}),
)


def test_unsafe_sinks_are_configuration_errors_with_the_reason():
    for extra, chip, want in SINK_CASES:
        cfg, errors = config.validate(dict(GOOD, **extra))
        assert not errors, (extra, errors)
        got = config.chip_errors(cfg, chip)
        assert sorted(got) == sorted(want), (extra, chip, got)
        for k in want:
            assert want[k] in got[k], (extra, chip, got[k])
    # the status page's "sent in the clear" flag is exactly the allowed case
    assert config.plain_credentials(_cfg(mqtt_password="pw", mqtt_plain_ok=True))
    assert not config.plain_credentials(_cfg(mqtt_password="pw"))
    assert not config.plain_credentials(_cfg(mqtt_password="", mqtt_plain_ok=True))
    assert not config.plain_credentials(_cfg(mqtt_password="pw", mqtt_plain_ok=True,
                                             ca_pem=CA_PEM))


def test_tls_options_are_yes_or_no_and_move_the_default_port():
    cfg, errors = config.validate(dict(GOOD, mqtt_tls="1", mqtt_port="", ca_pem=CA_PEM))
    assert not errors and cfg["mqtt_tls"] is True and cfg["mqtt_port"] == 8883
    cfg, errors = config.validate(dict(GOOD, mqtt_tls="0", mqtt_port=""))
    assert not errors and cfg["mqtt_tls"] is False and cfg["mqtt_port"] == 1883
    cfg, errors = config.validate(dict(GOOD, mqtt_plain_ok="maybe"))
    assert list(errors) == ["mqtt_plain_ok"] and "yes or no" in errors["mqtt_plain_ok"]
    assert config.defaults()["mqtt_tls"] is False
    assert config.defaults()["mqtt_plain_ok"] is False


def test_messages_name_the_field():
    bad = {"ssid": "", "password": "short", "mqtt_port": "0", "https_url": "x",
           "hmac_key": "1", "meter_key": "2", "relay_mode": "?", "ca_pem": "x",
           "reading_interval_s": "y", "relay_threshold_va": "z", "mqtt_host": "a b"}
    cfg, errors = config.validate(bad)
    assert sorted(errors) == sorted(bad)
    names = {"ssid": "Wi-Fi name", "password": "Wi-Fi password", "mqtt_port": "MQTT port",
             "https_url": "HTTPS URL", "hmac_key": "HMAC key", "meter_key": "Smarty key",
             "relay_mode": "relay_mode", "ca_pem": "CA certificate",
             "reading_interval_s": "Reading interval", "relay_threshold_va": "Relay threshold",
             "mqtt_host": "MQTT host"}
    for k in names:
        assert errors[k].startswith(names[k]), (k, errors[k])


def test_mqtt_port_default_follows_ca():
    cfg, e = config.validate({"ssid": "a", "mqtt_port": ""})
    assert not e and cfg["mqtt_port"] == 1883
    cfg, e = config.validate({"ssid": "a", "mqtt_port": "", "ca_pem": CA_PEM})
    assert not e and cfg["mqtt_port"] == 8883
    cfg, e = config.validate({"ssid": "a", "mqtt_port": "1884", "ca_pem": CA_PEM})
    assert cfg["mqtt_port"] == 1884


def test_unknown_keys_kept_and_old_values_kept():
    old = _cfg(meter_line="tic-historic", relay_pulse_ms=40)
    cfg, e = config.validate({"mqtt_port": "1884", "future_key": [1, 2]}, old)
    assert not e
    assert cfg["meter_line"] == "tic-historic" and cfg["relay_pulse_ms"] == 40
    assert cfg["future_key"] == [1, 2] and cfg["ssid"] == "HomeNet"
    assert cfg["mqtt_port"] == 1884


def test_redacted_hides_every_secret():
    c = _cfg(mqtt_password="mq-secret", hmac_key="AB" * 16, meter_key="CD" * 16,
             influx_token="tok-secret", ca_pem=CA_PEM)
    r = config.redacted(c)
    text = repr(r)
    for s in ("correct horse", "mq-secret", "AB" * 16, "CD" * 16, "tok-secret"):
        assert s not in text, s
    assert r["ssid"] == "HomeNet" and r["password"] == "***"
    assert "BEGIN" not in text
    assert set(config.SECRETS) == set(["password", "mqtt_password", "hmac_key", "meter_key",
                                       "influx_token"])


def test_load_missing_and_corrupt_give_defaults_and_flag():
    d = tmpdir()
    try:
        c = config.load(d)
        assert c[config.ERROR_KEY] == "missing"
        assert c["ssid"] == "" and c["meter_protocol"] == "auto" and c["mqtt_port"] == 1883
        for junk in (b"{", b"[1,2]", b"\xff\xfe", b"", b"null", b'{"ssid": "a"'):
            with open(d + "/config.json", "wb") as f:
                f.write(junk)
            c = config.load(d)
            assert c[config.ERROR_KEY] == "corrupt", junk
            assert c["ssid"] == ""
    finally:
        rmtree(d)


def test_load_invalid_value_takes_default_and_flags_key():
    d = tmpdir()
    try:
        with open(d + "/config.json", "w") as f:
            f.write('{"ssid": "HomeNet", "mqtt_port": 70000, "relay_mode": "sometimes",'
                    ' "meter_line": "dsmr"}')
        c = config.load(d)
        assert c["ssid"] == "HomeNet" and c["meter_line"] == "dsmr"
        assert c["mqtt_port"] == 1883 and c["relay_mode"] == "auto"
        assert c[config.ERROR_KEY] == "invalid: mqtt_port,relay_mode"
    finally:
        rmtree(d)


def test_save_load_roundtrip_and_deterministic_bytes():
    d = tmpdir()
    try:
        c = _cfg(ca_pem=CA_PEM, meter_line="tic-standard", ha_discovery=False,
                 relay_threshold_va=None)
        c[config.ERROR_KEY] = "missing"        # a load flag is never written
        n = config.save(d, c)
        raw = read(d + "/config.json")
        assert n == len(raw) and b"_error" not in raw
        assert read(d + "/config.json.tmp") is None
        back = config.load(d)
        assert config.ERROR_KEY not in back
        del c[config.ERROR_KEY]
        assert back == c
        config.save(d, back)
        assert read(d + "/config.json") == raw
        assert raw.startswith(b'{\n"ca_pem": ')
    finally:
        rmtree(d)


class PowerCut(Exception):
    pass


class _CutFile:
    # a real file whose writes stop (power cut) after `budget` bytes in total
    def __init__(self, f, box):
        self.f = f
        self.box = box

    def write(self, data):
        left = self.box[0]
        if left < len(data):
            if left > 0:
                self.f.write(bytes(data[:left]))
            self.box[0] = 0
            self.f.flush()
            raise PowerCut()
        self.box[0] = left - len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.f.close()


def _crash_save(d, cfg, budget, rename_mode, at=0):
    # rename_mode: "ok", "before" (cut before the rename), "fat" (the target removed,
    # cut before the rename: MicroPython's VfsFat rename); at: which rename call is cut
    # (save() renames config.json to the backup, then the temp file to config.json)
    box = [budget]
    real_open, real_rename = config._open, config._rename
    calls = [0]

    def cut_open(path, mode="r"):
        f = real_open(path, mode)
        return _CutFile(f, box) if "w" in mode else f

    def cut_rename(a, b):
        calls[0] += 1
        if calls[0] - 1 == at and rename_mode == "before":
            raise PowerCut()
        if calls[0] - 1 == at and rename_mode == "fat":
            try:
                config._remove(b)
            except OSError:
                pass          # nothing there to remove
            raise PowerCut()
        real_rename(a, b)

    config._open, config._rename = cut_open, cut_rename
    try:
        config.save(d, cfg)
        return True
    except PowerCut:
        return False
    finally:
        config._open, config._rename = real_open, real_rename


def test_power_cut_at_every_point_leaves_old_or_new():
    old = _cfg(meter_line="tic-historic")
    new = _cfg(ssid="Other network", password="another password", ca_pem=CA_PEM,
               mqtt_port=8883)
    size = len(config.dumps(new))
    step = 1 if not is_micropython() else 11
    d = tmpdir()
    try:
        seen = {"old": 0, "new": 0}
        points = list(range(0, size, step)) + [size]
        for mode, at in (("ok", 0), ("before", 0), ("fat", 0), ("before", 1), ("fat", 1)):
            for k in points if at == 0 else [size]:
                rmtree(d)
                import os
                os.mkdir(d)
                config.save(d, old)
                old_raw = read(d + "/config.json")
                _crash_save(d, new, k, mode, at)
                got = config.load(d)
                assert config.ERROR_KEY not in got, (mode, k, got.get(config.ERROR_KEY))
                # between the renames: no config.json, the backup (the old one) taken
                rec = got.pop(config.RECOVERED_KEY, None)
                assert (rec == "missing") == (read(d + "/config.json") is None), (mode, at)
                if got == old:
                    seen["old"] += 1
                    if read(d + "/config.json") is not None:
                        assert read(d + "/config.json") == old_raw
                else:
                    assert got == new, (mode, k)
                    seen["new"] += 1
                # the next save after the cut completes normally
                config.save(d, new)
                assert config.load(d) == new
        assert seen["old"] > 0 and seen["new"] > 0
    finally:
        rmtree(d)


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def test_load_never_boots_a_failed_saves_temp_file():
    # issue #19: config.json corrupt, config.json.tmp left by a failed save (valid
    # JSON, never verified nor renamed): it was booted without a word. Now the portal
    # opens, and says why.
    d = tmpdir()
    try:
        _write(d + "/config.json", b'{"ssid": "Home')
        _write(d + "/config.json.tmp", config.dumps(_cfg(ssid="Leftover")))
        c = config.load(d)
        assert c[config.ERROR_KEY] == "corrupt" and c["ssid"] == ""
        assert "damaged" in config.error_text(c[config.ERROR_KEY])
        # missing config.json + leftover temp file: missing, not the temp file
        import os
        os.remove(d + "/config.json")
        c = config.load(d)
        assert c[config.ERROR_KEY] == "missing" and c["ssid"] == ""
        assert config.error_text("missing") is None         # first boot: nothing to say
        # a damaged backup is no better
        _write(d + "/config.json", b"\xff\xfe")
        _write(d + "/config.json.bak", b'{"ssid": ')
        assert config.load(d)[config.ERROR_KEY] == "corrupt"
    finally:
        rmtree(d)


def test_a_damaged_config_falls_back_to_the_last_complete_save():
    d = tmpdir()
    try:
        first = _cfg(ssid="First")
        second = _cfg(ssid="Second")
        config.save(d, first)
        assert read(d + "/config.json.bak") is None
        config.save(d, second)
        # the backup is the previous complete configuration
        assert read(d + "/config.json.bak") == config.dumps(first)
        _write(d + "/config.json", b'{"ssid": "Sec')
        c = config.load(d)
        assert config.ERROR_KEY not in c and c[config.RECOVERED_KEY] == "corrupt"
        assert c["ssid"] == "First"
        # saving over a damaged file does not make the damage the backup
        config.save(d, second)
        assert read(d + "/config.json.bak") == config.dumps(first)
        assert config.load(d) == second
        # the recovery flag is never written
        c[config.RECOVERED_KEY] = "corrupt"
        config.save(d, c)
        assert b"_recovered" not in read(d + "/config.json")
    finally:
        rmtree(d)


class _Writer:
    # a file opened for writing whose write() is write(f, data) (the flash misbehaving)
    def __init__(self, f, write):
        self.f = f
        self._write = write

    def write(self, data):
        return self._write(self.f, data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.f.close()


def _save_with_bad_writes(d, cfg, write):
    # config.save(d, cfg) with every file it writes going through write(f, data); it
    # must raise OSError
    real_open = config._open

    def bad_open(path, mode="r"):
        f = real_open(path, mode)
        return _Writer(f, write) if "w" in mode else f

    config._open = bad_open
    try:
        raises(OSError, config.save, d, cfg)
    finally:
        config._open = real_open


def test_disk_full_raises_and_keeps_old_file():
    old = _cfg()
    d = tmpdir()
    try:
        config.save(d, old)
        raw = read(d + "/config.json")

        def full(f, data):
            raise OSError(28, "no space")
        _save_with_bad_writes(d, _cfg(ssid="New"), full)
        assert read(d + "/config.json") == raw
        assert config.load(d) == old
    finally:
        rmtree(d)


def test_verify_catches_a_flash_that_lies():
    # a write that "succeeds" but stores other bytes must not replace the good file
    old = _cfg()
    d = tmpdir()
    try:
        config.save(d, old)
        raw = read(d + "/config.json")

        def lie(f, data):
            b = bytearray(data)
            if len(b) > 5:
                b[5] ^= 0x01
            return f.write(b)
        _save_with_bad_writes(d, _cfg(ssid="New"), lie)
        assert read(d + "/config.json") == raw
    finally:
        rmtree(d)


def test_mqtt_prefix_default():
    assert config.mqtt_prefix({"mqtt_prefix": ""}, "0a1b2c") == "linky/0a1b2c"
    assert config.mqtt_prefix({"mqtt_prefix": "home/meter"}, "0a1b2c") == "home/meter"


def test_every_key_and_rule_is_in_the_documented_contract():
    # docs/config-schema.md is what other tools and people implement against: every key
    # the firmware defaults, and every sink rule's field, appears there
    with open(ROOT + "/docs/config-schema.md") as f:
        doc = f.read()
    for k in config.DEFAULTS:
        assert "`%s`" % k in doc, k
    for k in ("config.json.bak", "config.json.tmp", "mqtt_plain_ok", "sink_errors"):
        assert k in doc, k
