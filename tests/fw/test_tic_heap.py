# The TIC decoder in a small heap, as on the ESP8266: code out of the heap's way
# (frozen / ROMFS on the device), every corpus capture streamed through a 64-byte
# buffer as the UART delivers it, many frames in a row, no MemoryError, and the heap in
# use does not grow with the number of frames.
#
# Under the MicroPython unix port the decoder's modules are packed into a ROMFS image
# (mpremote romfs build, run through os.system) and mounted with vfs.VfsRom, the way
# the device runs them from flash. The unix port is 64-bit (every pointer and object
# header twice the ESP8266's), the 12.5 KB image itself sits in this heap, and so do
# this test module, its helpers and the runner, all compiled from source: measured,
# 58K is the smallest heap this module passes in; 64K leaves a margin. The decoder's
# own share (instance, module objects, readings) is printed by tools/bench/bench_tic.py.
MICROPYTHON_HEAP = "64K"

import gc
import os
import sys

from tests.fw.util import corpus_path, corpus_files, is_micropython, ROOT

MODULES = ("firmware/__init__.py", "firmware/frame/__init__.py", "firmware/frame/tic.py",
           "firmware/reading/__init__.py", "firmware/reading/tic.py",
           "firmware/reading/tic_labels.py", "firmware/reading/tic_values.py",
           "firmware/reading/tic_build.py")


def _rom():
    # Build and mount a ROMFS image of the decoder's modules (MicroPython only).
    import vfs
    # a folder of its own: other runs (parallel workers, other checkouts on the machine)
    # build the same image at the same time
    import binascii
    tmp = "/tmp/tic_romfs_" + binascii.hexlify(os.urandom(6)).decode()
    src = tmp + "/src"
    cmd = "rm -rf %s && mkdir -p %s/firmware/frame %s/firmware/reading" % (tmp, src, src)
    for m in MODULES:
        cmd += " && cp %s/%s %s/%s" % (ROOT, m, src, m)
    mpremote = ROOT + "/.venv/bin/mpremote"
    cmd += " && %s romfs -o %s/img build %s > /dev/null" % (mpremote, tmp, src)
    assert os.system(cmd) == 0, "could not build the ROMFS image: " + cmd
    with open(tmp + "/img", "rb") as f:
        img = f.read()
    os.system("rm -rf " + tmp)
    vfs.mount(vfs.VfsRom(img), "/tic_rom")
    sys.path.insert(0, "/tic_rom")
    for k in list(sys.modules):
        if k.startswith("firmware"):
            del sys.modules[k]


if is_micropython():
    _rom()

gc.collect()
from firmware.reading.tic import TicDecoder   # noqa: E402


def _stream(path, dec, buf, mv, rounds=1):
    n_read = 0
    last = None
    for _ in range(rounds):
        with open(path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                for r in dec.feed(mv[:n]):
                    n_read += 1
                    last = r
    return n_read, last


def test_every_capture_streams_in_a_small_heap():
    if is_micropython():
        # the decoder really runs from the ROM image
        assert sys.modules["firmware.reading.tic"].__file__.startswith("/tic_rom")
    buf = bytearray(64)
    mv = memoryview(buf)
    seen = {}
    for name in corpus_files("tic"):
        gc.collect()
        dec = TicDecoder("auto", fields=False)
        n, last = _stream(corpus_path(name), dec, buf, mv)
        seen[name] = (n, last["energy_import_wh"] if last else None)
        dec = None
    assert seen["tic/std_tri_tempo_producer_openhab.txt"] == (2, 11604109)
    assert seen["tic/hist_tempo_mono_pyteleinfo.txt"] == (10, 47371481)
    assert seen["tic/std_mono_base_ticdecodecpp.bin"] == (12, 11887650)
    assert seen["tic/hist_tri_base_rxerrors_ticdecodecpp.bin"][0] >= 25


def test_heap_in_use_does_not_grow_with_frames():
    # three-phase standard frames (the largest), 2 rounds then 20 more: what stays
    # allocated after a collection is the same
    buf = bytearray(64)
    mv = memoryview(buf)
    path = corpus_path("tic/std_tri_tempo_producer_openhab.txt")
    dec = TicDecoder("standard", fields=False)
    _stream(path, dec, buf, mv, 2)
    if not is_micropython():
        n, last = _stream(path, dec, buf, mv, 5)
        assert n >= 10 and last["current_a"] == [1, 2, 1]
        return
    last = None
    gc.collect()
    a = gc.mem_alloc()
    n, last = _stream(path, dec, buf, mv, 20)
    assert n >= 40 and last["current_a"] == [1, 2, 1]
    last = None
    gc.collect()
    b = gc.mem_alloc()
    assert b - a <= 256, (a, b)
