# pytest configuration shared by every test: the repository root and the host
# compatibility shims go on sys.path so firmware/ and tools/ import as packages.
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
_MPLIB = os.path.join(ROOT, ".mplib")
_COMPAT = os.path.join(ROOT, "tools", "compat", "cpython")
for _p in (_COMPAT, _MPLIB):
    if os.path.isdir(_p) and _p not in sys.path:
        sys.path.append(_p)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (still part of make test)")
    os.makedirs(os.path.join(ROOT, "tests", "artifacts"), exist_ok=True)
