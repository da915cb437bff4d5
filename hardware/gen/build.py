#!/usr/bin/python3
"""Generates hardware/lib (symbols + footprints) and, for every board, the KiCad 9
project: <board>.kicad_pro, .kicad_sch, .kicad_pcb (placed, routed, poured), the
project library tables and the custom DRC rules.

Run with the SYSTEM python3 (it needs the pcbnew module that KiCad installs):
    /usr/bin/python3 hardware/gen/build.py [power|demod|relay ...]
It is deterministic: the same inputs give byte-identical files.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import footprints as F  # noqa: E402
import symbols as S     # noqa: E402
from designs import BOARDS, load_values  # noqa: E402
from sch import write_schematic  # noqa: E402

# Output root: hardware/ itself, or another tree (DONGLE_HW_OUT) so a test can rebuild
# into a temporary directory and compare with the committed files.
HW = os.environ.get("DONGLE_HW_OUT") or os.path.normpath(os.path.join(HERE, ".."))
LIBDIR = os.path.join(HW, "lib")
PRETTY = os.path.join(LIBDIR, "dongle.pretty")

W, H = 64.0, 46.0
HOLES = [(3.5, 3.5), (W - 3.5, 3.5), (3.5, H - 3.5), (W - 3.5, H - 3.5)]
M1_AT = (36.0, 12.0)           # D1 mini pin 1 (RST); rows 22.86 mm apart, pins downwards
M2_AT = (36.0 + 3.81, 12.0)    # C3 super mini pin 1 (5V)
AUX_AT = (37.5, 41.0)          # stacking bus pin 1, pins to the right


def supercap_fp():
    v = load_values()
    sc = v.get("power.supercap") or v.get("supercap") or {}
    p = float(sc.get("pitch_mm", 10.0))
    if sc.get("body_mm"):
        bw, bh = [float(x) for x in sc["body_mm"]]
        return F.supercap_box("CP_Supercap", bw, bh, p, "Supercapacitor module %s, body %g x %g mm, leads %g mm apart"
                              % (sc.get("mpn", ""), bw, bh, p))
    d = float(sc.get("diameter_mm", 21.5))
    return F.supercap("CP_Supercap", d, p, "Supercapacitor, coin stack D%.1f mm, pins %.2f mm apart" % (d, p))


def write_lib():
    os.makedirs(PRETTY, exist_ok=True)
    with open(os.path.join(LIBDIR, "dongle.kicad_sym"), "w") as f:
        f.write(S.library_text())
    fps = dict(F.FOOTPRINTS)
    fps["CP_Supercap"] = supercap_fp()
    wanted = set()
    for name in fps:
        wanted.add(name + ".kicad_mod")
        with open(os.path.join(PRETTY, name + ".kicad_mod"), "w") as f:
            f.write(F.render(fps[name]))
    for fn in os.listdir(PRETTY):
        if fn not in wanted:
            os.remove(os.path.join(PRETTY, fn))
    return fps


def write_tables(d, parts):
    """Project library tables: the project library plus every official KiCad library the board
    uses, through KiCad's own path variables (so ERC/DRC compare the parts with the library)."""
    import kicadlib
    import pcb as PCB
    syms = kicadlib.used_libraries([p.sym for p in parts] + ["power:PWR_FLAG"])
    fpl = kicadlib.used_libraries([p.fp for p in parts] + [PCB.HOLE_FP])
    with open(os.path.join(d, "sym-lib-table"), "w") as f:
        f.write('(sym_lib_table\n  (version 7)\n  (lib (name "dongle") (type "KiCad") '
                '(uri "${KIPRJMOD}/../lib/dongle.kicad_sym") (options "") (descr "Open meter dongle parts"))\n')
        for lib in syms:
            f.write('  (lib (name "%s") (type "KiCad") (uri "${KICAD9_SYMBOL_DIR}/%s.kicad_sym") (options "") '
                    '(descr "KiCad official library"))\n' % (lib, lib))
        f.write(')\n')
    with open(os.path.join(d, "fp-lib-table"), "w") as f:
        f.write('(fp_lib_table\n  (version 7)\n  (lib (name "dongle") (type "KiCad") '
                '(uri "${KIPRJMOD}/../lib/dongle.pretty") (options "") (descr "Open meter dongle footprints"))\n')
        for lib in fpl:
            f.write('  (lib (name "%s") (type "KiCad") (uri "${KICAD9_FOOTPRINT_DIR}/%s.pretty") (options "") '
                    '(descr "KiCad official library"))\n' % (lib, lib))
        f.write(')\n')


