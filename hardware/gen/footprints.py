"""Project-local footprints (library nickname "dongle", hardware/lib/dongle.pretty).

Land patterns follow the IPC-7351 nominal sizes the manufacturers' datasheets give
(0805/1206, SOD-123, SMA, SOT-23/-5/-6, SOT-223, SMDIP-4) and the datasheet drawings of
the through-hole parts (Hongfa HF3F-L latching relay, Amphenol 54601 RJ12, 5.08 mm
terminal blocks, 2.54 mm headers). Silkscreen is clipped 0.25 mm away from every pad so
DRC never reports silk over copper.
"""
from symbols import q

PAD_SILK_GAP = 0.25


class Fp:
    def __init__(self, name, descr, pads, body, attr="smd", silk_body=None, courtyard=None,
                 pin1_mark=True, extra_silk=(), holes=()):
        self.name = name
        self.descr = descr
        self.pads = pads          # (num, kind, shape, x, y, w, h, drill)
        self.body = body          # (x0, y0, x1, y1) package outline
        self.attr = attr
        self.silk_body = body if silk_body is None else silk_body
        self.courtyard = courtyard
        self.courtyards = None
        self.pin1_mark = pin1_mark
        self.extra_silk = extra_silk
        self.holes = holes        # (x, y, d) non-plated holes

    def pad_boxes(self, margin):
        out = []
        for (num, kind, shape, x, y, w, h, drill) in self.pads:
            out.append((x - w / 2 - margin, y - h / 2 - margin, x + w / 2 + margin, y + h / 2 + margin))
        for (x, y, d) in self.holes:
            out.append((x - d / 2 - margin, y - d / 2 - margin, x + d / 2 + margin, y + d / 2 + margin))
        return out

    def crtyd(self):
        if self.courtyard:
            return self.courtyard
        xs, ys = [self.body[0], self.body[2]], [self.body[1], self.body[3]]
        for b in self.pad_boxes(0):
            xs += [b[0], b[2]]
            ys += [b[1], b[3]]
        m = 0.25
        return (round(min(xs) - m, 2), round(min(ys) - m, 2), round(max(xs) + m, 2), round(max(ys) + m, 2))


def _clip_segment(a, b, boxes):
    """Axis-aligned segment a-b minus the boxes -> list of sub-segments."""
    (x0, y0), (x1, y1) = a, b
    horiz = abs(y0 - y1) < 1e-9
    lo, hi = (min(x0, x1), max(x0, x1)) if horiz else (min(y0, y1), max(y0, y1))
    c = y0 if horiz else x0
    cuts = []
    for (bx0, by0, bx1, by1) in boxes:
        if horiz and by0 < c < by1:
            cuts.append((bx0, bx1))
        if not horiz and bx0 < c < bx1:
            cuts.append((by0, by1))
    segs = [(lo, hi)]
    for (c0, c1) in cuts:
        nxt = []
        for (s0, s1) in segs:
            if c1 <= s0 or c0 >= s1:
                nxt.append((s0, s1))
                continue
            if c0 > s0:
                nxt.append((s0, c0))
            if c1 < s1:
                nxt.append((c1, s1))
        segs = nxt
    out = []
    for (s0, s1) in segs:
        if s1 - s0 < 0.3:
            continue
        out.append(((s0, c), (s1, c)) if horiz else ((c, s0), (c, s1)))
    return out


def _line(a, b, layer, w):
    return ("  (fp_line (start %g %g) (end %g %g) (stroke (width %g) (type solid)) (layer %s))"
            % (round(a[0], 3), round(a[1], 3), round(b[0], 3), round(b[1], 3), w, q(layer)))


def _text_prop(name, value, x, y, layer, hide=False, size=1.0, th=0.15):
    return ("  (property %s %s (at %g %g 0) (layer %s)%s (effects (font (size %g %g) (thickness %g))))"
            % (q(name), q(value), x, y, q(layer), " (hide yes)" if hide else "", size, size, th))


