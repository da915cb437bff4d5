# Linky / P1 supercapacitor dongle — host tooling.
#   make demo    replay real captures through the firmware to a local broker + collector
#   make test    every test (CPython + MicroPython unix port + browser + KiCad + ngspice)
#   make bench   every benchmark, printing measured figures
#   make mpy     cross-compile firmware/ with mpy-cross, print sizes
#   make variants  build the esp8266/esp32c3 variants of the unix port (tools/mp32.py)
#   make hardware  ERC/DRC/netlist checks and fab outputs for every board
#   make flash PORT=/dev/ttyUSB0 CHIP=esp8266|esp32c3|esp32c6 FIRMWARE=micropython.bin
#                flash stock MicroPython + deploy the firmware (make deploy: firmware only)
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
MP := $(VENV)/bin/micropython
STAMP := $(VENV)/.installed
CHIP ?= esp8266
PORT ?= /dev/ttyUSB0
export MICROPYPATH := .frozen:$(CURDIR):$(CURDIR)/.mplib:$(CURDIR)/tools/compat/micropython

.PHONY: setup system test test-fast demo bench mpy romfs hardware flash deploy clean variants

$(STAMP): requirements-dev.txt tools/mpylib.py
	@$(PY) -m venv $(VENV) || { echo "python3 -m venv failed: run 'sudo sh tools/setup_system.sh' (installs python3-venv)"; exit 1; }
	$(VPY) -m pip install -q -r requirements-dev.txt
	$(VPY) tools/mpylib.py .mplib
	@touch $(STAMP)

setup: system $(STAMP)

system:
	@sh tools/setup_system.sh

test: setup
	$(VPY) -m pytest -n 2 --dist loadfile --timeout 900 -q tests

test-fast: setup
	$(VPY) -m pytest -n 2 --dist loadfile --timeout 900 -q tests -m "not slow"

demo: setup
	$(VPY) -m tools.demo

bench: setup
	$(VPY) -m tools.bench

variants: setup
	$(VPY) -m tools.mp32 --show

mpy: setup
	$(VPY) -m tools.mpybuild --chip $(CHIP)

romfs: setup
	$(VPY) -m tools.mpybuild --chip $(CHIP) --romfs

hardware: system
	python3 hardware/check.py

flash: setup
	$(VPY) -m tools.flash --port $(PORT) --chip $(CHIP) $(if $(FIRMWARE),--firmware $(FIRMWARE))

deploy: setup
	$(VPY) -m tools.flash --port $(PORT) --chip $(CHIP) --deploy-only

clean:
	rm -rf build tests/artifacts .pytest_cache
