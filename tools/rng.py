# xorshift32 (Marsaglia 2003): a tiny PRNG that gives the same sequence on CPython and
# on the MicroPython unix port, so fault injection and property tests explore the same
# cases on both Pythons. Each user scrambles its seed into the initial state its own way.
M32 = 0xFFFFFFFF


class Xorshift32:
    def __init__(self, state=1):
        self.s = (state & M32) or 1

    def next(self):
        x = self.s
        x ^= (x << 13) & M32
        x ^= x >> 17
        x ^= (x << 5) & M32
        self.s = x & M32
        return self.s

    def below(self, n):
        return self.next() % n if n > 0 else 0

    def bytes(self, n):
        return bytes(self.next() & 0xFF for _ in range(n))
