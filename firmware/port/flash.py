# Flash adapters for the record store (firmware/store/log.py). Port layer: this file may
# import esp / esp32 (inside the functions that need them, so the host can import it).
#
# Every adapter has NOR semantics and the interface of firmware/port/__init__.py:
#   SECTOR_SIZE, sectors, read(addr, n), readinto(addr, buf), write(addr, data),
#   erase(sector)          addresses are relative to the start of the record area
#
#   RamFlash        bytearray, anywhere (tests, a store that needs no persistence)
#   Esp8266Flash    raw SPI flash after the filesystem (esp.flash_read/write/erase)
#   PartitionFlash  an ESP32 data partition (or a region of one) via esp32.Partition
#   FileFlash       a file on the filesystem (littlefs: copy-on-write, so a cut leaves
#                   the file as of the last completed write) when no raw area exists
SECTOR = 4096


class _Area:
    # what every adapter shares: the bounds checks and read() on top of readinto()
    SECTOR_SIZE = SECTOR

    def _span(self, addr, n):
        if addr < 0 or addr + n > self.sectors * self.SECTOR_SIZE:
            raise ValueError("flash access out of range")

    def _sector(self, sector):
        if sector < 0 or sector >= self.sectors:
            raise ValueError("no such sector")

    def read(self, addr, n):
        b = bytearray(n)
        self.readinto(addr, b)
        return bytes(b)


class RamFlash(_Area):
    def __init__(self, sectors=16, sector_size=SECTOR):
        self.SECTOR_SIZE = sector_size
        self.sectors = sectors
        self.mem = bytearray(b"\xff" * (sectors * sector_size))

    def read(self, addr, n):
        return bytes(self.mem[addr:addr + n])

    def readinto(self, addr, buf):
        n = len(buf)
        self._span(addr, n)
        buf[0:n] = self.mem[addr:addr + n]

    def write(self, addr, data):
        mem = self.mem
        self._span(addr, len(data))
        for i in range(len(data)):
            mem[addr + i] &= data[i]   # NOR: programming only clears bits

    def erase(self, sector):
        ss = self.SECTOR_SIZE
        a = sector * ss
        for i in range(a, a + ss):
            self.mem[i] = 0xFF


class Esp8266Flash(_Area):
    # The ESP8266 SDK reads and writes whole 32-bit words at word-aligned addresses
    # (spi_flash_write: "4-byte aligned"): unaligned ends are padded with 0xFF, which
    # programs nothing on NOR.
    def __init__(self, start, sectors):
        import esp
        self.esp = esp
        self.start = start
        self.sectors = sectors
        self.SECTOR_SIZE = SECTOR
        self._buf = bytearray(64)

    def readinto(self, addr, buf):
        n = len(buf)
        self._span(addr, n)
        a = self.start + addr
        done = 0
        sb = self._buf
        while done < n:
            a0 = (a + done) & ~3
            skip = a + done - a0
            k = min(n - done, 64 - skip)
            self.esp.flash_read(a0, sb)
            buf[done:done + k] = sb[skip:skip + k]
            done += k

    def write(self, addr, data):
        n = len(data)
        self._span(addr, n)
        a = self.start + addr
        a0 = a & ~3
        end = (a + n + 3) & ~3
        b = bytearray(b"\xff" * (end - a0))
        b[a - a0:a - a0 + n] = data
        self.esp.flash_write(a0, b)

    def erase(self, sector):
        self._sector(sector)
        self.esp.flash_erase(self.start // SECTOR + sector)


class PartitionFlash(_Area):
    # esp32.Partition with the extended block interface: writeblocks(block, buf, offset)
    # programs without erasing, ioctl(6, block) erases one block.
    def __init__(self, part, first=0, sectors=None):
        self.p = part
        size = part.ioctl(4, 0) * part.ioctl(5, 0)
        self.SECTOR_SIZE = SECTOR
        self.first = first
        self.sectors = sectors if sectors is not None else size // SECTOR - first

    def _blk(self, addr):
        a = self.first * SECTOR + addr
        return a // SECTOR, a % SECTOR

    def readinto(self, addr, buf):
        n = len(buf)
        self._span(addr, n)
        b, off = self._blk(addr)
        if off + n <= SECTOR:
            self.p.readblocks(b, buf, off)
            return
        k = SECTOR - off           # crosses a block: two reads
        mv = memoryview(buf)
        self.p.readblocks(b, mv[0:k], off)
        self.readinto(addr + k, mv[k:])

    def write(self, addr, data):
        n = len(data)
        self._span(addr, n)
        b, off = self._blk(addr)
        if off + n <= SECTOR:
            self.p.writeblocks(b, data, off)
            return
        k = SECTOR - off
        mv = memoryview(data)
        self.p.writeblocks(b, mv[0:k], off)
        self.write(addr + k, mv[k:])

    def erase(self, sector):
        self._sector(sector)
        self.p.ioctl(6, self.first + sector)


class FileFlash(_Area):
    # The record area as one file. Writes keep NOR semantics (old & new) so the store
    # behaves the same; each write is flushed, which on littlefs commits it atomically.
    def __init__(self, path, sectors=16, sector_size=SECTOR):
        self.path = path
        self.sectors = sectors
        self.SECTOR_SIZE = sector_size
        size = sectors * sector_size
        try:
            f = open(path, "r+b")
            f.seek(0, 2)
            have = f.tell()
        except OSError:
            f = open(path, "w+b")
            have = 0
        if have < size:
            f.seek(have)
            chunk = b"\xff" * 256
            while have < size:
                k = min(256, size - have)
                f.write(chunk[:k])
                have += k
            f.flush()
        self.f = f

    def readinto(self, addr, buf):
        n = len(buf)
        self._span(addr, n)
        self.f.seek(addr)
        got = self.f.readinto(buf)
        if got != n:
            raise OSError(5)

    def write(self, addr, data):
        n = len(data)
        old = bytearray(n)
        self.readinto(addr, old)
        for i in range(n):
            old[i] &= data[i]
        self.f.seek(addr)
        self.f.write(old)
        self.f.flush()

    def erase(self, sector):
        self._sector(sector)
        ss = self.SECTOR_SIZE
        self.f.seek(sector * ss)
        chunk = b"\xff" * 256
        for _ in range(ss // 256):
            self.f.write(chunk)
        self.f.flush()


def esp8266_region(want_sectors=16):
    # -> (start, sectors) of the raw area between the end of the filesystem and the
    # SDK's parameter sectors (the last 20 KB), or None when the filesystem fills it
    # (stock MicroPython builds: the firmware build must shrink flashbdev's block count).
    import esp
    try:
        import flashbdev
        bd = flashbdev.bdev
        start_sec = getattr(bd, "start_sec", None)
        if start_sec is None:
            start_sec = bd.START_SEC
        fs_end = (start_sec + bd.blocks) * SECTOR
    except (ImportError, AttributeError):
        return None
    end = esp.flash_size() - 20480
    n = (end - fs_end) // SECTOR
    if n < 3:
        return None
    return fs_end, min(n, want_sectors)


def device_flash(chip, sectors=16, fs_path="/records.bin"):
    # The record area for this chip: a raw area if the flash layout has one, else a file.
    if chip == "esp8266":
        r = esp8266_region(sectors)
        if r is not None:
            return Esp8266Flash(r[0], r[1])
    elif chip.startswith("esp32"):
        try:
            import esp32
            parts = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="records")
            if parts:
                return PartitionFlash(parts[0])
        except (ImportError, AttributeError, OSError):
            pass
    return FileFlash(fs_path, sectors)
