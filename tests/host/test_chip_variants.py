# The chip variants of the unix port (tools/mp32.py) are what the stock images are:
# generated from the ports' headers, they refuse what the chip refuses. Expected values
# come from MicroPython v1.28.0's ports/esp8266/mpconfigport.h (STR_PARTITION,
# BINASCII_CRC32 off; MICROPY_OBJ_REPR_C; float), ports/esp8266/main.c
# (static char heap[38 * 1024]) and ports/esp32/mpconfigport.h (REPR_A, 64 KB first heap).
import os
import re
import subprocess

import pytest

from tests.host import mpy
from tools import mp32


def _run(chip, code):
    r = subprocess.run([mpy.target_exe(chip), "-c", code], capture_output=True, text=True,
                       timeout=60)
    return r.stdout + r.stderr


def test_esp8266_variant_refuses_rpartition_and_lacks_crc32():
    out = _run("esp8266", "import binascii\nprint('crc32', hasattr(binascii, 'crc32'))\n"
                          "'a.b'.rpartition('.')")
    assert "crc32 False" in out, out
    assert "AttributeError: 'str' object has no attribute 'rpartition'" in out, out


def test_esp8266_variant_object_model_heap_and_missing_builtins():
    out = _run("esp8266", "import sys, gc\nprint(sys.maxsize)\nprint(gc.mem_free() + gc.mem_alloc())\n"
                          "import builtins\nprint('delattr', hasattr(builtins, 'delattr'))\n"
                          "for m in ('termios', '_thread', 'ffi'):\n"
                          "    try:\n        __import__(m)\n        print('has', m)\n"
                          "    except ImportError:\n        print('no', m)\n")
    lines = out.split()
    assert lines[0] == "2147483647", out            # 32-bit
    # the heap is the ESP8266 port's 38 KB (gc's own table takes the rest)
    assert 36 * 1024 < int(lines[1]) <= 38 * 1024, out
    for m in ("termios", "_thread", "ffi"):
        assert "no " + m in out, out
    # REPR_C: a float is 30 bits in the object word: 2**24 + 1 is not representable
    # (single precision), and 0.1 + 0.2 prints as the float32 sum
    assert _run("esp8266", "print(float(2**24 + 1) == 2**24, 0.1 + 0.2)").split() == [
        "True", "0.3"]


def test_esp32c3_variant_has_what_the_c3_image_has():
    out = _run("esp32c3", "import binascii, sys, gc\nprint(sys.maxsize, hasattr(binascii, 'crc32'))\n"
                          "print('a.b'.rpartition('.'))\nprint(gc.mem_free() + gc.mem_alloc())")
    assert "2147483647 True" in out and "('a', '.', 'b')" in out, out
    heap = int(out.split()[-1])
    assert 62 * 1024 < heap <= 64 * 1024, out


def test_configuration_is_read_from_the_ports_headers():
    why = mp32.available()
    if why:
        pytest.skip(why)     # a failure under CI=true (tests/conftest.py)
    src = mp32.source()
    c8 = mp32.chip_config("esp8266", src)
    c3 = mp32.chip_config("esp32c3", src)
    for n in ("MICROPY_PY_BUILTINS_STR_PARTITION", "MICROPY_PY_BUILTINS_STR_SPLITLINES",
              "MICROPY_PY_BINASCII_CRC32", "MICROPY_PY_DELATTR_SETATTR",
              "MICROPY_PY_BUILTINS_COMPLEX", "MICROPY_COMP_RETURN_IF_EXPR"):
        assert n in c8["off"], n
        assert n not in c3["off"], n
    assert c8["copy"]["MICROPY_OBJ_REPR"] == "(MICROPY_OBJ_REPR_C)"
    assert c3["copy"]["MICROPY_OBJ_REPR"] == "(MICROPY_OBJ_REPR_A)"
    assert c8["heap"] == 38 * 1024 and c3["heap"] == 64 * 1024
    assert c8["make"]["MICROPY_PY_THREAD"] == "0" and c3["make"]["MICROPY_PY_THREAD"] == "1"
    # every switch the header turns off by name is in the generated list
    with open(os.path.join(src, "ports", "esp8266", "mpconfigport.h")) as f:
        named = re.findall(r"^#define (MICROPY_(?:PY|COMP|OPT)_\w+)\s+\(0\)", f.read(), re.M)
    assert len(named) > 15
    assert set(named) - set(c8["off"]) <= set(mp32.HOST_KEEPS), set(named) - set(c8["off"])


def test_a_missing_source_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("MICROPYTHON_SRC", str(tmp_path))
    with pytest.raises(mp32.Missing):
        mp32.source()


def test_the_firmware_does_not_use_what_only_the_host_variant_keeps():
    # os.getenv/os.system stay in the variants for the test harness only
    root = mpy.ROOT
    for d, _, files in os.walk(os.path.join(root, "firmware")):
        for f in files:
            if f.endswith(".py"):
                with open(os.path.join(d, f)) as fh:
                    text = fh.read()
                assert "getenv" not in text and "os.system" not in text, f
