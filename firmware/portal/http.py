# A tiny HTTP/1.0 server on non-blocking sockets, driven by one select.poll loop that
# also serves the DNS catch-all. Every limit is explicit because the ESP8266 has ~38 KB
# of heap and anyone in radio range may talk to it:
#   request line <= LINE_MAX, request line + headers <= HEAD_MAX, body <= BODY_MAX
#   (7 KB: every field at its limit with a 4 KB CA bundle, URL-encoded, fits; see
#   tests/fw/test_portal.py), at most MAX_CONNS clients
#   (the oldest one still sending its request is dropped for a new one), a request must
#   arrive within REQ_MS and a response leave within SEND_MS.
# The body buffer is one preallocated BODY_MAX bytearray (three per-client ones would
# take ~21 KB of the ESP8266's heap). A client claims it only once its body's bytes
# arrive - announcing a Content-Length claims nothing - and keeps it at most HOLD_MS
# while another client waits: a client with body bytes waits its turn in a FIFO queue
# (its bytes stay in its TCP window, its socket is not polled), and an owner that has
# not finished within HOLD_MS gets 408 when someone is waiting. So a stalled POST holds
# nothing, a trickling one holds the buffer HOLD_MS at a time, and a form sent at a
# phone's speed (7 KB in a few ms) is never refused with 503 because of either.
# Responses are streamed from a generator in small pieces, never built whole.
# Junk (non-ASCII bytes in the head, a malformed request line or header, an invalid
# length) gets 400, oversize gets 414/431/413, and the connection is closed.
import socket
import select
import time

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

LINE_MAX = const(512)
HEAD_MAX = const(2048)
BODY_MAX = const(7168)
MAX_CONNS = const(3)
REQ_MS = const(10000)
HOLD_MS = const(2000)
SEND_MS = const(20000)
DRAIN_MS = const(500)
RECV = const(512)

