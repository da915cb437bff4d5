# Helpers for the config and portal firmware tests (both Pythons): a scratch
# directory, a test CA certificate (generated for these tests with openssl, EC P-256,
# CN=linky-test-ca), and a client that talks to an in-process server by driving its
# poll loop between socket operations (one thread on both Pythons).
import os
import socket

from tools.services import free_port  # noqa: F401 (re-exported for the portal tests)

try:
    import time
    _sleep_ms = time.sleep_ms
except AttributeError:
    def _sleep_ms(ms):
        time.sleep(ms / 1000)

CA_PEM = """-----BEGIN CERTIFICATE-----
MIIBhzCCAS2gAwIBAgIUC//NwqBy4ceWoddzNkIB4jdb7AAwCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNbGlua3ktdGVzdC1jYTAgFw0yNjExMjMwOTAyMTRaGA8yMTI2
MTAzMDA5MDIxNFowGDEWMBQGA1UEAwwNbGlua3ktdGVzdC1jYTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABLp6izy3MjVLZNQyc+sY/8N0AWABZ1WGUZkQjr841lJz
UYiDtDJMgJrF7nFJfyXTYiIlXB9wVs2h5ipy+dceyJqjUzBRMB0GA1UdDgQWBBSp
efRP/96nKLvHszj/b84MuA1iXjAfBgNVHSMEGDAWgBSpefRP/96nKLvHszj/b84M
uA1iXjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQC6+3WObOvo
ySR8gxkA0Jim4mD0kLIdZtKnSIk6rD+udwIgE35r47IIWS+d0/DWJB9sSCkQUvUP
xtPXTYVJXYF0QBU=
-----END CERTIFICATE-----
"""


def _hex(b):
    try:
        from binascii import hexlify
    except ImportError:
        from ubinascii import hexlify
    return hexlify(b).decode()


def tmpdir(tag="cfg"):
    d = "/tmp/linky_%s_%s" % (tag, _hex(os.urandom(6)))
    os.mkdir(d)
    return d


def rmtree(d):
    try:
        names = os.listdir(d)
    except OSError:
        return
    for n in names:
        try:
            os.remove(d + "/" + n)
        except OSError:
            pass
    try:
        os.rmdir(d)
    except OSError:
        pass


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _eagain(e):
    return (e.args[0] if e.args else 0) in (11, 35, 115)


def exchange(server, port, data, max_turns=400, send_after=None, close_write=False):
    # Connect to 127.0.0.1:port, send data (bytes), drive server.poll() until the
    # server closes the connection. -> (status int or None, headers dict, body bytes).
    # send_after: bytes sent once the response has started (ignored if None).
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    c.setblocking(False)
    out = bytearray()
    pos = 0
    mv = memoryview(data)
    try:
        for _ in range(max_turns):
            if pos < len(data):
                try:
                    n = c.send(mv[pos:pos + 4096])
                    if n:
                        pos += n
                except OSError as e:
                    if not _eagain(e):
                        break
            server.poll(5)
            try:
                chunk = c.recv(4096)
            except OSError as e:
                if _eagain(e):
                    continue
                break
            if chunk is None:
                continue
            if not chunk:
                break
            out += chunk
    finally:
        c.close()
    return parse_response(bytes(out))


def parse_response(raw):
    i = raw.find(b"\r\n\r\n")
    if not raw or i < 0:
        return None, {}, raw
    lines = raw[:i].decode().split("\r\n")
    status = int(lines[0].split(" ")[1])
    hdr = {}
    for ln in lines[1:]:
        k, v = ln.split(":", 1)
        hdr[k.strip().lower()] = v.strip()
    return status, hdr, raw[i + 4:]


def quote(s):
    # application/x-www-form-urlencoded, like a browser
    if isinstance(s, str):
        s = s.encode()
    out = []
    for b in s:
        if (48 <= b <= 57) or (65 <= b <= 90) or (97 <= b <= 122) or b in b"-._*":
            out.append(chr(b))
        elif b == 32:
            out.append("+")
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def form_body(fields):
    return "&".join([quote(k) + "=" + quote(v) for k, v in fields]).encode()


class Stalled:
    # An attacker's POST that announces a body and sends none (or only `first` bytes of
    # it), reconnecting as soon as the server gives up on it (issue #19: reconnecting
    # after each 408 made 20 of 20 genuine saves fail with 503 when the one body
    # buffer was claimed by the announcement).
    def __init__(self, server, port, path="/echo", length=7000, first=b""):
        self.s = server
        self.port = port
        self.head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/"
                     "x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % (path, length)
                     ).encode() + first
        self.c = None
        self.answers = []
        self.connect()

    def connect(self):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.connect(socket.getaddrinfo("127.0.0.1", self.port)[0][-1])
        c.send(self.head)
        c.setblocking(False)
        self.c = c
        n = len(self.s.conns)
        for _ in range(40):           # the server reads the head (it is now waiting)
            self.s.poll(5)
            if len(self.s.conns) > n and self.s.conns[-1].state != 0:     # Conn.HEAD
                break

    def check(self):
        # reconnect once the server answered (408) and closed
        data = b""
        while True:
            try:
                chunk = self.c.recv(512)
            except OSError:
                chunk = None
            if not chunk:
                break
            data += chunk
        if data:
            self.answers.append(data.split(b" ")[1])
        if chunk is not None:     # b"": closed by the server
            self.c.close()
            self.connect()

    def close(self):
        self.c.close()
