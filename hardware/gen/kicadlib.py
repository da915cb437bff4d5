"""KiCad's official symbol and footprint libraries (Debian: kicad-symbols, kicad-footprints 9.0.x).

Parts that exist there are used from there ("Lib:Name" in designs.py): the schematic embeds
the library symbol exactly as KiCad flattens it (a derived symbol - `extends` - gets its
parent's drawing and pins, its own properties), and the board loads the library footprint.
The project's sym-lib-table / fp-lib-table point at the installed libraries through
${KICAD9_SYMBOL_DIR} / ${KICAD9_FOOTPRINT_DIR}, so ERC/DRC compare every part with the
library copy (lib_symbol_mismatch, lib_footprint_mismatch).

Nothing is copied into the repository: the generator reads the installed files.
"""
import os
import re

SYMBOL_DIR = os.environ.get("KICAD9_SYMBOL_DIR", "/usr/share/kicad/symbols")
FOOTPRINT_DIR = os.environ.get("KICAD9_FOOTPRINT_DIR", "/usr/share/kicad/footprints")


class Q(str):
    """A quoted string token (kept apart from bare atoms so the text round-trips)."""


_TOK = re.compile(r'\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+')


def parse(text):
    stack = [[]]
    for t in _TOK.findall(text):
        if t == "(":
            stack.append([])
        elif t == ")":
            node = stack.pop()
            stack[-1].append(node)
        elif t.startswith('"'):
            stack[-1].append(Q(t[1:-1].replace('\\"', '"').replace("\\\\", "\\")))
        else:
            stack[-1].append(t)
    return stack[0]


def dump(node, indent="", step="  "):
    """s-expression text, one list per line when it holds lists (KiCad-like layout)."""
    if isinstance(node, Q):
        return '"' + node.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if not isinstance(node, list):
        return str(node)
    if not any(isinstance(x, list) and any(isinstance(y, list) for y in x) for x in node):
        return "(" + " ".join(dump(x) for x in node) + ")"
    # keep the order: atoms and flat lists on the head line until the first nested list
    head, rest, nested = [], [], False
    for x in node:
        if isinstance(x, list) and any(isinstance(y, list) for y in x):
            nested = True
        (rest if nested else head).append(x)
    out = "(" + " ".join(dump(x) for x in head)
    for x in rest:
        out += "\n" + indent + step + dump(x, indent + step, step)
    return out + "\n" + indent + ")"


def _find(node, key):
    return [x for x in node if isinstance(x, list) and x and x[0] == key]


def _one(node, key):
    f = _find(node, key)
    return f[0] if f else None


_LIBS = {}


def _library(lib):
    if lib not in _LIBS:
        path = os.path.join(SYMBOL_DIR, lib + ".kicad_sym")
        if not os.path.exists(path):
            raise RuntimeError("KiCad symbol library %s not found (install kicad-symbols 9.0: "
                               "tools/setup_system.sh)" % path)
        with open(path) as f:
            tree = parse(f.read())[0]
        _LIBS[lib] = {x[1]: x for x in _find(tree, "symbol")}
    return _LIBS[lib]


def flatten(lib, name):
    """The library symbol as a schematic embeds it: parent drawing + own properties."""
    syms = _library(lib)
    if name not in syms:
        raise KeyError("%s has no symbol %s" % (lib, name))
    node = syms[name]
    ext = _one(node, "extends")
    if ext is None:
        return [x for x in node]
    parent = flatten(lib, ext[1])
    own_props = _find(node, "property")
    own_names = set(p[1] for p in own_props)
    # KiCad's flattening: the parent's fields, overridden by the derived symbol's own
    # fields of the same name (the parent's Sim.* fields survive), then the derived extras
    par_props = [p for p in _find(parent, "property") if p[1] not in own_names]
    out = ["symbol", Q(name)]
    done_props = False
    for x in parent[2:]:
        if isinstance(x, list) and x[0] == "property":
            if not done_props:
                out.extend(own_props)
                out.extend(par_props)
                done_props = True
            continue
        if isinstance(x, list) and x[0] == "symbol":
            sub = list(x)
            sub[1] = Q(name + sub[1][len(ext[1]):])
            out.append(sub)
            continue
        if isinstance(x, list) and x[0] in ("in_bom", "on_board", "exclude_from_sim", "pin_names",
                                            "pin_numbers", "embedded_fonts"):
            mine = _one(node, x[0])
            out.append(mine if mine is not None else x)
            continue
        out.append(x)
    return out


