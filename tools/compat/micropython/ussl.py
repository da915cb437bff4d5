# MicroPython unix port: there is no `ussl` (umqtt.simple 1.3.4 imports it for TLS). This
# gives the module-level wrap_socket() of older MicroPython on top of the C `tls` module
# (always built in; the Python `ssl` wrapper lives in .frozen, which a MICROPYPATH may omit).
import tls

CERT_NONE = tls.CERT_NONE
CERT_OPTIONAL = tls.CERT_OPTIONAL
CERT_REQUIRED = tls.CERT_REQUIRED


def wrap_socket(sock, server_side=False, key=None, cert=None, cert_reqs=CERT_NONE,
                cadata=None, server_hostname=None, do_handshake=True):
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER if server_side else tls.PROTOCOL_TLS_CLIENT)
    if key is not None or cert is not None:
        ctx.load_cert_chain(cert, key)
    ctx.verify_mode = cert_reqs
    if cadata:
        ctx.load_verify_locations(cadata)
    return ctx.wrap_socket(sock, server_side=server_side, do_handshake_on_connect=do_handshake,
                           server_hostname=server_hostname)
