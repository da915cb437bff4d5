"""The three boards: parts, nets and placement.

Every part has a role key (first argument of P()); hardware/design/values.json (written
from the calculations in hardware/README.md and the ngspice runs in hardware/sim/) can
override value / LCSC / MPN / manufacturer per role key, so a change of value never
touches this file. Net names are the design's (they also appear in expected_nets.json,
written by hand).
"""
import json
import os

from sch import Part

HERE = os.path.dirname(os.path.abspath(__file__))
VALUES = os.path.join(HERE, "..", "design", "values.json")

# Default parts (value, footprint, LCSC, MPN, manufacturer); values.json wins.
R0805 = "Resistor_SMD:R_0805_2012Metric"
C0805 = "Capacitor_SMD:C_0805_2012Metric"
SOT23 = "Package_TO_SOT_SMD:SOT-23"
# screw terminals: KF301-5.0 (5.0 mm pitch) and KF7.5 (7.5 mm pitch, mains)
TB2 = "TerminalBlock_Phoenix:TerminalBlock_Phoenix_PT-1,5-2-5.0-H_1x02_P5.00mm_Horizontal"
TB3 = "TerminalBlock_Phoenix:TerminalBlock_Phoenix_PT-1,5-3-5.0-H_1x03_P5.00mm_Horizontal"
TB2_MAINS = "TerminalBlock_MetzConnect:TerminalBlock_MetzConnect_Type171_RT13702HBWC_1x02_P7.50mm_Horizontal"
RES = {  # value -> (LCSC, MPN) UNI-ROYAL 0805 1 % thick film (JLCPCB basic parts)
    "100": ("C17408", "0805W8F1000T5E"), "470": ("C17710", "0805W8F4700T5E"),
    "1k": ("C17513", "0805W8F1001T5E"), "2.2k": ("C17520", "0805W8F2201T5E"),
    "4.7k": ("C17673", "0805W8F4701T5E"), "10k": ("C17414", "0805W8F1002T5E"),
    "12k": ("C17444", "0805W8F1202T5E"), "22k": ("C17560", "0805W8F2202T5E"),
    "47k": ("C17713", "0805W8F4702T5E"), "100k": ("C17407", "0805W8F1003T5E"),
    "1M": ("C17514", "0805W8F1004T5E"),
    # JLCPCB's parts library (lcsc2kicad export, see values.json lcsc_source)
    "430k": ("C17692", "0805W8F4303T5E"), "620k": ("C25827", "0805W8F6203T5E"),
    "1.5M": ("C26110", "0805W8F1504T5E"),
}
CAP = {  # value -> (LCSC, MPN, manufacturer) 0805 MLCC, JLCPCB basic parts (values.json lcsc_source)
    "1nF": ("C46653", "CL21B102KBCNNNC", "Samsung Electro-Mechanics"),
    "100nF": ("C49678", "CC0805KRX7R9BB104", "YAGEO"),
    "1uF": ("C28323", "CL21B105KBFNNNE", "Samsung Electro-Mechanics"),
    "10uF": ("C15850", "CL21A106KAYNNNE", "Samsung Electro-Mechanics"),
}


def load_values():
    """-> {"<board>.<role>": entry} from values.json ({board: {ref: {"role": ..., ...}}}),
    also accepting {"parts": {key: entry}} and flat {key: entry}."""
    try:
        with open(VALUES) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    out = {}
    if not isinstance(data, dict):
        return out
    src = data.get("parts", data)
    for k, v in src.items():
        if not isinstance(v, dict):
            continue
        if k in ("power", "demod", "relay"):
            for ref, e in v.items():
                if isinstance(e, dict):
                    key = "%s.%s" % (k, e.get("role", ref))
                    e = dict(e)
                    e.setdefault("ref", ref)
                    out[key] = e
        else:
            out[k] = v
    return out


