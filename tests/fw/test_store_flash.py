# The flash models and adapters under the store: NOR semantics everywhere, the fault
# model's tears and half erases, and the device adapters' alignment (ESP8266 SDK words,
# ESP32 partition blocks) checked against strict fakes. Runs on both Pythons.
import os
import sys

from firmware.port import PowerLost
from firmware.port import flash as pf
from firmware.store import record as rec
from firmware.store.log import Store
from tools.flashsim import FaultFlash
from tests.fw.util import raises, Rng

T0 = 1767225600


def use(flash, n=150):
    # a store over this flash keeps readings across re-opens and wraps
    s = Store(flash)
    prev = None
    for i in range(n):
        data = rec.encode({"energy_import_wh": 1000 + 3 * i, "apparent_power_va": 40 + i},
                          T0 + 5 * i, "meter", prev)[0]
        prev = rec.decode(data, prev)
        s.append(data)
        if i % 10 == 9:
            p = Store(flash).peek(10)
            assert rec.decode(p[-1][1])["energy_import_wh"] == 1000 + 3 * i
            s.ack(p[-1][0])
    assert Store(flash).count == 0 and Store(flash).next_seq == n + 1


def test_faultflash_nor_semantics_and_counters():
    f = FaultFlash(sectors=2, sector_size=256)
    f.write(10, b"\x0f\xf0")
    f.write(10, b"\xff\x3c")          # programming only clears bits
    assert f.read(10, 2) == b"\x0f\x30" and f.set_bits == 2   # bytes asking 0 -> 1
    assert f.writes == 2 and f.bytes_written == 4 and f.ops == 2
    f.erase(0)
    assert f.read(0, 256) == b"\xff" * 256 and f.sector_erases == [1, 0]
    raises(ValueError, f.write, 255, b"\0\0\0" * 100)
    raises(ValueError, f.erase, 2)


def test_faultflash_torn_write_is_a_prefix():
    for seed in range(1, 40):
        f = FaultFlash(sectors=1, sector_size=64, seed=seed)
        data = bytes(range(16, 48))
        f.arm_cut(0, tear=True)
        raises(PowerLost, f.write, 8, data)
        got = f.read(8, 32)
        m = 0
        while m < 32 and got[m] == data[m]:
            m += 1
        # a prefix programmed, at most one byte partly, the rest still erased;
        # programming never sets a bit
        for i in range(m + 1, 32):
            assert got[i] == 0xFF, (seed, i)
        if m < 32:
            assert got[m] & data[m] == data[m]
        assert f.read(0, 8) == b"\xff" * 8 and f.cuts == 1 and f.last_cut == "write"


def test_faultflash_cut_after_n_ops_and_clean_cut():
    f = FaultFlash(sectors=2, sector_size=64)
    f.arm_cut(2, tear=False)
    f.write(0, b"\x00")
    f.erase(1)
    raises(PowerLost, f.write, 1, b"\x00")
    assert f.read(0, 2) == b"\x00\xff"     # the cut op did nothing at all
    f.write(1, b"\x00")                    # one shot: disarmed after firing
    assert f.read(1, 1) == b"\x00"


def test_faultflash_half_erase_leaves_old_bits():
    modes = {"untouched": 0, "erased": 0}
    for seed in range(1, 30):
        f = FaultFlash(sectors=1, sector_size=512, seed=seed)
        f.write(0, bytes(512))
        f.arm_cut(0, tear=True)
        raises(PowerLost, f.erase, 0)
        got = f.read(0, 512)
        assert got != b"\xff" * 512      # not done
        if got[:8] == bytes(8):
            modes["untouched"] += 1
        elif got[:8] == b"\xff" * 8:
            modes["erased"] += 1
        assert f.erases == 0 and f.last_cut == "erase"
    # the header end of a sector is sometimes kept, sometimes erased
    assert modes["untouched"] > 0 and modes["erased"] > 0


def test_ramflash_store():
    f = pf.RamFlash(sectors=3, sector_size=512)
    f.write(0, b"\x0f")
    f.write(0, b"\xf0")
    assert f.read(0, 1) == b"\x00"
    f.erase(0)
    use(f)


