# The MicroPython unix port built once per chip, each variant GENERATED from that chip's
# own port configuration in the MicroPython source, so the firmware meets on the host
# what the stock image gives it on the chip:
#   * 32-bit (gcc -m32), the port's object representation (ESP8266: MICROPY_OBJ_REPR_C,
#     31-bit small ints and 30-bit floats in the object word; ESP32: REPR_A), float and
#     long-int implementation, ROM feature level and error reporting;
#   * every MICROPY_PY_* / MICROPY_COMP_* / MICROPY_OPT_* switch that the port's
#     mpconfigport.h and the stock board (ESP8266_GENERIC FLASH_2M_ROMFS variant,
#     ESP32_GENERIC_C3 with its sdkconfig) leave off is off here too: the values are
#     read by running the C preprocessor over py/mpconfig.h with the port's headers
#     (chip_config()), never from a hand-kept list; modules the stock image lacks
#     (termios, ffi, thread on the ESP8266, ...) are left out;
#   * the heap: the unix port's default heap is set to what the chip's port gives the
#     MicroPython heap (ESP8266: the static heap[] in ports/esp8266/main.c; ESP32-C3:
#     MICROPY_GC_INITIAL_HEAP_SIZE, the first of its split heap).
# What the host keeps although the chip differs, each for a reason (HOST_KEEPS): the
# unix socket/select modules stand in for the chip's lwIP ones, and the native emitter
# is the host's (x86) instead of Xtensa/RISC-V, so @viper code runs as on the chip.
# TLS: axTLS allocating from the MicroPython heap as the ESP8266 port does
# (posix_helpers.c); the C3's image uses mbedTLS, whose source the tarball does not
# carry, so its variant has axTLS's `tls`/`cryptolib` as a stand-in (same Python API).
#
# Source (source()): $MICROPYTHON_SRC (a tree or a bare git repository), else
# ../shared/toolchains/micropython-1.28.0.tar.gz unpacked into build/, else a git clone
# of v1.28.0 into build/ when the network allows. Binaries are cached in build/mpvariants/
# keyed by a hash of the source and the generated configuration: a rerun is instant.
#
#   python -m tools.mp32 [--chip esp8266|esp32c3 ...] [--show]
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
DIR = os.path.join(BUILD, "mpvariants")
VERSION = "v1.28.0"
TARBALL = os.path.join(os.path.dirname(ROOT), "shared", "toolchains",
                       "micropython-1.28.0.tar.gz")
GIT_URL = "https://github.com/micropython/micropython"
CHIPS = ("esp8266", "esp32c3")


def run_env():
    """The environment a tool runs a variant in from the repository root: the firmware
    and tools on MICROPYPATH (.frozen first: the image's own frozen modules such as
    `ssl`), then the host's micropython-lib modules and compat shims."""
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([".frozen", ROOT, os.path.join(ROOT, ".mplib"),
                                   os.path.join(ROOT, "tools", "compat", "micropython")])
    return env

# Where each chip's configuration lives in the source. esp8266: the stock ESP8266_GENERIC
# image with ROMFS (FLASH_2M_ROMFS, the install path of this project); esp32c3: the stock
# ESP32_GENERIC_C3 (no ROMFS variant exists for it in v1.28).
CHIP_SRC = {
    "esp8266": {"port": "esp8266", "board": "ESP8266_GENERIC",
                "mk": ["ports/esp8266/Makefile",
                       "ports/esp8266/boards/ESP8266_GENERIC/mpconfigvariant_FLASH_2M_ROMFS.mk"],
                "heap_c": ("ports/esp8266/main.c", r"static char heap\[([0-9* ]+)\];")},
    "esp32c3": {"port": "esp32", "board": "ESP32_GENERIC_C3",
                "cmake": "ports/esp32/boards/ESP32_GENERIC_C3/mpconfigboard.cmake",
                "mk": ["ports/esp32/esp32_common.cmake"],
                "heap_c": None},
}
# ESP-IDF targets that are RISC-V (esp-idf components/soc/<target>/include/soc/soc_caps.h;
# the port's headers branch on CONFIG_IDF_TARGET_ARCH_RISCV)
RISCV_TARGETS = ("esp32c2", "esp32c3", "esp32c5", "esp32c6", "esp32h2", "esp32p4")
FAMILIES = re.compile(r"^MICROPY_(PY|COMP|OPT)_\w+$")
# Copied from the chip whatever their value (not on/off switches).
COPY = ("MICROPY_OBJ_REPR", "MICROPY_FLOAT_IMPL", "MICROPY_LONGINT_IMPL",
        "MICROPY_CONFIG_ROM_LEVEL", "MICROPY_ERROR_REPORTING")
