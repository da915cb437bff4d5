# Power-cut-safe record log on raw NOR flash: every reading kept until the server has it.
#
# On-flash format (all integers little-endian)
# ---------------------------------------------
# The area is a ring of erase sectors. Each sector in use starts with a 24-byte header
#
#   "L1" | gen u32 | seq_base u32 | ack u32 | dropped u32 | aggregated u32 | crc 2
#
# gen orders the sectors (+1 for every sector opened), seq_base is the sequence number of
# the sector's first record, and ack/dropped/aggregated are the store's counters at the
# moment the sector was opened. Frames follow, back to back:
#
#   hdr 1 | payload (1..63) | crc 2        hdr = type << 6 | payload length
#
#   type 1  record coded by firmware/store/record.py (delta against the previous reading
#           of the same sector; the first of a sector is self-contained)
#   type 2  opaque record (bytes record.py does not produce), kept verbatim
#   type 0  meta: ack u32 | dropped u32 | aggregated u32 (length 12), written by ack()
#   0xFF    erased: end of the sector's frames
#
# A record's seq is implicit: seq_base + its index among the sector's records, so
# sequence numbers continue after a reboot from the header scan. crc is the low 16 bits
# of CRC-32 over everything before it, with its last byte forced to differ from 0xFF:
# NOR programming only clears bits and a torn write programs a prefix, so a frame or a
# header whose last byte still reads 0xFF was never completely written, and is rejected
# whatever its CRC says (a torn write is detected exactly, not with a probability).
#
# Why it survives a power cut at any instant
# -------------------------------------------
# - Nothing is rewritten in place. The only write over programmed bytes is zeroing a
#   header (clearing bits, which NOR allows) to retire a sector before erasing it.
# - Append: one write of one frame. Torn, it fails its CRC; on re-open the head sector is
#   sealed and writing resumes in a fresh sector. Every write is read back (a failed or
#   weak program seals the sector the same way).
# - ack(): one meta frame. Each sector keeps room for 8 of them (4 KB sectors) that records
#   may not use,
#   so an ack can be written even when the store is full of unacknowledged records.
#   On open the newest counters are those of the newest sector (header, then its meta
#   frames): every sector header copies the counters when it is opened.
# - Reusing a sector: zero its header, erase, write a new header. A cut during the erase
#   leaves a half-erased sector whose header, zeroed first, cannot pass magic + CRC; any
#   sector without a valid header is free and is erased before use (never trusted to be
#   blank). A sector is reused only when all its records are acknowledged, or when
#   dropping the oldest is configured; then the loss is counted (dropped) and, should the
#   cut fall before the counters are written, re-derived on open from the gap between the
#   ack pointer and the oldest record left.
#
# Full store
# ----------
# With drop_oldest=True the oldest sector is dropped (counted). Otherwise the last free
# sector is kept in reserve: readings stop being stored one by one and are merged into an
# aggregate record (record.merge: newest time and indexes, count, highest powers) written
# after agg_span readings, the span doubling with every aggregate (so the reserve lasts
# for weeks); relay events still go to the reserve. When even the reserve is used up the
# newest record is dropped and counted. Readings merged but not yet written live in RAM:
# rtc_dump()/rtc_load() carry them across a deep sleep (RTC memory), flush() writes them
# now; a power cut loses their resolution, not their energy (the indexes are cumulative),
# and they are already counted.
#
# RAM: a 68-byte buffer, two small lists per sector (gen, seq_base), the last decoded
# reading. Opening reads the sector headers and walks the newest sector's frames only.
import struct

try:
    from binascii import crc32
except ImportError:
    # the stock ESP8266 image has no binascii.crc32 (ports/esp8266/mpconfigport.h leaves
    # MICROPY_PY_BINASCII_CRC32 off): _crc16 computes the same CRC-32 itself, so a flash
    # written on one chip reads the same on another and on the host tools
    crc32 = None

from firmware.store import record

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

