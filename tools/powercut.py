# Power-cut sweep of the record store on the fault-injecting flash model.
#
#   python -m tools.powercut --json [--sectors 5 --sector-size 512 --appends 400 --seed 1]
#                                   [--drop] [--clean] [--step N]
#   micropython -m tools.powercut --json          (MICROPYPATH=<repo>:<repo>/.mplib)
#
# --drop: the store configured to drop the oldest, acks rare so the ring overflows (drops
# must then all be counted in `dropped`). --clean: also cut *before* each op. Exit status
# 0 when lost == corrupt == duplicated_after_ack == errors == 0 with >= 2 sector wraps.
#
# A long scripted session (appends of readings and relay events, peeks, acks, reboots)
# runs once without faults to count its flash operations K (and must wrap the sector ring
# at least twice). Then for every k in 0..K-1 it runs again from a blank flash with power
# cut at operation k (the write torn / the erase left half done; with --clean also a
# cut before op k), re-opens the store as after a reboot and compares with a model of
# what the caller was told:
#   lost                  a record whose append() returned, not acknowledged, missing
#   corrupt               a record returned with content that was never appended at that seq
#   duplicated_after_ack  a record returned again after an ack() covering it returned
# The store must also keep working after the cut: three more appends must get fresh seqs
# and survive another re-open (failures counted in "errors").
import sys

from firmware.port import PowerLost
from firmware.store import record
from firmware.store.log import Store
from tools.flashsim import FaultFlash
from tools.rng import Xorshift32


def Rng(seed):
    return Xorshift32(seed * 747796405 + 2891336453)


