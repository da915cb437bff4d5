# Power cut at every flash operation of a long session (tools/powercut.py): nothing
# acknowledged comes back, nothing committed is lost or altered, on both Pythons.
# CPython sweeps the full-size session; MicroPython (slower) a shorter one that still
# wraps the sector ring at least twice.
from tools import powercut
from tests.fw.util import is_micropython


def ok(res):
    assert res["cut_points"] >= res["flash_ops"] > 0, res
    assert res["sector_wraps"] >= 2, res
    assert res["lost"] == 0 and res["corrupt"] == 0, res
    assert res["duplicated_after_ack"] == 0 and res["errors"] == 0, res
    assert res["torn_erases"] > 0 and res["torn_writes"] > 0, res


def test_every_cut_point_of_a_session_with_acks():
    if is_micropython():
        res = powercut.sweep(sectors=5, sector_size=256, appends=200, seed=2)
    else:
        res = powercut.sweep()          # the `python -m tools.powercut` session
    assert res["committed"] >= 200 and res["dropped"] == 0
    ok(res)


def test_every_cut_point_with_drop_oldest():
    if is_micropython():
        res = powercut.sweep(sectors=5, sector_size=256, appends=200, seed=3, drop=True)
    else:
        res = powercut.sweep(drop=True)
    assert res["dropped"] > 0      # the session overflows the ring: drops happen, counted
    ok(res)


def test_clean_cuts_too():
    # power lost just before op k (nothing of it done) as well as during it
    # (MicroPython: a shorter session, the sweep costs a full store replay per cut)
    n = 120 if is_micropython() else 200
    res = powercut.sweep(sectors=5, sector_size=256, appends=n, seed=4, clean=True)
    assert res["cut_points"] == 2 * res["flash_ops"]
    ok(res)


def test_the_sweep_sees_a_store_that_forgets_acks():
    # the checker is not blind: a store whose ack is not written fails it
    from firmware.store import log
    orig = log.Store._write_meta
    log.Store._write_meta = lambda self, limit=None: True
    try:
        res = powercut.sweep(sectors=5, sector_size=256, appends=120, seed=5, step=7)
    finally:
        log.Store._write_meta = orig
    assert res["duplicated_after_ack"] > 0
