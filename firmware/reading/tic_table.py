# The TIC label table in readable form, and the packer that turns it into the byte
# strings of firmware/reading/tic_labels.py. The firmware never imports this module
# (parsing the text at boot would cost ESP8266 heap); tests check that tic_labels.py
# matches it, and `python -m firmware.reading.tic_table` prints fresh constants after
# an edit.
#
# Sources: Enedis-NOI-CPT_02E (historic mode, section 6) and Enedis-NOI-CPT_54E
# (standard mode, section 6.2.3: labels, horodate, data lengths).
#
# Each line: LABEL MODE HORODATE TYPE MIN MAX ROLE PHASE
#   MODE      H historic, S standard
#   HORODATE  1 when the group carries a horodate (standard mode), else 0
#   TYPE      value type (T_* in tic_labels); MIN/MAX length of the value in characters
#   ROLE      what the value feeds in the reading (R_* in tic_labels); PHASE 0 or 1..3
from firmware.reading.tic_labels import (
    T_DIG, T_HEX, T_ID, T_TEXT, T_OPT, T_PTEC, T_DEMAIN, T_LETTER, T_EMPTY, T_PROFILE,
    R_NONE, R_ID, R_OPTARIF, R_REG, R_APP, R_APPI, R_CUR, R_VOLT, R_PERIOD, R_ISOUSC,
    R_PREF, R_NTARF, R_ADPS, R_DEMAIN, R_DATE, R_STGE, R_EAST, R_EAIT, R_TRI, R_PEJP,
    M_HIST, M_STD)

_TABLE = """
ADCO H 0 ID 10 12 ID 0
OPTARIF H 0 OPT 4 4 OPTARIF 0
ISOUSC H 0 DIG 2 2 ISOUSC 0
BASE H 0 DIG 9 9 REG 0
HCHC H 0 DIG 9 9 REG 0
HCHP H 0 DIG 9 9 REG 0
EJPHN H 0 DIG 9 9 REG 0
EJPHPM H 0 DIG 9 9 REG 0
BBRHCJB H 0 DIG 9 9 REG 0
BBRHPJB H 0 DIG 9 9 REG 0
BBRHCJW H 0 DIG 9 9 REG 0
BBRHPJW H 0 DIG 9 9 REG 0
BBRHCJR H 0 DIG 9 9 REG 0
BBRHPJR H 0 DIG 9 9 REG 0
GAZ H 0 DIG 7 7 NONE 0
AUTRE H 0 DIG 7 7 NONE 0
PEJP H 0 DIG 2 2 PEJP 0
PTEC H 0 PTEC 4 4 PERIOD 0
DEMAIN H 0 DEMAIN 4 4 DEMAIN 0
IINST H 0 DIG 3 3 CUR 0
IINST1 H 0 DIG 3 3 CUR 1
IINST2 H 0 DIG 3 3 CUR 2
IINST3 H 0 DIG 3 3 CUR 3
ADPS H 0 DIG 3 3 ADPS 0
ADIR1 H 0 DIG 3 3 ADPS 1
ADIR2 H 0 DIG 3 3 ADPS 2
ADIR3 H 0 DIG 3 3 ADPS 3
IMAX H 0 DIG 3 3 NONE 0
IMAX1 H 0 DIG 3 3 NONE 1
IMAX2 H 0 DIG 3 3 NONE 2
IMAX3 H 0 DIG 3 3 NONE 3
PMAX H 0 DIG 5 5 NONE 0
PAPP H 0 DIG 5 5 APP 0
HHPHC H 0 LETTER 1 1 NONE 0
MOTDETAT H 0 ID 6 6 NONE 0
PPOT H 0 HEX 2 2 NONE 0
ADSC S 0 ID 10 12 ID 0
VTIC S 0 DIG 2 2 NONE 0
DATE S 1 EMPTY 0 0 DATE 0
NGTF S 0 TEXT 1 16 NONE 0
LTARF S 0 TEXT 1 16 PERIOD 0
EAST S 0 DIG 9 9 EAST 0
EASF01 S 0 DIG 9 9 REG 0
EASF02 S 0 DIG 9 9 REG 0
EASF03 S 0 DIG 9 9 REG 0
EASF04 S 0 DIG 9 9 REG 0
EASF05 S 0 DIG 9 9 REG 0
EASF06 S 0 DIG 9 9 REG 0
EASF07 S 0 DIG 9 9 REG 0
EASF08 S 0 DIG 9 9 REG 0
EASF09 S 0 DIG 9 9 REG 0
EASF10 S 0 DIG 9 9 REG 0
EASD01 S 0 DIG 9 9 REG 0
EASD02 S 0 DIG 9 9 REG 0
EASD03 S 0 DIG 9 9 REG 0
EASD04 S 0 DIG 9 9 REG 0
EAIT S 0 DIG 9 9 EAIT 0
ERQ1 S 0 DIG 9 9 NONE 0
ERQ2 S 0 DIG 9 9 NONE 0
ERQ3 S 0 DIG 9 9 NONE 0
ERQ4 S 0 DIG 9 9 NONE 0
IRMS1 S 0 DIG 3 3 CUR 1
IRMS2 S 0 DIG 3 3 CUR 2
IRMS3 S 0 DIG 3 3 CUR 3
URMS1 S 0 DIG 3 3 VOLT 1
URMS2 S 0 DIG 3 3 VOLT 2
URMS3 S 0 DIG 3 3 VOLT 3
PREF S 0 DIG 2 2 PREF 0
PCOUP S 0 DIG 2 2 NONE 0
SINSTS S 0 DIG 5 5 APP 0
SINSTS1 S 0 DIG 5 5 TRI 1
SINSTS2 S 0 DIG 5 5 TRI 2
SINSTS3 S 0 DIG 5 5 TRI 3
SMAXSN S 1 DIG 5 5 NONE 0
SMAXSN1 S 1 DIG 5 5 TRI 1
SMAXSN2 S 1 DIG 5 5 TRI 2
SMAXSN3 S 1 DIG 5 5 TRI 3
SMAXSN-1 S 1 DIG 5 5 NONE 0
SMAXSN1-1 S 1 DIG 5 5 TRI 1
SMAXSN2-1 S 1 DIG 5 5 TRI 2
SMAXSN3-1 S 1 DIG 5 5 TRI 3
SINSTI S 0 DIG 5 5 APPI 0
SMAXIN S 1 DIG 5 5 NONE 0
SMAXIN-1 S 1 DIG 5 5 NONE 0
CCASN S 1 DIG 5 5 NONE 0
CCASN-1 S 1 DIG 5 5 NONE 0
CCAIN S 1 DIG 5 5 NONE 0
CCAIN-1 S 1 DIG 5 5 NONE 0
UMOY1 S 1 DIG 3 3 NONE 1
UMOY2 S 1 DIG 3 3 TRI 2
UMOY3 S 1 DIG 3 3 TRI 3
STGE S 0 HEX 8 8 STGE 0
DPM1 S 1 DIG 2 2 NONE 0
FPM1 S 1 DIG 2 2 NONE 0
DPM2 S 1 DIG 2 2 NONE 0
FPM2 S 1 DIG 2 2 NONE 0
DPM3 S 1 DIG 2 2 NONE 0
FPM3 S 1 DIG 2 2 NONE 0
MSG1 S 0 TEXT 1 32 NONE 0
MSG2 S 0 TEXT 1 16 NONE 0
PRM S 0 DIG 14 14 NONE 0
RELAIS S 0 DIG 3 3 NONE 0
NTARF S 0 DIG 2 2 NTARF 0
NJOURF S 0 DIG 2 2 NONE 0
NJOURF+1 S 0 DIG 2 2 NONE 0
PJOURF+1 S 0 PROFILE 8 98 NONE 0
PPOINTE S 0 PROFILE 8 98 NONE 0
"""

