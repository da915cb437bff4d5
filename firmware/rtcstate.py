# What the app keeps in RTC memory across a deep sleep (RTC RAM survives it; a power
# loss or a reset by the button clears it). One blob, written before every deep sleep
# and after every step, read once at boot.
#
# Layout (little-endian), 11 bytes of header, then five sections back to back:
#
#   offset size  field
#   0      3     magic "LK6" (anything else: no state, a power-on)
#   3      1     line        int8, index into firmware/meter.py LINES; -1 = not locked
#   4      1     wifi_fails  uint8, failed Wi-Fi joins in a row (saturates at 255)
#   5      1     misses      uint8, empty reads in a row at the locked line (saturates)
#   6      5     lengths     uint8 each, of the sections em, rl, up, es, rp below
#   11     ...   em          energy manager state   (firmware/power/energy.py dump())
#                rl          relay driver state     (firmware/relay/driver.py dump())
#                up          uplink counters        (firmware/uplink/uplink.py dump())
#                es          early-stop labels, ASCII, comma-separated ("" when none;
#                            left out above MAX_LABELS bytes)
#                rp          relay policy timers    (firmware/relay/policy.py dump())
#
# Each section is at most 255 bytes (its length is one byte); the ESP8266's RTC user
# memory holds 492 bytes (tools/hostport.py rtc_size), which the sum stays well under.
import struct

MAGIC = b"LK6"
HEADER = "<bBBBBBBB"   # line, wifi_fails, misses, 5 lengths (after the magic)
HEADER_LEN = 11
MAX_LABELS = 160


class RtcState:
    def __init__(self, line=-1, wifi_fails=0, misses=0, em=b"", rl=b"", up=b"",
                 labels=None, rp=b""):
        self.line = line            # index into meter.LINES, -1 = none
        self.wifi_fails = wifi_fails
        self.misses = misses
        self.em = em
        self.rl = rl
        self.up = up
        self.labels = labels        # list of early-stop labels, or None
        self.rp = rp

    def pack(self):
        es = ",".join(self.labels).encode() if self.labels else b""
        if len(es) > MAX_LABELS:
            es = b""
        return MAGIC + struct.pack(HEADER, self.line, min(self.wifi_fails, 255),
                                   min(self.misses, 255), len(self.em), len(self.rl),
                                   len(self.up), len(es), len(self.rp)) + \
            self.em + self.rl + self.up + es + self.rp


def parse(data):
    # -> RtcState, or None when data is no state of ours (power-on, other magic, short);
    # raises ValueError / UnicodeError on a damaged blob
    if not data or data[:3] != MAGIC or len(data) < HEADER_LEN:
        return None
    line, wifi_fails, misses, n_em, n_rl, n_up, n_es, n_rp = struct.unpack(
        HEADER, data[3:HEADER_LEN])
    p = HEADER_LEN
    parts = []
    for n in (n_em, n_rl, n_up, n_es, n_rp):
        parts.append(bytes(data[p:p + n]))
        p += n
    es = parts[3].decode()
    return RtcState(line, wifi_fails, misses, parts[0], parts[1], parts[2],
                    es.split(",") if es else None, parts[4])