# The unix port keeps these although the chip's config has them off or undefined:
# the host's replacement for a chip facility the firmware reaches the same way.
HOST_KEEPS = {
    # the chip's `socket`/`select` come from lwIP (MICROPY_PY_LWIP); the unix port's
    # modsocket/select are the host's stand-in with the same API
    "MICROPY_PY_SOCKET": "lwIP socket on the chip",
    "MICROPY_PY_SELECT_POSIX_OPTIMISATIONS": "unix select over file descriptors",
    "MICROPY_PY_SELECT_SELECT": "unix select",
    # the unix port's own plumbing (stdio, sys.path, argv, os on a POSIX file system)
    "MICROPY_PY_SYS_PATH_ARGV_DEFAULTS": "unix main.c sets sys.path/argv itself",
    "MICROPY_PY_OS_INCLUDEFILE": "unix os module",
    "MICROPY_PY_TIME_INCLUDEFILE": "unix time module",
    "MICROPY_PY_MACHINE_INCLUDEFILE": "unix machine module",
    # the tests' host plumbing (capture folder from the environment, a shell to build a
    # ROMFS image); the firmware never calls them (tests/host/test_chip_variants.py)
    "MICROPY_PY_OS_GETENV_PUTENV_UNSETENV": "test harness: environment variables",
    "MICROPY_PY_OS_SYSTEM": "test harness: a shell",
    # how the unix port's pthreads implement the GC lock (ESP32: FreeRTOS's own)
    "MICROPY_PY_THREAD_RECURSIVE_MUTEX": "unix thread layer",
    "MICROPY_PY_SSL": "TLS as the chip has it (axTLS, see above)",
    "MICROPY_PY_CRYPTOLIB": "AES as the chip has it (axTLS)",
}
# Makefile-level switches of the unix port (ports/unix/mpconfigport.mk): each is the
# chip's value of the same MICROPY_* macro, except the ones the source cannot build.
MAKE_SWITCHES = ("MICROPY_PY_THREAD", "MICROPY_PY_TERMIOS", "MICROPY_PY_FFI",
                 "MICROPY_PY_JNI", "MICROPY_VFS_FAT", "MICROPY_VFS_LFS1", "MICROPY_VFS_LFS2")
NO_SOURCE = {"MICROPY_PY_BTREE": "lib/berkeley-db-1.xx not in the source tarball"}


class Missing(Exception):
    """A source, compiler or tool the chip variants need is not here."""


# -- the MicroPython source ------------------------------------------------------------
def _is_tree(p):
    return p and os.path.exists(os.path.join(p, "py", "mpconfig.h"))


def _is_bare(p):
    return p and os.path.exists(os.path.join(p, "HEAD")) and os.path.isdir(os.path.join(p, "objects"))


