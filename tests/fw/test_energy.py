# The energy manager (firmware/power/energy.py) driven through the situations a
# meter-powered dongle meets: steady 130 mW, weak meters (90 / 60 mW), cold start
# after a full discharge, brown-out, interrupted upload, server outage and backlog
# drain, the relay/upload reserve, RTC memory across deep sleep, the ESP32-C3's light
# sleep and frame-aligned wake-ups.
#
# The board here is a small integer model of ours (hardware/power: 2.5 F, TL431 clamp
# 5.24 V, supervisor at 4.5 V on / 4.15 V off; capacitor energy in uJ, constant input
# power) so the same test runs on CPython and MicroPython. What the chip draws and how
# long Wi-Fi, TLS and a request take come from the datasheet figures in the
# simulator's parameter file (tools/simparams.py CHIPS, I_LDO_Q_A), never from the
# firmware's own cost table (firmware/power/costs.py): the tests check that the plan's
# figures cover the chip's. The full simulator (tools/sim.py) drives the real app loop;
# tests/host/test_sim.py checks it.
from firmware.power.energy import EnergyManager, _diff
from firmware.power import costs
from tests.fw.util import Rng, is_micropython
from tools import simparams as SP

V_ON = int(SP.BOARDS["ltr"]["V_ON"] * 1000)
V_OFF = int(SP.BOARDS["ltr"]["V_OFF"] * 1000)
# the highest cut-off a board within tolerance may have (hardware/README: +-90 mV)
V_OFF_MAX = int(SP.BOARDS["ltr-low"]["V_OFF"] * 1000 + 0.5)
CAP_MF = int(SP.BOARDS["ltr"]["CAP_F"] * 1000)
V_CLAMP = int(SP.BOARDS["ltr"]["V_CLAMP"] * 1000)


def ua(chip, state):
    # what the capacitor supplies in this chip state: the chip's datasheet current at the
    # regulator output plus the MCP1825's quiescent current (linear regulator)
    return int(SP.CHIPS[chip]["I"][state] * 1e6 + SP.I_LDO_Q_A * 1e6 + 0.5)


def ms_max(chip, what):
    # the longest a Wi-Fi join / TLS handshake / request takes on this chip (simparams)
    return int(SP.CHIPS[chip][what][1] * 1000)


def ms_min(chip, what):
    return int(SP.CHIPS[chip][what][0] * 1000)


