#!/usr/bin/env python3
"""Checks every KiCad board under hardware/ and regenerates its fabrication outputs.

For each board (power, demod, relay):
  1. ERC: kicad-cli sch erc --severity-all --exit-code-violations   (0 violations wanted)
  2. DRC: kicad-cli pcb drc --severity-all --schematic-parity --exit-code-violations
     (0 violations, 0 unconnected items, 0 parity issues wanted)
  3. netlist export compared with hardware/<board>/expected_nets.json (hand-written from
     the design intent): every expected net exists with exactly the expected pins, and no
     connected net exists that the file does not list; the parts' value/LCSC/MPN
     against hardware/design/values.json (matched by the part's Role field); every
     semiconductor's pad -> pin function against hardware/design/pinouts.json (transcribed
     from the datasheet of the MPN in the BOM)
  4. fab outputs into hardware/<board>/fab/: Gerber+drill zip (JLCPCB layer set), drill
     file, BOM CSV (JLCPCB columns), CPL CSV (JLCPCB columns), schematic PDF, 3D render PNG.
     Date stamps are normalised so the outputs are byte-reproducible.

Usage (stdlib only; any python3 >= 3.8, kicad-cli 9 on PATH):
    python3 hardware/check.py            # check + regenerate fab/
    python3 hardware/check.py --check    # check + verify committed fab/ equals a fresh build
    python3 hardware/check.py --boards power,relay --json report.json
    python3 hardware/check.py --regen    # rebuild the KiCad files from hardware/gen first
Exit status 0 only if every step passed.
"""
import argparse
import concurrent.futures
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

HW = os.path.dirname(os.path.abspath(__file__))
BOARDS = ("power", "demod", "relay")
GERBER_LAYERS = "F.Cu,B.Cu,F.Paste,B.Paste,F.Silkscreen,B.Silkscreen,F.Mask,B.Mask,Edge.Cuts"
ZIP_DATE = (2020, 1, 1, 0, 0, 0)
KICAD_CLI = os.environ.get("KICAD_CLI", "kicad-cli")


def run(args, cwd=None, ok_codes=(0,)):
    p = subprocess.run([KICAD_CLI] + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=300)
    if p.returncode not in ok_codes:
        raise RuntimeError("kicad-cli %s failed (%d):\n%s" % (" ".join(args), p.returncode, p.stdout[-2000:]))
    return p


# ------------------------------------------------------------------ checks
def erc(board, tmp):
    d = os.path.join(HW, board)
    out = os.path.join(tmp, board + "-erc.json")
    p = run(["sch", "erc", "--severity-all", "--exit-code-violations", "--format", "json", "-o", out,
             board + ".kicad_sch"], cwd=d, ok_codes=(0, 5))
    with open(out) as f:
        rep = json.load(f)
    viol = []
    for sheet in rep.get("sheets", []):
        for v in sheet.get("violations", []):
            viol.append("%s (%s): %s %s" % (v["type"], v["severity"], v["description"],
                                           [i.get("description") for i in v.get("items", [])]))
    return {"violations": viol, "exit_code": p.returncode}


def drc(board, tmp):
    d = os.path.join(HW, board)
    out = os.path.join(tmp, board + "-drc.json")
    p = run(["pcb", "drc", "--severity-all", "--schematic-parity", "--exit-code-violations", "--format", "json",
             "-o", out, board + ".kicad_pcb"], cwd=d, ok_codes=(0, 5))
    with open(out) as f:
        rep = json.load(f)

    def fmt(lst):
        return ["%s (%s): %s %s" % (v["type"], v["severity"], v["description"],
                                    [i.get("description") for i in v.get("items", [])]) for v in lst]
    return {"violations": fmt(rep.get("violations", [])),
            "unconnected": fmt(rep.get("unconnected_items", [])),
            "parity": fmt(rep.get("schematic_parity", [])),
            "exit_code": p.returncode}


def parse_sexpr(text):
    tokens = re.findall(r'\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+', text)
    stack = [[]]
    for t in tokens:
        if t == "(":
            stack.append([])
        elif t == ")":
            node = stack.pop()
            stack[-1].append(node)
        elif t.startswith('"'):
            stack[-1].append(t[1:-1].replace('\\"', '"').replace("\\\\", "\\"))
        else:
            stack[-1].append(t)
    return stack[0][0]


def netlist(board, tmp):
    """-> {net name without the root-sheet '/': set of "REF.PIN"}, {ref: {pin: pin name}};
    also sets netlist.components and netlist.pintypes (use netlist_full from threads)."""
    nets, pinnames, pintypes, comps = netlist_full(board, tmp)
    netlist.components = comps
    netlist.pintypes = pintypes
    return nets, pinnames


