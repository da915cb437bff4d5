# A long Belgian P1 telegram for the stream reader's memory test and benchmark: the
# Fluvius capture be_fluvius_ndokter_1 with a longer 0-0:98.1.0 peak history, a text
# message and two more M-Bus devices (Fluvius user ports s.4.5.2: a text of up to 1024
# characters = 2048 hex digits). Every line is the spec's own format; the CRC-16 is
# computed here. Plain bytes work only: runs on CPython and MicroPython (tests/fw).
from firmware.frame.dsmr import crc16


def belgian(base, text_hex, history=13):
    # base: the capture's bytes -> the telegram with its CRC line
    body = base[:base.find(b"!") + 1]
    out = []
    for ln in body.split(b"\r\n"):
        if ln.startswith(b"0-0:98.1.0") and history:
            ln = b"0-0:98.1.0(%d)(1-0:1.6.0)(1-0:1.6.0)" % history
            for m in range(history):
                y = 22 + (m + 10) // 12
                mo = (m + 10) % 12 + 1
                ln += b"(%02d%02d01000000W)(%02d%02d15183000W)(%02d.%03d*kW)" % (
                    y, mo, y, mo, 1 + m, 100 * m)
        if ln.startswith(b"0-0:96.13.0"):
            ln = b"0-0:96.13.0(" + text_hex + b")"
        out.append(ln)
        if ln.startswith(b"0-2:24.2.1"):
            out += [b"0-3:24.1.0(007)", b"0-3:96.1.1(3853455430303030303030303039)",
                    b"0-3:24.2.1(200512134558S)(00123.456*m3)", b"0-4:24.1.0(004)",
                    b"0-4:96.1.1(3853455430303030303030303041)",
                    b"0-4:24.2.1(200512134558S)(00012.345*GJ)"]
    t = b"\r\n".join(out)
    return t + ("%04X\r\n" % crc16(t)).encode()