MAGIC = b"L1"
HDR = const(24)
META_LEN = const(12)
FRAME_MAX = const(66)
META_FRAME = const(15)
T_META = const(0)
T_CODED = const(1)
T_OPAQUE = const(2)
_END = const(-1)
_BAD = const(-2)
ZERO_HDR = bytes(HDR)


def _crc16(buf):
    if crc32 is not None:
        c = crc32(buf) & 0xFFFF
    else:
        # CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) four bits a step: t holds
        # the 16 remainders big-endian, 4 bytes each; the register is kept as two 16-bit
        # halves so every value stays a small int on the ESP8266 (31-bit small ints: a
        # 32-bit register would be a heap-allocated long int at every step). The table
        # is a bytes constant in the function, not a module global: frozen, it stays in
        # flash and costs the ESP8266's heap nothing.
        t = (b"\x00\x00\x00\x00\x1d\xb7\x10\x64\x3b\x6e\x20\xc8\x26\xd9\x30\xac"
             b"\x76\xdc\x41\x90\x6b\x6b\x51\xf4\x4d\xb2\x61\x58\x50\x05\x71\x3c"
             b"\xed\xb8\x83\x20\xf0\x0f\x93\x44\xd6\xd6\xa3\xe8\xcb\x61\xb3\x8c"
             b"\x9b\x64\xc2\xb0\x86\xd3\xd2\xd4\xa0\x0a\xe2\x78\xbd\xbd\xf2\x1c")
        hi = lo = 0xFFFF
        for b in buf:
            lo ^= b
            i = (lo & 15) << 2
            lo = ((lo >> 4) | ((hi & 15) << 12)) ^ (t[i + 2] << 8 | t[i + 3])
            hi = (hi >> 4) ^ (t[i] << 8 | t[i + 1])
            i = (lo & 15) << 2
            lo = ((lo >> 4) | ((hi & 15) << 12)) ^ (t[i + 2] << 8 | t[i + 3])
            hi = (hi >> 4) ^ (t[i] << 8 | t[i + 1])
        c = lo ^ 0xFFFF           # the low half of the final XOR with 0xFFFFFFFF
    if (c & 0xFF) == 0xFF:
        c ^= 1
    return c


