# A DSMR replay on the device path (keep_fields off: no raw lines in the reading)
# stores its records stamped with the meter's own clock (t_src "meter"), not with
# elapsed time: the typed timestamp + dst keys carry the clock without "fields".
import calendar

from tests.fw.util import corpus_path, corpus


def test_dsmr_replay_stores_the_meters_time(tmp_path):
    from firmware.store import record as rec
    from tools import replay
    stamps = []
    orig = rec.encode

    def encode(r, t, src, prev=None):
        stamps.append((t, src))
        return orig(r, t, src, prev)

    seen = []
    rec.encode = encode
    try:
        cfg = replay.load_config(None)
        assert not cfg.get("keep_fields")
        rep, rows = replay.run(corpus_path("dsmr/nl_v5_basjes_iskra_am550.txt"), cfg,
                               fs_root=str(tmp_path), on_reading=seen.append)
    finally:
        rec.encode = orig
    assert rows and stamps and len(stamps) == rep["readings_recorded"]
    assert all("fields" not in r for r in seen)
    # the capture's clock line, read here by hand: 0-0:1.0.0(190324150541W) is
    # 2019-03-24 15:05:41 winter time (CET = UTC+1)
    assert b"0-0:1.0.0(190324150541W)" in corpus("dsmr/nl_v5_basjes_iskra_am550.txt")
    want = calendar.timegm((2019, 3, 24, 14, 5, 41, 0, 0, 0))
    # the harness repeats the one telegram: every record carries the meter's time
    assert set(stamps) == {(want, "meter")}, stamps[:3]
