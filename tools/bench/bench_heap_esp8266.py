"""The heap benchmark on the closest stand-in for the ESP8266 the host has: a 32-bit
MicroPython unix port with the ESP8266's object model and the application frozen in
(tools/bench/bench_heap.py --frozen32). Needs a MicroPython source ($MICROPYTHON_SRC or
../.mirror/micropython+micropython/repo) and gcc -m32 (Debian gcc-multilib).

    python -m tools.bench.bench_heap_esp8266
"""
import sys

from tools.bench import bench_heap as H


def main():
    src = H.default_src()
    if not src or not H.gcc_m32():
        print("skipped: %s" % ("no MicroPython source (set MICROPYTHON_SRC)" if not src
                               else "no gcc -m32 (Debian: gcc-multilib)"))
        return 0
    return H.main(["--frozen32", src])


if __name__ == "__main__":
    sys.exit(main())