def render(fp):
    o = ["(footprint %s" % q(fp.name), "  (version 20241229) (generator \"dongle_gen\") (generator_version \"9.0\")",
         "  (layer \"F.Cu\")", "  (descr %s)" % q(fp.descr)]
    cx0, cy0, cx1, cy1 = fp.crtyd()
    o.append(_text_prop("Reference", "REF**", 0, round(cy0 - 0.8, 2), "F.SilkS"))
    o.append(_text_prop("Value", fp.name, 0, round(cy1 + 0.8, 2), "F.Fab", size=0.8, th=0.12))
    o.append(_text_prop("Datasheet", "", 0, 0, "F.Fab", hide=True))
    o.append(_text_prop("Description", fp.descr, 0, 0, "F.Fab", hide=True))
    o.append("  (attr %s)" % fp.attr)
    # silk: body outline clipped around pads
    boxes = fp.pad_boxes(PAD_SILK_GAP + 0.06)
    edges = []
    if fp.silk_body:
        x0, y0, x1, y1 = fp.silk_body
        edges = [((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))]
    for a, b in edges:
        for s in _clip_segment(a, b, boxes):
            o.append(_line(s[0], s[1], "F.SilkS", 0.15))
    for (a, b) in fp.extra_silk:
        for s in _clip_segment(a, b, boxes):
            o.append(_line(s[0], s[1], "F.SilkS", 0.15))
    if getattr(fp, "silk_circle", None):
        o.append("  (fp_circle (center 0 0) (end %g 0) (stroke (width 0.15) (type solid)) (fill no) (layer \"F.SilkS\"))"
                 % fp.silk_circle)
    if fp.pin1_mark:
        p1 = [p for p in fp.pads if p[0] in ("1", "A1")][0]
        # a short bar just outside pin 1, on the body side facing away from the part centre
        px, py, w, h = p1[3], p1[4], p1[5], p1[6]
        if abs(px) >= abs(py):   # pin on the left/right: mark above it
            yy = py - h / 2 - PAD_SILK_GAP - 0.2
            o.append(_line((px - w / 2, yy), (px + w / 2, yy), "F.SilkS", 0.15))
        else:
            xx = px - w / 2 - PAD_SILK_GAP - 0.2
            o.append(_line((xx, py - h / 2), (xx, py + h / 2), "F.SilkS", 0.15))
    # fab + courtyard
    bx0, by0, bx1, by1 = fp.body
    for a, b in [((bx0, by0), (bx1, by0)), ((bx1, by0), (bx1, by1)), ((bx1, by1), (bx0, by1)), ((bx0, by1), (bx0, by0))]:
        o.append(_line(a, b, "F.Fab", 0.1))
    for (cx0, cy0, cx1, cy1) in (fp.courtyards or [(cx0, cy0, cx1, cy1)]):
        for a, b in [((cx0, cy0), (cx1, cy0)), ((cx1, cy0), (cx1, cy1)), ((cx1, cy1), (cx0, cy1)), ((cx0, cy1), (cx0, cy0))]:
            o.append(_line(a, b, "F.CrtYd", 0.05))
    o.append("  (fp_text user \"${REFERENCE}\" (at %g %g 0) (layer \"F.Fab\") (effects (font (size 0.6 0.6) (thickness 0.09))))"
             % (round((bx0 + bx1) / 2, 3), round((by0 + by1) / 2, 3)))
    for (num, kind, shape, x, y, w, h, drill) in fp.pads:
        if kind == "smd":
            layers = '"F.Cu" "F.Mask" "F.Paste"'
        else:
            layers = '"*.Cu" "*.Mask"'
        s = "  (pad %s %s %s (at %g %g) (size %g %g)" % (q(num), kind, shape, x, y, w, h)
        if drill:
            s += " (drill %g)" % drill
        s += " (layers %s)" % layers
        if shape == "roundrect":
            s += " (roundrect_rratio 0.25)"
        s += ")"
        o.append(s)
    for (x, y, d) in fp.holes:
        o.append("  (pad \"\" np_thru_hole circle (at %g %g) (size %g %g) (drill %g) (layers \"*.Cu\" \"*.Mask\"))"
                 % (x, y, d, d, d))
    o.append("  (embedded_fonts no)")
    o.append(")")
    return "\n".join(o) + "\n"


