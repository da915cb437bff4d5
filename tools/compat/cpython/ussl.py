# CPython stand-in for MicroPython's module-level ussl.wrap_socket (umqtt.simple 1.3.4
# calls ussl.wrap_socket(sock, **ssl_params)), built on ssl.SSLContext.
import ssl as _ssl

from usocket import Stream

CERT_NONE = _ssl.CERT_NONE
CERT_OPTIONAL = _ssl.CERT_OPTIONAL
CERT_REQUIRED = _ssl.CERT_REQUIRED


def wrap_socket(sock, server_side=False, key=None, cert=None, cert_reqs=CERT_NONE,
                cadata=None, server_hostname=None, do_handshake=True):
    raw = sock._sock if isinstance(sock, Stream) else sock
    timeout = raw.gettimeout()
    if server_side:
        ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    else:
        ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
        if cert_reqs == CERT_NONE:
            ctx.check_hostname = False
            ctx.verify_mode = CERT_NONE
        else:
            ctx.verify_mode = cert_reqs
            ctx.check_hostname = bool(server_hostname)
        if cadata:
            ctx.load_verify_locations(cadata=cadata)
    s = ctx.wrap_socket(raw, server_side=server_side, server_hostname=server_hostname,
                        do_handshake_on_connect=do_handshake)
    s.settimeout(timeout)
    if isinstance(sock, Stream):
        # CPython's wrap_socket detaches the plain socket: the caller's Stream object
        # (which others may still hold, e.g. for settimeout) now speaks TLS
        sock._sock = s
        return sock
    return Stream(s)
