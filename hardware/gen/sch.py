"""Writes a KiCad 9 schematic (.kicad_sch) from a part list.

Each functional block (the parts' group) is a band of the sheet: its symbols in a row, and
under them one horizontal rail per net, every pin wired to its net's rail by an orthogonal
path (pin -> its own lane beside the symbol -> down to the rail; junction dots at T's).
A net that leaves the block carries one label, at the right end of its rail: labels only
join blocks. Wires of different nets only ever cross (never end on each other), so a
crossing is not a connection; the netlist check (expected_nets.json) would catch a short.
Pins left open get a no-connect flag, supplies fed from a connector a PWR_FLAG.
UUIDs are derived from names (uuid5) so regenerating gives byte-identical files.
"""
import uuid

from symbols import LIB, get, lib_id, q

NS = uuid.UUID("6f1d7c2e-0b7e-4f57-9a55-2b1c3d4e5f60")


def uid(*parts):
    return str(uuid.uuid5(NS, "/".join(str(p) for p in parts)))


def snap(v, g=1.27):
    return round(round(v / g) * g, 4)


def _font(size=1.27, hide=False, justify=None):
    s = "(effects (font (size %g %g))" % (size, size)
    if justify:
        s += " (justify %s)" % justify
    if hide:
        s += " (hide yes)"
    return s + ")"


class Part:
    def __init__(self, ref, sym, fp, value, nets, lcsc="", mpn="", mfr="", note="", group="",
                 pcb=None, dnp=False):
        self.ref = ref
        self.sym = sym
        self.fp = fp
        self.value = value
        self.nets = nets          # pin number -> net name (None = not connected)
        self.lcsc = lcsc
        self.mpn = mpn
        self.mfr = mfr
        self.note = note
        self.group = group
        self.pcb = pcb            # (x, y, rot, side) filled by the board layout
        self.dnp = dnp


FLAG = "power:PWR_FLAG"


def fp_id(fp):
    return fp if ":" in fp else LIB + ":" + fp


def label_angle(pin_angle):
    return (pin_angle + 180) % 360


G = 2.54          # lane / rail pitch
TEXT_H = 2.54     # one line of reference or value text


def _outward(ang):
    """Sheet direction (dx, dy) a pin's connection point faces: the pin is drawn from its
    point towards the body along `ang` (symbol coordinates, Y up)."""
    return {0: (-1, 0), 180: (1, 0), 90: (0, 1), 270: (0, -1)}[ang % 360]


class _Slot:
    """One symbol of a block: its placement and the wire paths of its pins."""

    def __init__(self, kind, obj, sym, nets):
        self.kind, self.obj, self.sym, self.nets = kind, obj, sym, nets
        self.pins = [p for p in sym.pins if p[2] != "no_connect" or nets.get(p[0])]
        bx0, by0, bx1, by1 = sym.bbox
        self.left = sorted([p for p in self.pins if _outward(p[5])[0] < 0 and nets.get(p[0])], key=lambda p: p[4])
        self.right = sorted([p for p in self.pins if _outward(p[5])[0] > 0 and nets.get(p[0])], key=lambda p: p[4])
        self.up = sorted([p for p in self.pins if _outward(p[5])[1] < 0 and nets.get(p[0])], key=lambda p: -p[3])
        self.down = [p for p in self.pins if _outward(p[5])[1] > 0 and nets.get(p[0])]
        pin_top = max([p[4] for p in self.up] + [by1])
        self.above = (pin_top - by1) + G * len(self.up) + (2 * TEXT_H if kind == "part" else 0) + 1.27
        txt = 0 if kind != "part" else max(len(obj.ref), len(obj.value)) * 1.1
        self.wl = G * (len(self.left) + 1)
        self.wr = G * (len(self.right) + len(self.up) + 1)
        self.width = max(self.wl + (bx1 - bx0) + self.wr, txt + 2.54)

    def place(self, x, y_top):
        bx0, by0, bx1, by1 = self.sym.bbox
        self.sx = snap(x + self.wl - bx0)
        self.sy = snap(y_top + self.above + by1)
        self.bottom = self.sy - by0

    def end(self, p):
        return snap(self.sx + p[3]), snap(self.sy - p[4])

    def paths(self):
        """[(pin, net, [points from the pin end to the lane's top])], lane x last point."""
        out = []
        bx0, by0, bx1, by1 = self.sym.bbox
        xl, xr = self.sx + bx0, self.sx + bx1
        for k, p in enumerate(self.left):          # lowest pin -> nearest lane
            ex, ey = self.end(p)
            out.append((p, self.nets[p[0]], [(ex, ey), (snap(min(xl, ex) - G * (k + 1)), ey)]))
        for k, p in enumerate(self.right):
            ex, ey = self.end(p)
            out.append((p, self.nets[p[0]], [(ex, ey), (snap(max(xr, ex) + G * (k + 1)), ey)]))
        for k, p in enumerate(self.up):            # rightmost top pin -> lowest level, nearest lane
            ex, ey = self.end(p)
            lvl = snap(ey - G * (k + 1))
            lane = snap(max(xr, ex) + G * (len(self.right) + k + 1))
            out.append((p, self.nets[p[0]], [(ex, ey), (ex, lvl), (lane, lvl)]))
        for p in self.down:
            ex, ey = self.end(p)
            out.append((p, self.nets[p[0]], [(ex, ey)]))
        return out


