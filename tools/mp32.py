# The MicroPython unix port built the way the ESP8266 counts: 32-bit (gcc -m32) with the
# ESP8266 port's object model (ports/esp8266/mpconfigport.h: MICROPY_OBJ_REPR_C, so
# small ints are 31-bit and floats are 30-bit values in the object word; single-
# precision float implementation). Two uses:
#   * plain: the firmware tests run on it as well as on the venv's 64-bit MicroPython
#     (tests/host/test_micropython.py), so arithmetic that only holds with 64-bit
#     objects fails on the host;
#   * frozen: firmware/ and the host port frozen in, the heap measurement's stand-in
#     for the device (tools/bench/bench_heap.py --frozen32).
# Built from a MicroPython source (a checkout or a bare git repository; no submodules)
# into .venv/mp-frozen32, once; make rebuilds only what changed. With an axTLS source
# as well ($AXTLS_SRC or ../.mirror/micropython+axtls/repo) the builds have `tls` and
# `cryptolib` as the ESP8266 does (axTLS, device-sized buffers); without, no ssl.
# Never btree or ffi.
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIR = os.path.join(ROOT, ".venv", "mp-frozen32")
FLAGS = ["CFLAGS_EXTRA=-m32 -DMICROPY_OBJ_REPR=MICROPY_OBJ_REPR_C "
         "-DMICROPY_FLOAT_IMPL=MICROPY_FLOAT_IMPL_FLOAT", "LDFLAGS_EXTRA=-m32",
         "MICROPY_PY_BTREE=0", "MICROPY_PY_FFI=0",
         "MICROPY_USE_READLINE=0", "MPY_CROSS_FLAGS=-march=x86"]
# TLS and AES as the ESP8266 port has them (ports/esp8266/Makefile): axTLS, with its
# record buffers sized like the device's; used when an axTLS source is at hand
# and, as there, axTLS allocates from the MicroPython heap (posix_helpers.c maps malloc
# to gc_alloc): here a small C module provides the functions and -D renames axTLS's calls
AXTLS_FLAGS = ["MICROPY_PY_SSL=1", "MICROPY_SSL_AXTLS=1", "MICROPY_SSL_MBEDTLS=0",
               "AXTLS_DEFS_EXTRA=-Dabort=abort_ -DRT_MAX_PLAIN_LENGTH=1024 -DRT_EXTRA=4096 "
               "-Dmalloc=mp32_axtls_malloc -Dfree=mp32_axtls_free "
               "-Dcalloc=mp32_axtls_calloc -Drealloc=mp32_axtls_realloc"]
AXTLS_GC_C = """// axTLS's allocations from the MicroPython heap, as ports/esp8266/posix_helpers.c
#include <errno.h>
#include "py/gc.h"

void *mp32_axtls_malloc(size_t size) {
    void *p = gc_alloc(size, 0);
    if (p == NULL) {
        errno = ENOMEM;
    }
    return p;
}
void mp32_axtls_free(void *ptr) {
    gc_free(ptr);
}
void *mp32_axtls_calloc(size_t nmemb, size_t size) {
    return mp32_axtls_malloc(nmemb * size);
}
void *mp32_axtls_realloc(void *ptr, size_t size) {
    void *p = gc_realloc(ptr, size, true);
    if (p == NULL) {
        errno = ENOMEM;
    }
    return p;
}
"""
AXTLS_GC_MK = """AXTLS_GC_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(AXTLS_GC_DIR)/axtls_gc.c
"""


def _usermod():
    # the C module directory (USER_C_MODULES) with the axTLS allocator
    d = os.path.join(DIR, "usercmod", "axtls_gc")
    os.makedirs(d, exist_ok=True)
    for fn, text in (("axtls_gc.c", AXTLS_GC_C), ("micropython.mk", AXTLS_GC_MK)):
        p = os.path.join(d, fn)
        if not os.path.exists(p) or open(p).read() != text:
            with open(p, "w") as f:
                f.write(text)
    return os.path.dirname(d)
NO_SSL_FLAGS = ["MICROPY_PY_SSL=0"]


def _find(env, mirror, marker):
    # a source: $env, else a mirror beside the checkout (../.mirror/<mirror>/repo, as the
    # project's tooling keeps them): a tree with `marker`, or a bare git repository
    for p in (os.environ.get(env), os.path.join(os.path.dirname(ROOT), ".mirror", mirror, "repo")):
        if p and (os.path.exists(os.path.join(p, marker)) or os.path.exists(os.path.join(p, "HEAD"))):
            return p
    return None


def default_src():
    # MicroPython: $MICROPYTHON_SRC or ../.mirror/micropython+micropython/repo
    return _find("MICROPYTHON_SRC", "micropython+micropython", os.path.join("py", "mpconfig.h"))


def axtls_src():
    # the axTLS submodule's source: $AXTLS_SRC or ../.mirror/micropython+axtls/repo
    return _find("AXTLS_SRC", "micropython+axtls", os.path.join("ssl", "tls1.c"))


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
    ax = os.path.join(tree, "lib", "axtls")
    if not os.path.exists(os.path.join(ax, "ssl", "tls1.c")) and axtls_src():
        a = axtls_src()
        shutil.rmtree(ax, ignore_errors=True)
        if os.path.exists(os.path.join(a, "ssl", "tls1.c")):
            shutil.copytree(a, ax, ignore=shutil.ignore_patterns(".git"))
        else:
            # the commit MicroPython pins, when the repository has it, else its HEAD
            rev = "HEAD"
            if os.path.exists(os.path.join(src, "HEAD")):
                ls = subprocess.run(["git", "--git-dir", src, "ls-tree", "HEAD", "lib/axtls"],
                                    capture_output=True, text=True).stdout.split()
                if len(ls) >= 3 and subprocess.run(
                        ["git", "--git-dir", a, "cat-file", "-e", ls[2]],
                        capture_output=True).returncode == 0:
                    rev = ls[2]
            os.makedirs(ax)
            arch = subprocess.run(["git", "--git-dir", a, "archive", rev], check=True,
                                  capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", ax], input=arch, check=True)
    return tree


def has_tls(tree):
    return os.path.exists(os.path.join(tree, "lib", "axtls", "ssl", "tls1.c"))


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
    tls = has_tls(tree)
    bdir = "build-" + name + ("-axtls-gc" if tls else "")
    subprocess.run(["make", jobs, "-C", os.path.join(tree, "ports", "unix")] + FLAGS +
                   (AXTLS_FLAGS + ["USER_C_MODULES=" + _usermod()] if tls else NO_SSL_FLAGS) +
                   ["MPY_LIB_DIR=" + mplib, "FROZEN_MANIFEST=" + man, "BUILD=" + bdir,
                    "PROG=" + name], check=True, stdout=subprocess.DEVNULL)
    exe = os.path.join(tree, "ports", "unix", bdir, name)
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