REASONS = {200: "OK", 204: "No Content", 302: "Found", 303: "See Other", 400: "Bad Request",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 411: "Length Required", 413: "Payload Too Large",
           414: "URI Too Long", 415: "Unsupported Media Type",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable"}

# only these headers are kept (memory); the rest are checked for shape and dropped
KEEP = ("host", "content-length", "content-type", "origin", "sec-fetch-site",
        "transfer-encoding")
_TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

try:
    _ticks = time.ticks_ms
    _diff = time.ticks_diff
except AttributeError:
    def _ticks():
        return int(time.monotonic() * 1000)

    def _diff(a, b):
        return a - b


class HttpError(Exception):
    def __init__(self, status, msg=""):
        super().__init__(status, msg)
        self.status = status
        self.msg = msg


class Request:
    def __init__(self, method, target, headers):
        self.method = method
        self.target = target
        q = target.find("?")
        self.path = target if q < 0 else target[:q]
        self.query = "" if q < 0 else target[q + 1:]
        self.headers = headers
        self.body = b""
        self.peer = None

    def header(self, name, default=None):
        return self.headers.get(name, default)


def parse_head(head):
    # head: bytes of the request line and headers without the blank line.
    # -> Request; raises HttpError(400/405/...) for anything malformed.
    for b in head:
        if b > 126 or (b < 32 and b not in (9, 10, 13)):
            raise HttpError(400, "request head must be ASCII text")
    text = head.decode()
    lines = text.split("\n")
    line = lines[0]
    if line.endswith("\r"):
        line = line[:-1]
    parts = line.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise HttpError(400, "unsupported HTTP version")
    for c in method:
        if c not in _TOKEN:
            raise HttpError(400, "malformed method")
    if target[0] != "/":
        raise HttpError(400, "target must be a path")
    headers = {}
    for i in range(1, len(lines)):
        ln = lines[i]
        if ln.endswith("\r"):
            ln = ln[:-1]
        if not ln:
            continue
        c = ln.find(":")
        if c <= 0 or ln[0] in " \t":
            raise HttpError(400, "malformed header")
        name = ln[:c]
        for ch in name:
            if ch not in _TOKEN:
                raise HttpError(400, "malformed header name")
        name = name.lower()
        if name in KEEP:
            val = ln[c + 1:].strip()
            if name in headers and headers[name] != val:
                raise HttpError(400, "conflicting " + name)
            headers[name] = val
    if method not in ("GET", "HEAD", "POST"):
        raise HttpError(405, "method not allowed")
    return Request(method, target, headers)


def _eagain(e):
    n = e.args[0] if e.args else 0
    return n in (11, 35, 115, 110, 119)   # EAGAIN/EWOULDBLOCK (Linux, BSD), EINPROGRESS, lwIP


class Conn:
    HEAD = 0
    BODY = 1
    SEND = 2
    DRAIN = 3

    def __init__(self, sock, peer, now):
        self.sock = sock
        self.peer = peer
        self.state = Conn.HEAD
        self.buf = bytearray()
        self.t0 = now
        self.req = None
        self.need = 0
        self.got = 0
        self.gen = None
        self.pending = None
        self.keep_body = False
        self.early = None        # body bytes that came with the head, before a claim
        self.claimed = 0         # when it took the body buffer

    def fileno(self):
        return self.sock.fileno()


def status_line(status, headers):
    # yields the status line and headers; every response closes the connection
    yield "HTTP/1.0 %d %s\r\n" % (status, REASONS.get(status, "Error"))
    for h in headers:
        yield h[0] + ": " + h[1] + "\r\n"
    yield "Connection: close\r\n\r\n"


def _response(status, headers, body, head_only):
    if isinstance(body, str):
        body = body.encode()
    if isinstance(body, bytes):
        # a known length lets the client stop reading without waiting for the close
        headers = tuple(headers) + (("Content-Length", str(len(body))),)
    for s in status_line(status, headers):
        yield s
    if head_only or body is None:
        return
    if isinstance(body, bytes):
        yield body
        return
    for piece in body:
        yield piece


def error_body(status, msg):
    yield "<!doctype html><meta charset=utf-8><title>%d</title><p>%d %s" % (
        status, status, REASONS.get(status, "Error"))
    if msg:
        yield ": " + escape(msg)
    yield "</p>\n"


def escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
        .replace('"', "&quot;").replace("'", "&#39;")


ERROR_HEADERS = (("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"))


class Server:
    # handler(req) -> (status, headers, body) where body is None, str/bytes or an
    # iterable of str/bytes pieces. extra: objects with .sock and .handle() (the DNS
    # server) polled in the same loop.
    def __init__(self, handler, port=80, bind="0.0.0.0", extra=()):
        self.handler = handler
        self.extra = list(extra)
        self.conns = []
        self.body = bytearray(BODY_MAX)     # one shared body buffer: preallocated
        self.body_owner = None
        self.waiters = []                   # clients with a body, waiting for the buffer
        self.stats = {"requests": 0, "refused": 0, "timeouts": 0, "evicted": 0, "errors": 0}
        self.req_ms = REQ_MS      # instance copies so tests can shorten them
        self.send_ms = SEND_MS
        self.hold_ms = HOLD_MS
        self.max_conns = MAX_CONNS
        self.drain_ms = DRAIN_MS
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(socket.getaddrinfo(bind, port)[0][-1])
        s.listen(4)
        s.setblocking(False)
        self.lsock = s
        self.poller = select.poll()
        self.poller.register(s, select.POLLIN)
        for x in self.extra:
            self.poller.register(x.sock, select.POLLIN)

    # -- connections ------------------------------------------------------------------
    def _accept(self, now):
        try:
            cs, peer = self.lsock.accept()
        except OSError:
            return
        cs.setblocking(False)
        if len(self.conns) >= self.max_conns:
            # drop the oldest client still sending its request (slow or idle)
            victim = None
            for c in self.conns:
                if c.state in (Conn.HEAD, Conn.BODY, Conn.DRAIN):
                    victim = c
                    break
            if victim is None:
                self.stats["refused"] += 1
                try:
                    cs.close()
                except OSError:
                    pass
                return
            self.stats["evicted"] += 1
            self._close(victim)
        c = Conn(cs, peer, now)
        self.conns.append(c)
        self.poller.register(cs, select.POLLIN)

    def _watch(self, c, events):
        # poll c's socket for events (0: not at all)
        try:
            self.poller.unregister(c.sock)
        except (OSError, KeyError, ValueError):
            pass
        if events:
            self.poller.register(c.sock, events)

    # -- the body buffer ----------------------------------------------------------------
    def _take(self, c):
        # c owns the body buffer from now on; what came with its head goes first
        self.body_owner = c
        c.claimed = _ticks()
        c.got = 0
        if c.early is not None:
            n = len(c.early)
            self.body[:n] = c.early
            c.got = n
            c.early = None
        if c.got == c.need:
            self._dispatch(c)

    def _release(self, c):
        # c (the owner, or None) is done with the buffer: the first waiter takes it
        if c is not None:
            if c in self.waiters:
                self.waiters.remove(c)
            if self.body_owner is not c:
                return
        self.body_owner = None
        while self.waiters:
            w = self.waiters.pop(0)
            if w in self.conns and w.state == Conn.BODY:
                self._watch(w, select.POLLIN)
                self._take(w)
                return

    def _claim(self, c):
        # -> True when c owns the body buffer (it may have been dispatched already);
        # False: c waits in line, its socket unpolled until its turn
        if self.body_owner is c:
            return True
        if self.body_owner is None and not self.waiters:
            self._take(c)
            return True
        if c not in self.waiters:
            self.waiters.append(c)
            self._watch(c, 0)
        self._expire_owner()
        if self.body_owner is None:
            self._release(None)
        return self.body_owner is c

    def _expire_owner(self):
        # an owner past HOLD_MS while others wait: too slow to keep the buffer
        o = self.body_owner
        if o is not None and self.waiters and _diff(_ticks(), o.claimed) > self.hold_ms:
            self.stats["timeouts"] += 1
            self._error(o, 408, "request body too slow")

    def _close(self, c):
        if c in self.conns:
            self.conns.remove(c)
        try:
            self.poller.unregister(c.sock)
        except (OSError, KeyError, ValueError):
            pass
        try:
            c.sock.close()
        except OSError:
            pass
        c.gen = None
        c.buf = None
        c.early = None
        self._release(c)

    def drop_clients(self):
        for c in list(self.conns):
            self._close(c)

    def _respond(self, c, status, headers, body, drain=False):
        head_only = c.req is not None and c.req.method == "HEAD"
        c.gen = _response(status, headers, body, head_only)
        c.pending = None
        c.buf = None
        c.keep_body = drain
        c.early = None
        c.state = Conn.SEND
        c.t0 = _ticks()
        self._watch(c, select.POLLOUT)
        self._release(c)

    def _error(self, c, status, msg=""):
        self.stats["refused"] += 1
        hdr = ERROR_HEADERS
        if status == 405:
            hdr = ERROR_HEADERS + (("Allow", "GET, HEAD, POST"),)
        self._respond(c, status, hdr, "".join(error_body(status, msg)), drain=True)

    def _dispatch(self, c):
        self.stats["requests"] += 1
        req = c.req
        req.peer = c.peer
        if c.state == Conn.BODY and self.body_owner is c:
            req.body = memoryview(self.body)[:c.need]
        try:
            status, headers, body = self.handler(req)
        except HttpError as e:
            self._error(c, e.status, e.msg)
            return
        except Exception:
            # a bug or bad data in a page must not take the portal down
            self.stats["errors"] += 1
            self._error(c, 500, "internal error")
            return
        self._respond(c, status, headers, body)

    def _head_done(self, c, end, skip):
        head = bytes(c.buf[:end])
        rest = c.buf[end + skip:]
        c.buf = None
        try:
            c.req = parse_head(head)
        except HttpError as e:
            self._error(c, e.status, e.msg)
            return
        req = c.req
        if req.method != "POST":
            self._dispatch(c)
            return
        if "transfer-encoding" in req.headers:
            self._error(c, 411, "chunked bodies are not accepted; send Content-Length")
            return
        cl = req.headers.get("content-length")
        if cl is None:
            self._error(c, 411, "Content-Length required")
            return
        if not cl or len(cl) > 9 or not cl.isdigit():
            self._error(c, 400, "invalid Content-Length")
            return
        n = int(cl)
        if n > BODY_MAX:
            self._error(c, 413, "the form is limited to %d bytes" % BODY_MAX)
            return
        if len(rest) > n:
            self._error(c, 400, "more data than Content-Length")
            return
        c.state = Conn.BODY
        c.need = n
        c.got = 0
        if n == 0:
            self._dispatch(c)          # nothing to hold: no buffer needed
            return
        if len(rest):
            # the body has started: claim the buffer (or wait in line with these bytes)
            c.early = rest
            self._claim(c)

    def _readable(self, c):
        if c.state == Conn.BODY and self.body_owner is not c:
            # body bytes are here: they go into the shared buffer, or wait their turn
            if not self._claim(c) or c.state != Conn.BODY:
                return
        try:
            data = c.sock.recv(RECV)
        except OSError as e:
            if _eagain(e):
                return
            self._close(c)
            return
        if not data:
            self._close(c)     # peer closed before a complete request (or after drain)
            return
        if c.state == Conn.DRAIN:
            c.got += len(data)
            if c.got > 65536:
                self._close(c)
            return
        if c.state == Conn.HEAD:
            c.buf += data
            buf = c.buf
            nl = buf.find(b"\n")
            if (nl < 0 and len(buf) > LINE_MAX) or nl > LINE_MAX:
                self._error(c, 414, "request line too long")
                return
            end = buf.find(b"\r\n\r\n")
            skip = 4
            e2 = buf.find(b"\n\n")
            if e2 >= 0 and (end < 0 or e2 < end):
                end, skip = e2, 2
            if end < 0:
                if len(buf) > HEAD_MAX:
                    self._error(c, 431, "headers too large")
                return
            if end > HEAD_MAX:
                self._error(c, 431, "headers too large")
                return
            self._head_done(c, end, skip)
            return
        if c.state == Conn.BODY:
            n = len(data)
            if c.got + n > c.need:
                self._error(c, 400, "more data than Content-Length")
                return
            self.body[c.got:c.got + n] = data
            c.got += n
            if c.got == c.need:
                self._dispatch(c)

    def _writable(self, c):
        try:
            while True:
                if c.pending is None:
                    piece = next(c.gen)
                    if isinstance(piece, str):
                        piece = piece.encode()
                    if not piece:
                        continue
                    c.pending = memoryview(piece)
                n = c.sock.send(c.pending)
                if n is None:
                    return
                if n < len(c.pending):
                    c.pending = c.pending[n:]
                    return
                c.pending = None
        except StopIteration:
            c.gen = None
            if c.keep_body:
                # the client may still be sending what we refused: read and discard it
                # for a moment so the close does not reset the response away
                c.state = Conn.DRAIN
                c.got = 0
                c.t0 = _ticks()
                self._watch(c, select.POLLIN)
                return
            self._close(c)
        except OSError as e:
            if not _eagain(e):
                self._close(c)
        except Exception:
            # the page generator failed half-way: the truncated response ends here
            self.stats["errors"] += 1
            self._close(c)

    def _timeouts(self, now):
        self._expire_owner()
        for c in list(self.conns):
            age = _diff(now, c.t0)
            if c.state in (Conn.HEAD, Conn.BODY) and age > self.req_ms:
                self.stats["timeouts"] += 1
                self._error(c, 408, "request took too long")
            elif c.state == Conn.SEND and age > self.send_ms:
                self.stats["timeouts"] += 1
                self._close(c)
            elif c.state == Conn.DRAIN and age > self.drain_ms:
                self._close(c)

    def _find(self, obj):
        for c in self.conns:
            if obj is c.sock:
                return c
        if isinstance(obj, int):
            for c in self.conns:
                try:
                    if c.sock.fileno() == obj:
                        return c
                except OSError:
                    pass
        return None

    def _is(self, obj, sock):
        return obj is sock or (isinstance(obj, int) and obj == sock.fileno())

    def busy(self):
        # True while a response is still going out (the caller waits before rebooting)
        for c in self.conns:
            if c.state == Conn.SEND:
                return True
        return False

    def poll(self, timeout_ms):
        # One turn of the loop: wait up to timeout_ms for any socket, serve what is ready.
        events = self.poller.poll(timeout_ms)
        now = _ticks()
        for ev in events:
            obj, flags = ev[0], ev[1]
            if self._is(obj, self.lsock):
                self._accept(now)
                continue
            done = False
            for x in self.extra:
                if self._is(obj, x.sock):
                    x.handle()
                    done = True
                    break
            if done:
                continue
            c = self._find(obj)
            if c is None:
                continue
            if c.state == Conn.SEND:
                if flags & (select.POLLHUP | select.POLLERR) and not flags & select.POLLOUT:
                    self._close(c)
                else:
                    self._writable(c)
            elif flags & select.POLLIN:
                self._readable(c)
            elif flags & (select.POLLHUP | select.POLLERR):
                self._close(c)
        self._timeouts(_ticks())
        return len(events)

    def close(self):
        self.drop_clients()
        for x in self.extra:
            try:
                self.poller.unregister(x.sock)
            except (OSError, KeyError, ValueError):
                pass
        try:
            self.poller.unregister(self.lsock)
        except (OSError, KeyError, ValueError):
            pass
        try:
            self.lsock.close()
        except OSError:
            pass


# -- application/x-www-form-urlencoded ---------------------------------------------------
def _hexval(c):
    if 48 <= c <= 57:
        return c - 48
    c |= 0x20
    if 97 <= c <= 102:
        return c - 87
    return -1


def utf8_ok(b):
    # strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
    # Own check because some MicroPython ports decode invalid UTF-8 without complaint.
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            k, lo, hi = 1, 0x80, 0xBF
        elif 0xE0 <= c <= 0xEF:
            k = 2
            lo = 0xA0 if c == 0xE0 else 0x80
            hi = 0x9F if c == 0xED else 0xBF
        elif 0xF0 <= c <= 0xF4:
            k = 3
            lo = 0x90 if c == 0xF0 else 0x80
            hi = 0x8F if c == 0xF4 else 0xBF
        else:
            return False
        if i + k >= n:
            return False
        if not lo <= b[i + 1] <= hi:
            return False
        for j in range(i + 2, i + 1 + k):
            if not 0x80 <= b[j] <= 0xBF:
                return False
        i += 1 + k
    return True


def parse_form(body, allowed, max_fields=48):
    # body: bytes-like, URL-encoded. -> dict name -> str. One pass, no copy of the body.
    # Raises HttpError(400) for raw non-ASCII or control bytes, a bad %-escape, invalid
    # UTF-8, an unknown or repeated field name, or too many fields.
    fields = {}
    cur = bytearray()
    key = None
    n = len(body)
    i = 0
    while i <= n:
        c = body[i] if i < n else 38
        if c == 38:                                   # '&' (or the end)
            if key is None:
                if len(cur):
                    raise HttpError(400, "form field without '='")
            else:
                if not utf8_ok(cur):
                    raise HttpError(400, "invalid UTF-8 in " + key)
                if key not in allowed:
                    raise HttpError(400, "unknown field " + key[:32])
                if key in fields:
                    raise HttpError(400, "repeated field " + key)
                if len(fields) >= max_fields:
                    raise HttpError(400, "too many fields")
                fields[key] = bytes(cur).decode()
            cur = bytearray()
            key = None
            i += 1
            continue
        if c == 61 and key is None:                   # '=' after the name
            for x in cur:
                if x > 126 or x < 33:
                    raise HttpError(400, "malformed field name")
            key = bytes(cur).decode()
            cur = bytearray()
            i += 1
            continue
        if c == 37:                                   # %XX
            if i + 2 >= n:
                raise HttpError(400, "malformed %-escape")
            h1 = _hexval(body[i + 1])
            h2 = _hexval(body[i + 2])
            if h1 < 0 or h2 < 0:
                raise HttpError(400, "malformed %-escape")
            cur.append(h1 * 16 + h2)
            i += 3
            continue
        if c == 43:                                   # '+' is a space
            cur.append(32)
        elif 33 <= c <= 126:
            cur.append(c)
        else:
            raise HttpError(400, "raw bytes in a form body")
        i += 1
    return fields
