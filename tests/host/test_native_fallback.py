# The decoders with their machine code unavailable (issue #15: an image that cannot load
# native code): firmware/native.py is replaced by a native .mpy for another architecture
# (armv6m), which MicroPython refuses at import exactly as an image older than the .mpy's
# native sub-version does (ValueError: incompatible .mpy). Every user of it falls back
# to the pure-Python path; the DSMR/Smarty test modules then run unchanged on the 64-bit
# unix port and on each chip variant.
import os
import shutil
import subprocess

import pytest

from tests.host import mpy
from tests.host.test_micropython import TARGETS, _check

CHECK = """
try:
    import firmware.native
    print("native loaded")
except ValueError as e:
    print("native refused:", e)
import firmware.frame.dsmr as d, firmware.frame.smarty as s, firmware.reading.dsmr as r
print("fallback", d._crc_viper is None, s._nat is None, s._ghash_v is None,
      not hasattr(r, "_nat"))
"""


@pytest.fixture(scope="module")
def no_native(tmp_path_factory):
    from tools import mp32
    why = mp32.available()
    if why:
        pytest.skip(why)
    mp32.build("esp8266")      # makes the source tree's mpy-cross
    cross = os.path.join(mp32.DIR, "tree", "mpy-cross", "build", "mpy-cross")
    d = tmp_path_factory.mktemp("nonative")
    shutil.copytree(os.path.join(mpy.ROOT, "firmware"), str(d / "firmware"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    os.remove(str(d / "firmware" / "native.py"))
    subprocess.run([cross, "-march=armv6m", "-o", str(d / "firmware" / "native.mpy"),
                    os.path.join(mpy.ROOT, "firmware", "native.py")], check=True)
    # run from there (the script's folder / cwd comes first on sys.path), tests beside
    for sub in ("tests", "tools"):
        os.symlink(os.path.join(mpy.ROOT, sub), str(d / sub))
    return str(d)


@pytest.mark.parametrize("target", TARGETS)
def test_decoders_fall_back_to_python_when_native_code_is_refused(no_native, target):
    exe = mpy.target_exe(target)
    env = {"MICROPYPATH": no_native + ":" + mpy.micropypath().replace(mpy.ROOT + ":", "")}
    r = mpy.run(["-c", CHECK], heap="2M", exe=exe, extra_env=env, cwd=no_native)
    assert "native refused: incompatible .mpy arch" in r.stdout, r.stdout + r.stderr
    assert "fallback True True True True" in r.stdout, r.stdout + r.stderr
    for mod in ("tests/fw/test_dsmr.py", "tests/fw/test_dsmr_smarty.py",
                "tests/fw/test_chip_builtins.py"):
        _check(mpy.run(["tests/mprun.py", mod], heap="2M", exe=exe, extra_env=env,
                       timeout=600, cwd=no_native))


def test_machine_code_lives_only_in_the_guarded_module():
    # a @micropython.viper/native function anywhere else makes that whole module's .mpy
    # unloadable on an image that refuses native code
    bad = []
    for d, _, files in os.walk(os.path.join(mpy.ROOT, "firmware")):
        for f in files:
            p = os.path.join(d, f)
            if f.endswith(".py") and p != os.path.join(mpy.ROOT, "firmware", "native.py"):
                with open(p) as fh:
                    for i, line in enumerate(fh, 1):
                        if "@micropython." in line or "micropython.native" in line or \
                                "micropython.viper" in line:
                            bad.append("%s:%d" % (os.path.relpath(p, mpy.ROOT), i))
    assert bad == [], bad
