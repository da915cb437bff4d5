# tools.sim --target esp8266|esp32c3: the firmware on a chip variant of the unix port,
# the physics in the simulator.
#
# The chip variants (tools/mp32.py) are 32-bit builds with the chip's own float
# implementation: the ESP8266's packs 30-bit floats into the object word, far too coarse
# to integrate a supercapacitor's joules over hours. So the two halves run where they
# belong:
#   * the device process, on the variant: tools/simdevice.py's boot/App loop with the
#     firmware as the chip runs it (its decoders, store, energy manager, uplink, its own
#     sockets to the collector), given a RemotePort below;
#   * the simulator, on CPython: SimPort (clock, capacitor, meter line at wire speed,
#     flash model with torn writes at a cut), the collector and the report (tools/sim.py).
# Every port call of the firmware (firmware/port/__init__.py: the interface, nothing
# more) crosses a loopback socket to the simulator and comes back with the value or the
# exception SimPort raised (PowerLost at a cut, DeepSleep, Reset). The firmware's
# network traffic does not cross it: it goes from the variant's sockets to the collector
# as on the chip.
#
# Wire: each message is 6 ASCII digits (length) and that many bytes of JSON. A request is
# [target, method, args...] with target "p" (port), "u" (the meter UART), "f" (flash),
# "s" (the simulator's hooks); the answer [0, value] or [1, exception name, argument].
# Bytes travel as hex strings. The device process runs this module as its main:
#   micropython -m tools.simremote HOST PORT
# This half runs on the chip variants: no f-strings, nothing the stock images lack.
import json
import socket
from binascii import hexlify, unhexlify

from firmware.port import DeepSleep, PowerLost, Reset
from tools.hostport import HostPort

# -- the device process -------------------------------------------------------------------


class Link:
    def __init__(self, host, port):
        s = socket.socket()
        s.connect(socket.getaddrinfo(host, port)[0][-1])
        # one small message each way per call: without TCP_NODELAY, Nagle's algorithm
        # meets the peer's delayed ACK and every call waits ~40 ms. The unix port's
        # socket module has no constant for it; these are Linux's (<netinet/in.h>
        # IPPROTO_TCP = 6, <netinet/tcp.h> TCP_NODELAY = 1) - this runs on the host.
        s.setsockopt(6, 1, 1)
        self.s = s

    def call(self, *req):
        body = json.dumps(req).encode()
        s = self.s
        s.write(("%06d" % len(body)).encode() + body)
        n = s.read(6)
        if not n or len(n) < 6:
            raise OSError("simulator gone")
        n = int(n)
        raw = s.read(n)
        if len(raw) != n:
            raise OSError("simulator gone")
        out = json.loads(raw)
        if out[0] == 0:
            return out[1]
        name = out[1]
        if name == "PowerLost":
            raise PowerLost()
        if name == "DeepSleep":
            raise DeepSleep(out[2])
        if name == "Reset":
            raise Reset()
        if name == "ValueError":
            raise ValueError(out[2])
        raise OSError(out[2])


def _fwd(target, name):
    def f(self, *args):
        return self.link.call(target, name, *args)
    return f


class RemoteUart:
    # machine.UART as the firmware uses it (port interface: readinto, any, deinit)
    def __init__(self, link):
        self.link = link

    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None else min(nbytes, len(buf))
        h = self.link.call("u", "readinto", n)
        k = len(h) // 2
        if k:
            buf[:k] = unhexlify(h)
        return k

    def read(self, n=-1):
        h = self.link.call("u", "read", n)
        return None if h is None else unhexlify(h)


for _n in ("any", "deinit"):
    setattr(RemoteUart, _n, _fwd("u", _n))


