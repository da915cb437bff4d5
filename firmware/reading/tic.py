# TIC decoder: Linky / electronic meter frames (historic and standard mode) into
# readings (../shared/reading-schema.md), in bounded memory.
#
#   dec = TicDecoder("auto")          # or "historic" / "standard"
#   for reading in dec.feed(chunk):   # any chunking, 1 byte to whole captures
#       ...
#   dec.frames, dec.readings, dec.errors, dec.reset(), dec.want(["EAST", "SINSTS"])
#
# Never a wrong value. A TIC checksum has only 6 bits: a byte changed by a multiple
# of 64 (a digit turned into a lower-case letter, '@' inserted, ...) passes it. So
# every group is also checked against its label (Enedis-NOI-CPT_02E table 6,
# Enedis-NOI-CPT_54E 6.2.3): digits where digits are due, exact lengths, known code
# sets, horodate present exactly where the spec puts one. With these rules no single
# byte substitution, deletion or insertion can turn a valid group into another valid
# group, except inside free text (NGTF, LTARF, MSG1/2) where lower case is allowed:
# there a value that holds characters whose +-64 partner is also allowed (lower case
# vs digits/punctuation) is only taken once the same text came in two frames in a row.
#
# Derived keys (energy_import_wh, current_a, ...) appear only when every group they
# need is valid in that frame; a value is never inferred from a missing group unless
# the frame was received whole (STX..ETX, nothing rejected): overload=False on a
# historic frame, or a standard frame being single-phase.
#
# Memory: the frame lives in the reader's fixed buffer; value strings are kept from one
# frame to the next and reused while the meter repeats them, so a steady stream
# allocates little more than the reading itself. Readings must be treated as
# read-only: unchanged values (and the "stge" dict) are shared between readings.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from firmware.frame import tic as _f
from firmware.reading import tic_labels as L

_MODES = {"auto": _f.MODE_AUTO, "historic": _f.MODE_HIST, "standard": _f.MODE_STD,
          "tic": _f.MODE_AUTO, "tic-historic": _f.MODE_HIST, "tic-standard": _f.MODE_STD}

_HIST_REGS = {
    "BASE": ("BASE",),
    "HC..": ("HCHC", "HCHP"),
    "EJP.": ("EJPHN", "EJPHPM"),
    "BBR": ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR"),
}
_PTEC = (b"TH..", b"HC..", b"HP..", b"HN..", b"PM..", b"HCJB", b"HCJW", b"HCJR",
         b"HPJB", b"HPJW", b"HPJR")
_DEMAIN = (b"----", b"BLEU", b"BLAN", b"ROUG")
_OPT = (b"BASE", b"HC..", b"EJP.")
# roles whose value is used as text (the others are parsed from the buffer)
_STR_ROLE = bytes([1 if r in (L.R_ID, L.R_OPTARIF, L.R_PERIOD, L.R_DEMAIN, L.R_STGE,
                              L.R_DATE) else 0 for r in range(20)])
_COLOURS = (None, "BLEU", "BLAN", "ROUG")
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


def _int(buf, a, b):
    v = 0
    for i in range(a, b):
        v = v * 10 + buf[i] - 0x30
    return v


def _hexint(buf, a, b):
    v = 0
    for i in range(a, b):
        c = buf[i]
        v = (v << 4) + (c - 0x30 if c <= 0x39 else c - 0x37)
    return v


def _horodate_ok(buf, a, b):
    # SAAMMJJhhmmss: season E/H (lower case: degraded clock, space: unknown), then date
    if b - a != 13:
        return False
    c = buf[a]
    if c != 0x45 and c != 0x48 and c != 0x65 and c != 0x68 and c != 0x20:
        return False
    if not _digits(buf, a + 1, b):
        return False
    mo = _int(buf, a + 3, a + 5)
    d = _int(buf, a + 5, a + 7)
    return (1 <= mo <= 12 and 1 <= d <= 31 and _int(buf, a + 7, a + 9) < 24
            and _int(buf, a + 9, a + 11) < 60 and _int(buf, a + 11, a + 13) < 60)


def _value_ok(t, buf, a, b, lo, hi):
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


