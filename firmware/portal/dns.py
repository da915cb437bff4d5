# DNS catch-all for the set-up access point: every A query is answered with the AP's
# address, so whatever name a phone's captive-portal check looks up leads to the
# portal. AAAA and other types get an empty NOERROR answer (the phone falls back to
# IPv4). Anything malformed is dropped without a reply (RFC 1035 §4.1 layout).
import socket

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

TTL_S = const(10)       # short: once set up, the phone must not keep our address
MAX_PACKET = const(512)  # RFC 1035 §2.3.4 UDP limit


def ip_bytes(ip):
    parts = ip.split(".")
    if len(parts) != 4:
        raise ValueError("IPv4 address expected")
    return bytes([int(p) for p in parts])


def answer(q, ip4):
    # -> reply bytes, or None to drop the packet. q: the query datagram, ip4: 4 bytes.
    n = len(q)
    if n < 17 or n > MAX_PACKET:
        return None
    flags = q[2]
    if flags & 0x80 or (flags >> 3) & 0x0F:   # a response, or not a standard query
        return None
    if q[4] != 0 or q[5] != 1:                # exactly one question
        return None
    if q[6] or q[7]:                          # a query carries no answers
        return None
    i = 12
    total = 0
    while True:
        if i >= n:
            return None
        ln = q[i]
        if ln == 0:
            i += 1
            break
        if ln & 0xC0:                         # compression pointer in a question: refuse
            return None
        total += ln + 1
        if total > 255:
            return None
        i += 1 + ln
    if i + 4 > n:
        return None
    qtype = (q[i] << 8) | q[i + 1]
    qclass = (q[i + 2] << 8) | q[i + 3]
    end = i + 4
    a = qclass == 1 and qtype in (1, 255)     # A or ANY, class IN
    out = bytearray(q[:end])
    out[2] = 0x80 | (flags & 0x01)            # QR, opcode 0, RD copied
    out[3] = 0x80                             # RA, RCODE 0
    out[6] = 0
    out[7] = 1 if a else 0                    # ANCOUNT
    out[8] = out[9] = out[10] = out[11] = 0   # no authority, no additional (EDNS dropped)
    if a:
        out += b"\xc0\x0c\x00\x01\x00\x01"    # pointer to the question name, A, IN
        out += bytes([0, 0, 0, TTL_S, 0, 4])
        out += ip4
    return bytes(out)


class DnsServer:
    def __init__(self, ip, port=53, bind="0.0.0.0"):
        self.ip4 = ip_bytes(ip)
        self.answered = 0
        self.dropped = 0
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        except (AttributeError, OSError):
            pass
        s.bind(socket.getaddrinfo(bind, port)[0][-1])
        s.setblocking(False)
        self.sock = s

    def set_ip(self, ip):
        self.ip4 = ip_bytes(ip)

    def handle(self):
        # Called when the socket is readable: answer what is queued (bounded).
        for _ in range(8):
            try:
                q, addr = self.sock.recvfrom(MAX_PACKET + 1)
            except OSError:
                return
            r = None
            try:
                r = answer(q, self.ip4)
            except (IndexError, ValueError):
                r = None
            if r is None:
                self.dropped += 1
                continue
            try:
                self.sock.sendto(r, addr)
                self.answered += 1
            except OSError:
                self.dropped += 1

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