FOOTPRINTS = {}


def _add(fp):
    FOOTPRINTS[fp.name] = fp


def two_smd(name, descr, px, w, h, body):
    return Fp(name, descr, [("1", "smd", "roundrect", -px, 0, w, h, None),
                            ("2", "smd", "roundrect", px, 0, w, h, None)],
              (-body[0] / 2, -body[1] / 2, body[0] / 2, body[1] / 2),
              silk_body=(-body[0] / 2 - 0.1, -body[1] / 2 - 0.1, body[0] / 2 + 0.1, body[1] / 2 + 0.1),
              pin1_mark=False)


_add(two_smd("R_0805", "Resistor 0805 (2012 metric)", 0.9125, 1.025, 1.4, (2.0, 1.25)))
_add(two_smd("C_0805", "Capacitor 0805 (2012 metric)", 0.9125, 1.025, 1.4, (2.0, 1.25)))
_add(two_smd("R_1206", "Resistor 1206 (3216 metric)", 1.4625, 1.125, 1.75, (3.2, 1.6)))
_add(two_smd("C_1206", "Capacitor 1206 (3216 metric)", 1.4625, 1.125, 1.75, (3.2, 1.6)))
_add(two_smd("Fuse_1206", "Resettable fuse 1206 (3216 metric)", 1.4625, 1.125, 1.75, (3.2, 1.6)))
d = two_smd("D_SOD-123", "Diode SOD-123, pin 1 = cathode", 1.65, 0.9, 1.2, (2.7, 1.6))
d.pin1_mark = True
d.extra_silk = [((-2.35, -0.95), (-2.35, 0.95))]
_add(d)
d = two_smd("D_SMA", "Diode SMA (DO-214AC), pin 1 = cathode", 2.0, 2.5, 1.8, (4.3, 2.6))
d.extra_silk = [((-3.5, -1.4), (-3.5, 1.4))]
_add(d)
_add(two_smd("LED_0805", "LED 0805, pin 1 = cathode", 0.9375, 0.975, 1.4, (2.0, 1.25)))

_add(Fp("SOT-23", "SOT-23 (1 = left top, 2 = left bottom, 3 = right)",
        [("1", "smd", "roundrect", -0.9375, -0.95, 1.475, 0.6, None),
         ("2", "smd", "roundrect", -0.9375, 0.95, 1.475, 0.6, None),
         ("3", "smd", "roundrect", 0.9375, 0, 1.475, 0.6, None)],
        (-0.65, -1.45, 0.65, 1.45), silk_body=(-0.76, -1.56, 0.76, 1.56)))
_add(Fp("SOT-23-5", "SOT-23-5",
        [("1", "smd", "roundrect", -1.1375, -0.95, 1.325, 0.6, None),
         ("2", "smd", "roundrect", -1.1375, 0, 1.325, 0.6, None),
         ("3", "smd", "roundrect", -1.1375, 0.95, 1.325, 0.6, None),
         ("4", "smd", "roundrect", 1.1375, 0.95, 1.325, 0.6, None),
         ("5", "smd", "roundrect", 1.1375, -0.95, 1.325, 0.6, None)],
        (-0.8, -1.45, 0.8, 1.45), silk_body=(-0.91, -1.56, 0.91, 1.56)))
_add(Fp("SOT-23-6", "SOT-23-6",
        [("1", "smd", "roundrect", -1.1375, -0.95, 1.325, 0.6, None),
         ("2", "smd", "roundrect", -1.1375, 0, 1.325, 0.6, None),
         ("3", "smd", "roundrect", -1.1375, 0.95, 1.325, 0.6, None),
         ("4", "smd", "roundrect", 1.1375, 0.95, 1.325, 0.6, None),
         ("5", "smd", "roundrect", 1.1375, 0, 1.325, 0.6, None),
         ("6", "smd", "roundrect", 1.1375, -0.95, 1.325, 0.6, None)],
        (-0.8, -1.45, 0.8, 1.45), silk_body=(-0.91, -1.56, 0.91, 1.56)))
