# The repository as designed: layout, the port layer boundary, device build outputs.
import ast
import glob
import json
import os
import subprocess
import sys

import pytest

from tests.host.mpy import ROOT

HARDWARE_MODULES = {"machine", "network", "esp", "esp32"}
PORT_LAYER = {"firmware/port/device.py", "firmware/port/flash.py"}
# machine code (@micropython.viper/native), imported behind a guard by its users
MICROPYTHON_ONLY = {"firmware/native.py"}


def fw_files():
    return sorted(os.path.relpath(p, ROOT) for p in
                  glob.glob(os.path.join(ROOT, "firmware", "**", "*.py"), recursive=True))


def imported_modules(path):
    tree = ast.parse(open(os.path.join(ROOT, path)).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def test_top_level_layout():
    for name in ("firmware", "hardware", "tests", "tools", "boot.py", "main.py", "Makefile",
                 "README.md", "LICENSE_CODE", "LICENSE_HARDWARE"):
        assert os.path.exists(os.path.join(ROOT, name)), name
    assert "MIT License" in open(os.path.join(ROOT, "LICENSE_CODE")).read()
    hw = open(os.path.join(ROOT, "LICENSE_HARDWARE")).read()
    assert "CERN Open Hardware Licence Version 2 - Strongly Reciprocal" in hw
    assert "8.6" in hw and len(hw) > 10000   # the full text, not a pointer


def test_only_the_port_layer_touches_hardware():
    offenders = []
    for path in fw_files():
        if path in PORT_LAYER or path == "firmware/manifest.py":
            continue
        bad = HARDWARE_MODULES.intersection(imported_modules(path))
        if bad:
            offenders.append((path, sorted(bad)))
    assert offenders == []


def test_boot_and_main_stay_tiny_and_delegate():
    for name in ("boot.py", "main.py"):
        src = open(os.path.join(ROOT, name)).read()
        assert len(src.splitlines()) < 30, name
    assert "firmware" in open(os.path.join(ROOT, "main.py")).read()


def test_every_firmware_module_imports_on_cpython():
    code = ("import sys; sys.path.insert(0, %r)\n" % ROOT +
            "import importlib\n"
            "for m in %r:\n    importlib.import_module(m)\n" % [
                p[:-3].replace("/", ".").replace(".__init__", "") for p in fw_files()
                if p not in PORT_LAYER and p not in MICROPYTHON_ONLY
                and p != "firmware/manifest.py"])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_make_mpy_compiles_every_module_and_prints_sizes(tmp_path):
    for chip in ("esp8266", "esp32c3"):
        r = subprocess.run([sys.executable, "-m", "tools.mpybuild", "--chip", chip, "--out",
                            str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        for path in fw_files():
            if path == "firmware/manifest.py":
                continue
            assert any(ln.startswith(path + " ") for ln in lines), path
            assert os.path.exists(os.path.join(tmp_path, chip, path[:-3] + ".mpy"))
        assert lines[-1].startswith("TOTAL")


def test_mip_package_json_is_up_to_date():
    r = subprocess.run([sys.executable, "-m", "tools.package", "--check"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    pkg = json.load(open(os.path.join(ROOT, "firmware", "package.json")))
    listed = {u[0] for u in pkg["urls"]}
    assert {p for p in fw_files() if p != "firmware/manifest.py"} <= listed
