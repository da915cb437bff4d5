# Luxembourg Smarty: DLMS general-glo-ciphering + AES-128-GCM on top of ECB only.
import binascii
import json

from tests.fw.util import corpus, chunks, Rng, is_micropython
from firmware.reading.dsmr import DsmrDecoder
try:
    from firmware.frame import smarty
except ImportError:      # a MicroPython build without cryptolib (the host's 32-bit one)
    smarty = None
MICROPYTHON_SKIP = None if smarty is not None else "no AES (cryptolib) in this build"

REAL_KEY = binascii.unhexlify("D491470F47126332B07D1923B3504188")
SPEC_KEY = binascii.unhexlify("0123456789ABCDEF0123456789ABCDEF")
SPEC_AAK = binascii.unhexlify("ffeeddccbbaa99887766554433221100")


def _feed(d, data, n=None):
    out = []
    for c in (chunks(data, n) if n else (data,)):
        out += d.feed(c)
    return out + d.flush()


def _no_enc(r):
    r = dict(r)
    r.pop("encrypted", None)
    return r


def test_real_frame_decrypts_to_its_plaintext():
    frame = corpus("dsmr/lu_smarty_real.bin")
    plain = corpus("dsmr/lu_smarty_real.plain.txt")
    buf = bytearray(frame)
    g = smarty.Gcm(REAL_KEY)
    a, b = smarty.decrypt_frame(g, buf, len(buf), smarty.aad_for(None))
    assert bytes(buf[a:b]) == plain
    ref = _feed(DsmrDecoder(), plain)
    for n in (None, 1, 7, 64):
        d = DsmrDecoder(key=REAL_KEY)
        out = _feed(d, frame, n)
        assert len(out) == 1 and out[0]["encrypted"] is True, (n, d.errors)
        assert _no_enc(out[0]) == ref[0]
        assert out[0]["crc"] is True and out[0]["energy_import_wh"] == 6695
        assert d.frames == 1 and d.readings == 1 and not d.errors


def test_key_as_hex_string_and_default_authentication_key():
    d = DsmrDecoder(key="D491470F47126332B07D1923B3504188", aak="00112233445566778899AABBCCDDEEFF")
    assert len(_feed(d, corpus("dsmr/lu_smarty_real.bin"))) == 1


def test_spec_frames_with_and_without_aad_match_expected_json():
    plain = corpus("dsmr/lu_smarty_athom_spec.txt")
    exp = json.loads(corpus("dsmr/lu_smarty_athom_spec.expected.json"))
    for f, aak in (("with-aad", SPEC_AAK), ("without-aad", b"")):
        frame = corpus("dsmr/lu_smarty_athom_spec_encrypted_%s.bin" % f)
        buf = bytearray(frame)
        res = smarty.decrypt_frame(smarty.Gcm(SPEC_KEY), buf, len(buf), smarty.aad_for(aak))
        assert bytes(buf[res[0]:res[1]]) == plain, f
        d = DsmrDecoder(key=SPEC_KEY, aak=aak)
        out = _feed(d, frame, 64)
        assert len(out) == 1, (f, d.errors)
        r = out[0]
        # the spec example's inner CRC is wrong; GCM authenticated the frame, so
        # the reading is kept and says so
        assert r["crc"] is False
        el = exp["electricity"]
        assert r["registers"]["1.8.0"] == el["total"]["received"] == 25653
        assert r["registers"]["2.8.0"] == el["total"]["returned"]
        assert r["active_power_w"] == el["powerReceivedTotal"]
        assert r["voltage_v"] == [233.0, 0.0, 1.0]
        assert r["voltage_sags"] == [40, 3, 2] and r["power_failures"] == 99
        assert r["timestamp"] == exp["metadata"]["timestamp"][:19]
        assert r["reactive_registers"] == {"3.8.0": 835, "4.8.0": 63781}
        ch = dict((c["channel"], c) for c in r["mbus"])
        for k, m in exp["mBus"].items():
            assert ch[int(k)]["type"] == m["deviceType"]
            assert ch[int(k)]["value"] == m.get("value")
        assert r["gas_m3"] == 0.006 and r["gas_timestamp"] == "2020-07-06T10:31:40"
        # the wrong AAD fails authentication
        d = DsmrDecoder(key=SPEC_KEY, aak=b"" if aak else SPEC_AAK)
        assert _feed(d, frame) == [] and d.errors == {"decrypt": 1}