class RemoteFlash:
    def __init__(self, link, sector_size, sectors):
        self.link = link
        self.SECTOR_SIZE = sector_size
        self.sectors = sectors

    def read(self, addr, n):
        return unhexlify(self.link.call("f", "read", addr, n))

    def readinto(self, addr, buf):
        h = self.link.call("f", "readinto", addr, len(buf))
        buf[:len(h) // 2] = unhexlify(h)

    def write(self, addr, data):
        return self.link.call("f", "write", addr, hexlify(data).decode())

    def erase(self, sector):
        return self.link.call("f", "erase", sector)


class RemotePort:
    # the port interface (firmware/port/__init__.py), answered by the simulator's SimPort
    # ticks_diff is pure arithmetic (as time.ticks_diff): the host port's own, no need to ask
    TICKS_PERIOD = HostPort.TICKS_PERIOD
    ticks_diff = HostPort.ticks_diff

    def __init__(self, link, start):
        self.link = link
        self.chip = start["chip"]
        self.board = start["board"]
        self.fs_root = start["fs_root"]
        self.flash = RemoteFlash(link, start["sector_size"], start["sectors"])
        self._uart = RemoteUart(link)

    def uart_open(self, baud, bits=7, parity=0, stop=1, rxbuf=1024, invert=False, timeout=50):
        self.link.call("p", "uart_open", baud, bits, parity, stop, rxbuf, bool(invert), timeout)
        return self._uart

    def rtc_read(self):
        return unhexlify(self.link.call("p", "rtc_read"))

    def rtc_write(self, data):
        return self.link.call("p", "rtc_write", hexlify(data).decode())

    def wifi_scan(self):
        return [(unhexlify(s), r) for s, r in self.link.call("p", "wifi_scan")]


# the rest of the interface: plain values both ways
PORT_CALLS = ("ticks_ms", "sleep_ms", "deep_sleep", "wall_time", "set_wall_time", "ntp_sync",
              "data_request", "tic_fast", "vcap_mv", "activity", "reset_cause", "pulse", "led",
              "button_ms", "safe_boot", "reset", "watchdog", "feed", "wifi_connect",
              "wifi_disconnect", "ap_start", "ap_stop", "device_id", "log")
for _n in PORT_CALLS:
    setattr(RemotePort, _n, _fwd("p", _n))


class RemoteHooks:
    # tools/simdevice.py's hooks, answered by tools/sim.py LocalHooks
    def __init__(self, link, mqtt):
        self.link = link
        self.mqtt = mqtt

    def boot(self):
        return self.link.call("s", "boot")

    def until(self, app):
        return self.link.call("s", "until")

    def measured(self, seq):
        self.link.call("s", "measured", seq)

    def window_done(self):
        if self.mqtt:
            self.link.call("s", "window_done")

    def ended(self, kind):
        self.link.call("s", "ended", kind)


def device_main(argv):
    from tools import simdevice
    link = Link(argv[0], int(argv[1]))
    start = link.call("s", "start")
    simdevice.run(RemotePort(link, start), start["cfg"], RemoteHooks(link, start["mqtt"]))
    link.call("s", "bye")


# -- the simulator's side (CPython) ---------------------------------------------------------
def _hex(b):
    return None if b is None else bytes(b).hex()


class Server:
    # answers one device process: SimPort for "p"/"u", its flash for "f", the hooks for
    # "s". A method not in the tables is refused: the device gets no more than the port
    # interface.
    def __init__(self, port, cfg, hooks):
        self.port = port
        self.cfg = cfg
        self.hooks = hooks
        self.uart = None
        self.done = False
        self.calls = 0

    def start(self):
        p = self.port
        fl = p.flash
        return {"cfg": self.cfg, "chip": p.chip, "board": p.board, "fs_root": p.fs_root,
                "sector_size": fl.SECTOR_SIZE, "sectors": fl.sectors,
                "mqtt": self.hooks.sink == "mqtt"}

    def dispatch(self, target, name, args):
        p = self.port
        if target == "p":
            if name == "uart_open":
                self.uart = p.uart_open(*args)
                return None
            if name == "rtc_read":
                return _hex(p.rtc_read())
            if name == "rtc_write":
                return p.rtc_write(bytes.fromhex(args[0]))
            if name == "wifi_scan":
                return [[_hex(s), r] for s, r in p.wifi_scan()]
            if name in PORT_CALLS:
                return getattr(p, name)(*args)
        elif target == "u" and name in ("readinto", "read", "any", "deinit"):
            u = self.uart
            if u is None:
                raise OSError(9, "UART not open")       # EBADF
            if name == "readinto":
                buf = bytearray(args[0])
                return _hex(buf[:u.readinto(buf)])
            if name == "read":
                return _hex(u.read(*args))
            return getattr(u, name)()
        elif target == "f" and name in ("read", "readinto", "write", "erase"):
            fl = p.flash
            if name == "read":
                return _hex(fl.read(*args))
            if name == "readinto":
                buf = bytearray(args[1])
                fl.readinto(args[0], buf)
                return _hex(buf)
            if name == "write":
                return fl.write(args[0], bytes.fromhex(args[1]))
            return fl.erase(*args)
        elif target == "s":
            h = self.hooks
            if name == "start":
                return self.start()
            if name == "bye":
                self.done = True
                return None
            if name == "until":
                return h.until(None)
            if name in ("boot", "measured", "window_done", "ended"):
                return getattr(h, name)(*args)
        raise ValueError("not in the port interface: %s.%s" % (target, name))

    def serve(self, conn):
        f = conn.makefile("rwb")
        while not self.done:
            n = f.read(6)
            if len(n) < 6:
                return                  # the device process ended (or died)
            target, name, *args = json.loads(f.read(int(n)))
            self.calls += 1
            try:
                out = [0, self.dispatch(target, name, args)]
            except PowerLost:
                out = [1, "PowerLost", None]
            except DeepSleep as e:
                out = [1, "DeepSleep", e.ms]
            except Reset:
                out = [1, "Reset", None]
            except ValueError as e:
                out = [1, "ValueError", str(e)]
            except OSError as e:
                out = [1, "OSError", e.errno]
            body = json.dumps(out).encode()
            f.write(("%06d" % len(body)).encode() + body)
            f.flush()


HEAP = "4M"


def drive(target, port, cfg, hooks, heap=HEAP):
    # run the device process on the chip variant and answer it until it says bye.
    # The heap: the firmware here is compiled from source at import (on the chip it is
    # frozen or in ROMFS), so the chip's own heap figure is measured elsewhere
    # (tools/bench/bench_heap.py, tests/host/test_heap_esp8266.py), not here.
    import os
    import subprocess
    import tempfile
    from tools import mp32
    why = mp32.available()
    if why:
        raise RuntimeError("--target %s: %s" % (target, why))
    exe = mp32.build(target)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(1.0)
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen([exe, "-X", "heapsize=" + heap, "-m", "tools.simremote",
                             "127.0.0.1", str(srv.getsockname()[1])],
                            cwd=mp32.ROOT, env=mp32.run_env(), stdin=subprocess.DEVNULL,
                            stdout=err, stderr=err)
    server = Server(port, cfg, hooks)
    try:
        conn = None
        while conn is None:
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                if proc.poll() is not None:
                    break
        if conn is not None:
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with conn:
                server.serve(conn)
        rc = proc.wait(timeout=60)
    finally:
        srv.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc != 0 or not server.done:
        err.seek(0)
        tail = err.read().decode(errors="replace")[-3000:]
        raise RuntimeError("the firmware on the %s variant stopped (exit %s) after %d port "
                           "calls:\n%s" % (target, rc, server.calls, tail))
    err.close()
    return server.calls


if __name__ == "__main__":
    import sys
    device_main(sys.argv[1:])
