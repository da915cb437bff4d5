# Machine code (@micropython.viper / @micropython.native) of the decoders, in one module
# of its own so that it is imported behind a guard: an .mpy with native code loads only
# on images whose native ABI matches (MicroPython >= 1.23 for Xtensa, >= 1.24 for
# RISC-V/ESP32-C3/C6: the .mpy sub-version), and a build without the native emitter
# refuses @viper at compile time. Every user falls back to its pure-Python path when
# this import fails (tests/host/test_native_fallback.py runs the decoders that way).
# CPython: `import micropython` fails here, which is the same fallback.
import micropython


@micropython.viper
def crc16_arc(buf: ptr8, start: int, end: int, crc: int, tab: ptr16) -> int:
    # CRC-16/ARC of buf[start:end] by table (firmware/frame/dsmr.py)
    c = crc
    i = start
    while i < end:
        c = (c >> 8) ^ tab[(c ^ buf[i]) & 0xFF]
        i += 1
    return c


@micropython.viper
def ascii_ok(buf: ptr8, a: int, b: int) -> int:
    # 1 when buf[a:b] is printable ASCII, CR or LF (firmware/reading/dsmr.py)
    i = a
    while i < b:
        c = buf[i]
        if (c < 0x20 and c != 0x0D and c != 0x0A) or c > 0x7E:
            return 0
        i += 1
    return 1


@micropython.viper
def hex_ok(buf: ptr8, a: int, b: int) -> int:
    # 1 when buf[a:b] holds hex digits only (firmware/reading/dsmr.py)
    i = a
    while i < b:
        c = buf[i]
        if not ((c >= 48 and c <= 57) or (c >= 65 and c <= 70) or (c >= 97 and c <= 102)):
            return 0
        i += 1
    return 1


@micropython.viper
def xor_into(dst: ptr8, off: int, src: ptr8, n: int):
    # dst[off:off + n] ^= src[:n] (firmware/frame/smarty.py)
    i = 0
    while i < n:
        dst[off + i] = dst[off + i] ^ src[i]
        i += 1


@micropython.native
def gmul(x, m, r4):
    # x * H in GF(2^128): Horner over the 32 nibbles, highest degree first
    # (firmware/frame/smarty.py _gmul, compiled to machine code)
    z = 0
    for _ in range(32):
        z = (z >> 4) ^ r4[z & 15] ^ m[x & 15]
        x >>= 4
    return z


# GHASH on four 32-bit words (firmware/frame/smarty.py Gcm): no big-integer allocations
@micropython.viper
def ghash(y: ptr32, data: ptr8, start: int, end: int, m: ptr32, r4: ptr32):
    z0 = uint(y[0])
    z1 = uint(y[1])
    z2 = uint(y[2])
    z3 = uint(y[3])
    i = start
    while i < end:
        x0 = uint(0)
        x1 = uint(0)
        x2 = uint(0)
        x3 = uint(0)
        k = 0
        while k < 16:
            b = uint(0)
            if i + k < end:
                b = uint(data[i + k])
            sh = (3 - (k & 3)) << 3
            w = k >> 2
            if w == 0:
                x0 |= b << sh
            elif w == 1:
                x1 |= b << sh
            elif w == 2:
                x2 |= b << sh
            else:
                x3 |= b << sh
            k += 1
        x0 ^= z0
        x1 ^= z1
        x2 ^= z2
        x3 ^= z3
        z0 = uint(0)
        z1 = uint(0)
        z2 = uint(0)
        z3 = uint(0)
        wi = 0
        while wi < 4:
            if wi == 0:
                word = x3
            elif wi == 1:
                word = x2
            elif wi == 2:
                word = x1
            else:
                word = x0
            s = 0
            while s < 32:
                n = int((word >> s) & 0xF) << 2
                rem = int(z3 & 0xF)
                z3 = (z3 >> 4) | ((z2 & 0xF) << 28)
                z2 = (z2 >> 4) | ((z1 & 0xF) << 28)
                z1 = (z1 >> 4) | ((z0 & 0xF) << 28)
                z0 = (z0 >> 4) ^ uint(r4[rem])
                z0 ^= uint(m[n])
                z1 ^= uint(m[n + 1])
                z2 ^= uint(m[n + 2])
                z3 ^= uint(m[n + 3])
                s += 4
            wi += 1
        i += 16
    y[0] = z0
    y[1] = z1
    y[2] = z2
    y[3] = z3