def fpinfo(fps, name):
    if ":" in name:
        import kicadlib
        return kicadlib.footprint(name)
    return fps[name]


def crtyd_size(fps, name, rot):
    x0, y0, x1, y1 = fpinfo(fps, name).crtyd()
    w, h = x1 - x0, y1 - y0
    return (h, w) if rot in (90, 270) else (w, h)


def pack(fps, parts, regions, gap=1.4, row_gap=2.0):
    """Place small parts row by row inside the regions, in list order (signal flow)."""
    out = {}
    ri = 0
    rx0, ry0, rx1, ry1 = regions[0]
    cx, cy, rowh = rx0, ry0, 0.0
    for p in parts:
        rot = getattr(p, "rot", 0)
        w, h = crtyd_size(fps, p.fp, rot)
        while True:
            if w > rx1 - rx0 + 1e-6:
                cy = ry1 + 1.0     # does not fit this region at all: next region
            elif cx + w > rx1 + 1e-6:
                cx, cy, rowh = rx0, cy + rowh + row_gap, 0.0
            if cy + h > ry1 + 1e-6:
                ri += 1
                if ri >= len(regions):
                    raise RuntimeError("no room for %s" % p.ref)
                rx0, ry0, rx1, ry1 = regions[ri]
                cx, cy, rowh = rx0, ry0, 0.0
                continue
            break
        x0, y0, x1, y1 = fpinfo(fps, p.fp).crtyd()
        if rot in (90, 270):
            # rotated 90: local x -> -y ... use the centre of the rotated box
            ox = -(y0 + y1) / 2.0 if rot == 90 else (y0 + y1) / 2.0
            oy = (x0 + x1) / 2.0 if rot == 90 else -(x0 + x1) / 2.0
            px, py = cx + w / 2.0 + ox, cy + h / 2.0 + oy
        else:
            px, py = cx + w / 2.0 - (x0 + x1) / 2.0, cy + h / 2.0 - (y0 + y1) / 2.0
        out[p.ref] = (round(px * 20) / 20.0, round(py * 20) / 20.0, rot)
        cx += w + gap
        rowh = max(rowh, h)
    return out


