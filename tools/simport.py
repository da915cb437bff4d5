# SimPort: the host port (tools/hostport.HostPort) with the board's energy integrated
# over the virtual clock. The firmware runs unchanged on it; what the chip does (the
# port.activity(state) calls, UART waits, sleeps, Wi-Fi, TLS, transmissions) drains the
# simulated supercapacitor, the meter's power charges it, and the hysteresis supervisor
# cuts the regulator (firmware.port.PowerLost) exactly as on the board.
#
# Physical model (parameters and their sources: tools/simparams.py):
#   dE/dt = eff * P_meter (until the clamp voltage)  - V * (I_load + I_ldo_q)  [regulator on]
#           - V * (I_supervisor + I_leak) - V^2 / R_sense - I^2 * ESR
#   E = C V^2 / 2, terminal voltage = V - I * ESR (what the supervisor and the ADC see)
#   supervisor: on after V_term >= V_ON (for 20 checks at 1 MHz on the paper's board, an
#   RC delay on ours), off when V_term < V_OFF (any integration step below it cuts).
#   Board figures (ours, "ltr", or the reference's, "paper"): simparams.BOARDS; chip
#   figures (ESP8266, ESP32-C3: currents per state, durations, ADC): simparams.CHIPS.
#   The meter: a constant power at the rectifier input (x RECTIFIER_EFF), a profile
#   over time, or (source="meter") the ngspice Thevenin table of tools/simmeter.py.
# Every joule is accounted for (self.acct): harvested, shed at the clamp, drawn by the
# chip per state, lost in the regulator, ESR, supervisor, dividers and leakage.
# States with a duration of their own (wifi_join, tls, tx, flash, boot) advance the
# clock by a duration drawn from the seeded ranges when the firmware enters them.
import math
import random

from firmware.port import DeepSleep, PowerLost, RESET_POWER_ON, RESET_DEEP_SLEEP
from tools import simparams as SP
from tools.hostport import HostPort, FakeUart


class SimUart(FakeUart):
    # Whole-buffer reads at wire speed: like machine.UART with timeout_char longer than
    # a character, readinto() returns when the buffer is full or the line goes quiet,
    # the clock advanced to the end of the last character delivered. (The base class
    # hands over whatever the ring holds after the first byte: one byte per call at
    # 1200 bd, millions of calls for a 6-hour run.)
    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None else min(nbytes, len(buf))
        if not self._exact or self.line is None:
            return FakeUart.readinto(self, buf, nbytes)
        self._pump(self.clock.us)
        deadline = self.clock.us + self.timeout * 1000
        while len(self._buf) < n:
            if self._pending is None:
                self._pending = self._next_exact()
                if self._pending is None:
                    break
            end, b = self._pending
            if end > deadline:
                # the line stayed quiet for the timeout: return what we have
                if not self._buf:
                    self.clock.us = max(self.clock.us, deadline)
                break
            self.clock.us = max(self.clock.us, end)
            self._pending = None
            self._buf.append(b)
            deadline = end + self.timeout * 1000
        k = min(n, len(self._buf))
        if k:
            buf[:k] = self._buf[:k]
            self._buf = self._buf[k:]
        return k


class Trace:
    # capacitor voltage samples and marked events, for --plot and the report
    def __init__(self, every_s=2.0):
        self.every = every_s
        self.t = []
        self.v = []
        self.marks = []    # (t_s, kind)
        self._last = -1e9

    def sample(self, t, v, force=False):
        if force or t - self._last >= self.every:
            self.t.append(t)
            self.v.append(v)
            self._last = t

    def mark(self, t, kind):
        self.marks.append((t, kind))


