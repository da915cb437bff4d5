# Serve the real set-up portal (firmware/portal) on this computer.
#
#   python -m tools.portal --port 8080 --config-dir DIR [--scan SCAN.json]
#          [--dns-port 5300] [--status STATUS.json] [--stay] [--micropython]
#
# Open http://127.0.0.1:8080/ in a browser; a saved form goes to DIR/config.json.
# SCAN.json is a JSON list of {"ssid": ..., "rssi": ...} standing in for the Wi-Fi scan;
# an entry may carry "password": joining it then succeeds only with that password (an
# SSID not in the list never joins). --join ok|fail overrides that. --stay restarts the
# portal after a save (the device would reboot) so a browser can keep testing.
# Runs on CPython and on the MicroPython unix port (--micropython re-runs itself there).
import json
import os
import sys
import time

from tools.hostport import HostPort

USAGE = ("usage: python -m tools.portal --port P --config-dir DIR [--scan SCAN.json] "
         "[--dns-port N] [--status STATUS.json] [--bind ADDR] [--device-id HEX] "
         "[--join scan|ok|fail] [--stay] [--max-s S] [--micropython]")

try:
    _ticks = time.ticks_ms
    _tdiff = time.ticks_diff
except AttributeError:
    def _ticks():
        return int(time.monotonic() * 1000)

    def _tdiff(a, b):
        return a - b


class PortalPort(HostPort):
    # The host port with a real clock (the portal waits on real sockets) and a Wi-Fi
    # join decided by the scan list.
    def __init__(self, fs_root, scan, device_id="0a1b2c", join="scan", ip="127.0.0.1",
                 quiet=False):
        HostPort.__init__(self, fs_root=fs_root, scan=scan, device_id=device_id, quiet=quiet)
        self.join = join
        self.ap_ip = ip
        self.joins = []
        self.ap_calls = []

    def ticks_ms(self):
        return _ticks()

    def ticks_diff(self, a, b):
        return _tdiff(a, b)

    def sleep_ms(self, ms):
        self.activity("sleep")
        time.sleep(ms / 1000)

    def wifi_connect(self, ssid, password, timeout_ms=10000):
        self.activity("wifi_join")
        ok = False
        if self.join == "ok":
            ok = True
        elif self.join == "scan":
            for s in self.scan:
                if s.get("ssid") == ssid:
                    want = s.get("password")
                    ok = want is None or want == password
                    break
        self.joins.append((ssid, ok))
        self.log("host: join %s -> %s" % (json.dumps(ssid), "ok" if ok else "failed"))
        self.wifi_up = ok
        return ok

    def wifi_scan(self):
        out = []
        for s in self.scan:
            v = s.get("ssid", "")
            out.append((v.encode() if isinstance(v, str) else bytes(v), s.get("rssi", -90)))
        return out

    def ap_start(self, ssid, password):
        self.ap_calls.append(("start", ssid))
        return HostPort.ap_start(self, ssid, password)

    def ap_stop(self):
        self.ap_calls.append(("stop", None))
        HostPort.ap_stop(self)

    def log(self, msg):
        self.logs.append(msg)
        if self.quiet:
            return
        print(msg)
        try:
            sys.stdout.flush()
        except AttributeError:
            pass


def parse_args(argv):
    opts = {"port": None, "config-dir": None, "scan": None, "dns-port": "5300",
            "status": None, "bind": "127.0.0.1", "device-id": "0a1b2c", "join": "scan",
            "stay": False, "micropython": False, "max-s": None}
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("--") or a[2:] not in opts:
            raise SystemExit(USAGE)
        k = a[2:]
        if k in ("stay", "micropython"):
            opts[k] = True
            i += 1
            continue
        if i + 1 >= len(argv):
            raise SystemExit(USAGE)
        opts[k] = argv[i + 1]
        i += 2
    if opts["port"] is None or opts["config-dir"] is None:
        raise SystemExit(USAGE)
    return opts


def _reexec_micropython(argv):
    # replace this process (so a signal to it reaches the portal) with the unix port
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    mp = os.path.join(root, ".venv", "bin", "micropython")
    env = dict(os.environ)
    env["MICROPYPATH"] = root + ":" + os.path.join(root, ".mplib")
    args = []
    for i, a in enumerate(argv):
        if a == "--micropython":
            continue
        if i > 0 and argv[i - 1] in ("--config-dir", "--scan", "--status"):
            a = os.path.abspath(a)     # the unix port runs from the repository root
        args.append(a)
    os.chdir(root)
    sys.stdout.flush()
    os.execve(mp, [mp, "-X", "heapsize=256K", "-m", "tools.portal"] + args, env)


def main(argv):
    o = parse_args(argv)
    if o["micropython"] and sys.implementation.name != "micropython":
        return _reexec_micropython(argv)
    from firmware.portal import run as portal
    scan = []
    if o["scan"]:
        with open(o["scan"]) as f:
            scan = json.load(f)
    status = None
    if o["status"]:
        with open(o["status"]) as f:
            status = json.load(f)
    try:
        os.mkdir(o["config-dir"])
    except OSError:
        pass
    port = PortalPort(o["config-dir"], scan, o["device-id"], o["join"])
    http_port = int(o["port"])
    dns_port = int(o["dns-port"])
    max_ms = int(o["max-s"]) * 1000 if o["max-s"] else None
    port.log("portal: listening on http://%s:%d/ dns %s:%d (%s)" % (
        o["bind"], http_port, o["bind"], dns_port, sys.implementation.name))
    while True:
        res = portal.run(port, o["config-dir"], status, dns_port, http_port, None, o["bind"],
                         max_ms)
        port.log("portal: done %s" % json.dumps(res))
        if not o["stay"] or res["reason"] == "timeout":
            return 0
        port.log("portal: restarting (the device would reboot here)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
