# Freeze the dongle firmware into a MicroPython build (micropython-lib style):
#   make -C ports/esp8266 BOARD=ESP8266_GENERIC FROZEN_MANIFEST=/path/to/firmware/manifest.py
# Frozen bytecode runs from flash and costs no heap: on the ESP8266 (~38 KB heap) this
# or a ROMFS image (`make romfs`) is the recommended way to install.
metadata(description="Linky TIC / DSMR P1 supercapacitor dongle firmware", version="0.1.0",
         license="MIT")

include("$(PORT_DIR)/boards/manifest.py")
require("umqtt.simple")
require("requests")
require("ntptime")
# opt=0 keeps assert statements: umqtt.simple relies on them.
package("firmware", base_path="..", opt=0)
module("boot.py", base_path="..")
module("main.py", base_path="..")
