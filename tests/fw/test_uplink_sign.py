# HMAC-SHA256 batch signing and the replay counter (firmware/uplink/sign.py).
import json
from binascii import hexlify

from firmware.uplink import sign
from tests.fw.util import raises, Rng


def test_hmac_matches_rfc4231_vectors():
    # RFC 4231 test cases 1, 2 and 6 (key longer than the block size)
    assert hexlify(sign.hmac_sha256(b"\x0b" * 20, b"Hi There")) == \
        b"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    assert hexlify(sign.hmac_sha256(b"Jefe", b"what do ya want for nothing?")) == \
        b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert hexlify(sign.hmac_sha256(
        b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")) == \
        b"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


KEY = b"0123456789abcdef0123456789abcdef"


def test_sealed_batch_is_still_json_and_unseals_to_the_signed_bytes():
    body = b'{"v":1,"dev":"0a1b2c","rows":[[1,2]],"ctr":7}'
    sealed = sign.seal(KEY, body)
    d = json.loads(sealed)
    assert d["ctr"] == 7 and len(d["sig"]) == 64
    assert sign.is_sealed(sealed) and not sign.is_sealed(body)
    assert sign.unseal(KEY, sealed) == body


def test_forged_or_altered_batches_are_refused():
    body = b'{"v":1,"dev":"0a1b2c","rows":[[1,1230]],"ctr":8}'
    sealed = sign.seal(KEY, body)
    raises(ValueError, sign.unseal, b"another key of 32 bytes.........", sealed)
    raises(ValueError, sign.unseal, KEY, sealed.replace(b"1230", b"1231"))
    raises(ValueError, sign.unseal, KEY, body)                    # unsigned
    raises(ValueError, sign.unseal, KEY, sealed[:-3] + b'0"}')    # signature changed
    raises(ValueError, sign.unseal, KEY, b"")
    # every single-bit flip anywhere is detected
    rng = Rng(5)
    for _ in range(40):
        i = rng.below(len(sealed) - 2)
        b = bytearray(sealed)
        b[i] ^= 1 << rng.below(8)
        raises(ValueError, sign.unseal, KEY, bytes(b))


def test_parse_key_refuses_short_or_non_hex_keys_without_echoing_them():
    assert sign.parse_key("") is None
    assert sign.parse_key("00" * 16) == b"\0" * 16
    e = raises(ValueError, sign.parse_key, "zz" * 16)
    assert "zz" not in str(e)
    raises(ValueError, sign.parse_key, "00" * 8)


class _File:
    def __init__(self):
        self.hi = 0
        self.writes = 0

    def load(self):
        return self.hi

    def save(self, hi):
        self.hi = hi
        self.writes += 1


def test_counter_never_repeats_across_power_loss_and_writes_rarely():
    f = _File()
    c = sign.Counter(f.load, f.save)
    seen = [c.take() for _ in range(200)]
    assert seen == list(range(200))
    # one state-file write per RESERVE values, not one per message
    assert f.writes == (200 + sign.Counter.RESERVE - 1) // sign.Counter.RESERVE
    # power loss: RAM gone, only the file is left -> resumes above everything used
    c2 = sign.Counter(f.load, f.save)
    v = c2.take()
    assert v > max(seen)
    # deep sleep: the RTC copy of `next` resumes exactly, without a write
    w = f.writes
    c3 = sign.Counter(f.load, f.save, c2.next)
    assert c3.take() == v + 1 and f.writes == w


def test_counter_skips_forward_only_within_bounds():
    f = _File()
    c = sign.Counter(f.load, f.save)
    c.take()
    c.skip_to(500)
    assert c.take() == 501
    c.skip_to(10)            # never backwards
    assert c.take() == 502
    c.skip_to(sign.Counter.LIMIT)   # absurd hint ignored
    assert c.take() == 503