def source(fetch=True):
    """-> path of a MicroPython source tree (v1.28.0 unless $MICROPYTHON_SRC says
    otherwise). Raises Missing when there is none."""
    env = os.environ.get("MICROPYTHON_SRC")
    if env:
        if _is_tree(env):
            return env
        if _is_bare(env):
            return _from_bare(env)
        raise Missing("MICROPYTHON_SRC=%s is not a MicroPython tree or bare repository" % env)
    unpacked = os.path.join(BUILD, "micropython-1.28.0")
    if _is_tree(unpacked):
        return unpacked
    if os.path.exists(TARBALL):
        # test workers (pytest-xdist) ask at the same time: one unpacks, the others
        # wait on the lock and then find the tree
        import fcntl
        os.makedirs(BUILD, exist_ok=True)
        with open(os.path.join(BUILD, ".unpack.lock"), "w") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            try:
                if _is_tree(unpacked):
                    return unpacked
                tmp = unpacked + ".part"
                shutil.rmtree(tmp, ignore_errors=True)
                os.makedirs(tmp)
                subprocess.run(["tar", "xzf", TARBALL, "-C", tmp], check=True)
                inner = os.path.join(tmp, "micropython-1.28.0")
                os.rename(inner if os.path.isdir(inner) else tmp, unpacked)
                shutil.rmtree(tmp, ignore_errors=True)
                return unpacked
            finally:
                fcntl.flock(lk, fcntl.LOCK_UN)
    if fetch and shutil.which("git"):
        clone = os.path.join(BUILD, "micropython-git")
        if not _is_tree(clone):
            shutil.rmtree(clone, ignore_errors=True)
            r = subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", VERSION,
                                GIT_URL, clone], capture_output=True, timeout=600)
            if r.returncode == 0:
                subprocess.run(["git", "-C", clone, "submodule", "update", "--init", "--depth",
                                "1", "lib/axtls"], capture_output=True, timeout=600)
        if _is_tree(clone):
            return clone
    raise Missing("no MicroPython source: set MICROPYTHON_SRC, or put %s beside the "
                  "checkout, or allow a git clone of %s %s" % (
                      os.path.relpath(TARBALL, os.path.dirname(ROOT)), GIT_URL, VERSION))


def _from_bare(repo):
    tree = os.path.join(BUILD, "micropython-" + hashlib.sha1(repo.encode()).hexdigest()[:8])
    if not _is_tree(tree):
        os.makedirs(tree, exist_ok=True)
        arch = subprocess.run(["git", "--git-dir", repo, "archive", "HEAD"], check=True,
                              capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=arch, check=True)
    return tree


def default_src():
    # None when no source is at hand (callers that only report)
    try:
        return source(fetch=False)
    except Missing:
        return None


def gcc_m32():
    # can this machine build 32-bit programs (Debian: gcc-multilib)?
    try:
        r = subprocess.run(["gcc", "-m32", "-x", "c", "-", "-o", os.devnull],
                           input=b"int main(void){return 0;}", capture_output=True)
        return r.returncode == 0
    except OSError:
        return False


def available():
    # -> None when the chip variants can be built here, else why not
    try:
        source()
    except Missing as e:
        return str(e)
    for tool in ("make", "gcc"):
        if not shutil.which(tool):
            return "no %s" % tool
    if not gcc_m32():
        return "no gcc -m32 (Debian: gcc-multilib)"
    return None


# -- reading a port's configuration ----------------------------------------------------
def _mk_defines(src, files):
    # `MICROPY_X = v` / `MICROPY_X ?= v` assignments and `CFLAGS += -DNAME[=v]` of a port's
    # Makefile and board variant .mk -> {name: value}
    out = {}
    for rel in files:
        with open(os.path.join(src, rel)) as f:
            for line in f:
                line = line.split("#", 1)[0]
                m = re.match(r"\s*(MICROPY_\w+)\s*[?:]?=\s*(\S+)\s*$", line)
                if m:
                    out.setdefault(m.group(1), m.group(2))
                if re.match(r"\s*CFLAGS\s*\+?=", line):
                    for n, v in re.findall(r"-D(\w+)(?:=(\S+))?", line):
                        out[n] = v or "1"
    return out