LAYOUT = {
    "power": {
        # SW1 and JP2 outside the D1 mini's shadow (the module covers the header area and
        # its antenna end, above pin 1): they must stay reachable with the module fitted
        "fixed": {"J1": (10.0, 6.5, 0), "C1": (18.0, 36.0, 0), "SW1": (53.2, 41.7, 0), "JP2": (31.0, 40.5, 0)},
        "title_at": (22.0, 44.4),
        "back_at": (31.0, 1.6, 1.0),
        "regions": [(23.5, 1.2, 34.2, 10.6), (1.0, 13.2, 34.2, 29.6), (41.6, 10.6, 53.3, 31.2),
                    (30.5, 33.0, 58.0, 37.6), (35.0, 1.2, 56.5, 7.2)],
        # next to (not under) the part: SW1's label above it, JP2's above its pins
        "part_labels": {"SW1": ("SETUP", 53.2, 37.9), "JP2": ("SAFE", 31.0, 38.5)},
        "power_nets": ["/VCAP", "/VSW", "/VSW_TIC", "/+3V3", "/GND", "/TIC_I1", "/TIC_A", "/AC1"],
        "labels": [("I1", 10.0, 9.4, 1.0), ("I2", 15.0, 9.4, 1.0), ("A", 20.0, 9.4, 1.0),
                   ("TIC", 4.2, 9.8, 1.0), ("SUPERCAP 5.5V", 18.0, 39.0, 1.0)],
    },
    "demod": {
        # the RJ12's plug opening flush with the bottom board edge
        "fixed": {"J1": (11.0, 6.0, 0), "J2": (11.5, 28.6, 0)},
        "regions": [(20.5, 1.5, 34.2, 20.0), (41.6, 10.6, 53.3, 31.2), (22.0, 21.0, 34.2, 37.6),
                    (30.0, 33.0, 58.0, 37.6)],
        "power_nets": ["/+3V3", "/GND", "/P1_5V", "/P1_PWR"],
        "labels": [("TIC", 5.2, 9.0, 1.0), ("I1", 11.0, 9.0, 1.0), ("I2", 16.0, 9.0, 1.0), ("P1 (DSMR)", 14.5, 25.2, 1.0),
                   # DSMR P1 power needs RJ12 pins 1 and 6: a 6-wire cable (4-wire RJ11 has neither)
                   ("P1 cable: RJ12 6P6C 1:1", 11.0, 22.8, 1.0),
                   ("JP1 1-2: ESP8266", 27.0, 38.4, 1.0), ("JP1 2-3: ESP32", 27.0, 40.2, 1.0)],
    },
    "relay": {
        "fixed": {"K1": (14.4, 9.0, 0), "J1": (5.3, 15.0, 270)},
        "regions": [(30.5, 1.5, 34.2, 31.0), (41.6, 10.6, 53.3, 31.2), (30.0, 33.0, 58.0, 37.6)],
        # relay contact 11 -> terminal 1, contact 14 -> terminal 2: wide, on both layers,
        # routed away from the coil pins (>= 4 mm copper to copper)
        "mains_tracks": [("/LOAD_COM", [(12.4, 15.0), (5.3, 15.0)]),
                         ("/LOAD_NO", [(26.6, 21.0), (26.6, 30.5), (5.3, 30.5), (5.3, 22.5)])],
        # milled slots between the contact pins and the coil pins (creepage), as
        # (centre x, centre y, direction x, direction y, length, width)
        "slots": [(13.4, 12.0, 0.949, 0.316, 4.0, 1.0), (13.4, 18.0, 0.949, -0.316, 4.0, 1.0),
                  (28.0, 17.5, 0.966, 0.258, 4.0, 1.0)],
        "pour_keepout": 6.0,
        "power_nets": ["/VCAP", "/GND", "/COIL_SET", "/COIL_RST"],
        "mains": {"/LOAD_COM": 4.0, "/LOAD_NO": 4.0},
        "mains_width": 2.5,
        "labels": [("MAINS 250VAC 10A", 14.0, 34.0, 1.2), ("COM", 7.5, 11.5, 1.0), ("NO", 8.0, 25.5, 1.0),
                   ("DANGER: mains voltage", 14.0, 36.6, 1.0)],
    },
}


