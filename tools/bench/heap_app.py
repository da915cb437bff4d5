# The application loop in a measured heap (MicroPython unix port): the module that
# tools/bench/bench_heap.py and tests/host/test_heap.py pack into a ROMFS image with
# firmware/ and the host port, so that, as on the device (frozen / ROMFS), no module's
# bytecode is in the heap and what is measured is the application's own data.
#
#   run(capture_path, meter, frames, cfg=None, step_cb=None) -> dict of figures
#
# The meter capture (in the heap: on the device the meter is outside) and the record
# area (a FileFlash: a file, nothing in the heap, as the raw SPI flash on the device)
# are set up first; "base" is what is allocated then, so `peak - base` is the app's.
import gc
import sys
import micropython

from firmware.port import DeepSleep, PowerLost, Reset

WIRE = {
    "tic-historic": (1200, 7, 0, False),
    "tic-standard": (9600, 7, 0, False),
    "dsmr": (115200, 8, None, True),
}


def _peak():
    # MicroPython 1.27+: the heap's high-water mark since the last reset
    return micropython.mem_peak() if hasattr(micropython, "mem_peak") else gc.mem_alloc()


def run(capture_path, meter, frames, cfg=None, fs_root="/tmp", flash_path=None,
        period_ms=None, sectors=16, until_readings=None, max_boots=200):
    # until_readings: stop after that many readings and report the App's holders
    gc.collect()
    marks = [("start", gc.mem_alloc())]
    # firmware modules the device has too (main.py loads the config; port, flash)
    from firmware.port.flash import FileFlash
    from firmware import config
    import firmware.port.boards
    gc.collect()
    marks.append(("port/config modules", gc.mem_alloc()))
    from tools.hostport import HostPort
    gc.collect()
    marks.append(("tools.hostport", gc.mem_alloc()))
    with open(capture_path, "rb") as f:
        data = f.read()
    baud, bits, parity, inv = WIRE[meter]
    c = dict(config.DEFAULTS)
    if cfg:
        for k in cfg:
            c[k] = cfg[k]
    flash = FileFlash(flash_path or (fs_root + "/heap_flash.bin"), sectors)
    port = HostPort(capture=data, meter_baud=baud, meter_bits=bits, meter_parity=parity,
                    meter_invert=inv, repeat=frames, period_ms=period_ms, fs_root=fs_root,
                    flash=flash, quiet=True, wall_start=c.get("replay_wall_start"))
    data = None
    gc.collect()
    marks.append(("port + capture", gc.mem_alloc()))
    from firmware.app import App
    gc.collect()
    base = gc.mem_alloc()
    marks.append(("firmware.app imported", base))
    out = {"base": base, "marks": marks, "recorded": 0, "uploaded": 0, "boots": 0, "deep_sleeps": 0,
           "steady": [], "peak_step": 0, "errors": {}, "uploads_ok": 0, "uploads": 0}
    peak_step = 0
    boots = 0
    while boots < max_boots:
        boots += 1
        app = App(port, dict(c))
        if boots == 1:
            gc.collect()
            marks.append(("App()", gc.mem_alloc()))
        try:
            while True:
                if port.meter_exhausted() and (app.store.count == 0 or
                                               not app.network_configured()):
                    break
                if until_readings is not None and \
                        out["recorded"] + app.stats["readings_recorded"] >= until_readings:
                    # probe run: what each part of the live app holds, mid-run
                    out["holders"] = holders(app)
                    raise StopIteration
                app.step()
                app.save_rtc()
                gc.collect()
                a = gc.mem_alloc()
                if a - base > peak_step:
                    peak_step = a - base
                # the host port's own records of hardware events (not the app's)
                port.events = []
                port.pulses = []
                port.logs = []
                st = app.stats
                del st["relay"][:]
                n_up = len(st["uploads"])
                if n_up:
                    for u in st["uploads"]:
                        out["uploads"] += 1
                        if u.get("ok"):
                            out["uploads_ok"] += 1
                    del st["uploads"][:]
                r = out["recorded"] + st["readings_recorded"]
                if r >= 5 * (len(out["steady"]) + 1):
                    out["steady"].append(a - base)
            _merge(out, app.stats)
            out["backlog"] = app.store.count
            break
        except DeepSleep:
            _merge(out, app.stats)
            out["deep_sleeps"] += 1
        except (Reset, PowerLost):
            _merge(out, app.stats)
        except StopIteration:
            _merge(out, app.stats)
            break
        app = None
        gc.collect()
    out["boots"] = boots
    app = None
    gc.collect()
    out["after"] = gc.mem_alloc() - base
    out["peak_step"] = peak_step
    out["modules"] = sorted(k for k in sys.modules)
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


def _merge(out, stats):
    out["recorded"] += stats["readings_recorded"]
    out["uploaded"] += stats["readings_uploaded"]
    for k, v in stats["errors"].items():
        out["errors"][k] = out["errors"].get(k, 0) + v