def _sdkconfig_defines(src, cmake_rel):
    # an ESP32 board: IDF_TARGET and the sdkconfig fragments its mpconfigboard.cmake lists
    with open(os.path.join(src, cmake_rel)) as f:
        text = f.read()
    target = re.search(r"set\(IDF_TARGET\s+(\w+)\)", text).group(1)
    out = {"CONFIG_IDF_TARGET_" + target.upper(): "1",
           "CONFIG_IDF_TARGET_ARCH_RISCV" if target in RISCV_TARGETS
           else "CONFIG_IDF_TARGET_ARCH_XTENSA": "1"}
    m = re.search(r"set\(SDKCONFIG_DEFAULTS(.*?)\)", text, re.S)
    port_dir = os.path.join(src, "ports", "esp32")
    for frag in (m.group(1).split() if m else ()):
        p = os.path.join(port_dir, frag)
        if not os.path.exists(p):
            continue
        with open(p) as f:
            for line in f:
                mm = re.match(r"(CONFIG_\w+)=(.*)$", line.strip())
                if not mm:
                    continue
                v = mm.group(2)
                if v == "y":
                    out[mm.group(1)] = "1"
                elif re.match(r"^(0x[0-9a-fA-F]+|[0-9]+)$", v):
                    out[mm.group(1)] = v
    return out, target


def _cpp(src, incs, defines, text, stubs):
    # run the C preprocessor over `text`; a header of the chip's SDK that the host lacks
    # becomes an empty stub (only macros matter here), found by retrying
    probe = os.path.join(stubs, "probe.c")
    with open(probe, "w") as f:
        f.write(text)
    args = ["gcc", "-m32", "-E", "-dM" if text.startswith("/*dM*/") else "-P"]
    args += ["-I" + os.path.join(src, i) for i in incs] + ["-I" + src, "-I" + stubs]
    args += ["-D%s=%s" % kv for kv in sorted(defines.items())] + [probe]
    for _ in range(200):
        r = subprocess.run(args, capture_output=True, text=True)
        miss = re.findall(r"fatal error: ([^:]+): No such file", r.stderr)
        if r.returncode == 0 or not miss:
            return r
        p = os.path.join(stubs, miss[0])
        os.makedirs(os.path.dirname(p), exist_ok=True)
        open(p, "w").close()
    return r


def _evaluate(src, incs, defines, stubs):
    # -> {macro: "0" | "1" | value}: every MICROPY_PY/COMP/OPT switch the configuration
    # defines, evaluated as the C preprocessor does (#if), plus the COPY values
    r = _cpp(src, incs, defines, "/*dM*/\n#include \"py/mpconfig.h\"\n", stubs)
    if r.returncode:
        raise Missing("preprocessing %s failed:\n%s" % (incs, r.stderr[-2000:]))
    names = sorted(set(re.findall(r"^#define (MICROPY_(?:PY|COMP|OPT)_\w+)[ \n]", r.stdout + "\n",
                                  re.M)))
    body = {n: v for n, v in re.findall(r"^#define (MICROPY_\w+) (.*)$", r.stdout, re.M)}
    # switches only: a body that is a string, pointer, function or type is not one
    names = [n for n in names if _is_switch(body.get(n, "1"))]
    return _values(src, incs, defines, stubs, names), body


def _is_switch(body):
    # an on/off switch's body is a number or an expression of other configuration macros;
    # anything else (a string, a function, a symbol such as esp32_help_text) is not one
    if re.search(r"[\"'*{;]|&(?!&)", body):
        return False
    return all(w.startswith(("MICROPY_", "CONFIG_")) or w == "defined"
               for w in re.findall(r"\b[A-Za-z_]\w*", body))


def _values(src, incs, defines, stubs, names):
    vals = {}
    todo = list(names)
    while todo:
        text = "#include \"py/mpconfig.h\"\n"
        for n in todo:
            # V_NAME is one token: the preprocessor does not expand it
            text += "#if %s\nV_%s 1\n#else\nV_%s 0\n#endif\n" % (n, n, n)
        r = _cpp(src, incs, defines, text, stubs)
        if r.returncode == 0:
            vals.update(re.findall(r"^V_(\w+) ([01])$", r.stdout, re.M))
            return vals
        # an #if the preprocessor cannot evaluate: not an on/off switch, leave it out
        bad = set()
        for ln in re.findall(r"probe\.c:(\d+):\d+: ", r.stderr):
            k = (int(ln) - 2) // 5
            if 0 <= k < len(todo):
                bad.add(todo[k])
        if not bad:
            raise Missing("cannot evaluate the configuration:\n" + r.stderr[-2000:])
        todo = [n for n in todo if n not in bad]
    return vals


