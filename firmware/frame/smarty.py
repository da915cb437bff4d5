# Luxembourg Smarty P1: DLMS general-glo-ciphering frame, AES-128-GCM.
#
# Frame (Luxembourg "Smarty P1 specification" v1.1, section 3; DLMS Green Book
# 9.2.7.2.4): DB 08 <system title 8> 82 <len 2> 30 <frame counter 4>
# <ciphertext> <GCM tag 12>. len counts from the security byte 0x30 to the end.
# IV = system title || frame counter (96 bits), AAD = 0x30 || authentication key
# (AK, 00112233445566778899AABBCCDDEEFF on Smarty meters), tag truncated to 12
# bytes (NIST SP 800-38D allows 96-bit tags).
#
# The stock MicroPython ports only offer AES-ECB (cryptolib.aes(key, 1)), so CTR
# and GHASH are built here on top of one block cipher call; on CPython the
# `cryptography` package's AES-ECB stands in for cryptolib. Everything above the
# block cipher is this module's code and runs the same on both.
# GHASH uses Shoup's 4-bit tables (16 multiples of H): 32 table steps per block
# instead of 128 shift-and-add steps, at 16 integers of RAM.
try:
    import cryptolib as _cl
except ImportError:
    try:
        import ucryptolib as _cl
    except ImportError:
        _cl = None

# machine code, when this image can load it (firmware/native.py)
try:
    from firmware import native as _nat
except Exception:
    _nat = None

if _cl is not None:
    def _ecb(key):
        return _cl.aes(bytes(key), 1)
else:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    class _EcbStandIn:
        # Same call shape as cryptolib.aes(key, 1).encrypt(in_buf, out_buf).
        def __init__(self, key):
            self._e = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()

        def encrypt(self, inb, outb=None):
            r = self._e.update(bytes(inb))
            if outb is None:
                return r
            outb[0:len(r)] = r
            return None

    def _ecb(key):
        return _EcbStandIn(key)

TAG = 0xDB
TAG_LEN = 12
HDR_LEN = 18            # DB 08 st(8) 82 len(2) 30 fc(4)
DEFAULT_AK = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff"

_R = 0xE1 << 120
_CH = 64                # bytes of keystream per block-cipher call (4 blocks)


def _shift1(v):
    # multiply by x in GCM's reflected bit order
    return (v >> 1) ^ _R if v & 1 else v >> 1


_R4 = []
for _r in range(16):
    _v = _r
    for _k in range(4):
        _v = _shift1(_v)
    _R4.append(_v)
del _r, _v, _k


def _gmul(x, m, r4):
    # x * H in GF(2^128): Horner over the 32 nibbles, highest degree first
    z = 0
    for _ in range(32):
        z = (z >> 4) ^ r4[z & 15] ^ m[x & 15]
        x >>= 4
    return z


def _xor_into(dst, off, src, n):
    for i in range(n):
        dst[off + i] ^= src[i]


if _nat is not None:
    _xor_into = _nat.xor_into  # noqa: F811
    _gmul = _nat.gmul          # noqa: F811


# MicroPython fast path: GHASH on four 32-bit words in viper (no big-integer
# allocations; the int version allocates ~0.5 KB per block). Same table method,
# same results (tests compare both on the unix port).
_ghash_v = None
if _nat is not None:
    try:
        import array
        _ghash_v = _nat.ghash
        _R4W = array.array("I", [(v >> 96) & 0xFFFFFFFF for v in _R4])
    except Exception:
        _ghash_v = None


def _words(v):
    return [(v >> (96 - 32 * k)) & 0xFFFFFFFF for k in range(4)]


