# Replay harness: runs the firmware application (the same App that main.py runs) on
# the host port, the meter UART fed from a capture at the true wire rate of the
# virtual clock, real sockets for the network, the store on a flash model.
#
#   python -m tools.replay CAPTURE [--config FILE] [--micropython | --target CHIP]
#          [--report OUT.json] [--readings OUT.jsonl] [--meter tic-historic|tic-standard|dsmr]
#          [--repeat N]
#
# Runs on CPython and on the MicroPython unix port (--micropython re-runs this very
# module under `micropython`, so both produce their report from the same code).
# --target esp8266|esp32c3 re-runs it on that chip's variant of the unix port
# (tools/mp32.py: the chip's feature switches, object model and 32-bit build), with a
# heap the host-side replay fits in (4 MB: the capture, the host port and the firmware
# compiled from source are in it); the firmware's own heap on the chip is measured by
# `make bench` (tools/bench/bench_heap.py --target).
import json
import os
import sys

from firmware.port import DeepSleep, PowerLost, Reset

# how the meter sends each protocol on the wire (baud, bits, parity, inverted)
WIRE = {
    "tic-historic": (1200, 7, 0, False),
    "tic-standard": (9600, 7, 0, False),
    "dsmr": (115200, 8, None, True),
}


def sniff(data):
    # Which meter sent this capture (host knowledge, used only to drive the fake line;
    # the firmware finds out by itself).
    head = bytes(data[:4096])
    if head[:1] == b"\xdb" or b"\xdb\x08" in head[:64]:
        return "dsmr"
    if b"/" in head and b"!" in head and (b"1-0:" in head or b"0-0:" in head):
        return "dsmr"
    if b"\t" in head:
        return "tic-standard"
    return "tic-historic"


def load_config(path):
    from firmware import config
    if path is None:
        cfg = dict(config.DEFAULTS) if hasattr(config, "DEFAULTS") else {}
    else:
        with open(path) as f:
            raw = json.load(f)
        if hasattr(config, "validate"):
            # the same validation as the set-up page; a replay needs no Wi-Fi network
            cfg, errors = config.validate(raw, required=())
            if errors:
                keys = sorted(errors)
                sys.stderr.write("config %s: invalid %s\n" % (path, ", ".join(
                    "%s (%s)" % (k, errors[k]) for k in keys)))
                raise SystemExit(2)
        else:
            cfg = raw
    return cfg


# A P1 capture holds one telegram; the meter sends one per second (DSMR 5.0.2 §6.2;
# DSMR 2.2-4.x: every 10 s), so the harness repeats it with that period.
P1_PERIOD_MS = 1000
P1_REPEAT = 20


def run(capture_path, cfg, meter=None, repeat=None, fs_root=None, quiet=True, max_boots=1000,
        on_reading=None, flash=None, period_ms=None, device_id="0a1b2c"):
    from tools.hostport import HostPort, read_file
    from firmware.app import App
    data = read_file(capture_path)
    meter = meter or sniff(data)
    if meter == "dsmr":
        repeat = P1_REPEAT if repeat is None else repeat
        period_ms = P1_PERIOD_MS if period_ms is None else period_ms
    repeat = repeat or 1
    baud, bits, parity, inv = WIRE[meter]
    if fs_root is None:
        fs_root = "/tmp/linky-replay-%d" % os.getpid() if hasattr(os, "getpid") else "/tmp/lr"
        try:
            os.mkdir(fs_root)
        except OSError:
            pass
    port = HostPort(capture=data, meter_baud=baud, meter_bits=bits, meter_parity=parity,
                    meter_invert=inv, repeat=repeat, period_ms=period_ms,
                    fs_root=fs_root, quiet=quiet, flash=flash, device_id=device_id,
                    wall_start=cfg.get("replay_wall_start"))
    readings = []
    totals = {"frames_seen": 0, "readings_recorded": 0, "readings_uploaded": 0, "errors": {},
              "relay": [], "uploads": [], "boots": 0, "deep_sleeps": 0, "power_losses": 0}

    def merge(stats):
        for k in ("frames_seen", "readings_recorded", "readings_uploaded", "boots"):
            totals[k] += stats.get(k, 0)
        for k, v in stats.get("errors", {}).items():
            totals["errors"][k] = totals["errors"].get(k, 0) + v
        totals["relay"].extend(stats.get("relay", []))
        totals["uploads"].extend(stats.get("uploads", []))

    idle_uploads = [0]

    def done(app):
        if not port.meter_exhausted():
            return False
        if app.store.count == 0 or not app.network_configured():
            return True
        # the meter is silent and a backlog is left: keep uploading while it drains
        c = app.store.count
        if getattr(app, "_last_backlog", None) == c:
            idle_uploads[0] += 1
        else:
            idle_uploads[0] = 0
        app._last_backlog = c
        return idle_uploads[0] > 50

    app = None
    boots = 0
    while boots < max_boots:
        boots += 1
        app = App(port, dict(cfg))
        # every reading the app records goes into the report's readings list
        orig = app.record

        def record(r, orig=orig):
            readings.append(r)
            if on_reading:
                on_reading(r)
            orig(r)
        app.record = record
        try:
            app.run(until=done)
            merge(app.stats)
            break
        except DeepSleep:
            merge(app.stats)
            totals["deep_sleeps"] += 1
        except Reset:
            merge(app.stats)
            totals["resets"] = totals.get("resets", 0) + 1
        except PowerLost:
            merge(app.stats)
            totals["power_losses"] += 1
    totals["backlog"] = app.store.count if app else None
    totals["store_dropped"] = getattr(app.store, "dropped", 0) if app else 0
    totals["store_aggregated"] = getattr(app.store, "aggregated", 0) if app else 0
    totals["meter"] = meter
    totals["line"] = app.line if app else None
    totals["virtual_s"] = port.clock.us // 1000000
    totals["pulses"] = [list(p) for p in port.pulses]
    return totals, readings