class SimPort(HostPort):
    uart_class = SimUart

    def __init__(self, capture, power_mw=130, seed=1, ntp_s=None, power_profile=None,
                 v0=0.0, trace=None, fs_root=None, flash=None, baud=SP.CAPTURE_BAUD,
                 board="ltr", chip=SP.DEFAULT_CHIP, source=None, fw_chip=None, **kw):
        HostPort.__init__(self, capture=capture, meter_baud=baud, loop=True, fs_root=fs_root,
                          flash=flash, **kw)
        self.rng = random.Random(seed)
        self.p_meter = power_mw / 1000.0
        self.profile = power_profile      # optional f(t_s) -> watts at the meter
        self.source = source              # optional MeterSource (tools/simmeter.py)
        self.chip_name = chip
        self.cm = SP.chip(chip)
        self.I = self.cm["I"]
        if fw_chip:
            # what the firmware sees as port.chip (its energy plan, its uplink's rules)
            self.chip = fw_chip
        self.adc_step, self.adc_noise, self.adc_max = SP.adc(board, chip)
        self.acct = {"harvested_j": 0.0, "clamp_shed_j": 0.0, "regulator_j": 0.0,
                     "esr_j": 0.0, "supervisor_j": 0.0, "sense_divider_j": 0.0,
                     "leakage_j": 0.0, "adc_divider_j": 0.0, "relay_coil_j": 0.0}
        self.chip_j = {}                  # state -> J delivered to the chip (3.3 V side)
        self.time_s = {}                  # state -> s spent in it (powered)
        self.off_s = 0.0
        self.join_fails = 0
        self.wifi_fail = 0.0              # probability that a join fails (--wifi-fail)
        self.ntp_s = ntp_s                # (lo, hi) s of NTP wait after each join, or None
        self.board_name = board
        self.b = SP.board(board)
        self.C = self.b["CAP_F"]
        self.E = 0.5 * self.C * v0 * v0
        self.on = False
        self._above = 0.0                 # seconds V_term has been above V_ON (off state)
        self.state = "off"
        self._t_int = self.clock.us
        self.cuts = 0
        self.vmin = None                  # lowest terminal voltage while powered
        self.trace = trace or Trace()
        self.energy_by_state = {}
        self.dead = False
        self.joins = 0                    # Wi-Fi joins so far (upload windows)

    # -- physics -------------------------------------------------------------------
    def v_oc(self):
        return math.sqrt(2.0 * self.E / self.C) if self.E > 0 else 0.0

    def _chip_a(self):
        # the chip's current at 3.3 V in the present state
        if not self.on:
            return 0.0
        s = self.state
        if s == "relay":
            return self.I["active"]
        return self.I.get(s, self.I["active"])

    def _current(self):
        # drawn from the capacitor: the chip's current through the linear regulator
        # (input = output + IQ) plus a relay coil pulse straight from VCAP
        if not self.on:
            return 0.0
        return self._chip_a() + SP.I_LDO_Q_A + (SP.RELAY_A if self.state == "relay" else 0.0)

    def _p_avail(self, t_s, v):
        # what the meter would put into the capacitor at this voltage
        if self.source is not None:
            return self.source.power(v)
        p = self.profile(t_s) if self.profile else self.p_meter
        return p * self.b["RECTIFIER_EFF"]

    def _p_in(self, t_s, v):
        if v >= self.b["V_CLAMP"]:
            return 0.0
        return self._p_avail(t_s, v)

    def _integrate(self):
        t1 = self.clock.us
        t0 = self._t_int
        if t1 <= t0:
            return
        i = self._current()
        ic = self._chip_a()
        total = (t1 - t0) / 1e6
        done = 0.0
        acct = self.acct
        while done < total:
            dt = min(SP.DT_MAX_S, total - done)
            v = self.v_oc()
            t_s = (t0 / 1e6) + done
            b = self.b
            p_load = v * i + i * i * b["ESR_OHM"]
            p_sup = v * b["I_SUPERVISOR_A"]
            p_leak = v * b["LEAK_A"]
            p_sense = v * v / b["R_SENSE_OHM"]
            p_in = self._p_in(t_s, v)
            self.E += (p_in - p_load - p_sup - p_leak - p_sense) * dt
            if self.E < 0:
                self.E = 0.0
            emax = 0.5 * self.C * b["V_CLAMP"] * b["V_CLAMP"]
            shed = 0.0
            if self.E > emax:
                shed = self.E - emax
                self.E = emax
            if p_in == 0.0 and v >= b["V_CLAMP"]:
                shed += self._p_avail(t_s, v) * dt
            # what the clamp took off the top was never stored: not harvested, shed
            acct["harvested_j"] += p_in * dt - shed
            acct["clamp_shed_j"] += shed
            acct["supervisor_j"] += p_sup * dt
            acct["leakage_j"] += p_leak * dt
            acct["sense_divider_j"] += p_sense * dt
            done += dt
            if self.on:
                st = self.state
                self.energy_by_state[st] = self.energy_by_state.get(st, 0.0) + p_load * dt
                self.chip_j[st] = self.chip_j.get(st, 0.0) + SP.V_OUT * ic * dt
                self.time_s[st] = self.time_s.get(st, 0.0) + dt
                acct["regulator_j"] += ((v - SP.V_OUT) * ic + v * SP.I_LDO_Q_A) * dt
                acct["esr_j"] += i * i * b["ESR_OHM"] * dt
                if st == "relay":
                    acct["relay_coil_j"] += v * SP.RELAY_A * dt
                vt = self.v_oc() - i * b["ESR_OHM"]
                if self.vmin is None or vt < self.vmin:
                    self.vmin = vt
                # paper: 200 checks at 1 MHz = 200 us; ours: ~44 ms RC filter; both
                # shorter than a step: any step spent below V_OFF cuts
                if vt < b["V_OFF"]:
                    self._t_int = t0 + int(done * 1e6)
                    self.clock.us = max(self.clock.us, self._t_int)
                    self._cut()
            else:
                self.off_s += dt
        self._t_int = t1
        self.trace.sample(t1 / 1e6, self.v_oc())

    def _cut(self):
        was = self.state
        self.on = False
        self.cuts += 1
        self.dead = True
        self.state = "off"
        self.trace.sample(self.clock.us / 1e6, self.v_oc(), force=True)
        self.trace.mark(self.clock.us / 1e6, "cut")
        fl = self._flash
        if was == "flash" and fl is not None and hasattr(fl, "arm_cut"):
            # the power dies during the flash write the store is about to make: that
            # write is torn (only a prefix programmed, as NOR flash does) and raises
            # PowerLost from inside the store (tools/flashsim.py)
            try:
                HostPort.power_lost(self)
            except PowerLost:
                pass
            self.torn_writes = getattr(self, "torn_writes", 0) + 1
            fl.arm_cut(0, tear=True)
            return
        HostPort.power_lost(self)   # clears RTC / RAM state, raises PowerLost

    def _alive(self):
        # every port call: bring the physics up to now; after a cut, every call fails
        # again (firmware code may have caught the first PowerLost in a broad except)
        if self.dead:
            raise PowerLost()
        self._integrate()

    def charge_until_on(self, deadline_us=None):
        # regulator off: only the supervisor, the sense divider and leakage draw; the
        # supervisor connects after V_term >= 4.5 V for 20 checks (20 us at 1 MHz)
        self._integrate()
        self.on = False
        self.state = "off"
        b = self.b
        while self.v_oc() < b["V_ON"]:
            if deadline_us is not None and self.clock.us >= deadline_us:
                return False
            v = self.v_oc()
            p = self._p_in(self.clock.us / 1e6, max(v, 0.5)) - v * (b["I_SUPERVISOR_A"] + b["LEAK_A"])
            if p <= 0:
                step = 1.0
            else:
                # time to the threshold at this power (bounded step for accuracy)
                need = 0.5 * self.C * (b["V_ON"] ** 2 - v * v)
                step = min(max(need / p, 0.001), 5.0)
            self.clock.advance_us(int(step * 1e6) + 1)
            self._integrate()
        self.clock.advance_us(max(1, int(b["ON_DELAY_S"] * 1e6)))
        self._integrate()
        self.on = True
        self.dead = False
        self.reset_kind = RESET_POWER_ON
        self.trace.sample(self.clock.us / 1e6, self.v_oc(), force=True)
        self.trace.mark(self.clock.us / 1e6, "on")
        return True

    def boot(self):
        # reset -> app loop: ROM boot, RF calibration, interpreter start
        self._enter("boot", self.rng.uniform(*self.cm["T_BOOT"]))
        self.state = "active"

    def _enter(self, state, seconds):
        self._alive()
        self.state = state
        self.clock.advance_us(int(seconds * 1e6))
        self._integrate()

    def vterm(self):
        return self.v_oc() - self._current() * self.b["ESR_OHM"]

    # -- port interface ------------------------------------------------------------
    def ticks_ms(self):
        self._alive()
        return self.clock.ms

    def vcap_mv(self):
        self._alive()
        # switched divider -> the chip's ADC (its resolution, noise and range), averaged
        # as device.py does; the divider draws while it is on (settle + samples)
        v = self.v_oc()
        e = v * v / self.b["R_ADC_DIV_OHM"] * SP.ADC_SETTLE_S
        self.E = max(0.0, self.E - e)
        self.acct["adc_divider_j"] += e
        acc = 0.0
        step = self.adc_step
        top = int(self.adc_max / step) * step
        for _ in range(SP.ADC_SAMPLES):
            mv = self.vterm() * 1000.0 + self.rng.gauss(0.0, self.adc_noise)
            mv = min(max(mv, 0.0), top)
            acc += int(mv / step) * step
        return int(acc / SP.ADC_SAMPLES)

    def activity(self, state):
        self._alive()
        if state == "wifi_join":
            self.state = state        # wifi_connect() charges the join itself
        elif state == "tls":
            self._enter("tls", self.rng.uniform(*self.cm["T_TLS"]))
        elif state == "tx":
            self._enter("tx", self.rng.uniform(*self.cm["T_TX"]))
        elif state == "flash":
            self._enter("flash", self.rng.uniform(*SP.T_FLASH))
        else:
            self.state = state

    def sleep_ms(self, ms):
        self._alive()
        self.state = "sleep"
        self.clock.advance_ms(ms)
        self._integrate()
        # ESP8266: the UART keeps receiving into its ring buffer meanwhile (device.py
        # idles it in modem sleep with the UART on; the ring keeps the oldest rxbuf
        # bytes). ESP32-C3: light sleep gates the UART's clock; device.py re-arms it on
        # wake-up, so what the meter sent meanwhile was never received.
        u = self.uart
        if not self.cm["SLEEP_KEEPS_UART"] and u is not None:
            u.configure(u.baud, u.bits, u.parity, u.stop, u.invert)

    def deep_sleep(self, ms):
        self._alive()
        self.close_uart()
        self.wifi_up = False
        self.state = "deep_sleep"
        self.events.append((self.clock.ms, "deep_sleep", ms))
        self.clock.advance_ms(ms)
        self._integrate()
        self.reset_kind = RESET_DEEP_SLEEP
        raise DeepSleep(ms)

    def uart_open(self, baud, bits=7, parity=0, stop=1, rxbuf=1024, invert=False, timeout=50):
        self._alive()
        return HostPort.uart_open(self, baud, bits, parity, stop, rxbuf, invert, timeout)

    def pulse(self, name, ms):
        self._alive()
        if name not in self.board:
            raise ValueError("no pin " + name)
        self.pulses.append((self.clock.ms, name, ms))
        self.events.append((self.clock.ms, "pulse", name))
        self.trace.mark(self.clock.us / 1e6, "relay")
        self._enter("relay", ms / 1000.0)   # coil current on top of the active chip
        self.state = "active"

    def wifi_connect(self, ssid, password, timeout_ms=10000):
        self._alive()
        self.joins += 1
        t = self.rng.uniform(*self.cm["T_WIFI_JOIN"])
        ok = self.wifi_ok and t * 1000 <= timeout_ms
        if ok and self.wifi_fail and self.rng.random() < self.wifi_fail:
            ok = False                # the AP did not answer: the join runs to its timeout
        if not ok:
            self.join_fails += 1
        self._enter("wifi_join", t if ok else timeout_ms / 1000.0)
        self.events.append((self.clock.ms, "wifi_join", ok))
        if ok and self.ntp_s:
            # a firmware that waits for an NTP answer after every join (the reference)
            self._enter("active", self.rng.uniform(*self.ntp_s))
        self.wifi_up = ok
        self.state = "active"
        return ok

    def wifi_disconnect(self):
        self._alive()
        self.wifi_up = False
        self.state = "active"

    def wall_time(self):
        self._alive()
        return HostPort.wall_time(self)
