# Linky/P1 supercapacitor dongle firmware (MicroPython, also imports on CPython).
# Data path: port (bytes) -> frame -> reading -> store -> uplink.
VERSION = "0.1.0"