_TYPES = {"DIG": T_DIG, "HEX": T_HEX, "ID": T_ID, "TEXT": T_TEXT, "OPT": T_OPT,
          "PTEC": T_PTEC, "DEMAIN": T_DEMAIN, "LETTER": T_LETTER, "EMPTY": T_EMPTY,
          "PROFILE": T_PROFILE}
_ROLES = {"NONE": R_NONE, "ID": R_ID, "OPTARIF": R_OPTARIF, "REG": R_REG, "APP": R_APP,
          "APPI": R_APPI, "CUR": R_CUR, "VOLT": R_VOLT, "PERIOD": R_PERIOD,
          "ISOUSC": R_ISOUSC, "PREF": R_PREF, "NTARF": R_NTARF, "ADPS": R_ADPS,
          "DEMAIN": R_DEMAIN, "DATE": R_DATE, "STGE": R_STGE, "EAST": R_EAST,
          "EAIT": R_EAIT, "TRI": R_TRI, "PEJP": R_PEJP}

def build():
    rows = [ln.split() for ln in _TABLE.split("\n") if ln.strip()]
    n = len(rows)
    blob = bytearray()
    off = bytearray(2 * n + 2)
    attrs = bytearray(7 * n)  # mode, horodate, type, min, max, role, phase
    for i in range(n):
        r = rows[i]
        o = len(blob)
        off[2 * i] = o & 0xFF
        off[2 * i + 1] = o >> 8
        blob.extend(r[0].encode())
        a = 7 * i
        attrs[a] = M_HIST if r[1] == "H" else M_STD
        attrs[a + 1] = int(r[2])
        attrs[a + 2] = _TYPES[r[3]]
        attrs[a + 3] = int(r[4])
        attrs[a + 4] = int(r[5])
        attrs[a + 5] = _ROLES[r[6]]
        attrs[a + 6] = int(r[7])
    o = len(blob)
    off[2 * n] = o & 0xFF
    off[2 * n + 1] = o >> 8
    return n, bytes(blob), bytes(off), bytes(attrs)


def labels():
    return [ln.split()[0] for ln in _TABLE.split("\n") if ln.strip()]


def _lit(b):
    out = []
    line = "    b\""
    for c in b:
        t = "\\x%02x" % c if (c < 0x20 or c > 0x7E or c in (0x22, 0x5C)) else chr(c)
        if len(line) + len(t) > 86:
            out.append(line + "\"")
            line = "    b\""
        line += t
    out.append(line + "\"")
    return "\n".join(out)


if __name__ == "__main__":
    n, blob, off, attrs = build()
    print("COUNT = const(%d)" % n)
    for name, b in (("BLOB", blob), ("OFF", off), ("ATTRS", attrs)):
        print(name + " = (\n" + _lit(b) + ")")
