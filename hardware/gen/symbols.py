"""Project-local schematic symbols (library nickname "dongle").

Drawn here rather than copied from the KiCad library so the repository is
self-contained: hardware/lib/dongle.kicad_sym is written from these definitions
and the schematics embed the very same text (no lib_symbol_mismatch in ERC).

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


# ---- two-pin vertical parts: pin 1 on top (y = +3.81), pin 2 at the bottom ----------------
def _two(name, ref, descr, graphics, names=("~", "~"), etype="passive"):
    return Sym(name, ref, descr,
               [("1", names[0], etype, 0, 3.81, 270, 1.27),
                ("2", names[1], etype, 0, -3.81, 90, 1.27)], graphics,
               bbox=(-1.27, -3.81, 1.27, 3.81))


def _diode_up(extra=()):
    # cathode (pin 1) on top: triangle points up
    g = [poly([(-1.27, -1.27), (1.27, -1.27), (0, 1.016), (-1.27, -1.27)], fill="none"),
         poly([(0, 2.54), (0, -2.54)])]
    return g + list(extra)


SYMBOLS = {}


def _add(s):
    SYMBOLS[s.name] = s


_add(_two("R", "R", "Resistor", [rect(-1.016, -2.54, 1.016, 2.54, fill="none")]))
_add(_two("C", "C", "Capacitor", [poly([(-2.032, 0.762), (2.032, 0.762)], w=0.508),
                                   poly([(-2.032, -0.762), (2.032, -0.762)], w=0.508),
                                   poly([(0, 2.54), (0, 0.762)]), poly([(0, -0.762), (0, -2.54)])]))
_add(_two("C_Polarized", "C", "Polarised capacitor / supercapacitor (pin 1 = +)",
          [rect(-2.032, 0.508, 2.032, 1.016, fill="none"),
           poly([(-2.032, -0.762), (2.032, -0.762)], w=0.508),
           poly([(0, 2.54), (0, 1.016)]), poly([(0, -0.762), (0, -2.54)]),
           poly([(-1.524, 2.032), (-0.508, 2.032)]), poly([(-1.016, 2.54), (-1.016, 1.524)])]))
_add(_two("Fuse", "F", "Resettable fuse (PTC)", [rect(-0.762, -2.54, 0.762, 2.54, fill="none"),
                                                  poly([(-1.27, -1.27), (1.27, 1.27)])]))
_add(_two("D", "D", "Diode (pin 1 = K)", _diode_up([poly([(-1.27, 1.016), (1.27, 1.016)])]),
          names=("K", "A")))
_add(_two("D_Schottky", "D", "Schottky diode (pin 1 = K)",
          _diode_up([poly([(-1.27, 0.508), (-1.27, 1.016), (1.27, 1.016), (1.27, 1.524)])]),
          names=("K", "A")))
_add(_two("D_Zener", "D", "Zener diode (pin 1 = K)",
          _diode_up([poly([(-1.778, 1.524), (-1.27, 1.016), (1.27, 1.016), (1.778, 0.508)])]),
          names=("K", "A")))
_add(_two("D_TVS_Bidir", "D", "Bidirectional TVS diode",
          [poly([(-1.27, 0), (1.27, 0)]), poly([(-1.27, 2.032), (1.27, 2.032), (0, 0), (-1.27, 2.032)]),
           poly([(-1.27, -2.032), (1.27, -2.032), (0, 0), (-1.27, -2.032)]),
           poly([(0, 2.54), (0, 2.032)]), poly([(0, -2.54), (0, -2.032)])]))
_add(_two("SW_Push", "SW", "Push button, normally open (pins 1 and 2; the 4-pad part joins pads in pairs)",
          [circle(0, 2.032, 0.508), circle(0, -2.032, 0.508), poly([(0, 2.54), (0, 2.54)]),
           poly([(1.27, 2.286), (1.27, -2.286)]), poly([(1.27, 0), (2.54, 0)])]))
_add(_two("LED", "D", "LED (pin 1 = K)", _diode_up([poly([(-1.27, 1.016), (1.27, 1.016)]),
                                                     poly([(1.524, 0), (2.54, 1.016)])]),
          names=("K", "A")))

# Dual series Schottky (BAT54S): 1 = A1 (bottom), 2 = K2 (top), 3 = common (K1/A2, left)
_add(Sym("D_Dual_Series", "D", "Dual series Schottky diode (BAT54S): 1 = A1, 2 = K2, 3 = K1/A2",
         [("2", "K2", "passive", 0, 7.62, 270, 2.54), ("1", "A1", "passive", 0, -7.62, 90, 2.54),
          ("3", "K1A2", "passive", -5.08, 0, 0, 2.54)],
         [poly([(-1.27, 1.27), (1.27, 1.27), (0, 3.556), (-1.27, 1.27)]),
          poly([(-1.27, 3.556), (1.27, 3.556)]),
          poly([(-1.27, -3.556), (1.27, -3.556), (0, -1.27), (-1.27, -3.556)]),
          poly([(-1.27, -1.27), (1.27, -1.27)]),
          poly([(0, 5.08), (0, -5.08)]), poly([(-2.54, 0), (0, 0)])],
         bbox=(-5.08, -7.62, 2.54, 7.62)))

# Shunt regulator (TL431, SOT-23 DBZ: 1 = REF, 2 = K, 3 = A)
_add(Sym("TL431", "U", "Programmable shunt reference (TL431, SOT-23: 1 = REF, 2 = K, 3 = A)",
         [("2", "K", "passive", 0, 5.08, 270, 2.54), ("3", "A", "passive", 0, -5.08, 90, 2.54),
          ("1", "REF", "passive", -5.08, 0, 0, 3.81)],
         [poly([(-1.27, -1.27), (1.27, -1.27), (0, 1.016), (-1.27, -1.27)]),
          poly([(-1.27, 1.016), (1.27, 1.016), (1.27, 1.524)]),
          poly([(0, 2.54), (0, -2.54)]), poly([(-1.27, 0), (-0.508, 0)])],
         bbox=(-5.08, -5.08, 1.27, 5.08)))

# Transistors (SOT-23 pinning in the part's footprint; symbol pins named).
def _bjt(name, descr, pnp):
    arrow = ([poly([(0.635, -1.778), (1.27, -2.54), (0.254, -2.286), (0.635, -1.778)], fill="outline")]
             if not pnp else [poly([(0.254, 1.016), (-0.381, 0.762), (0.127, 0.254), (0.254, 1.016)], fill="outline")])
    g = [poly([(-0.635, 1.905), (-0.635, -1.905)], w=0.508),
         poly([(-0.635, 0.635), (2.54, 2.54)]), poly([(-0.635, -0.635), (2.54, -2.54)]),
         circle(0.635, 0, 2.8)] + arrow
    if pnp:   # emitter on top for a PNP (high side)
        pins = [("1", "B", "passive", -5.08, 0, 0, 4.445), ("2", "E", "passive", 2.54, 5.08, 270, 2.54),
                ("3", "C", "passive", 2.54, -5.08, 90, 2.54)]
    else:
        pins = [("1", "B", "passive", -5.08, 0, 0, 4.445), ("3", "C", "passive", 2.54, 5.08, 270, 2.54),
                ("2", "E", "passive", 2.54, -5.08, 90, 2.54)]
    return Sym(name, "Q", descr, pins, g, bbox=(-5.08, -5.08, 3.81, 5.08))


_add(_bjt("Q_NPN_BEC", "NPN transistor, SOT-23 (1 = B, 2 = E, 3 = C)", False))
_add(_bjt("Q_PNP_BEC", "PNP transistor, SOT-23 (1 = B, 2 = E, 3 = C)", True))


def _fet(name, descr, pch):
    g = [poly([(-1.27, 1.905), (-1.27, -1.905)], w=0.254),
         poly([(-0.635, 2.286), (-0.635, 1.27)], w=0.508),
         poly([(-0.635, 0.508), (-0.635, -0.508)], w=0.508),
         poly([(-0.635, -1.27), (-0.635, -2.286)], w=0.508),
         poly([(-0.635, 1.778), (2.54, 1.778), (2.54, 2.54)]),
         poly([(-0.635, -1.778), (2.54, -1.778), (2.54, -2.54)]),
         poly([(-0.635, 0), (2.54, 0), (2.54, -1.778)]),
         circle(0.762, 0, 2.8)]
    g.append(poly([(0.762, 0), (-0.254, 0.508), (-0.254, -0.508), (0.762, 0)], fill="outline") if pch
             else poly([(-0.508, 0), (0.508, 0.508), (0.508, -0.508), (-0.508, 0)], fill="outline"))
    if pch:   # source on top for a high-side P-channel switch
        pins = [("1", "G", "passive", -5.08, 0, 0, 3.81), ("2", "S", "passive", 2.54, 5.08, 270, 2.54),
                ("3", "D", "passive", 2.54, -5.08, 90, 2.54)]
    else:
        pins = [("1", "G", "passive", -5.08, 0, 0, 3.81), ("3", "D", "passive", 2.54, 5.08, 270, 2.54),
                ("2", "S", "passive", 2.54, -5.08, 90, 2.54)]
    return Sym(name, "Q", descr, pins, g, bbox=(-5.08, -5.08, 3.81, 5.08))


_add(_fet("Q_NMOS_GSD", "N-channel MOSFET, SOT-23 (1 = G, 2 = S, 3 = D)", False))
_add(_fet("Q_PMOS_GSD", "P-channel MOSFET, SOT-23 (1 = G, 2 = S, 3 = D)", True))


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


def connector(name, descr, n, names=None, ref="J"):
    names = names or ["Pin_%d" % (i + 1) for i in range(n)]
    pins = []
    y0 = round(2.54 * (n - 1) / 2.0 / 1.27) * 1.27
    for i in range(n):
        pins.append((str(i + 1), names[i], "passive", -5.08, y0 - 2.54 * i, 0, 3.81))
    g = [rect(-1.27, y0 + 1.27, 1.27, y0 - 2.54 * (n - 1) - 1.27)]
    return Sym(name, ref, descr, pins, g, show_pin_names=True, show_pin_numbers=True,
               bbox=(-5.08, y0 - 2.54 * (n - 1) - 1.27, 1.27, y0 + 1.27))


for _n in (2, 3):
    _add(connector("Screw_Terminal_1x%02d" % _n, "Screw terminal, %d ways" % _n, _n))
for _n in (2, 4, 8):
    _add(connector("Conn_1x%02d" % _n, "Pin header / socket, 1 row, %d pins" % _n, _n))
_add(connector("RJ12", "RJ12 6P6C jack (DSMR P1 pinning)", 6,
               ["5V", "REQ", "DGND", "NC", "DATA", "PGND"]))
_add(connector("SolderJumper_3", "Three-pad solder jumper (all open as delivered)", 3,
               ["A", "C", "B"], ref="JP"))

_add(Sym("PWR_FLAG", "#FLG", "Tells ERC where a supply comes from",
         [("1", "~", "power_out", 0, 0, 90, 0)],
         [poly([(0, 0), (0, 1.27), (-1.016, 1.905), (0, 2.54), (1.016, 1.905), (0, 1.27)])],
         power=True, bbox=(-1.016, 0, 1.016, 2.54)))

# Optocoupler, 4 pins: 1/2 LED (AC input: two antiparallel LEDs), 3 = E, 4 = C
_add(Sym("Opto_AC", "U", "AC-input phototransistor optocoupler (1, 2 = LED pair, 3 = E, 4 = C)",
         [("1", "AC1", "passive", -7.62, 2.54, 0, 2.54), ("2", "AC2", "passive", -7.62, -2.54, 0, 2.54),
          ("4", "C", "passive", 7.62, 2.54, 180, 2.54), ("3", "E", "passive", 7.62, -2.54, 180, 2.54)],
         [rect(-5.08, 3.81, 5.08, -3.81),
          poly([(-3.81, 2.54), (-3.81, -2.54)]), poly([(-5.08, 2.54), (-3.81, 2.54)]),
          poly([(-5.08, -2.54), (-3.81, -2.54)]),
          poly([(-4.572, 0.254), (-3.048, 0.254), (-3.81, -0.762), (-4.572, 0.254)]),
          poly([(-4.572, -1.016), (-3.048, -1.016)]),
          poly([(1.27, 1.778), (1.27, -1.778)], w=0.508),
          poly([(1.27, 0.635), (3.81, 2.54), (5.08, 2.54)]),
          poly([(1.27, -0.635), (3.81, -2.54), (5.08, -2.54)]),
          poly([(-1.778, 0.508), (0, 0)]), poly([(-1.778, -0.508), (0, -1.016)])],
         bbox=(-7.62, -3.81, 7.62, 3.81)))

_add(Sym("Relay_Latching_2coil", "K",
         "Two-coil latching relay, form A (Hongfa HF3F-L ...-1HL2T): A3 = coil common (+), "
         "A1 = SET coil, A2 = RESET coil, 11 = COM, 14 = NO",
         [("A3", "+", "passive", -10.16, 5.08, 0, 2.54), ("A1", "SET", "passive", -10.16, 0, 0, 2.54),
          ("A2", "RESET", "passive", -10.16, -5.08, 0, 2.54),
          ("11", "COM", "passive", 10.16, 2.54, 180, 2.54), ("14", "NO", "passive", 10.16, -2.54, 180, 2.54)],
         [rect(-7.62, 7.62, 7.62, -7.62),
          poly([(2.54, 2.54), (7.62, 2.54)]), poly([(2.54, 2.54), (5.08, -1.27)]),
          poly([(5.08, -2.54), (7.62, -2.54)])],
         show_pin_names=True, show_pin_numbers=True, bbox=(-10.16, -7.62, 10.16, 7.62)))

# Comparator with internal reference (TLV3012 pinning, SOT-23-6):
_add(box("Comparator_Ref", "U", "Nanopower comparator with 1.242 V reference (TLV3012)",
         [("3", "IN+", "input"), ("4", "IN-", "input"), ("5", "REF", "output")],
         [("1", "OUT", "output")], top=[("6", "V+", "power_in")], bottom=[("2", "V-", "power_in")],
         width=10.16))
# LDO, 3 pins (MCP1825S SOT-223: 1 = VIN, 2 = GND/tab, 3 = VOUT)
_add(box("LDO_3pin", "U", "Low-dropout regulator, 1 = VIN, 2 = GND, 3 = VOUT",
         [("1", "VIN", "power_in")], [("3", "VOUT", "power_out")], bottom=[("2", "GND", "power_in")],
         width=10.16))
# Single Schmitt-trigger buffer (74LVC1G17, SOT-23-5: 1 NC, 2 A, 3 GND, 4 Y, 5 VCC)
_add(box("Buffer_Schmitt", "U", "Single Schmitt-trigger buffer (74LVC1G17)",
         [("2", "A", "input"), ("1", "NC", "no_connect")], [("4", "Y", "output")],
         top=[("5", "VCC", "power_in")], bottom=[("3", "GND", "power_in")], width=10.16))

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