def write_schematic(path, project, title, parts, pwr_flags, notes=(), rev="1", date=""):
    root = uid(project, "root")
    used = sorted(set(p.sym for p in parts) | ({FLAG} if pwr_flags else set()))
    groups = []
    for p in parts:
        if p.group not in groups:
            groups.append(p.group)
    blocks = [(g, [_Slot("part", p, get(p.sym), p.nets) for p in parts if p.group == g]) for g in groups]
    if pwr_flags:
        blocks.append(("Supplies fed from connectors (ERC power flags)",
                       [_Slot("flag", n, get(FLAG), {"1": n}) for n in pwr_flags]))
    net_blocks = {}
    for g, slots in blocks:
        for sl in slots:
            for n in sl.nets.values():
                if n:
                    net_blocks.setdefault(n, set()).add(g)

    wires, junctions, labels, texts = [], [], [], []
    x0, y = 25.4, 25.4 + 3.0 * len(notes) + 2.54
    max_x = 0.0
    for g, slots in blocks:
        texts.append((g, x0, snap(y + 3.81)))
        x = x0
        for sl in slots:
            sl.place(x, y + 5.08)
            x += sl.width + G
        rail_top = snap(max(sl.bottom for sl in slots) + 5.08)
        # nets of this block, in order of first use: one rail each
        order = []
        for sl in slots:
            for p in sl.pins:
                n = sl.nets.get(p[0])
                if n and n not in order:
                    order.append(n)
        rail_y = {n: snap(rail_top + G * i) for i, n in enumerate(order)}
        x_right = snap(x + G)
        lanes = {}
        for sl in slots:
            for p, n, pts in sl.paths():
                lx = pts[-1][0]
                pts = pts + [(lx, rail_y[n])]
                for a, b in zip(pts, pts[1:]):
                    if a != b:
                        wires.append((a, b))
                lanes.setdefault(n, []).append(lx)
        for n in order:
            xs = sorted(set(lanes[n]))
            ry = rail_y[n]
            # every rail ends in its net's name at the block's right edge (the name joins
            # blocks when the net leaves this one)
            leaves = True
            stops = xs + ([x_right] if leaves and x_right > xs[-1] else [])
            # the rail as segments between consecutive lanes: every joint is a shared
            # end point (a T of two rail pieces and a lane gets a junction dot)
            for a, b in zip(stops, stops[1:]):
                wires.append(((a, ry), (b, ry)))
            for lx in stops[1:-1]:
                junctions.append((lx, ry))
            if leaves:
                labels.append((n, stops[-1], ry))
        max_x = max(max_x, x_right + 30)
        y = snap(rail_top + G * len(order) + 7.62)
    paper = "A3" if (max_x <= 400 and y <= 280) else ("A2" if (max_x <= 570 and y <= 400) else "A1")

    out = []
    out.append("(kicad_sch (version 20250114) (generator \"eeschema\") (generator_version \"9.0\")")
    out.append("  (uuid %s)" % q(root))
    out.append("  (paper %s)" % q(paper))
    out.append("  (title_block (title %s) (rev %s) (company \"Open meter dongle - CERN-OHL-S-2.0\")"
               % (q(title), q(rev)))
    out.append("  )")
    out.append("  (lib_symbols")
    for name in used:
        out.append(get(name).sexpr(lib_id(name), indent="    "))
    out.append("  )")
    for i, n in enumerate(notes):
        out.append("  (text %s (exclude_from_sim no) (at 25.4 %g 0) (effects (font (size 1.6 1.6)) "
                   "(justify left bottom)) (uuid %s))" % (q(n), 22.86 + 3.0 * i, q(uid(project, "note", i))))
    for (g, gx, gy) in texts:
        out.append("  (text %s (exclude_from_sim no) (at %g %g 0) (effects (font (size 2 2) (bold yes)) "
                   "(justify left bottom)) (uuid %s))" % (q(g), snap(gx), snap(gy), q(uid(project, "gt", g))))
    for (a, b) in wires:
        out.append("  (wire (pts (xy %g %g) (xy %g %g)) (stroke (width 0) (type default)) (uuid %s))"
                   % (a[0], a[1], b[0], b[1], q(uid(project, "w", a, b))))
    for (jx, jy) in sorted(set(junctions)):
        out.append("  (junction (at %g %g) (diameter 0) (color 0 0 0 0) (uuid %s))"
                   % (jx, jy, q(uid(project, "j", jx, jy))))
    for (n, lx, ly) in labels:
        out.append("  (label %s (at %g %g 0) (fields_autoplaced yes) %s (uuid %s))"
                   % (q(n), lx, ly, _font(justify="left bottom"), q(uid(project, "lab", n, lx, ly))))

    flag_no = 0
    for g, slots in blocks:
        for sl in slots:
            sym, sx, sy = sl.sym, sl.sx, sl.sy
            bx0, by0, bx1, by1 = sym.bbox
            if sl.kind == "flag":
                flag_no += 1
                ref = "#FLG%02d" % flag_no
                props = [("Reference", ref, (sx, sy - 3.81), True), ("Value", "PWR_FLAG", (sx - 3.0, sy - 4.0), False),
                         ("Footprint", "", (sx, sy), True), ("Datasheet", "", (sx, sy), True),
                         ("Description", "", (sx, sy), True)]
                inbom = onboard = "no"
                key = "flag:" + sl.obj
                lid = FLAG
            else:
                p = sl.obj
                ref = p.ref
                lid = lib_id(p.sym)
                # reference and value above the symbol and its upward wires
                tx = sx + bx0
                ty = sy - by1 - (sl.above - 2 * TEXT_H - 1.27) - TEXT_H
                props = [("Reference", p.ref, (tx, ty - TEXT_H), False),
                         ("Value", p.value, (tx, ty), False),
                         ("Footprint", fp_id(p.fp), (tx, ty), True),
                         ("Datasheet", "", (sx, sy), True),
                         ("Description", sym.descr, (sx, sy), True),
                         ("LCSC", p.lcsc, (tx, ty), True),
                         ("MPN", p.mpn, (tx, ty), True),
                         ("Manufacturer", p.mfr, (tx, ty), True)]
                if getattr(p, "key", None):
                    props.append(("Role", p.key, (tx, ty), True))
                if p.note:
                    props.append(("Note", p.note, (tx, ty), True))
                # the library symbol says whether the part is bought and placed (a solder
                # jumper is copper only: in_bom no)
                inbom = "no" if getattr(sym, "in_bom", True) is False else "yes"
                onboard = "yes"
                key = p.ref
            out.append("  (symbol (lib_id %s) (at %g %g 0) (unit 1) (exclude_from_sim no) (in_bom %s) "
                       "(on_board %s) (dnp no) (uuid %s)"
                       % (q(lid), sx, sy, inbom, onboard, q(uid(project, "sym", key))))
            for (k, v, (px, py), hide) in props:
                out.append("    (property %s %s (at %g %g 0) %s)" % (q(k), q(v), snap(px, 0.01), snap(py, 0.01),
                                                                    _font(hide=hide, justify="left bottom")))
            for pn in sym.pins:
                out.append("    (pin %s (uuid %s))" % (q(pn[0]), q(uid(project, "pin", key, pn[0]))))
            out.append("    (instances (project %s (path %s (reference %s) (unit 1))))"
                       % (q(project), q("/" + root), q(ref)))
            out.append("  )")
            for pn in sym.pins:
                if sl.nets.get(pn[0]) is None and pn[2] != "no_connect":
                    ex, ey = sl.end(pn)
                    out.append("  (no_connect (at %g %g) (uuid %s))" % (ex, ey, q(uid(project, "nc", key, pn[0]))))
    out.append("  (sheet_instances (path \"/\" (page \"1\")))")
    out.append("  (embedded_fonts no)")
    out.append(")")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
