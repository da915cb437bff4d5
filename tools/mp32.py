# The MicroPython unix port built the way the ESP8266 counts: 32-bit (gcc -m32) with the
# ESP8266 port's object model (ports/esp8266/mpconfigport.h: MICROPY_OBJ_REPR_C, so
# small ints are 31-bit and floats are 30-bit values in the object word; single-
# precision float implementation). Two uses:
#   * plain: the firmware tests run on it as well as on the venv's 64-bit MicroPython
#     (tests/host/test_micropython.py), so arithmetic that only holds with 64-bit
#     objects fails on the host;
#   * frozen: firmware/ and the host port frozen in, the heap measurement's stand-in
#     for the device (tools/bench/bench_heap.py --frozen32).
# Built from a MicroPython source (a checkout or a bare git repository; no submodules:
# no ssl/cryptolib, btree or ffi in these builds) into .venv/mp-frozen32, once; make
# rebuilds only what changed.
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIR = os.path.join(ROOT, ".venv", "mp-frozen32")
FLAGS = ["CFLAGS_EXTRA=-m32 -DMICROPY_OBJ_REPR=MICROPY_OBJ_REPR_C "
         "-DMICROPY_FLOAT_IMPL=MICROPY_FLOAT_IMPL_FLOAT", "LDFLAGS_EXTRA=-m32",
         "MICROPY_PY_SSL=0", "MICROPY_PY_BTREE=0", "MICROPY_PY_FFI=0",
         "MICROPY_USE_READLINE=0", "MPY_CROSS_FLAGS=-march=x86"]


def default_src():
    # $MICROPYTHON_SRC, else a mirror beside the checkout (../.mirror/micropython+
    # micropython/repo, as the project's tooling keeps it); None when there is neither
    for p in (os.environ.get("MICROPYTHON_SRC"),
              os.path.join(os.path.dirname(ROOT), ".mirror", "micropython+micropython", "repo")):
        if p and (os.path.exists(os.path.join(p, "py", "mpconfig.h")) or
                  os.path.exists(os.path.join(p, "HEAD"))):
            return p
    return None


def gcc_m32():
    # can this machine build 32-bit programs (Debian: gcc-multilib)?
    try:
        r = subprocess.run(["gcc", "-m32", "-x", "c", "-", "-o", os.devnull],
                           input=b"int main(void){return 0;}", capture_output=True)
        return r.returncode == 0
    except OSError:
        return False


def _tree(src):
    tree = os.path.join(DIR, "src")
    if not os.path.exists(os.path.join(tree, "py", "mpconfig.h")):
        shutil.rmtree(tree, ignore_errors=True)
        if os.path.exists(os.path.join(src, "py", "mpconfig.h")):
            shutil.copytree(src, tree, ignore=shutil.ignore_patterns(".git", "build*"))
        else:
            os.makedirs(tree)
            arch = subprocess.run(["git", "--git-dir", src, "archive", "HEAD"], check=True,
                                  capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tree], input=arch, check=True)
    return tree


def build(src, name, manifest_lines=()):
    # -> path of the interpreter `name` (its own build directory); manifest_lines: what
    # to freeze (manifest.py statements), none for a plain interpreter. One build at a
    # time (test workers share the tree and mpy-cross).
    import fcntl
    os.makedirs(DIR, exist_ok=True)
    with open(os.path.join(DIR, ".lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            return _build(src, name, manifest_lines)
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)


def _build(src, name, manifest_lines):
    tree = _tree(src)
    # the manifest step checks that micropython-lib is there; nothing of it is used
    mplib = os.path.join(DIR, "no-micropython-lib")
    os.makedirs(mplib, exist_ok=True)
    open(os.path.join(mplib, "README.md"), "w").close()
    man = os.path.join(DIR, name + "-manifest.py")
    with open(man, "w") as f:
        f.write("\n".join(manifest_lines) + "\n")
    jobs = "-j%d" % max(1, min(4, os.cpu_count() or 1))
    subprocess.run(["make", jobs, "-C", os.path.join(tree, "mpy-cross")], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["make", jobs, "-C", os.path.join(tree, "ports", "unix")] + FLAGS +
                   ["MPY_LIB_DIR=" + mplib, "FROZEN_MANIFEST=" + man, "BUILD=build-" + name,
                    "PROG=" + name], check=True, stdout=subprocess.DEVNULL)
    exe = os.path.join(tree, "ports", "unix", "build-" + name, name)
    out = subprocess.run([exe, "-c", "import sys; print(sys.maxsize)"], capture_output=True,
                         text=True, check=True).stdout.strip()
    if out != "2147483647":
        raise RuntimeError("%s is not a 32-bit build (%s)" % (exe, out))
    return exe


def plain(src=None):
    return build(src or default_src(), "micropython-32")


def available():
    # -> None when a 32-bit build can be made here, else why not
    if default_src() is None:
        return "no MicroPython source (set MICROPYTHON_SRC)"
    if not gcc_m32():
        return "no gcc -m32 (Debian: gcc-multilib)"
    return None
