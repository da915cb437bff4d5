# Other TIC decoders' own test cases, value by value: the frames and the values the
# tests of Enedis-OSS/TIC2WebSocket (Apache-2.0), esciara/pyteleinfo (BSD-2-Clause),
# angristan/teleinfo2mqtt-rs (MIT) and hekmon/linkytic (MIT, also its STGE decoding) assert for them, copied as data into
# tests/fixtures/other-projects/tic_decoders.json and tic2websocket/ (source repository,
# path, commit and licence per case; SOURCES.md there). Every value they expect is
# checked against our raw field AND, where we type it, against our typed value
# (Enedis-NOI-CPT_02E: index in Wh, IINST/ISOUSC in A, PAPP in VA; Enedis-NOI-CPT_54E:
# EAST/EASF/EASD in Wh, IRMS1 A, URMS1 V, SINSTS VA, PREF kVA, DATE horodate). A group
# their test marks invalid, or whose checksum is wrong in THEIR data, is listed under
# "drop" with the reason and must be dropped by us, never read.
# Runs on CPython and on the MicroPython unix port.
import json

from tests.fw.util import ROOT
from tests.fw.tic_helpers import decode, frame, grp_s

# values compared per case, counted by hand from the fixture: raw fields + typed values
# (+ DATE as timestamp/dst) + the total import
COMPARED = {
    "pyteleinfo_valid_frame": 11 + 7 + 1,
    "pyteleinfo_decode_from_list": 3 + 2,
    "teleinfo2mqtt_rs_base": 9 + 5 + 1,          # ADCO dropped: their checksum is wrong
    "tic2websocket_historic": 9 + 6 + 1,
    "tic2websocket_standard": 38 + 21 + 1 + 1,
    "tic2websocket_standard_pcoup_invalid": 37 + 19 + 1 + 1,  # PCOUP dropped; IRMS1/URMS1
    #                                                  typed withheld (WHOLE_ONLY)
    "linkytic_standard_protocol": 2 + 2 + 1,
    "linkytic_historic_protocol": 2 + 2,         # no OPTARIF: no total (02E)
}
FIX = ROOT + "/tests/fixtures/other-projects/tic_decoders.json"

# label -> (our reading key, index in a per-phase list or None)
TYPED = {"ADCO": ("meter_id", None), "ISOUSC": ("subscribed_current_a", None),
         "PTEC": ("tariff_period", None), "IINST": ("current_a", 0),
         "PAPP": ("apparent_power_va", None),
         "ADSC": ("meter_id", None), "IRMS1": ("current_a", 0), "URMS1": ("voltage_v", 0),
         "SINSTS": ("apparent_power_va", None), "PREF": ("subscribed_power_kva", None),
         "NTARF": ("tariff_index", None)}
# index labels (Wh): read into registers
INDEX = ("BASE", "HCHC", "HCHP", "EJPHN", "EJPHPM", "BBRHCJB", "BBRHPJB", "BBRHCJW",
         "BBRHPJW", "BBRHCJR", "BBRHPJR", "EAST", "EASD01", "EASD02", "EASD03", "EASD04",
         "EASF01", "EASF02", "EASF03", "EASF04", "EASF05", "EASF06", "EASF07", "EASF08",
         "EASF09", "EASF10")
# free text (54E 6.2.3): taken only once the same text came in two frames in a row
# (firmware/reading/tic.py header), so it may be missing from the first reading
CONFIRM = ("NGTF", "LTARF", "MSG1", "MSG2")
# per-phase lists: only given when the phase count is known, i.e. the frame came whole
# with nothing rejected (tic.py header); a frame with a dropped group gives None
WHOLE_ONLY = ("current_a", "voltage_v")


def _load():
    with open(FIX) as f:
        return json.load(f)


def _frame(c):
    if "frame_file" in c:
        with open(ROOT + "/tests/fixtures/other-projects/" + c["frame_file"], "rb") as f:
            return f.read()
    out = b"\x02"
    for ln in c["lines"]:
        out += b"\n" + ln.encode() + b"\r"
    return out + b"\x03"


def _line_frame(line):
    return b"\x02\n" + line.encode() + b"\r\x03"


def _typed(want_raw, ours):
    # their raw text in the type we give the value
    if isinstance(ours, int) and not isinstance(ours, bool):
        return int(want_raw)
    return want_raw


def _raw(label, want):
    # TIC2WebSocket keeps, as DATE's value, the HT that ends its empty data field
    # (54E 6.2.3: DATE has a horodate and no value); ours is the horodate alone
    if label == "DATE":
        return want.rstrip("\t")
    return want


