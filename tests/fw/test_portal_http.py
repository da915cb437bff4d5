# The portal's HTTP/1.0 server and DNS catch-all, at the parsing level and on real
# loopback sockets driven by the one poll loop: caps (request line, headers, body),
# junk and invalid UTF-8 refused with 400, timeouts, client limit, DNS answers and
# malformed DNS packets dropped. Both Pythons.
import socket

from firmware.portal import http, dns
from tests.fw.util import raises, Rng, is_micropython
from tests.fw.portal_util import exchange, free_port, Stalled


def _broken_page():
    yield "<p>first part"
    raise ValueError("bad status value")


def _handler(req):
    if req.path == "/crash":
        raise KeyError("bug")
    if req.path == "/broken":
        return 200, (), _broken_page()
    if req.path == "/echo":
        return 200, (("Content-Type", "text/plain"),), bytes(req.body)
    if req.path == "/big":
        return 200, (), ("0123456789" * 10 for _ in range(300))   # 30 KB, streamed
    return 200, (("Content-Type", "text/plain"),), "hello " + req.method


def _server():
    for _ in range(5):
        p = free_port()
        try:
            s = http.Server(_handler, p, "127.0.0.1")
            s.drain_ms = 50
            return s, p
        except OSError:
            continue
    raise OSError("no free port")


def test_parse_head_ok():
    r = http.parse_head(b"GET /status?x=1 HTTP/1.1\r\nHost: 192.168.4.1\r\n"
                        b"User-Agent: phone\r\nOrigin: http://192.168.4.1")
    assert r.method == "GET" and r.path == "/status" and r.query == "x=1"
    assert r.header("host") == "192.168.4.1" and r.header("origin") == "http://192.168.4.1"
    assert r.header("user-agent") is None      # not kept (memory)


