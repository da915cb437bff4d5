# Board pin maps: the single table shared by the firmware port layer and the
# KiCad projects under hardware/ (tests/host/test_hardware_pins.py checks that the
# schematics connect the header pins named here).
#
# Keys (all optional except meter_rx/uart):
#   uart         UART id used for the meter (ESP8266: 0, the only RX-capable UART)
#   meter_rx     GPIO receiving the demodulated TIC / inverted P1 signal
#   rx_invert    True if the chip's UART can invert RX (ESP32 family), so P1 needs no
#                transistor inverter
#   p1_request   GPIO driving the P1 5 V data-request transistor (high = request)
#   relay_set    GPIO of the low-side MOSFET on the latching relay's SET coil
#   relay_reset  GPIO of the low-side MOSFET on the RESET coil
#   vcap_adc     ADC channel/GPIO reading the supercapacitor divider
#   vcap_en      GPIO switching the divider on only while measuring (high = on)
#   vcap_ratio   (numerator, denominator): Vcap = Vadc * num / den
#   adc_full_mv  ADC input voltage at full scale reading (after the board's own divider)
#   adc_bits     ADC resolution in bits
#   tic_fast     GPIO selecting the demodulator's 9600 bd time constant (high = fast); None if absent
#   button       GPIO of the set-up button (active low, pull-up); long press -> access point
#   safe_boot    GPIO that, held low at reset, keeps the REPL on UART0 (boot.py)
#   wake         ESP8266 only: D0 (GPIO16) is wired to RST (through R12, 470 ohm, on the
#                power board) so the RTC timer can wake the chip from deep sleep
#   led          GPIO of the status LED (active low on the D1 mini)
#   header       physical header pin names (board silkscreen) for each role, as on the PCB
BOARDS = {
    # Wemos/LOLIN D1 mini (and D1 mini Lite, 1 MB flash), ESP8266.
    "d1mini": {
        "chip": "esp8266",
        "uart": 0,
        "meter_rx": 3,        # RX (GPIO3); REPL is detached while reading the meter
        "rx_invert": False,   # no RX invert on ESP8266: P1 uses the board's inverter
        "p1_request": 12,     # D6
        "relay_set": 5,       # D1: low at boot, no boot strap
        "relay_reset": 4,     # D2: low at boot, no boot strap
        "vcap_adc": 0,        # A0 (ADC0)
        "vcap_en": 14,        # D5
        # 22k/10k divider on the power board, loaded by the D1 mini's own 220k+100k A0
        # divider (320k): Vcap / Vpin = (22 + 10||320) / (10||320) = 523/160 = 3.269
        # (hardware/README "Divider drain", hardware/design/values.json R8/R9)
        "vcap_ratio": (523, 160),
        "adc_full_mv": 3200,  # D1 mini's own 220k/100k divider: 1023 = 3.2 V at the pin
        "adc_bits": 10,
        # D8 (GPIO15): pulled low at boot, so the demodulator starts in 1200 bd mode. Not
        # D0: GPIO16 must be wired to RST for the timer wake-up from deep sleep.
        "tic_fast": 15,
        "button": 0,          # D3 (FLASH button, pull-up on the module)
        "safe_boot": 13,      # D7
        "led": 2,             # D4, active low
        "wake": 16,           # D0 -> R12 (470 ohm) -> RST for deep-sleep wake-up
        "header": {
            "meter_rx": "RX", "p1_request": "D6", "relay_set": "D1", "relay_reset": "D2",
            "vcap_adc": "A0", "vcap_en": "D5", "tic_fast": "D8", "button": "D3",
            "safe_boot": "D7", "led": "D4", "wake": "D0", "3v3": "3V3", "5v": "5V",
            "gnd": "GND",
        },
    },
    # ESP32-C3 super mini / LOLIN C3 mini footprint (ADC1 on GPIO0..4).
    "esp32c3": {
        "chip": "esp32c3",
        "uart": 1,
        "meter_rx": 20,
        # UART1's TX, never used (the meter line is receive-only) but always given:
        # without tx= the port puts it on GPIO10 (ports/esp32/machine_uart.c, UART1
        # defaults rx 9 / tx 10), which is p1_request here. GPIO0: not a strapping pin
        # on the C3, not wired on the board.
        "uart_tx": 0,
        "rx_invert": True,
        "p1_request": 10,
        "relay_set": 6,
        "relay_reset": 7,
        "vcap_adc": 3,
        "vcap_en": 1,
        "vcap_ratio": (16, 5),  # power board 22k/10k: 5.5 V -> 1.72 V, inside the 2.5 V ADC range
        "adc_full_mv": 3100,  # ADC.ATTN_11DB
        "adc_bits": 12,
        "tic_fast": 4,
        "button": 9,
        "safe_boot": 5,
        "led": 8,
        "header": {
            "meter_rx": "GPIO20", "p1_request": "GPIO10", "relay_set": "GPIO6",
            "relay_reset": "GPIO7", "vcap_adc": "GPIO3", "vcap_en": "GPIO1", "tic_fast": "GPIO4",
            "button": "GPIO9", "safe_boot": "GPIO5", "led": "GPIO8", "3v3": "3V3", "5v": "5V",
            "gnd": "GND",
        },
    },
    # ESP32-C6 DevKit / XIAO-style modules (ADC1 on GPIO0..6).
    "esp32c6": {
        "chip": "esp32c6",
        "uart": 1,
        "meter_rx": 17,
        "uart_tx": 0,         # see esp32c3: a pin the board leaves free
        "rx_invert": True,
        "p1_request": 21,
        "relay_set": 19,
        "relay_reset": 20,
        "vcap_adc": 2,
        "vcap_en": 1,
        "vcap_ratio": (16, 5),  # power board 22k/10k: 5.5 V -> 1.72 V, inside the 2.5 V ADC range
        "adc_full_mv": 3100,
        "adc_bits": 12,
        "tic_fast": 3,
        "button": 9,
        "safe_boot": 22,
        "led": 8,
        "header": {},
    },
    # ESP32-S3 (e.g. LOLIN S3 mini).
    "esp32s3": {
        "chip": "esp32s3",
        "uart": 1,
        "meter_rx": 18,
        "uart_tx": 10,        # see esp32c3: a pin the board leaves free
        "rx_invert": True,
        "p1_request": 6,
        "relay_set": 4,
        "relay_reset": 5,
        "vcap_adc": 1,
        "vcap_en": 2,
        "vcap_ratio": (16, 5),  # power board 22k/10k: 5.5 V -> 1.72 V, inside the 2.5 V ADC range
        "adc_full_mv": 3100,
        "adc_bits": 12,
        "tic_fast": 3,
        "button": 0,
        "safe_boot": 7,
        "led": 47,
        "header": {},
    },
}

DEFAULT_BOARD = {"esp8266": "d1mini", "esp32c3": "esp32c3", "esp32c6": "esp32c6",
                 "esp32s3": "esp32s3"}


def board(name):
    return BOARDS[name]
