# CPython stand-in for MicroPython's ustruct (umqtt.simple imports it).
from struct import *  # noqa: F401,F403