def chip_config(chip, src=None):
    """-> dict: the chip's evaluated switches ("values"), the copied settings, the
    defines its build passes, its heap and the unix port's switches to turn off."""
    src = src or source()
    c = CHIP_SRC[chip]
    port = os.path.join("ports", c["port"])
    stubs = os.path.join(DIR, "stubs-" + chip)
    shutil.rmtree(stubs, ignore_errors=True)
    os.makedirs(stubs)
    if chip == "esp8266":
        defines = _mk_defines(src, c["mk"])
        target = "esp8266"
    else:
        defines, target = _sdkconfig_defines(src, c["cmake"])
        # target_compile_definitions(... MICROPY_VFS_FAT=1 ...) of the port's cmake
        for rel in c["mk"]:
            with open(os.path.join(src, rel)) as f:
                defines.update(re.findall(r"^\s*(MICROPY_\w+)=([0-9]+)\s*$", f.read(), re.M))
    defines = {k: v for k, v in defines.items() if k.startswith(("MICROPY_", "CONFIG_"))}
    chip_vals, chip_body = _evaluate(src, [port, os.path.join(port, "boards", c["board"])],
                                     defines, stubs)
    # the chip's makefile switches are preprocessor defines there too
    for k, v in defines.items():
        if k.startswith("MICROPY_") and re.match(r"^[0-9]+$", v):
            chip_vals[k] = "1" if int(v) else "0"
    ustubs = os.path.join(DIR, "stubs-unix")
    shutil.rmtree(ustubs, ignore_errors=True)
    os.makedirs(ustubs)
    unix_vals, _ = _evaluate(src, ["ports/unix", "ports/unix/variants/standard"], {}, ustubs)
    names = set(chip_vals) | set(unix_vals)
    off = sorted(n for n in names if FAMILIES.match(n) and chip_vals.get(n, "0") == "0"
                 and n not in HOST_KEEPS and n not in MAKE_SWITCHES)
    copy = {n: chip_body[n] for n in COPY if n in chip_body}
    heap = _heap(src, chip, chip_body)
    mk = {n: ("1" if chip_vals.get(n, "0") != "0" else "0") for n in MAKE_SWITCHES}
    mk.update({n: "0" for n in NO_SOURCE})
    return {"chip": chip, "target": target, "off": off, "copy": copy, "heap": heap,
            "make": mk, "chip_on": sorted(n for n, v in chip_vals.items() if v != "0")}


def _heap(src, chip, body):
    c = CHIP_SRC[chip]
    if c["heap_c"]:
        rel, pat = c["heap_c"]
        with open(os.path.join(src, rel)) as f:
            m = re.search(pat, f.read())
        n = 1
        for part in m.group(1).split("*"):
            n *= int(part)
        return n
    # ESP32 family: the first heap of the split heap (ports/esp32/mpconfigport.h
    # MICROPY_GC_INITIAL_HEAP_SIZE, 64 KB on the C3); it grows from the IDF heap later
    m = re.match(r"\(?\s*(\d+)\s*\*\s*(\d+)\s*\)?", body.get("MICROPY_GC_INITIAL_HEAP_SIZE", ""))
    return int(m.group(1)) * int(m.group(2)) if m else 64 * 1024


def config_header(cfg):
    # the MP_CONFIGFILE of the variant: the unix port's configuration, then the chip's
    lines = ["// generated by tools/mp32.py from the %s port's configuration" % cfg["chip"],
             "#include <mpconfigport.h>"]
    for n, v in sorted(cfg["copy"].items()):
        lines += ["#undef %s" % n, "#define %s %s" % (n, v)]
    for n in cfg["off"]:
        lines += ["#undef %s" % n, "#define %s (0)" % n]
    return "\n".join(lines) + "\n"


