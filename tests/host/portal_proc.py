# Runs `python -m tools.portal` (CPython or the MicroPython unix port) as a subprocess
# on loopback ports for the host tests, plus a raw HTTP/DNS client.
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

from tests.host import mpy
from tools.services import free_port

ROOT = mpy.ROOT

SCAN = [{"ssid": "HomeNet", "rssi": -48, "password": "correct horse"},
        {"ssid": "<script>alert(1)</script>", "rssi": -71},
        {"ssid": "Caf\u00e9 & \"Co\"", "rssi": -83},
        {"ssid": "Upstairs", "rssi": -90}]


class PortalProc:
    def __init__(self, tmp_path, impl="cpython", extra=()):
        self.dir = str(tmp_path / "cfg")
        self.scan_path = str(tmp_path / "scan.json")
        with open(self.scan_path, "w") as f:
            json.dump(SCAN, f)
        self.impl = impl
        self.lines = []
        self.started = 0
        last = ""
        for _ in range(3):
            self.port = free_port()
            self.dns_port = free_port(socket.SOCK_DGRAM)
            args = ["-m", "tools.portal", "--port", str(self.port), "--config-dir", self.dir,
                    "--scan", self.scan_path, "--dns-port", str(self.dns_port), "--stay"]
            args += list(extra)
            if impl == "micropython":
                self.proc = mpy.popen(args, heap="512K", stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
            else:
                self.proc = subprocess.Popen([sys.executable, "-u"] + args, cwd=ROOT,
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             text=True)
            threading.Thread(target=self._reader, daemon=True).start()
            if self.wait_for("portal: access point", 20):
                return
            last = "\n".join(self.lines)
            self.stop()
        raise RuntimeError("portal did not start:\n" + last)

    def _reader(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text, timeout=10, count=1):
        t = time.time() + timeout
        while time.time() < t:
            if sum(1 for ln in self.lines if text in ln) >= count:
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)
                return sum(1 for ln in self.lines if text in ln) >= count
            time.sleep(0.02)
        return False

    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def host(self):
        return "127.0.0.1:%d" % self.port

    def config_bytes(self):
        try:
            with open(os.path.join(self.dir, "config.json"), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def http_raw(port, data, timeout=10, shut=False):
    # -> (status or None, headers dict, body bytes); tolerates a reset after the reply
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            i = out.find(b"\r\n\r\n")
            m = re.search(rb"\r\ncontent-length: *([0-9]+)\r\n", out[:i + 2], re.I) \
                if i >= 0 else None
            if m and len(out) >= i + 4 + int(m.group(1)):
                break                     # the whole response is in
    finally:
        s.close()
    i = out.find(b"\r\n\r\n")
    if i < 0:
        return None, {}, out
    lines = out[:i].decode().split("\r\n")
    hdr = {}
    for ln in lines[1:]:
        k, v = ln.split(":", 1)
        hdr[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), hdr, out[i + 4:]


def dns_query(port, name, qtype=1, qid=0x4242, timeout=3):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, ("127.0.0.1", port))
        return s.recv(1024)
    finally:
        s.close()
