# Other TIC decoders' own test cases, value by value: the frames and the values the
# tests of esciara/pyteleinfo (BSD-2-Clause) and angristan/teleinfo2mqtt-rs (MIT) assert
# for them, copied as data into tests/fixtures/other-projects/tic_decoders.json (source
# repository, path, commit and licence per case; SOURCES.md there). Every value they
# expect is checked against our raw field AND, where we type it, against our typed
# value (Enedis-NOI-CPT_02E: index in Wh, IINST/ISOUSC in A, PAPP in VA). A group
# whose checksum is wrong in THEIR data is recorded there with the reason and must be
# dropped by us, never read. Runs on CPython and on the MicroPython unix port.
import json

from tests.fw.util import ROOT
from tests.fw.tic_helpers import decode

FIX = ROOT + "/tests/fixtures/other-projects/tic_decoders.json"

# historic label -> (our reading key, index in a per-phase list or None)
TYPED = {"ADCO": ("meter_id", None), "ISOUSC": ("subscribed_current_a", None),
         "PTEC": ("tariff_period", None), "IINST": ("current_a", 0),
         "PAPP": ("apparent_power_va", None)}
# index labels of 02E (Wh): read into registers
INDEX = ("BASE", "HCHC", "HCHP", "EJPHN", "EJPHPM", "BBRHCJB", "BBRHPJB", "BBRHCJW",
         "BBRHPJW", "BBRHCJR", "BBRHPJR")


def _load():
    with open(FIX) as f:
        return json.load(f)


def _frame(lines):
    out = b"\x02"
    for ln in lines:
        out += b"\n" + ln.encode() + b"\r"
    return out + b"\x03"


def _typed(want_raw, ours):
    # their raw text in the type we give the value
    if isinstance(ours, int) and not isinstance(ours, bool):
        return int(want_raw)
    return want_raw


def _check_frame(c):
    d, rs = decode(_frame(c["lines"]))
    assert len(rs) == 1, (c["id"], rs)
    r = rs[0]
    assert r["protocol"] == "tic-historic", c["id"]
    bad = c["their_defects"]
    n = 0
    for label, want in c["expected"].items():
        if label in bad:
            # their group fails the 02E checksum: we must not read it
            assert label not in r["fields"], (c["id"], label)
            key = TYPED.get(label, (None,))[0]
            if key is not None:
                assert r[key] is None, (c["id"], label, r[key])
            continue
        assert r["fields"][label] == want, (c["id"], label, r["fields"][label], want)
        n += 1
        if label in INDEX:
            assert r["registers"][label] == int(want), (c["id"], label)
            n += 1
        elif label in TYPED:
            key, i = TYPED[label]
            got = r[key] if i is None else r[key][i]
            assert got == _typed(want, got), (c["id"], label, got, want)
            n += 1
    # nothing beyond their groups, and exactly their bad groups counted as errors
    assert sorted(r["fields"]) == sorted(k for k in c["expected"] if k not in bad), c["id"]
    assert d.errors.get("checksum", 0) == len(bad), (c["id"], d.errors)
    idx = [int(v) for k, v in c["expected"].items() if k in INDEX and k not in bad]
    if idx:
        # the total import is the sum of their index values (02E: Wh)
        assert r["energy_import_wh"] == sum(idx), (c["id"], r["energy_import_wh"])
        n += 1
    return n


def test_their_frames_give_their_values():
    fx = _load()
    n = 0
    for c in fx["frames"]:
        n += _check_frame(c)
    projects = set(c["repo"] for c in fx["frames"])
    assert len(projects) >= 2, projects
    # 23 raw (24 asserted, one with their bad checksum) + 14 typed + 2 sums: the count shows no case was silently passed over
    assert n == 23 + 14 + 2, n


def test_their_checksum_verdicts():
    for c in _load()["checksums"]:
        d, rs = decode(_frame([c["line"]]))
        ok = bool(rs) and c["line"].split(" ")[0] in rs[0]["fields"]
        ours = "valid" if ok else "invalid"
        if c["ours_differs"]:
            # a deliberate difference, explained in the fixture and SOURCES.md
            assert ours != c["their_verdict"], c["id"]
        else:
            assert ours == c["their_verdict"], (c["id"], ours, d.errors)