def test_fileflash_store_persists_in_a_file():
    path = "/tmp/linky-store-test-%d.bin" % Rng(os.getpid() if hasattr(os, "getpid") else 7).next()
    try:
        f = pf.FileFlash(path, sectors=3, sector_size=512)
        assert os.stat(path)[6] == 3 * 512
        use(f)
        f.f.close()
        g = pf.FileFlash(path, sectors=3, sector_size=512)   # "reboot": reopen the file
        s = Store(g)
        assert s.next_seq == 151 and s.count == 0
        g.f.close()
    finally:
        try:
            os.remove(path)
        except OSError:
            pass


class FakeEsp:
    # the ESP8266 SDK's rules: word-aligned addresses and lengths, NOR programming
    SEC = 4096

    def __init__(self, size=0x14000):
        self.mem = bytearray(b"\xff" * size)
        self.calls = 0

    def flash_read(self, addr, buf):
        assert addr % 4 == 0 and len(buf) % 4 == 0, (addr, len(buf))
        buf[:] = self.mem[addr:addr + len(buf)]

    def flash_write(self, addr, buf):
        assert addr % 4 == 0 and len(buf) % 4 == 0, (addr, len(buf))
        self.calls += 1
        for i in range(len(buf)):
            self.mem[addr + i] &= buf[i]

    def flash_erase(self, sec):
        self.mem[sec * self.SEC:(sec + 1) * self.SEC] = b"\xff" * self.SEC

    def flash_size(self):
        return len(self.mem)


def test_esp8266_adapter_aligns_for_the_sdk():
    fake = FakeEsp()
    sys.modules["esp"] = fake
    try:
        f = pf.Esp8266Flash(0x10000, 3)
        f.write(5, b"abc")                 # unaligned: padded with 0xFF (programs nothing)
        f.write(8, b"\x00")
        assert fake.mem[0x10004:0x1000C] == b"\xffabc\x00\xff\xff\xff"
        assert f.read(5, 4) == b"abc\x00"
        b = bytearray(70)
        f.readinto(3, b)                   # longer than the adapter's scratch buffer
        assert bytes(b[2:6]) == b"abc\x00"
        f.erase(0)
        assert fake.mem[0x10000:0x11000] == b"\xff" * 4096
        raises(ValueError, f.erase, 3)
        use(f, 120)
        assert fake.mem[:0x10000] == b"\xff" * 0x10000      # nothing outside the area
        assert fake.mem[0x13000:] == b"\xff" * (len(fake.mem) - 0x13000)
    finally:
        del sys.modules["esp"]


class FakePartition:
    # esp32.Partition's block interface: offsets inside one 4 KB block
    def __init__(self, blocks):
        self.mem = bytearray(b"\xff" * (blocks * 4096))
        self.blocks = blocks

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return 4096
        if op == 6:
            self.mem[arg * 4096:(arg + 1) * 4096] = b"\xff" * 4096
            return 0

    def readblocks(self, blk, buf, off=0):
        assert off + len(buf) <= 4096
        a = blk * 4096 + off
        buf[:] = self.mem[a:a + len(buf)]

    def writeblocks(self, blk, buf, off=None):
        assert off is not None and off + len(buf) <= 4096
        a = blk * 4096 + off
        for i in range(len(buf)):
            self.mem[a + i] &= buf[i]


def test_esp32_partition_adapter():
    p = FakePartition(5)
    f = pf.PartitionFlash(p, first=1, sectors=3)
    assert f.sectors == 3 and f.SECTOR_SIZE == 4096
    f.write(4094, b"wxyz")                 # crosses a block: split in two writes
    assert f.read(4094, 4) == b"wxyz" and p.mem[8190:8194] == b"wxyz"
    f.erase(0)
    f.erase(1)
    use(f, 120)
    assert p.mem[:4096] == b"\xff" * 4096 and p.mem[4 * 4096:] == b"\xff" * 4096
