"""Write firmware/package.json, the `mip` package index of the firmware.

    python -m tools.package [--check]

Install on a board with:  mpremote mip install github:<owner>/<repo>/firmware/package.json
(URLs are relative to package.json, so forks work unchanged.)
"""
import json
import os
import sys

from tools.mpybuild import ROOT, sources

PATH = os.path.join(ROOT, "firmware", "package.json")


def build():
    from firmware import VERSION
    urls = [[rel, os.path.relpath(os.path.join(ROOT, rel), os.path.dirname(PATH))]
            for rel in sources()]
    urls += [[top, "../" + top] for top in ("boot.py", "main.py")]
    return {"urls": urls, "deps": [["umqtt.simple", "latest"], ["ntptime", "latest"]],
            "version": VERSION}


def text():
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


def main(argv):
    t = text()
    if "--check" in argv:
        with open(PATH) as f:
            if f.read() != t:
                print("firmware/package.json is out of date: run python -m tools.package")
                return 1
        return 0
    with open(PATH, "w") as f:
        f.write(t)
    print("wrote", PATH)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
