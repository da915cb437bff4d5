# Decode meter captures into readings (one JSON object per line).
#
#   python -m tools.decode [--protocol auto|tic|tic-historic|tic-standard|dsmr]
#                          [--key HEX] [--aak HEX] FILE|-
#   micropython -m tools.decode ...        (same readings, streaming: memory does not
#                                           depend on the input size)
#
# A summary of frames and rejected groups/telegrams goes to stderr; the exit status is
# 0 whenever the input could be read (bad frames are data, not failures).
import json
import sys

from firmware import meter

CHUNK = 512


class _Last:
    # the decoder of the last stream, for the summary (functions take no attributes
    # on MicroPython)
    dec = None


def _unhex(s):
    if s is None:
        return None
    from binascii import unhexlify
    return unhexlify(s.strip())


def decode_stream(read, protocol="auto", key=None, aak=None):
    # Generator of readings from a read(n) function; keeps nothing but the decoder.
    dec = meter.make_decoder(protocol, key=key, aak=aak)
    _Last.dec = dec
    buf = bytearray(CHUNK)
    mv = memoryview(buf)
    while True:
        chunk = read(CHUNK)
        if not chunk:
            break
        n = len(chunk)
        mv[:n] = chunk
        for r in dec.feed(mv[:n]):
            yield r
    # end of input: a DSMR 2.2 telegram without "!" completes only now
    flush = getattr(dec, "flush", None)
    if flush is not None:
        for r in flush():
            yield r


def decode_bytes(data, protocol="auto", key=None, aak=None):
    if isinstance(key, str):
        key = _unhex(key)
    if isinstance(aak, str):
        aak = _unhex(aak)
    dec = meter.make_decoder(protocol, key=key, aak=aak)
    out = []
    out.extend(dec.feed(data))
    flush = getattr(dec, "flush", None)
    if flush is not None:
        out.extend(flush())
    return out


def _summary(dec):
    errs = dec.errors
    parts = ["%s=%d" % (k, errs[k]) for k in sorted(errs) if errs[k]]
    return "frames=%d readings=%d rejected: %s" % (dec.frames, dec.readings,
                                                   ", ".join(parts) if parts else "none")


def main(argv):
    protocol = "auto"
    key = aak = None
    path = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--protocol", "-p"):
            protocol = argv[i + 1]
            i += 2
        elif a == "--key":
            key = argv[i + 1]
            i += 2
        elif a == "--aak":
            aak = argv[i + 1]
            i += 2
        elif a in ("-h", "--help"):
            print("usage: tools.decode [--protocol P] [--key HEX] [--aak HEX] FILE|-")
            return 0
        else:
            path = a
            i += 1
    if path is None:
        sys.stderr.write("tools.decode: give a FILE or - for standard input\n")
        return 2
    if protocol not in meter.PROTOCOLS:
        sys.stderr.write("tools.decode: unknown protocol %s\n" % protocol)
        return 2
    try:
        key_b = _unhex(key)
        aak_b = _unhex(aak)
    except ValueError:
        sys.stderr.write("tools.decode: --key/--aak must be hex\n")
        return 2
    if path == "-":
        stream = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
        f = None
    else:
        try:
            f = open(path, "rb")
        except OSError as e:
            sys.stderr.write("tools.decode: cannot read %s: %s\n" % (path, e))
            return 1
        stream = f
    try:
        for r in decode_stream(stream.read, protocol, key_b, aak_b):
            sys.stdout.write(json.dumps(r))
            sys.stdout.write("\n")
    finally:
        if f:
            f.close()
    dec = _Last.dec
    if dec is not None:
        sys.stderr.write(_summary(dec) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
