# Minimal HTTP/1.1 POST over `socket` + `ssl`, the same code on the device and the host.
#
# Why not micropython-lib `requests`: it wraps every https:// connection with
# verify_mode=CERT_NONE and offers no way to pass a CA, so it cannot refuse an impostor.
# This client builds an ssl.SSLContext(PROTOCOL_TLS_CLIENT) with CERT_REQUIRED and the
# configured CA (`ca_pem`, loaded as DER: the MicroPython unix port's mbedTLS is built
# without PEM parsing, and CPython takes DER too), and passes server_hostname so the
# name is checked (mbedTLS checks CN/SAN; CPython check_hostname). The validity dates
# are checked against the clock, which the app sets from NTP before uploading.
# TLS is never used unverified: without a CA, or with a TLS module that cannot verify
# (the ESP8266's axTLS knows only CERT_NONE: extmod/modtls_axtls.c), nothing is sent
# (issue #19: an impostor's 200 made the device drop readings it never delivered).
# The ESP8266 posts to http:// instead, every batch signed (sign.py).
import socket
from binascii import a2b_base64

MAX_RESPONSE = 2048


class NetError(Exception):
    # kind: "dns", "connect", "tls", "timeout", "http", "config"
    def __init__(self, kind, detail=""):
        self.kind = kind
        self.detail = detail

    def __str__(self):
        return self.kind + (": " + self.detail if self.detail else "")


def parse_url(url):
    """-> (scheme, host, port, path). Userinfo in the URL is refused (it would end up in
    logs); use the config's credential keys instead."""
    if "://" not in url:
        raise NetError("config", "url without scheme")
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        raise NetError("config", "scheme " + scheme)
    if "/" in rest:
        hostport, path = rest.split("/", 1)
        path = "/" + path
    else:
        hostport, path = rest, "/"
    if "@" in hostport:
        raise NetError("config", "credentials in url")
    port = 443 if scheme == "https" else 80
    if hostport.startswith("["):
        # (no str.partition on the ESP8266 image)
        e = hostport.find("]")
        if e < 0:
            raise NetError("config", "bad url")
        host, tail = hostport[1:e], hostport[e + 1:]
        if tail.startswith(":"):
            port = int(tail[1:])
    elif ":" in hostport:
        host, p = hostport.rsplit(":", 1)
        port = int(p)
    else:
        host = hostport
    if not host:
        raise NetError("config", "url without host")
    return scheme, host, port, path


def pem_to_der(pem):
    """PEM text (one or more certificates) -> list of DER bytes."""
    if isinstance(pem, (bytes, bytearray)):
        pem = bytes(pem).decode()
    out = []
    cur = None
    for ln in pem.replace("\r", "").split("\n"):
        ln = ln.strip()
        if ln.startswith("-----BEGIN"):
            cur = []
        elif ln.startswith("-----END"):
            if cur is not None:
                out.append(a2b_base64("".join(cur)))
            cur = None
        elif cur is not None and ln:
            cur.append(ln)
    return out


def _cadata(ca_der):
    import sys
    if sys.implementation.name == "micropython":
        # mbedTLS context takes one DER certificate per load
        return ca_der[0]
    return b"".join(ca_der)


def tls_module():
    # -> (module, is_python_ssl). MicroPython's `ssl` is a frozen Python wrapper over the
    # C module `tls`; a MICROPYPATH without ".frozen" hides it, so fall back to `tls`
    # (same SSLContext, but load_verify_locations takes the data positionally).
    try:
        import ssl
        return ssl, True
    except ImportError:
        import tls
        return tls, False