# -- building ----------------------------------------------------------------------------
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
# axTLS as the ESP8266 port builds it (ports/esp8266/Makefile): record buffers sized like
# the device's; -D renames its allocator calls to the MicroPython heap (above)
AXTLS_FLAGS = ["MICROPY_PY_SSL=1", "MICROPY_SSL_AXTLS=1", "MICROPY_SSL_MBEDTLS=0",
               "AXTLS_DEFS_EXTRA=-Dabort=abort_ -DRT_MAX_PLAIN_LENGTH=1024 -DRT_EXTRA=4096 "
               "-Dmalloc=mp32_axtls_malloc -Dfree=mp32_axtls_free "
               "-Dcalloc=mp32_axtls_calloc -Drealloc=mp32_axtls_realloc"]


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)


def has_tls_source(src):
    return os.path.exists(os.path.join(src, "lib", "axtls", "ssl", "tls1.c"))


def _src_id(src):
    # identifies the source: its version header and the port headers the config reads
    h = hashlib.sha256()
    for rel in ("py/mpconfig.h", "py/mpversion.h",
                "ports/unix/mpconfigport.h", "ports/unix/main.c"):
        p = os.path.join(src, rel)
        if os.path.exists(p):
            with open(p, "rb") as f:
                h.update(f.read())
    h.update(os.path.abspath(src).encode())
    # and this generator: a change to how the configuration is read rebuilds
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    return h.hexdigest()[:16]


