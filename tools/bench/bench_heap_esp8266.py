"""The heap benchmark on the closest stand-in for the ESP8266 the host has: a 32-bit
MicroPython unix port with the ESP8266's object model and the application frozen in
(tools/bench/bench_heap.py --target esp8266): the esp8266 chip variant (tools/mp32.py).
Prints each case's heap need against what the stock image leaves free.

    python -m tools.bench.bench_heap_esp8266
"""
import os
import sys

from tools.bench import bench_heap as H


def main():
    from tools import mp32
    why = mp32.available()
    if why:
        print("not run: %s" % why)
        return 2 if os.environ.get("CI", "").lower() in ("1", "true", "yes") else 0
    return H.main(["--target", "esp8266"])


if __name__ == "__main__":
    sys.exit(main())
