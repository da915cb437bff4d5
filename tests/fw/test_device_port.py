# firmware/port/device.py against the ESP32 port's machine.UART as MicroPython v1.28
# has it (ports/esp32/machine_uart.c): the UART objects are static
# (MP_STATE_PORT(machine_uart_objs)), a settings field is restored to its default only
# when the driver is not installed yet, so a later UART(1, ...) keeps `invert` unless it
# is passed (ARG_invert defaults to -1 = unchanged); UART1's pins default to rx 9 /
# tx 10. INV_RX is ESP-IDF's UART_SIGNAL_RXD_INV (0x4). The machine module is a fake
# (hardware), built here from that source; the board table is the firmware's.
import sys

from firmware.port import boards

INV_RX = 0x4
MICROPYTHON_HEAP = "2M"


class _UART:
    INV_RX = INV_RX
    INV_TX = 0x20
    objs = {}
    installed = set()

    def __new__(cls, uart_num, **kw):
        self = cls.objs.get(uart_num)
        if self is None:
            self = object.__new__(cls)
            self.uart_num = uart_num
            cls.objs[uart_num] = self
        self._init(kw)
        return self

    def __init__(self, uart_num, **kw):
        pass

    def _init(self, kw):
        if self.uart_num not in _UART.installed:
            # fresh: the object's defaults (machine_uart.c mp_machine_uart_init_helper)
            self.invert = 0
            self.rx, self.tx = {0: (None, None), 1: (9, 10)}[self.uart_num]
            _UART.installed.add(self.uart_num)
        if kw.get("invert", -1) != -1:
            self.invert = kw["invert"]
        if kw.get("rx") is not None:
            self.rx = kw["rx"]
        if kw.get("tx") is not None:
            self.tx = kw["tx"]
        self.baudrate = kw.get("baudrate", getattr(self, "baudrate", 115200))


class _Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2

    def __init__(self, n, mode=None, pull=None, value=None):
        self.n = n

    def value(self, v=None):
        return 1


class _ADC:
    ATTN_11DB = 3

    def __init__(self, p):
        pass

    def atten(self, a):
        pass


class _RTC:
    def memory(self, b=None):
        return b""


class _Machine:
    UART = _UART
    Pin = _Pin
    ADC = _ADC
    RTC = _RTC


def _device_port(board):
    saved = {k: sys.modules.get(k) for k in ("machine", "network", "firmware.port.device")}
    sys.modules["machine"] = _Machine()
    sys.modules["network"] = _Machine()
    sys.modules.pop("firmware.port.device", None)
    try:
        from firmware.port import device
        p = device.Port(board)
        p.chip = boards.BOARDS[board]["chip"]
        return p
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def test_a_p1_search_does_not_leave_the_tic_line_inverted():
    for board in ("esp32c3", "esp32c6", "esp32s3"):
        _UART.objs.clear()
        _UART.installed.clear()
        port = _device_port(board)
        u = port.uart_open(115200, 8, None, invert=True)      # P1: inverted RX
        assert u.invert == INV_RX, board
        u = port.uart_open(1200, 7, 0)                         # back to TIC
        assert u.invert == 0, board


def test_uart_tx_never_lands_on_a_pin_the_board_uses():
    for board in ("esp32c3", "esp32c6", "esp32s3"):
        _UART.objs.clear()
        _UART.installed.clear()
        b = boards.BOARDS[board]
        port = _device_port(board)
        u = port.uart_open(1200, 7, 0)
        used = [v for k, v in b.items() if k not in ("uart", "uart_tx", "adc_full_mv",
                                                     "adc_bits", "vcap_ratio", "chip",
                                                     "rx_invert", "header")]
        assert u.rx == b["meter_rx"]
        assert u.tx not in used, (board, u.tx, used)
        if board == "esp32c3":
            assert u.tx != b["p1_request"] and u.tx != 10