class Board:
    def __init__(self, name, title):
        self.name = name
        self.title = title
        self.parts = []
        self.flags = []
        self.notes = []
        self.values = load_values()
        self.used_roles = set()

    def unused_values(self):
        """values.json entries of this board that no part uses (a topology change to draw)."""
        return sorted(k for k in self.values if k.startswith(self.name + ".") and k not in self.used_roles)

    def P(self, key, ref, sym, fp, value, nets, lcsc="", mpn="", mfr="", group="", note=""):
        if fp == R0805 and value in RES and not lcsc:
            lcsc, mpn, mfr = RES[value][0], RES[value][1], "UNI-ROYAL"
        if fp == C0805 and value in CAP and not lcsc:
            lcsc, mpn, mfr = CAP[value]
        v = self.values.get(self.name + "." + key) or self.values.get(key)
        self.used_roles.add(self.name + "." + key)
        if v:
            value = str(v.get("value", value))
            lcsc = str(v.get("lcsc", v.get("LCSC", lcsc)))
            mpn = str(v.get("mpn", v.get("MPN", mpn)))
            mfr = str(v.get("manufacturer", v.get("mfr", mfr)))
            # the footprint stays the one drawn here (it must match the symbol's pins);
            # values.json's "footprint" is informational
        p = Part(ref, sym, fp, value, nets, lcsc=lcsc, mpn=mpn, mfr=mfr, group=group, note=note)
        p.key = key
        self.parts.append(p)
        return p

    def part(self, ref):
        for p in self.parts:
            if p.ref == ref:
                return p
        raise KeyError(ref)


D1_PINS = ["RST", "A0", "D0", "D5", "D6", "D7", "D8", "3V3", "TX", "RX", "D1", "D2", "D3", "D4", "GND", "5V"]
C3_PINS = ["5V", "GND", "3V3", "GPIO4", "GPIO3", "GPIO2", "GPIO1", "GPIO0",
           "GPIO5", "GPIO6", "GPIO7", "GPIO8", "GPIO9", "GPIO10", "GPIO20", "GPIO21"]


def module_nets(pins, roles):
    """roles: header pin name -> net."""
    return {str(i + 1): roles.get(n) for i, n in enumerate(pins)}


# Stacking (hardware/design/stack.json, README "Mechanical stack"): power on top, demod,
# relay at the bottom. The upper boards carry long-tail stacking sockets whose tails reach
# into the sockets of the board below; the bottom board plain sockets.
STACK_TAIL = {"power": 13.1, "demod": 23.1}


def _socket(b, n):
    if b.name in STACK_TAIL:
        return ("Samtec ESQ-1%02d long-tail stacking socket, 8.5 mm body, tail >= %.1f mm (lead style: "
                "confirm)" % (n, STACK_TAIL[b.name]), "Samtec")
    return ("PM254-1-%02d-Z-8.5" % n, "BOOMELE")


def headers(b, roles_d1, roles_c3):
    mpn, mfr = _socket(b, 8)
    b.P("module_d1", "M1", "WeMos_D1_mini", "WeMos_D1_mini_Socket", "WeMos D1 mini",
        module_nets(D1_PINS, roles_d1), lcsc="", mpn="2x " + mpn,
        mfr=mfr, group="ESP module header (D1 mini, stacking)")
    b.P("module_c3", "M2", "ESP32C3_SuperMini", "ESP32C3_SuperMini_Socket", "ESP32-C3 super mini",
        module_nets(C3_PINS, roles_c3), lcsc="", mpn="2x " + mpn,
        mfr=mfr, group="ESP module header (D1 mini, stacking)",
        note="alternative module: fit either M1 or M2")


def aux(b, nets):
    """Stacking bus: 1 TIC I1, 2 TIC I2, 3 VCAP, 4 GND, 5 P1 +5 V after the demodulator's
    diode (feeds the power board's regulator input VSW)."""
    mpn, mfr = _socket(b, 5)
    b.P("aux", "J9", "Connector_Generic:Conn_01x05", "Connector_PinHeader_2.54mm:PinHeader_1x05_P2.54mm_Vertical",
        "AUX stack 1x5", {str(i + 1): n for i, n in enumerate(nets)},
        lcsc="", mpn=mpn, mfr=mfr, group="Stacking bus: I1, I2, VCAP, GND, P1 5V")


