# firmware/uplink/mqtt.py builds the umqtt.simple client the way each generation expects:
# 1.3.4 (ssl=True + ssl_params with the CA) and the newer one frozen in stock ESP firmware
# (ssl=<SSLContext>). The classes below only record their constructor arguments (the
# real 1.3.4 runs against mosquitto in tests/host/test_uplink_mqtt.py).
from firmware.uplink import mqtt
from firmware.uplink.https import pem_to_der, tls_module
from tests.fw.util import SkipTest


def _tls():
    try:
        return tls_module()[0]
    except ImportError:
        raise SkipTest("no ssl/tls module in this build")


def _refused_without_verification(make):
    # axTLS (the ESP8266's TLS, and the chip variants'): no CERT_REQUIRED, it cannot
    # verify a certificate. A CA is configured, so the client must not be made with an
    # unverified connection: making it fails (the uplink leaves TLS sinks out on the
    # ESP8266 before ever getting here, firmware/uplink/uplink.py).
    try:
        c = make()
    except mqtt.MqttError as e:
        assert e.kind == "tls", e        # said in so many words (firmware/uplink/mqtt.py)
        return
    raise AssertionError("a CA was given but the TLS cannot verify: %r" % (c.__dict__,))

CA_PEM = """-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUdyhnhM9OhfXTqVYVeVjVo44lpMkwCgYIKoZIzj0EAwIw
ETEPMA0GA1UEAwwGVGVzdENBMB4XDTI2MTEyMzA4NTgyNloXDTI2MTIyMzA4NTgy
NlowETEPMA0GA1UEAwwGVGVzdENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
d+rMBCNIkt8phYsgUZvEOIuC3qWfLjjR4dGunqi2cP3WHUCd37s4S+qjZ6V4ktJI
BeP17qq3w7TmM2g3DguIsKNTMFEwHQYDVR0OBBYEFM0I7ybv8sJnrPEv3tj9/MIb
xf3PMB8GA1UdIwQYMBaAFM0I7ybv8sJnrPEv3tj9/MIbxf3PMA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgaJ6okWvxPSNpzFcmVNRbQiCIxQjqMlNZ
1ajdGLAVJQsCIQC18Rt6rooXdPWdjR2Fm/y6VJ2BB+Wbb6yAlBVeV9veSw==
-----END CERTIFICATE-----
"""


class OldClient:
    # umqtt.simple 1.3.4 signature
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=False, ssl_params={}):
        self.args = (client_id, server, port, user, password, keepalive)
        self.ssl = ssl
        self.ssl_params = ssl_params


class NewClient:
    # newer umqtt.simple: ssl is an SSLContext (or None)
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=None):
        self.args = (client_id, server, port, user, password, keepalive)
        self.ssl = ssl


class _Mod:
    def __init__(self, cls):
        self.MQTTClient = cls


def test_pem_to_der_gives_the_certificate_bytes():
    der = pem_to_der(CA_PEM)
    assert len(der) == 1 and der[0][:2] == b"\x30\x82" and len(der[0]) == 379


def test_old_client_gets_ssl_params_with_the_ca():
    ssl = _tls()
    der = pem_to_der(CA_PEM)
    if not hasattr(ssl, "CERT_REQUIRED"):
        return _refused_without_verification(lambda: mqtt.make_client(
            b"id", "broker.lan", 8883, "u", "p", 60, True, der, _Mod(OldClient)))
    c = mqtt.make_client(b"id", "broker.lan", 8883, "u", "p", 60, True, der, _Mod(OldClient))
    assert c.ssl is True
    assert c.ssl_params["server_hostname"] == "broker.lan"
    assert c.ssl_params["cert_reqs"] == ssl.CERT_REQUIRED
    assert c.ssl_params["cadata"] == der[0]
    assert c.args == (b"id", "broker.lan", 8883, "u", "p", 60)


def test_new_client_gets_a_verifying_context():
    ssl = _tls()
    if not hasattr(ssl, "CERT_REQUIRED"):
        return _refused_without_verification(lambda: mqtt.make_client(
            b"id", "broker.lan", 8883, None, None, 60, True, pem_to_der(CA_PEM),
            _Mod(NewClient)))
    c = mqtt.make_client(b"id", "broker.lan", 8883, None, None, 60, True,
                         pem_to_der(CA_PEM), _Mod(NewClient))
    assert c.ssl is not None and c.ssl is not True
    assert hasattr(c.ssl, "wrap_socket")
    assert c.ssl.verify_mode == ssl.CERT_REQUIRED
    # no user: user and password stay None (1.3.4 tests `user is not None`)
    assert c.args[3] is None and c.args[4] is None


def test_plain_connection_has_no_tls():
    c = mqtt.make_client(b"id", "h", 1883, None, None, 60, False, None, _Mod(NewClient))
    assert c.ssl is None
    c = mqtt.make_client(b"id", "h", 1883, None, None, 60, False, None, _Mod(OldClient))
    assert c.ssl is False


def test_tls_without_a_ca_is_never_unverified():
    # issue #19: no CA used to mean CERT_NONE. Now every layer refuses it before a
    # connection: the MQTT client factory, the TLS context, the HTTP(S) request.
    from firmware.uplink import https
    from tests.fw.util import raises
    for mod in (_Mod(OldClient), _Mod(NewClient)):
        e = raises(mqtt.MqttError, mqtt.make_client, b"id", "h", 8883, "u", "pw", 60, True,
                   None, mod)
        assert e.kind == "config" and "pw" not in str(e)
    assert raises(https.NetError, https.make_context, None).kind == "config"
    assert raises(https.NetError, https.make_context, []).kind == "config"
    seen = []
    e = raises(https.NetError, https.request, "POST", "https://127.0.0.1:9/x", b"{}", None,
               None, 3, seen.append)
    assert e.kind == "config" and seen == []          # no activity: nothing was opened
