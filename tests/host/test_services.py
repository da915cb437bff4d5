# tools/services.py: the one place for host services (free ports, mosquitto, test
# certificates), checked against the real programs: mosquitto, Python's ssl (OpenSSL)
# and a real MQTT client. And the layering rule: tools never import tests.
import ast
import glob
import os
import socket
import ssl

import pytest

from tests.host.mpy import ROOT
from tools import services


def _imports(path):
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_no_tool_imports_a_test_module():
    bad = []
    for p in glob.glob(os.path.join(ROOT, "tools", "**", "*.py"), recursive=True):
        for m in _imports(p):
            if m == "tests" or m.startswith("tests."):
                bad.append("%s imports %s" % (os.path.relpath(p, ROOT), m))
    assert bad == []


def test_the_layering_check_sees_an_import_inside_a_function(tmp_path):
    # the scan above must catch the lazy form tools used to have (sim.py, benches)
    p = tmp_path / "t.py"
    p.write_text("def f():\n    from tests.fw.util import corpus\n")
    assert list(_imports(str(p))) == ["tests.fw.util"]


def test_free_port_is_bindable_for_tcp_and_udp():
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        p = services.free_port(kind)
        assert 1024 <= p <= 65535
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", p))
        s.close()


def _mqtt_roundtrip(port, sock_wrap=None):
    # CONNECT (MQTT 3.1.1, clean session) and read CONNACK with a raw socket: the broker's
    # own answer, bytes per MQTT 3.1.1 §3.1 / §3.2
    s = socket.create_connection(("127.0.0.1", port), 5)
    if sock_wrap:
        s = sock_wrap(s)
    cid = b"svc-test"
    var = b"\x00\x04MQTT\x04\x02\x00\x3c"
    payload = len(cid).to_bytes(2, "big") + cid
    s.sendall(bytes([0x10, len(var) + len(payload)]) + var + payload)
    ack = s.recv(4)
    s.close()
    return ack


def test_mosquitto_plain_and_tls_listeners(tmp_path):
    ca_pem, cert_pem, key_pem, _ = services.make_pki()
    cp, kp = tmp_path / "c.pem", tmp_path / "k.pem"
    cp.write_bytes(cert_pem)
    kp.write_bytes(key_pem)
    with services.Mosquitto(tls=(str(cp), str(kp))) as m:
        assert m.tls_port and m.tls_port != m.port
        # CONNACK, session present 0, return code 0 (accepted)
        assert _mqtt_roundtrip(m.port) == b"\x20\x02\x00\x00"
        ctx = ssl.create_default_context(cadata=ca_pem.decode())
        assert _mqtt_roundtrip(m.tls_port, lambda s: ctx.wrap_socket(
            s, server_hostname="127.0.0.1")) == b"\x20\x02\x00\x00"
        # a client trusting another CA refuses the broker's certificate
        other = ssl.create_default_context(cadata=services.make_pki()[0].decode())
        with pytest.raises(ssl.SSLCertVerificationError):
            _mqtt_roundtrip(m.tls_port, lambda s: other.wrap_socket(
                s, server_hostname="127.0.0.1"))
        port = m.port
    # stopped: the port refuses connections again
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), 0.5)


def test_pki_certificate_verifies_for_its_names_only(tmp_path):
    ca_pem, cert_pem, key_pem, _ = services.make_pki(("127.0.0.1", "collector.test"))
    cp, kp = tmp_path / "c.pem", tmp_path / "k.pem"
    cp.write_bytes(cert_pem)
    kp.write_bytes(key_pem)
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.load_cert_chain(str(cp), str(kp))
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    import threading

    def serve():
        for _ in range(2):
            c, _ = ls.accept()
            try:
                srv_ctx.wrap_socket(c, server_side=True).close()
            except (ssl.SSLError, OSError):
                c.close()
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    s = ctx.wrap_socket(socket.create_connection(ls.getsockname(), 5),
                        server_hostname="collector.test")
    s.close()
    with pytest.raises(ssl.SSLCertVerificationError):
        ctx.wrap_socket(socket.create_connection(ls.getsockname(), 5),
                        server_hostname="other.test")
    th.join(5)
    ls.close()


def test_ensure_pki_keeps_what_it_made(tmp_path):
    d = str(tmp_path / "pki")
    first = services.ensure_pki(d)
    assert services.ensure_pki(d) == first
    assert oct(os.stat(first[2]).st_mode & 0o777) == "0o600"
    assert first[0].startswith("-----BEGIN CERTIFICATE-----")
