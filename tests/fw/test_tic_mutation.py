# Property tests for the TIC decoder: no single-byte substitution, deletion or insertion
# in a frame may produce a wrong value (only fewer values, or no reading), and no input
# at all may make the decoder raise.
#
# On CPython the historic frames are mutated exhaustively (every position, every
# mutation kind below) and the standard ones at every position for the dangerous
# kinds; on the MicroPython unix port a deterministic random sample is used.
from tests.fw.util import corpus, Rng, is_micropython, chunks
from tests.fw.tic_helpers import grp_h, frame, decode, subset_error
from firmware.reading.tic import TicDecoder


def _first_frame(name, nth=0):
    data = corpus("tic/" + name)
    i = -1
    for _ in range(nth + 1):
        i = data.find(b"\x02", i + 1)
    j = data.find(b"\x03", i)
    return data[i:j + 1]


def _adps_frame():
    return frame([grp_h(b"ADCO", b"021800000001"), grp_h(b"OPTARIF", b"BASE"),
                  grp_h(b"ISOUSC", b"30"), grp_h(b"BASE", b"012345678"),
                  grp_h(b"PTEC", b"TH.."), grp_h(b"IINST", b"032"),
                  grp_h(b"ADPS", b"032"), grp_h(b"IMAX", b"090"),
                  grp_h(b"PAPP", b"07200"), grp_h(b"HHPHC", b"A"),
                  grp_h(b"MOTDETAT", b"000000")])


def _frames():
    return [
        ("hchp", _first_frame("hist_hchp_mono_pyteleinfo.txt")),
        ("tempo", _first_frame("hist_tempo_mono_pyteleinfo.txt")),
        ("ejp-tri", _first_frame("hist_tri_ejp_openhab.txt")),
        ("adps", _adps_frame()),
        ("std-hcwe", _first_frame("std_mono_hcwe_goteleinfo.txt")),
        ("std-tri", _first_frame("std_tri_tempo_producer_openhab.txt")),
    ]


SUBST = (0x00, 0x02, 0x03, 0x04, 0x09, 0x0A, 0x0D, 0x20, 0x40, 0x7F)
INSERT = (0x00, 0x02, 0x03, 0x04, 0x09, 0x0A, 0x0D, 0x20, 0x40, 0x80, 0xC0, 0x30, 0x41)


def _check(name, orig, data, what):
    d = TicDecoder("auto")
    out = list(d.feed(data)) + list(d.flush())
    for r in out:
        err = subset_error(r, orig)
        assert err is None, (name, what, err)
    return len(out)


def _mutations(f, i, full):
    b = f[i]
    subs = [(b + 64) & 0xFF, (b - 64) & 0xFF, (b + 128) & 0xFF]
    if full:
        subs.extend(SUBST)
    for v in subs:
        if v != b:
            yield "sub %d %02x" % (i, v), f[:i] + bytes([v]) + f[i + 1:]
    yield "del %d" % i, f[:i] + f[i + 1:]
    for v in (INSERT if full else (0x00, 0x02, 0x03, 0x0A, 0x0D, 0x40)):
        yield "ins %d %02x" % (i, v), f[:i] + bytes([v]) + f[i:]


def _originals():
    out = []
    for name, f in _frames():
        d, rs = decode(f)
        assert len(rs) == 1, name
        out.append((name, f, rs[0]))
    return out


def test_original_frames_decode():
    got = dict((n, r) for n, f, r in _originals())
    assert got["adps"]["overload"] is True and got["hchp"]["overload"] is False
    assert got["std-tri"]["current_a"] == [1, 2, 1]
    assert got["ejp-tri"]["current_a"] == [10, 5, 8]
    assert got["tempo"]["tomorrow"] == "ROUG"


def test_single_byte_mutations_never_give_a_wrong_value():
    mp = is_micropython()
    rng = Rng(7)
    total = 0
    readings = 0
    for name, f, r0 in _originals():
        std = name.startswith("std")
        if mp:
            positions = [rng.below(len(f)) for _ in range(25 if std else 40)]
        elif name == "std-tri":
            positions = range(0, len(f), 3)   # 1440 bytes: every third (time budget)
        else:
            positions = range(len(f))
        for i in positions:
            full = not mp and (not std or i % 7 == 0)
            for what, data in _mutations(f, i, full):
                readings += _check(name, r0, data, what)
                total += 1
    # the mutations did produce readings (mostly with one group fewer), not nothing
    assert readings > total // 2, (readings, total)


def test_mutation_at_64_steps_of_every_value_byte_is_caught():
    # the case the 6-bit checksum cannot see: every byte of every value shifted by 64
    for name, f, r0 in _originals():
        for i in range(len(f)):
            for v in ((f[i] + 64) & 0xFF, (f[i] - 64) & 0xFF):
                data = f[:i] + bytes([v]) + f[i + 1:]
                d = TicDecoder("auto")
                for r in d.feed(data):
                    assert subset_error(r, r0) is None, (name, i, v)
        if is_micropython():
            break


def test_random_bytes_never_raise():
    rng = Rng(11)
    n = 20 if is_micropython() else 200
    alphabet = b"\x02\x03\x04\t\n\r @0123456789ABCDEFHPST.-+"
    for k in range(n):
        d = TicDecoder(("auto", "historic", "standard")[k % 3])
        if k % 2:
            data = rng.bytes(300)
        else:
            data = bytes(alphabet[rng.below(len(alphabet))] for _ in range(300))
        out = []
        for c in chunks(data, 1 + rng.below(40)):
            out += list(d.feed(c))
        out += list(d.flush())
        # every STX starts a frame (Enedis-NOI-CPT_02E s.5.3.6 / CPT_54E s.6.2.2),
        # whatever follows it, and random bytes never pass as a meter's frame
        assert d.frames == data.count(b"\x02"), (k, d.frames, d.errors)
        assert out == [] and d.readings == 0, (k, out)


def test_truncated_frames_never_raise_and_stay_right():
    for name, f, r0 in _originals():
        step = 1 if not is_micropython() else 17
        for n in range(1, len(f), step):
            d = TicDecoder("auto")
            out = list(d.feed(f[:n])) + list(d.flush())
            for r in out:
                assert subset_error(r, r0) is None, (name, n)
            d = TicDecoder("auto")
            out = d.feed(f[n:])
            assert out == () or out[0]["meter_id"] is None, (name, n)


def test_two_frames_with_a_mutation_between():
    # the second, intact frame always decodes whole, whatever happened to the first
    rng = Rng(3)
    for name, f, r0 in _originals():
        for k in range(10 if not is_micropython() else 3):
            i = rng.below(len(f))
            bad = f[:i] + bytes([rng.below(256)]) + f[i + 1:]
            d = TicDecoder("auto")
            out = list(d.feed(bad + f))
            assert out, name
            last = out[-1]
            fl = dict(last["fields"])
            if name == "std-hcwe" and "NGTF" in fl:
                # free text with lower case: confirmed by the second copy
                assert fl.pop("NGTF") == " HC et Week-End "
            assert fl == r0["fields"], (name, i)