def _reexec_micropython(argv, target=None):
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    mp = os.path.join(root, ".venv", "bin", "micropython")
    if target is not None:
        from tools import mp32
        why = mp32.available()
        if why:
            print("--target %s: %s" % (target, why), file=sys.stderr)
            return 2
        mp = mp32.build(target)
    elif not os.path.exists(mp):
        import shutil
        mp = shutil.which("micropython") or mp
    from tools.mp32 import run_env
    env = run_env()
    args = [a for a in argv if a != "--micropython"]
    if target is not None:
        i = args.index("--target")
        args = args[:i] + args[i + 2:] + ["--target-name", target]
    cmd = [mp, "-X", "heapsize=4M", "-m", "tools.replay"] + args
    return subprocess.call(cmd, cwd=root, env=env)


USAGE = ("usage: python -m tools.replay CAPTURE [--config F] [--report R.json] "
         "[--readings R.jsonl] [--meter M] [--repeat N] [--device-id HEX6] [--verbose] "
         "[--micropython | --target esp8266|esp32c3]")
_VALUED = ("config", "report", "readings", "meter", "repeat", "device_id", "target_name")


class _Opts:
    pass


def _args(argv):
    # the command line, parsed without argparse (the chip variants, like the chips, have
    # no micropython-lib): -> options, or None when it is not understood
    a = _Opts()
    for k in _VALUED:
        setattr(a, k, None)
    a.device_id = "0a1b2c"
    a.verbose = False
    a.capture = None
    i = 0
    while i < len(argv):
        k = argv[i]
        if k in ("--micropython", "--verbose"):
            a.verbose = a.verbose or k == "--verbose"
        elif k.startswith("--") and k[2:].replace("-", "_") in _VALUED and i + 1 < len(argv):
            setattr(a, k[2:].replace("-", "_"), argv[i + 1])
            i += 1
        elif not k.startswith("-") and a.capture is None:
            a.capture = k
        else:
            return None
        i += 1
    if a.capture is None:
        return None
    if a.repeat is not None:
        a.repeat = int(a.repeat)
    return a


def main(argv):
    if "--micropython" in argv and sys.implementation.name != "micropython":
        return _reexec_micropython(argv)
    if "--target" in argv:
        i = argv.index("--target")
        if i + 1 >= len(argv) or argv[i + 1] not in ("esp8266", "esp32c3"):
            print("--target esp8266|esp32c3", file=sys.stderr)
            return 2
        return _reexec_micropython(argv, argv[i + 1])
    a = _args(argv)
    if a is None:
        print(USAGE, file=sys.stderr)
        return 2
    cfg = load_config(a.config)
    report, readings = run(a.capture, cfg, meter=a.meter, repeat=a.repeat,
                           quiet=not a.verbose, device_id=a.device_id)
    report["python"] = sys.implementation.name
    if a.target_name:
        report["target"] = a.target_name
    if a.readings:
        with open(a.readings, "w") as f:
            for r in readings:
                f.write(json.dumps(r) + "\n")
    text = json.dumps(report)
    if a.report:
        with open(a.report, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
