# One MQTT session per upload window, on micropython-lib umqtt.simple (not re-implemented
# here). This module only adapts the two umqtt.simple generations and bounds every wait:
#
#   * 1.3.4 (the registry version): MQTTClient(..., ssl=True, ssl_params={...}) and
#     `ussl.wrap_socket(sock, **ssl_params)`; connect() has no timeout.
#   * newer (frozen in stock ESP firmware): MQTTClient(..., ssl=<SSLContext>), which calls
#     ctx.wrap_socket(sock, server_hostname=server); connect(clean_session, timeout).
#     Some newer versions keep ssl=True + ssl_params as a legacy path; it is used then.
#
# Timeouts: umqtt.simple creates its socket inside connect() and its wait_msg() calls
# sock.setblocking(True) on every message, which on both Pythons clears any timeout: a
# dead broker would then hang the device until the capacitor is empty. So the module's
# `socket` name is pointed, during connect(), at a factory that sets the timeout on the
# raw socket, and the client's stream is wrapped so setblocking(True) puts the timeout
# back (the SSL socket of MicroPython has no settimeout(); the raw one under it has).
try:
    from umqtt import simple as _simple
except ImportError:  # pragma: no cover - the device always has it frozen
    _simple = None


class MqttError(Exception):
    def __init__(self, kind, detail=""):
        self.kind = kind
        self.detail = detail

    def __str__(self):
        return self.kind + (": " + self.detail if self.detail else "")


class _SockFactory:
    def __init__(self, mod, timeout):
        self.mod = mod
        self.timeout = timeout
        self.raw = None

    def socket(self, *args):
        s = self.mod.socket(*args)
        s.settimeout(self.timeout)
        try:
            # umqtt writes a packet in 3-4 small writes: without TCP_NODELAY, Nagle +
            # delayed ACK hold every PUBLISH ~40 ms, i.e. radio-on time. The module's
            # own constant: the ESP8266's lwIP binding (extmod/modlwip.c) switches on
            # the option number alone and its TCP_NODELAY is lwIP's TF_NODELAY (0x40);
            # 1 there is "not implemented" (a warning printed on the meter's UART).
            # The unix port has no constant: Linux's IPPROTO_TCP=6, TCP_NODELAY=1.
            m = self.mod
            nd = getattr(m, "TCP_NODELAY", None)
            if nd is not None:
                s.setsockopt(getattr(m, "IPPROTO_TCP", 6), nd, 1)
            elif getattr(m, "SOL_SOCKET", None) == 1:   # Linux numbering
                s.setsockopt(6, 1, 1)
        except Exception:
            pass
        self.raw = s
        return s

    def getaddrinfo(self, *args):
        return self.mod.getaddrinfo(*args)

    def __getattr__(self, name):
        return getattr(self.mod, name)


class _Stream:
    # what umqtt.simple sees as self.sock: counts bytes, keeps the timeout
    def __init__(self, inner, raw, timeout):
        self.inner = inner
        self.raw = raw
        self.timeout = timeout
        self.tx = 0
        self.rx = 0

    def write(self, data, n=None):
        if n is not None:
            data = memoryview(data)[:n]
        self.tx += len(data)
        return self.inner.write(data)

    def read(self, n):
        data = self.inner.read(n)
        if data is None:
            return None
        # a blocking stream returns n bytes unless the peer closed; loop anyway for streams
        # that return short reads
        while len(data) < n:
            more = self.inner.read(n - len(data))
            if not more:
                break
            data += more
        self.rx += len(data)
        return data

    def setblocking(self, flag):
        if flag and self.raw is not None:
            self.raw.settimeout(self.timeout)
        else:
            self.inner.setblocking(flag)

    def settimeout(self, t):
        self.timeout = t
        if self.raw is not None:
            self.raw.settimeout(t)

    def close(self):
        try:
            self.inner.close()
        except Exception:
            pass


def _tls_params(host, ca_der):
    # umqtt.simple's legacy form: ussl.wrap_socket(sock, **params); always verified
    from firmware.uplink.https import tls_module, _cadata
    m, _ = tls_module()
    if not hasattr(m, "CERT_REQUIRED"):
        raise MqttError("tls", "this TLS module cannot verify certificates")
    return {"server_hostname": host, "cert_reqs": m.CERT_REQUIRED,
            "cadata": _cadata(ca_der)}


