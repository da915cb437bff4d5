# The energy manager: decides, from the supercapacitor voltage, what the app loop does
# next (read the meter, upload, sleep, deep sleep) so that the capacitor never
# falls to the supervisor's cut-off (4.15 V on our board) in normal operation.
#
#   em = EnergyManager(params)            params: overrides of costs.DEFAULTS
#   em.next_action(now_ms, vcap_mv, backlog) -> ("read", max_listen_ms) | ("upload", max_records)
#                                            | ("sleep", ms) | ("deep_sleep", ms)
#   em.can_afford(what, vcap_mv)           what: relay_pulse, batch, tls, wifi_join, urgent, read
#   em.done(what, now_ms, ok)              after each action
#   em.dump() -> bytes (<= 64, RTC memory) / em.load(rtc_bytes)
#
# How it plans (pure integer arithmetic: mV, mF, mW, ms, uJ; mW x ms = uJ):
# - Energy above a floor: E(V) = C (V^2 - Vfloor^2) / 2. The floor is the supervisor
#   cut-off plus the ESR dip of a transmit peak and ADC error (costs.DEFAULTS).
# - Reserve: an action starts only if its WORST-CASE cost (timeouts, not averages) fits
#   above the floor with the relay pulse still paid for, so a started upload or relay
#   pulse always finishes even if the meter stops supplying power meanwhile.
# - Incoming power is learned from the voltage slope between two observations, with
#   what the chip drew in between (sleep / listen currents are steady and known).
# - The read and upload intervals follow the power budget: incoming power plus a
#   proportional term that spends stored energy above the upload threshold fast (the
#   clamp would shed it) or rebuilds a shortfall slowly.
# - Two regimes. Awake: the input pays for idling (on ESP8266 port.sleep_ms idles in
#   modem sleep, as expensive as listening, so readings are nearly free) plus uploads
#   at least every UP_AWAKE: read back to back down to READ_MIN, upload every
#   latency_target_ms, stretched towards UP_RELAX when power is short. Low power: deep
#   sleep between readings (each pays a boot), intervals stretched in proportion to
#   the shortfall; an overdue upload pauses readings until it is affordable. More
#   power -> finer resolution, then earlier uploads (also whenever the capacitor sits
#   at the clamp); less power -> coarser readings, rarer but larger batches; readings
#   are stored, never dropped.
# - Upload failures back off (retry_ms doubling, capped at retry_max_ms).
# - Cold start after a full discharge, brown-out and an interrupted upload all look
#   the same here: no RTC state, so start from the conservative defaults (incoming
#   power assumed p_in_default_mw until measured); what was not acknowledged is still
#   in the store and goes with the next upload. Across deep sleep the state (learned
#   power and costs, due times relative to the wake-up) is in RTC memory (dump/load),
#   and the voltage before/after the sleep measures the input during it.
import struct

from firmware.power import costs

_PERIOD = 0x40000000   # ticks_ms wraps at 2**30 on the ESP ports
_HALF = 0x20000000
_DUMP_FMT = "<BBHBIIiiIIIII"
_VERSION = 1


def _diff(a, b):
    # a - b for ticks that wrap at 2**30 (time.ticks_diff semantics)
    d = (a - b) & (_PERIOD - 1)
    if d & _HALF:
        d -= _PERIOD
    return d


