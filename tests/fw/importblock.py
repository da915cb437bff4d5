# Imports made to fail, as on a build without a module (its own file: tests/fw/util.py
# is imported by the small-heap tests, where every line of bytecode counts).


class blocked_imports:
    # `with blocked_imports("cryptolib", ...)`: importing these (or their submodules)
    # raises ImportError, as on a build without them. builtins.__import__ is what both
    # Pythons call for an import statement (MicroPython: MICROPY_CAN_OVERRIDE_BUILTINS).
    def __init__(self, *names):
        self.names = names

    def __enter__(self):
        import builtins
        self.real = real = builtins.__import__
        names = self.names

        def imp(name, *a):
            if name in names or name.split(".")[0] in names:
                raise ImportError("blocked: " + name)
            return real(name, *a)
        builtins.__import__ = imp
        return self

    def __exit__(self, *exc):
        import builtins
        builtins.__import__ = self.real
        return False