_add(Fp("SOT-223-3", "SOT-223-3, tab = pin 2",
        [("1", "smd", "roundrect", -3.15, -2.3, 2.0, 1.5, None),
         ("2", "smd", "roundrect", -3.15, 0, 2.0, 1.5, None),
         ("3", "smd", "roundrect", -3.15, 2.3, 2.0, 1.5, None),
         ("2", "smd", "roundrect", 3.15, 0, 2.0, 3.8, None)],
        (-1.85, -3.35, 1.85, 3.35), silk_body=(-1.96, -3.46, 1.96, 3.46)))
_add(Fp("SMDIP-4", "SMD DIP-4, 2.54 mm pitch, 9.53 mm lead span (LTV-814S/LTV-817S -TA1)",
        [("1", "smd", "roundrect", -4.765, -1.27, 2.0, 1.78, None),
         ("2", "smd", "roundrect", -4.765, 1.27, 2.0, 1.78, None),
         ("3", "smd", "roundrect", 4.765, 1.27, 2.0, 1.78, None),
         ("4", "smd", "roundrect", 4.765, -1.27, 2.0, 1.78, None)],
        (-3.25, -2.54, 3.25, 2.54), silk_body=(-3.36, -2.65, 3.36, 2.65)))
_add(Fp("SolderJumper_3", "Three-pad solder jumper, open (bridge 1-2 or 2-3 by hand)",
        [("1", "smd", "rect", -1.3, 0, 1.0, 1.5, None), ("2", "smd", "rect", 0, 0, 1.0, 1.5, None),
         ("3", "smd", "rect", 1.3, 0, 1.0, 1.5, None)],
        (-2.0, -1.0, 2.0, 1.0), silk_body=(-2.1, -1.1, 2.1, 1.1), pin1_mark=False))


_add(Fp("SW_Push_TS-1187A", "SMD tactile switch 5.1 x 5.1 mm, XKB TS-1187A (pads 1-1 and 2-2 joined inside)",
        [("1", "smd", "rect", -3.0, -1.875, 1.0, 0.75, None), ("1", "smd", "rect", 3.0, -1.875, 1.0, 0.75, None),
         ("2", "smd", "rect", -3.0, 1.875, 1.0, 0.75, None), ("2", "smd", "rect", 3.0, 1.875, 1.0, 0.75, None)],
        (-2.55, -2.55, 2.55, 2.55), silk_body=(-2.66, -2.66, 2.66, 2.66), pin1_mark=False,
        courtyard=(-3.75, -2.8, 3.75, 2.8)))


def header(name, n, pitch=2.54, descr=""):
    pads = []
    for i in range(n):
        pads.append((str(i + 1), "thru_hole", "rect" if i == 0 else "circle", 0, i * pitch, 1.7, 1.7, 1.0))
    return Fp(name, descr or "Pin header / socket 1x%d, 2.54 mm" % n, pads,
              (-1.27, -1.27, 1.27, (n - 1) * pitch + 1.27), attr="through_hole",
              silk_body=(-1.33, -1.33, 1.33, (n - 1) * pitch + 1.33), pin1_mark=False)


_add(header("PinHeader_1x02", 2))
_add(header("PinHeader_1x04", 4))
_add(header("PinHeader_1x08", 8))


