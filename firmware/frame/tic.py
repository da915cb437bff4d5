# TIC frame reader (French Linky / electronic meters), historic and standard mode.
#
# Wire format, Enedis-NOI-CPT_54E section 5.3 (standard) and Enedis-NOI-CPT_02E (historic):
#   STX 0x02, groups "LF label SEP [horodate SEP] data SEP checksum CR", ETX 0x03.
#   Historic: SEP = SP, checksum = (sum(label SP data) & 0x3F) + 0x20 (last SEP left out).
#   Standard: SEP = HT, checksum = (sum(label HT [horodate HT] data HT) & 0x3F) + 0x20
#             (the last HT included).
#   EOT 0x04 interrupts a frame (meter busy on its other port): the frame is incomplete.
#
# The reader is a byte-at-a-time state machine over a fixed buffer: the groups of the
# current frame that passed their checksum stay in `buf` (label, horodate and data
# positions in `gi`), anything else is rewound. Nothing is allocated per byte or per
# group. A subclass (firmware.reading.tic.TicDecoder) identifies labels, validates
# values and turns a finished frame into a reading through the _group/_end hooks.
#
# Resynchronisation rules (why):
# - Bytes before the first STX are ignored: a capture that starts mid-frame drops only
#   that partial frame; a capture starting exactly at STX yields its first frame.
# - STX inside a frame ends the frame (its ETX was lost, or the capture tool dropped
#   every ETX as in the ticdecodecpp 3-phase captures) and starts the next one.
# - LF inside a non-empty group ends that group first: capture tools that turn CR into
#   LF ("...B\n\n") and a CR lost on the line both look like this; the group is still
#   judged by its checksum.
# - CR outside a group and LF/CR between groups are ignored ("\r\n" artefacts).
# - EOT drops the frame; the reader waits for the next STX.
# - A group longer than the buffer or holding a control/8-bit byte is rejected whole.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

import array

STX = const(0x02)
ETX = const(0x03)
EOT = const(0x04)
HT = const(0x09)
LF = const(0x0A)
CR = const(0x0D)
SP = const(0x20)

MODE_AUTO = const(0)
MODE_HIST = const(1)
MODE_STD = const(2)

# how a frame ended, passed to _end()
END_ETX = const(1)      # STX ... ETX
END_STX = const(2)      # next STX came first (ETX lost)
END_DUP = const(3)      # a label came twice: the ETX/STX between two frames was lost
END_EARLY = const(4)    # early stop: every wanted label arrived

# _group() verdicts
G_KEEP = const(1)
G_PENDING = const(2)    # valid but not kept yet (free text awaiting confirmation)
G_VALUE = const(3)      # checksum right, value wrong for its label
G_DUP = const(4)        # label already in this frame
G_STOP = const(5)       # kept, and it was the last wanted label
G_MODE = const(6)       # other mode than the rest of the frame / than configured
G_LABEL = const(7)      # label not in the tables of Enedis-NOI-CPT_02E / _54E

GROUP_MAX = const(128)  # PJOURF+1 / PPOINTE groups are ~110 bytes, the longest
GI = const(5)           # per kept group: start, label end, horodate end, data end, entry


