# A historic TIC capture with a load profile of your choice: real frames from the corpus
# (tic/hist_tempo_mono_pyteleinfo.txt, pyteleinfo, MIT) with their apparent power group
# (PAPP) rewritten and its checksum recomputed (Enedis-NOI-CPT_02E: (sum(label SP data)
# & 0x3F) + 0x20), every other byte as the meter sent it. For the relay's load shedding
# in tools.replay / tools.sim without a meter whose load you can swing.
#
#   python -m tools.loadcapture OUT.txt VA[xN] [VA[xN] ...]
#   python -m tools.loadcapture swing.txt 2000x30 6200x30     # ~70 s low, ~70 s high
#   python -m tools.sim --capture swing.txt --relay-threshold 5400 --plot relay.png
import re
import sys

from tools.captures import path as capture_path

SOURCE = "tic/hist_tempo_mono_pyteleinfo.txt"


def _checksum(body):
    return (sum(body) & 0x3F) + 0x20


def with_papp(frame, va):
    # the same frame with another apparent power (a function replacement: the checksum
    # character may be a backslash)
    body = b"PAPP %05d" % va
    group = b"\n" + body + b" " + bytes([_checksum(body)]) + b"\r"
    return re.sub(rb"\nPAPP \d{5} .\r", lambda m: group, frame)


def real_frames(path=None):
    with open(path or capture_path(SOURCE), "rb") as f:
        data = f.read()
    return [b"\x02" + f.split(b"\x03")[0] + b"\x03" for f in data.split(b"\x02")[1:]]


def build(profile, frames=None):
    # profile: one apparent power (VA) per frame
    frames = frames or real_frames()
    return b"".join(with_papp(frames[i % len(frames)], va) for i, va in enumerate(profile))


def parse(specs):
    out = []
    for s in specs:
        va, _, n = s.partition("x")
        va, n = int(va), int(n or 1)
        if not (0 <= va <= 99999 and n > 0):
            raise ValueError("VA 0-99999 and a positive count: %r" % s)
        out += [va] * n
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print("usage: python -m tools.loadcapture OUT.txt VA[xN] [VA[xN] ...]", file=sys.stderr)
        return 2
    try:
        profile = parse(argv[1:])
    except ValueError as e:
        print("tools.loadcapture: %s" % e, file=sys.stderr)
        return 2
    data = build(profile)
    with open(argv[0], "wb") as f:
        f.write(data)
    print("%s: %d frames, %d bytes (%.0f s at 1200 bd)" % (argv[0], len(profile), len(data),
                                                         len(data) * 10 / 1200.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