def module(name, descr, row_gap):
    pads = []
    for i in range(8):
        pads.append((str(i + 1), "thru_hole", "rect" if i == 0 else "circle", 0, i * 2.54, 1.7, 1.7, 1.0))
    for i in range(8):
        pads.append((str(i + 9), "thru_hole", "circle", row_gap, i * 2.54, 1.7, 1.7, 1.0))
    L = 7 * 2.54
    f = Fp(name, descr, pads, (-1.27, -1.27, row_gap + 1.27, L + 1.27), attr="through_hole",
           silk_body=False, pin1_mark=False,
           extra_silk=[((-1.33, -1.33), (1.33, -1.33)), ((1.33, -1.33), (1.33, L + 1.33)),
                       ((1.33, L + 1.33), (-1.33, L + 1.33)), ((-1.33, L + 1.33), (-1.33, -1.33)),
                       ((row_gap - 1.33, -1.33), (row_gap + 1.33, -1.33)),
                       ((row_gap + 1.33, -1.33), (row_gap + 1.33, L + 1.33)),
                       ((row_gap + 1.33, L + 1.33), (row_gap - 1.33, L + 1.33)),
                       ((row_gap - 1.33, L + 1.33), (row_gap - 1.33, -1.33)),
                       ((-1.9, -0.6), (-1.9, 0.6))])
    f.courtyards = [(-1.6, -1.6, 1.6, L + 1.6), (row_gap - 1.6, -1.6, row_gap + 1.6, L + 1.6)]
    return f


# D1 mini: rows 22.86 mm (0.9") apart; the C3 super mini rows 15.24 mm (0.6") apart.
D1_GAP = 22.86
C3_GAP = 15.24
_add(module("WeMos_D1_mini_Socket", "Wemos/LOLIN D1 mini stacking header, 2x8, rows 22.86 mm apart "
            "(top view: left row RST..3V3 = pins 1-8, right row TX..5V = pins 9-16)", D1_GAP))
_add(module("ESP32C3_SuperMini_Socket", "ESP32-C3 super mini header, 2x8, rows 15.24 mm apart "
            "(top view, USB up: 5V..GPIO0 = pins 1-8, GPIO5..GPIO21 = pins 9-16)", C3_GAP))


def terminal(name, n, pitch, descr):
    pads = []
    for i in range(n):
        pads.append((str(i + 1), "thru_hole", "rect" if i == 0 else "circle", i * pitch, 0, 2.6, 2.6, 1.3))
    w = (n - 1) * pitch
    return Fp(name, descr, pads, (-pitch / 2, -4.1, w + pitch / 2, 4.1), attr="through_hole",
              silk_body=(-pitch / 2 - 0.11, -4.21, w + pitch / 2 + 0.11, 4.21), pin1_mark=False)


_add(terminal("TerminalBlock_1x02_P5.08", 2, 5.08, "Screw terminal 2 ways, 5.08 mm pitch (KF301-5.0-2P / DG301)"))
_add(terminal("TerminalBlock_1x03_P5.08", 3, 5.08, "Screw terminal 3 ways, 5.08 mm pitch (KF301-5.0-3P / DG301)"))
_add(terminal("TerminalBlock_1x02_P7.50", 2, 7.5,
              "Screw terminal 2 ways, 7.5 mm pitch, 300 V / 16 A class (mains load side)"))

_add(Fp("RJ12_Amphenol_54601", "RJ12 6P6C horizontal, Amphenol 54601-x06 drawing",
        [("1", "thru_hole", "rect", 0, 0, 1.52, 1.52, 0.76),
         ("2", "thru_hole", "circle", 1.27, 2.54, 1.52, 1.52, 0.76),
         ("3", "thru_hole", "circle", 2.54, 0, 1.52, 1.52, 0.76),
         ("4", "thru_hole", "circle", 3.81, 2.54, 1.52, 1.52, 0.76),
         ("5", "thru_hole", "circle", 5.08, 0, 1.52, 1.52, 0.76),
         ("6", "thru_hole", "circle", 6.35, 2.54, 1.52, 1.52, 0.76)],
        (-3.42, -1.23, 9.78, 16.77), attr="through_hole", silk_body=(-3.53, -1.34, 9.89, 16.88),
        holes=[(-1.9, 8.89, 3.25), (8.26, 8.89, 3.25)], pin1_mark=False))