def build(name):
    import pcb as PCB
    import zlib
    # deterministic KIIDs for every object pcbnew creates (tracks, vias, zones...)
    PCB.pcbnew.KIID.SeedGenerator(zlib.crc32(name.encode()))
    fps = write_lib()
    b = BOARDS[name]()
    d = os.path.join(HW, name)
    os.makedirs(d, exist_ok=True)
    write_tables(d, b.parts)
    dru = os.path.join(d, name + ".kicad_dru")
    if LAYOUT[name].get("mains"):
        with open(dru, "w") as f:
            f.write("(version 1)\n")
            f.write("# Mains (relay contacts, load terminal): 3 mm copper clearance to everything else\n"
                    "# (IEC 60664-1 basic insulation, 250 V, pollution degree 2).\n")
            f.write("(rule \"mains_clearance\"\n  (condition \"%s\")\n  (constraint clearance (min 3mm)))\n"
                    % " || ".join("A.NetName == '%s'" % n for n in sorted(LAYOUT[name]["mains"])))
    elif os.path.exists(dru):
        os.remove(dru)
    write_schematic(os.path.join(d, name + ".kicad_sch"), name, b.title, b.parts, b.flags, b.notes)
    lay = LAYOUT[name]
    pos = {"M1": (M1_AT[0], M1_AT[1], 0), "M2": (M2_AT[0], M2_AT[1], 0), "J9": (AUX_AT[0], AUX_AT[1], 90)}
    pos.update(lay["fixed"])
    small = [p for p in b.parts if p.ref not in pos]
    pos.update(pack(fps, small, lay["regions"]))
    pcbpath = os.path.join(d, name + ".kicad_pcb")
    for ext in (".kicad_pcb", ".kicad_pro", ".kicad_prl"):
        if os.path.exists(os.path.join(d, name + ext)):
            os.remove(os.path.join(d, name + ext))
    bb = PCB.BoardBuilder(pcbpath, name, PRETTY, W, H)
    bb.outline()
    for p in b.parts:
        x, y, rot = pos[p.ref]
        bb.place(p, x, y, rot)
    for i, (x, y) in enumerate(HOLES):
        bb.hole("H%d" % (i + 1), x, y)
    mains = lay.get("mains", {})
    for net, pts in lay.get("mains_tracks", []):
        bb.track(net, pts, lay["mains_width"])
        for a, c in zip(pts, pts[1:]):
            bb.keepout_capsule(a, c, lay["mains_width"] / 2 + lay["pour_keepout"])
    for fp in bb.board.GetFootprints():
        for pad in fp.Pads():
            if pad.GetNetname() in mains:
                c = pad.GetPosition()
                bb.keepout(PCB.mm(c.x), PCB.mm(c.y), PCB.mm(max(pad.GetSize().x, pad.GetSize().y)) * 0.75
                           + lay["pour_keepout"])
    for sl in lay.get("slots", []):
        bb.slot(*sl)
    failed = bb.route(power_nets=set(lay["power_nets"]), extra_clear=mains, skip=set(mains))
    tx, ty = lay.get("title_at", (31.0, 44.3))
    # module orientation: the D1 mini's pin 1 (RST) is at the top left with its USB at the
    # bottom; the C3 super mini's pin 1 (5V) at the top left with its USB at the top
    common = [("%s board rev 1" % name.upper(), tx, ty, 1.0),
              ("M2 C3 mini: USB \u2191", 49.6, 8.6, 1.0), ("M1 D1 mini: USB \u2193", 47.4, 32.0, 1.0)]
    for (txt, x, y, sz) in common + lay.get("labels", []):
        bb.label(txt, x, y, sz)
    for ref, (txt, x, y) in sorted(lay.get("part_labels", {}).items()):
        bb.label(txt, x, y, 1.0)
    # header pin names, printed where the board is free: the D1 mini's right row (TX..5V)
    # outside the module, the stacking bus above J9; pin 1 of each module is marked by
    # the socket footprint's bar and the "RST" / "5V" names
    from footprints import D1_GAP
    from symbols import D1MINI_RIGHT
    for i, pin in enumerate(D1MINI_RIGHT):
        bb.fixed_label(pin, M1_AT[0] + D1_GAP + 1.6, M1_AT[1] + 2.54 * i, 1.0, justify="left")
    bb.fixed_label("RST", M1_AT[0] - 2.3, M1_AT[1], 1.0, justify="right")
    bb.fixed_label("5V", M2_AT[0] - 0.8, M2_AT[1] - 2.9, 1.0, justify="left")
    for i, pin in enumerate(("I1", "I2", "VC", "G", "P1")):
        bb.fixed_label(pin, AUX_AT[0] + 2.54 * i, AUX_AT[1] - 2.6, 1.0)
    bx, by, bs = lay.get("back_at", (32.0, 44.0, 1.0))
    for (txt, x, y, sz) in lay.get("back_labels", []) + [
            ("Open meter dongle - %s - CERN-OHL-S-2.0" % name, bx, by, bs)]:
        bb.label(txt, x, y, sz, layer=PCB.pcbnew.B_SilkS)
    bb.place_refs()
    for (x, y) in HOLES:
        bb.keepout(x, y, 2.3)
    for fp in bb.board.GetFootprints():
        for pad in fp.Pads():
            if pad.GetAttribute() == PCB.pcbnew.PAD_ATTRIB_NPTH and not fp.GetReference().startswith("H"):
                c = pad.GetPosition()
                bb.keepout(PCB.mm(c.x), PCB.mm(c.y), PCB.mm(pad.GetDrillSize().x) / 2 + 0.7)
    bb.pour("/GND")
    bb.fill()
    bb.save()
    prl = os.path.join(d, name + ".kicad_prl")
    if os.path.exists(prl):
        os.remove(prl)     # per-user viewer state, not part of the design
    print("%s: %d parts, unrouted nets: %s" % (name, len(b.parts), failed or "none"))
    if b.unused_values():
        print("  values.json entries not used by the drawing: %s" % ", ".join(b.unused_values()))
    return failed


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(BOARDS)
    if len(names) == 1:
        sys.exit(1 if build(names[0]) else 0)
    # one process per board: pcbnew's footprint cache hands out KIIDs, so a board built
    # after another one in the same process would get different (still valid) UUIDs
    import subprocess
    rc = 0
    for n in names:
        rc |= subprocess.call([sys.executable, os.path.abspath(__file__), n])
    sys.exit(rc)