class Store:
    def __init__(self, flash, drop_oldest=False, agg_span=12):
        self.f = flash
        self.ss = flash.SECTOR_SIZE
        self.ns = flash.sectors
        if self.ns < 3:
            raise ValueError("the store needs at least 3 sectors")
        # room kept in every sector for ack frames (see above): 8 in a 4 KB sector
        self.data_end = self.ss - META_FRAME * min(8, max(2, self.ss // 512))
        self.drop_oldest = drop_oldest
        self.agg_span = agg_span
        self.buf = bytearray(FRAME_MAX + 2)
        self.mv = memoryview(self.buf)
        self._open()

    # -- opening -------------------------------------------------------------------
    def _open(self):
        ns = self.ns
        self.gen = [-1] * ns
        self.base = [-1] * ns
        head = -1
        meta = (0, 0, 0)
        for s in range(ns):
            h = self._read_header(s)
            if h is None:
                continue
            self.gen[s] = h[0]
            self.base[s] = h[1]
            if head < 0 or h[0] > self.gen[head]:
                head = s
                meta = h[2:]
        self.head = head
        self.sealed = False
        self._hprev = None
        self._hprev_ok = True
        self._in_prev = None
        self._pending = None
        self._span = self.agg_span
        self._cur = None
        self._fc = None
        self.ack_seq, self._dropped, self._aggr = meta
        if head < 0:
            self.next_seq = 1
            self.off = self.ss
            self.sealed = True
        else:
            off = HDR
            seq = self.base[head]
            while True:
                t, ln = self._frame(head, off)
                if t == _END:
                    break
                if t == _BAD:
                    self.sealed = True
                    break
                if t == T_META:
                    self.ack_seq, self._dropped, self._aggr = struct.unpack("<III", self.buf[1:13])
                else:
                    seq += 1
                off += ln + 3
            self.off = off
            self.next_seq = seq
            # the head's last reading (delta base) is decoded lazily, on the first append
            self._hprev_ok = seq == self.base[head]
        self.pack = self.ack_seq
        if self.ack_seq > self.next_seq - 1:
            self.ack_seq = self.next_seq - 1
        lo = self._lowest_base()
        if lo is not None and self.ack_seq < lo - 1:
            # records between the ack pointer and the oldest record left were erased
            # unacknowledged (drop_oldest, cut before the counters were written)
            self._dropped += lo - 1 - self.ack_seq
            self.ack_seq = lo - 1

    def _read_header(self, s):
        mv = self.mv
        self.f.readinto(s * self.ss, mv[0:HDR])
        b = self.buf
        if b[0] != MAGIC[0] or b[1] != MAGIC[1] or b[HDR - 1] == 0xFF:
            return None
        c = _crc16(mv[0:HDR - 2])
        if b[HDR - 2] != c >> 8 or b[HDR - 1] != c & 0xFF:
            return None
        return struct.unpack("<IIIII", b[2:22])

    def _lowest_base(self):
        g = -1
        lo = None
        for s in range(self.ns):
            if self.gen[s] >= 0 and (g < 0 or self.gen[s] < g):
                g = self.gen[s]
                lo = self.base[s]
        return lo

    def _frame(self, s, off):
        # Reads the frame at (s, off) into self.buf -> (type, payload length), or
        # (_END, 0) on erased flash, (_BAD, 0) on a torn or corrupt frame.
        ss = self.ss
        if off >= ss:
            return _END, 0
        mv = self.mv
        b = self.buf
        # one read of the longest frame (or up to the sector end) instead of two
        k = ss - off
        if k > FRAME_MAX:
            k = FRAME_MAX
        self.f.readinto(s * ss + off, mv[0:k])
        h = b[0]
        if h == 0xFF:
            return _END, 0
        t = h >> 6
        ln = h & 0x3F
        if t == 3 or ln == 0 or (t == T_META and ln != META_LEN) or ln + 3 > k:
            return _BAD, 0
        if b[ln + 2] == 0xFF:
            return _BAD, 0
        c = _crc16(mv[0:ln + 1])
        if b[ln + 1] != c >> 8 or b[ln + 2] != c & 0xFF:
            return _BAD, 0
        return t, ln

    # -- sector bookkeeping ------------------------------------------------------------
    def _next_in_gen(self, s):
        # the valid sector opened after s (smallest gen above s's), or -1
        g = self.gen[s]
        best = -1
        for i in range(self.ns):
            gi = self.gen[i]
            if gi > g and (best < 0 or gi < self.gen[best]):
                best = i
        return best

    def _last_seq(self, s):
        if s == self.head:
            return self.next_seq - 1
        n = self._next_in_gen(s)
        return (self.next_seq if n < 0 else self.base[n]) - 1

    def _free(self, s):
        return s != self.head and (self.gen[s] < 0 or self._last_seq(s) <= self.ack_seq)

    def _free_count(self):
        # cached: it changes only when a sector is opened or the ack pointer moves
        n = self._fc
        if n is None:
            n = 0
            for s in range(self.ns):
                if self._free(s):
                    n += 1
            self._fc = n
        return n

    def _succ(self):
        return 0 if self.head < 0 else (self.head + 1) % self.ns

    def _write(self, addr, data):
        # program and read back: a failed or weak program raises OSError
        self.f.write(addr, data)
        n = len(data)
        mv = self.mv[0:n]
        self.f.readinto(addr, mv)
        if bytes(mv) != bytes(data):
            raise OSError(5)

    def _open_sector(self, s):
        if self.gen[s] >= 0:
            last = self._last_seq(s)
            if last > self.ack_seq:
                # drop_oldest: these records go unacknowledged, counted
                self._dropped += last - self.ack_seq
                self.ack_seq = last
            if self._cur is not None and self._cur[1] == s:
                self._cur = None
            # retire the header first, so a half-done erase can never look valid
            self.f.write(s * self.ss, ZERO_HDR)
            self.gen[s] = -1
            self.base[s] = -1
        self.f.erase(s)
        g = 0
        for x in self.gen:
            if x >= g:
                g = x + 1
        h = bytearray(MAGIC + struct.pack("<IIIII", g, self.next_seq, self.ack_seq,
                                          self._dropped, self._aggr) + b"\0\0")
        c = _crc16(h[0:HDR - 2])
        h[HDR - 2] = c >> 8
        h[HDR - 1] = c & 0xFF
        self._write(s * self.ss, h)
        self.gen[s] = g
        self.base[s] = self.next_seq
        self.head = s
        self.off = HDR
        self.sealed = False
        self._hprev = None
        self._hprev_ok = True
        self.pack = self.ack_seq
        self._fc = None

    def _ensure(self, need, reserve_ok, limit=None, may_drop=True):
        # Make the head able to take `need` more bytes below `limit`. Readings
        # (reserve_ok False) may not take the last free sector unless dropping.
        # -> True when the current head has room (possibly a fresh sector).
        if limit is None:
            limit = self.data_end
        fits = not self.sealed and self.off + need <= limit
        if not (reserve_ok or self.drop_oldest):
            # readings leave one sector's worth of room for aggregates and relay events
            per = self.data_end - HDR
            room = (0 if self.sealed else self.data_end - self.off) + self._free_count() * per
            if room - need < per:
                return False
        if fits:
            return True
        s = self._succ()
        if not self._free(s) and not (self.drop_oldest and may_drop):
            return False
        self._open_sector(s)
        return True

    # -- writing ----------------------------------------------------------------------
    def _frame_bytes(self, t, payload):
        ln = len(payload)
        if ln == 0 or ln > 63:
            raise OSError(22)  # record too long for one frame
        fr = bytearray(ln + 3)
        fr[0] = (t << 6) | ln
        fr[1:ln + 1] = payload
        c = _crc16(memoryview(fr)[0:ln + 1])
        fr[ln + 1] = c >> 8
        fr[ln + 2] = c & 0xFF
        return fr

    def _put(self, t, payload):
        fr = self._frame_bytes(t, payload)
        try:
            self._write(self.head * self.ss + self.off, fr)
        except OSError:
            self.sealed = True   # whatever is there now, nothing goes after it
            raise
        self.off += len(fr)

    def _load_hprev(self):
        # decode the head's chain once to learn the last reading (the delta base)
        prev = None
        s = self.head
        off = HDR
        seq = self.base[s]
        while off < self.off:
            t, ln = self._frame(s, off)
            if t < 0:
                break
            if t == T_CODED:
                try:
                    d = record.decode(self.mv[1:ln + 1], prev, seq)
                    if d["kind"] == "reading":
                        prev = d
                except ValueError:
                    prev = None
            if t != T_META:
                seq += 1
            off += ln + 3
        self._hprev = prev
        self._hprev_ok = True

    def _base(self):
        # the reading the head sector's next coded record is a delta against (None: it
        # must be self-contained: fresh or sealed head)
        if self.sealed:
            return None
        if not self._hprev_ok:
            self._load_hprev()
        return self._hprev

    def _store(self, d, reserve_ok, data=None, base=None, opaque=None):
        # Write d (a record dict), or opaque bytes. data: d already encoded against base
        # (the caller's single encoding; used as is while the head's delta base is still
        # base). -> seq, or None when there is no room for it.
        for attempt in range(2):
            if opaque is None:
                prev = self._base()
                if data is None or (base is not prev and d["kind"] == "reading"):
                    data = record.pack(d, prev)
                if not self._ensure(len(data) + 3, reserve_ok):
                    return None
                if self._hprev is not prev and d["kind"] == "reading":
                    # a fresh sector was opened for it: self-contained
                    data = record.pack(d, None)
                base = self._hprev
                payload = data
                t = T_CODED
            else:
                if not self._ensure(len(opaque) + 3, reserve_ok):
                    return None
                payload = opaque
                t = T_OPAQUE
            try:
                self._put(t, payload)
            except OSError:
                if attempt:
                    raise
                data = None      # the head is sealed now: encoded again for a new one
                continue
            seq = self.next_seq
            self.next_seq += 1
            if opaque is None and d["kind"] == "reading":
                self._hprev = d
            return seq
        return None

    def _parse(self, data):
        # -> decoded dict for records record.py made (re-encoded on flash), or None
        try:
            d = record.decode(data, self._in_prev)
            flags = data[0]
            ref = d.get("ref_seq")
            if not flags & record.F_R:
                d["ref_seq"] = None   # canonical check on the bytes as given
            if record.pack(d, self._in_prev if flags & record.F_D else None,
                           d["seq"]) != bytes(data):
                return None
            d["ref_seq"] = ref
            d["seq"] = None
            return d
        except (ValueError, TypeError, KeyError, IndexError, UnicodeError):
            return None

    def add_reading(self, reading, t, t_src):
        # The app's way in: one reading, encoded here once against the head sector's
        # delta base (record.encode), written as encoded. t/t_src as record.encode
        # takes them; an "elapsed" int t counts from the previous reading appended.
        # -> its seq; None when merged into an aggregate (store full) or dropped.
        # Raises ValueError / TypeError (a value no record can hold: nothing stored) or
        # OSError (flash failure).
        if t_src == "elapsed" and t is not None and not isinstance(t, tuple):
            ref = self._in_prev.get("seq") if self._in_prev is not None else None
            # elapsed since a record that has no seq (merged) or none at all: no time
            t = (ref, t) if ref is not None else None
        base = self._base()
        data, d = record.encode(reading, t, t_src, base)
        return self._add_reading(d, data, base)

    def _add_reading(self, d, data=None, base=None):
        # the app encodes its next reading against this one (whatever became of it),
        # unless this call raises: then it keeps its previous one, and so do we
        if self._pending is None or (self._ensure(FRAME_MAX, False) and self.flush()):
            seq = self._store(d, False, data, base)
        else:
            seq = None
        if seq is None:
            self._aggregate(d)
        d["seq"] = seq
        self._in_prev = d
        return seq

    def append(self, data, rec=None):
        # Keep one record given as bytes. rec: the dict record.encode / encode_relay
        # returned with these (self-contained) bytes, so they need not be parsed;
        # without it, bytes record.py produces are filed as coded records, anything
        # else verbatim (opaque). -> its seq; None when it was merged into an aggregate
        # (store full) or dropped because not even the reserve had room (both counted).
        if rec is not None and not data[0] & record.F_D:
            d = rec
            d["seq"] = None
            if d["t_src"] == "elapsed" and d.get("dt_s") is not None \
                    and d.get("ref_seq") is None:
                d["ref_seq"] = self._in_prev.get("seq") if self._in_prev is not None \
                    else None
                data = None      # the bytes lack the reference: encoded again below
        else:
            d = self._parse(data)
        if d is not None and d["t_src"] == "elapsed" and d.get("dt_s") is not None \
                and d.get("ref_seq") is None:
            d["dt_s"] = None   # elapsed since an unknown record: no time at all
            data = None
        if d is not None and d["kind"] == "reading":
            return self._add_reading(d, data if rec is not None else None, None)
        if d is None:
            seq = self._store(None, True, opaque=bytes(data))
        else:
            seq = self._store(d, True, data if rec is not None else None)
        if seq is None:
            self._dropped += 1   # not even the reserve has room: the newest is lost, counted
        return seq

    def _aggregate(self, d):
        self._pending = record.merge(self._pending, d)
        self._aggr += 1
        if self._pending["n"] >= self._span:
            if self.flush() and self._span < (1 << 20):
                self._span *= 2
        return None

    def flush(self):
        # Write the pending aggregate, if any. -> True when nothing is left in RAM.
        p = self._pending
        if p is None:
            return True
        # the counter first: a cut between the two over-reports, never hides a loss
        if not self._write_meta(self.data_end):
            return False
        if self._store(p, True) is None:
            return False
        self._pending = None
        return True

    def rtc_dump(self):
        # The pending aggregate for RTC memory across a deep sleep (b"" when none):
        # next_seq u32 | aggregated u32 | span u32 | aggregate record. <= 60 bytes.
        p = self._pending
        if p is None:
            return b""
        return struct.pack("<III", self.next_seq, self._aggr, self._span) + record.pack(p, None)

    def rtc_load(self, data):
        # Take back a pending aggregate after a deep sleep, if it belongs to this log as
        # it is now (same next seq: nothing was appended in between). -> True if taken.
        if not data or len(data) < 13 or self._pending is not None:
            return False
        nxt, aggr, span = struct.unpack("<III", data[0:12])
        if nxt != self.next_seq:
            return False
        try:
            p = record.decode(data[12:])
        except ValueError:
            return False
        if p["kind"] != "aggregate":
            return False
        p["seq"] = None
        self._pending = p
        self._span = span
        if aggr > self._aggr:
            self._aggr = aggr
        return True

    # -- acknowledging -------------------------------------------------------------------
    def _write_meta(self, limit=None):
        # an ack never drops records to make room for itself
        if not self._ensure(META_FRAME, True, limit or self.ss, False):
            return False
        self._put(T_META, struct.pack("<III", self.ack_seq, self._dropped, self._aggr))
        self.pack = self.ack_seq
        return True

    def ack(self, upto):
        # Everything with seq <= upto reached the server. Persistent when this returns.
        if upto > self.next_seq - 1:
            upto = self.next_seq - 1
        if upto <= self.ack_seq:
            return
        self.ack_seq = upto
        self._fc = None
        if not self._write_meta():
            # no room at all (store full, reserve used): kept in RAM, written with the
            # next sector header or meta frame
            pass

    # -- reading back ------------------------------------------------------------------
    def _sector_of(self, u):
        best = -1
        for s in range(self.ns):
            if self.gen[s] >= 0 and self.base[s] <= u and (best < 0 or self.gen[s] > self.gen[best]):
                best = s
        return best

    def peek(self, n):
        # -> [(seq, record_bytes)] oldest unacknowledged first, at most n. Coded
        # records come back self-contained (with their seq; decode(data) needs no prev).
        out = []
        u = self.ack_seq + 1
        if n <= 0 or u >= self.next_seq:
            return out
        c = self._cur
        if c is not None and c[0] == u and self.gen[c[1]] == c[4]:
            s, off, prev, seq = c[1], c[2], c[3], u
        else:
            s = self._sector_of(u)
            if s < 0:
                return out
            off, prev, seq = HDR, None, self.base[s]
        while s >= 0:
            end = self.off if s == self.head else self.ss
            while off < end:
                t, ln = self._frame(s, off)
                if t < 0:
                    break
                off += ln + 3
                if t == T_META:
                    continue
                if t == T_CODED:
                    try:
                        d = record.decode(self.mv[1:ln + 1], prev, seq)
                    except ValueError:
                        d = None
                    if d is not None and d["kind"] == "reading":
                        prev = d
                    if seq >= u and d is not None:
                        out.append((seq, record.pack(d, None, seq)))
                elif seq >= u:
                    out.append((seq, bytes(self.mv[1:ln + 1])))
                seq += 1
                if len(out) >= n:
                    self._cur = (seq, s, off, prev, self.gen[s])
                    return out
            s = self._next_in_gen(s)
            if s >= 0:
                off, prev, seq = HDR, None, self.base[s]
        self._cur = None
        return out

    # -- counters ---------------------------------------------------------------------------
    @property
    def count(self):
        return self.next_seq - 1 - self.ack_seq

    @property
    def dropped(self):
        return self._dropped

    @property
    def aggregated(self):
        return self._aggr