# ----------------------------------------------------------------------------------------
def power():
    b = Board("power", "Power supply: TIC -> supercapacitor -> supervisor -> 3.3 V")
    g = "TIC input and protection"
    # Enedis-NOI-CPT_54E: data between I1 and I2, the 130 mW supply between A and I1.
    b.P("tic_terminal_3", "J1", "Connector:Screw_Terminal_01x03", TB3, "TIC I1/I2/A",
        {"1": "TIC_I1", "2": "TIC_I2", "3": "TIC_A"}, "C474882", "KF301-5.0-3P", "Cixi Kefa", group=g)
    b.P("ptc", "F1", "Device:Polyfuse", "Fuse:Fuse_1206_3216Metric", "PTC 50mA hold", {"1": "TIC_A", "2": "AC1"},
        "C207035", "SMD1206P005TF", "PTTC", group=g,
        note="series element: limits current if the input side shorts")
    b.P("tvs", "D1", "Diode:SMAJ20CA", "Diode_SMD:D_SMA", "SMAJ20CA", {"1": "AC1", "2": "TIC_I1"},
        "C19077540", "SMAJ20CA", "hongjiacheng", group=g)
    g = "Schottky bridge and supercapacitor"
    b.P("bridge_a", "D2", "Diode:BAT54S", SOT23, "BAT54S", {"1": "GND", "2": "VCAP", "3": "AC1"},
        "C7420333", "BAT54S", "hongjiacheng", group=g)
    b.P("bridge_b", "D3", "Diode:BAT54S", SOT23, "BAT54S", {"1": "GND", "2": "VCAP", "3": "TIC_I1"},
        "C7420333", "BAT54S", "hongjiacheng", group=g)
    b.P("supercap", "C1", "Device:C_Polarized", "CP_Supercap", "1.5F 5.5V", {"1": "VCAP", "2": "GND"},
        "C2980387", "SE-5R5-D155VY", "KAMCAP", group=g)
    # TI TL431 datasheet (SLVS543), DBZ (SOT-23-3) pinout: 1 = cathode, 2 = REF, 3 = anode --
    # KiCad's Reference_Voltage:TL431DBZ symbol numbers its pins the same way.
    b.P("ovp", "U3", "Reference_Voltage:TL431DBZ", SOT23, "TL431A", {"1": "VCAP", "2": "OVP_REF", "3": "GND"},
        "", "TL431AIDBZR", "Texas Instruments", group=g, note="shunt clamp: over-voltage limit of the supercapacitor")
    b.P("ovp_top", "R10", "Device:R", R0805, "22k", {"1": "VCAP", "2": "OVP_REF"}, group=g)
    b.P("ovp_bot", "R11", "Device:R", R0805, "20k", {"1": "OVP_REF", "2": "GND"}, group=g)
    b.P("c_vcap", "C2", "Device:C", C0805, "10uF", {"1": "VCAP", "2": "GND"}, group=g)
    g = "Hysteresis supervisor and load switch"
    b.P("sup", "U1", "Comparator_Ref", "Package_TO_SOT_SMD:SOT-23-6", "TLV3012", {"1": "SUP_OUT", "2": "GND", "3": "SUP_HYS",
        "4": "SUP_SENSE", "5": "SUP_REF", "6": "VCAP"}, "C150409", "TLV3012AIDBVR", "Texas Instruments", group=g)
    b.P("r_sense_top", "R1", "Device:R", R0805, "1M", {"1": "VCAP", "2": "SUP_SENSE"}, group=g)
    b.P("r_sense_bot", "R2", "Device:R", R0805, "390k", {"1": "SUP_SENSE", "2": "GND"}, "C17656", "0805W8F3903T5E",
        "UNI-ROYAL", group=g)
    b.P("r_ref", "R3", "Device:R", R0805, "100k", {"1": "SUP_REF", "2": "SUP_HYS"}, group=g)
    b.P("r_hys", "R4", "Device:R", R0805, "1M", {"1": "SUP_HYS", "2": "SUP_OUT"}, group=g)
    b.P("c_sense", "C3", "Device:C", C0805, "100nF", {"1": "SUP_SENSE", "2": "GND"}, group=g)
    b.P("r_gate_pu", "R5", "Device:R", R0805, "1M", {"1": "VCAP", "2": "SUP_OUT"}, group=g)
    b.P("load_switch", "Q1", "Transistor_FET:AO3401A", SOT23, "AO3401A", {"1": "SUP_OUT", "2": "VCAP", "3": "VSW_TIC"},
        "C15127", "AO3401A", "Alpha & Omega", group=g)
    g = "3.3 V regulator"
    b.P("ldo", "U2", "Regulator_Linear:MCP1825S", "Package_TO_SOT_SMD:SOT-223-3_TabPin2", "MCP1825S-3302E/DB", {"1": "VSW", "2": "GND", "3": "+3V3"},
        "C179306", "MCP1825S-3302E/DB", "Microchip", group=g)
    # VSW is fed by the supercapacitor path (Q1, then D4) or by the P1 port's +5 V (J9.5, after
    # the demodulator's diode): each source is blocked from the other, and a USB-powered
    # module back-feeding +3V3 through the regulator cannot reach VCAP or the meter.
    b.P("or_tic", "D4", "Device:D_Schottky", "Diode_SMD:D_SOD-123", "B5819W", {"1": "VSW", "2": "VSW_TIC"},
        "C8598", "B5819W", "Jiangsu Changjing", group=g,
        note="OR-ing diode: P1 power or USB cannot back-feed the supercapacitor through Q1's body diode")
    b.P("c_ldo_in", "C4", "Device:C", C0805, "10uF", {"1": "VSW", "2": "GND"}, group=g)
    b.P("c_ldo_out", "C5", "Device:C", C0805, "10uF", {"1": "+3V3", "2": "GND"}, group=g)
    g = "Switched supercapacitor divider to the ADC"
    b.P("div_switch", "Q2", "Transistor_FET:AO3401A", SOT23, "AO3401A", {"1": "DIV_G", "2": "VCAP", "3": "DIV_TOP"},
        "C15127", "AO3401A", "Alpha & Omega", group=g)
    b.P("div_gate_pu", "R6", "Device:R", R0805, "1M", {"1": "VCAP", "2": "DIV_G"}, group=g)
    b.P("div_driver", "Q3", "Transistor_FET:2N7002", SOT23, "2N7002", {"1": "VCAP_EN", "2": "GND", "3": "DIV_G"},
        "C8545", "2N7002", "Jiangsu Changjing", group=g)
    b.P("div_en_pd", "R7", "Device:R", R0805, "100k", {"1": "VCAP_EN", "2": "GND"}, group=g)
    b.P("div_top", "R8", "Device:R", R0805, "100k", {"1": "DIV_TOP", "2": "VCAP_ADC"}, group=g)
    b.P("div_bot", "R9", "Device:R", R0805, "100k", {"1": "VCAP_ADC", "2": "GND"}, group=g)
    b.P("div_cap", "C6", "Device:C", C0805, "1nF", {"1": "VCAP_ADC", "2": "GND"}, group=g)
    g = "Deep-sleep wake-up (ESP8266)"
    # ESP8266 timer wake-up: GPIO16 (D0) pulses RST low. Through 470 ohm so the reset
    # button and the USB auto-reset can still pull RST low against a high D0.
    b.P("r_wake", "R12", "Device:R", R0805, "470", {"1": "WAKE", "2": "RST"}, group=g)
    g = "Set-up button and safe-boot jumper"
    b.P("sw_setup", "SW1", "Switch:SW_Push", "Button_Switch_SMD:SW_Push_1P1T_XKB_TS-1187A", "SETUP", {"1": "BUTTON", "2": "GND"},
        "C318884", "TS-1187A-B-A-B", "XKB Connectivity", group=g,
        note="long press: configuration access point (firmware); pull-up on the module")
    b.P("jp_safe", "JP2", "Connector_Generic:Conn_01x02", "Connector_PinHeader_2.54mm:PinHeader_1x02_P2.54mm_Vertical", "SAFE BOOT", {"1": "SAFE_BOOT", "2": "GND"},
        "", "PZ254V-11-02P", "XFCN", group=g, note="jumper fitted at reset: firmware stays in the REPL (boot.py)")
    headers(b, {"A0": "VCAP_ADC", "D5": "VCAP_EN", "3V3": "+3V3", "GND": "GND", "D0": "WAKE", "RST": "RST",
                "D3": "BUTTON", "D7": "SAFE_BOOT"},
            {"GPIO3": "VCAP_ADC", "GPIO1": "VCAP_EN", "3V3": "+3V3", "GND": "GND", "GPIO9": "BUTTON",
             "GPIO5": "SAFE_BOOT"})
    aux(b, ["TIC_I1", "TIC_I2", "VCAP", "GND", "VSW"])
    b.flags = ["VCAP", "GND", "VSW"]
    b.notes = ["Supply from the meter's TIC (A-I1, 130 mW, Enedis-NOI-CPT_54E); I1/I2 passed to the demodulator on J9.",
               "Supervisor: ESP powered above ~4.5 V, off below ~4.15 V (TLV3012 + resistor hysteresis, see hardware/README.md).",
               "Values and part numbers: hardware/design/values.json; generated by hardware/gen/build.py."]
    return b


