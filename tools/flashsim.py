# Fault-injecting NOR flash model for the host (CPython and the MicroPython unix port).
#
# NOR semantics: erase sets a whole sector to 0xFF; programming can only clear bits
# (the cell stores old & new), so writing over programmed bytes never sets a bit back.
# Power can be cut at any operation (write or erase; reads change nothing):
#   - a torn write programs only a prefix of the bytes, the byte at the tear partially
#     (some of the bits it should clear, not all);
#   - a torn erase leaves the sector half done: a run of bytes erased, the rest as it was,
#     and a band of bytes with only some bits set back to 1 (the sector may end up
#     erased from the start, from the end, or in a scatter, chosen by the seed).
# Then firmware.port.PowerLost is raised, as the host ports do when the capacitor dies.
#
#   f = FaultFlash(sectors=16, sector_size=4096)
#   f.arm_cut(after_ops=3, tear=True)   # ops 1-3 complete, the 4th is cut (torn)
#   f.writes, f.erases, f.ops, f.bytes_written, f.sector_erases[s], f.set_bits
from firmware.port import PowerLost
from tools.rng import Xorshift32


def _Rng(seed):
    # the same tears on both Pythons for the same seed
    return Xorshift32(seed * 2654435761 + 1)


class FaultFlash:
    def __init__(self, sectors=16, sector_size=4096, seed=1, fill=0xFF):
        self.SECTOR_SIZE = sector_size
        self.sectors = sectors
        self.size = sectors * sector_size
        self.mem = bytearray(self.size) if fill == 0 else bytearray(b"\xff" * self.size)
        if fill not in (0, 0xFF):
            for i in range(self.size):
                self.mem[i] = fill
        self.rng = _Rng(seed)
        self.ops = 0            # writes + erases since creation
        self.writes = 0
        self.erases = 0
        self.reads = 0
        self.bytes_written = 0
        self.sector_erases = [0] * sectors
        self.set_bits = 0       # bits a write asked to set 1 over a programmed 0 (NOR cannot)
        self.cuts = 0
        self.last_cut = None    # "write" or "erase": the kind of the op that was cut
        self._cut_at = None     # op index that will be cut
        self._tear = True
        self.on_op = None       # optional callback(kind, addr_or_sector, n) after each op

    # -- fault control ----------------------------------------------------------------
    def arm_cut(self, after_ops, tear=True):
        # the next `after_ops` operations complete, the one after is cut
        self._cut_at = self.ops + after_ops
        self._tear = tear

    def disarm(self):
        self._cut_at = None

    def armed(self):
        return self._cut_at is not None

    def _cut_now(self):
        if self._cut_at is not None and self.ops == self._cut_at:
            self._cut_at = None
            self.cuts += 1
            return True
        return False

    # -- flash interface (firmware/port/__init__.py) -------------------------------------
    def _check(self, addr, n):
        if addr < 0 or n < 0 or addr + n > self.size:
            raise ValueError("flash access out of range")

    def read(self, addr, n):
        self._check(addr, n)
        self.reads += 1
        return bytes(self.mem[addr:addr + n])

    def readinto(self, addr, buf):
        n = len(buf)
        self._check(addr, n)
        self.reads += 1
        buf[0:n] = self.mem[addr:addr + n]

    def write(self, addr, data):
        n = len(data)
        self._check(addr, n)
        mem = self.mem
        if self._cut_now():
            self.ops += 1
            if self._tear and n:
                m = self.rng.below(n + 1)   # bytes fully programmed
                for i in range(m):
                    mem[addr + i] &= data[i]
                if m < n:
                    # the byte at the tear: only some of its bits cleared
                    mem[addr + m] &= data[m] | (self.rng.next() & 0xFF)
            self.last_cut = "write"
            raise PowerLost("cut during write at %d" % addr)
        self.ops += 1
        self.writes += 1
        self.bytes_written += n
        for i in range(n):
            old = mem[addr + i]
            new = data[i]
            if new & ~old & 0xFF:
                self.set_bits += 1
            mem[addr + i] = old & new
        if self.on_op is not None:
            self.on_op("write", addr, n)

    def erase(self, sector):
        if sector < 0 or sector >= self.sectors:
            raise ValueError("no such sector")
        ss = self.SECTOR_SIZE
        a = sector * ss
        mem = self.mem
        if self._cut_now():
            self.ops += 1
            if self._tear:
                self._half_erase(a, ss)
            self.last_cut = "erase"
            raise PowerLost("cut during erase of sector %d" % sector)
        self.ops += 1
        self.erases += 1
        self.sector_erases[sector] += 1
        for i in range(a, a + ss):
            mem[i] = 0xFF
        if self.on_op is not None:
            self.on_op("erase", sector, ss)

    def _half_erase(self, a, ss):
        rng = self.rng
        mem = self.mem
        mode = rng.below(3)
        cut = rng.below(ss)
        if mode == 0:
            lo, hi = a, a + cut            # erased from the start
        elif mode == 1:
            lo, hi = a + cut, a + ss       # erased from the end
        else:
            lo = hi = a
            for i in range(a, a + ss):     # a scatter of weakly erased bits
                mem[i] |= rng.next() & 0xFF
        for i in range(lo, hi):
            mem[i] = 0xFF
        # the band where the erase pulse stopped: bits partly back to 1
        band = a + cut
        for i in range(band, min(band + 16, a + ss)):
            mem[i] |= rng.next() & 0xFF

    # -- helpers for tools --------------------------------------------------------------
    def snapshot(self):
        return bytes(self.mem)

    def restore(self, snap):
        self.mem[:] = snap
