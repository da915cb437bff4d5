# Host-side tools. On CPython, importing this package puts the micropython-lib modules
# installed for the host (.mplib, by tools/mpylib.py) and the CPython shims they need
# (tools/compat/cpython: usocket, ussl, ... with MicroPython's stream API) on sys.path,
# so the firmware's uplink runs unchanged. On MicroPython, MICROPYPATH does the same.
import sys

if sys.implementation.name != "micropython":
    import os as _os
    _root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
    for _p in (_os.path.join(_root, ".mplib"), _os.path.join(_root, "tools", "compat", "cpython")):
        if _os.path.isdir(_p) and _p not in sys.path:
            sys.path.append(_p)
