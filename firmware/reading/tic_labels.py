# TIC label tables, historic and standard mode, packed for the ESP8266 heap.
#
# Sources: Enedis-NOI-CPT_02E (historic mode, "trame" table, section 6) and
# Enedis-NOI-CPT_54E (standard mode, section 6.2.3: labels, horodate, data lengths).
#
# The table is one text constant parsed once at import into small byte arrays (no
# per-label Python objects): the label bytes live in one blob, the attributes in
# parallel bytearrays, and a 512-slot open-addressing table finds a label from its
# bytes without allocating (the frame reader hashes the label in its own buffer).
#
# Each line: LABEL MODE HORODATE TYPE MIN MAX ROLE PHASE
#   MODE      H historic, S standard
#   HORODATE  1 when the group carries a horodate (standard mode, spec 6.2.3), else 0
#   TYPE      value type (below); MIN/MAX length of the value in characters
#   ROLE      what the value feeds in the reading (below); PHASE 0 or 1..3
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# value types
T_DIG = const(1)     # decimal digits, fixed length (indexes, currents, powers)
T_HEX = const(2)     # uppercase hexadecimal (STGE, PPOT)
T_ID = const(3)      # [A-Z0-9] identifiers (ADCO/ADSC, MOTDETAT)
T_TEXT = const(4)    # free text (NGTF, LTARF, MSG1/2), see reading.tic for its checks
T_OPT = const(5)     # OPTARIF: BASE, HC.., EJP., BBRx
T_PTEC = const(6)    # PTEC period codes
T_DEMAIN = const(7)  # ----, BLEU, BLAN, ROUG
T_LETTER = const(8)  # one uppercase letter (HHPHC)
T_EMPTY = const(9)   # DATE: the value is empty, the time is in the horodate
T_PROFILE = const(10)  # PJOURF+1 / PPOINTE: blocks of 8 [A-Z0-9] separated by spaces

# roles
R_NONE = const(0)
R_ID = const(1)
R_OPTARIF = const(2)
R_REG = const(3)       # energy register in Wh -> reading["registers"]
R_APP = const(4)       # PAPP / SINSTS
R_APPI = const(5)      # SINSTI
R_CUR = const(6)       # IINST, IINST1..3, IRMS1..3
R_VOLT = const(7)      # URMS1..3
R_PERIOD = const(8)    # PTEC / LTARF
R_ISOUSC = const(9)
R_PREF = const(10)
R_NTARF = const(11)
R_ADPS = const(12)     # ADPS, ADIR1..3
R_DEMAIN = const(13)
R_DATE = const(14)
R_STGE = const(15)
R_EAST = const(16)     # register and energy_import_wh (standard)
R_EAIT = const(17)     # register and energy_export_wh (standard)
R_TRI = const(18)      # only shows the meter is three-phase
R_PAPP_SEEN = const(19)

M_HIST = const(1)
M_STD = const(2)

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
PEJP H 0 DIG 2 2 NONE 0
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
          "EAIT": R_EAIT, "TRI": R_TRI}

PROBE_BITS = const(9)
PROBE_MASK = const(511)


def label_hash(buf, a, b):
    # the same hash the frame reader computes over buf[a:b]
    h = 0
    for i in range(a, b):
        h = (h * 31 + buf[i]) & 0xFFFF
    return h


def _build():
    rows = [ln.split() for ln in _TABLE.split("\n") if ln.strip()]
    n = len(rows)
    blob = bytearray()
    off = bytearray(2 * n + 2)
    attrs = bytearray(7 * n)  # mode, horodate, type, min, max, role, phase
    for i in range(n):
        r = rows[i]
        lb = r[0].encode()
        o = len(blob)
        off[2 * i] = o & 0xFF
        off[2 * i + 1] = o >> 8
        blob.extend(lb)
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
    probe = bytearray(PROBE_MASK + 1)   # entry index + 1, 0 = empty
    for i in range(n):
        s = off[2 * i] | (off[2 * i + 1] << 8)
        e = off[2 * i + 2] | (off[2 * i + 3] << 8)
        j = label_hash(blob, s, e) & PROBE_MASK
        while probe[j]:
            j = (j + 1) & PROBE_MASK
        probe[j] = i + 1
    return n, bytes(blob), bytes(off), bytes(attrs), bytes(probe)


COUNT, BLOB, OFF, ATTRS, PROBE = _build()
del _TABLE, _TYPES, _ROLES


def find(buf, a, b):
    # entry index of the label buf[a:b], or -1; allocates nothing
    j = label_hash(buf, a, b) & PROBE_MASK
    probe = PROBE
    off = OFF
    blob = BLOB
    n = b - a
    while True:
        k = probe[j]
        if not k:
            return -1
        e = k - 1
        s = off[2 * e] | (off[2 * e + 1] << 8)
        t = off[2 * e + 2] | (off[2 * e + 3] << 8)
        if t - s == n:
            i = 0
            while i < n and blob[s + i] == buf[a + i]:
                i += 1
            if i == n:
                return e
        j = (j + 1) & PROBE_MASK


def name_bytes(e):
    s = OFF[2 * e] | (OFF[2 * e + 1] << 8)
    t = OFF[2 * e + 2] | (OFF[2 * e + 3] << 8)
    return BLOB[s:t]


def lookup(label):
    # entry index of a label given as str or bytes (for want() and tests), or -1
    if isinstance(label, str):
        label = label.encode()
    return find(label, 0, len(label))