class Gcm:
    # AES-128-GCM decrypt-and-verify in place. One instance per key: H and its
    # table are computed once.
    def __init__(self, key):
        if len(key) != 16:
            raise ValueError("AES-128 key must be 16 bytes")
        self.aes = _ecb(key)
        h = int.from_bytes(self.aes.encrypt(bytes(16)), "big")
        m = [0] * 16
        m[8] = h
        v = h
        for i in (4, 2, 1):
            v = _shift1(v)
            m[i] = v
        for i in (2, 4, 8):
            for j in range(1, i):
                m[i + j] = m[i] ^ m[j]
        self.m = m
        self.ctr = bytearray(_CH)
        self.ks = bytearray(_CH)
        self.fast = _ghash_v is not None
        if self.fast:
            w = []
            for v in m:
                w.extend(_words(v))
            self.mw = array.array("I", w)
            self.yw = array.array("I", [0, 0, 0, 0])

    def ghash(self, parts):
        # GHASH_H over each (data, start, end) zero-padded to 16 bytes -> int
        if self.fast:
            yw = self.yw
            for k in range(4):
                yw[k] = 0
            for data, a, b in parts:
                _ghash_v(yw, data, a, b, self.mw, _R4W)
            return (yw[0] << 96) | (yw[1] << 64) | (yw[2] << 32) | yw[3]
        y = 0
        for data, a, b in parts:
            y = self._ghash(y, data, a, b)
        return y

    def _ghash(self, y, data, start, end):
        m = self.m
        r4 = _R4
        mv = memoryview(data)
        i = start
        while i + 16 <= end:
            y = _gmul(y ^ int.from_bytes(bytes(mv[i:i + 16]), "big"), m, r4)
            i += 16
        if i < end:
            k = end - i
            y = _gmul(y ^ (int.from_bytes(bytes(mv[i:end]), "big") << (8 * (16 - k))), m, r4)
        return y

    def decrypt(self, iv, aad, buf, start, end, tag):
        # Decrypts buf[start:end] in place; returns True when the (truncated) tag
        # matches. On False the buffer holds garbage and must not be used.
        aes = self.aes
        ctr = self.ctr
        ks = self.ks
        n = end - start
        lens = bytearray(16)           # bit lengths of AAD and ciphertext, 64 bits each
        la = len(aad) * 8
        for k in range(8):
            lens[7 - k] = (la >> (8 * k)) & 0xFF
            lens[15 - k] = ((n * 8) >> (8 * k)) & 0xFF
        y = self.ghash(((aad, 0, len(aad)), (buf, start, end), (lens, 0, 16)))
        nb = _CH // 16
        for b in range(nb):
            ctr[16 * b:16 * b + 12] = iv
        c = 2                          # counter 1 is J0 (tag mask), data starts at 2
        pos = start
        while pos < end:
            for b in range(nb):
                o = 16 * b + 12
                ctr[o] = (c >> 24) & 0xFF
                ctr[o + 1] = (c >> 16) & 0xFF
                ctr[o + 2] = (c >> 8) & 0xFF
                ctr[o + 3] = c & 0xFF
                c += 1
            aes.encrypt(ctr, ks)
            k = end - pos
            if k > _CH:
                k = _CH
            _xor_into(buf, pos, ks, k)
            pos += k
        j0 = bytearray(16)
        j0[0:12] = iv
        j0[15] = 1
        s = aes.encrypt(bytes(j0))
        full = (int.from_bytes(s, "big") ^ y).to_bytes(16, "big")
        t = bytes(tag)
        diff = 0
        for i in range(TAG_LEN):
            diff |= full[i] ^ t[i]
        return diff == 0


def header(buf, n):
    # -> (system_title, frame_counter, ct_start, ct_end) or None when buf[0:n] is
    # not a complete general-glo-ciphering frame with authenticated encryption.
    if n < HDR_LEN + TAG_LEN or buf[0] != TAG or buf[1] != 0x08 or buf[10] != 0x82:
        return None
    total = 13 + ((buf[11] << 8) | buf[12])
    if total != n or buf[13] != 0x30:
        return None
    return bytes(buf[2:10]), bytes(buf[14:18]), HDR_LEN, n - TAG_LEN


def aad_for(aak):
    # aak None -> the Smarty default AK; b"" -> no additional data at all
    if aak is None:
        aak = DEFAULT_AK
    if len(aak) == 0:
        return b""
    return b"\x30" + bytes(aak)


def decrypt_frame(gcm, buf, n, aad):
    # -> (start, end) of the plaintext now in buf, or None (not a frame, wrong key,
    # corrupted frame: the GCM tag does not match).
    h = header(buf, n)
    if h is None:
        return None
    st, fc, a, b = h
    mv = memoryview(buf)
    if not gcm.decrypt(st + fc, aad, buf, a, b, mv[b:n]):
        return None
    return a, b
