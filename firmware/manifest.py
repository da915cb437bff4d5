# Freeze the dongle firmware into a MicroPython build (micropython-lib style):
#   make -C ports/esp8266 BOARD=ESP8266_GENERIC FROZEN_MANIFEST=/path/to/firmware/manifest.py
# Frozen bytecode runs from flash and costs no heap: on the ESP8266 (~38 KB heap) this
# is the way to install (see README, "Heap budget").
#
# The build tool (tools/makemanifest.py) runs this file with metadata(), include(),
# require(), package() and module() defined; imported as a plain module (firmware.manifest)
# it does nothing.
if "package" in globals():
    metadata(description="Linky TIC / DSMR P1 supercapacitor dongle firmware",
             version="0.1.0", license="MIT")
    include("$(PORT_DIR)/boards/manifest.py")
    require("umqtt.simple")
    require("requests")
    require("ntptime")
    # opt=0 keeps assert statements: umqtt.simple relies on them.
    package("firmware", base_path="..", opt=0)
    module("boot.py", base_path="..")
    module("main.py", base_path="..")