def test_wrong_key_is_refused():
    frame = corpus("dsmr/lu_smarty_real.bin")
    bad = bytearray(REAL_KEY)
    bad[0] ^= 0x80
    d = DsmrDecoder(key=bytes(bad))
    assert _feed(d, frame) == []
    assert d.errors == {"decrypt": 1} and d.frames == 1 and d.readings == 0


def test_flipped_bytes_are_refused():
    frame = corpus("dsmr/lu_smarty_real.bin")
    n = len(frame)
    positions = range(14, n) if not is_micropython() else list(range(14, n, 13)) + [n - 12, n - 1]
    d = DsmrDecoder(key=REAL_KEY)
    for i in positions:
        # frame counter, ciphertext or tag: GCM must refuse every single bit flip
        bad = bytearray(frame)
        bad[i] ^= 1 << (i % 8)
        d.reset()
        assert _feed(d, bytes(bad)) == [], i
    assert d.errors["decrypt"] == len(positions)
    # damaged header bytes break the frame itself: never a wrong reading, and
    # the framer finds the next frame unless the damaged length swallowed it
    ref = _feed(DsmrDecoder(key=REAL_KEY), frame)[0]
    for i in range(0, 14):
        for x in (0x55, 0x01, 0x80):
            bad = bytearray(frame)
            bad[i] ^= x
            d = DsmrDecoder(key=REAL_KEY)
            out = _feed(d, bytes(bad) + frame + frame, 61)
            assert 1 <= len(out) <= 2 and all(r == ref for r in out), (i, x, d.errors)
            assert d.errors, (i, x)


def test_encrypted_frame_without_key_is_reported_not_garbage():
    d = DsmrDecoder()
    out = _feed(d, corpus("dsmr/lu_smarty_real.bin") + corpus("dsmr/nl_v5_basjes_iskra_am550.txt"))
    assert len(out) == 1 and out[0]["meter_id"] == "E0044000000000042"
    assert d.errors == {"encrypted_no_key": 1} and d.frames == 2


def test_stream_of_frames_with_noise():
    frame = corpus("dsmr/lu_smarty_real.bin")
    noise = b"\x00\xff\xdb\x08 almost a header\r\n"
    d = DsmrDecoder(key=REAL_KEY)
    out = _feed(d, noise + frame + frame + noise + frame, 50)
    assert len(out) == 3
    # truncated frame followed by a good one: the cut one takes the next frame's
    # first bytes and fails its tag, the frame after that decodes
    d = DsmrDecoder(key=REAL_KEY)
    out = _feed(d, frame[:300] + frame + frame + frame, 64)
    assert len(out) >= 1 and d.errors.get("decrypt", 0) >= 1


def test_oversize_encrypted_frame():
    # a length field beyond ENC_MAX (2048, the Smarty frame buffer): refused, and the
    # framer rescans after the header, so the next frame decodes
    from firmware.frame.dsmr import ENC_MAX, LINE_LEN
    frame = bytearray(corpus("dsmr/lu_smarty_athom_spec_encrypted_with-aad.bin"))
    assert frame[11] << 8 | frame[12] < ENC_MAX
    frame[11] = 0x09        # 0x09xx = 2304+ bytes
    real = corpus("dsmr/lu_smarty_real.bin")
    d = DsmrDecoder(key=REAL_KEY)
    assert len(_feed(d, bytes(frame) + real, 100)) == 1 and d.errors["oversize"] == 1
    assert d.errors.get("decrypt") is None
    assert len(d.framer.ebuf) == ENC_MAX == 2048 and d.framer.max_len == LINE_LEN
    # no key: no frame buffer at all, frames are skipped by their length
    d = DsmrDecoder()
    assert d.framer.ebuf is None
    assert _feed(d, real + real, 100) == [] and d.errors == {"encrypted_no_key": 2}


