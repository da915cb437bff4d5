# The set-up access point's password: one per device, never a shared default.
#
# Generated from os.urandom at flash time (tools/flash.py may call generate() and write
# the file) or at first boot, kept in fs_root/ap_password, and printed on the serial
# console only when it is created. Users copy it onto the label of the dongle.
# 12 characters from a 31-symbol alphabet without look-alikes (0/O, 1/l/I): 59 bits,
# written as three groups of four for the label (WPA2 accepts the dashes).
import os

FILE = "ap_password"
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def generate():
    out = []
    while len(out) < 12:
        for b in os.urandom(16):
            if b < 248:                 # 248 = 8 * 31: no modulo bias
                out.append(ALPHABET[b % 31])
                if len(out) == 12:
                    break
    s = "".join(out)
    return s[0:4] + "-" + s[4:8] + "-" + s[8:12]


def valid(pw):
    if not 8 <= len(pw) <= 63:
        return False
    for c in pw:
        if not 32 < ord(c) < 127:
            return False
    return True


def get(fs_root, log=None):
    # -> the device's AP password, creating (and printing once) if there is none
    from firmware.config import path_of
    path = path_of(fs_root, FILE)
    try:
        with open(path) as f:
            pw = f.read().strip()
        if valid(pw):
            return pw
    except OSError:
        pass
    pw = generate()
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(pw + "\n")
    os.rename(tmp, path)
    if log is not None:
        log("set-up access point password (write it on the label): " + pw)
    return pw


def get_or_create(fs_root, log=None):
    # the name tools/flash.py uses (prints the password for the label after flashing)
    return get(fs_root, log)