def netlist_full(board, tmp):
    """-> (nets, {ref: {pin: pin name}}, {ref: {pin: pin type}}, {ref: component fields})"""
    d = os.path.join(HW, board)
    out = os.path.join(tmp, board + ".net")
    run(["sch", "export", "netlist", "--format", "kicadsexpr", "-o", out, board + ".kicad_sch"], cwd=d)
    with open(out) as f:
        tree = parse_sexpr(f.read())
    nets = {}
    pinnames = {}
    pintypes = {}
    comps = {}
    for sec in tree[1:]:
        if isinstance(sec, list) and sec[0] == "components":
            for comp in sec[1:]:
                c = {}
                for item in comp[1:]:
                    if not isinstance(item, list):
                        continue
                    if item[0] in ("ref", "value", "footprint"):
                        c[item[0]] = item[1]
                    elif item[0] == "libsource":
                        f_ = {x[0]: x[1] for x in item[1:] if isinstance(x, list) and len(x) > 1}
                        c["lib_id"] = "%s:%s" % (f_.get("lib", ""), f_.get("part", ""))
                    elif item[0] == "fields":
                        for fld in item[1:]:
                            name = [x[1] for x in fld[1:] if isinstance(x, list) and x[0] == "name"]
                            val = [x for x in fld[1:] if not isinstance(x, list)]
                            if name:
                                c[name[0]] = val[0] if val else ""
                comps[c["ref"]] = c
            continue
        if not isinstance(sec, list) or sec[0] != "nets":
            continue
        for net in sec[1:]:
            name = None
            nodes = set()
            for item in net[1:]:
                if item[0] == "name":
                    name = item[1]
                elif item[0] == "node":
                    f_ = {x[0]: x[1] for x in item[1:] if isinstance(x, list) and len(x) > 1}
                    nodes.add("%s.%s" % (f_["ref"], f_["pin"]))
                    pinnames.setdefault(f_["ref"], {})[f_["pin"]] = f_.get("pinfunction", "")
                    pintypes.setdefault(f_["ref"], {})[f_["pin"]] = f_.get("pintype", "")
            if name.startswith("/"):
                name = name[1:]
            nets[name] = nodes
    return nets, pinnames, pintypes, comps


def load_expected(board):
    with open(os.path.join(HW, board, "expected_nets.json")) as f:
        return json.load(f)["nets"]


def compare_nets(board, nets, exp=None):
    exp = load_expected(board) if exp is None else exp
    problems = []
    for name in sorted(exp):
        want = set(exp[name])
        got = nets.get(name)
        if got is None:
            problems.append("net %s missing (expected %s)" % (name, sorted(want)))
        elif got != want:
            problems.append("net %s: missing pins %s, unexpected pins %s"
                            % (name, sorted(want - got), sorted(got - want)))
    for name in sorted(nets):
        if name not in exp and not name.startswith("unconnected-") and len(nets[name]) > 1:
            problems.append("net %s not in expected_nets.json: %s" % (name, sorted(nets[name])))
    return problems