def demod():
    b = Board("demod", "Demodulator: TIC (optocoupler) and DSMR P1 (RJ12)")
    g = "TIC optocoupler input"
    b.P("tic_terminal", "J1", "Connector:Screw_Terminal_01x02", TB2, "TIC I1/I2",
        {"1": "TIC_I1", "2": "TIC_I2"}, "C474881", "KF301-5.0-2P", "Cixi Kefa", group=g,
        note="or take I1/I2 from the power board through the AUX stack")
    b.P("r_tic_series", "R1", "Device:R", "Resistor_SMD:R_1206_3216Metric", "1k", {"1": "TIC_I1", "2": "OPTO_A"}, "C4410", "1206W4F1001T5E",
        "UNI-ROYAL", group=g)
    # through-hole DIP-4 (standard lead form), hand-fitted: KiCad's LTV-814 symbol and its
    # default footprint; rank A for 9600 Bd (values.json)
    b.P("opto", "U1", "Isolator:LTV-814", "Package_DIP:DIP-4_W7.62mm", "LTV-814A", {"1": "OPTO_A", "2": "TIC_I2", "3": "GND",
        "4": "TIC_OC"}, "", "LTV-814A", "LITEON", group=g,
        note="pin 1 (dot) on pad 1 (the rounded-square one); rank A (CTR 50-150 %) for 9600 Bd -- LCSC C10790 is the unranked LTV-814: 1200 Bd TIC only")
    g = "Carrier filter, Schmitt trigger, open-drain output"
    b.P("r_tic_pu", "R2", "Device:R", R0805, "10k", {"1": "+3V3", "2": "TIC_OC"}, group=g)
    b.P("c_tic_filter", "C1", "Device:C", C0805, "1nF", {"1": "TIC_OC", "2": "GND"}, group=g)
    b.P("r_tic_fast", "R3", "Device:R", R0805, "4.7k", {"1": "TIC_FAST", "2": "TIC_FAST_A"}, group=g)
    b.P("d_tic_fast", "D1", "Diode:1N4148W", "Diode_SMD:D_SOD-123", "1N4148W", {"1": "TIC_OC", "2": "TIC_FAST_A"},
        "C81598", "1N4148W", "ST(Semtech)", group=g,
        note="GPIO high adds R3 in parallel with R2 (9600 Bd); low: diode blocks")
    b.P("schmitt", "U2", "74xGxx:SN74LVC1G14DBV", "Package_TO_SOT_SMD:SOT-23-5", "74LVC1G14", {"2": "TIC_OC", "3": "GND", "4": "TIC_INV",
        "5": "+3V3"}, "C7827", "SN74LVC1G14DBVR", "Texas Instruments", group=g)
    b.P("c_schmitt", "C2", "Device:C", C0805, "100nF", {"1": "+3V3", "2": "GND"}, group=g)
    b.P("q_tic_out", "Q1", "Transistor_FET:2N7002", SOT23, "2N7002", {"1": "TIC_INV", "2": "GND", "3": "METER_RX"},
        "C8545", "2N7002", "Jiangsu Changjing", group=g)
    b.P("r_rx_pu", "R4", "Device:R", R0805, "4.7k", {"1": "+3V3", "2": "METER_RX"}, group=g)
    g = "DSMR P1 port"
    b.P("rj12", "J2", "Connector:RJ12", "Connector_RJ:RJ12_Amphenol_54601-x06_Horizontal", "RJ12 P1", {"1": "P1_5V", "2": "P1_REQ", "3": "GND",
        "4": None, "5": "P1_DATA", "6": "GND"}, "C142135", "54601-906WPLF", "Amphenol ICC", group=g)
    # DSMR 5.0.2: RJ12 pin 1 gives +5 V, up to 250 mA: it powers the dongle through D2 (the
    # meter is never back-fed by USB or the supercapacitor) and the stacking bus (J9.5)
    b.P("p1_power_diode", "D2", "Device:D_Schottky", "Diode_SMD:D_SOD-123", "B5819W", {"1": "P1_PWR", "2": "P1_5V"},
        "C8598", "B5819W", "Jiangsu Changjing", group=g,
        note="P1 +5 V -> power board regulator input (VSW); blocks any current back into the meter")
    b.P("q_req_npn", "Q2", "Transistor_BJT:MMBT3904", SOT23, "MMBT3904", {"1": "REQ_B", "2": "GND", "3": "REQ_DRV"},
        "C20526", "MMBT3904", "Jiangsu Changjing", group=g)
    b.P("r_req_base", "R5", "Device:R", R0805, "10k", {"1": "P1_REQ_EN", "2": "REQ_B"}, group=g)
    b.P("r_req_pd", "R6", "Device:R", R0805, "100k", {"1": "P1_REQ_EN", "2": "GND"}, group=g)
    b.P("q_req_pnp", "Q3", "Transistor_BJT:MMBT3906", SOT23, "MMBT3906", {"1": "REQ_PB", "2": "P1_5V", "3": "P1_REQ"},
        "C2910", "MMBT3906", "Jiangsu Changjing", group=g)
    b.P("r_req_pb", "R7", "Device:R", R0805, "10k", {"1": "REQ_PB", "2": "REQ_DRV"}, group=g)
    b.P("r_req_pu", "R8", "Device:R", R0805, "100k", {"1": "P1_5V", "2": "REQ_PB"}, group=g)
    b.P("r_p1_pu", "R9", "Device:R", R0805, "1k", {"1": "+3V3", "2": "P1_DATA"}, group=g)
    b.P("q_p1_inv", "Q4", "Transistor_BJT:MMBT3904", SOT23, "MMBT3904", {"1": "P1_B", "2": "GND", "3": "P1_INV"},
        "C20526", "MMBT3904", "Jiangsu Changjing", group=g)
    b.P("r_p1_base", "R10", "Device:R", R0805, "10k", {"1": "P1_DATA", "2": "P1_B"}, group=g)
    b.P("jp_p1", "JP1", "Jumper:SolderJumper_3_Open", "Jumper:SolderJumper-3_P1.3mm_Open_Pad1.0x1.5mm", "P1 polarity", {"1": "P1_INV", "2": "METER_RX",
        "3": "P1_DATA"}, "", "", "", group=g,
        note="bridge 1-2 for ESP8266 (inverted by Q4), 2-3 for ESP32 (UART inverts RX)")
    # tic_fast on D8 (GPIO15, pulled low at boot: 1200 Bd mode); D1 keeps D8 low at boot
    headers(b, {"RX": "METER_RX", "D6": "P1_REQ_EN", "D8": "TIC_FAST", "3V3": "+3V3", "GND": "GND"},
            {"GPIO20": "METER_RX", "GPIO10": "P1_REQ_EN", "GPIO4": "TIC_FAST", "3V3": "+3V3", "GND": "GND"})
    aux(b, ["TIC_I1", "TIC_I2", None, "GND", "P1_PWR"])
    b.flags = ["+3V3", "GND"]
    b.notes = ["TIC: 50 kHz ASK on I1/I2 -> optocoupler -> RC carrier filter (tic_fast GPIO: 9600 Bd) -> Schmitt -> open drain to RX.",
               "P1 (DSMR 5.0.2): data request from the meter's +5 V via Q3, open when off; data inverted by Q4 for the ESP8266.",
               "Values and part numbers: hardware/design/values.json; generated by hardware/gen/build.py."]
    return b


