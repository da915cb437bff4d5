"""Project-local footprints (library nickname "dongle", hardware/lib/dongle.pretty), only for
what KiCad's official footprint library lacks (every other part uses the library footprint,
see designs.py):

- CP_Supercap: Cornell Dubilier DGH series 2-cell module (DGH255Q5R5 drawing: 21 x 11 mm
  body, leads 15.5 mm apart), sized from values.json
- WeMos_D1_mini_Socket / ESP32C3_SuperMini_Socket: two 1x8 rows of 2.54 mm stacking
  sockets at the modules' row spacing (D1 mini 22.86 mm, C3 super mini 15.24 mm)

Silkscreen is clipped 0.25 mm away from every pad so DRC never reports silk over copper.
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
