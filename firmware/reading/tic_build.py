# Turns the groups of a finished TIC frame (in the reader's buffer) into a reading
# (docs/reading-schema.md). Called by TicDecoder._end(); split from reading/tic.py
# so each module compiles in a small heap. See reading/tic.py for the rules.
from firmware.frame import tic as _f
from firmware.reading import tic_labels as L
from firmware.reading import tic_values as V

_HIST_REGS = {
    "BASE": ("BASE",),
    "HC..": ("HCHC", "HCHP"),
    "EJP.": ("EJPHN", "EJPHPM"),
    "BBR": ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR"),
}
# roles whose value is used as text (the others are parsed from the buffer)
_STR_ROLE = bytes([1 if r in (L.R_ID, L.R_OPTARIF, L.R_PERIOD, L.R_DEMAIN, L.R_STGE)
                   else 0 for r in range(20)])


# where the 12 digits of a horodate go in "2000-00-00T00:00:00"
_TS = b"\x02\x03\x05\x06\x08\x09\x0b\x0c\x0e\x0f\x11\x12"


def _same_list(old, new):
    if old is None or new is None or len(old) != len(new):
        return new
    for i in range(len(new)):
        if old[i] != new[i]:
            return new
    return old




def build(self, how):
    # self: the TicDecoder whose frame just ended
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
    dst = None
    pejp = False
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
        if role == L.R_NONE or role == L.R_TRI:
            continue
        if role == L.R_REG or role == L.R_EAST or role == L.R_EAIT:
            v = V.int_of(buf, vs, ve)
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
            v = V.int_of(buf, vs, ve)
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
            v = V.int_of(buf, vs, ve)
            ph = at[7 * e + 6]
            if ph == 1:
                u1 = v
            elif ph == 2:
                u2 = v
            else:
                u3 = v
        elif role == L.R_APP:
            papp = V.int_of(buf, vs, ve)
        elif role == L.R_APPI:
            sinsti = V.int_of(buf, vs, ve)
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
            isousc = V.int_of(buf, vs, ve)
        elif role == L.R_PREF:
            pref = V.int_of(buf, vs, ve)
        elif role == L.R_NTARF:
            tidx = V.int_of(buf, vs, ve)
        elif role == L.R_ADPS:
            adps = True
        elif role == L.R_DEMAIN:
            demain = None if s == "----" else s
        elif role == L.R_PEJP:
            pejp = True
        elif role == L.R_DATE:
            # season of the horodate: E (ete) summer, H (hiver) winter; lower case
            # means the meter's clock is degraded, space unknown (Enedis-NOI-CPT_54E
            # s.6.2.3.1): no trusted season then
            c = buf[p1 + 1]
            dst = True if c == 0x45 else False if c == 0x48 else None
            # SAAMMJJhhmmss -> 20AA-MM-JJThh:mm:ss (one str, built in a fixed buffer)
            a = p1 + 2
            t = self._ts
            for k in range(12):
                t[_TS[k]] = buf[a + k]
            timestamp = t.decode()
        elif role == L.R_STGE:
            if s is not self._stge_src:
                self._stge_src = s
                self._stge = V.decode_stge(V.hexint(buf, vs, ve))
            stge = self._stge
            stge_v = V.hexint(buf, vs, ve)

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
            tomorrow = V.COLOURS[(stge_v >> 26) & 3]
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
        "dst": dst,
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
        # historic PEJP: EJP peak day notice; only a whole frame's absence means "no"
        "ejp_notice": True if pejp else (False if whole and not std else None),
        "partial": partial,
        "fields": fields,
    }
