# CPython stand-in for MicroPython's ubinascii (umqtt.simple imports it).
from binascii import *  # noqa: F401,F403