def relay():
    b = Board("relay", "Latching relay driver")
    g = "Latching relay and load terminal (MAINS)"
    b.P("relay", "K1", "Relay_Latching_2coil", "Relay_THT:Relay_SPST_Hongfa_HF3F-L-xx-1HL2T", "HF3F-L/5-1HL2T",
        {"A3": "VCAP", "A1": "COIL_SET", "A2": "COIL_RST", "11": "LOAD_COM", "14": "LOAD_NO"},
        "", "HF3F-L/5-1HL2T", "Hongfa", group=g)
    b.P("load_terminal", "J1", "Connector:Screw_Terminal_01x02", TB2_MAINS, "LOAD 250VAC",
        {"1": "LOAD_COM", "2": "LOAD_NO"}, "C8404", "KF7.5-2P", "Cixi Kefa", group=g)
    g = "Coil drivers (low side, gate pull-downs, flyback diodes)"
    for (i, coil, gpio, qref, rg, rpd, dref) in ((1, "COIL_SET", "RELAY_SET", "Q1", "R1", "R2", "D1"),
                                                 (2, "COIL_RST", "RELAY_RESET", "Q2", "R3", "R4", "D2")):
        gate = "GATE_SET" if i == 1 else "GATE_RST"
        b.P("q_coil_%d" % i, qref, "Transistor_FET:AO3400A", SOT23, "AO3400A", {"1": gate, "2": "GND", "3": coil},
            "C20917", "AO3400A", "Alpha & Omega", group=g)
        b.P("r_gate_%d" % i, rg, "Device:R", R0805, "100", {"1": gpio, "2": gate}, group=g)
        b.P("r_gate_pd_%d" % i, rpd, "Device:R", R0805, "100k", {"1": gate, "2": "GND"}, group=g)
        b.P("d_flyback_%d" % i, dref, "Device:D_Schottky", "Diode_SMD:D_SOD-123", "B5819W", {"1": "VCAP", "2": coil},
            "C8598", "B5819W", "Jiangsu Changjing", group=g)
    b.P("c_coil", "C1", "Device:C", "Capacitor_SMD:C_1206_3216Metric", "22uF", {"1": "VCAP", "2": "GND"}, "C12891", "CL31A226KAHNNNE",
        "Samsung Electro-Mechanics", group=g)
    headers(b, {"D1": "RELAY_SET", "D2": "RELAY_RESET", "GND": "GND"},
            {"GPIO6": "RELAY_SET", "GPIO7": "RELAY_RESET", "GND": "GND"})
    aux(b, [None, None, "VCAP", "GND", None])
    b.flags = []
    b.notes = ["MAINS on K1 contacts and J1: reinforced insulation, 3 mm clearance and 6 mm creepage rules (relay.kicad_dru), slots between contact and coil pins.",
               "Coils fed from VCAP (stacking bus J9); gate pull-downs keep both coils off while the ESP boots.",
               "Values and part numbers: hardware/design/values.json; generated by hardware/gen/build.py."]
    return b


BOARDS = {"power": power, "demod": demod, "relay": relay}
