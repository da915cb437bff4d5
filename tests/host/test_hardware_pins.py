"""The module headers drawn in the KiCad schematics agree with firmware/port/boards.py.

For every board, each role the board implements must reach the D1 mini header pin named
in BOARDS["d1mini"]["header"] and the ESP32-C3 pad named in BOARDS["esp32c3"]["header"],
and that header pin must be the GPIO the firmware drives (D1 mini silkscreen names ->
ESP8266 GPIO numbers). Header pins no role uses must stay unconnected (no accidental
strap on a boot pin).
"""
import os
import shutil
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "hardware"))
import check  # noqa: E402
from firmware.port.boards import BOARDS  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("kicad-cli") is None,
                                reason="kicad-cli (KiCad 9) not installed: run tools/setup_system.sh")

# Role -> net name in the schematics, and which board carries it.
ROLE_NET = {"vcap_adc": "VCAP_ADC", "vcap_en": "VCAP_EN", "meter_rx": "METER_RX",
            "p1_request": "P1_REQ_EN", "tic_fast": "TIC_FAST", "relay_set": "RELAY_SET",
            "relay_reset": "RELAY_RESET", "3v3": "+3V3", "gnd": "GND", "wake": "WAKE", "button": "BUTTON", "safe_boot": "SAFE_BOOT"}
BOARD_ROLES = {"power": ("vcap_adc", "vcap_en", "3v3", "gnd", "wake", "button", "safe_boot"),
               "demod": ("meter_rx", "p1_request", "tic_fast", "3v3", "gnd"),
               "relay": ("relay_set", "relay_reset", "gnd")}
# Wemos D1 mini silkscreen -> ESP8266 GPIO (the module's own pin map)
D1_GPIO = {"D0": 16, "D1": 5, "D2": 4, "D3": 0, "D4": 2, "D5": 14, "D6": 12, "D7": 13, "D8": 15,
           "RX": 3, "TX": 1, "A0": 0}
MODULES = {"M1": "d1mini", "M2": "esp32c3"}
# Header pins wired for a module-specific reason rather than a firmware role:
# the ESP8266 deep-sleep wake-up needs D0 (the "wake" role) tied to RST.
EXTRA = {("power", "M1"): {"RST": "RST"}}

_cache = {}


def nets_of(board):
    if board not in _cache:
        with tempfile.TemporaryDirectory() as tmp:
            _cache[board] = check.netlist(board, tmp)
    return _cache[board]


def header_map(board, ref):
    """header pin name -> net (None when unconnected)"""
    nets, names = nets_of(board)
    out = {}
    for pin, pname in names[ref].items():
        node = "%s.%s" % (ref, pin)
        net = [n for n, pins in nets.items() if node in pins][0]
        out[pname] = None if net.startswith("unconnected-") else net
    return out


def test_header_pins_match_the_firmware_board_table():
    for board, roles in BOARD_ROLES.items():
        for ref, bname in MODULES.items():
            hdr = header_map(board, ref)
            table = BOARDS[bname]["header"]
            roles_here = [r for r in roles if r in table]   # the C3 has no wake role
            for role in roles_here:
                pin = table[role]
                assert hdr.get(pin) == ROLE_NET[role], (board, ref, role, pin, hdr.get(pin))
            extra = EXTRA.get((board, ref), {})
            for pin, net in extra.items():
                assert hdr.get(pin) == net, (board, ref, pin, hdr.get(pin))
            used = set(table[r] for r in roles_here) | set(extra)
            for pin, net in hdr.items():
                if pin not in used:
                    assert net is None, (board, ref, "pin %s should be unconnected" % pin, net)


def test_header_names_are_the_gpios_the_firmware_drives():
    d1 = BOARDS["d1mini"]
    for role, pin in d1["header"].items():
        if role in ("3v3", "5v", "gnd"):
            continue
        assert D1_GPIO[pin] == d1[role], (role, pin)
    c3 = BOARDS["esp32c3"]
    for role, pin in c3["header"].items():
        if role in ("3v3", "5v", "gnd"):
            continue
        assert pin == "GPIO%d" % c3[role], (role, pin)