def decode_stge(v):
    # STGE status register (Enedis-NOI-CPT_54E 6.2.3.14) into named flags
    cut = (v >> 1) & 7
    return {
        "dry_contact_open": bool(v & 1),
        "cutoff": _CUTOFF[cut],
        "cutoff_code": cut,
        "cover_open": bool(v & 0x10),
        "overvoltage": bool(v & 0x40),
        "over_reference_power": bool(v & 0x80),
        "producer": bool(v & 0x100),
        "export_direction": bool(v & 0x200),
        "supplier_index": ((v >> 10) & 15) + 1,
        "distributor_index": ((v >> 14) & 3) + 1,
        "clock_degraded": bool(v & 0x10000),
        "tic_standard": bool(v & 0x20000),
        "euridis": (v >> 19) & 3,
        "cpl_status": (v >> 21) & 3,
        "cpl_synchronised": bool(v & 0x800000),
        "tempo_today": _COLOURS[(v >> 24) & 3],
        "tempo_tomorrow": _COLOURS[(v >> 26) & 3],
        "mobile_peak_notice": (v >> 28) & 3,
        "mobile_peak": (v >> 30) & 3,
    }


def _same_list(old, new):
    if old is None or new is None or len(old) != len(new):
        return new
    for i in range(len(new)):
        if old[i] != new[i]:
            return new
    return old


