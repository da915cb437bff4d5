# The uplink driver on either Python for the uplink host tests; the real services
# (mosquitto, free ports, certificates) come from tools/services.py.
import json
import os
import subprocess
import sys

from tests.host import mpy

ROOT = mpy.ROOT
for _p in (ROOT, os.path.join(ROOT, ".mplib"), os.path.join(ROOT, "tools", "compat", "cpython")):
    if _p not in sys.path:
        sys.path.append(_p)


from tools.services import free_port, wait_port, Mosquitto  # noqa: E402,F401 (re-exported)


class Driver:
    """tests/host/mp_uplink_driver.py on CPython or MicroPython."""

    def __init__(self, python, cfg, workdir):
        self.cfg_path = os.path.join(workdir, "cfg-%s.json" % python)
        fs = os.path.join(workdir, "fs-" + python)
        os.makedirs(fs, exist_ok=True)
        cfg = dict(cfg, fs_root=fs)
        with open(self.cfg_path, "w") as f:
            json.dump(cfg, f)
        args = ["tests/host/mp_uplink_driver.py", self.cfg_path]
        kw = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  text=True, bufsize=1)
        if python == "micropython":
            self.p = mpy.popen(args, heap="2M", **kw)
        else:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join([ROOT, os.path.join(ROOT, ".mplib"),
                                                 os.path.join(ROOT, "tools", "compat",
                                                              "cpython")])
            self.p = subprocess.Popen([sys.executable] + args, cwd=ROOT, env=env, **kw)

    def cmd(self, line, timeout=60):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        if not out:
            raise RuntimeError("driver died: " + self.p.stderr.read()[-3000:])
        return json.loads(out)

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            self.p.wait(10)
        except Exception:
            self.p.kill()
            self.p.wait()


def subscribe_all(port, topic, seconds=1.0):
    """Retained + live messages on `topic` for a short while -> {topic: payload}."""
    from umqtt.simple import MQTTClient
    got = {}
    c = MQTTClient(b"t-%d" % os.getpid(), "127.0.0.1", port)
    c.set_callback(lambda t, m: got.__setitem__(t.decode(), m))
    c.connect()
    c.sock.settimeout(seconds)
    c.subscribe(topic.encode())
    try:
        while True:
            c.wait_msg()
    except OSError:
        pass
    try:
        c.disconnect()
    except OSError:
        pass
    return got


def publish(port, topic, payload, qos=1, retain=False):
    from umqtt.simple import MQTTClient
    c = MQTTClient(b"p-%d" % os.getpid(), "127.0.0.1", port)
    c.connect()
    c.sock.settimeout(5)
    c.publish(topic.encode(), payload, retain, qos)
    c.disconnect()
