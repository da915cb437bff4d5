# The app's meter line across a change at the meter (runs on CPython and MicroPython):
# locked on historic TIC, the meter is switched to standard mode (Enedis does it on the
# supplier's request) -- the app hears only garbage at 1200 bd, searches again after a
# few empty reads, finds 9600 bd standard, remembers it (config and RTC) and records
# again; nothing it recorded before is lost.
from firmware.app import App
from firmware.linereader import RELOCK_MISSES
from firmware import config
from firmware.port import DeepSleep
from tools.hostport import HostPort, MeterLine
from tests.fw.portal_util import tmpdir, rmtree
from tests.fw.util import corpus

MICROPYTHON_HEAP = "4M"


class Device:
    # the app as the device runs it: a deep sleep restarts it (RTC memory kept)
    def __init__(self, port, cfg):
        self.port = port
        self.cfg = cfg
        self.app = App(port, cfg)
        self.recorded = 0
        self.errors = {}

    def step(self):
        try:
            self.app.step()
            self.app.save_rtc()
        except DeepSleep:
            self.recorded += self.app.stats["readings_recorded"]
            for k, v in self.app.stats["errors"].items():
                self.errors[k] = self.errors.get(k, 0) + v
            self.app = App(self.port, self.cfg)

    def readings(self):
        return self.recorded + self.app.stats["readings_recorded"]

    def step_until(self, done, max_steps=600):
        # step until done() holds; a bounded wait: the test fails, it does not hang
        for _ in range(max_steps):
            if done():
                return
            self.step()
        raise AssertionError("not reached in %d steps: line %s, stats %s" % (
            max_steps, self.app.meter.line, self.app.stats))

    def error(self, kind):
        return self.errors.get(kind, 0) + self.app.stats["errors"].get(kind, 0)


def _switch_meter(port, app, capture, baud):
    # the meter's transmitter now sends another capture at another speed, from now on
    port.line = MeterLine(capture, baud, 7, 0, 1, port.clock.us, True)
    if app.meter.uart is not None:
        u = app.meter.uart
        u.line = port.line
        u.configure(u.baud, u.bits, u.parity, u.stop, u.invert)


def test_meter_switched_to_standard_mode_is_found_again():
    d = tmpdir("line")
    try:
        port = HostPort(capture=corpus("tic/hist_tempo_mono_pyteleinfo.txt"), meter_baud=1200,
                        loop=True, fs_root=d)
        cfg = config.defaults()
        dev = Device(port, cfg)
        dev.step_until(lambda: dev.readings() >= 3)
        assert dev.app.line == "tic-historic" and cfg["meter_line"] == "tic-historic"
        before = dev.app.store.count
        _switch_meter(port, dev.app, corpus("tic/std_mono_base_ticdecodecpp.bin"), 9600)
        n = dev.readings()
        dev.step_until(lambda: dev.app.line == "tic-standard" and dev.readings() >= n + 3)
        assert dev.error("line_lost") == 1
        # remembered for the next power-on
        assert config.load(d).get("meter_line") == "tic-standard"
        # the readings from before the switch are still in the store, and new ones follow
        assert dev.app.store.count >= before + 3
        last = dev.app.latest
        assert last["protocol"] == "tic-standard" and last["energy_import_wh"] > 0
    finally:
        rmtree(d)


def test_a_few_lost_frames_do_not_unlock():
    # fewer empty reads than RELOCK_MISSES (a cable wiggle, a meter reboot) keep the line
    d = tmpdir("line")
    try:
        port = HostPort(capture=corpus("tic/hist_tempo_mono_pyteleinfo.txt"), meter_baud=1200,
                        loop=True, fs_root=d)
        dev = Device(port, config.defaults())
        dev.step_until(lambda: dev.readings() >= 2)
        app = dev.app
        for _ in range(RELOCK_MISSES["tic-historic"] - 1):
            app.read(300)            # too short for a whole frame: nothing
        assert app.meter.misses == RELOCK_MISSES["tic-historic"] - 1
        assert app.line == "tic-historic"
        n = dev.readings()
        dev.step_until(lambda: dev.readings() >= n + 2)
        assert dev.app.meter.misses == 0 and dev.app.line == "tic-historic"
        assert dev.error("line_lost") == 0
    finally:
        rmtree(d)
