# TIC value checks and conversions, per label type (Enedis-NOI-CPT_02E table 6,
# Enedis-NOI-CPT_54E 6.2.3), on bytes in the frame reader's buffer: nothing here
# allocates. Split from reading/tic.py so each module compiles in a small heap.
from firmware.reading import tic_labels as L

_PTEC = (b"TH..", b"HC..", b"HP..", b"HN..", b"PM..", b"HCJB", b"HCJW", b"HCJR",
         b"HPJB", b"HPJW", b"HPJR")
_DEMAIN = (b"----", b"BLEU", b"BLAN", b"ROUG")
_OPT = (b"BASE", b"HC..", b"EJP.")
COLOURS = (None, "BLEU", "BLAN", "ROUG")
# STGE bits 1-3, Enedis-NOI-CPT_54E 6.2.3.14
_CUTOFF = ("closed", "open_overpower", "open_overvoltage", "open_load_shedding",
           "open_cpl_euridis_order", "open_overheat_above_max", "open_overheat_below_max",
           "unknown")


def _eq(buf, a, b, c):
    n = len(c)
    if b - a != n:
        return False
    for i in range(n):
        if buf[a + i] != c[i]:
            return False
    return True


def _digits(buf, a, b):
    for i in range(a, b):
        c = buf[i]
        if c < 0x30 or c > 0x39:
            return False
    return True


def int_of(buf, a, b):
    v = 0
    for i in range(a, b):
        v = v * 10 + buf[i] - 0x30
    return v


def hexint(buf, a, b):
    v = 0
    for i in range(a, b):
        c = buf[i]
        v = (v << 4) + (c - 0x30 if c <= 0x39 else c - 0x37)
    return v


def horodate_ok(buf, a, b):
    # SAAMMJJhhmmss: season E/H (lower case: degraded clock, space: unknown), then date
    if b - a != 13:
        return False
    c = buf[a]
    if c != 0x45 and c != 0x48 and c != 0x65 and c != 0x68 and c != 0x20:
        return False
    if not _digits(buf, a + 1, b):
        return False
    mo = int_of(buf, a + 3, a + 5)
    d = int_of(buf, a + 5, a + 7)
    return (1 <= mo <= 12 and 1 <= d <= 31 and int_of(buf, a + 7, a + 9) < 24
            and int_of(buf, a + 9, a + 11) < 60 and int_of(buf, a + 11, a + 13) < 60)


def value_ok(t, buf, a, b, lo, hi):
    # -> 0 bad, 1 good, 2 good but free text that needs confirmation
    n = b - a
    if n < lo or n > hi:
        return 0
    if t == L.T_DIG:
        return 1 if _digits(buf, a, b) else 0
    if t == L.T_HEX or t == L.T_ID:
        for i in range(a, b):
            c = buf[i]
            if not (0x30 <= c <= 0x39 or 0x41 <= c <= (0x46 if t == L.T_HEX else 0x5A)):
                return 0
        return 1
    if t == L.T_TEXT:
        # allowed: 0x20..0x7A without '@' and '`' (their +-64 partners are controls
        # or also excluded). Characters 0x21..0x3A and 0x61..0x7A come in pairs that
        # differ by 64 (digits/punctuation vs lower case): such a text needs a second
        # identical copy before it is believed.
        amb = 0
        for i in range(a, b):
            c = buf[i]
            if c < 0x20 or c > 0x7A or c == 0x40 or c == 0x60:
                return 0
            if 0x21 <= c <= 0x3A or c >= 0x61:
                amb = 1
        return 2 if amb else 1
    if t == L.T_OPT:
        for c in _OPT:
            if _eq(buf, a, b, c):
                return 1
        # BBRx: Tempo, x = programme character (Enedis-NOI-CPT_02E)
        if n == 4 and buf[a] == 0x42 and buf[a + 1] == 0x42 and buf[a + 2] == 0x52:
            c = buf[a + 3]
            return 1 if 0x21 <= c <= 0x5F and c != 0x40 else 0
        return 0
    if t == L.T_PTEC:
        for c in _PTEC:
            if _eq(buf, a, b, c):
                return 1
        return 0
    if t == L.T_DEMAIN:
        for c in _DEMAIN:
            if _eq(buf, a, b, c):
                return 1
        return 0
    if t == L.T_LETTER:
        return 1 if 0x41 <= buf[a] <= 0x5A else 0
    if t == L.T_EMPTY:
        return 1
    if t == L.T_PROFILE:
        # blocks of 8 [A-Z0-9] separated by one space (NONUTILE or HHMMSSSS)
        if n % 9 != 8:
            return 0
        for i in range(n):
            c = buf[a + i]
            if i % 9 == 8:
                if c != 0x20:
                    return 0
            elif not (0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A):
                return 0
        return 1
    return 0


# STGE status register, Enedis-NOI-CPT_54E 6.2.3.14: (name, first bit, bit count,
# kind) with kind 0 = bool, 1 = number, 2 = index (number + 1), 3 = Tempo colour,
# 4 = cut-off device state name
_STGE = (("dry_contact_open", 0, 1, 0), ("cutoff", 1, 3, 4), ("cutoff_code", 1, 3, 1),
         ("cover_open", 4, 1, 0), ("overvoltage", 6, 1, 0),
         ("over_reference_power", 7, 1, 0), ("producer", 8, 1, 0),
         ("export_direction", 9, 1, 0), ("supplier_index", 10, 4, 2),
         ("distributor_index", 14, 2, 2), ("clock_degraded", 16, 1, 0),
         ("tic_standard", 17, 1, 0), ("euridis", 19, 2, 1), ("cpl_status", 21, 2, 1),
         ("cpl_synchronised", 23, 1, 0), ("tempo_today", 24, 2, 3),
         ("tempo_tomorrow", 26, 2, 3), ("mobile_peak_notice", 28, 2, 1),
         ("mobile_peak", 30, 2, 1))


def decode_stge(v):
    # STGE value (int) into named flags; the decoder keeps the dict while STGE repeats
    out = {}
    for name, bit, n, kind in _STGE:
        x = (v >> bit) & ((1 << n) - 1)
        if kind == 0:
            x = bool(x)
        elif kind == 2:
            x += 1
        elif kind == 3:
            x = COLOURS[x]
        elif kind == 4:
            x = _CUTOFF[x]
        out[name] = x
    return out
