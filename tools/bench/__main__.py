"""`make bench`: run every tools/bench/bench_*.py and print their figures.

Each benchmark runs as its own process (`python -m tools.bench.bench_x`) so one
failing benchmark is reported and the others still run. Benchmarks print measured
figures; nothing here asserts a time.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main(argv):
    only = argv[0] if argv else None
    names = sorted(f[:-3] for f in os.listdir(HERE) if f.startswith("bench_") and f.endswith(".py"))
    failed = []
    for n in names:
        if only and only not in n:
            continue
        print("=" * 72)
        print(n)
        print("=" * 72, flush=True)
        t0 = time.time()
        r = subprocess.run([sys.executable, "-m", "tools.bench." + n], cwd=ROOT)
        print("(%s: %.1f s%s)\n" % (n, time.time() - t0, "" if r.returncode == 0 else
                                    ", FAILED exit %d" % r.returncode), flush=True)
        if r.returncode:
            failed.append(n)
    if failed:
        print("benchmarks that failed:", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