def test_parse_head_refuses_junk():
    bad = (b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9",       # non-ASCII header
           b"GET /\xff HTTP/1.1",                          # non-ASCII target
           b"GET / HTTP/1.1\r\nX\x00: y",                 # control byte
           b"GET /",                                       # two parts
           b"GET  / HTTP/1.1",                             # empty part
           b"GET / HTTP/2.0",
           b"GET http://evil/ HTTP/1.1",
           b"G(T / HTTP/1.1",
           b"GET / HTTP/1.1\r\nno colon here",
           b"GET / HTTP/1.1\r\n folded: header",
           b"GET / HTTP/1.1\r\nBad Name: x",
           b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2")
    for h in bad:
        e = raises(http.HttpError, http.parse_head, h)
        assert e.status == 400, (h, e.status)
    assert raises(http.HttpError, http.parse_head, b"DELETE / HTTP/1.1").status == 405


def test_utf8_validator():
    good = ("", "abc", "é", "€", "𝄞", "Ωμέγα ✓ 日本語")
    for s in good:
        assert http.utf8_ok(s.encode()), s
    bad = (b"\xff", b"\xc3", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
           b"\xf8\x88\x80\x80\x80", b"a\x80", b"\xe2\x82", b"\xf0\x9f\x98")
    for b in bad:
        assert not http.utf8_ok(b), b


def test_parse_form():
    allowed = set(["ssid", "password", "_token"])
    f = http.parse_form(b"ssid=Caf%C3%A9+%26+Co&password=a%2Bb%3Dc&_token=", allowed)
    assert f == {"ssid": "Café & Co", "password": "a+b=c", "_token": ""}
    for body, words in ((b"ssid=%ff", "UTF-8"), (b"ssid=%ED%A0%80", "UTF-8"),
                        (b"ssid=%4", "escape"), (b"ssid=%zz", "escape"),
                        (b"ssid=a&ssid=b", "repeated"), (b"evil=1", "unknown"),
                        (b"ssid", "without"), (b"ssid=a b", "raw"),
                        (b"ssid=\xc3\xa9", "raw"), (b"ssid=a\r\n", "raw")):
        e = raises(http.HttpError, http.parse_form, body, allowed)
        assert e.status == 400 and words in e.msg, (body, e.msg)
    many = set(["f%d" % i for i in range(100)])
    body = "&".join(["f%d=1" % i for i in range(60)]).encode()
    assert "too many" in raises(http.HttpError, http.parse_form, body, many).msg


def test_server_get_post_and_streamed_response():
    s, p = _server()
    try:
        st, h, body = exchange(s, p, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert st == 200 and body == b"hello GET" and h["connection"] == "close"
        st, h, body = exchange(s, p, b"HEAD / HTTP/1.0\r\n\r\n")
        assert st == 200 and body == b""
        st, h, body = exchange(s, p, b"POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world")
        assert st == 200 and body == b"hello world"
        # bare LF line ends are tolerated
        st, h, body = exchange(s, p, b"GET / HTTP/1.0\n\n")
        assert st == 200
        st, h, body = exchange(s, p, b"GET /big HTTP/1.0\r\n\r\n", max_turns=3000)
        assert st == 200 and len(body) == 30000 and body[:10] == b"0123456789"
    finally:
        s.close()


def test_server_survives_handler_and_page_errors():
    s, p = _server()
    try:
        st, h, body = exchange(s, p, b"GET /crash HTTP/1.0\r\n\r\n")
        assert st == 500
        st, h, body = exchange(s, p, b"GET /broken HTTP/1.0\r\n\r\n")
        assert st == 200 and body == b"<p>first part"
        assert s.stats["errors"] == 2
        st, h, body = exchange(s, p, b"GET / HTTP/1.0\r\n\r\n")
        assert st == 200 and body == b"hello GET"
    finally:
        s.close()


def test_server_caps():
    s, p = _server()
    try:
        st, h, body = exchange(s, p, b"GET /" + b"a" * 600 + b" HTTP/1.1\r\n\r\n")
        assert st == 414
        st, h, body = exchange(s, p, b"GET / HTTP/1.1\r\n" + b"X-Pad: aaaaaaaaaa\r\n" * 150
                               + b"\r\n")
        assert st == 431
        st, h, body = exchange(s, p, b"POST /echo HTTP/1.1\r\nContent-Length: 7169\r\n\r\n"
                               + b"a" * 7169)
        assert st == 413 and b"7168" in body
        st, h, body = exchange(s, p, b"POST /echo HTTP/1.1\r\nContent-Length: 7168\r\n\r\n"
                               + b"a" * 7168, max_turns=2000)
        assert st == 200 and body == b"a" * 7168
        st, h, body = exchange(s, p, b"POST /echo HTTP/1.1\r\n\r\nabc")
        assert st == 411
        st, h, body = exchange(s, p, b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"3\r\nabc\r\n0\r\n\r\n")
        assert st == 411
        st, h, body = exchange(s, p, b"POST /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n")
        assert st == 400
        st, h, body = exchange(s, p, b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nabc")
        assert st == 400
        st, h, body = exchange(s, p, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")
        assert st == 400                      # a TLS ClientHello is junk here
        st, h, body = exchange(s, p, b"PUT / HTTP/1.1\r\n\r\n")
        assert st == 405 and "GET" in h["allow"]
        # after all that the server still answers
        st, h, body = exchange(s, p, b"GET / HTTP/1.1\r\n\r\n")
        assert st == 200
    finally:
        s.close()


def test_server_timeout_and_client_limit():
    s, p = _server()
    s.req_ms = 150
    try:
        # a client that sends half a request gets 408 once its time is up
        st, h, body = exchange(s, p, b"GET / HTTP/1.1\r\nHost: x\r\n", max_turns=3000)
        assert st == 408
        assert s.stats["timeouts"] == 1
        # three idle clients hold every slot; a fourth still gets served (oldest dropped).
        # (The idle ones must not time out first on a loaded machine: a long timeout.)
        s.req_ms = 60000
        idle = []
        for _ in range(3):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.connect(socket.getaddrinfo("127.0.0.1", p)[0][-1])
            idle.append(c)
        for _ in range(400):          # accepted as they come (a loaded machine: later)
            s.poll(5)
            if len(s.conns) == 3:
                break
        assert len(s.conns) == 3
        st, h, body = exchange(s, p, b"GET / HTTP/1.1\r\n\r\n")
        assert st == 200
        assert s.stats["evicted"] >= 1
        for c in idle:
            c.close()
        for _ in range(50):
            s.poll(5)
    finally:
        s.close()


def _query(name, qtype=1, qid=0x1234, rd=True):
    q = bytearray([qid >> 8, qid & 255, 1 if rd else 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    for label in name.split("."):
        q.append(len(label))
        q += label.encode()
    q += bytes([0, qtype >> 8, qtype & 255, 0, 1])
    return bytes(q)


def test_dns_answer_every_a_query():
    ip = dns.ip_bytes("192.168.4.1")
    for name in ("connectivitycheck.gstatic.com", "captive.apple.com", "www.msftconnecttest.com",
                 "a", "x" * 63 + ".example"):
        q = _query(name, 1, 0xBEEF)
        r = dns.answer(q, ip)
        assert r[:2] == b"\xbe\xef"
        assert r[2] & 0x80 and r[2] & 0x01 and r[3] == 0x80       # response, RD, RA, NOERROR
        assert r[6:8] == b"\x00\x01"                             # one answer
        assert r[12:len(q)] == q[12:]                            # the question echoed
        assert r[-4:] == ip and r[-6:-4] == b"\x00\x04"
    r = dns.answer(_query("example.com", 28), ip)                # AAAA: empty answer
    assert r[6:8] == b"\x00\x00" and r[3] == 0x80
    r = dns.answer(_query("example.com", 255), ip)               # ANY: the A record
    assert r[-4:] == ip
    # EDNS OPT record in the additional section is dropped from the reply
    q = bytearray(_query("example.com"))
    q[11] = 1
    q += b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"
    r = dns.answer(bytes(q), ip)
    assert r[10:12] == b"\x00\x00" and r[-4:] == ip


def test_dns_drops_malformed():
    ip = dns.ip_bytes("10.0.0.1")
    good = _query("example.com")
    bad = [b"", good[:12], good[:-1], good[:-4],
           good[:2] + b"\x81\x80" + good[4:],             # a response, not a query
           good[:2] + b"\x28\x00" + good[4:],             # opcode 5 (update)
           good[:5] + b"\x02" + good[6:],                 # two questions
           good[:7] + b"\x01" + good[8:],                 # claims an answer
           good[:12] + b"\xc0\x0c" + good[-4:],           # compression pointer
           good[:12] + b"\x3f" + b"a" * 10,               # label past the end
           good + b"\x00" * 500]                           # longer than 512
    long_name = ".".join(["a" * 63] * 5)                  # > 255 bytes of name
    bad.append(_query(long_name))
    for b in bad:
        assert dns.answer(b, ip) is None, b
    rng = Rng(7)
    n = 300 if is_micropython() else 3000
    for _ in range(n):
        q = bytearray(good)
        for _ in range(1 + rng.below(4)):
            q[rng.below(len(q))] = rng.below(256)
        r = dns.answer(bytes(q[:rng.below(len(q) + 1)] if rng.below(4) == 0 else q), ip)
        assert r is None or (len(r) >= 17 and r[2] & 0x80)


def test_dns_server_on_loopback_in_the_poll_loop():
    for _ in range(5):
        p = free_port()
        try:
            d = dns.DnsServer("192.168.4.1", p, "127.0.0.1")
            break
        except OSError:
            continue
    s, hp = _server()
    s.extra.append(d)
    s.poller.register(d.sock, 1)
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        addr = socket.getaddrinfo("127.0.0.1", p)[0][-1]
        c.sendto(b"\x00\x01garbage", addr)              # dropped, no reply
        c.sendto(_query("anything.example"), addr)
        c.setblocking(False)
        got = None
        for _ in range(200):
            s.poll(5)
            try:
                got = c.recv(512)
                break
            except OSError:
                pass
        assert got is not None and got[-4:] == bytes([192, 168, 4, 1])
        assert d.answered == 1 and d.dropped == 1
        # HTTP still served from the same loop
        st, h, body = exchange(s, hp, b"GET / HTTP/1.0\r\n\r\n")
        assert st == 200
    finally:
        c.close()
        d.close()
        s.close()


def _genuine_posts(s, p, attacker, n=20):
    # -> statuses of n genuine POSTs, each made while the attacker holds a connection
    got = []
    for i in range(n):
        body = ("ssid=HomeNet&n=%d&" % i).encode() + b"x" * (300 + 200 * (i % 20))
        st, h, out = exchange(s, p, b"POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
                              % len(body) + body, max_turns=2000)
        assert out == body or st != 200, (i, st)
        got.append(st)
        attacker.check()
    return got


def test_a_stalled_post_never_blocks_another_clients_post():
    s, p = _server()
    s.req_ms = 120                     # the attacker's 408 comes often: it reconnects
    try:
        a = Stalled(s, p)
        got = _genuine_posts(s, p, a)
        assert got == [200] * 20, got
        # the attacker was refused (408) and came back, again and again
        for _ in range(100):
            s.poll(5)
            a.check()
        assert len(a.answers) >= 2 and set(a.answers) == {b"408"}, a.answers
        a.close()
    finally:
        s.close()


def test_a_trickling_post_holds_the_buffer_only_while_nobody_waits():
    # 10 bytes of a 7000-byte body, then nothing: it owns the buffer, so the genuine
    # client waits its turn; past hold_ms the slow owner gets 408 and the waiting
    # client's body goes in. Nothing refused with 503, nothing mixed up.
    s, p = _server()
    s.hold_ms = 60
    try:
        a = Stalled(s, p, first=b"ssid=xxxxx")
        got = _genuine_posts(s, p, a, 10)
        assert got == [200] * 10, got
        assert b"408" in a.answers
        a.close()
    finally:
        s.close()


def test_bodies_arriving_together_each_get_their_own_bytes():
    # two clients send their heads, then their bodies interleaved in pieces: one owns
    # the buffer, the other waits (its bytes stay in its socket) and is served next
    s, p = _server()
    try:
        socks = []
        bodies = [b"a" * 3000, b"b" * 2500]
        for b in bodies:
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.connect(socket.getaddrinfo("127.0.0.1", p)[0][-1])
            c.send(b"POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(b) + b[:100])
            socks.append(c)
        for _ in range(20):
            s.poll(5)
        for i in range(1, 30):
            for k in range(2):
                part = bodies[k][100 * i:100 * (i + 1)]
                if part:
                    socks[k].send(part)
            s.poll(5)
        outs = [b"", b""]
        for c in socks:
            c.setblocking(False)
        for _ in range(400):
            s.poll(5)
            for k in range(2):
                try:
                    d = socks[k].recv(4096)
                except OSError:
                    d = None
                if d:
                    outs[k] += d
            if all(o.endswith(b) for o, b in zip(outs, bodies)):
                break
        for k in range(2):
            assert outs[k].startswith(b"HTTP/1.0 200") and outs[k].endswith(bodies[k]), k
        for c in socks:
            c.close()
    finally:
        s.close()
