"""Install the micropython-lib packages the firmware uses into .mplib/ for the host.

Stock ESP8266/ESP32 firmware freezes umqtt.simple and requests; the MicroPython unix
port freezes requests but not umqtt. The registry only has old sdists of
micropython-umqtt.simple without setup.py, which pip refuses to install, so we ask
pip where the sdist is (pip resolves it and names it before giving up), fetch that
archive, and unpack just the module files. Nothing third-party is kept in the repo.
"""
import io
import os
import re
import ssl
import subprocess
import sys
import tarfile
import urllib.request

PACKAGES = {
    # distribution name -> files to take from the sdist (path inside, target path)
    "micropython-umqtt.simple": [("umqtt/simple.py", "umqtt/simple.py")],
    "micropython-umqtt.robust": [("umqtt/robust.py", "umqtt/robust.py")],
}


def sdist_url(dist):
    out = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "-d", os.devnull if False else "/tmp/mpylib-dl", dist],
        capture_output=True, text=True)
    text = out.stdout + out.stderr
    m = re.search(r"from (\S+\.tar\.gz)", text)
    if m:
        return m.group(1).split("#")[0]
    # pip may have kept the archive when it could build it
    for name in os.listdir("/tmp/mpylib-dl") if os.path.isdir("/tmp/mpylib-dl") else []:
        if name.startswith(dist.replace(".", "-")) or name.startswith(dist):
            return "file:///tmp/mpylib-dl/" + name
    raise SystemExit("mpylib: pip did not find %s:\n%s" % (dist, text[-2000:]))


def fetch(url):
    if url.startswith("file://"):
        with open(url[7:], "rb") as f:
            return f.read()
    cafile = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    ctx = ssl.create_default_context(cafile=cafile if os.path.exists(cafile) else None)
    with urllib.request.urlopen(url, context=ctx, timeout=120) as r:
        return r.read()


def install(target):
    done = True
    for dist, files in PACKAGES.items():
        if all(os.path.exists(os.path.join(target, dst)) for _, dst in files):
            continue
        done = False
        url = sdist_url(dist)
        data = fetch(url)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name}
            for src, dst in files:
                m = members.get(src)
                if m is None:
                    raise SystemExit("mpylib: %s has no %s" % (dist, src))
                path = os.path.join(target, dst)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(tar.extractfile(m).read())
                print("mpylib: installed", dst, "from", dist)
    init = os.path.join(target, "umqtt", "__init__.py")
    if not os.path.exists(init):
        open(init, "w").close()
    if done:
        print("mpylib: up to date in", target)


if __name__ == "__main__":
    install(sys.argv[1] if len(sys.argv) > 1 else ".mplib")
