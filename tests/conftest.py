# pytest configuration shared by every test: the repository root and the host
# compatibility shims go on sys.path so firmware/ and tools/ import as packages.
# Under CI=true a skipped test is a failure: whatever a test needs (the MicroPython
# source, gcc -m32, mosquitto, chromium, ...) must be there in CI; outside CI the skips
# are listed in one summary line at the end.
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
_MPLIB = os.path.join(ROOT, ".mplib")
_COMPAT = os.path.join(ROOT, "tools", "compat", "cpython")
for _p in (_COMPAT, _MPLIB):
    if os.path.isdir(_p) and _p not in sys.path:
        sys.path.append(_p)

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (still part of make test)")
    os.makedirs(os.path.join(ROOT, "tests", "artifacts"), exist_ok=True)


def _ci_fail(report):
    # a skip (not an expected failure) becomes a failure carrying the skip's reason
    if CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = "skipped under CI=true (a skip is a failure in CI): %s" % reason


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _ci_fail(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _ci_fail(outcome.get_result())


def pytest_terminal_summary(terminalreporter):
    # outside CI: one line saying what did not run and why
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    why = {}
    for r in skipped:
        reason = r.longrepr[2] if isinstance(r.longrepr, tuple) else str(r.longrepr)
        why[reason.split("\n")[0][:120]] = why.get(reason.split("\n")[0][:120], 0) + 1
    terminalreporter.write_line("NOT RUN (%d skipped): %s" % (len(skipped), "; ".join(
        "%d x %s" % (n, w) for w, n in sorted(why.items(), key=lambda kv: -kv[1]))))