def build(chip, manifest_lines=(), name=None, src=None):
    """-> path of the chip variant's interpreter, built (or found in the cache).
    manifest_lines: what to freeze (manifest.py statements). One build at a time per
    machine (test workers share the tree)."""
    import fcntl
    src = src or source()
    os.makedirs(DIR, exist_ok=True)
    with open(os.path.join(DIR, ".lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            return _build(src, chip, manifest_lines, name or "micropython-" + chip)
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)


def _manifest_hash(lines):
    # the manifest's text and the files it freezes (package/module paths)
    h = hashlib.sha256("\n".join(lines).encode())
    for line in lines:
        m = re.match(r"""(package|module)\((['"])(.+?)\2, base_path=(['"])(.+?)\4""", line)
        if not m:
            continue
        p = os.path.join(m.group(5), m.group(3))
        files = [p] if os.path.isfile(p) else sorted(
            os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs if f.endswith(".py"))
        for fn in files:
            with open(fn, "rb") as f:
                h.update(fn.encode() + f.read())
    return h.hexdigest()[:16]


def _build(src, chip, manifest_lines, name):
    cfg_path = os.path.join(DIR, chip + ".config.json")
    sid = _src_id(src)
    cfg = None
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            cached = json.load(f)
        if cached.get("src") == sid:
            cfg = cached["cfg"]
    if cfg is None:
        cfg = chip_config(chip, src)
        _write(cfg_path, json.dumps({"src": sid, "cfg": cfg}, indent=1))
    header = config_header(cfg)
    tls = has_tls_source(src)
    key = hashlib.sha256((sid + header + json.dumps(cfg, sort_keys=True) + str(tls) +
                          "\n".join(AXTLS_FLAGS) + AXTLS_GC_C).encode()).hexdigest()[:12]
    mkey = _manifest_hash(manifest_lines) if manifest_lines else "plain"
    out_dir = os.path.join(DIR, "%s-%s" % (chip, key))
    exe = os.path.join(out_dir, "%s-%s" % (name, mkey))
    if os.path.exists(exe):
        return exe
    tree = os.path.join(DIR, "tree")   # a private copy: the default heap is patched in
    if not os.path.exists(os.path.join(tree, ".src-" + sid)):
        shutil.rmtree(tree, ignore_errors=True)
        shutil.copytree(src, tree, ignore=shutil.ignore_patterns(".git", "build*"))
        open(os.path.join(tree, ".src-" + sid), "w").close()
    # the heap the chip leaves MicroPython, as the unix port's default (-X heapsize
    # still overrides): ports/unix/main.c `long heap_size = ...;`
    main_c = os.path.join(tree, "ports", "unix", "main.c")
    with open(main_c) as f:
        text = f.read()
    text2, n = re.subn(r"^long heap_size = .*;$",
                       "#ifdef MP32_HEAP_SIZE\nlong heap_size = MP32_HEAP_SIZE;\n#else\n"
                       "long heap_size = 1024 * 1024 * (sizeof(mp_uint_t) / 4);\n#endif",
                       text, flags=re.M)
    if n == 1:
        with open(main_c, "w") as f:
            f.write(text2)
    elif "MP32_HEAP_SIZE" not in text:
        raise Missing("ports/unix/main.c: no `long heap_size = ...;` line to set the heap")
    hdr = os.path.join(out_dir, "mpconfig_%s.h" % chip)
    _write(hdr, header)
    usermod = os.path.join(DIR, "usercmod")
    _write(os.path.join(usermod, "axtls_gc", "axtls_gc.c"), AXTLS_GC_C)
    _write(os.path.join(usermod, "axtls_gc", "micropython.mk"), AXTLS_GC_MK)
    mplib = os.path.join(DIR, "no-micropython-lib")   # the manifest step checks it exists
    _write(os.path.join(mplib, "README.md"), "")
    man = os.path.join(out_dir, "manifest-%s.py" % mkey)
    _write(man, "\n".join(manifest_lines) + "\n")
    jobs = "-j%d" % max(1, min(4, os.cpu_count() or 1))
    subprocess.run(["make", jobs, "-C", os.path.join(tree, "mpy-cross")], check=True,
                   stdout=subprocess.DEVNULL)
    bdir = os.path.join(out_dir, "build-" + mkey)
    cflags = "-m32 -DMP_CONFIGFILE='<%s>' -DMP32_HEAP_SIZE=%d" % (hdr, cfg["heap"])
    args = ["make", jobs, "-C", os.path.join(tree, "ports", "unix"),
            "CFLAGS_EXTRA=" + cflags, "LDFLAGS_EXTRA=-m32", "MICROPY_USE_READLINE=0",
            "MPY_CROSS_FLAGS=-march=x86", "MICROPY_STANDALONE=0",
            "MPY_LIB_DIR=" + mplib, "FROZEN_MANIFEST=" + man, "BUILD=" + bdir, "PROG=" + name]
    args += ["%s=%s" % kv for kv in sorted(cfg["make"].items())]
    args += (AXTLS_FLAGS + ["USER_C_MODULES=" + usermod]) if tls else ["MICROPY_PY_SSL=0"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError("building the %s variant failed:\n%s" % (chip, (r.stdout + r.stderr)[-4000:]))
    built = os.path.join(bdir, name)
    out = subprocess.run([built, "-c", "import sys; print(sys.maxsize)"], capture_output=True,
                         text=True, check=True).stdout.strip()
    if out != "2147483647":
        raise RuntimeError("%s is not a 32-bit build (%s)" % (built, out))
    shutil.copy(built, exe + ".tmp")
    os.replace(exe + ".tmp", exe)
    return exe


def plain(chip="esp8266", src=None):
    return build(chip, src=src)


def heap(chip):
    # the chip's MicroPython heap in bytes, as the variant was generated
    cfg_path = os.path.join(DIR, chip + ".config.json")
    if not os.path.exists(cfg_path):
        build(chip)
    with open(cfg_path) as f:
        return json.load(f)["cfg"]["heap"]


def has_tls(exe):
    r = subprocess.run([exe, "-c", "import tls"], capture_output=True)
    return r.returncode == 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="build the chip variants of the unix port")
    ap.add_argument("--chip", action="append", choices=CHIPS)
    ap.add_argument("--show", action="store_true", help="print the generated configuration")
    a = ap.parse_args(argv)
    for chip in a.chip or CHIPS:
        try:
            exe = build(chip)
        except Missing as e:
            print("%s: not built: %s" % (chip, e), file=sys.stderr)
            return 2
        cfg = json.load(open(os.path.join(DIR, chip + ".config.json")))["cfg"]
        print("%s: %s (heap %d bytes, %d switches off)" % (chip, os.path.relpath(exe, ROOT),
                                                          cfg["heap"], len(cfg["off"])))
        if a.show:
            print(config_header(cfg))
            print("make:", cfg["make"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
