# Runs first on every reset. The app takes UART0 from the REPL to read the meter
# (ESP8266), so a pin held low at reset (the board's safe_boot pin, D7 on the D1 mini:
# bridge it to GND) keeps the REPL and skips main.py: the way back for mpremote.
import sys

try:
    import machine
    from firmware.port import boards
    from firmware.port.device import detect_chip
    _pin = boards.BOARDS[boards.DEFAULT_BOARD[detect_chip()]]["safe_boot"]
    if machine.Pin(_pin, machine.Pin.IN, machine.Pin.PULL_UP).value() == 0:
        print("safe boot: REPL kept, app not started")
        sys.modules["_safe_boot"] = True
except Exception as e:  # never brick the board from boot.py
    print("boot:", e)
