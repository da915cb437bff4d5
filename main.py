# Starts the dongle application unless boot.py asked for a safe boot. app.boot() is the
# catch-all: whatever escapes the app is recorded (crash.txt) and the chip restarts.
import sys

if "_safe_boot" not in sys.modules:
    from firmware.port.device import Port
    from firmware import app
    app.boot(Port())
