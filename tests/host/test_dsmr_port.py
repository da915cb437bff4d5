# The P1 UART settings exported by the DSMR decoder fit the port interface the
# app passes them to (firmware/port/__init__.py, host fake in tools/hostport.py).
import inspect

from firmware.reading.dsmr import uart_args, DEFAULT_MAX_LEN, MAX_LEN_LARGE
from tools.hostport import HostPort


def test_uart_args_bind_to_port_uart_open():
    sig = inspect.signature(HostPort.uart_open)
    for kw in (uart_args(), uart_args(MAX_LEN_LARGE), uart_args(dsmr22=True)):
        sig.bind(None, **kw)
        assert kw["rxbuf"] >= DEFAULT_MAX_LEN
