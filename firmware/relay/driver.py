# Two-coil latching relay driver: one pulse on the SET coil (load on) or the RESET
# coil (load shed), never both, only when the energy manager can afford it. The
# relay keeps its position without power, so the firmware persists what it last
# commanded (RTC memory across deep sleep, a small file across power loss) and
# re-asserts it with one pulse when it is in doubt (after a power loss or an
# interrupted pulse).
from firmware.relay.policy import ON, OFF

PULSE_MIN_MS = 10
PULSE_MAX_MS = 50
UNKNOWN = 2
STATE_FILE = "/relay.state"


def clamp_pulse(ms):
    try:
        ms = int(ms)
    except (TypeError, ValueError):
        ms = 30
    return PULSE_MIN_MS if ms < PULSE_MIN_MS else PULSE_MAX_MS if ms > PULSE_MAX_MS else ms


class RelayDriver:
    def __init__(self, port, pulse_ms=30, fs_root=None):
        self.port = port
        self.pulse_ms = clamp_pulse(pulse_ms)
        self.fs_root = fs_root if fs_root is not None else getattr(port, "fs_root", "")
        self.position = UNKNOWN   # what the contacts are known to be
        self.wanted = None        # what we must reach (set when a pulse is owed)
        self.pulses = 0

    # -- persistence ------------------------------------------------------------
    def dump(self):
        w = 3 if self.wanted is None else self.wanted
        return bytes((self.position, w))

    def load_rtc(self, data):
        # deep-sleep wake-up: RTC memory is trustworthy
        if data and len(data) >= 2 and data[0] in (ON, OFF, UNKNOWN):
            self.position = data[0]
            self.wanted = None if data[1] == 3 else data[1]
            return True
        return False

    def load_file(self):
        # power-on: the file says what was last commanded; the contacts probably are
        # there, but a cut between "pending" and "done" leaves doubt -> re-assert.
        try:
            with open(self.fs_root + STATE_FILE) as f:
                s = f.read().strip()
        except OSError:
            return None
        parts = s.split()
        if len(parts) == 2 and parts[0] in ("0", "1"):
            last = int(parts[0])
            if parts[1] == "done":
                self.position = last    # the pulse completed before the power went
                self.wanted = None
            else:
                self.position = UNKNOWN  # cut during the pulse: one pulse confirms it
                self.wanted = last
            return last
        return None

    def _save(self, state, phase):
        path = self.fs_root + STATE_FILE
        tmp = path + ".tmp"
        try:
            with open(tmp, "w") as f:
                f.write("%d %s\n" % (state, phase))
            try:
                import os
                os.rename(tmp, path)
            except OSError:
                pass
        except OSError:
            pass  # a read-only or full filesystem must not stop load shedding

    # -- switching ---------------------------------------------------------------
    def request(self, state):
        if state != self.position:
            self.wanted = state

    def owed(self):
        return self.wanted is not None and self.wanted != self.position

    def apply(self, can_afford):
        # Pulse the coil for the owed state if the capacitor can afford it.
        # -> (state, coil) when a pulse was given, else None (still owed).
        if not self.owed():
            self.wanted = None
            return None
        if not can_afford():
            return None
        state = self.wanted
        coil = "relay_set" if state == ON else "relay_reset"
        self._save(state, "pending")
        self.port.activity("active")
        self.port.pulse(coil, self.pulse_ms)   # exactly one coil, fixed length
        self.position = state
        self.wanted = None
        self.pulses += 1
        self._save(state, "done")
        return state, coil
