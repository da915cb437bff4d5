"""KiCad boards under hardware/: ERC, DRC, intended nets and reproducible fab outputs.

Runs hardware/check.py --check once (kicad-cli 9: ERC + DRC with schematic parity at every
severity, netlist vs hand-written expected_nets.json, fresh fab outputs compared with the
committed ones), then asserts on its JSON report per board. Also checks that the checker
itself notices a broken connection or a stale fab file, so a green run means something.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HW = os.path.join(ROOT, "hardware")
sys.path.insert(0, HW)
import check  # noqa: E402  (hardware/check.py, stdlib only)

BOARDS = check.BOARDS

needs_kicad = pytest.mark.skipif(shutil.which("kicad-cli") is None,
                                 reason="kicad-cli (KiCad 9) not installed: run tools/setup_system.sh")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("hw") / "report.json"
    p = subprocess.run([sys.executable, os.path.join(HW, "check.py"), "--check", "--json", str(out)],
                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                       timeout=600)
    print(p.stdout)
    with open(str(out)) as f:
        data = json.load(f)
    res = {r["board"]: r for r in data}
    res.update({"_exit": p.returncode, "_out": p.stdout})
    return res


@needs_kicad
def test_every_board_is_checked(report):
    assert sorted(k for k in report if not k.startswith("_")) == sorted(BOARDS)
    assert report["_exit"] == 0, report["_out"]


@needs_kicad
@pytest.mark.parametrize("board", BOARDS)
def test_erc_clean_at_every_severity(report, board):
    r = report[board]["erc"]
    assert r["violations"] == [] and r["exit_code"] == 0


@needs_kicad
@pytest.mark.parametrize("board", BOARDS)
def test_drc_clean_routed_and_matching_schematic(report, board):
    r = report[board]["drc"]
    assert r["violations"] == []
    assert r["unconnected"] == []
    assert r["parity"] == []
    assert r["exit_code"] == 0


@needs_kicad
@pytest.mark.parametrize("board", BOARDS)
def test_every_intended_net_is_present(report, board):
    assert report[board]["net_problems"] == []
    exp = check.load_expected(board)
    for name, pins in exp.items():
        assert sorted(report[board]["nets"][name]) == sorted(pins)


@needs_kicad
@pytest.mark.parametrize("board", BOARDS)
def test_parts_carry_the_calculated_values(report, board):
    assert report[board]["value_problems"] == []


@needs_kicad
def test_value_comparison_catches_a_stale_drawing(tmp_path):
    nets, _ = check.netlist("relay", str(tmp_path))
    comps = check.netlist.components
    gate_pd = [c for c in comps.values() if c.get("Role") == "r_gate_pd_1"][0]
    values = {"relay": {gate_pd["ref"]: {"role": "r_gate_pd_1", "value": gate_pd["value"],
                                         "lcsc": gate_pd.get("LCSC", ""), "mpn": gate_pd.get("MPN", "")}}}
    path = tmp_path / "values.json"
    path.write_text(json.dumps(values))
    assert check.compare_values("relay", comps, str(path)) == []
    values["relay"][gate_pd["ref"]]["value"] = "1M"
    path.write_text(json.dumps(values))
    probs = check.compare_values("relay", comps, str(path))
    assert len(probs) == 1 and gate_pd["ref"] in probs[0] and "1M" in probs[0]


@needs_kicad
@pytest.mark.parametrize("board", BOARDS)
def test_fab_outputs_up_to_date(report, board):
    assert report[board]["fab_problems"] == []
    files = report[board]["fab_files"]
    for suffix in ("-gerbers.zip", "-bom.csv", "-cpl.csv", "-schematic.pdf", "-render.png", ".drl"):
        assert board + suffix in files


def test_net_comparison_catches_a_broken_connection():
    exp = {"VCAP": ["C1.1", "U1.6"], "GND": ["C1.2", "U1.2"]}
    good = {"VCAP": {"C1.1", "U1.6"}, "GND": {"C1.2", "U1.2"}}
    assert check.compare_nets("x", good, exp) == []
    moved = {"VCAP": {"C1.1"}, "GND": {"C1.2", "U1.2", "U1.6"}}
    probs = check.compare_nets("x", moved, exp)
    assert any("VCAP" in p and "U1.6" in p for p in probs)
    assert any("GND" in p and "U1.6" in p for p in probs)
    assert check.compare_nets("x", {"GND": {"C1.2", "U1.2"}}, exp) == ["net VCAP missing (expected ['C1.1', 'U1.6'])"]
    extra = dict(good, SNEAK={"R1.1", "R2.2"})
    assert any("SNEAK" in p for p in check.compare_nets("x", extra, exp))


def test_fab_comparison_ignores_dates_but_not_content(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    g1 = b"G04 #@! TF.CreationDate,2026-01-02T03:04:05+00:00*\nG04 Created by KiCad (PCBNEW 9.0.8) date 2026-01-02 03:04:05*\nX1Y1D01*\n"
    g2 = g1.replace(b"2026-01-02", b"2027-12-31")
    (a / "x.gtl").write_bytes(g1)
    (b / "x.gtl").write_bytes(g2)
    check.normalise(str(a / "x.gtl"))
    check.normalise(str(b / "x.gtl"))
    assert check.compare_fab(str(a), str(b)) == []
    (b / "x.gtl").write_bytes((b / "x.gtl").read_bytes().replace(b"X1Y1", b"X2Y1"))
    assert check.compare_fab(str(a), str(b)) != []


def _png(path, w, h, fill):
    import struct
    import zlib
    raw = b"".join(b"\x00" + bytes(fill) * w for _ in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_render_comparison_tolerates_driver_noise_not_a_different_picture(tmp_path):
    a, b, c = (str(tmp_path / n) for n in ("a.png", "b.png", "c.png"))
    _png(a, 40, 30, (10, 120, 30, 255))
    _png(b, 40, 30, (11, 120, 30, 255))      # last-bit difference
    _png(c, 40, 30, (200, 20, 30, 255))      # another picture
    assert check.png_close(a, b)
    assert not check.png_close(a, c)
    _png(c, 41, 30, (10, 120, 30, 255))      # another size
    assert not check.png_close(a, c)


def _has_pcbnew():
    if not os.path.exists("/usr/bin/python3"):
        return False
    return subprocess.call(["/usr/bin/python3", "-c", "import pcbnew"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) == 0


@pytest.mark.skipif(not _has_pcbnew(), reason="KiCad's pcbnew module not importable by /usr/bin/python3")
def test_generator_reproduces_the_committed_kicad_files(tmp_path):
    """hardware/gen is the source of the boards: rebuilding from it (with the current
    values.json) gives byte-identical projects, so nobody hand-edits a generated file
    and the drawings never lag behind the generator."""
    env = dict(os.environ, DONGLE_HW_OUT=str(tmp_path))
    p = subprocess.run(["/usr/bin/python3", os.path.join(HW, "gen", "build.py")], env=env, cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:]
    stale = []
    for board in BOARDS:
        for fn in (board + ".kicad_sch", board + ".kicad_pcb", board + ".kicad_pro", "sym-lib-table",
                   "fp-lib-table"):
            with open(os.path.join(HW, board, fn), "rb") as f:
                committed = f.read()
            with open(str(tmp_path / board / fn), "rb") as f:
                fresh = f.read()
            if committed != fresh:
                stale.append(board + "/" + fn)
    for root, _, files in os.walk(str(tmp_path / "lib")):
        for fn in files:
            rel = os.path.relpath(os.path.join(root, fn), str(tmp_path))
            with open(os.path.join(HW, rel), "rb") as f, open(os.path.join(root, fn), "rb") as g:
                if f.read() != g.read():
                    stale.append(rel)
    assert stale == [], "regenerate with: python3 hardware/check.py --regen  (stale: %s)" % stale


@needs_kicad
@pytest.mark.parametrize("board", BOARDS)
def test_semiconductor_pins_match_the_datasheet_tables(report, board):
    """hardware/design/pinouts.json (hand-transcribed from each MPN's datasheet) against the
    symbols as drawn: KiCad's official ones where the library has the part."""
    assert report[board]["pin_problems"] == []
    with open(os.path.join(HW, "design", "pinouts.json")) as f:
        table = json.load(f)
    import re
    semis = [r for r in report[board]["pin_names"] if re.match(r"^(U|Q|D|K)\d+$", r)]
    assert semis, board
    names = report[board]["pin_names"]
    for ref in semis:
        assert any(names[ref] and set(names[ref]) == set(t["pins"]) for k, t in table.items()
                   if not k.startswith("_")), ref


@needs_kicad
def test_pin_check_catches_a_tl432_pinout_and_a_misdrawn_opto(tmp_path):
    nets, names = check.netlist("power", str(tmp_path))
    comps, types = check.netlist.components, check.netlist.pintypes
    assert check.compare_pins("power", comps, names, types) == []
    assert comps["U3"]["MPN"] == "TL431AIDBZR" and names["U3"] == {"1": "K", "2": "REF", "3": "A"}
    swapped = dict(names, U3={"1": "REF", "2": "K", "3": "A"})     # the TL432's SOT-23 pinout
    probs = check.compare_pins("power", comps, swapped, types)
    assert len(probs) == 2 and all("U3" in p for p in probs), probs
    nets, names = check.netlist("demod", str(tmp_path))
    comps, types = check.netlist.components, check.netlist.pintypes
    sym = check.symbol_pins("demod")
    opto = dict(sym["Isolator:LTV-814"])
    opto["3"], opto["4"] = opto["4"], opto["3"]                       # collector drawn on pad 3
    probs = check.compare_pins("demod", comps, names, types, sympins=dict(sym, **{"Isolator:LTV-814": opto}))
    assert any("U1" in p and "pad 3" in p for p in probs), probs
    other = dict(comps, Q9=dict(comps["Q1"], MPN="NOT-IN-TABLE"))
    names9 = dict(names, Q9=names["Q1"])
    assert any("Q9" in p and "no datasheet pin table" in p for p in check.compare_pins("demod", other, names9, types))


def test_readme_lists_every_part_whose_lcsc_number_is_unconfirmed(tmp_path):
    readme = open(os.path.join(HW, "README.md")).read()
    block = readme.split("<!-- parts-to-confirm -->\n")[1].split("<!-- /parts-to-confirm -->")[0]
    assert block == check.confirm_table(), "paste: python3 hardware/check.py --confirm-table"
    # the table picks up a new unconfirmed part, and says when its second source is missing
    with open(os.path.join(HW, "design", "values.json")) as f:
        data = json.load(f)
    data["relay"]["R1"]["lcsc"] = ""
    data["relay"]["R1"]["mpn"] = "TEST-MPN-1"
    p = tmp_path / "values.json"
    p.write_text(json.dumps(data))
    row = [l for l in check.confirm_table(str(p)).splitlines() if "TEST-MPN-1" in l]
    assert len(row) == 1 and "relay R1" in row[0] and "none found" in row[0] and "MISSING" in row[0]
    for line in block.splitlines()[2:]:
        assert "MISSING" not in line, line


def _unpaired_sources(data):
    """-> ["board ref", ...] whose lcsc_source does not quote their own LCSC number and MPN."""
    import re
    bad = []
    for board in BOARDS:
        for ref, e in data[board].items():
            src = e.get("lcsc_source")
            if src and not (re.search(r"(?<![0-9A-Za-z])%s(?![0-9])" % re.escape(e["lcsc"]), src)
                            and e["mpn"] in src):
                bad.append("%s %s" % (board, ref))
    return bad


def test_every_lcsc_source_names_its_own_number_and_mpn(tmp_path):
    """A part counts as confirmed only with an lcsc_source that quotes the pairing it relies on:
    the source text must contain the part's own LCSC number and MPN (a number or MPN changed
    without its source -- the C49678 / CL21B104KBCNNNC kind of mismatch -- fails here), and a
    part with a number but no source lands in the parts-to-confirm table."""
    with open(os.path.join(HW, "design", "values.json")) as f:
        data = json.load(f)
    assert _unpaired_sources(data) == []
    assert sum(1 for b in BOARDS for e in data[b].values() if e.get("lcsc_source")) >= 30
    data["relay"]["C1"]["mpn"] = "CL31A226KAHNNNX"          # MPN edited, source left behind
    data["demod"]["R4"]["lcsc"] = "C176"                      # a number that is a prefix of the sourced C17673
    assert _unpaired_sources(data) == ["demod R4", "relay C1"]
    del data["relay"]["Q1"]["lcsc_source"]
    p = tmp_path / "values.json"
    p.write_text(json.dumps(data))
    row = [l for l in check.confirm_table(str(p)).splitlines() if "relay Q1" in l]
    assert len(row) == 1 and "C20917 (not confirmed)" in row[0], row


@pytest.mark.parametrize("board", BOARDS)
def test_assembler_files_hold_only_the_placed_parts(board):
    import csv
    fab = os.path.join(HW, board, "fab")
    with open(os.path.join(fab, board + "-cpl.csv")) as f:
        cpl = list(csv.DictReader(f))
    with open(os.path.join(fab, board + "-bom.csv")) as f:
        bom = list(csv.DictReader(f))
    with open(os.path.join(fab, board + "-bom-hand.csv")) as f:
        hand = list(csv.DictReader(f))
    placed = [r["Designator"] for r in cpl]
    in_bom = [d for r in bom for d in r["Designator"].split(",")]
    assert sorted(placed) == sorted(in_bom) and len(placed) == len(set(placed))
    assert all(int(r["Quantity"]) == len(r["Designator"].split(",")) for r in bom)
    hand_refs = set(r["Designator"] for r in hand)
    assert not hand_refs & set(placed)
    # sockets, headers, terminals, the relay and the supercapacitor are fitted by hand
    assert {"M1", "M2", "J9"} <= hand_refs
    if board == "demod":
        assert [r["Fit"] for r in hand if r["Designator"] == "JP1"][0].startswith("DNP")
    # every placed part is in values.json (where its LCSC number's source is recorded), and a
    # part without an LCSC number must be in the README's parts-to-confirm table
    with open(os.path.join(HW, "design", "values.json")) as f:
        values = json.load(f)[board]
    assert sorted(set(placed) - set(values)) == []
    # issue #18's done-when: every part the assembler places has an LCSC number in the BOM (a
    # part without one -- the surface-mount opto was such a part -- must be fitted by hand)
    for r in bom:
        assert r["LCSC Part #"], r
    if board == "demod":
        # the optocoupler is the through-hole DIP-4 part, hand-fitted, not placed
        assert [r["Footprint"] for r in hand if r["Designator"] == "U1"] == ["DIP-4_W7.62mm"]
    for r in cpl:
        assert r["Layer"] == "Top"
        if r["Package"].startswith("SOT-23"):    # every SOT part is placed at 0 in KiCad
            assert r["Rotation"] == "180.0", r


def test_rotation_correction_per_package():
    assert check.jlc_rotation("SOT-23", 0) == 180
    assert check.jlc_rotation("SOT-23-5", 90) == 270
    assert check.jlc_rotation("SOT-223-3_TabPin2", 270) == 90
    assert check.jlc_rotation("R_0805_2012Metric", 90) == 90
    assert check.jlc_rotation("D_SOD-123", 0) == 0


PAPER = {"A4": (297, 210), "A3": (420, 297), "A2": (594, 420), "A1": (841, 594)}


@pytest.mark.parametrize("board", BOARDS)
def test_schematic_is_wired_and_on_the_sheet(board):
    """Symbols are joined by wires within each block (labels only name the rails), and
    every symbol, wire, label and text lies on the drawing sheet (inside its border)."""
    import re
    with open(os.path.join(HW, board, board + ".kicad_sch")) as f:
        text = f.read()
    paper = re.search(r'\(paper "(A\d)"\)', text).group(1)
    w, h = PAPER[paper]
    wires = re.findall(r"\(wire \(pts \(xy ([\d.]+) ([\d.]+)\) \(xy ([\d.]+) ([\d.]+)\)\)", text)
    symbols = re.findall(r"^  \(symbol \(lib_id \"[^\"]+\"\) \(at ([\d.]+) ([\d.]+)", text, re.M)
    labels = re.findall(r"^  \(label \"[^\"]+\" \(at ([\d.]+) ([\d.]+)", text, re.M)
    texts = re.findall(r"^  \(text \"[^\"]+\" \(exclude_from_sim no\) \(at ([\d.]+) ([\d.]+)", text, re.M)
    nets = check.load_expected(board)
    assert len(wires) > len(nets), (len(wires), len(nets))
    assert len(labels) <= len(wires) / 2
    for x, y in [(float(a), float(b)) for a, b in symbols + labels + texts] + \
            [(float(w_[i]), float(w_[i + 1])) for w_ in wires for i in (0, 2)]:
        # 10 mm border and the title block (bottom right, ~180 x 40 mm)
        assert 10 <= x <= w - 10 and 10 <= y <= h - 10, (board, x, y)
        assert not (x > w - 190 and y > h - 45), (board, "under the title block", x, y)


@needs_kicad
def test_relay_board_keeps_6mm_creepage_to_mains():
    # KiCad 9's creepage constraint (measured around the milled slots) in the relay's
    # design rules; test_drc_clean_routed_and_matching_schematic proves DRC finds nothing
    with open(os.path.join(HW, "relay", "relay.kicad_dru")) as f:
        dru = f.read()
    assert "(constraint creepage (min 6mm))" in dru and "(constraint clearance (min 3mm))" in dru


@needs_kicad
def test_stack_closes(report):
    st = report["_stack"]
    assert st["ok"] and st["problems"] == [], st
    for key, v in st["figures"].items():
        assert v["needed"] <= v["gap"], (key, v)


def test_stack_check_catches_a_tall_part_a_short_standoff_and_an_unreachable_plug():
    st = check.load_stack()
    boxes = {b: check.footprint_boxes(b) for b in st["order_top_to_bottom"]}
    assert check.stack_report(st, boxes)[0] == []
    import copy
    tall = copy.deepcopy(st)
    tall["parts"]["relay"]["K1"]["height"] = 23.0          # a much taller relay
    assert any("demod/relay" in p and "K1" in p for p in check.stack_report(tall, boxes)[0])
    short = copy.deepcopy(st)
    short["standoffs"]["lengths"]["power/demod"] = 12.0
    assert any("standoffs" in p for p in check.stack_report(short, boxes)[0])
    hidden = copy.deepcopy(st)
    hidden["access"]["demod"]["J2"] = "top"                 # the RJ12 under the power board
    assert any("J2" in p for p in check.stack_report(hidden, boxes)[0])
    moved = copy.deepcopy(boxes)
    x0, y0, x1, y1, th = moved["demod"]["J2"]
    moved["demod"]["J2"] = (x0, y0 - 5, x1, y1 - 5, th)     # RJ12 pulled 5 mm in from the edge
    assert any("J2" in p and "edge" in p for p in check.stack_report(st, moved)[0])
    near = copy.deepcopy(st)
    near["gaps"]["demod/relay"] = near["standoffs"]["lengths"]["demod/relay"] = 21.0
    assert any("mains part relay J1" in p for p in check.stack_report(near, boxes)[0])
    # the demodulator's DIP-4 opto U1 lies over the relay K1 (mains): its lead tips, 1.7 mm
    # under the demod board, must stay 6 mm above K1. A 17.5 mm relay passes the whole-gap
    # checks (17.5 + 2 + 1 = 20.5 <= 25; 25 - 17.5 = 7.5 >= 6) but not this one:
    # 25 - 1.7 - 17.5 = 5.8 mm < 6
    assert check.boxes_overlap(boxes["demod"]["U1"], boxes["relay"]["K1"])
    taller = copy.deepcopy(st)
    taller["parts"]["relay"]["K1"]["height"] = 17.5
    probs = check.stack_report(taller, boxes)[0]
    assert len(probs) == 1 and "leads of demod U1" in probs[0] and "relay K1" in probs[0] and "5.8" in probs[0], probs
    aside = copy.deepcopy(boxes)                            # the same relay with U1 elsewhere
    aside["demod"]["U1"] = (40.0, 33.0, 44.0, 37.0, True)
    assert not any("U1" in p for p in check.stack_report(taller, aside)[0])
    gone = copy.deepcopy(st)
    del gone["parts"]["power"]["C1"]                        # a through-hole part without a height
    assert any("C1" in p for p in check.stack_report(gone, boxes)[0])


def test_solder_jumper_gets_no_paste():
    """JP1 is bridged by hand: its pads must not receive solder paste from the stencil."""
    tree = check.parse_sexpr(open(os.path.join(HW, "demod", "demod.kicad_pcb")).read())
    for fp in tree[1:]:
        if not (isinstance(fp, list) and fp and fp[0] == "footprint"):
            continue
        props = {p[1]: p[2] for p in fp[1:] if isinstance(p, list) and p and p[0] == "property"}
        if props.get("Reference") != "JP1":
            continue
        pads = [p for p in fp[1:] if isinstance(p, list) and p and p[0] == "pad"]
        assert len(pads) == 3
        for p in pads:
            layers = [l for it in p[1:] if isinstance(it, list) and it[0] == "layers" for l in it[1:]]
            assert "F.Cu" in layers and not any("Paste" in l for l in layers), layers
        return
    raise AssertionError("JP1 not found")