def _clamp(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


class EnergyManager:
    # interval bounds (ms): READ_MIN / READ_TARGET come from the params (per instance);
    # coarsest plans when power is nearly gone
    READ_MAX = 300000
    UP_MIN = 20000        # most frequent upload windows (draining a backlog)
    UP_RELAX = 90000      # uploads stretch to this (mean latency ~ half + upload)
    UP_AWAKE = 300000     # awake while the input pays idling + uploads this often
    UP_MAX = 3600000

    def __init__(self, params=None):
        p = dict(costs.DEFAULTS)
        if params:
            for k in params:
                p[k] = params[k]
        self.p = p
        self.c = costs.table(p)
        self.cap = p["cap_mf"]
        self.floor = p["v_floor_mv"]
        # wanted resolution (config reading_interval_s, costs.read_params): the plan
        # never reads more often than read_min_ms
        self.READ_TARGET = p["read_target_ms"]
        self.READ_MIN = min(p["read_min_ms"], self.READ_TARGET)
        self.p_sleep = p["i_light_ma"] * costs.PLAN_MV // 1000 or 1   # mW, awake idle
        self.p_deep = p["i_deep_ua"] * costs.PLAN_MV // 1000000 or 1  # mW, deep sleep
        self._cold()

    def _cold(self):
        p = self.p
        self.p_in16 = p["p_in_default_mw"] * 16
        self.rd_cost = self.c["read_exp"]
        self.rd_ms = self.p["listen_exp_ms"]
        self.low = False
        self.up_cost = self.c["upload_exp"]
        p = self.p
        self.up_ms = p["join_exp_ms"] + p["tls_exp_ms"] + p["batch_exp_ms"]
        self.fails = 0
        self.retry_at = 0
        self.last_up = None        # ticks when the last acknowledged upload began
        self.t_read = self.READ_TARGET
        self.t_up = p["latency_target_ms"]
        self.next_read = None      # ticks when the next read is due (None: now)
        self.next_up = None
        self.last_t = None         # last observation
        self.last_v = 0
        self.act = None            # action in progress: name, start ticks, start mV
        self.act_t = 0
        self.act_v = 0
        self.act_end = None
        self.rebase = 0            # after load(): ms slept in deep sleep before now
        self.slept = 0
        self.slept_v = 0
        self.loaded = False
        self.cold_starts = 1
        self.stx = None            # ticks of the last meter frame start seen (frame())
        self.period = None         # the meter's frame period (ms), once measured

    # -- energy ------------------------------------------------------------------
    def energy(self, v_mv):
        # uJ stored above the floor (negative below it)
        f = self.floor
        return self.cap * ((v_mv - f) * (v_mv + f) // 1000) // 2

    def p_in(self):
        return self.p_in16 // 16

    def worst(self, what):
        c = self.c
        if what == "wifi_join" or what == "urgent" or what == "upload":
            # a window's first batch: join + handshake + one batch (the uplink asks again
            # before every further batch, so a long drain is not paid up front)
            return c["wifi_join"] + c["tls"] + c["batch"]
        if what == "tls":
            return c["tls"] + c["batch"]
        if what == "batch":
            # HTTPS: every request is a new connection and handshake (batch_reconnects)
            return c["batch"] + (c["tls"] if self.p["batch_reconnects"] else 0)
        if what == "relay_pulse":
            return c["relay_pulse"]
        if what == "read":
            return c["read"]
        raise ValueError("unknown action " + str(what))

    def can_afford(self, what, vcap_mv):
        e = self.energy(vcap_mv)
        need = self.worst(what)
        if what != "relay_pulse" and what != "urgent":
            need += self.c["relay_pulse"]   # a relay pulse must stay possible
        return e >= need

    def v_for(self, uj):
        # voltage at which `uj` is available above the floor (for plots / status)
        f = self.floor
        x = f * f + uj * 2000 // self.cap
        v = f
        while v * v < x:
            v += 10
        return v

    # -- learning ----------------------------------------------------------------
    def _top(self):
        # above this the capacitor may be sitting at its clamp, where a flat voltage says
        # nothing about the input (it is shed): the lowest voltage the clamp can have
        # (the TL431's tolerance puts it anywhere in 5.05-5.43 V on our board)
        return self.p["v_clamp_min_mv"] - 40

    def _learn(self, meas16, dt, near_top):
        # incoming power from one observation; near the top only upward revisions count
        if meas16 < 0:
            meas16 = 0
        if near_top and meas16 <= self.p_in16:
            return
        # weight by the interval length: long observations count more
        self.p_in16 += (meas16 - self.p_in16) * dt // (dt + 60000)

    def _observe(self, now, v):
        top = self._top()
        if self.rebase:
            # first observation after a deep-sleep wake-up: the clock restarted, move
            # the due times into the new time base (they were stored relative)
            base = now
            if self.next_read is not None:
                self.next_read = base + self.next_read
            if self.next_up is not None:
                self.next_up = base + self.next_up
            self.rebase = 0
            self.last_t = None
            if self.slept and self.slept_v:
                # incoming power over the deep sleep and the boot that followed (what
                # they drew is known: deep-sleep current, the boot's table cost)
                dt = self.slept + self.p["boot_ms"]
                de = self.energy(v) - self.energy(self.slept_v)
                if dt > 0:
                    meas16 = (de + self.p_deep * self.slept + self.c["boot"]) * 16 // dt
                    self._learn(meas16, dt, v >= top)
            self.slept = 0
        if self.last_t is not None and self.act is not None:
            dt = _diff(now, self.act_t)
            if dt > 0:
                de = self.energy(v) - self.energy(self.act_v)
                clamped = v >= top or self.act_v >= top
                a = self.act
                if a == "sleep" or a == "read":
                    # drawn meanwhile: listen or light-sleep current at the mean voltage
                    vm = (v + self.act_v) // 2
                    ma = self.p["i_listen_ma"] if a == "read" else self.p["i_light_ma"]
                    spent = ma * vm // 1000 * dt
                    if a == "read" and self.act_end is not None:
                        self.rd_cost = (3 * self.rd_cost + spent) // 4
                    if dt >= 200:
                        self._learn((de + spent) * 16 // dt, dt, clamped)
                elif a == "upload" and self.act_end is not None and self.act_ok:
                    spent = self.p_in() * dt - de
                    if spent > 0:
                        self.up_cost = (3 * self.up_cost + spent) // 4
                    d = _diff(self.act_end, self.act_t)
                    if 0 < d < 120000:
                        self.up_ms = (3 * self.up_ms + d) // 4
        self.last_t = now
        self.last_v = v

    # -- planning ----------------------------------------------------------------
    def _plan(self, v, backlog=0):
        # budget (mW): incoming power, plus stored energy above the level that pays for
        # a worst-case upload spent over soc_tau (or minus the shortfall, rebuilt)
        p = self.p
        target = self.worst("upload") + self.c["relay_pulse"] + self.c["read"]
        extra = self.energy(v) - target
        # above the target the energy would soon be shed by the clamp: spend it fast;
        # below it, rebuild slowly so the resolution does not swing after every upload
        budget = self.p_in() + extra // (p["soc_tau_ms"] if extra > 0 else 4 * p["soc_tau_ms"])
        ps = self.p_sleep
        rd = self.rd_cost
        up = self.up_cost
        ut = p["latency_target_ms"]
        # no reading while an upload runs: to average READ_TARGET between readings, the
        # period between them must make up for that gap
        rt = self.READ_TARGET * (ut - self.up_ms) // ut
        if rt < self.READ_MIN:
            rt = self.READ_MIN
        # awake, a reading costs only what listening draws above idling meanwhile
        # (on ESP8266 both are modem sleep: readings are nearly free once awake)
        rd_inc = rd - ps * self.rd_ms
        if rd_inc < rd // 8:
            rd_inc = rd // 8
        # stay awake while the incoming power (not the momentary budget: no flapping
        # after every upload) pays for idling plus uploads at least every UP_AWAKE
        self.low = self.p_in() < ps + rd_inc // rt + up // self.UP_AWAKE
        if not self.low:
            avail = budget - ps
            need5 = rd_inc // rt
            if avail >= need5 + up // ut and backlog > 2 * p["batch_records"]:
                # a backlog (after an outage): the spare energy drains it first, with
                # more frequent upload windows at the target resolution
                spare = avail - need5
                self.t_read = rt
                self.t_up = _clamp(up // (spare or 1), self.UP_MIN, ut)
            elif avail >= need5 + up // ut:
                # everything at target, the rest buys finer readings; uploads stay at the
                # latency target (more frequent ones take listening time: no reading
                # during an upload, so the resolution would get coarser)
                spare = avail - up // ut
                self.t_read = _clamp(rd_inc // (spare or 1), self.READ_MIN, rt)
                self.t_up = ut
            else:
                # keep the target resolution, stretch uploads towards UP_RELAX (all the
                # way while a shortfall is being rebuilt and nothing is spare)
                self.t_read = rt
                spare = avail - need5
                self.t_up = (_clamp(up // spare, ut, self.UP_RELAX) if spare > 0
                             else self.UP_RELAX)
            return
        # not enough to stay awake: deep sleep between readings, each one paying a
        # boot; coarser readings and rarer (larger) uploads, in proportion
        avail = budget - self.p_deep
        need = (self.c["boot"] + rd) // rt + up // self.UP_RELAX
        if avail <= 0:
            self.t_read, self.t_up = self.READ_MAX, self.UP_MAX
        else:
            self.t_read = _clamp(rt * need // avail, rt, self.READ_MAX)
            self.t_up = _clamp(self.UP_RELAX * need // avail, self.UP_RELAX, self.UP_MAX)

    def next_action(self, now_ms, vcap_mv, backlog):
        now = now_ms
        v = vcap_mv
        self._observe(now, v)
        self._plan(v, backlog)
        p = self.p
        e = self.energy(v)
        reserve = self.c["relay_pulse"]
        if self.next_read is None:
            self.next_read = now
        if self.next_up is None:
            self.next_up = now + self.t_up // 2   # first upload: half a period in
        # upload: due by the latency target, or early when a full batch is waiting or
        # the capacitor is at the clamp (the input would be shed), affordable in the
        # worst case with the relay reserve intact
        early = self.fails == 0 and _diff(now, self.next_up) >= -(self.t_up // 2)
        # at the clamp the input is being shed: an upload costs nothing that would not be
        # lost anyway, however far the planned one is (after a weak spell the plan may
        # have put it up to UP_MAX away, or stretched a back-off to it): half the latency
        # target after the last one began, or the plain back-off after a failure
        at_clamp = False
        if v >= p["v_max_mv"] - 60:
            if self.fails == 0:
                gap = self.t_up if self.t_up < p["latency_target_ms"] else p["latency_target_ms"]
                at_clamp = self.last_up is None or _diff(now, self.last_up) >= gap // 2
            else:
                at_clamp = _diff(now, self.retry_at) >= 0
        up_due = backlog > 0 and (_diff(now, self.next_up) >= 0 or at_clamp
                                  or (early and backlog >= p["batch_records"]))
        up_need = self.worst("upload") + reserve
        if up_due and e >= up_need:
            extra = (e - up_need) // self.c["batch"]
            return self._start("upload", now, v, p["batch_records"] * (1 + extra))
        rd_due = _diff(now, self.next_read) >= 0
        rd_need = self.c["read"] + reserve
        if up_due and _diff(now, self.next_up) >= self.t_up // 2:
            # the upload is long overdue and readings keep eating the energy it waits
            # for: pause them until the capacitor holds the upload's worst case
            rd_due = False
            rd_wait = 0
        else:
            rd_wait = None
        if rd_due and e >= rd_need:
            return self._start("read", now, v, p["listen_ms"])
        # nothing to do now (or not affordable yet): sleep until the next due time, or
        # until the deficit has come in at the learned incoming power
        pin = self.p_in() - (self.p_deep if self.low else self.p_sleep)
        if pin < 1:
            pin = 1
        waits = []
        if rd_due:
            waits.append((rd_need + (self.c["boot"] if self.low else 0) - e) // pin + 1)
        elif rd_wait is None:
            waits.append(_diff(self.next_read, now))
        boot = self.c["boot"] if self.low else 0   # a deep-sleep wake-up pays a boot
        if backlog > 0:
            if up_due:
                waits.append((up_need + boot - e) // pin + 1)
            else:
                waits.append(_diff(self.next_up, now))
        ms = min(waits)
        ms = _clamp(ms, 100, self.UP_MAX)
        if ms >= (p["deep_sleep_low_ms"] if self.low else p["deep_sleep_min_ms"]):
            return self._start("deep_sleep", now, v, ms)
        return self._start("sleep", now, v, ms)

    def _start(self, name, now, v, arg):
        self.act = name
        self.act_t = now
        self.act_v = v
        self.act_end = None
        self.act_ok = False
        if name == "deep_sleep":
            self.act_arg = arg
        return name, arg

    def done(self, what, now_ms, ok):
        self.act_end = now_ms
        self.act_ok = bool(ok)
        if what == "read":
            d = _diff(now_ms, self.act_t)
            if self.act == "read" and 0 < d < 60000:
                self.rd_ms = (3 * self.rd_ms + d) // 4
            # the next reading is due t_read after this one started
            self.next_read = self._align(self.act_t + self.t_read if self.act == "read"
                                         else now_ms + self.t_read)
        elif what == "upload":
            if ok:
                self.fails = 0
                start = self.act_t if self.act == "upload" else now_ms
                self.next_up = start + self.t_up
                self.last_up = start
            else:
                # server or Wi-Fi down: back off (doubling) so a long outage does not
                # drain the capacitor into failed joins; readings go on being stored
                self.fails += 1
                back = self.p["retry_ms"] << (self.fails - 1 if self.fails < 8 else 7)
                if back > self.p["retry_max_ms"]:
                    back = self.p["retry_max_ms"]
                self.retry_at = now_ms + back     # at the clamp: no stretching
                if back < self.t_up and self.fails > 1:
                    # a second failure in a row: the server or the AP is down, not just
                    # one join that went unanswered; wait at least a whole period
                    back = self.t_up
                self.next_up = now_ms + back

    # -- meter frames ------------------------------------------------------------
    def frame(self, stx_ms, frame_ms=None):
        # A read saw a frame start (STX) at stx_ms; frame_ms: the length of a whole frame
        # it read (STX to ETX), None when it stopped early. The period starts as one
        # frame's length (the gap between historic TIC frames is a few characters) and is
        # refined from frame starts m periods apart (the m nearest the measured span).
        if frame_ms is not None and self.period is None and 500 <= frame_ms <= 20000:
            self.period = frame_ms
        per = self.period
        if self.stx is not None and per:
            d = _diff(stx_ms, self.stx)
            m = (d + per // 2) // per
            if 0 < m <= 16:
                q = d // m
                if (q - per) * 8 < per and (per - q) * 8 < per:
                    self.period = (3 * per + q) // 4
        self.stx = stx_ms

    def _align(self, t):
        # the wake-up for a read due at t: frame_lead_ms before the frame start nearest to
        # t (chips whose sleep stops the UART lose what arrives meanwhile: waking in the
        # middle of a frame costs the rest of it in listening)
        per = self.period
        if not self.p["align_frames"] or not per or self.stx is None:
            return t
        lead = self.p["frame_lead_ms"]
        k = (_diff(t, self.stx) + lead + per // 2) // per
        if k < 1:
            k = 1
        return self.stx + k * per - lead

    # -- RTC memory --------------------------------------------------------------
    def dump(self):
        # due times relative to the last observation; the deep sleep about to start is
        # added back on wake-up (the ESP clock restarts after deep sleep)
        ref = self.last_t if self.last_t is not None else 0
        sl = self.act_arg if self.act == "deep_sleep" else 0
        nr = -sl if self.next_read is None else _diff(self.next_read, ref) - sl
        nu = -sl if self.next_up is None else _diff(self.next_up, ref) - sl
        flags = (1 if self.next_read is not None else 0) | (2 if self.next_up is not None else 0)
        p16 = _clamp(self.p_in16, 0, 65535)
        return struct.pack(_DUMP_FMT, _VERSION, flags, p16, min(self.fails, 255),
                           _clamp(self.rd_cost, 0, 0xFFFFFFFF), _clamp(self.up_cost, 0, 0xFFFFFFFF),
                           nr, nu, self.t_read, self.t_up, min(self.cold_starts, 0xFFFFFFFF),
                           sl, self.act_v if sl else 0)

    def load(self, rtc_bytes):
        # True when the state was restored; anything else (b"" after a power loss, a
        # different version, garbage) is a cold start with conservative defaults
        self._cold()
        try:
            if not rtc_bytes or len(rtc_bytes) != struct.calcsize(_DUMP_FMT):
                return False
            (ver, flags, p16, fails, rd, up, nr, nu, tr, tu, cs, sl,
             vs) = struct.unpack(_DUMP_FMT, rtc_bytes)
        except (ValueError, TypeError):
            return False
        if ver != _VERSION or p16 == 0 or rd == 0 or up == 0:
            return False
        self.p_in16 = p16
        self.fails = fails
        # learned costs are kept within sane bounds of the table (a corrupt value must
        # not make the manager reckless)
        self.rd_cost = _clamp(rd, self.c["read_exp"] // 4, self.c["read"] * 2)
        self.up_cost = _clamp(up, self.c["upload_exp"] // 4, self.worst("upload") * 2)
        self.t_read = _clamp(tr, self.READ_MIN, self.READ_MAX)
        self.t_up = _clamp(tu, 1000, self.UP_MAX)
        self.next_read = nr if flags & 1 else None
        self.next_up = nu if flags & 2 else None
        self.cold_starts = cs
        self.slept = sl            # deep sleep just ended: learn the input over it
        self.slept_v = vs
        self.rebase = 1
        self.loaded = True
        return True