def make_script(appends, seed, ack_every=8):
    # -> list of ops: ("a", reading, t, t_src) | ("r", relay args) | ("p", n) |
    #    ("k", how) ack after a peek | ("b",) reboot
    rng = Rng(seed)
    ops = []
    e_imp = 12345678
    e_exp = 4321
    t = 1767225600
    for i in range(appends):
        t += 5
        e_imp += rng.below(25)
        if rng.below(4) == 0:
            e_exp += rng.below(5)
        r = {"energy_import_wh": e_imp, "apparent_power_va": 200 + rng.below(9000),
             "tariff_period": ("HC..", "HP..")[(i // 50) & 1]}
        if rng.below(3) == 0:
            r["energy_export_wh"] = e_exp
            r["tariff_index"] = 1 + rng.below(2)
        w = rng.below(10)
        if w < 6:
            ops.append(("a", r, t, "meter"))
        elif w < 8:
            ops.append(("a", r, t, "ntp"))
        elif w < 9:
            ops.append(("a", r, 5, "elapsed"))     # seconds since the previous reading
        else:
            ops.append(("a", r, None, "elapsed"))  # no time known: none recorded
        if rng.below(40) == 0:
            ops.append(("r", rng.below(2), ("relay_set", "relay_reset")[rng.below(2)],
                        ("threshold", "restore", "tempo_red", "custom-rule")[rng.below(4)],
                        rng.below(12000), t))
        if rng.below(ack_every) == 0:
            ops.append(("p", 1 + rng.below(40)))
            ops.append(("k", rng.below(4)))   # 0, 3: all peeked, 1: half, 2: none
        if rng.below(45) == 0:
            ops.append(("b",))
    ops.append(("p", 1000))
    ops.append(("k", 0))
    return ops


class Model:
    def __init__(self):
        self.committed = {}     # seq -> canonical bytes (what peek must give back)
        self.acked = 0          # highest ack() that returned
        self.inflight = None    # ("a", seq_guess, bytes) or ("k", upto) while the op runs
        self.last_seq = 0
        self.peek_errors = 0
        self.delivered = {}     # seqs peeked then covered by an ack() that returned


def run(flash, script, model, cut=None, tear=True, drop=False, max_backlog=None):
    # max_backlog: the uplink catches up (peeks and acks everything) once the backlog
    # passes it, so a session without drop_oldest never fills the store
    if cut is not None:
        flash.arm_cut(cut, tear)
    store = Store(flash, drop_oldest=drop)
    prev_seq = None
    peeked = []
    for op in script:
        kind = op[0]
        if kind == "b":
            store = Store(flash, drop_oldest=drop)
            prev_seq = None
            continue
        if kind == "a":
            r, t, src = op[1], op[2], op[3]
            if src == "elapsed" and t is not None:
                # measured from the previous reading appended (none after a reboot: the
                # app cannot measure from a reading it does not know)
                t = (prev_seq, t) if prev_seq is not None else None
            d = record.encode(r, t, src)[1]
            guess = model.last_seq + 1
            exp = record.pack(d, None, guess)
            model.inflight = ("a", guess, exp)
            seq = store.add_reading(r, op[2], src)     # the app's way in
            model.inflight = None
            if seq is None:
                raise AssertionError("append refused (store full?)")
            if seq != guess:
                exp = record.pack(d, None, seq)
            model.committed[seq] = exp
            model.last_seq = seq
            prev_seq = seq
            if max_backlog is not None and store.count > max_backlog:
                # the uplink catches up: everything peeked and acknowledged
                peeked = store.peek(1 << 30)
                upto = peeked[-1][0]
                model.inflight = ("k", upto, [q for q, _ in peeked])
                store.ack(upto)
                model.inflight = None
                model.acked = upto
                for q, _ in peeked:
                    model.delivered[q] = 1
                peeked = []
        elif kind == "r":
            data = record.encode_relay(op[1], op[2], op[3], op[4], op[5], "meter")[0]
            d = record.decode(data)
            guess = model.last_seq + 1
            model.inflight = ("a", guess, record.pack(d, None, guess))
            seq = store.append(data)
            model.inflight = None
            model.committed[seq] = record.pack(d, None, seq)
            model.last_seq = seq
        elif kind == "p":
            catch_up = max_backlog is not None and store.count > max_backlog
            peeked = store.peek(1 << 30 if catch_up else op[1])
            for seq, data in peeked:
                if seq <= model.acked or model.committed.get(seq) != data:
                    model.peek_errors += 1
        elif kind == "k":
            if peeked and (op[1] != 2 or (max_backlog is not None and store.count > max_backlog)):
                upto = peeked[(len(peeked) - 1) // 2][0] if op[1] == 1 else peeked[-1][0]
                model.inflight = ("k", upto, [q for q, _ in peeked if q <= upto])
                store.ack(upto)
                model.inflight = None
                if upto > model.acked:
                    model.acked = upto
                for seq, _ in peeked:
                    if seq <= upto:
                        model.delivered[seq] = 1
            peeked = []
    flash.disarm()
    return store


def check(flash, model, drop=False):
    # -> dict of counts after a re-open
    res = {"lost": 0, "corrupt": 0, "duplicated_after_ack": 0, "errors": 0}
    try:
        store = Store(flash, drop_oldest=drop)
        got = store.peek(1 << 30)
    except Exception as e:  # a store that cannot re-open has lost everything
        sys.stderr.write("re-open failed: %r\n" % (e,))
        res["errors"] += 1
        res["lost"] += len([s for s in model.committed if s > model.acked])
        return res
    inf = model.inflight
    present = {}
    for seq, data in got:
        present[seq] = data
        if seq <= model.acked:
            res["duplicated_after_ack"] += 1
            continue
        exp = model.committed.get(seq)
        if exp is None and inf is not None and inf[0] == "a" and seq == inf[1]:
            exp = inf[2]
        if exp != data:
            res["corrupt"] += 1
    floor = model.acked
    if inf is not None and inf[0] == "k" and store.ack_seq == inf[1]:
        floor = inf[1]     # the ack in flight made it: allowed
        for q in inf[2]:
            model.delivered[q] = 1
    elif drop and store.ack_seq > model.acked:
        floor = store.ack_seq   # the oldest were dropped: counted below
    elif store.ack_seq != model.acked:
        res["errors"] += 1
    missing = 0
    for seq in model.committed:
        if seq not in present and seq not in model.delivered:
            if seq > floor:
                res["lost"] += 1
            else:
                missing += 1
    if drop:
        # every record that went away unacknowledged is in the dropped count
        if store.dropped < missing:
            res["lost"] += missing - store.dropped
    elif store.dropped or store.aggregated:
        res["errors"] += 1
    # the store keeps working: fresh seqs, kept across another re-open
    top = 0
    for seq in present:
        if seq > top:
            top = seq
    if model.last_seq > top:
        top = model.last_seq
    try:
        new = []
        for i in range(3):
            data = record.encode({"energy_import_wh": 99000000 + i}, 1800000000 + i, "ntp")[0]
            seq = store.append(data)
            if seq is None or seq <= top or seq in new:
                res["errors"] += 1
            new.append(seq)
        again = Store(flash, drop_oldest=drop).peek(1 << 30)
        seqs = [s for s, _ in again]
        for s in new:
            if s not in seqs:
                res["errors"] += 1
        if seqs != sorted(seqs):
            res["errors"] += 1
    except Exception as e:
        sys.stderr.write("after-cut append failed: %r\n" % (e,))
        res["errors"] += 1
    return res


def sweep(sectors=5, sector_size=512, appends=400, seed=1, clean=False, step=1, tear_seed=7,
          drop=False):
    script = make_script(appends, seed, 40 if drop else 8)
    f = FaultFlash(sectors=sectors, sector_size=sector_size, seed=tear_seed)
    m = Model()
    mb = None if drop else max(8, (sectors - 4) * (sector_size - 54) // 12)
    st = run(f, script, m, drop=drop, max_backlog=mb)
    total_ops = f.ops
    wraps = f.erases / sectors
    out = {"cut_points": 0, "committed": len(m.committed), "lost": 0, "corrupt": 0,
           "duplicated_after_ack": 0, "errors": m.peek_errors, "flash_ops": total_ops,
           "sector_wraps": wraps, "torn_writes": 0, "torn_erases": 0,
           "dropped": st.dropped, "drop_oldest": drop}
    if m.peek_errors:
        sys.stderr.write("uncut session: %d peek mismatches\n" % m.peek_errors)
    modes = (True, False) if clean else (True,)
    k = 0
    while k < total_ops:
        for tear in modes:
            f = FaultFlash(sectors=sectors, sector_size=sector_size, seed=tear_seed + k)
            m = Model()
            try:
                run(f, script, m, cut=k, tear=tear, drop=drop, max_backlog=mb)
                out["errors"] += 1       # the cut never fired
                continue
            except PowerLost:
                pass
            if tear:
                out["torn_writes" if f.last_cut == "write" else "torn_erases"] += 1
            r = check(f, m, drop)
            out["cut_points"] += 1
            for key in ("lost", "corrupt", "duplicated_after_ack", "errors"):
                out[key] += r[key]
        k += step
    return out


def main(argv):
    args = {"--sectors": 5, "--sector-size": 512, "--appends": 400, "--seed": 1, "--step": 1}
    as_json = "--json" in argv
    clean = "--clean" in argv
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in args:
            args[a] = int(argv[i + 1])
            i += 2
            continue
        i += 1
    res = sweep(args["--sectors"], args["--sector-size"], args["--appends"], args["--seed"],
                clean, args["--step"], drop="--drop" in argv)
    if as_json:
        import json
        print(json.dumps(res))
    else:
        for k in sorted(res):
            print("%-22s %s" % (k, res[k]))
    ok = res["lost"] == 0 and res["corrupt"] == 0 and res["duplicated_after_ack"] == 0 \
        and res["errors"] == 0 and res["sector_wraps"] >= 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
