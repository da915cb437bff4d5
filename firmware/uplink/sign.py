# Batch signing: HMAC-SHA256 (RFC 2104) over the exact body bytes, under a per-device
# key. The body carries a counter ("ctr") that grows with every signed message, so a
# receiver refuses a replayed or reordered batch (counter <= last seen).
#
# Wire form: the signature travels inside the JSON itself, as a fixed-size tail
#     body      = b'{...,"ctr":7}'
#     sealed    = b'{...,"ctr":7,"sig":"<64 hex>"}'
# so every consumer still sees valid JSON and the receiver recovers the exact signed
# bytes by cutting the 74-byte tail (no canonical re-serialisation needed).
#
# hashlib.sha256 exists on CPython and MicroPython (ESP8266 included); hmac does not
# exist on MicroPython, and HMAC is a few lines.
import hashlib
from binascii import hexlify, unhexlify

BLOCK = 64
TAIL_HEAD = b',"sig":"'
TAIL_LEN = len(TAIL_HEAD) + 64 + 2   # ,"sig":"<64 hex>"}


def _xor(key, pad):
    out = bytearray(BLOCK)
    for i in range(BLOCK):
        out[i] = (key[i] if i < len(key) else 0) ^ pad
    return bytes(out)


def hmac_sha256(key, msg):
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    inner = hashlib.sha256(_xor(key, 0x36))
    inner.update(msg)
    outer = hashlib.sha256(_xor(key, 0x5C))
    outer.update(inner.digest())
    return outer.digest()


def parse_key(hexkey):
    # config "hmac_key" (hex) -> bytes, or None when signing is off. Refuses keys too short
    # to resist guessing (16 bytes minimum) with ValueError naming no secret.
    if not hexkey:
        return None
    try:
        k = unhexlify(hexkey)
    except (ValueError, TypeError):
        raise ValueError("hmac_key: not hex")
    if len(k) < 16:
        raise ValueError("hmac_key: at least 16 bytes (32 hex digits)")
    return k


def equal(a, b):
    # constant-time comparison: a forged signature learns nothing from timing
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0


def seal(key, body):
    # body: bytes of a JSON object ending in "}" -> sealed bytes
    if body[-1:] != b"}":
        raise ValueError("body must be a JSON object")
    sig = hexlify(hmac_sha256(key, body))
    return body[:-1] + TAIL_HEAD + sig + b'"}'


def seal_into(key, buf, n):
    # seal() in place: buf[:n] holds the body; the sealed body is written over it (no
    # second copy on a small heap). -> its length; ValueError if buf has no room
    mv = memoryview(buf)
    if n < 1 or mv[n - 1] != 0x7D:
        raise ValueError("body must be a JSON object")
    sig = hexlify(hmac_sha256(key, mv[:n]))
    mv = None
    tail = TAIL_HEAD + sig + b'"}'
    e = n - 1 + len(tail)
    if e > len(buf):
        raise ValueError("no room for the seal")
    buf[n - 1:e] = tail
    return e


def unseal(key, data):
    # sealed bytes -> signed body bytes; ValueError if unsigned, malformed or forged
    data = bytes(data)
    if len(data) < TAIL_LEN + 2 or data[-2:] != b'"}':
        raise ValueError("unsigned")
    head = data[-TAIL_LEN:-TAIL_LEN + len(TAIL_HEAD)]
    if head != TAIL_HEAD:
        raise ValueError("unsigned")
    sig = data[-66:-2]
    body = data[:-TAIL_LEN] + b"}"
    # compared as the lowercase hex seal() writes: one accepted spelling per signature
    if not equal(hexlify(hmac_sha256(key, body)), sig):
        raise ValueError("bad signature")
    return body


def is_sealed(data):
    return len(data) >= TAIL_LEN + 2 and data[-TAIL_LEN:-TAIL_LEN + len(TAIL_HEAD)] == TAIL_HEAD


class Counter:
    # Monotonic message counter that survives deep sleep (RTC) and power loss (a state
    # file) without writing flash for every message: the file holds a reserved high-water
    # mark RESERVE ahead; after a power loss counting resumes at that mark (a gap, never a
    # reuse: the receiver only needs "greater than last").
    RESERVE = 64
    LIMIT = 0x7FFFFFFF

    def __init__(self, load_hi, save_hi, next_value=None):
        self._save = save_hi
        hi = load_hi() or 0
        self.hi = hi
        self.next = hi if next_value is None or next_value < 0 else max(next_value, 0)
        if self.next > hi:
            # RTC says we are beyond the file (file write lost): never go back
            self.hi = self.next

    def take(self):
        if self.next >= self.hi:
            self.hi = self.next + self.RESERVE
            self._save(self.hi)
        v = self.next
        self.next += 1
        return v

    def skip_to(self, value):
        # the receiver told us it has seen `value` (our counter was reset, e.g. after the
        # file system was wiped): move past it, within a sane bound
        if self.next <= value < self.LIMIT - self.RESERVE:
            self.next = value + 1
