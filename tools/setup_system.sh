#!/bin/sh
# Installs the Debian 12 system packages the tests need, where they are missing:
# mosquitto (real MQTT broker), chromium (portal browser tests), ngspice (circuit
# simulation), gcc-multilib (32-bit MicroPython for the ESP8266 heap test), postgresql
# (the fleet store's tests start their own server with its initdb/pg_ctl), KiCad 9 from
# bookworm-backports (plain bookworm only has 6.x) with its symbol and footprint libraries.
# Needs root; without it, prints what is missing and leaves the tests that need
# those tools to say so.
set -e
need=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need="$need mosquitto"
command -v chromium >/dev/null 2>&1 || need="$need chromium chromium-driver"
command -v ngspice >/dev/null 2>&1 || need="$need ngspice"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
# Debian keeps the server binaries off PATH, in /usr/lib/postgresql/<major>/bin
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need="$need postgresql"
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need="$need python3-venv"
# 32-bit builds of MicroPython (the ESP8266 heap test, tools/bench/bench_heap.py --frozen32)
echo 'int main(void){return 0;}' | gcc -m32 -x c - -o /dev/null >/dev/null 2>&1 || need="$need gcc-multilib"
kicad_ok=0
if command -v kicad-cli >/dev/null 2>&1; then
  case "$(kicad-cli version 2>/dev/null)" in 9.*) kicad_ok=1 ;; esac
fi
# KiCad's official symbol and footprint libraries (hardware/ uses them; not the 4.7 GB 3D models)
[ -f /usr/share/kicad/symbols/Device.kicad_sym ] && [ -d /usr/share/kicad/footprints/Resistor_SMD.pretty ] || kicad_ok=0
if [ -z "$need" ] && [ $kicad_ok = 1 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "setup_system: not root; missing:$need $( [ $kicad_ok = 1 ] || echo kicad9 )" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if [ $kicad_ok = 0 ] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list.d/ /etc/apt/sources.list; then
  # Same mirror as the Debian entry already configured (deb822 format).
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
  [ -n "$uri" ] || uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  cat > /etc/apt/sources.list.d/backports.sources <<EOS
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
fi
apt-get update -q >/dev/null
if [ -n "$need" ]; then
  apt-get install -y -q --no-install-recommends $need >/dev/null
fi
if [ $kicad_ok = 0 ]; then
  apt-get install -y -q -t bookworm-backports --no-install-recommends kicad kicad-symbols kicad-footprints >/dev/null
fi
