# Shared by the uplink tests on both Pythons (tests/fw/test_uplink*.py) and by the
# MicroPython driver the host tests run (tests/host/mp_uplink_driver.py).
import os

try:
    from tests.fw.util import corpus
except ImportError:  # run from the driver with a different sys.path
    from util import corpus  # noqa


from firmware.port.flash import RamFlash  # noqa: F401 (re-exported for the tests)


class FakePort:
    # the port methods the uplink uses (firmware/port/__init__.py names)
    chip = "host"

    def __init__(self, fs_root, chip="host", vcap=4800):
        self.fs_root = fs_root
        self.chip = chip
        self.board = {"relay_set": 5, "relay_reset": 4}
        self.logs = []
        self.activities = []
        self._vcap = vcap

    def log(self, msg):
        self.logs.append(msg)

    def activity(self, state):
        self.activities.append(state)

    def vcap_mv(self):
        return self._vcap

    def device_id(self):
        return "0a1b2c"


def tmpdir(name):
    base = os.getenv("UPLINK_TMP") or "/tmp"
    d = base + "/uplink-" + name
    try:
        os.mkdir(d)
    except OSError:
        pass
    for f in os.listdir(d):
        try:
            os.remove(d + "/" + f)
        except OSError:
            pass
    return d


DSMR_FILES = ("dsmr/nl_v4.2_athom_kaifa.txt", "dsmr/nl_v5_athom_spec.txt",
              "dsmr/be_emucs_athom_spec_1.txt")


def dsmr_reading(rel="dsmr/nl_v4.2_athom_kaifa.txt"):
    from firmware.reading.dsmr import DsmrDecoder
    out = DsmrDecoder().feed(corpus(rel))
    return out[0] if out else None


def tic_like(i):
    # a historic-TIC-shaped reading (decoder output names), varied with i
    return {"protocol": "tic-historic", "meter_id": "021728123456", "timestamp": None,
            "energy_import_wh": 12345678 + 7 * i,
            "registers": {"HCHC": 6000000 + 3 * i, "HCHP": 6345678 + 4 * i},
            "apparent_power_va": 400 + (i * 37) % 3000, "current_a": [2 + i % 13],
            "tariff_period": "HP.." if i % 2 else "HC..", "subscribed_current_a": 30,
            "overload": i % 50 == 49, "tomorrow": None}


def fill(store, n, t0=1700000000, step=5, reading=None):
    """Append n readings to a store; -> list of (seq, reading, t)."""
    out = []
    for i in range(n):
        r = dict(reading) if reading is not None else tic_like(i)
        if reading is not None and r.get("energy_import_wh") is not None:
            r["energy_import_wh"] += i
        t = t0 + step * i
        seq = store.add_reading(r, t, "ntp")   # as the app records it
        out.append((seq, r, t))
    return out
