# CPython stand-in for MicroPython's usocket: a real socket with the stream methods
# MicroPython sockets have, which umqtt.simple uses (read/write/readinto).
import socket as _s
from socket import (getaddrinfo, AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM,  # noqa: F401
                    SOL_SOCKET, SO_REUSEADDR)


class Stream:
    """Wraps a CPython socket (or SSLSocket) with MicroPython stream semantics."""

    def __init__(self, sock):
        self._sock = sock
        self._timeout = sock.gettimeout()

    # MicroPython: read(n) on a blocking stream returns n bytes unless EOF comes first;
    # None when non-blocking and nothing is there.
    def read(self, n=-1):
        if n is None or n < 0:
            chunks = []
            while True:
                c = self._recv(4096)
                if not c:
                    return b"".join(chunks)
                chunks.append(c)
        buf = b""
        while len(buf) < n:
            try:
                c = self._sock.recv(n - len(buf))
            except BlockingIOError:
                return buf if buf else None
            if not c:
                break
            buf += c
        return buf

    def _recv(self, n):
        try:
            return self._sock.recv(n)
        except BlockingIOError:
            return None

    def readinto(self, buf, n=None):
        n = len(buf) if n is None else n
        data = self.read(n)
        if data is None:
            return None
        buf[:len(data)] = data
        return len(data)

    def write(self, data, n=None):
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data if n is None else memoryview(data)[:n])
        self._sock.sendall(data)
        return len(data)

    send = write

    def recv(self, n):
        return self._sock.recv(n)

    def sendall(self, data):
        self._sock.sendall(data)

    def settimeout(self, t):
        self._timeout = t
        self._sock.settimeout(t)

    def setblocking(self, flag):
        # MicroPython semantics are the same, but here True restores the timeout given
        # to settimeout() (a host test must never hang on a dead peer)
        if flag:
            self._sock.settimeout(self._timeout)
        else:
            self._sock.setblocking(False)

    def connect(self, addr):
        self._sock.connect(addr)

    def close(self):
        try:
            self._sock.close()
        except OSError:
            pass

    def fileno(self):
        return self._sock.fileno()

    def __getattr__(self, name):
        return getattr(self._sock, name)


def socket(af=AF_INET, type=SOCK_STREAM, proto=0):
    return Stream(_s.socket(af, type, proto))