class LibSym:
    """Duck-types symbols.Sym for the schematic writer: pins, bbox, descr, ref, sexpr()."""

    def __init__(self, lib, name):
        self.lib, self.name = lib, name
        self.node = flatten(lib, name)
        props = {p[1]: p[2] for p in _find(self.node, "property")}
        self.ref = props.get("Reference", "U")
        self.descr = props.get("Description", "")
        self.footprint = props.get("Footprint", "")
        self.datasheet = props.get("Datasheet", "")
        self.power = _one(self.node, "power") is not None
        ib = _one(self.node, "in_bom")
        self.in_bom = not (ib is not None and ib[1] == "no")
        self.pins = []
        xs, ys = [0.0], [0.0]
        for sub in _find(self.node, "symbol"):
            m = re.match(r".*_(\d+)_(\d+)$", sub[1])
            unit = int(m.group(1))
            if unit > 1:
                raise RuntimeError("%s:%s has several units; not supported by the writer" % (lib, name))
            for it in sub[2:]:
                if not isinstance(it, list):
                    continue
                if it[0] == "pin":
                    at = _one(it, "at")
                    ln = float(_one(it, "length")[1])
                    x, y, a = float(at[1]), float(at[2]), int(float(at[3]))
                    self.pins.append((_one(it, "number")[1], _one(it, "name")[1], it[1], x, y, a, ln))
                    xs.append(x)
                    ys.append(y)
                for key in ("start", "end", "center", "mid"):
                    for pt in _find(it, key):
                        xs.append(float(pt[1]))
                        ys.append(float(pt[2]))
                for pts in _find(it, "pts"):
                    for xy in _find(pts, "xy"):
                        xs.append(float(xy[1]))
                        ys.append(float(xy[2]))
                if it[0] == "circle":
                    c, r = _one(it, "center"), float(_one(it, "radius")[1])
                    xs += [float(c[1]) - r, float(c[1]) + r]
                    ys += [float(c[2]) - r, float(c[2]) + r]
        self.bbox = (min(xs), min(ys), max(xs), max(ys))

    def pin(self, num):
        for p in self.pins:
            if p[0] == num:
                return p
        raise KeyError("%s:%s has no pin %s" % (self.lib, self.name, num))

    def sexpr(self, full_name, indent="  "):
        node = list(self.node)
        node[1] = Q(full_name)
        return indent + dump(node, indent)


_SYMS = {}


def symbol(lib_id):
    if lib_id not in _SYMS:
        lib, name = lib_id.split(":", 1)
        _SYMS[lib_id] = LibSym(lib, name)
    return _SYMS[lib_id]


def footprint_path(lib_id):
    lib, name = lib_id.split(":", 1)
    path = os.path.join(FOOTPRINT_DIR, lib + ".pretty", name + ".kicad_mod")
    if not os.path.exists(path):
        raise RuntimeError("KiCad footprint %s not found (install kicad-footprints 9.0: "
                           "tools/setup_system.sh)" % path)
    return path


class LibFp:
    """The parts of a library footprint the placer needs: courtyard box, pads, attribute."""

    def __init__(self, lib_id):
        self.lib_id = lib_id
        with open(footprint_path(lib_id)) as f:
            self.node = parse(f.read())[0]
        attr = _one(self.node, "attr")
        self.attr = attr[1] if attr else "through_hole"
        self.pads = []
        for p in _find(self.node, "pad"):
            at, size = _one(p, "at"), _one(p, "size")
            layers = [str(x) for x in _one(p, "layers")[1:]]
            self.pads.append((str(p[1]), p[2], float(at[1]), float(at[2]), float(size[1]), float(size[2]),
                              layers))
        xs, ys = [], []
        for it in self.node:
            if not (isinstance(it, list) and it and it[0] in ("fp_line", "fp_rect", "fp_poly", "fp_circle",
                                                              "fp_arc")):
                continue
            layer = _one(it, "layer")
            if not layer or layer[1] != "F.CrtYd":
                continue
            for key in ("start", "end", "mid"):
                for pt in _find(it, key):
                    xs.append(float(pt[1]))
                    ys.append(float(pt[2]))
            for pts in _find(it, "pts"):
                for xy in _find(pts, "xy"):
                    xs.append(float(xy[1]))
                    ys.append(float(xy[2]))
            if it[0] == "fp_circle":
                c, e = _one(it, "center"), _one(it, "end")
                r = ((float(e[1]) - float(c[1])) ** 2 + (float(e[2]) - float(c[2])) ** 2) ** 0.5
                xs += [float(c[1]) - r, float(c[1]) + r]
                ys += [float(c[2]) - r, float(c[2]) + r]
        if not xs:
            for (_, _, x, y, w, h, _) in self.pads:
                xs += [x - w / 2, x + w / 2]
                ys += [y - h / 2, y + h / 2]
        self._crtyd = (min(xs), min(ys), max(xs), max(ys))

    def crtyd(self):
        return self._crtyd


_FPS = {}


def footprint(lib_id):
    if lib_id not in _FPS:
        _FPS[lib_id] = LibFp(lib_id)
    return _FPS[lib_id]


def used_libraries(ids):
    return sorted(set(i.split(":", 1)[0] for i in ids if ":" in i))
