# Starts the dongle application unless boot.py asked for a safe boot.
import sys

if "_safe_boot" not in sys.modules:
    from firmware.port.device import Port
    from firmware import app
    app.main(Port())
