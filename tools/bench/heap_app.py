# One boot of the application in a measured heap (MicroPython unix port): the module
# that tools/bench/bench_heap.py and tests/host/test_heap.py pack into a ROMFS image with
# firmware/ and the host port, so that, as on the device (frozen / ROMFS), no module's
# bytecode is in the heap and what is measured is the application's own data.
#
#   boot(capture_path, meter, frames, fs_root, period_ms, state, until_readings=None)
#       -> dict of figures, with "state" to pass to the next boot
#
# One process is one boot, as on the device: a deep sleep or reset ends the process
# (RAM is gone, the next boot imports everything again into a fresh heap); what survives
# is what survives on the device — RTC memory and the virtual clock (in `state`, carried
# by the driver), the flash record area and config.json / uplink.json (files in fs_root).
# The meter capture (in the heap: on the device the meter is outside) and the record
# area (a FileFlash: a file, nothing in the heap, like the raw SPI flash of the device)
# are set up first; "base" is what is allocated then, so figures above it are the app's.
import gc
import sys

from firmware.port import DeepSleep, PowerLost, Reset

WIRE = {
    "tic-historic": (1200, 7, 0, False),
    "tic-standard": (9600, 7, 0, False),
    "dsmr": (115200, 8, None, True),
}


def boot(capture_path, meter, frames, fs_root, period_ms=None, state=None,
         until_readings=None, sectors=16):
    # until_readings: stop once the run (all boots) has recorded that many readings and
    # report what each of the App's attributes holds ("holders")
    gc.collect()
    marks = [("start", gc.mem_alloc())]
    # firmware modules the device has too (main.py loads the config; port, flash)
    from firmware.port.flash import FileFlash
    from firmware import config
    import firmware.port.boards  # noqa: F401
    gc.collect()
    marks.append(("port/config modules", gc.mem_alloc()))
    from tools.hostport import HostPort, Clock
    gc.collect()
    marks.append(("tools.hostport", gc.mem_alloc()))
    st = state or {}
    with open(capture_path, "rb") as f:
        data = f.read()
    baud, bits, parity, inv = WIRE[meter]
    cfg = config.load(fs_root)
    cfg.pop(config.ERROR_KEY, None)   # no config.json: the defaults (no network)
    flash = FileFlash(fs_root + "/records.bin", sectors)
    port = HostPort(capture=data, meter_baud=baud, meter_bits=bits, meter_parity=parity,
                    meter_invert=inv, repeat=frames, period_ms=period_ms, fs_root=fs_root,
                    flash=flash, quiet=True, clock=Clock(st.get("us", 0)),
                    wall_start=cfg.get("replay_wall_start"))
    data = None
    port.line.t0 = 0                  # the meter has been sending since the first boot
    port.reset_kind = st.get("reset_kind", port.reset_kind)
    if st.get("rtc"):
        port.rtc = bytes(bytearray(int(st["rtc"][i:i + 2], 16)
                                   for i in range(0, len(st["rtc"]), 2)))
    if st.get("wall_base") is not None:
        port._wall_base = st["wall_base"]
        port._wall_at_us = st["wall_at_us"]
    gc.collect()
    marks.append(("port + capture", gc.mem_alloc()))
    base = marks[-1][1]
    total = st.get("recorded", 0)
    out = {"base": base, "marks": marks, "recorded": 0, "uploaded": 0, "errors": {},
           "uploads": 0, "uploads_ok": 0, "retained": 0, "steady": [], "end": None}
    from firmware.app import App
    app = App(port, cfg)
    gc.collect()
    marks.append(("App()", gc.mem_alloc()))
    retained = 0
    try:
        while True:
            if port.meter_exhausted() and (app.store.count == 0 or
                                           not app.network_configured()):
                out["end"] = "done"
                break
            if until_readings is not None and \
                    total + app.stats["readings_recorded"] >= until_readings:
                out["end"] = "probe"
                break
            app.step()
            app.save_rtc()
            gc.collect()
            a = gc.mem_alloc()
            if a - base > retained:
                retained = a - base
            # the host port's own records of hardware events (not the app's)
            port.events = []
            port.pulses = []
            port.logs = []
            s = app.stats
            del s["relay"][:]
            for u in s["uploads"]:
                out["uploads"] += 1
                if u.get("ok"):
                    out["uploads_ok"] += 1
            del s["uploads"][:]
            if s["readings_recorded"] > len(out["steady"]):
                out["steady"].append(a - base)
    except DeepSleep:
        out["end"] = "deep_sleep"
    except Reset:
        out["end"] = "reset"
    except PowerLost:
        out["end"] = "power_lost"
    s = app.stats
    out["recorded"] = s["readings_recorded"]
    out["uploaded"] = s["readings_uploaded"]
    out["errors"] = s["errors"]
    out["backlog"] = app.store.count
    out["retained"] = retained
    out["modules"] = sorted(k for k in sys.modules)
    if out["end"] == "probe":
        out["holders"] = holders(app)
    app = s = None
    gc.collect()
    # the boot is over (the device would be asleep): the loop's own bookkeeping below
    # must not be what runs out of heap
    from binascii import hexlify
    out["state"] = {"us": port.clock.us, "reset_kind": port.reset_kind,
                    "rtc": hexlify(port.rtc or b"").decode(),
                    "wall_base": port._wall_base, "wall_at_us": port._wall_at_us,
                    "recorded": total + out["recorded"]}
    return out


def holders(app):
    # -> [(attribute, bytes)]: heap freed by dropping each of the App's attributes in
    # turn (what each part of the application holds between steps), biggest first
    out = []
    names = sorted(app.__dict__)
    gc.collect()
    a = gc.mem_alloc()
    for k in names:
        setattr(app, k, None)
        gc.collect()
        b = gc.mem_alloc()
        if a - b >= 64:
            out.append((k, a - b))
        a = b
    out.sort(key=lambda x: -x[1])
    return out
