# Load-shedding decision for the latching relay: pure logic, one call per reading.
#
# The relay's load is ON (contacts closed, SET coil) in normal operation and is SHED
# (contacts open, RESET coil) when the household nears its subscribed power, so the
# meter's breaker does not trip (the Linky cuts after ~ a few seconds above the
# subscription, Enedis-NOI-CPT_54E §6.2.3.2 "depassement de puissance").
#
#   shed     when power > threshold for shed_after_s, at once on the meter's own
#            overload signal (historic ADPS/ADIR1..3, standard STGE bit 7 "depassement
#            de la puissance de reference"), and optionally on Tempo red / EJP peak periods
#   restore  when power < restore threshold (hysteresis) for restore_after_s
#   minimum  on/off times against chattering (an overload sheds regardless of min_on)
#   remote   "ON"/"OFF" override until "AUTO"
import struct

ON = 1
OFF = 0
_MODES = ("auto", "on", "off")

DEFAULTS = {
    "relay_mode": "auto",
    "relay_threshold_va": None,   # None: from the subscription
    "relay_margin_pct": 10,       # shed at subscription - 10 %
    "relay_hysteresis_pct": 20,   # restore below threshold - 20 %
    "relay_shed_after_s": 5,
    "relay_restore_after_s": 60,
    "relay_min_on_s": 60,
    "relay_min_off_s": 300,
    "relay_shed_red": False,      # shed during Tempo red peak hours
    "relay_shed_ejp": False,      # shed during EJP peak (and on EJP notice)
}


def _get(cfg, key):
    v = cfg.get(key) if cfg else None
    return DEFAULTS[key] if v is None or v == "" else v


def subscribed_va(reading):
    # The household's subscribed power in VA, from what the meter says.
    sub = reading.get("subscribed_current_a")    # historic ISOUSC: 200 VA per A
    if sub:                                       # (Enedis-NOI-CPT_54E §6.1.3: 1 A = 200 VA at 230 V, mono)
        return int(sub) * 200
    pref = reading.get("subscribed_power_kva")   # standard PREF
    if pref:
        return int(pref) * 1000
    # DSMR 0-0:17.0.0 "actual threshold electricity": kVA on Smarty meters, kW
    # elsewhere (integer VA / W from the decoder; W taken as VA, as the meter's
    # breaker compares active power). DSMR 3's threshold in A has no voltage to go
    # with it and is not used.
    thr = reading.get("threshold_va") or reading.get("threshold_w")
    if thr and thr > 0:
        return int(thr)
    return None


def power_of(reading):
    # The power compared with the threshold: apparent power where the meter gives it
    # (TIC), else active import (DSMR).
    p = reading.get("apparent_power_va")
    if p is None:
        p = reading.get("active_power_w")
    return p


def peak_rule(reading, cfg):
    # Optional shedding on tariff periods (historic PTEC, standard LTARF, DEMAIN/STGE).
    period = reading.get("tariff_period") or ""
    up = period.upper()
    if _get(cfg, "relay_shed_red"):
        # historic PTEC HPJR = heures pleines jour rouge; standard LTARF "HP ROUGE" style
        if up == "HPJR" or ("ROUGE" in up and "HC" not in up and "CREUSE" not in up):
            return "tempo_red"
    if _get(cfg, "relay_shed_ejp"):
        # historic PTEC "PM.." = pointe mobile (EJP peak day); PEJP = 30 min notice
        if up.startswith("PM") or reading.get("ejp_notice") or "POINTE" in up:
            return "ejp_peak"
    return None


class RelayPolicy:
    def __init__(self, cfg=None, state=ON):
        self.cfg = cfg or {}
        self.state = state          # what the policy wants the relay to be
        self.mode = _get(self.cfg, "relay_mode")
        self.since_s = None         # when the relay last changed (None: unknown, no min time)
        self.above_since = None
        self.below_since = None
        self.threshold = None

    def command(self, cmd):
        # Remote override (MQTT ON/OFF/AUTO, Home Assistant switch). Returns True if valid.
        c = cmd.strip().upper() if isinstance(cmd, str) else cmd.decode().strip().upper()
        if c in ("ON", "OFF", "AUTO"):
            self.mode = c.lower()
            self.above_since = self.below_since = None
            return True
        return False

    def thresholds(self, reading):
        t = _get(self.cfg, "relay_threshold_va")
        if t is None:
            sub = subscribed_va(reading)
            if sub is None:
                return None, None
            t = sub * (100 - int(_get(self.cfg, "relay_margin_pct"))) // 100
        t = int(t)
        return t, t * (100 - int(_get(self.cfg, "relay_hysteresis_pct"))) // 100

    def _change(self, new, now_s, reason):
        self.state = new
        self.since_s = now_s
        self.above_since = self.below_since = None
        return new, reason

    def update(self, reading, now_s):
        # -> None, or (new_state, reason) when the relay must switch now.
        if self.mode == "on":
            return None if self.state == ON else self._change(ON, now_s, "remote_on")
        if self.mode == "off":
            return None if self.state == OFF else self._change(OFF, now_s, "remote_off")
        held = now_s - self.since_s if self.since_s is not None else 1 << 30
        if reading.get("overload"):
            # the meter itself says the subscription is exceeded: no waiting
            if self.state == ON:
                return self._change(OFF, now_s, "overload")
            self.below_since = None
            return None
        rule = peak_rule(reading, self.cfg)
        p = power_of(reading)
        hi, lo = self.thresholds(reading)
        if self.state == ON:
            if rule is not None:
                if held >= int(_get(self.cfg, "relay_min_on_s")):
                    return self._change(OFF, now_s, rule)
                return None
            if p is None or hi is None:
                return None
            if p > hi:
                if self.above_since is None:
                    self.above_since = now_s
                if (now_s - self.above_since >= int(_get(self.cfg, "relay_shed_after_s"))
                        and held >= int(_get(self.cfg, "relay_min_on_s"))):
                    return self._change(OFF, now_s, "threshold")
            else:
                self.above_since = None   # a short spike does not count
            return None
        # state OFF: restore only when everything allows it
        if rule is not None or p is None or lo is None:
            self.below_since = None
            return None
        if p < lo:
            if self.below_since is None:
                self.below_since = now_s
            if (now_s - self.below_since >= int(_get(self.cfg, "relay_restore_after_s"))
                    and held >= int(_get(self.cfg, "relay_min_off_s"))):
                return self._change(ON, now_s, "restore")
        else:
            self.below_since = None
        return None

    # -- across deep sleep (RTC memory) ------------------------------------------------
    # The ticks clock restarts after a deep sleep, so the timers are kept as ages (s) at
    # the moment of sleeping plus the sleep itself, and rebuilt on the new time base.
    def dump(self, now_s, sleep_s=0):
        def age(t):
            return -1 if t is None else max(0, now_s - t) + sleep_s
        return struct.pack("<BBiii", _MODES.index(self.mode) if self.mode in _MODES else 0,
                           self.state, age(self.since_s), age(self.above_since),
                           age(self.below_since))

    def load(self, data, now_s):
        try:
            m, st, a, b, c = struct.unpack("<BBiii", data)
        except (ValueError, TypeError):
            return False
        if m >= len(_MODES) or st not in (ON, OFF):
            return False
        self.mode = _MODES[m]
        self.state = st
        self.since_s = None if a < 0 else now_s - a
        self.above_since = None if b < 0 else now_s - b
        self.below_since = None if c < 0 else now_s - c
        return True
