"""Writes a KiCad 9 schematic (.kicad_sch) from a part list.

Connectivity is drawn with net labels placed exactly on pin ends (no wires), so the
generated sheet is ERC-clean by construction: every pin carries the label of its net,
pins left open get a no-connect flag, supplies fed from a connector get a PWR_FLAG.
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


def write_schematic(path, project, title, parts, pwr_flags, notes=(), rev="1", date=""):
    root = uid(project, "root")
    used = sorted(set(p.sym for p in parts) | ({FLAG} if pwr_flags else set()))
    out = []
    out.append("(kicad_sch (version 20250114) (generator \"eeschema\") (generator_version \"9.0\")")
    out.append("  (uuid %s)" % q(root))
    out.append("  (paper \"A3\")")
    out.append("  (title_block (title %s) (rev %s) (company \"Open meter dongle - CERN-OHL-S-2.0\")"
               % (q(title), q(rev)))
    out.append("  )")
    out.append("  (lib_symbols")
    for name in used:
        out.append(get(name).sexpr(lib_id(name), indent="    "))
    out.append("  )")

    # --- layout: parts in groups, left to right, wrapping rows -------------------------
    x0, y0 = 25.4, 45.72
    x, y = x0, y0
    row_h = 0
    xmax = 400.0
    placed = []
    groups = []
    for p in parts:
        if p.group not in groups:
            groups.append(p.group)
    items = []
    for g in groups:
        items.append(("group", g))
        items.extend(("part", p) for p in parts if p.group == g)
    for net in pwr_flags:
        items.append(("flag", net))
    group_titles = []
    for kind, obj in items:
        if kind == "group":
            if x != x0:
                x = x0
                y += row_h + 12.7
                row_h = 0
            group_titles.append((obj, x, y - 7.62))
            continue
        sym = get(FLAG if kind == "flag" else obj.sym)
        bx0, by0, bx1, by1 = sym.bbox
        nets = {"1": obj} if kind == "flag" else obj.nets
        lab_l = max([len(str(nets.get(pn[0]) or "")) for pn in sym.pins if pn[5] == 0] + [0])
        lab_r = max([len(str(nets.get(pn[0]) or "")) for pn in sym.pins if pn[5] == 180] + [0])
        wl = lab_l * 1.1 + 2.54
        txt = 0 if kind == "flag" else max(len(obj.ref), len(obj.value)) * 1.15
        wr = lab_r * 1.15 + 2.54 + txt + 2.54
        w = wl + (bx1 - bx0) + wr
        if x + w > xmax:
            x = x0
            y += row_h + 12.7
            row_h = 0
        sx = snap(x + wl - bx0)
        sy = snap(y + by1 + 2.54)
        placed.append((kind, obj, sx, sy, lab_r))
        x += w + 5.08
        row_h = max(row_h, by1 - by0 + 7.62)

    for (g, gx, gy) in group_titles:
        out.append("  (text %s (exclude_from_sim no) (at %g %g 0) (effects (font (size 2 2) (bold yes)) "
                   "(justify left bottom)) (uuid %s))" % (q(g), snap(gx), snap(gy), q(uid(project, "gt", g))))
    for i, n in enumerate(notes):
        out.append("  (text %s (exclude_from_sim no) (at 25.4 %g 0) (effects (font (size 1.6 1.6)) "
                   "(justify left bottom)) (uuid %s))" % (q(n), 22.86 + 3.0 * i, q(uid(project, "note", i))))

    flag_no = 0
    for kind, obj, sx, sy, lab_r in placed:
        if kind == "flag":
            flag_no += 1
            ref = "#FLG%02d" % flag_no
            sym = get(FLAG)
            nets = {"1": obj}
            lid = FLAG
            props = [("Reference", ref, (sx, sy - 3.81), True), ("Value", "PWR_FLAG", (sx, sy - 4.0 - 1.27), False),
                     ("Footprint", "", (sx, sy), True), ("Datasheet", "", (sx, sy), True),
                     ("Description", "", (sx, sy), True)]
            inbom = onboard = "no"
            key = "flag:" + obj
        else:
            p = obj
            ref = p.ref
            sym = get(p.sym)
            nets = p.nets
            lid = lib_id(p.sym)
            bx0, by0, bx1, by1 = sym.bbox
            tx = sx + bx1 + 1.27 + (lab_r * 1.15 + 1.27 if lab_r else 0)
            ty = sy - by1 + (1.27 if lab_r == 0 else 0)
            props = [("Reference", p.ref, (tx, ty), False),
                     ("Value", p.value, (tx, ty + 2.54), False),
                     ("Footprint", fp_id(p.fp), (tx, sy - by1 + 6.35), True),
                     ("Datasheet", "", (sx, sy), True),
                     ("Description", sym.descr, (sx, sy), True),
                     ("LCSC", p.lcsc, (tx, sy - by1 + 6.35), True),
                     ("MPN", p.mpn, (tx, sy - by1 + 6.35), True),
                     ("Manufacturer", p.mfr, (tx, sy - by1 + 6.35), True)]
            if getattr(p, "key", None):
                props.append(("Role", p.key, (tx, sy - by1 + 6.35), True))
            if p.note:
                props.append(("Note", p.note, (tx, sy - by1 + 6.35), True))
            # the library symbol says whether the part is bought and placed (a solder
            # jumper is copper only: in_bom no)
            inbom = "no" if getattr(sym, "in_bom", True) is False else "yes"
            onboard = "yes"
            key = p.ref
        out.append("  (symbol (lib_id %s) (at %g %g 0) (unit 1) (exclude_from_sim no) (in_bom %s) "
                   "(on_board %s) (dnp no) (fields_autoplaced yes) (uuid %s)"
                   % (q(lid), sx, sy, inbom, onboard, q(uid(project, "sym", key))))
        for (k, v, (px, py), hide) in props:
            out.append("    (property %s %s (at %g %g 0) %s)" % (q(k), q(v), snap(px, 0.01), snap(py, 0.01),
                                                                _font(hide=hide, justify="left")))
        for pn in sym.pins:
            out.append("    (pin %s (uuid %s))" % (q(pn[0]), q(uid(project, "pin", key, pn[0]))))
        out.append("    (instances (project %s (path %s (reference %s) (unit 1))))"
                   % (q(project), q("/" + root), q(ref)))
        out.append("  )")
        # labels / no-connects on every pin end
        for (num, name, etype, px, py, ang, length) in sym.pins:
            ex, ey = snap(sx + px), snap(sy - py)
            net = nets.get(num)
            if net is None:
                if etype != "no_connect":
                    out.append("  (no_connect (at %g %g) (uuid %s))" % (ex, ey, q(uid(project, "nc", key, num))))
                continue
            la = label_angle(ang)
            just = "left bottom" if la in (0, 90) else "right bottom"
            out.append("  (label %s (at %g %g %d) (fields_autoplaced yes) %s (uuid %s))"
                       % (q(net), ex, ey, la, _font(justify=just), q(uid(project, "lab", key, num))))
    out.append("  (sheet_instances (path \"/\" (page \"1\")))")
    out.append("  (embedded_fonts no)")
    out.append(")")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