def make_context(ca_der):
    """Client SSLContext: CERT_REQUIRED with the CA. NetError without a CA ("config")
    or when this TLS module cannot verify ("tls"): never an unverified context."""
    if not ca_der:
        raise NetError("config", "TLS without ca_pem refused")
    m, wrapper = tls_module()
    if not hasattr(m, "SSLContext") or not hasattr(m, "CERT_REQUIRED"):
        raise NetError("tls", "this TLS module cannot verify certificates")
    ctx = m.SSLContext(m.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = m.CERT_REQUIRED
    if wrapper:
        ctx.load_verify_locations(cadata=_cadata(ca_der))
    else:
        ctx.load_verify_locations(_cadata(ca_der))
    return ctx


def tls_wrap(sock, host, ca_der):
    """Wrap a connected socket, verified against ca_der (list of DER CA certificates):
    name, chain and dates. NetError when that cannot be done (make_context)."""
    return make_context(ca_der).wrap_socket(sock, server_hostname=host)


def _write(s, data):
    if hasattr(s, "sendall"):
        s.sendall(data)
    else:
        s.write(data)


def _read(s, n):
    if hasattr(s, "recv"):
        return s.recv(n)
    return s.read(n)


def _timeout_error(e):
    # CPython: socket.timeout (TimeoutError); MicroPython: OSError(ETIMEDOUT=110)
    if isinstance(e, OSError) and e.args and e.args[0] in (110, 116, "timed out"):
        return True
    return type(e).__name__ in ("timeout", "TimeoutError")


def request(method, url, body=b"", headers=None, ca_der=None, timeout_s=10,
            activity=None, max_response=MAX_RESPONSE):
    """-> (status int, response body bytes, bytes on the wire). Raises NetError. https://
    URLs are verified against ca_der, and refused without it before any connection."""
    scheme, host, port, path = parse_url(url)
    if scheme == "https" and not ca_der:
        raise NetError("config", "TLS without ca_pem refused")
    try:
        ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except Exception as e:
        raise NetError("dns", host)
    if not ai:
        raise NetError("dns", host)
    ai = ai[0]
    s = socket.socket(ai[0], socket.SOCK_STREAM)
    try:
        s.settimeout(timeout_s)
        try:
            if activity:
                activity("tx")
            s.connect(ai[-1])
        except Exception as e:
            raise NetError("timeout" if _timeout_error(e) else "connect", "%s:%d" % (host, port))
        if scheme == "https":
            if activity:
                activity("tls")
            try:
                s = tls_wrap(s, host, ca_der)
            except NetError:
                raise
            except Exception as e:
                raise NetError("timeout" if _timeout_error(e) else "tls",
                               str(e).strip().split("\n")[0][:80])
        if activity:
            activity("tx")
        head = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host,
                "Connection: close", "Content-Length: %d" % len(body)]
        if headers:
            for k in headers:
                head.append("%s: %s" % (k, headers[k]))
        head = ("\r\n".join(head) + "\r\n\r\n").encode()
        try:
            _write(s, head)
            if body:
                _write(s, body)
            resp = b""
            while len(resp) < max_response + 1024:
                chunk = _read(s, 512)
                if not chunk:
                    break
                resp += chunk
                if _complete(resp):
                    break
        except Exception as e:
            raise NetError("timeout" if _timeout_error(e) else "connect", "io")
    finally:
        try:
            s.close()
        except Exception:
            pass
    status, rbody = _parse_response(resp, max_response)
    return status, rbody, len(head) + len(body) + len(resp)


def _complete(resp):
    # stop reading once Content-Length bytes of body are in (the server may keep the
    # socket open a little after answering)
    i = resp.find(b"\r\n\r\n")
    if i < 0:
        return False
    for ln in resp[:i].split(b"\r\n")[1:]:
        if ln.lower().startswith(b"content-length:"):
            try:
                return len(resp) - i - 4 >= int(ln[15:].strip())
            except ValueError:
                return False
    return False


def _parse_response(resp, max_response):
    i = resp.find(b"\r\n\r\n")
    if not resp.startswith(b"HTTP/") or i < 0:
        raise NetError("http", "no response")
    line = resp[:resp.find(b"\r\n")].split(b" ")
    try:
        status = int(line[1])
    except (IndexError, ValueError):
        raise NetError("http", "bad status line")
    return status, resp[i + 4:i + 4 + max_response]