def _check_reading(c, r, rejected, first):
    drop = c["drop"]
    n = 0
    for label, want in c["expected"].items():
        if label in drop:
            assert label not in r["fields"], (c["id"], label)
            key = TYPED.get(label, (None,))[0]
            if key is not None:
                assert r[key] is None, (c["id"], label, r[key])
            continue
        if first and label in CONFIRM and label not in r["fields"]:
            continue
        assert r["fields"][label] == _raw(label, want), (c["id"], label, r["fields"][label], want)
        n += 1
        if label in INDEX:
            assert r["registers"][label] == int(want), (c["id"], label)
            n += 1
        elif label in TYPED:
            key, i = TYPED[label]
            if r[key] is None and key in WHOLE_ONLY and rejected:
                continue
            got = r[key] if i is None else r[key][i]
            assert got == _typed(want, got), (c["id"], label, got, want)
            n += 1
        elif label == "DATE":
            h = want
            assert r["timestamp"] == "20%s-%s-%sT%s:%s:%s" % (
                h[1:3], h[3:5], h[5:7], h[7:9], h[9:11], h[11:13]), (c["id"], r["timestamp"])
            assert r["dst"] == (h[0] in "Ee"), c["id"]  # 54E: E = summer time
            n += 1
    # nothing beyond their groups
    want_labels = [k for k in c["expected"] if k not in drop]
    if not first:
        assert sorted(r["fields"]) == sorted(want_labels), c["id"]
    else:
        assert all(k in c["expected"] and k not in drop for k in r["fields"]), c["id"]
    total = [k for k in ("EAST", ) if k in want_labels]
    idx = [int(v) for k, v in c["expected"].items()
           if k in INDEX and k not in drop and (not total or k == "EAST")]
    if idx and (total or "OPTARIF" in want_labels):
        # total import: EAST (54E) in standard mode; in historic mode the sum of the
        # indexes of the tariff option OPTARIF names (02E), so only with OPTARIF
        assert r["energy_import_wh"] == sum(idx), (c["id"], r["energy_import_wh"])
        n += 1
    elif idx:
        assert r["energy_import_wh"] is None, (c["id"], r["energy_import_wh"])
    return n


def _check_frame(c):
    # the frame twice in a row, as a meter repeats it: every value of the first
    # reading must already be theirs, the second must hold them all
    data = _frame(c)
    d, rs = decode(data + data)
    assert len(rs) == 2, (c["id"], rs)
    for r in rs:
        assert r["protocol"] == ("tic-standard" if "ADSC" in c["expected"] else "tic-historic")
    # exactly their dropped groups counted as errors, once per frame
    assert d.errors.get("checksum", 0) == 2 * len(c["drop"]), (c["id"], d.errors)
    _check_reading(c, rs[0], bool(c["drop"]), True)
    return _check_reading(c, rs[1], bool(c["drop"]), False)


def test_their_frames_give_their_values():
    fx = _load()
    n = {}
    for c in fx["frames"]:
        n[c["id"]] = _check_frame(c)
    projects = set(c["repo"] for c in fx["frames"])
    assert len(projects) >= 3, projects
    # values compared per case (raw + typed + total): shows no case was passed over
    assert n == COMPARED, n


def test_their_checksum_verdicts():
    for c in _load()["checksums"]:
        d, rs = decode(_line_frame(c["line"]))
        label = c["line"].split("\t")[0].split(" ")[0]
        ok = bool(rs) and label in rs[0]["fields"]
        ours = "valid" if ok else "invalid"
        if c["ours_differs"]:
            # a deliberate difference, explained in the fixture and SOURCES.md
            assert ours != c["their_verdict"], c["id"]
        else:
            assert ours == c["their_verdict"], (c["id"], ours, d.errors)


def test_their_mode_detection():
    # TIC2WebSocket's mode detector: HISTORIC / STANDARD / none (no reading from us)
    proto = {"HISTORIC": "tic-historic", "STANDARD": "tic-standard"}
    for c in _load()["modes"]:
        _, rs = decode(c["data"].encode())
        got = [r["protocol"] for r in rs]
        assert got == ([proto[c["their_mode"]]] if c["their_mode"] else []), (c["id"], got)


# linkytic's STGE fields (Enedis-NOI-CPT_54E 6.2.3.14) -> our "stge" keys. Their tariff
# index tables map subscript i to "Index i+1", ours is the index number itself; their
# Tempo table is 0 none, 1 Bleu, 2 Blanc, 3 Rouge, ours the TIC abbreviations.
STGE_KEYS = {"DRY_CONTACT": "dry_contact_open", "TRIP_UNIT": "cutoff_code",
             "TERMINAL_COVER": "cover_open", "OVERVOLTAGE": "overvoltage",
             "POWER_OVER_REF": "over_reference_power", "PRODUCER": "producer",
             "INJECTING": "export_direction", "PROVIDER_INDEX": "supplier_index",
             "DISTRIBUTOR_INDEX": "distributor_index", "RTC_DEGRADED": "clock_degraded",
             "TIC_STD": "tic_standard", "EURIDIS": "euridis", "CPL_STATUS": "cpl_status",
             "CPL_SYNC": "cpl_synchronised", "COLOR_TODAY": "tempo_today",
             "COLOR_NEXT_DAY": "tempo_tomorrow", "MOBILE_PEAK_NOTICE": "mobile_peak_notice",
             "MOBILE_PEAK": "mobile_peak"}
TEMPO = (None, "BLEU", "BLAN", "ROUG")


def _stge_want(name, v):
    if name in ("PROVIDER_INDEX", "DISTRIBUTOR_INDEX"):
        return v + 1
    if name.startswith("COLOR_"):
        return TEMPO[v]
    if name in ("TRIP_UNIT", "EURIDIS", "CPL_STATUS") or name.startswith("MOBILE_PEAK"):
        return v
    return bool(v)


def test_their_stge_fields():
    n = 0
    for c in _load()["stge"]:
        # through the decoder, in a standard frame as a meter sends STGE
        _, rs = decode(frame([grp_s(b"ADSC", b"001122334455"), grp_s(b"STGE", c["stge"].encode())]))
        assert len(rs) == 1 and rs[0]["fields"]["STGE"] == c["stge"], c["id"]
        st = rs[0]["stge"]
        for name, v in c["expected"].items():
            assert st[STGE_KEYS[name]] == _stge_want(name, v), (c["id"], name, st[STGE_KEYS[name]], v)
            n += 1
    assert n == 3 * 18, n