class TicFramer:
    # frame_size: a three-phase standard frame keeps ~1.3 KB of groups (the longest
    # in the corpus: 1314 bytes without LF/CR), the longest possible ~1.5 KB.
    def __init__(self, mode=MODE_AUTO, frame_size=1600, max_groups=96):
        self.mode = mode
        self.buf = bytearray(frame_size)
        self.cap = frame_size
        self.gi = array.array("H", bytes(2 * GI * max_groups))
        self.max_groups = max_groups
        self.frames = 0
        self.readings = 0
        self.noise = 0      # bytes no TIC stream holds (baud search evidence)
        self.errors = {}
        self.reset()

    def reset(self):
        # drop partial state (after a baud change, or to resync on purpose)
        self.in_frame = False
        self.w = 0          # write position (end of kept groups / current group)
        self.g0 = -1        # start of the group being received, -1 outside a group
        self.ng = 0         # kept groups in this frame
        self.fmode = 0      # mode of this frame once a group decided it
        self.dirty = False  # something in this frame was rejected or lost
        self._gs = 0        # byte sum of the current group
        self._bad = False   # current group holds a byte no group may hold
        self._full = False  # current group did not fit in the buffer
        self._nht = 0
        self._ht1 = self._ht2 = self._sp1 = -1
        self._out = None

    def _err(self, kind):
        e = self.errors
        e[kind] = e.get(kind, 0) + 1

    # -- hooks (the decoder overrides them) ------------------------------------------
    def _group(self, a, p1, p2, ve, std):
        # label buf[a:p1], horodate buf[p1+1:p2] (p2 == p1 when none), data buf[p2+1:ve];
        # sets self._ge (a label id stored with the group) and returns a G_* verdict.
        # The plain reader keeps every group whose checksum is right.
        self._ge = 0
        return G_KEEP

    def _begin(self):
        pass

    def _end(self, how):
        pass

    # -- byte stream ----------------------------------------------------------------
    def feed(self, data):
        # data: bytes/bytearray/memoryview of any length. Returns what _end() collected
        # (the decoder's readings), or an empty tuple: nothing is allocated when no frame
        # ended in this chunk.
        self._out = None
        buf = self.buf
        cap = self.cap
        w = self.w
        g0 = self.g0
        s = self._gs
        for b in data:
            if SP <= b < 0x7F:
                if g0 >= 0:
                    if b == SP and self._sp1 < 0:
                        self._sp1 = w
                    if w < cap:
                        buf[w] = b
                        w += 1
                        s += b
                    else:
                        self._full = True
                elif self.in_frame:
                    self.dirty = True
                continue
            if b == HT:
                if g0 >= 0:
                    n = self._nht
                    if n == 0:
                        self._ht1 = w
                    elif n == 1:
                        self._ht2 = w
                    self._nht = n + 1
                    if w < cap:
                        buf[w] = b
                        w += 1
                        s += b
                    else:
                        self._full = True
                elif self.in_frame:
                    self.dirty = True
                continue
            if b == LF:
                if not self.in_frame:
                    continue
                if g0 >= 0 and w > g0:
                    self.w = w
                    self._gs = s
                    self._close(g0)
                    w = self.w
                    if not self.in_frame:   # the group ended the frame (dup / early)
                        g0 = -1
                        continue
                g0 = w
                s = 0
                self._bad = self._full = False
                self._nht = 0
                self._ht1 = self._ht2 = self._sp1 = -1
                continue
            if b == CR:
                if g0 >= 0:
                    if w > g0:
                        self.w = w
                        self._gs = s
                        self._close(g0)
                        w = self.w
                    g0 = -1
                continue
            if b == STX:
                if self.in_frame:
                    self.w = w
                    self._drop_open(g0)
                    self._finish(END_STX)
                self._start()
                w = 0
                g0 = -1
                continue
            if b == ETX:
                if self.in_frame:
                    self.w = w
                    self._drop_open(g0)
                    self._finish(END_ETX)
                    w = self.w
                g0 = -1
                continue
            if b == EOT:
                if self.in_frame:
                    self.frames += 1
                    self._err("interrupted")
                    self.in_frame = False
                w = 0
                g0 = -1
                continue
            # any other control byte or a byte >= 0x7F: no group may hold it (7-bit
            # ASCII, Enedis-NOI-CPT_54E 5.3.4): line noise, or the wrong baud rate
            self.noise += 1
            if g0 >= 0:
                self._bad = True
            elif self.in_frame:
                self.dirty = True
        self.w = w
        self.g0 = g0
        self._gs = s
        out = self._out
        self._out = None
        return out if out else ()

    def flush(self):
        # End of input (a file, not a live line): the frame still open is finished as
        # incomplete, so its valid groups are not lost. Returns like feed().
        self._out = None
        if self.in_frame:
            self._drop_open(self.g0)
            self._finish(END_STX)
        self.g0 = -1
        self.w = 0
        out = self._out
        self._out = None
        return out if out else ()

    # -- frame events -----------------------------------------------------------------
    def _start(self):
        self.in_frame = True
        self.w = 0
        self.g0 = -1
        self.ng = 0
        self.fmode = 0
        self.dirty = False
        self._begin()

    def _drop_open(self, g0):
        # a group still open when the frame ends never got its CR: rejected
        if g0 >= 0 and self.w > g0:
            self._err("truncated")
            self.dirty = True
        if g0 >= 0:
            self.w = g0

    def _finish(self, how):
        self.frames += 1
        self.in_frame = False
        self._end(how)
        self.w = 0
        self.ng = 0

    def _close(self, g0):
        # the group buf[g0:self.w] ended: keep it (positions in gi) or rewind
        buf = self.buf
        w = self.w
        n = w - g0
        self.w = g0       # rewound unless kept below
        if self._full or n > GROUP_MAX:
            self._reject("oversize")
            return
        if self._bad or n < 4:
            self._reject("garbage")
            return
        cs = buf[w - 1]
        sep = buf[w - 2]
        nht = self._nht
        if nht:
            std = True
            if sep != HT or nht < 2 or nht > 3 or cs > 0x5F:
                self._reject("garbage")
                return
            chk = self._gs - cs
            p1 = self._ht1
            if nht == 3:
                p2 = self._ht2
            else:
                p2 = p1
        else:
            std = False
            p1 = self._sp1
            # historic: label SP data SP checksum; data holds no SP
            if sep != SP or p1 < 0 or p1 >= w - 2 or cs > 0x5F:
                self._reject("garbage")
                return
            i = p1 + 1
            while i < w - 2:
                if buf[i] == SP:
                    self._reject("garbage")
                    return
                i += 1
            chk = self._gs - cs - SP
            p2 = p1
        if ((chk & 0x3F) + 0x20) != cs or p1 == g0:
            self._reject("checksum" if p1 != g0 else "garbage")
            return
        mode = self.mode
        want = 2 if std else 1
        if (mode and mode != want) or (self.fmode and self.fmode != want):
            self._reject("mode")
            return
        ve = w - 2
        if self.ng >= self.max_groups:
            self._reject("oversize")
            return
        v = self._group(g0, p1, p2, ve, std)
        if v == G_DUP:
            # The frame boundary was lost (STX and ETX garbled): this group opens the
            # next frame. End this frame, and start the next one with this group, marked
            # dirty since its head is unknown (its values are right, the frame is not
            # whole).
            self._err("duplicate")
            self._finish(END_DUP)
            self._start()
            self.dirty = True
            for i in range(n):
                buf[i] = buf[g0 + i]
            p1 -= g0
            p2 -= g0
            ve -= g0
            w = n
            g0 = 0
            v = self._group(g0, p1, p2, ve, std)
        if v == G_KEEP or v == G_STOP:
            self.fmode = want
            k = self.ng * GI
            gi = self.gi
            gi[k] = g0
            gi[k + 1] = p1
            gi[k + 2] = p2
            gi[k + 3] = ve
            gi[k + 4] = self._ge
            self.ng += 1
            self.w = w
            if v == G_STOP:
                self._finish(END_EARLY)
            return
        if v == G_PENDING:
            self.fmode = want
            return
        self._reject("value" if v == G_VALUE else ("label" if v == G_LABEL else "mode"))

    def _reject(self, kind):
        self._err(kind)
        self.dirty = True