class TicDecoder(_f.TicFramer):
    # mode: "auto" | "historic" | "standard" (also accepts "tic", "tic-historic",
    # "tic-standard"). fields: True keeps every valid group in reading["fields"];
    # False keeps only DATE (the season flag the clock code needs), which saves RAM on
    # the ESP8266.
    def __init__(self, mode="auto", fields=True, frame_size=1600, max_groups=96):
        if mode not in _MODES:
            raise ValueError("unknown TIC mode " + str(mode))
        n = L.COUNT
        self.keep_fields = fields
        self._seen = bytearray(n)
        self._gen = 0
        self._wantmark = bytearray(n)
        self._nwant = 0
        self._left = 0
        self._raw = [None] * n    # last raw value bytes per label (also text candidates)
        self._str = [None] * n    # its str, made on first use
        self._names = [None] * n
        self._stge_src = None
        self._stge = None
        self._period_src = None
        self._period = None
        self._ts = bytearray(b"2000-00-00T00:00:00")
        self._last_cur = None
        self._last_volt = None
        self._last_regs = None
        self._ge = 0
        self._tri = False
        # 1 or 3 once known (a whole frame without phase 2/3 labels, or any such label);
        # the app may persist and restore it
        self.phases = None
        _f.TicFramer.__init__(self, _MODES[mode], frame_size, max_groups)

    # -- early stop --------------------------------------------------------------------
    def want(self, labels):
        # feed() returns a reading (reading["partial"] = True) as soon as all these
        # labels arrived valid in the current frame, then skips the rest of that frame.
        # want(None) or want(()) turns it off. Unknown labels raise ValueError.
        m = self._wantmark
        for i in range(len(m)):
            m[i] = 0
        n = 0
        for lb in labels or ():
            e = L.lookup(lb)
            if e < 0:
                raise ValueError("unknown TIC label " + str(lb))
            if not m[e]:
                m[e] = 1
                n += 1
        self._nwant = n
        self._left = n

    # -- framer hooks ------------------------------------------------------------------
    def _begin(self):
        g = self._gen + 1
        if g > 255:
            s = self._seen
            for i in range(len(s)):
                s[i] = 0
            g = 1
        self._gen = g
        self._left = self._nwant
        self._tri = False

    def _group(self, a, p1, p2, ve, std):
        buf = self.buf
        e = L.find(buf, a, p1)
        if e < 0:
            return _f.G_LABEL
        at = L.ATTRS
        k = 7 * e
        if at[k] != (L.M_STD if std else L.M_HIST):
            return _f.G_MODE
        hd = p2 != p1
        if hd != (at[k + 1] == 1):
            return _f.G_VALUE
        if hd and not _horodate_ok(buf, p1 + 1, p2):
            return _f.G_VALUE
        ok = _value_ok(at[k + 2], buf, p2 + 1, ve, at[k + 3], at[k + 4])
        if not ok:
            return _f.G_VALUE
        if self._seen[e] == self._gen:
            return _f.G_DUP
        if ok == 2 and not self._same(e, p1 + 1, ve):
            # free text seen for the first time (or changed): remember, take it when
            # the next frame repeats it
            self._raw[e] = bytes(buf[p1 + 1:ve])
            self._str[e] = None
            return _f.G_PENDING
        self._seen[e] = self._gen
        self._ge = e
        ph = at[k + 6]
        if ph >= 2 or at[k + 5] == L.R_TRI:
            self._tri = True
        if self._wantmark[e]:
            self._left -= 1
            if self._left == 0:
                return _f.G_STOP
        return _f.G_KEEP

    def _same(self, e, a, b):
        r = self._raw[e]
        if r is None or len(r) != b - a:
            return False
        buf = self.buf
        for i in range(b - a):
            if r[i] != buf[a + i]:
                return False
        return True

    def _text(self, e, a, b):
        # str of buf[a:b], reused from the last frame when the bytes are the same
        if self._same(e, a, b):
            s = self._str[e]
            if s is None:
                s = self._str[e] = self._raw[e].decode()
            return s
        r = self._raw[e] = bytes(self.buf[a:b])
        s = self._str[e] = r.decode()
        return s

    def _name(self, e):
        s = self._names[e]
        if s is None:
            s = self._names[e] = L.name_bytes(e).decode()
        return s

    def _end(self, how):
        if self.ng == 0:
            return
        r = self._build(how)
        self.readings += 1
        if self._out is None:
            self._out = [r]
        else:
            self._out.append(r)

    # -- reading -----------------------------------------------------------------------
    def _build(self, how):
        buf = self.buf
        gi = self.gi
        at = L.ATTRS
        std = self.fmode == _f.MODE_STD
        # whole: STX, first group of the spec (ADCO / ADSC), nothing rejected, ETX. Only
        # a whole frame lets absence mean something (no ADPS, no phase 2/3 labels); a
        # frame cut by an inserted/lost STX or ETX does not start with the meter id or
        # stops early (checked below with the label that comes after the ones looked for).
        whole = (how == _f.END_ETX and not self.dirty and self.ng > 0
                 and at[7 * gi[4] + 5] == L.R_ID)
        partial = how == _f.END_EARLY
        all_fields = self.keep_fields
        fields = {} if all_fields else None
        regs = None
        meter_id = timestamp = period = opt = stge = None
        e_imp = e_exp = papp = sinsti = tidx = isousc = pref = None
        adps = False
        demain = None
        stge_v = None
        c0 = c1 = c2 = c3 = None
        u1 = u2 = u3 = None
        for g in range(self.ng):
            k = g * _f.GI
            p1 = gi[k + 1]
            p2 = gi[k + 2]
            ve = gi[k + 3]
            e = gi[k + 4]
            role = at[7 * e + 5]
            vs = p2 + 1
            # raw text: data, or horodate+HT+data for horodated groups, or the
            # horodate alone when the data is empty (DATE)
            s = None
            if all_fields or _STR_ROLE[role]:
                s = self._text(e, p1 + 1, ve if ve > vs or p2 == p1 else p2)
                if all_fields:
                    fields[self._name(e)] = s
                elif role == L.R_DATE:
                    fields = {"DATE": s}
            if role == L.R_NONE or role == L.R_TRI:
                continue
            if role == L.R_REG or role == L.R_EAST or role == L.R_EAIT:
                v = _int(buf, vs, ve)
                if regs is None:
                    # the last frame's dict is reused while every register is unchanged
                    regs = self._last_regs
                    nregs = 0
                    if regs is None:
                        regs = {}
                        fresh = True
                    else:
                        fresh = False
                nm = self._name(e)
                nregs += 1
                if not fresh and regs.get(nm) != v:
                    regs = dict(regs)
                    fresh = True
                regs[nm] = v
                if role == L.R_EAST:
                    e_imp = v
                elif role == L.R_EAIT:
                    e_exp = v
            elif role == L.R_CUR:
                v = _int(buf, vs, ve)
                ph = at[7 * e + 6]
                if ph == 0:
                    c0 = v
                elif ph == 1:
                    c1 = v
                elif ph == 2:
                    c2 = v
                else:
                    c3 = v
            elif role == L.R_VOLT:
                v = _int(buf, vs, ve)
                ph = at[7 * e + 6]
                if ph == 1:
                    u1 = v
                elif ph == 2:
                    u2 = v
                else:
                    u3 = v
            elif role == L.R_APP:
                papp = _int(buf, vs, ve)
            elif role == L.R_APPI:
                sinsti = _int(buf, vs, ve)
            elif role == L.R_ID:
                meter_id = s
            elif role == L.R_OPTARIF:
                opt = s
            elif role == L.R_PERIOD:
                if std:
                    # LTARF is padded with spaces; strip once per distinct value
                    if s is not self._period_src:
                        self._period_src = s
                        self._period = s.strip()
                    period = self._period
                else:
                    period = s
            elif role == L.R_ISOUSC:
                isousc = _int(buf, vs, ve)
            elif role == L.R_PREF:
                pref = _int(buf, vs, ve)
            elif role == L.R_NTARF:
                tidx = _int(buf, vs, ve)
            elif role == L.R_ADPS:
                adps = True
            elif role == L.R_DEMAIN:
                demain = None if s == "----" else s
            elif role == L.R_DATE:
                # SAAMMJJhhmmss -> 20AA-MM-JJThh:mm:ss (one str, built in a fixed buffer)
                a = p1 + 2
                t = self._ts
                t[2] = buf[a]
                t[3] = buf[a + 1]
                t[5] = buf[a + 2]
                t[6] = buf[a + 3]
                t[8] = buf[a + 4]
                t[9] = buf[a + 5]
                t[11] = buf[a + 6]
                t[12] = buf[a + 7]
                t[14] = buf[a + 8]
                t[15] = buf[a + 9]
                t[17] = buf[a + 10]
                t[18] = buf[a + 11]
                timestamp = t.decode()
            elif role == L.R_STGE:
                if s is not self._stge_src:
                    self._stge_src = s
                    self._stge = decode_stge(_hexint(buf, vs, ve))
                stge = self._stge
                stge_v = _hexint(buf, vs, ve)

        if regs is not None:
            if not fresh and nregs != len(regs):
                # fewer registers than last frame: a new dict with only these
                old = regs
                regs = {}
                for g in range(self.ng):
                    e = gi[g * _f.GI + 4]
                    nm = self._name(e)
                    if nm in old:
                        regs[nm] = old[nm]
            self._last_regs = regs
        current = voltage = None
        overload = tomorrow = None
        if std:
            if self._tri:
                self.phases = 3
            elif whole and stge_v is not None:
                # STGE comes after every phase-specific label (Enedis-NOI-CPT_54E 6.2.3)
                self.phases = 1
            tri = self._tri or self.phases == 3
            mono = not tri and self.phases == 1
            if tri:
                if c1 is not None and c2 is not None and c3 is not None:
                    current = [c1, c2, c3]
                if u1 is not None and u2 is not None and u3 is not None:
                    voltage = [u1, u2, u3]
            elif mono:
                if c1 is not None:
                    current = [c1]
                if u1 is not None:
                    voltage = [u1]
            if stge_v is not None:
                overload = bool(stge_v & 0x80)
                tomorrow = _COLOURS[(stge_v >> 26) & 3]
        else:
            if c0 is not None:
                current = [c0]
            elif c1 is not None and c2 is not None and c3 is not None:
                current = [c1, c2, c3]
            if opt is not None and regs is not None:
                names = _HIST_REGS.get("BBR" if opt.startswith("BBR") else opt)
                if names:
                    tot = 0
                    for nm in names:
                        v = regs.get(nm)
                        if v is None:
                            tot = None
                            break
                        tot += v
                    e_imp = tot
            if adps:
                overload = True
            elif whole and papp is not None:
                # ADPS comes before PAPP in the frame: a whole frame with PAPP and
                # without ADPS means no overload warning (Enedis-NOI-CPT_02E)
                overload = False
            tomorrow = demain
        # unchanged lists are shared with the previous reading (no allocation)
        current = self._last_cur = _same_list(self._last_cur, current)
        voltage = self._last_volt = _same_list(self._last_volt, voltage)
        return {
            "protocol": "tic-standard" if std else "tic-historic",
            "meter_id": meter_id,
            "timestamp": timestamp,
            "energy_import_wh": e_imp,
            "energy_export_wh": e_exp,
            "registers": regs,
            "apparent_power_va": papp,
            "apparent_power_export_va": sinsti,
            "current_a": current,
            "voltage_v": voltage,
            "tariff_period": period,
            "tariff_index": tidx,
            "subscribed_current_a": isousc,
            "subscribed_power_kva": pref,
            "overload": overload,
            "tomorrow": tomorrow,
            "stge": stge,
            "partial": partial,
            "fields": fields,
        }
