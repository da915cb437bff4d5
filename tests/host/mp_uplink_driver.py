# Drives firmware/uplink on either Python, one command per stdin line, one JSON line out:
#   fill N [dsmr]      append N readings to the store (RAM flash)
#   send               one upload window -> {"res": ..., "count": backlog, "commands": [...]}
#   new                a fresh Uplink object (as after a deep sleep without RTC state)
#   quit
# argv[1]: JSON config file (device config keys + "fs_root", "chip").
# Run by tests/host/test_uplink_*.py with CPython and with the MicroPython unix port.
import sys
import json

sys.path.insert(0, ".")
from tests.fw.uplink_fixtures import RamFlash, FakePort, fill, dsmr_reading, tic_like  # noqa
from firmware.store.log import Store  # noqa
from firmware.uplink.uplink import Uplink  # noqa


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    port = FakePort(cfg.get("fs_root", "/tmp"), cfg.get("chip", "host"))
    store = Store(RamFlash(sectors=32))
    cmds = []
    up = [None]

    def make():
        u = Uplink(cfg, port, "0a1b2c")
        u.on_command = cmds.append
        up[0] = u
    make()
    t = [1700000000]
    latest = [None]
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        w = line.split()
        if not w:
            continue
        if w[0] == "quit":
            break
        if w[0] == "fill":
            n = int(w[1])
            r = dsmr_reading() if len(w) > 2 and w[2] == "dsmr" else None
            got = fill(store, n, t[0], 5, r)
            t[0] += 5 * n
            latest[0] = got[-1][1]
            out = {"seqs": [g[0] for g in got], "t": [g[2] for g in got]}
        elif w[0] == "send":
            res = up[0].send(store, latest[0])
            out = {"res": res, "count": store.count, "commands": cmds[:],
                   "logs": port.logs[-5:]}
        elif w[0] == "new":
            make()
            out = {"ok": True}
        else:
            out = {"error": "unknown command"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


main()
