"""Schematic symbols: KiCad's official library wherever the part exists there ("Lib:Name",
read by kicadlib.py from the installed kicad-symbols 9.0), project-local ones (library
nickname "dongle") only for the parts the library lacks, each drawn from its datasheet:

- Comparator_Ref: TI TLV3012 (SBOS300, "Pin Configuration", DBV SOT-23-6)
- Relay_Latching_2coil: Hongfa HF3F-L ...-1HL2T two-coil latching relay (pin names of the
  Hongfa drawing, the same names as KiCad's Relay_THT HF3F-L-xx-1HL2T footprint pads; the
  library's generic 2-coil symbol numbers its coils A1/A2/B1/B2)
- WeMos_D1_mini / ESP32C3_SuperMini: the modules' pin headers

hardware/lib/dongle.kicad_sym is written from these definitions and the schematics
embed the very same text (no lib_symbol_mismatch in ERC).

Coordinates are in mm, Y up (KiCad symbol-editor convention); every pin end sits on
the 1.27 mm (50 mil) grid so ERC finds no off-grid endpoints.
"""

LIB = "dongle"


def q(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _font(size=1.27, hide=False, justify=None):
    s = "(effects (font (size %g %g))" % (size, size)
    if justify:
        s += " (justify %s)" % justify
    if hide:
        s += " (hide yes)"
    return s + ")"


class Sym:
    """A symbol: pins = [(number, name, etype, x, y, angle, length)], graphics = list of
    s-expression strings (in body unit 0 style 1)."""

    def __init__(self, name, ref, descr, pins, graphics, show_pin_names=False,
                 show_pin_numbers=False, power=False, bbox=None):
        self.name = name
        self.ref = ref
        self.descr = descr
        self.pins = pins
        self.graphics = graphics
        self.show_pin_names = show_pin_names
        self.show_pin_numbers = show_pin_numbers
        self.power = power
        xs = [p[3] for p in pins] + [0]
        ys = [p[4] for p in pins] + [0]
        self.bbox = bbox or (min(xs), min(ys), max(xs), max(ys))

    def pin(self, num):
        for p in self.pins:
            if p[0] == num:
                return p
        raise KeyError("%s has no pin %s" % (self.name, num))

    def sexpr(self, full_name, indent="  "):
        o = []
        o.append("(symbol %s" % q(full_name))
        if self.power:
            o.append("  (power)")
        o.append("  (pin_numbers%s)" % ("" if self.show_pin_numbers else " (hide yes)"))
        o.append("  (pin_names (offset %s)%s)" % ("0.508" if self.show_pin_names else "0",
                                                 "" if self.show_pin_names else " (hide yes)"))
        o.append("  (exclude_from_sim no) (in_bom %s) (on_board %s)"
                 % ("no" if self.power else "yes", "no" if self.power else "yes"))
        x0, y0, x1, y1 = self.bbox
        o.append("  (property \"Reference\" %s (at %g %g 0) %s)"
                 % (q(self.ref), x1 + 1.27, y1 - 1.27 if not self.power else 2.54,
                    _font(hide=self.power, justify="left")))
        o.append("  (property \"Value\" %s (at %g %g 0) %s)"
                 % (q(self.name), x1 + 1.27, y0 + 1.27 if not self.power else 3.81,
                    _font(justify="left")))
        o.append("  (property \"Footprint\" \"\" (at 0 0 0) %s)" % _font(hide=True))
        o.append("  (property \"Datasheet\" \"\" (at 0 0 0) %s)" % _font(hide=True))
        o.append("  (property \"Description\" %s (at 0 0 0) %s)" % (q(self.descr), _font(hide=True)))
        base = full_name.split(":")[-1]
        o.append("  (symbol %s" % q(base + "_0_1"))
        for g in self.graphics:
            o.append("    " + g)
        o.append("  )")
        o.append("  (symbol %s" % q(base + "_1_1"))
        for (num, name, etype, x, y, ang, length) in self.pins:
            hidden = " hide" if False else ""
            o.append("    (pin %s line (at %g %g %d) (length %g)%s (name %s %s) (number %s %s))"
                     % (etype, x, y, ang, length, hidden, q(name), _font(1.016),
                        q(num), _font(1.016)))
        o.append("  )")
        o.append("  (embedded_fonts no)")
        o.append(")")
        return "\n".join(indent + line for line in o)


def _stroke(w=0.254):
    return "(stroke (width %g) (type default))" % w


def rect(x0, y0, x1, y1, fill="background"):
    return "(rectangle (start %g %g) (end %g %g) %s (fill (type %s)))" % (
        x0, y0, x1, y1, _stroke(), fill)


def poly(pts, fill="none", w=0.254):
    return "(polyline (pts %s) %s (fill (type %s)))" % (
        " ".join("(xy %g %g)" % p for p in pts), _stroke(w), fill)


def circle(x, y, r, fill="none"):
    return "(circle (center %g %g) (radius %g) %s (fill (type %s)))" % (x, y, r, _stroke(), fill)


def text(s, x, y, size=1.27):
    return "(text %s (at %g %g 0) (effects (font (size %g %g))))" % (q(s), x, y, size, size)


SYMBOLS = {}


def _add(s):
    SYMBOLS[s.name] = s


def box(name, ref, descr, left, right, top=(), bottom=(), width=10.16, pin_len=2.54):
    """IC box: left/right = [(num, name, etype)] listed top to bottom, 2.54 mm pitch;
    top/bottom likewise left to right."""
    n = max(len(left), len(right), 1)
    h = 2.54 * (n + 1)
    hw = width / 2.0
    pins = []
    y0 = 2.54 * (n - 1) / 2.0
    y0 = round(y0 / 1.27) * 1.27
    for i, (num, nm, et) in enumerate(left):
        pins.append((num, nm, et, -hw - pin_len, y0 - 2.54 * i, 0, pin_len))
    for i, (num, nm, et) in enumerate(right):
        pins.append((num, nm, et, hw + pin_len, y0 - 2.54 * i, 180, pin_len))
    top_y = y0 + 2.54
    bot_y = y0 - 2.54 * n
    for i, (num, nm, et) in enumerate(top):
        x = -2.54 * (len(top) - 1) / 2.0 + 2.54 * i
        pins.append((num, nm, et, x, top_y + pin_len, 270, pin_len))
    for i, (num, nm, et) in enumerate(bottom):
        x = -2.54 * (len(bottom) - 1) / 2.0 + 2.54 * i
        pins.append((num, nm, et, x, bot_y - pin_len, 90, pin_len))
    g = [rect(-hw, top_y, hw, bot_y)]
    return Sym(name, ref, descr, pins, g, show_pin_names=True, show_pin_numbers=True,
               bbox=(-hw - pin_len, bot_y - (pin_len if bottom else 0), hw + pin_len,
                     top_y + (pin_len if top else 0)))


_add(Sym("Relay_Latching_2coil", "K",
         "Two-coil latching relay, form A (Hongfa HF3F-L ...-1HL2T): A3 = coil common (+), "
         "A1 = SET coil, A2 = RESET coil, 11 = COM, 14 = NO",
         [("A3", "+", "passive", -10.16, 5.08, 0, 2.54), ("A1", "SET", "passive", -10.16, 0, 0, 2.54),
          ("A2", "RESET", "passive", -10.16, -5.08, 0, 2.54),
          ("11", "COM", "passive", 10.16, 2.54, 180, 2.54), ("14", "NO", "passive", 10.16, -2.54, 180, 2.54)],
         [rect(-7.62, 7.62, 7.62, -7.62),
          # contact drawn in the middle of the body, clear of the pin names on both sides
          poly([(-1.27, 1.27), (0.0, 1.27)]), poly([(0.0, 1.27), (2.54, -0.508)]),
          poly([(1.905, -1.27), (3.175, -1.27)])],
         show_pin_names=True, show_pin_numbers=True, bbox=(-10.16, -7.62, 10.16, 7.62)))

# Comparator with internal reference (TLV3012 pinning, SOT-23-6):
_add(box("Comparator_Ref", "U", "Nanopower comparator with 1.242 V reference (TLV3012)",
         [("3", "IN+", "input"), ("4", "IN-", "input"), ("5", "REF", "output")],
         [("1", "OUT", "output")], top=[("6", "V+", "power_in")], bottom=[("2", "V-", "power_in")],
         width=10.16))
# Module headers: the D1 mini (two rows of 8) and the ESP32-C3 super mini (two rows of 8).
D1MINI_LEFT = ["RST", "A0", "D0", "D5", "D6", "D7", "D8", "3V3"]
D1MINI_RIGHT = ["TX", "RX", "D1", "D2", "D3", "D4", "GND", "5V"]
C3_LEFT = ["5V", "GND", "3V3", "GPIO4", "GPIO3", "GPIO2", "GPIO1", "GPIO0"]
C3_RIGHT = ["GPIO5", "GPIO6", "GPIO7", "GPIO8", "GPIO9", "GPIO10", "GPIO20", "GPIO21"]


def module(name, descr, left, right):
    l = [(str(i + 1), n, "passive") for i, n in enumerate(left)]
    r = [(str(i + 9), n, "passive") for i, n in enumerate(right)]
    return box(name, "M", descr, l, r, width=15.24)


_add(module("WeMos_D1_mini", "Wemos/LOLIN D1 mini socket: pins 1-8 left row (RST..3V3), "
            "9-16 right row (TX..5V)", D1MINI_LEFT, D1MINI_RIGHT))
_add(module("ESP32C3_SuperMini", "ESP32-C3 super mini socket: pins 1-8 (5V..GPIO0), "
            "9-16 (GPIO5..GPIO21)", C3_LEFT, C3_RIGHT))


def library_text():
    out = ["(kicad_symbol_lib (version 20241209) (generator \"dongle_gen\") (generator_version \"9.0\")"]
    for name in sorted(SYMBOLS):
        out.append(SYMBOLS[name].sexpr(name))
    out.append(")")
    return "\n".join(out) + "\n"


def get(name):
    """The symbol object for a designs.py symbol name ("Lib:Name" = KiCad library)."""
    if ":" in name:
        import kicadlib
        return kicadlib.symbol(name)
    return SYMBOLS[name]


def lib_id(name):
    return name if ":" in name else LIB + ":" + name