def _tls_context(ca_der):
    from firmware.uplink.https import make_context
    return make_context(ca_der)


def make_client(client_id, host, port, user=None, password=None, keepalive=60, tls=False,
                ca_der=None, module=None):
    """-> umqtt.simple.MQTTClient set up for TLS the way its version expects."""
    mod = module or _simple
    cls = mod.MQTTClient
    user = user or None
    password = (password or "") if user else None
    if not tls:
        return cls(client_id, host, port, user, password, keepalive)
    if not ca_der:
        # never an unverified broker: it would get the password and the readings
        raise MqttError("config", "TLS without ca_pem refused")
    try:
        # 1.3.4, and newer versions that kept the legacy form
        return cls(client_id, host, port, user, password, keepalive, ssl=True,
                   ssl_params=_tls_params(host, ca_der))
    except TypeError:
        pass
    return cls(client_id, host, port, user, password, keepalive, ssl=_tls_context(ca_der))


def _classify(e):
    if isinstance(e, MqttError):
        return e
    name = type(e).__name__
    msg = str(e).strip().split("\n")[0][:80]
    if name in ("timeout", "TimeoutError") or (isinstance(e, OSError) and e.args and
                                               e.args[0] in (110, 116)):
        return MqttError("timeout", msg)
    if "SSL" in name or "certificate" in msg or "CN" in msg or "CA" in msg:
        return MqttError("tls", msg)
    if _simple is not None and isinstance(e, _simple.MQTTException):
        return MqttError("refused", "connack %s" % msg)
    if isinstance(e, ValueError) and msg:
        # MicroPython's mbedTLS reports verification failures as ValueError
        return MqttError("tls", msg)
    if isinstance(e, OSError):
        return MqttError("connect", msg)
    return MqttError("protocol", name)


class Session:
    """One connection: connect (with last will), publish, subscribe, close."""

    def __init__(self, client_id, host, port, user=None, password=None, tls=False,
                 ca_der=None, timeout_s=10, keepalive=60, on_message=None, module=None):
        self.module = module or _simple
        if self.module is None:
            raise MqttError("config", "umqtt.simple missing")
        self.timeout = timeout_s
        self.client = make_client(client_id, host, port, user, password, keepalive, tls,
                                  ca_der, self.module)
        self.on_message = on_message
        self.client.set_callback(self._cb)
        self.stream = None
        self.connected = False

    def _cb(self, topic, msg):
        if self.on_message:
            self.on_message(bytes(topic), bytes(msg))

    @property
    def bytes(self):
        s = self.stream
        return 0 if s is None else s.tx + s.rx

    def connect(self, will_topic=None, will_msg=b"offline", clean=False):
        c = self.client
        if will_topic:
            c.set_last_will(will_topic, will_msg, True, 1)
        fac = _SockFactory(self.module.socket, self.timeout)
        orig = self.module.socket
        patched = True
        try:
            self.module.socket = fac
        except (AttributeError, TypeError):
            patched = False
        try:
            try:
                c.connect(clean, self.timeout)
            except TypeError:
                c.connect(clean)
        except Exception as e:
            raw = fac.raw
            if raw is not None:
                try:
                    raw.close()
                except Exception:
                    pass
            raise _classify(e)
        finally:
            if patched:
                self.module.socket = orig
        self.stream = _Stream(c.sock, fac.raw, self.timeout)
        c.sock = self.stream
        self.connected = True

    def publish(self, topic, payload, retain=False, qos=1):
        try:
            self.client.publish(topic, payload, retain, qos)
        except Exception as e:
            self.abort()
            raise _classify(e)

    def subscribe(self, topic, qos=1):
        try:
            self.client.subscribe(topic, qos)
        except Exception as e:
            self.abort()
            raise _classify(e)

    def close(self):
        # graceful: DISCONNECT, the broker discards the last will
        if not self.connected:
            return
        self.connected = False
        try:
            self.client.disconnect()
        except Exception:
            self.abort()

    def abort(self):
        self.connected = False
        if self.stream is not None:
            self.stream.close()