_add(Fp("Relay_Hongfa_HF3F-L_1HL2T", "Hongfa HF3F-L two-coil latching relay, form A, 10 A 250 VAC "
        "(A1 = set coil, A2 = reset coil, A3 = coil common +, 11 = COM, 14 = NO)",
        [("A1", "thru_hole", "rect", 0, 0, 2.5, 2.5, 1.3), ("A2", "thru_hole", "circle", 0, 12, 2.5, 2.5, 1.3),
         ("A3", "thru_hole", "circle", 13.8, 6, 2.5, 2.5, 1.3), ("11", "thru_hole", "circle", -2, 6, 2.5, 2.5, 1.3),
         ("14", "thru_hole", "circle", 12.2, 12, 2.5, 2.5, 1.3)],
        (-3.6, -1.6, 15.6, 13.6), attr="through_hole", silk_body=(-3.71, -1.71, 15.71, 13.71),
        pin1_mark=False))


def supercap(name, d, pitch, descr):
    r = d / 2
    f = Fp(name, descr,
              [("1", "thru_hole", "rect", -pitch / 2, 0, 2.0, 2.0, 1.0),
               ("2", "thru_hole", "circle", pitch / 2, 0, 2.0, 2.0, 1.0)],
              (-r, -r, r, r), attr="through_hole", silk_body=False,
              pin1_mark=False,
              extra_silk=[((-pitch / 2 - 2.2, -1.6), (-pitch / 2 - 0.9, -1.6)),
                          ((-pitch / 2 - 1.55, -2.25), (-pitch / 2 - 1.55, -0.95))])
    f.silk_circle = r + 0.11
    return f


def supercap_box(name, bw, bh, pitch, descr):
    """Oblong supercapacitor module (e.g. CDE DGH, 2 cells), leads along the long side."""
    return Fp(name, descr,
              [("1", "thru_hole", "rect", -pitch / 2, 0, 2.0, 2.0, 1.0),
               ("2", "thru_hole", "circle", pitch / 2, 0, 2.0, 2.0, 1.0)],
              (-bw / 2, -bh / 2, bw / 2, bh / 2), attr="through_hole",
              silk_body=(-bw / 2 - 0.11, -bh / 2 - 0.11, bw / 2 + 0.11, bh / 2 + 0.11), pin1_mark=False,
              extra_silk=[((-pitch / 2 - 0.6, -2.2), (-pitch / 2 + 0.6, -2.2)),
                          ((-pitch / 2, -2.8), (-pitch / 2, -1.6))])


FOOTPRINT_MAKERS = {"supercap": supercap}


def mounting_hole():
    return ("(footprint \"MountingHole_3.2mm_M3\"\n  (version 20241229) (generator \"dongle_gen\") (generator_version \"9.0\")\n"
            "  (layer \"F.Cu\")\n  (descr \"Mounting hole M3, non-plated, 3.2 mm\")\n"
            + _text_prop("Reference", "REF**", 0, -4.2, "F.Fab", size=0.8, th=0.12) + "\n"
            + _text_prop("Value", "MountingHole_3.2mm_M3", 0, 4.2, "F.Fab", size=0.8, th=0.12) + "\n"
            + _text_prop("Datasheet", "", 0, 0, "F.Fab", hide=True) + "\n"
            + _text_prop("Description", "M3 mounting hole", 0, 0, "F.Fab", hide=True) + "\n"
            "  (attr exclude_from_pos_files exclude_from_bom board_only)\n"
            "  (fp_circle (center 0 0) (end 3.45 0) (stroke (width 0.05) (type solid)) (fill no) (layer \"F.CrtYd\"))\n"
            "  (fp_circle (center 0 0) (end 3.2 0) (stroke (width 0.1) (type solid)) (fill no) (layer \"Cmts.User\"))\n"
            "  (pad \"\" np_thru_hole circle (at 0 0) (size 3.2 3.2) (drill 3.2) (layers \"*.Cu\" \"*.Mask\"))\n"
            "  (embedded_fonts no)\n)\n")
