"""Flash stock MicroPython and install the firmware, the way each chip can hold it.

    python -m tools.flash --port /dev/ttyUSB0 --chip esp8266|esp32c3|esp32c6
                          [--firmware MICROPYTHON.bin] [--deploy-only] [--dry-run]

ESP8266 (~38 KB heap): the firmware's bytecode must execute from flash, never be loaded
into the heap. Two ways, both checked here:
  * the stock ESP8266_GENERIC **FLASH_2M_ROMFS** image (MicroPython >= 1.25 publishes
    it; its linker script boards/esp8266_2MiB_ROMFS.ld gives the ROMFS partition 320 KB,
    mounted at /rom and put on sys.path by extmod/vfs.c): the firmware is cross-compiled
    (xtensa .mpy) into a ROMFS image and written with `mpremote romfs deploy`;
  * an image with the firmware frozen in (firmware/manifest.py): nothing more to copy.
  Any other ESP8266 image is refused: .mpy files on the filesystem do not fit the heap.
ESP32-C3/C6: the stock images have no ROMFS partition (ports/esp32/boards/sdkconfig.base:
partitions-4MiBplus.csv, nvs + phy_init + factory app; the filesystem takes the flash
after 2 MiB). The heap is large enough for .mpy files on the filesystem: they are copied
there (rv32imc .mpy).
Stock images already freeze umqtt.simple (ports/*/boards/manifest*.py).

Versions: the image must be at least the MicroPython version this project builds and
tests the firmware on (SUPPORTED below, README "Flashing a board"); the version is read
from the image's banner string ("MicroPython v1.28.0 on ..."), and on --deploy-only from
the board.

--dry-run prints the exact esptool/mpremote commands and runs none of them.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
ESPTOOL_CHIP = {"esp8266": "esp8266", "esp32c3": "esp32c3", "esp32c6": "esp32c6"}
# The MicroPython versions the firmware is built and tested against (tools/mp32.py chip
# variants of v1.28.0): older images are refused.
SUPPORTED = {"esp8266": (1, 28, 0), "esp32c3": (1, 28, 0), "esp32c6": (1, 28, 0)}
ROMFS_BYTES = {"esp8266": 320 * 1024}   # boards/esp8266_2MiB_ROMFS.ld FLASH_ROMFS
# filesystem of a 4 MiB module with partitions-4MiBplus.csv: flash after 0x200000
FS_BYTES = {"esp32c3": 2 * 1024 * 1024, "esp32c6": 2 * 1024 * 1024}


class Refused(Exception):
    pass


def image_version(data):
    # -> (major, minor, micro) from the banner MicroPython prints at boot
    m = re.search(rb"MicroPython v(\d+)\.(\d+)\.(\d+)", data)
    if not m:
        m = re.search(rb"\bv(\d+)\.(\d+)\.(\d+)(?:-[0-9a-z.-]+)? on \d{4}-\d\d-\d\d", data)
    return tuple(int(x) for x in m.groups()) if m else None


def vstr(v):
    return "v%d.%d.%d" % v


def check_image(chip, path):
    """-> "romfs" | "frozen" | "filesystem": how the firmware goes with this image;
    raises Refused with the reason."""
    with open(path, "rb") as f:
        data = f.read()
    v = image_version(data)
    if v is None:
        raise Refused("%s: no MicroPython version string in the image" % path)
    if v < SUPPORTED[chip]:
        raise Refused("%s is MicroPython %s; the firmware is built and tested on %s and "
                      "later for %s" % (os.path.basename(path), vstr(v), vstr(SUPPORTED[chip]),
                                        chip))
    if b"firmware/app.py" in data or b"firmware/app.mpy" in data:
        return "frozen"
    if chip == "esp8266":
        if "ROMFS" in os.path.basename(path).upper():
            return "romfs"
        raise Refused("%s: the ESP8266 needs the stock ESP8266_GENERIC-FLASH_2M_ROMFS image "
                      "(ROMFS at /rom) or a build with firmware/manifest.py frozen in: .mpy "
                      "files on the filesystem do not fit its heap" % os.path.basename(path))
    return "filesystem"


def tree_size(d):
    return sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(d) for f in fs)


def run(cmd, dry):
    print("+", " ".join(cmd))
    if not dry:
        subprocess.run(cmd, check=True)


def board_version(mpremote, port):
    r = subprocess.run([mpremote, "connect", port, "exec",
                        "import sys; print(tuple(sys.implementation.version[:3]))"],
                       capture_output=True, text=True, check=True)
    m = re.search(r"\((\d+), (\d+), (\d+)\)", r.stdout)
    return tuple(int(x) for x in m.groups()) if m else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", required=True)
    ap.add_argument("--chip", default="esp8266", choices=sorted(ESPTOOL_CHIP))
    ap.add_argument("--firmware", help="stock MicroPython image (.bin) for the chip")
    ap.add_argument("--deploy-only", action="store_true",
                    help="the board already runs a suitable image: install the firmware")
    ap.add_argument("--install", choices=("romfs", "frozen", "filesystem"),
                    help="with --deploy-only: how the board's image holds the firmware "
                         "(default: romfs on the ESP8266, filesystem on the ESP32 family)")
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args(argv)
    esptool = os.path.join(BIN, "esptool")
    mpremote = os.path.join(BIN, "mpremote")
    mp = [mpremote, "connect", a.port]
    try:
        if a.deploy_only:
            how = a.install or ("romfs" if a.chip == "esp8266" else "filesystem")
            if not a.dry_run:
                v = board_version(mpremote, a.port)
                if v is None or v < SUPPORTED[a.chip]:
                    raise Refused("the board runs MicroPython %s; %s or later is needed" % (
                        vstr(v) if v else "(unknown)", vstr(SUPPORTED[a.chip])))
        else:
            if not a.firmware:
                ap.error("--firmware MICROPYTHON.bin is needed to flash (or use --deploy-only)")
            how = check_image(a.chip, a.firmware)
    except Refused as e:
        print("refused:", e, file=sys.stderr)
        return 2
    if not a.deploy_only:
        # (esptool 5 command and option names, requirements-dev.txt)
        run([esptool, "--chip", ESPTOOL_CHIP[a.chip], "--port", a.port, "erase-flash"],
            a.dry_run)
        extra = ["--flash-size", "detect"] if a.chip == "esp8266" else []
        run([esptool, "--chip", ESPTOOL_CHIP[a.chip], "--port", a.port, "--baud", "460800",
             "write-flash"] + extra + ["0", a.firmware], a.dry_run)
    from tools import mpybuild
    dest, rows = mpybuild.build(a.chip, os.path.join(ROOT, "build"))
    mpy_bytes = sum(r[2] for r in rows)
    if how == "romfs":
        rom_src = os.path.join(ROOT, "build", a.chip + "-rom")
        img = mpybuild.romfs(dest, rom_src, os.path.join(ROOT, "build", a.chip + ".romfs"))
        size, space = os.path.getsize(img), ROMFS_BYTES[a.chip]
        print("firmware: %d modules, ROMFS image %d bytes of %d (%.0f%%) in the ROMFS "
              "partition" % (len(rows), size, space, 100.0 * size / space))
        if size > space:
            print("refused: the ROMFS image does not fit its partition", file=sys.stderr)
            return 2
        run(mp + ["romfs", "--no-mpy", "deploy", rom_src], a.dry_run)
    elif how == "frozen":
        print("firmware: frozen in the image (%d modules, %d bytes as .mpy)" % (
            len(rows), mpy_bytes))
    else:
        space = FS_BYTES[a.chip]
        print("firmware: %d modules, %d bytes of .mpy on a filesystem of %d (%.1f%%)" % (
            len(rows), mpy_bytes, space, 100.0 * mpy_bytes / space))
        run(mp + ["cp", "-r", os.path.join(dest, "firmware"), ":"], a.dry_run)
    run(mp + ["cp", os.path.join(dest, "boot.py"), os.path.join(dest, "main.py"), ":"],
        a.dry_run)
    # first boot generates the access-point password; show it for the label
    run(mp + ["exec", "from firmware.portal import appass; print('AP password:', "
              "appass.get_or_create(''))"], a.dry_run)
    run(mp + ["reset"], a.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
