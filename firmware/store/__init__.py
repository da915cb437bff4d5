# The record store: a power-cut-safe log on raw flash (log.py) of compact records
# (record.py). `from firmware.store.log import Store`; nothing is imported here so that
# `from firmware.store import record` stays light on the ESP8266.
