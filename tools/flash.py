"""Flash stock MicroPython and deploy the firmware to a board.

    python -m tools.flash --port /dev/ttyUSB0 --chip esp8266|esp32c3|esp32c6|esp32s3
                          [--firmware MICROPYTHON.bin] [--deploy-only] [--dry-run]

1. esptool erases the flash and writes the stock MicroPython image you downloaded
   (tested: MicroPython v1.25.0 to v1.27.x; the stock ESP8266/ESP32 images already
   freeze umqtt.simple and requests).
2. tools.mpybuild cross-compiles firmware/ for the chip; mpremote copies the .mpy tree,
   boot.py and main.py to the board and installs any micropython-lib dependency the
   image lacks with `mip`.
3. The per-device set-up access-point password is generated on the device at first
   boot and printed once: this tool reads it back and shows it so you can write it on
   the label.
"""
import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
OFFSET = {"esp8266": "0", "esp32c3": "0", "esp32c6": "0", "esp32s3": "0"}
ESPTOOL_CHIP = {"esp8266": "esp8266", "esp32c3": "esp32c3", "esp32c6": "esp32c6",
                "esp32s3": "esp32s3"}


def run(cmd, dry):
    print("+", " ".join(cmd))
    if not dry:
        subprocess.run(cmd, check=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", required=True)
    ap.add_argument("--chip", default="esp8266", choices=sorted(ESPTOOL_CHIP))
    ap.add_argument("--firmware", help="stock MicroPython image (.bin) for the chip")
    ap.add_argument("--deploy-only", action="store_true")
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args(argv)
    esptool = os.path.join(BIN, "esptool")
    mpremote = os.path.join(BIN, "mpremote")
    if not a.deploy_only:
        if not a.firmware:
            ap.error("--firmware MICROPYTHON.bin is needed to flash (or use --deploy-only)")
        run([esptool, "--chip", ESPTOOL_CHIP[a.chip], "--port", a.port, "erase_flash"],
            a.dry_run)
        extra = ["--flash_size=detect"] if a.chip == "esp8266" else []
        run([esptool, "--chip", ESPTOOL_CHIP[a.chip], "--port", a.port, "--baud", "460800",
             "write_flash"] + extra + [OFFSET[a.chip], a.firmware], a.dry_run)
    from tools import mpybuild
    dest, rows = mpybuild.build(a.chip, os.path.join(ROOT, "build"))
    print("firmware: %d modules, %d bytes of .mpy" % (len(rows), sum(r[2] for r in rows)))
    mp = [mpremote, "connect", a.port]
    try:
        run(mp + ["exec", "import umqtt.simple"], a.dry_run)
    except subprocess.CalledProcessError:
        run(mp + ["mip", "install", "umqtt.simple"], a.dry_run)
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
