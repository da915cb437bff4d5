# Helpers for the TIC tests: build groups/frames with right checksums, an independent
# reference split of frames into groups, and the "no wrong value" comparison.
# Runs on CPython and MicroPython.
from tests.fw.util import chunks
from firmware.reading.tic import TicDecoder


def cs_hist(body):
    # Enedis-NOI-CPT_02E: sum of label SP data, 6 bits, + 0x20
    return (sum(body) & 0x3F) + 0x20


def grp_h(label, value):
    body = label + b" " + value
    return b"\n" + body + b" " + bytes([cs_hist(body)]) + b"\r"


def grp_s(label, value, hd=None):
    body = label + b"\t" + (hd + b"\t" if hd is not None else b"") + value + b"\t"
    return b"\n" + body + bytes([(sum(body) & 0x3F) + 0x20]) + b"\r"


def frame(groups):
    return b"\x02" + b"".join(groups) + b"\x03"


def ref_frames(data):
    # Reference reading of a capture, written independently of the decoder: every
    # STX..ETX frame, as a list of (label, raw text) of the groups whose checksum holds.
    out = []
    i = data.find(b"\x02")
    while i >= 0:
        j = data.find(b"\x03", i)
        k = data.find(b"\x02", i + 1)
        if j < 0 or (k >= 0 and k < j):
            i = k
            continue
        groups = []
        for line in data[i + 1:j].replace(b"\r", b"\n").split(b"\n"):
            if len(line) < 4:
                continue
            std = b"\t" in line
            if std:
                parts = line.split(b"\t")
                chk = (sum(line[:-1]) & 0x3F) + 0x20
                label = parts[0]
                raw = b"\t".join(parts[1:-1])
                if parts[-2] == b"":
                    raw = parts[1]
            else:
                chk = (sum(line[:-2]) & 0x3F) + 0x20
                sp = line.find(b" ")
                label = line[:sp]
                raw = line[sp + 1:-2]
            if chk == line[-1]:
                groups.append((label.decode(), raw.decode()))
        out.append(groups)
        i = k
    return out


def decode(data, n=None, flush=True, **kw):
    d = TicDecoder(**kw)
    out = []
    if n is None:
        out.extend(d.feed(data))
    else:
        for c in chunks(data, n):
            out.extend(d.feed(c))
    if flush:
        out.extend(d.flush())
    return d, out


def subset_error(r, r0):
    # None when every value in reading r equals the one in r0 (r may lack keys);
    # otherwise a message naming the first wrong value
    if r0 is None:
        return "reading where the original frame gives none"
    for k in r:
        v = r[k]
        if v is None or k == "partial":
            continue
        v0 = r0.get(k)
        if isinstance(v, dict):
            if not isinstance(v0, dict):
                return k + " appeared"
            for kk in v:
                if kk not in v0 or v0[kk] != v[kk]:
                    return "%s[%s]=%r, original %r" % (k, kk, v[kk], v0.get(kk))
        elif v != v0:
            return "%s=%r, original %r" % (k, v, v0)
    return None