def compare_values(board, comps, values_path=None):
    """The drawn parts carry the value / LCSC / MPN that hardware/design/values.json (the
    calculations) gives for their role: a stale drawing fails here (regenerate with
    /usr/bin/python3 hardware/gen/build.py)."""
    path = values_path or os.path.join(HW, "design", "values.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        data = json.load(f)
    by_role = {c.get("Role"): c for c in comps.values() if c.get("Role")}
    problems = []
    for ref, e in sorted(data.get(board, {}).items()):
        if not isinstance(e, dict) or e.get("role") not in by_role:
            continue
        c = by_role[e["role"]]
        for key, field in (("value", "value"), ("lcsc", "LCSC"), ("mpn", "MPN")):
            if key in e and str(e[key]) != c.get(field, ""):
                problems.append("%s (%s, role %s): %s is %r in the schematic, %r in values.json"
                                % (c["ref"], board, e["role"], key, c.get(field, ""), e[key]))
    return problems


def symbol_pins(board):
    """{lib_id: {pin number: (name, x, y)}} of the symbols embedded in the schematic."""
    with open(os.path.join(HW, board, board + ".kicad_sch")) as f:
        tree = parse_sexpr(f.read())
    out = {}
    for sec in tree[1:]:
        if not (isinstance(sec, list) and sec[0] == "lib_symbols"):
            continue
        for sym in sec[1:]:
            pins = {}
            for unit in sym[2:]:
                if not (isinstance(unit, list) and unit[0] == "symbol"):
                    continue
                for it in unit[2:]:
                    if isinstance(it, list) and it[0] == "pin":
                        d = {x[0]: x for x in it[1:] if isinstance(x, list)}
                        pins[d["number"][1]] = (d["name"][1], float(d["at"][1]), float(d["at"][2]))
            out[sym[1]] = pins
    return out


def _side(pins, num):
    """'left-top' etc.: where the symbol draws pin num among the pins of its side."""
    _, x, y = pins[num]
    same = [p for p in pins.values() if (p[1] < 0) == (x < 0)]
    return "%s-%s" % ("left" if x < 0 else "right", "top" if y >= max(p[2] for p in same) else "bottom")


def compare_pins(board, comps, pinnames, pintypes, table=None, sympins=None):
    """Every semiconductor's pads carry the pin functions its datasheet gives for the exact
    MPN in the BOM (hardware/design/pinouts.json, transcribed by hand), and sit on the
    package's footprint."""
    if table is None:
        with open(os.path.join(HW, "design", "pinouts.json")) as f:
            table = json.load(f)
    sympins = symbol_pins(board) if sympins is None else sympins
    problems = []
    for ref, c in sorted(comps.items()):
        if not re.match(r"^(U|Q|D|K)\d+$", ref):
            continue
        mpn = c.get("MPN", "")
        t = table.get(mpn)
        if t is None:
            problems.append("%s (%s): no datasheet pin table for MPN %r in pinouts.json" % (ref, board, mpn))
            continue
        if t.get("footprint") and c.get("footprint") != t["footprint"]:
            problems.append("%s (%s, %s): footprint %s, the package needs %s"
                            % (ref, board, mpn, c.get("footprint"), t["footprint"]))
        drawn = pinnames.get(ref, {})
        if set(drawn) != set(t["pins"]):
            problems.append("%s (%s, %s): pads %s drawn, datasheet has %s"
                            % (ref, board, mpn, sorted(drawn), sorted(t["pins"])))
        for pad, want in sorted(t["pins"].items()):
            if pad not in drawn:
                continue
            name = drawn[pad]
            if isinstance(want, str):
                if name != want:
                    problems.append("%s (%s, %s) pad %s: symbol pin %r, datasheet %r"
                                    % (ref, board, mpn, pad, name, want))
                continue
            if "type" in want and pintypes.get(ref, {}).get(pad) != want["type"]:
                problems.append("%s (%s, %s) pad %s (%s): pin type %r, datasheet %r"
                                % (ref, board, mpn, pad, want["fn"], pintypes.get(ref, {}).get(pad), want["type"]))
            if "side" in want:
                pins = sympins.get(c.get("lib_id"), {})
                got = _side(pins, pad) if pad in pins else None
                if got != want["side"]:
                    problems.append("%s (%s, %s) pad %s (%s): drawn at %s of the symbol, expected %s"
                                    % (ref, board, mpn, pad, want["fn"], got, want["side"]))
    return problems


# ------------------------------------------------------------------ mechanical stack
def footprint_boxes(board):
    """{ref: (x0, y0, x1, y1, through_hole)}: courtyard box of every footprint on the board
    (board coordinates, mm, y down) and whether it has through-hole pads."""
    import math
    with open(os.path.join(HW, board, board + ".kicad_pcb")) as f:
        tree = parse_sexpr(f.read())
    out = {}
    for fp in tree[1:]:
        if not (isinstance(fp, list) and fp and fp[0] == "footprint"):
            continue
        d = {}
        for it in fp[1:]:
            if isinstance(it, list) and it:
                d.setdefault(it[0], []).append(it)
        at = d["at"][0]
        fx, fy = float(at[1]), float(at[2])
        rot = math.radians(float(at[3])) if len(at) > 3 else 0.0
        ref = [p[2] for p in d.get("property", []) if p[1] == "Reference"][0]
        pts = []
        for kind in ("fp_line", "fp_rect", "fp_poly", "fp_circle", "fp_arc"):
            for g in d.get(kind, []):
                gd = {x[0]: x for x in g[1:] if isinstance(x, list)}
                if gd.get("layer", [None, None])[1] != "F.CrtYd":
                    continue
                for key in ("start", "end", "mid", "center"):
                    if key in gd:
                        pts.append((float(gd[key][1]), float(gd[key][2])))
                for xy in gd.get("pts", [])[1:] if "pts" in gd else []:
                    pts.append((float(xy[1]), float(xy[2])))
        th = any(p[2] == "thru_hole" for p in d.get("pad", []))
        if not pts:
            continue
        # KiCad rotates counter-clockwise on screen (y down): x' = x cos + y sin, y' = -x sin + y cos
        tp = [(fx + x * math.cos(rot) + y * math.sin(rot), fy - x * math.sin(rot) + y * math.cos(rot)) for x, y in pts]
        xs, ys = [p[0] for p in tp], [p[1] for p in tp]
        out[ref] = (min(xs), min(ys), max(xs), max(ys), th)
    return out


def load_stack():
    with open(os.path.join(HW, "design", "stack.json")) as f:
        return json.load(f)


def boxes_overlap(a, b):
    """Two (x0, y0, x1, y1, ...) courtyard boxes share area (seen from above)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


STACK_HEADERS = ("M1", "M2", "J9")   # stacking sockets: their tails plug into the board below


def stack_report(stack=None, boxes=None):
    """-> (problems, figures): every gap holds the tallest fitted part of the board below
    plus the leads of the board above, the standoffs match the gaps, the stacking tails
    reach, every through-hole part has a height, user connectors stay reachable."""
    st = stack if stack is not None else load_stack()
    order = st["order_top_to_bottom"]
    boxes = boxes if boxes is not None else {b: footprint_boxes(b) for b in order}
    probs, fig = [], {}
    W, H = 64.0, 46.0
    for b in order:
        parts = st["parts"].get(b, {})
        for ref, (x0, y0, x1, y1, th) in sorted(boxes[b].items()):
            if th and not ref.startswith("H") and ref not in parts:
                probs.append("%s %s: through-hole part without a height in stack.json" % (b, ref))
    for upper, lower in zip(order, order[1:]):
        key = "%s/%s" % (upper, lower)
        gap = st["gaps"][key]
        fitted = [(v["height"], ref) for ref, v in st["parts"][lower].items() if v.get("fitted_in_stack", True)]
        hmax, tallest = max(fitted)
        need = hmax + st["lead_protrusion"] + st["clearance"]
        fig[key] = {"gap": gap, "tallest": tallest, "height": hmax, "needed": need,
                    "tail": st["pcb_mm"] + (gap - st["headers"]["socket_body"]) + st["headers"]["min_insertion"]}
        if need > gap + 1e-9:
            probs.append("gap %s: %.1f mm, but %s %s is %.1f mm tall (+ %.1f leads + %.1f clearance = %.1f)"
                         % (key, gap, lower, tallest, hmax, st["lead_protrusion"], st["clearance"], need))
        for ref, v in st["parts"][lower].items():
            if v.get("mains") and gap - v["height"] < st.get("mains_clearance_above", 0) - 1e-9:
                probs.append("gap %s: mains part %s %s ends %.1f mm below the board above (needs %.1f)"
                             % (key, lower, ref, gap - v["height"], st["mains_clearance_above"]))
        # the leads of the upper board's through-hole parts (the stacking headers excepted:
        # their tails are meant to go into the sockets below) end lead_protrusion -- or a
        # part's own 'leads_below' when shorter, untrimmed -- under that board: a part of
        # the lower board right under them must stay clear of the lead tips, a mains part
        # by the mains air gap (the leads carry the meter's or the user's side)
        fig[key]["leads"] = []
        upper_parts = st["parts"].get(upper, {})
        for uref, ub in sorted(boxes[upper].items()):
            uv = upper_parts.get(uref, {})
            if not ub[4] or uref.startswith("H") or uref in STACK_HEADERS or not uv.get("fitted_in_stack", True):
                continue
            lead = min(uv.get("leads_below", st["lead_protrusion"]), st["lead_protrusion"])
            for lref, lv in sorted(st["parts"][lower].items()):
                if lref not in boxes[lower] or not lv.get("fitted_in_stack", True):
                    continue
                if not boxes_overlap(ub, boxes[lower][lref]):
                    continue     # not under this part
                air = gap - lead - lv["height"]
                fig[key]["leads"].append((uref, lref, air))
                want = st.get("mains_clearance_above", 0) if lv.get("mains") else st["clearance"]
                if air < want - 1e-9:
                    probs.append("gap %s: the leads of %s %s end %.1f mm above %s %s (needs %.1f%s)"
                                 % (key, upper, uref, air, lower, lref, want, ", mains" if lv.get("mains") else ""))
        if abs(st["standoffs"]["lengths"][key] - gap) > 1e-9:
            probs.append("gap %s: standoffs %.1f mm for a %.1f mm gap" % (key, st["standoffs"]["lengths"][key], gap))
        if gap < st["headers"]["socket_body"]:
            probs.append("gap %s smaller than the socket body" % key)
    for b, acc in st["access"].items():
        if b.startswith("_"):
            continue
        for ref, how in acc.items():
            if how == "top" and b != order[0]:
                probs.append("%s %s must be reached from the top but %s is not the top board" % (b, ref, b))
            elif how.startswith("edge:"):
                x0, y0, x1, y1, _ = boxes[b][ref]
                edge = how.split(":")[1]
                dist = {"left": x0, "right": W - x1, "top": y0, "bottom": H - y1}[edge]
                if dist > 1.0:
                    probs.append("%s %s should open at the %s edge but stops %.1f mm short" % (b, ref, edge, dist))
            elif how not in ("top", "before"):
                probs.append("%s %s: unknown access %r" % (b, ref, how))
    return probs, fig


def stack_svg(stack=None, boxes=None):
    """Side view of the stack (looking at the boards' bottom edge), to scale."""
    st = stack if stack is not None else load_stack()
    order = st["order_top_to_bottom"]
    boxes = boxes if boxes is not None else {b: footprint_boxes(b) for b in order}
    k, ml, mt = 8.0, 150.0, 40.0
    y = 0.0
    levels = {}
    for i, b in enumerate(order):          # board top surfaces, top board at y = 0
        levels[b] = y
        if i + 1 < len(order):
            y += st["pcb_mm"] + st["gaps"]["%s/%s" % (b, order[i + 1])]
    total = y + st["pcb_mm"]
    top_h = max(v["height"] for v in st["parts"][order[0]].values())
    w = ml + 64 * k + 40
    h = mt + (top_h + total + 10) * k
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
         'font-family="sans-serif" font-size="12">' % (w, h, w, h),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="10" y="20" font-size="14" font-weight="bold">Stack, side view from the bottom edge '
         '(to scale, 1 mm = %g px; heights: hardware/design/stack.json)</text>' % k]
    y0 = mt + top_h * k
    for b in order:
        by = y0 + levels[b] * k
        o.append('<rect x="%g" y="%g" width="%g" height="%g" fill="#2e7d32"/>' % (ml, by, 64 * k, st["pcb_mm"] * k))
        o.append('<text x="10" y="%g">%s board</text>' % (by + 6, b))
        for ref, v in sorted(st["parts"][b].items()):
            if ref == "smd" or ref not in boxes[b] or not v.get("fitted_in_stack", True):
                continue
            x0, _, x1, _, _ = boxes[b][ref]
            ph = v["height"] * k
            est = v["source"].startswith("estimate")
            o.append('<rect x="%g" y="%g" width="%g" height="%g" fill="%s" stroke="#333"/>'
                     % (ml + max(x0, 0) * k, by - ph, (min(x1, 64) - max(x0, 0)) * k, ph,
                        "#ffcc80" if est else "#90caf9"))
            o.append('<text x="%g" y="%g" font-size="10">%s %g</text>' % (ml + max(x0, 0) * k + 2, by - ph + 11, ref,
                                                                          v["height"]))
    for i, b in enumerate(order[:-1]):
        key = "%s/%s" % (b, order[i + 1])
        top = y0 + (levels[b] + st["pcb_mm"]) * k
        bot = y0 + levels[order[i + 1]] * k
        for sx in (3.5, 60.5):
            o.append('<rect x="%g" y="%g" width="%g" height="%g" fill="#bdbdbd" stroke="#555"/>'
                     % (ml + (sx - 2.75) * k, top, 5.5 * k, bot - top))
        o.append('<text x="10" y="%g">gap %g mm</text>' % ((top + bot) / 2 + 4, st["gaps"][key]))
    o.append('<text x="10" y="%g" font-size="10">orange: estimated height (measure), blue: datasheet or KiCad 3D model; '
             'grey: M3 standoffs at the mounting holes</text>' % (h - 8))
    o.append("</svg>")
    return "\n".join(o) + "\n"


def confirm_table(values_path=None):
    """Markdown table of the parts whose LCSC number is missing or not confirmed (empty, VERIFY
    in values.json's note, or no lcsc_source naming the public source that pairs the number
    with the MPN), one row per MPN, with the second source to fall back on.
    hardware/README.md carries it verbatim (tests/host/test_hardware.py)."""
    path = values_path or os.path.join(HW, "design", "values.json")
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for board in BOARDS:
        for ref, e in data.get(board, {}).items():
            if not isinstance(e, dict) or not e.get("mpn"):
                continue
            if e.get("lcsc") and e.get("lcsc_source") and "VERIFY" not in e.get("note", ""):
                continue
            r = rows.setdefault(e["mpn"], {"refs": [], "e": e})
            r["refs"].append("%s %s" % (board, ref))
    for board in BOARDS:     # every part sharing a listed MPN
        for ref, e in data.get(board, {}).items():
            tag = "%s %s" % (board, ref)
            if isinstance(e, dict) and e.get("mpn") in rows and tag not in rows[e["mpn"]]["refs"]:
                rows[e["mpn"]]["refs"].append(tag)
    out = ["| parts | MPN | manufacturer | LCSC | second source |", "|---|---|---|---|---|"]
    for mpn, r in sorted(rows.items(), key=lambda kv: kv[1]["refs"][0]):
        e = r["e"]
        out.append("| %s | %s | %s | %s | %s |" % (", ".join(r["refs"]), mpn, e.get("manufacturer", ""),
                                                  ("%s (not confirmed)" % e["lcsc"]) if e.get("lcsc") else "none found",
                                                  e.get("second_source", "MISSING")))
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ fab outputs
DATE_PATTERNS = [
    (re.compile(rb"%TF\.CreationDate,[^*]*\*%"), rb"%TF.CreationDate,2020-01-01T00:00:00+00:00*%"),
    (re.compile(rb"(G04 #@! TF\.CreationDate,)[^*]*\*"), rb"\g<1>2020-01-01T00:00:00+00:00*"),
    (re.compile(rb"(G04 Created by KiCad \([^)]*\)) date [0-9:\- ]+\*"), rb"\1 date 2020-01-01 00:00:00*"),
    (re.compile(rb"(; DRILL file \{[^}]*\}) date \S+"), rb"\1 date 2020-01-01T00:00:00+0000"),
    (re.compile(rb"(; #@! TF\.CreationDate,)\S+"), rb"\g<1>2020-01-01T00:00:00+00:00"),
    (re.compile(rb"/CreationDate \(D:\d{14}"), rb"/CreationDate (D:20200101000000"),
    (re.compile(rb"/ModDate \(D:\d{14}"), rb"/ModDate (D:20200101000000"),
]


def normalise(path):
    with open(path, "rb") as f:
        data = f.read()
    for rx, rep in DATE_PATTERNS:
        data = rx.sub(rep, data)
    with open(path, "wb") as f:
        f.write(data)


# JLCPCB's pick-and-place convention differs from KiCad's footprint zero orientation for some
# packages; the corrections (added to KiCad's rotation) are the ones of Matthew Lai's
# JLCKicadTools (jlc_kicad_tools/cpl_rotations_db.csv: "^SOT-223" 180, "^SOT-23" 180, the
# latter also covering SOT-23-5/-6). Packages not listed there (0805/1206 chips, SOD-123,
# SMA, the XKB switch) need none; through-hole parts (the DIP-4 opto) are not in the CPL. JLCPCB's
# order page shows every part over its footprint: check the preview before paying.
ROTATION_FIX = ((re.compile(r"^SOT-223"), 180), (re.compile(r"^SOT-23"), 180))


def jlc_rotation(package, rot):
    for rx, fix in ROTATION_FIX:
        if rx.search(package):
            return (rot + fix) % 360
    return rot % 360


def cpl_text(rows):
    """KiCad position rows (Ref, Val, Package, PosX, PosY, Rot, Side) -> JLCPCB CPL."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["Designator", "Val", "Package", "Mid X", "Mid Y", "Rotation", "Layer"])
    for r in sorted(rows, key=lambda r: _refkey(r[0])):
        w.writerow([r[0], r[1], r[2], "%.3fmm" % float(r[3]), "%.3fmm" % float(r[4]),
                    "%.1f" % jlc_rotation(r[2], float(r[5])), "Top" if r[6] == "top" else "Bottom"])
    return buf.getvalue()


def _refkey(ref):
    m = re.match(r"([A-Z]+)(\d+)", ref)
    return (m.group(1), int(m.group(2))) if m else (ref, 0)


def bom_texts(comps, placed):
    """-> (JLCPCB BOM of the placed parts, hand-assembly list of the rest)."""
    groups = {}
    hand = []
    for ref, c in comps.items():
        if ref.startswith("#"):
            continue
        if ref in placed:
            key = (c.get("value", ""), c.get("footprint", ""), c.get("LCSC", ""), c.get("MPN", ""),
                   c.get("Manufacturer", ""))
            groups.setdefault(key, []).append(ref)
        else:
            hand.append(ref)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["Comment", "Designator", "Footprint", "LCSC Part #", "MPN", "Manufacturer", "Quantity"])
    for key, refs in sorted(groups.items(), key=lambda kv: _refkey(sorted(kv[1], key=_refkey)[0])):
        refs = sorted(refs, key=_refkey)
        w.writerow([key[0], ",".join(refs), key[1].split(":")[-1], key[2], key[3], key[4], len(refs)])
    hb = io.StringIO()
    w = csv.writer(hb, lineterminator="\n")
    # the LCSC number too (empty when none is known): a maker can order the hand-fitted
    # parts from LCSC with the same numbers; the parts-to-confirm table says which to check
    w.writerow(["Designator", "Comment", "Footprint", "LCSC Part #", "MPN", "Manufacturer", "Fit"])
    for ref in sorted(hand, key=_refkey):
        c = comps[ref]
        fit = "hand-solder (through-hole)"
        if not c.get("MPN"):
            fit = "DNP: not a part - bridge the pads with solder (see the silkscreen)"
        elif c.get("Note"):
            fit += "; " + c["Note"]
        w.writerow([ref, c.get("value", ""), c.get("footprint", "").split(":")[-1], c.get("LCSC", ""), c.get("MPN", ""),
                    c.get("Manufacturer", ""), fit])
    return buf.getvalue(), hb.getvalue()


def make_fab(board, out, comps=None):
    """Regenerates every fabrication output of one board into directory out."""
    d = os.path.join(HW, board)
    pcb, sch = board + ".kicad_pcb", board + ".kicad_sch"
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        g = os.path.join(tmp, "gerber")
        os.makedirs(g)
        run(["pcb", "export", "gerbers", "--layers", GERBER_LAYERS, "--no-x2", "-o", g + os.sep, pcb], cwd=d)
        run(["pcb", "export", "drill", "--format", "excellon", "--excellon-units", "mm", "-o", g + os.sep, pcb],
            cwd=d)
        names = sorted(n for n in os.listdir(g) if not n.endswith(".gbrjob"))
        zpath = os.path.join(out, board + "-gerbers.zip")
        with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
            for n in names:
                normalise(os.path.join(g, n))
                zi = zipfile.ZipInfo(n, ZIP_DATE)
                zi.compress_type = zipfile.ZIP_DEFLATED
                zi.external_attr = 0o644 << 16
                with open(os.path.join(g, n), "rb") as f:
                    z.writestr(zi, f.read())
        for n in names:
            if n.endswith(".drl"):
                shutil.copyfile(os.path.join(g, n), os.path.join(out, n))
        # Assembly files for JLCPCB: the CPL holds the SMD parts only (the assembler places
        # them); the BOM lists exactly those parts with their LCSC numbers; everything the
        # maker fits by hand (through-hole parts, sockets, the solder jumper) goes to a
        # separate hand-assembly list.
        pos_raw = os.path.join(tmp, "pos.csv")
        run(["pcb", "export", "pos", "--format", "csv", "--units", "mm", "--side", "both", "--smd-only",
             "--exclude-dnp", "-o", pos_raw, pcb], cwd=d)
        with open(pos_raw, newline="") as f:
            rows = list(csv.reader(f))[1:]
        with open(os.path.join(out, board + "-cpl.csv"), "w") as f:
            f.write(cpl_text(rows))
        comps = comps if comps is not None else netlist_full(board, tmp)[3]
        placed = set(r[0] for r in rows)
        jlc, hand = bom_texts(comps, placed)
        with open(os.path.join(out, board + "-bom.csv"), "w") as f:
            f.write(jlc)
        with open(os.path.join(out, board + "-bom-hand.csv"), "w") as f:
            f.write(hand)
        pdf = os.path.join(out, board + "-schematic.pdf")
        run(["sch", "export", "pdf", "-o", pdf, sch], cwd=d)
        normalise(pdf)
        run(["pcb", "render", "--side", "top", "--width", "1200", "--height", "900", "--quality", "basic",
             "-o", os.path.join(out, board + "-render.png"), pcb], cwd=d)
    return sorted(os.listdir(out))


def png_pixels(path):
    """Decodes a non-interlaced 8-bit RGB/RGBA PNG with the stdlib -> (w, h, channels, bytes)."""
    import struct
    import zlib
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG: %s" % path)
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat.append(body)
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError("unsupported PNG format in %s" % path)
    ch = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * ch
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b = prev[i]
            c = prev[i - ch] if i >= ch else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif ft == 4:
                p_ = a + b - c
                pa, pb, pc = abs(p_ - a), abs(p_ - b), abs(p_ - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else (b if pb <= pc else c))) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return w, h, ch, bytes(out)


def png_close(pa, pb, tol=0.01):
    """The 3D render may differ in the last bits between OpenGL drivers: same size and
    mean absolute pixel difference under tol (fraction of full scale) is 'the same picture'."""
    wa, ha, ca, da = png_pixels(pa)
    wb, hb, cb, db = png_pixels(pb)
    if (wa, ha, ca) != (wb, hb, cb):
        return False
    step = 7   # sample every 7th byte: plenty for a 1200x900 render, keeps the check fast
    diff = sum(abs(da[i] - db[i]) for i in range(0, len(da), step))
    return diff / (255.0 * len(range(0, len(da), step))) < tol


def zip_members(path):
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def compare_fab(fresh, committed):
    problems = []
    a = set(os.listdir(fresh))
    b = set(os.listdir(committed)) if os.path.isdir(committed) else set()
    for n in sorted(a - b):
        problems.append("fab/%s missing from the committed outputs" % n)
    for n in sorted(b - a):
        problems.append("fab/%s is stale (not produced any more)" % n)
    for n in sorted(a & b):
        pa, pb = os.path.join(fresh, n), os.path.join(committed, n)
        if n.endswith(".zip"):
            ma, mb = zip_members(pa), zip_members(pb)
            if ma != mb:
                diff = sorted(k for k in set(ma) | set(mb) if ma.get(k) != mb.get(k))
                problems.append("fab/%s differs: %s" % (n, diff))
            continue
        with open(pa, "rb") as f:
            da = f.read()
        with open(pb, "rb") as f:
            db = f.read()
        if da != db and not (n.endswith(".png") and png_close(pa, pb)):
            problems.append("fab/%s differs from a fresh regeneration" % n)
    return problems


# ------------------------------------------------------------------ driver
def check_board(board, check_only=False):
    res = {"board": board}
    with tempfile.TemporaryDirectory() as tmp:
        res["erc"] = erc(board, tmp)
        res["drc"] = drc(board, tmp)
        nets, pinnames, pintypes, comps = netlist_full(board, tmp)
        res["nets"] = {k: sorted(v) for k, v in nets.items()}
        res["pin_names"] = pinnames
        res["net_problems"] = compare_nets(board, nets)
        res["value_problems"] = compare_values(board, comps)
        res["pin_problems"] = compare_pins(board, comps, pinnames, pintypes)
        fab_dir = os.path.join(HW, board, "fab")
        if check_only:
            fresh = os.path.join(tmp, "fab")
            make_fab(board, fresh, comps)
            res["fab_problems"] = compare_fab(fresh, fab_dir)
        else:
            if os.path.isdir(fab_dir):
                shutil.rmtree(fab_dir)
            make_fab(board, fab_dir, comps)
            res["fab_problems"] = []
        res["fab_files"] = sorted(os.listdir(fab_dir)) if os.path.isdir(fab_dir) else []
    res["ok"] = (not res["erc"]["violations"] and res["erc"]["exit_code"] == 0
                 and not res["drc"]["violations"] and not res["drc"]["unconnected"]
                 and not res["drc"]["parity"] and res["drc"]["exit_code"] == 0
                 and not res["net_problems"] and not res["value_problems"] and not res["pin_problems"]
                 and not res["fab_problems"])
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="verify committed fab outputs instead of rewriting them")
    ap.add_argument("--boards", default=",".join(BOARDS))
    ap.add_argument("--json", help="write the full report here")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--regen", action="store_true",
                    help="first regenerate the KiCad projects from hardware/gen (needs KiCad's pcbnew "
                         "module for /usr/bin/python3)")
    ap.add_argument("--confirm-table", action="store_true",
                    help="print the parts-to-confirm table for hardware/README.md and exit")
    a = ap.parse_args(argv)
    if a.confirm_table:
        sys.stdout.write(confirm_table())
        return 0
    if a.regen:
        subprocess.check_call(["/usr/bin/python3", os.path.join(HW, "gen", "build.py")] +
                              [b for b in a.boards.split(",") if b])
    boards = [b for b in a.boards.split(",") if b]
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        results = list(ex.map(lambda b: check_board(b, a.check), boards))
    ok = True
    for r in results:
        print("== %s: %s" % (r["board"], "OK" if r["ok"] else "FAILED"))
        print("   ERC violations: %d" % len(r["erc"]["violations"]))
        print("   DRC violations: %d, unconnected: %d, schematic parity: %d"
              % (len(r["drc"]["violations"]), len(r["drc"]["unconnected"]), len(r["drc"]["parity"])))
        print("   expected nets: %s" % ("all present" if not r["net_problems"] else "%d problems" % len(r["net_problems"])))
        print("   fab outputs: %s (%s)" % ("up to date" if not r["fab_problems"] else "OUT OF DATE",
                                          ", ".join(r["fab_files"])))
        for key in ("violations",):
            for v in r["erc"][key]:
                print("   ERC: " + v)
        for key in ("violations", "unconnected", "parity"):
            for v in r["drc"][key]:
                print("   DRC %s: %s" % (key, v))
        print("   values.json: %s" % ("matches" if not r["value_problems"] else "%d mismatches" % len(r["value_problems"])))
        print("   pins vs datasheet tables: %s" % ("all match" if not r["pin_problems"]
                                                        else "%d problems" % len(r["pin_problems"])))
        for p in r["net_problems"] + r["value_problems"] + r["pin_problems"] + r["fab_problems"]:
            print("   " + p)
        ok = ok and r["ok"]
    if set(boards) == set(BOARDS):
        sprobs, sfig = stack_report()
        svg = stack_svg()
        path = os.path.join(HW, "stack.svg")
        if a.check:
            with open(path) as f:
                if f.read() != svg:
                    sprobs.append("hardware/stack.svg differs from a fresh drawing")
        else:
            with open(path, "w") as f:
                f.write(svg)
        print("== stack: %s" % ("OK" if not sprobs else "FAILED"))
        for key, v in sorted(sfig.items()):
            print("   gap %s: %.1f mm, tallest below %s %.1f mm (needs %.1f), stacking tail >= %.1f mm"
                  % (key, v["gap"], v["tallest"], v["height"], v["needed"], v["tail"]))
            for uref, lref, air in v.get("leads", []):
                print("     leads of %s above %s: %.1f mm of air" % (uref, lref, air))
        for p in sprobs:
            print("   " + p)
        results.append({"board": "_stack", "problems": sprobs, "figures": sfig, "ok": not sprobs})
        ok = ok and not sprobs
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
