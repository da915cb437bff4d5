# Runs firmware test modules on the MicroPython unix port: imports each module,
# calls every top-level function named test_*, prints one line per test and a
# closing "N passed, N failed" line. A module that cannot run on MicroPython sets
# MICROPYTHON_SKIP = "why" at its top; a test that needs what a build lacks raises
# tests.fw.util.SkipTest. Both are reported as SKIP lines and counted as skipped, never
# as passed; tests/host/test_micropython.py turns a skip into a pytest skip (a failure
# under CI=true, tests/conftest.py).
#
#   micropython tests/mprun.py tests/fw/test_tic.py [more files] [-k substring]
import sys
import gc


def run_module(path, only):
    name = path.replace("/", ".")
    if name.endswith(".py"):
        name = name[:-3]
    passed = failed = skipped = 0
    try:
        __import__(name)
        mod = sys.modules[name]
    except Exception as e:
        print("ERROR importing", name, repr(e))
        sys.print_exception(e)
        return 0, 1, 0
    skip = getattr(mod, "MICROPYTHON_SKIP", None)
    if skip:
        print("SKIP", name, "-", skip)
        return 0, 0, 1
    for attr in sorted(dir(mod)):
        if not attr.startswith("test_"):
            continue
        if only and only not in attr:
            continue
        fn = getattr(mod, attr)
        if not callable(fn):
            continue
        gc.collect()
        try:
            fn()
            passed += 1
            print("PASS", name + "::" + attr)
        except Exception as e:
            if type(e).__name__ == "SkipTest":
                # tests.fw.util.SkipTest: what this build lacks (e.g. no cryptolib)
                print("SKIP", name + "::" + attr, "-", e)
                skipped += 1
                continue
            failed += 1
            print("FAIL", name + "::" + attr, repr(e))
            sys.print_exception(e)
    return passed, failed, skipped


def main(argv):
    only = None
    files = []
    i = 0
    while i < len(argv):
        if argv[i] == "-k":
            only = argv[i + 1]
            i += 2
            continue
        files.append(argv[i])
        i += 1
    tp = tf = ts = 0
    for f in files:
        p, fl, sk = run_module(f, only)
        tp += p
        tf += fl
        ts += sk
    print("%d passed, %d failed, %d skipped" % (tp, tf, ts))
    return 1 if tf else 0


sys.exit(main(sys.argv[1:]))
