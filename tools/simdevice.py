# The device side of the energy simulator: what the chip does from power-on to the end
# of the run. Boot, open the store on the flash, run the firmware's App until the
# simulator says stop; after a deep sleep or a supervisor cut, boot again (RAM gone,
# flash and RTC memory as the port keeps them).
#
# tools/sim.py runs it in-process on SimPort; with --target esp8266|esp32c3 the same
# loop runs on that chip's variant of the MicroPython unix port (tools/simremote.py),
# every port call going to the simulator's SimPort over a loopback socket. So this
# module runs on CPython and on the chip variants: no f-strings, nothing the stock
# images lack.
#
# `hooks` is the simulator's side of the run (tools/sim.py LocalHooks, or
# tools/simremote.RemoteHooks on a variant):
#   boot()            -> False when the run is over; else the chip has been powered
#                        (the supervisor connected) and has booted
#   until(app)        -> True to stop the app loop (end of the run)
#   measured(seq)     the app recorded a reading as store record seq
#   window_done()     after each upload window (the MQTT sink waits for the broker)
#   ended(kind)       "deep_sleep" or "cut": the app ended that way
from firmware.port import DeepSleep, PowerLost


def instrument(app, hooks):
    # count every reading from the moment the app records it: wrap the app's way into
    # the store and its record(), so a reading is "measured" once it has a store seq
    ctx = [False, None]
    store = app.store
    orig_add = store.add_reading

    def add_reading(r, t, t_src):
        seq = orig_add(r, t, t_src)
        if ctx[0] and ctx[1] is None:
            ctx[1] = seq
        return seq
    store.add_reading = add_reading
    orig_record = app.record

    def record(r):
        ctx[0] = True
        ctx[1] = None
        try:
            orig_record(r)
        finally:
            ctx[0] = False
        if ctx[1] is not None:
            hooks.measured(ctx[1])
    app.record = record
    orig_upload = app.upload

    def upload(n=None):
        try:
            return orig_upload(n)
        finally:
            hooks.window_done()
    app.upload = upload


def run(port, cfg, hooks, energy=None):
    # energy: a factory for the app's energy policy (None: the firmware's own manager),
    # called at every boot like the chip's setup()
    from firmware.app import App
    from firmware.store.log import Store
    while True:
        try:
            if not hooks.boot():
                return
            store = Store(port.flash)
            app = App(port, dict(cfg), store=store, energy=energy() if energy else None)
            instrument(app, hooks)
            app.run(until=hooks.until)
            return
        except DeepSleep:
            hooks.ended("deep_sleep")
        except PowerLost:
            hooks.ended("cut")