# AES-GCM vectors made by another implementation (the `cryptography` package's AESGCM)
# from the deterministic Rng below, stored so that MicroPython checks against them too;
# the CPython test re-derives every line from cryptography, so the file cannot drift.
GCM_VECTORS = "tests/fw/gcm_vectors_cryptography.txt"


def _gcm_cases(n=24):
    rng = Rng(5)
    for k in range(n):
        key = rng.bytes(16)
        iv = rng.bytes(12)
        aad = rng.bytes(rng.below(40))
        pt = rng.bytes(rng.below(300))
        yield k, key, iv, aad, pt


def _stored_vectors():
    from tests.fw.util import ROOT
    out = []
    with open(ROOT + "/" + GCM_VECTORS) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            out.append([binascii.unhexlify(x) if x != "-" else b"" for x in line.split()])
    return out


def test_gcm_vectors_file_is_cryptographys_output():
    if is_micropython():
        # (no `cryptography` here: the file is checked on CPython; the next test checks
        # the firmware against it on every interpreter)
        assert len(_stored_vectors()) == 24
        return
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    stored = _stored_vectors()
    assert len(stored) == 24
    for (k, key, iv, aad, pt), (skey, siv, saad, spt, sct) in zip(_gcm_cases(), stored):
        assert (skey, siv, saad, spt) == (key, iv, aad, pt), k
        assert sct == AESGCM(key).encrypt(iv, pt, aad), k


def test_gcm_matches_reference_implementation():
    # our CTR+GHASH over the ECB primitive vs cryptography's AESGCM (stored vectors,
    # checked against cryptography itself on CPython above); a flipped tag bit refused
    for k, (key, iv, aad, pt, ct) in enumerate(_stored_vectors()):
        buf = bytearray(ct[:-16])
        g = smarty.Gcm(key)
        assert g.decrypt(iv, aad, buf, 0, len(buf), ct[-16:-4])
        assert bytes(buf) == pt
        buf = bytearray(ct[:-16])
        t = bytearray(ct[-16:-4])
        t[k % 12] ^= 1
        assert not g.decrypt(iv, aad, buf, 0, len(buf), t)


def test_gcm_known_answer():
    # NIST GCM test case 4 (McGrew & Viega), tag truncated to 12 bytes
    key = binascii.unhexlify("feffe9928665731c6d6a8f9467308308")
    iv = binascii.unhexlify("cafebabefacedbaddecaf888")
    aad = binascii.unhexlify("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    ct = binascii.unhexlify(
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
        "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091")
    pt = binascii.unhexlify(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
    tag = binascii.unhexlify("5bc94fbc3221a5db94fae95a")
    buf = bytearray(ct)
    assert smarty.Gcm(key).decrypt(iv, aad, buf, 0, len(buf), tag)
    assert bytes(buf) == pt


def test_ghash_fast_path_matches_integer_path():
    # MicroPython uses a viper GHASH on 32-bit words; the big-integer version is
    # the reference (and the CPython path). Both must agree on every length.
    g = smarty.Gcm(SPEC_KEY)
    rng = Rng(21)
    if smarty._ghash_v is None:
        assert not g.fast
        return
    for n in (0, 1, 15, 16, 17, 31, 32, 33, 100, 617):
        data = rng.bytes(n)
        aad = rng.bytes(rng.below(20))
        parts = ((aad, 0, len(aad)), (data, 0, n))
        g.fast = True
        a = g.ghash(parts)
        g.fast = False
        b = g.ghash(parts)
        assert a == b, n
    g.fast = True
