# The P1 UART settings exported by the DSMR decoder fit the port interface the
# app passes them to (firmware/port/__init__.py, host fake in tools/hostport.py).
import inspect

from firmware.reading.dsmr import uart_args, RXBUF
from tools.hostport import HostPort


def test_uart_args_bind_to_port_uart_open():
    sig = inspect.signature(HostPort.uart_open)
    for kw in (uart_args(), uart_args(4096), uart_args(dsmr22=True)):
        sig.bind(None, **kw)
        # the ring holds what arrives while the app is busy: >= RXBUF bytes (2 KB is
        # 0.18 s of 115200 Bd 8N1)
        assert kw["rxbuf"] >= RXBUF and kw["rxbuf"] % 256 == 0