def isqrt(n):
    if n <= 0:
        return 0
    x = n
    y = (x + 1) // 2
    while y < x:
        x = y
        y = (x + n // x) // 2
    return x


class Board:
    # capacitor + supervisor + chip currents; energy in uJ, time in ms, current in uA
    def __init__(self, power_mw, v_mv=V_ON, cap_mf=CAP_MF, seed=1, vmax=V_CLAMP):
        self.cap = cap_mf
        self.e = cap_mf * v_mv * v_mv // 2000
        self.p = power_mw
        self.vmax = vmax
        self.t = 0
        self.on = v_mv >= V_ON
        self.cuts = 0
        self.vmin = v_mv
        self.rng = Rng(seed)

    def v(self):
        return isqrt(self.e * 2000 // self.cap)

    def run(self, ua, ms):
        # ua drawn at the capacitor voltage for ms, input power meanwhile; 10 ms steps
        while ms > 0:
            step = 10 if ms > 10 else ms
            v = self.v()
            self.e += self.p * step - (ua * v // 1000) * step // 1000
            emax = self.cap * self.vmax * self.vmax // 2000
            if self.e > emax:
                self.e = emax
            self.t += step
            ms -= step
            v = self.v()
            if v < self.vmin:
                self.vmin = v
            if self.on and v < V_OFF:
                self.on = False
                self.cuts += 1
                raise PowerCut()

    def charge_to_on(self):
        # regulator off: only the supervisor's microamps
        while self.v() < V_ON:
            self.e += self.p * 100
            self.t += 100
        self.on = True

    def between(self, lo, hi):
        return lo + self.rng.below(hi - lo + 1)


class PowerCut(Exception):
    pass


class Rig:
    # drives an EnergyManager like the app loop does; counts readings from measured
    # to acknowledged. The chip's currents and durations: tools/simparams.py
    def __init__(self, power_mw, v_mv=V_ON, seed=1, server=None, em=None, worst=False,
                 params=None, chip="esp8266", listen=(2300, 4600)):
        self.b = Board(power_mw, v_mv, seed=seed)
        self.params = params     # what the app passes at every boot (costs.params_for)
        self.em = em or EnergyManager(params)
        self.server = server or (lambda t: True)
        self.chip = chip
        self.listen = listen     # (lo, hi) ms a read listens
        self.pending = []       # measurement times of stored, unacknowledged readings
        self.delivered = 0
        self.latency = []
        self.reads = []
        self.uploads = []
        self.actions = {}
        self.worst = worst
        self.deep = 0

    def step(self):
        b = self.b
        em = self.em
        c = self.chip
        name, arg = em.next_action(b.t, b.v(), len(self.pending))
        self.actions[name] = self.actions.get(name, 0) + 1
        if name == "read":
            ms = b.between(*self.listen) if not self.worst else arg
            b.run(ua(c, "listen"), ms)
            b.run(ua(c, "flash"), 20)            # the record's flash write
            self.pending.append(b.t)
            self.reads.append(b.t)
            em.done("read", b.t, True)
        elif name == "upload":
            ok = self.upload(arg)
            em.done("upload", b.t, ok)
        elif name == "sleep":
            assert 0 < arg <= 3600000
            b.run(ua(c, "sleep"), arg)
            em.done("sleep", b.t, True)
        elif name == "deep_sleep":
            data = em.dump()
            assert len(data) <= 64
            b.run(ua(c, "deep_sleep"), arg)
            self.em = EnergyManager(self.params)
            assert self.em.load(data)
            b.run(ua(c, "boot"), ms_max(c, "T_BOOT"))
            self.deep += 1
        else:
            raise AssertionError("unknown action " + name)
        return name, arg

    def upload(self, n):
        b = self.b
        em = self.em
        c = self.chip
        w = self.worst
        assert em.can_afford("wifi_join", b.v())
        b.run(ua(c, "wifi_join"), b.between(ms_min(c, "T_WIFI_JOIN"), ms_max(c, "T_WIFI_JOIN"))
              if not w else em.p["join_ms"])
        if em.p["tls_ms"]:
            if not em.can_afford("tls", b.v()):
                return False
            b.run(ua(c, "tls"), b.between(ms_min(c, "T_TLS"), ms_max(c, "T_TLS"))
                  if not w else ms_max(c, "T_TLS"))
        if not self.server(b.t):
            return False
        sent = 0
        while self.pending and sent < n:
            if sent and not em.can_afford("batch", b.v()):
                break
            b.run(ua(c, "tx"), b.between(ms_min(c, "T_TX"), ms_max(c, "T_TX"))
                  if not w else ms_max(c, "T_TX"))
            k = min(60, n - sent, len(self.pending))
            for t in self.pending[:k]:
                self.latency.append(b.t - t)
            self.pending = self.pending[k:]
            sent += k
            self.delivered += k
        self.uploads.append(b.t)
        return True

    def run_for(self, ms):
        end = self.b.t + ms
        while self.b.t < end:
            self.step()

    def read_interval(self, after=0):
        r = [t for t in self.reads if t >= after]
        if len(r) < 2:
            return None
        return (r[-1] - r[0]) // (len(r) - 1)

    def upload_interval(self, after=0):
        u = [t for t in self.uploads if t >= after]
        if len(u) < 2:
            return None
        return (u[-1] - u[0]) // (len(u) - 1)


def minutes(m):
    return m * 60000


def hours_scale(full, mp):
    return mp if is_micropython() else full


def test_steady_130mw_five_second_readings_no_cut():
    r = Rig(130)
    r.run_for(minutes(hours_scale(60, 20)))
    assert r.b.cuts == 0
    # never near the cut-off of a board at the high end of its tolerance
    assert r.b.vmin >= V_OFF_MAX + 50, r.b.vmin
    # after the first minutes (learning, filling the capacitor): readings every <= 5 s
    ri = r.read_interval(after=minutes(3))
    assert ri is not None and ri <= 5000, ri
    ui = r.upload_interval(after=minutes(3))
    # a mean latency <= 60 s (issue 6) needs an upload at least every ~2 minutes
    assert ui is not None and ui <= 120000, ui
    # every reading older than one upload interval has been acknowledged
    assert all(t > r.b.t - 2 * ui for t in r.pending)
    lat = sum(r.latency) // len(r.latency)
    assert lat <= 60000, lat


def test_learns_incoming_power_from_the_slope():
    for mw in (130, 60):
        r = Rig(mw, seed=mw)
        # cold start: the manager assumes less than the meter's minimum (130 mW,
        # Enedis-NOI-CPT_54E) brings through the rectifier
        assert 0 < r.em.p_in() < int(SP.P_IN_W * 1000 * SP.BOARDS["ltr"]["RECTIFIER_EFF"])
        r.run_for(minutes(10))
        est = r.em.p_in()
        # the ADC-free model sees exact voltages; the estimate settles within 15 %
        assert abs(est - mw) * 100 <= 15 * mw, (mw, est)


def test_low_power_degrades_gracefully_nothing_lost():
    res = {}
    for mw in (130, 90, 60):
        r = Rig(mw, seed=7)
        r.run_for(minutes(hours_scale(45, 20)))
        assert r.b.cuts == 0, mw
        ri = r.read_interval(after=minutes(5))
        ui = r.upload_interval(after=minutes(5))
        assert ri is not None and ui is not None, mw
        # nothing dropped: every reading is delivered or waiting in the store, and
        # the waiting ones are recent (the backlog does not grow without bound)
        assert r.delivered + len(r.pending) == len(r.reads)
        assert len(r.pending) * ri <= 3 * ui + ri, (mw, len(r.pending), ri, ui)
        res[mw] = (ri, ui)
    # less power -> coarser (never finer) resolution and rarer uploads
    assert res[130][0] <= res[90][0] <= res[60][0], res
    assert res[60][0] > res[130][0], res
    assert res[130][1] <= res[60][1], res


def test_cold_start_after_full_discharge():
    # the capacitor was empty: the supervisor connects at 4.5 V with the manager in its
    # default state; it must read first and wait for the energy of a worst-case upload
    b = Board(130, v_mv=0)
    b.charge_to_on()
    assert b.v() >= V_ON
    em = EnergyManager()
    assert not em.load(b"")
    name, arg = em.next_action(b.t, b.v(), 0)
    assert name == "read" and arg > 0
    assert not em.can_afford("wifi_join", b.v())
    r = Rig(130, em=em)
    r.b = b
    first_upload_v = None
    while r.b.t < b.t + minutes(5) and not r.uploads:
        v = r.b.v()
        name, _ = r.step()
        if name == "upload":
            first_upload_v = v
    assert r.uploads, "no upload within 5 minutes of a cold start at 130 mW"
    assert first_upload_v >= em.v_for(em.worst("upload")), first_upload_v
    assert r.b.cuts == 0


def test_worst_case_upload_started_at_threshold_finishes_without_input():
    # the reserve: an upload is started only when its worst case (join timeout, slowest
    # handshake, longest publish) fits above the floor, even if the meter stopped
    # supplying power at that very moment. The worst case here is the chip's (datasheet
    # currents, slowest durations in tools/simparams.py; the join lasts as long as the
    # app's timeout, em.p["join_ms"]), and the relay pulse after it as the coil draws it.
    for chip in ("esp8266", "esp32c3"):
        em = EnergyManager(costs.params_for({"https_url": "https://h/x"}, chip)
                           if chip != "esp8266" else None)
        v = V_ON
        while not em.can_afford("wifi_join", v):
            v += 5
        steps = [(ua(chip, "wifi_join"), em.p["join_ms"]),
                 (ua(chip, "tls"), ms_max(chip, "T_TLS")),
                 (ua(chip, "tx"), ms_max(chip, "T_TX")),
                 (ua(chip, "active") + int(SP.RELAY_A * 1e6), 50)]   # driver.py: <= 50 ms
        b = Board(0, v_mv=v)
        for i, (cur, ms) in enumerate(steps):
            b.run(cur, ms)
            if i == 0:
                # after the slowest join the plan still holds the handshake + a batch
                assert em.can_afford("tls", b.v()), (chip, b.v())
            if i == 2:
                # and after the whole window, the relay pulse
                assert em.can_afford("relay_pulse", b.v()), (chip, b.v())
        assert b.cuts == 0
        # hand calculation: E = C V^2 / 2 minus V x I x t of each step at the starting
        # voltage (an upper bound of what the steps draw: V only falls)
        e = CAP_MF * v * v // 2000
        for cur, ms in steps:
            e -= v * cur // 1000 * ms // 1000
        v_hand = isqrt(e * 2000 // CAP_MF)
        assert b.v() >= v_hand, (chip, b.v(), v_hand)
        # above the cut-off of a board at the high end of its tolerance
        assert v_hand >= V_OFF_MAX, (chip, v_hand)


def test_relay_reserve_kept_below_every_other_action():
    em = EnergyManager()
    f = em.floor
    relay = em.worst("relay_pulse")
    # the lowest voltage at which a relay pulse is allowed
    v = f
    while not em.can_afford("relay_pulse", v):
        v += 1
    assert em.energy(v) >= relay and em.energy(v - 2) < relay
    for what in ("batch", "tls", "wifi_join", "read"):
        assert not em.can_afford(what, v), what
        # each needs its own worst case on top of the relay reserve
        w = v
        while not em.can_afford(what, w):
            w += 1
        assert em.energy(w) >= em.worst(what) + relay, what
    # "urgent" (a message about a shed load) may use the relay reserve, nothing else
    w = f
    while not em.can_afford("urgent", w):
        w += 1
    assert em.energy(w) >= em.worst("urgent")
    assert not em.can_afford("wifi_join", w)
    assert not em.can_afford("relay_pulse", f) and not em.can_afford("batch", V_OFF)


def test_never_acts_below_the_floor():
    em = EnergyManager()
    for v in (3000, 4100, 4200, 4250, 4260):
        name, arg = em.next_action(1000 + v, v, 50)
        assert name in ("sleep", "deep_sleep"), (v, name)
        assert arg >= 100


def test_brownout_restart_is_conservative():
    # a power cut mid-upload (e.g. a far weaker meter than planned for): the rig
    # restarts the manager with empty RTC memory, as the device would after the
    # supervisor cut; it must not retry an upload before the capacitor holds a worst case
    r = Rig(130, seed=3)
    r.run_for(minutes(3))
    r.b.p = 20        # the meter suddenly supplies almost nothing
    cut = False
    try:
        r.run_for(minutes(30))
    except PowerCut:
        cut = True
    if cut:
        r.b.p = 130
        r.b.charge_to_on()
        em = EnergyManager()
        assert not em.load(b"")
        r.em = em
    # weak supply: the manager itself must have avoided the cut (it sleeps)
    assert not cut, "the manager let the capacitor reach the cut-off at 20 mW"
    r.b.p = 130
    n_up = len(r.uploads)
    r.run_for(minutes(5))
    assert len(r.uploads) > n_up
    assert r.b.cuts == 0


def test_restart_with_empty_rtc_after_a_cut():
    em = EnergyManager()
    r = Rig(130, seed=4, em=em)
    r.run_for(minutes(4))
    learned = em.p_in()
    em2 = EnergyManager()
    assert not em2.load(b"")                 # power loss wipes RTC memory
    assert not em2.load(b"\x00" * 41)        # garbage
    assert not em2.load(em.dump()[:-1])      # truncated
    assert em2.p_in() == EnergyManager().p_in()   # a fresh manager's assumption
    assert learned != em2.p_in()
    name, _ = em2.next_action(0, V_ON, 30)
    assert name == "read"


def test_interrupted_upload_keeps_data_and_backs_off():
    # the server drops the connection after the handshake (or the join fails): the
    # readings stay in the store, the manager backs off instead of retrying at once
    down = [True]
    r = Rig(130, seed=5, server=lambda t: not down[0])
    r.run_for(minutes(6))
    assert r.delivered == 0 and len(r.pending) == len(r.reads)
    fails = r.em.fails
    assert fails >= 1
    attempts = r.actions.get("upload", 0)
    # at most one attempt per retry interval (30 s, doubling): 6 minutes -> a handful
    assert attempts <= 6, attempts
    down[0] = False
    r.run_for(minutes(4))
    assert r.em.fails == 0
    assert r.delivered + len(r.pending) == len(r.reads)
    assert len(r.pending) < 30


def test_outage_backlog_drains_after():
    out = (minutes(5), minutes(hours_scale(35, 20)))
    r = Rig(130, seed=6, server=lambda t: not (out[0] <= t < out[1]))
    r.run_for(out[1] - minutes(1))
    backlog = len(r.pending)
    assert backlog > 100
    # failed attempts are spaced out (exponential back-off capped at 10 min)
    assert r.actions.get("upload", 0) <= 20
    assert r.b.cuts == 0
    # readings kept coming during the outage
    ri = r.read_interval(after=out[0])
    assert ri <= 8000, ri
    r.run_for(minutes(15))
    assert r.b.cuts == 0
    assert len(r.pending) < 30, len(r.pending)
    assert r.delivered + len(r.pending) == len(r.reads)


def test_rtc_roundtrip_across_deep_sleep():
    r = Rig(130, seed=8)
    r.run_for(minutes(4))
    em = r.em
    data = em.dump()
    assert isinstance(data, bytes) and 0 < len(data) <= 64
    em2 = EnergyManager()
    assert em2.load(data)
    assert em2.p_in16 == em.p_in16
    assert em2.rd_cost == em.rd_cost and em2.up_cost == em.up_cost
    assert em2.t_read == em.t_read and em2.t_up == em.t_up
    assert em2.fails == em.fails
    # due times survive the clock restart of a deep-sleep wake-up: a read due in W ms
    # before a W/2 deep sleep is due W - W/2 after waking (new time base at 0)
    em3 = EnergyManager({"p_in_default_mw": 130})   # awake: waits are port sleeps
    em3.next_action(10000, 5000, 0)            # a read, due now
    em3.done("read", 13000, True)
    due = em3.next_read
    name, arg = em3.next_action(13000, 5000, 0)
    wait = due - 13000
    assert name == "sleep" and arg == wait and wait >= 400, (name, arg)
    slept = wait // 2
    em3._start("deep_sleep", 13000, 5000, slept)
    em4 = EnergyManager({"p_in_default_mw": 130})
    assert em4.load(em3.dump())
    name, arg = em4.next_action(0, 5000, 0)
    assert name == "sleep" and arg == wait - slept, (name, arg, wait, slept)


def test_deep_sleep_only_when_staying_awake_does_not_pay():
    # awake, the ESP8266 idles in modem sleep (~80 mW at the capacitor): at 130 mW it
    # stays awake once the input is measured (the cold-start default assumes 80 mW)
    r = Rig(130, seed=9)
    r.run_for(minutes(5))
    d = r.deep
    r.run_for(minutes(10))
    assert r.deep == d
    assert r.em.low is False
    # at 60 mW idling costs more than comes in: deep sleep between readings, still
    # reading and uploading, never cut
    r = Rig(60, seed=9)
    r.run_for(minutes(30))
    assert r.deep > 10
    assert r.b.cuts == 0
    assert len(r.uploads) >= 2
    assert r.delivered + len(r.pending) == len(r.reads)


def test_more_power_is_spent_not_shed():
    # energy near the clamp is spent rather than shed: awake, readings are already
    # back to back at 130 mW (the ESP8266 idles at the listening current), so at 250 mW
    # the extra power goes into more frequent uploads (lower latency)
    r = Rig(250, seed=10)
    r.run_for(minutes(hours_scale(20, 10)))
    ri = r.read_interval(after=minutes(3))
    ui = r.upload_interval(after=minutes(3))
    r130 = Rig(130, seed=10)
    r130.run_for(minutes(hours_scale(20, 10)))
    ri130 = r130.read_interval(after=minutes(3))
    ui130 = r130.upload_interval(after=minutes(3))
    assert ri < 5000 and ri * 100 <= ri130 * 105, (ri, ri130)
    assert ui * 100 <= ui130 * 80, (ui, ui130)
    lat = sum(r.latency) // len(r.latency)
    lat130 = sum(r130.latency) // len(r130.latency)
    assert lat < lat130, (lat, lat130)


def test_ticks_wrap():
    assert _diff(5, (1 << 30) - 5) == 10
    assert _diff((1 << 30) - 5, 5) == -10
    em = EnergyManager({"p_in_default_mw": 130})
    t = (1 << 30) - 2000
    name, _ = em.next_action(t, 5000, 0)
    assert name == "read"
    em.done("read", (t + 3000) & ((1 << 30) - 1), True)
    name, arg = em.next_action((t + 3000) & ((1 << 30) - 1), 5000, 0)
    assert name == "sleep" and 0 < arg <= 5000, (name, arg)


def test_unknown_action_is_an_error():
    em = EnergyManager()
    try:
        em.can_afford("teleport", 5000)
    except ValueError:
        return
    raise AssertionError("no error for an unknown action")


def test_every_voltage_and_power_gives_an_action():
    # the plan divides by spare power; at the exact balance points it must still answer
    # (a division by zero here once stopped the app: awake, a shortfall being rebuilt,
    # the learned power exactly paying idling + readings). Every learned power in 1 mW
    # steps against voltages across the working range, with and without a backlog.
    acts = ("read", "upload", "sleep", "deep_sleep")
    seen = {}
    vstep = 40 if not is_micropython() else 160
    for v in range(V_OFF + 50, 5300, vstep):
        for p_in in range(40, 220):
            for backlog in (0, 700):
                em = EnergyManager({"p_in_default_mw": p_in})
                name, arg = em.next_action(0, v, backlog)
                assert name in acts and arg > 0, (p_in, backlog, v, name, arg)
                seen[name] = seen.get(name, 0) + 1
    assert seen.get("read") and seen.get("upload") and seen.get("sleep"), seen


def test_reading_interval_from_config():
    # config reading_interval_s: 5 (default) aims at 4.5 s and may go finer; a wanted
    # 60 s is both the target and the finest the plan reads at, even on plenty of power
    assert costs.params_for({})["read_target_ms"] == 4500
    assert costs.params_for({"reading_interval_s": 5})["read_min_ms"] == 2500
    # (the rig's uploads pay a TLS handshake: an https sink, so the plan budgets one)
    tls = {"https_url": "https://h/x"}
    p = costs.params_for(dict(tls, reading_interval_s=60))
    assert p["read_target_ms"] == p["read_min_ms"] == 54000
    assert "read_target_ms" not in costs.params_for({"reading_interval_s": "x"})
    assert costs.params_for({"power_board": "reference"})["v_off_mv"] == 4100
    r = Rig(250, seed=12, params=p)
    r.run_for(minutes(30))
    iv = r.read_interval(after=minutes(5))
    assert 50000 <= iv <= 62000, iv
    assert r.b.cuts == 0
    fast = Rig(250, seed=12, params=costs.params_for(tls))
    fast.run_for(minutes(30))
    assert fast.read_interval(after=minutes(5)) <= 4500


def test_plain_uplinks_do_not_budget_tls_handshakes():
    # a window over plain MQTT / http:// (signed batches) pays no handshake: its worst
    # case is join + batch, so an upload is affordable sooner than over TLS
    plain = costs.params_for({"mqtt_host": "h"})
    tls = costs.params_for({"mqtt_host": "h", "ca_pem": "x"})
    https = costs.params_for({"https_url": "https://h/x"})
    assert plain["tls_ms"] == 0 and plain["batch_reconnects"] is False
    assert "tls_ms" not in tls and tls["batch_reconnects"] is False
    assert "tls_ms" not in https and "batch_reconnects" not in https   # per request
    # the ESP8266 leaves TLS sinks out, so it never pays for one
    assert costs.params_for({"https_url": "https://h/x"}, "esp8266")["tls_ms"] == 0
    em_p, em_t = EnergyManager(plain), EnergyManager(https)
    assert em_p.worst("upload") < em_t.worst("upload")
    assert em_p.worst("batch") < em_t.worst("batch")
    v = 4500
    while not em_p.can_afford("upload", v):
        v += 10
    assert not em_t.can_afford("upload", v)


HTTPS = {"https_url": "https://h/x"}


def test_esp32c3_light_sleeps_and_reads_every_5_s_on_what_the_meter_delivers():
    # the ngspice model of a meter at its 130 mW minimum puts 91-95 mW into the
    # capacitor at 4.5-5 V (tools/simmeter.csv): with the C3's datasheet currents and
    # TLS on every upload, light sleep between frame-aligned reads (each listens from
    # just before STX to PAPP: 2.1-2.5 s of the 2.3 s historic frame) gives a reading
    # every <= 5 s, never a deep sleep, never near the cut-off
    p = costs.params_for(HTTPS, "esp32c3")
    assert p["tls_ms"] > 0 and p["align_frames"]
    r = Rig(91, seed=21, chip="esp32c3", params=p, listen=(2100, 2500))
    r.run_for(minutes(hours_scale(40, 15)))
    assert r.b.cuts == 0 and r.deep == 0, (r.b.cuts, r.deep)
    assert r.b.vmin >= V_OFF_MAX + 50, r.b.vmin
    ri = r.read_interval(after=minutes(5))
    assert ri is not None and ri <= 5000, ri
    assert r.actions.get("sleep", 0) > r.actions.get("read", 0) // 2
    lat = sum(r.latency) // len(r.latency)
    assert lat <= 60000, lat
    assert r.delivered + len(r.pending) == len(r.reads)
    # the ESP8266's figures (modem sleep at 15 mA between reads, TLS as the C3) on the
    # same input read less often: idling there costs as much as listening
    r8 = Rig(91, seed=21, params=dict(p, align_frames=False))
    r8.run_for(minutes(hours_scale(40, 15)))
    assert r8.read_interval(after=minutes(5)) > ri


def test_wake_ups_aligned_to_the_meter_frames_on_the_c3_only():
    lead = costs.DEFAULTS["frame_lead_ms"]
    # a wanted interval of 10 s (reading_interval_s): the next read is due 9 s after
    # this one began
    p = dict(costs.params_for(dict(HTTPS, reading_interval_s=10), "esp32c3"),
             p_in_default_mw=130)
    em = EnergyManager(p)
    name, _ = em.next_action(10000, 5000, 0)
    assert name == "read"
    # the read saw STX at 11000 ms and read a whole frame of 2290 ms (historic TIC:
    # 275 characters x 10 bits at 1200 bd = 2.29 s)
    em.frame(11000, 2290)
    em.done("read", 13290, True)
    name, arg = em.next_action(13290, 5000, 0)
    assert name == "sleep", (name, arg)
    wake = 13290 + arg
    # lead ms before a frame start, the one nearest to when the plan wants the read
    assert (wake + lead - 11000) % 2290 == 0, (wake, arg)
    due = 10000 + em.t_read
    assert em.t_read == 9000
    assert abs(wake - due) <= 2290 // 2, (wake, due)
    # the period is refined from frame starts seen m periods apart: 2 x 2305 ms later
    em.frame(11000 + 4610)
    assert em.period == (3 * 2290 + 2305) // 4 == 2293
    # a span that is no whole number of periods (a wrong STX) leaves it alone
    em.frame(11000 + 4610 + 1000)
    assert em.period == 2293
    # the ESP8266 idles with its UART receiving: no alignment, the plain due time
    em8 = EnergyManager(dict(costs.params_for({"reading_interval_s": 10}, "esp8266"),
                             p_in_default_mw=130))
    em8.next_action(10000, 5000, 0)
    em8.frame(11000, 2290)
    em8.done("read", 13290, True)
    name, arg = em8.next_action(13290, 5000, 0)
    assert name == "sleep" and 13290 + arg == 10000 + em8.t_read, (name, arg)


def test_one_failed_join_is_retried_sooner_than_an_outage():
    # one join the AP left unanswered is retried after retry_ms (30 s), not a whole upload
    # period later (mean latency <= 60 s with flaky Wi-Fi); a second failure in a row
    # means the AP or the server is down: then at least a period, doubling
    em = EnergyManager({"p_in_default_mw": 130})
    em.next_action(0, 5200, 10)
    name, _ = em._start("upload", 1000, 5200, 10)
    em.done("upload", 6000, False)
    assert em.next_up == 6000 + 30000, em.next_up
    em._start("upload", em.next_up, 5200, 10)
    em.done("upload", 41000, False)
    assert em.next_up - 41000 >= em.t_up and em.next_up - 41000 >= 60000, (em.next_up, em.t_up)
    em._start("upload", em.next_up, 5200, 10)
    em.done("upload", em.next_up + 5000, True)
    assert em.fails == 0
