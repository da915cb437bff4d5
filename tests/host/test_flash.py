# make flash per chip, without a board (--dry-run): the exact commands, the install path
# each chip's image allows, and images older than the tested MicroPython refused.
import os
import subprocess
import sys

from tools import flash

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BANNER = b"\x00MicroPython v%d.%d.%d on 2026-04-06; %s\x00"


def _image(tmp_path, name, version, extra=b""):
    p = tmp_path / name
    p.write_bytes(b"\xe9" + b"\0" * 64 + BANNER % (version + (b"ESP module",)) + extra)
    return str(p)


def _flash(*args):
    r = subprocess.run([sys.executable, "-m", "tools.flash", "--port", "/dev/ttyUSB9"] +
                       list(args) + ["--dry-run"], cwd=ROOT, capture_output=True, text=True)
    return r, [ln[2:] for ln in r.stdout.splitlines() if ln.startswith("+ ")]


def test_esp8266_romfs_image_goes_to_the_romfs_partition(tmp_path):
    img = _image(tmp_path, "ESP8266_GENERIC-FLASH_2M_ROMFS-20260406-v1.28.0.bin", (1, 28, 0))
    r, steps = _flash("--chip", "esp8266", "--firmware", img)
    assert r.returncode == 0, r.stderr
    es = os.path.join(os.path.dirname(sys.executable), "esptool")
    mr = os.path.join(os.path.dirname(sys.executable), "mpremote")
    assert steps[0] == "%s --chip esp8266 --port /dev/ttyUSB9 erase-flash" % es
    assert steps[1] == ("%s --chip esp8266 --port /dev/ttyUSB9 --baud 460800 write-flash "
                        "--flash-size detect 0 %s" % (es, img))
    assert steps[2] == "%s connect /dev/ttyUSB9 romfs --no-mpy deploy %s" % (
        mr, os.path.join(ROOT, "build", "esp8266-rom"))
    assert steps[3].endswith("boot.py %s :" % os.path.join(ROOT, "build", "esp8266", "main.py"))
    assert "appass" in steps[4] and steps[5] == "%s connect /dev/ttyUSB9 reset" % mr
    assert not any(" cp -r " in s for s in steps)    # no .mpy on the ESP8266's filesystem
    # size against the partition (boards/esp8266_2MiB_ROMFS.ld: 320 KB)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("firmware:")][0]
    assert "of 327680" in line, line
    rom = os.path.join(ROOT, "build", "esp8266.romfs")
    assert "ROMFS image %d bytes" % os.path.getsize(rom) in line


def test_esp8266_refuses_an_image_without_romfs_or_frozen_firmware(tmp_path):
    img = _image(tmp_path, "ESP8266_GENERIC-20260406-v1.28.0.bin", (1, 28, 0))
    r, steps = _flash("--chip", "esp8266", "--firmware", img)
    assert r.returncode == 2 and steps == [] and "FLASH_2M_ROMFS" in r.stderr
    # a build with the firmware frozen in is fine: nothing but boot.py/main.py to copy
    img = _image(tmp_path, "custom.bin", (1, 28, 0), b"firmware/app.py\x00")
    r, steps = _flash("--chip", "esp8266", "--firmware", img)
    assert r.returncode == 0 and "frozen in the image" in r.stdout
    assert not any("romfs" in s or " cp -r " in s for s in steps)


def test_older_images_are_refused(tmp_path):
    for chip, name in (("esp8266", "ESP8266_GENERIC-FLASH_2M_ROMFS-20250415-v1.25.0.bin"),
                       ("esp32c3", "ESP32_GENERIC_C3-20251209-v1.27.0.bin")):
        img = _image(tmp_path, name, (1, 27, 0) if chip == "esp32c3" else (1, 25, 0))
        r, steps = _flash("--chip", chip, "--firmware", img)
        assert r.returncode == 2 and steps == [], r.stdout
        assert "v1.28.0" in r.stderr, r.stderr
    assert flash.image_version(b"x MicroPython v1.9.4 on y") == (1, 9, 4)
    assert flash.image_version(b"nothing") is None


def test_esp32c3_copies_mpy_files_to_the_filesystem(tmp_path):
    img = _image(tmp_path, "ESP32_GENERIC_C3-20260406-v1.28.0.bin", (1, 28, 0))
    r, steps = _flash("--chip", "esp32c3", "--firmware", img)
    assert r.returncode == 0, r.stderr
    assert steps[0].endswith("--chip esp32c3 --port /dev/ttyUSB9 erase-flash")
    assert steps[1].endswith("write-flash 0 " + img)
    assert steps[2].endswith(" cp -r %s :" % os.path.join(ROOT, "build", "esp32c3", "firmware"))
    assert not any("romfs" in s for s in steps)      # the stock C3 image has no ROMFS
    assert "on a filesystem of 2097152" in r.stdout


def test_flashing_without_an_image_is_refused():
    r = subprocess.run([sys.executable, "-m", "tools.flash", "--port", "/dev/null"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--firmware" in r.stderr
