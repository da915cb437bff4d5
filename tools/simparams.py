# Every parameter of the energy simulator (tools/sim.py, tools/simport.py), each with
# where it comes from. "datasheet" = the part's datasheet section; "paper" = Couraud et
# al., "Collecting French Smart Meter Data for Residential Flexibility" (the Linky TIC
# Reader, /work/shared/background/linky-tic-reader-paper.md); "board" = our hardware
# (hardware/gen/designs.py, power board); "estimate" = an engineering estimate, said so.
#
# Nothing here is tuned per run: `paper` and `firmware` policies, TLS and no TLS, every
# power level use these same values. Durations that vary are (lo, hi) ranges drawn
# uniformly from a seeded PRNG.
#
# Validation: see README "Energy" and `make bench` for what the `paper` policy (the
# reference firmware, REF_* below, on the reference board, BOARDS["paper"]) gives
# against the paper's Table I. No value was fitted to Table I.
#
# Units: seconds, volts, amperes, farads, ohms, watts (floats: host only).

# -- meter supply ------------------------------------------------------------------------
# Enedis-NOI-CPT_54E (Linky TIC specification, cited by the paper as [8]): TIC supply
# 6 Vrms at 50 kHz, at least 130 mW; paper §II-B / §III: "slightly greater than 130 mW".
# --power-mw sets this value: the power at the rectifier input (issue 6). For scale:
# hardware/sim/rectifier.cir, a 130 mW-maximum Thevenin meter (13 Vrms, 325 ohm), puts
# ~100 mW into our rectifier at 4.5 V (91 mW reach C1): `--power-mw 100` is that meter.
P_IN_W = 0.130

# -- the boards ----------------------------------------------------------------------------
# Two power supplies: "ltr" is ours (hardware/power, hardware/README.md "Calculations",
# hardware/design/values.json), what the firmware runs on by default; "paper" is the
# reference design's (paper §III-D: microcontroller supervisor 4.5 V/20 checks on,
# 4.1 V/200 checks off at 1 MHz; MCP1825), what its firmware (policy "paper") runs on.
# `python -m tools.sim --board` swaps them (e.g. our firmware on the reference board).
BOARDS = {
    "ltr": {
        # BAT54S Schottky bridge (D2/D3): two ~0.3 V drops at 20 mA (BAT54 datasheet
        # VF) against the ~6-8 V peak: ~90 % of the input reaches C1. Estimate.
        "RECTIFIER_EFF": 0.90,
        # TL431A shunt, R10/R11 22k/20k: 5.24 V nominal (hardware/README "Over-voltage
        # limit"; worst case 5.05-5.43 V). What the meter offers above it is shed.
        "V_CLAMP": 5.24,
        # C1 Cornell Dubilier DGH255Q5R5, 2.5 F 5.5 V two-cell module; ESR 0.2 ohm and
        # 20 uA leakage as values.json (assumed typical for the series, VERIFY there)
        "CAP_F": 2.5,
        "ESR_OHM": 0.20,
        "LEAK_A": 20e-6,
        # TLV3012 comparator with hysteresis (hardware/README "Supervisor thresholds"):
        # on 4.50 V, off 4.15 V (ngspice: 4.496 / 4.156 V); +-0.09 V with 1 % parts.
        # C3 100 nF x 440 k filters dips shorter than ~44 ms; the integration step
        # (DT_MAX_S) is longer, so any step below V_OFF cuts, as for the paper's.
        "V_ON": 4.50,
        "V_OFF": 4.15,
        "ON_DELAY_S": 0.044,
        # always on: TLV3012 2.8 uA + hysteresis network 7 uA + TL431 divider R10/R11
        # 107 uA (hardware/README "Divider drain"), as a current
        "I_SUPERVISOR_A": 117e-6,
        # supervisor sense divider R1+R2 2.12 Mohm (the ADC divider is switched off)
        "R_SENSE_OHM": 2.12e6,
        # the switched ADC divider R8 + R9 (hardware/design/values.json), on only while
        # the firmware measures: filled in below
        "R_ADC_DIV_OHM": None,
        # ADC: the switched R8/R9 divider into the chip's own ADC: CHIPS[...]["ADC_*"]
    },
    "paper": {
        # the reference's published schematic (bcouraud/Linky-TIC-Reader, PCB/2023_11
        # .../PCB_Dongle_Linky.kicad_sch) names a BAT43W Schottky pair and S2J diodes
        # but no values for C1 and no clamp: the same rectifier efficiency as ours, and
        # what the capacitor's 5.5 V rating allows as its top (assumptions, said so)
        "RECTIFIER_EFF": 0.90,
        "V_CLAMP": 5.40,
        # the paper gives no capacitance: a 1.5 F 5.5 V module (assumption)
        "CAP_F": 1.5,
        "ESR_OHM": 0.20,
        "LEAK_A": 10e-6,
        # paper §III-D: on when V has been >= 4.5 V for 20 checks, off when < 4.1 V for
        # 200 checks, at 1 MHz (20 us / 200 us)
        "V_ON": 4.50,
        "V_OFF": 4.10,
        "ON_DELAY_S": 20 / 1e6,
        # a PIC12F1840 at 1 MHz (the repository's Code_PIC): datasheet IDD ~0.3 mA
        # order at 1 MHz / 5 V (estimate) + its Zener sense network
        "I_SUPERVISOR_A": 0.30e-3,
        # its sense path (3.3 V Zener D1 into the PIC's analog input) has no value in
        # the paper: a few uA assumed, as a 1.39 Mohm load
        "R_SENSE_OHM": 1.39e6,
        # A0 network of the reference: not switched in its schematic, but its load is
        # within R_SENSE_OHM above; the read itself as ours
        "R_ADC_DIV_OHM": None,
        # A0 calibration the reference publishes (Code_ESP/ADC_Voltage_Battery_...csv):
        # counts = 30.97 x V + 16.2 -> 32.3 mV per count at C1 (overrides the chip's)
        "ADC_MV_PER_COUNT": 32.3,
        "ADC_NOISE_MV": 16.0,
    },
}
# Our board at the ends of its tolerances (hardware/README: supervisor +-0.09 V with 1 %
# parts, TL431 clamp 5.05-5.43 V worst case; supercapacitor -20 % (tolerance and ageing;
# end of life is commonly -30 %) / +20 %, ESR up 50 % with age). The firmware plans with
# the nominal figures (firmware/power/costs.py) and must stay safe on both.
BOARDS["ltr-low"] = dict(BOARDS["ltr"], V_ON=4.41, V_OFF=4.24, V_CLAMP=5.05, CAP_F=2.0,
                         ESR_OHM=0.30)
BOARDS["ltr-high"] = dict(BOARDS["ltr"], V_ON=4.59, V_OFF=4.06, V_CLAMP=5.43, CAP_F=3.0)
BOARD_FOR_POLICY = {"firmware": "ltr", "paper": "paper"}

# -- regulator ---------------------------------------------------------------------------
# MCP1825S-3302 (both boards), datasheet §1 electrical characteristics: IQ 120 uA
# typical; linear: input current = output current + IQ. Dropout 210 mV at 500 mA
# (irrelevant above 4.1 V).
I_LDO_Q_A = 120e-6
# its output: what the chip's currents are drawn at (the rest of V_cap x I is the
# regulator's loss)
V_OUT = 3.3

# -- the chips (--chip) -------------------------------------------------------------------
# Per-state current at 3.3 V (the regulator's output; linear regulator: the capacitor
# supplies the same current plus I_LDO_Q_A) and the durations that vary per chip.
# "listen" is the CPU waiting on the meter UART with the radio off; "sleep" is what
# port.sleep_ms() does between readings on that chip (firmware/port/device.py).
CHIPS = {
    "esp8266": {
        # Espressif ESP8266EX datasheet §3.6 Table 3-4 "Power consumption by power
        # modes" and §5.3 Table 5-2 "Power consumption": TX 802.11b +17 dBm 170 mA,
        # RX 50-56 mA, modem sleep 15 mA, light sleep 0.9 mA, deep sleep 20 uA.
        "I": {
            "active": 0.075,      # CPU on, radio on and idle-listening (RX 56 mA + CPU)
            "boot": 0.075,        # ROM boot + RF calibration + interpreter start, radio on
            "listen": 0.015,      # radio off (modem sleep): CPU reads the UART
            "modem_sleep": 0.015,
            "flash": 0.030,       # modem sleep + SPI flash program/erase (~15 mA, W25Q32)
            "wifi_join": 0.110,   # scan/auth/DHCP: RX with TX bursts; paper: 400-560 mW
            "tls": 0.080,         # handshake: CPU at 160 MHz + radio associated
            "tx": 0.170,          # 802.11b +17 dBm transmit (Table 5-2), whole request
            "ap": 0.080,
            # port.sleep_ms(): device.py idles the ESP8266 in modem sleep (time.sleep_ms,
            # UART kept receiving) because the ESP8266 port's lightsleep stops the UART
            "sleep": 0.015,
            "light_sleep": 0.0009,
            "deep_sleep": 20e-6,
            "off": 0.0,
        },
        # Wi-Fi association + WPA2 handshake + DHCP on ESP8266: 1.5-4 s (Espressif
        # forum figures and the paper's "a few seconds" at 400-560 mW)
        "T_WIFI_JOIN": (1.5, 4.0),
        # TLS handshake on ESP8266 (axTLS / BearSSL, RSA-2048 server key, 80-160 MHz):
        # 2-6 s. (Our firmware leaves TLS sinks out on the ESP8266: heap, see
        # firmware/uplink/uplink.py; the reference design's Arduino firmware pays it.)
        "T_TLS": (2.0, 6.0),
        # one request + response on an open association, charged at the TX current
        "T_TX": (0.15, 0.50),
        # reset -> app loop: ROM + RF calibration ~0.3 s (Espressif ESP8266 low-power
        # guide) + interpreter start
        "T_BOOT": (0.4, 0.8),
        # UART keeps receiving while port.sleep_ms() idles (modem sleep)
        "SLEEP_KEEPS_UART": True,
        # ADC: 10 bit, 1.0 V at the pin; the D1 mini's own 220k/100k divider makes 1023 =
        # 3.2 V at A0; noise ~1 count rms (estimate)
        "ADC_BITS": 10,
        "ADC_FULL_MV": 3200,
        "ADC_RANGE_MV": 3200,
        "ADC_NOISE_COUNTS": 1.0,
        # the power board's switched R8/R9 divider (hardware/design/values.json), its tap
        # loaded by the D1 mini's own A0 divider (220k + 100k to GND; boards.py
        # vcap_ratio is the same ratio)
        "ADC_RATIO": None,
        "ADC_LOAD_OHM": 320e3,
    },
    "esp32c3": {
        # Espressif ESP32-C3 Series Datasheet §5.6 "Current consumption" (v1.x; 3.3 V,
        # 25 degC): RF active TX 802.11b 1 Mbps @ 21 dBm 335 mA (100 % duty), RX
        # 802.11b/g/n 82-84 mA; modem sleep at 160 MHz CPU running ~23-28 mA, CPU idle
        # (WAITI) ~16-21 mA; light sleep 130 uA; deep sleep 5 uA. Cross-checks:
        # ESP-IDF "Low power mode in Wi-Fi scenarios" (docs/.../sleep-current/
        # esp32c3_summary.inc): connected modem sleep DTIM1 21.5 mA, deep sleep 4.8 uA;
        # robdobson.com/2023/11/investigating-esp32-c3-power-management: bare C3 at
        # 160 MHz 26.8 mA busy, 20.1 mA in a delay loop, 0.35 mA light sleep (module).
        "I": {
            "active": 0.027,      # CPU running Python at 160 MHz, radio off
            "boot": 0.027,        # ROM + bootloader + MicroPython start: no RF calibration
                                  # before network.WLAN().active(True) (part of the join)
            # blocking UART read: the CPU idles in the FreeRTOS idle task (WAITI)
            # between characters, peripherals clocked: datasheet CPU idle 16-21 mA
            "listen": 0.021,
            "modem_sleep": 0.021,
            "flash": 0.035,       # + SPI flash program/erase (~15 mA, W25Q32 datasheet)
            # scan/auth/DHCP: RX 84 mA with TX bursts (335 mA at 21 dBm, short duty);
            # Adafruit QT Py ESP32-C3 guide: "100 mA+ ... spike during WiFi connection"
            "wifi_join": 0.105,
            # mbedTLS handshake: CPU busy at 160 MHz (RSA/SHA/AES accelerators) with the
            # station associated in modem sleep between packets (21.5 mA DTIM1) and RX
            # while the server's flights arrive: estimate 50 mA average
            "tls": 0.050,
            # one request/response: RX 84 mA with the TX bursts (~15 % duty of 335 mA):
            # 84 + 0.15 x 250 = 122 mA (estimate)
            "tx": 0.122,
            "ap": 0.090,
            # port.sleep_ms(): light sleep (machine.lightsleep, device.py) with the meter
            # UART disarmed; re-armed on wake-up (the bytes meanwhile are not received)
            "sleep": 0.00013,
            "light_sleep": 0.00013,
            "deep_sleep": 5e-6,
            "off": 0.0,
        },
        # association + WPA2 + DHCP: the same AP-side delays as the ESP8266 dominate
        # (beacon interval, 4-way handshake, DHCP offer): 1.0-3.5 s
        "T_WIFI_JOIN": (1.0, 3.5),
        # mbedTLS handshake with certificate verification (ECDHE-RSA, RSA-2048 server
        # key, ca_pem): measured 1.2 s on the 240 MHz ESP32 under MicroPython
        # (micropython/micropython-esp32#131), ~2 s with RSA-2048 keys in ESP-IDF
        # (espressif/esp-idf#630), > 3 s average on an ESP32-S3 with certificate
        # verification over HTTPS (espressif/esp-idf#10523). The C3 runs at 160 MHz with
        # no ECC accelerator (ECDHE P-256 in software): 1.5-3.5 s.
        "T_TLS": (1.5, 3.5),
        "T_TX": (0.15, 0.50),
        # ROM + second-stage bootloader + MicroPython start (no RF calibration): 0.3-0.6 s
        "T_BOOT": (0.3, 0.6),
        "SLEEP_KEEPS_UART": False,
        # ADC: 12 bit SAR, 11 dB attenuation; the datasheet's calibrated range at 11 dB
        # is 0-2500 mV (§5.5 ADC characteristics): above that the reading saturates.
        # boards.py reads with adc_full_mv 3100; ratio from hardware/design/values.json
        # (R8/R9, the power board's switched divider, no load from the C3 module: 22k/10k
        # since the hardware review, 5.5 V -> 1.72 V; 10k/10k saturated at 5.0 V)
        "ADC_BITS": 12,
        "ADC_FULL_MV": 3100,
        "ADC_RANGE_MV": 2500,
        "ADC_NOISE_COUNTS": 4.0,   # ESP32-C3 SAR noise: a few counts rms (estimate)
        "ADC_RATIO": None,         # None: (R8 + R9) / R9 from values.json
        "ADC_LOAD_OHM": None,
    },
}
DEFAULT_CHIP = "esp8266"
# the ESP8266's table under its historic names (the paper policy's reference chip)
I_STATE_A = CHIPS["esp8266"]["I"]
T_WIFI_JOIN = CHIPS["esp8266"]["T_WIFI_JOIN"]
T_TLS = CHIPS["esp8266"]["T_TLS"]
T_TX = CHIPS["esp8266"]["T_TX"]
T_BOOT = CHIPS["esp8266"]["T_BOOT"]
# relay coil pulse (HF3F-L/5 two-coil latching, 5 V coil; coil power order 0.2-0.4 W
# per the HF3F-L datasheet coil table): modelled as 80 mA while the pulse lasts
RELAY_A = 0.080

# SPI flash page program / sector erase share of a record write (W25Q32 datasheet AC
# characteristics: page program ~0.7 ms, sector erase ~45 ms typical): 5-60 ms.
T_FLASH = (0.005, 0.060)

# -- ADC (capacitor voltage) -------------------------------------------------------------
# the firmware averages ADC_SAMPLES readings (firmware/port/device.py); resolution,
# range and noise are the chip's (CHIPS) behind the board's divider, unless the board
# publishes its own calibration (BOARDS["paper"])
ADC_SAMPLES = 8
# the divider is switched on ADC_SETTLE_S before the samples (device.py: 2 ms settle)
ADC_SETTLE_S = 0.002

# -- the meter as a source (--source meter) ------------------------------------------------
# The Thevenin TIC supply of hardware/sim/rectifier.cir (13 Vrms open circuit behind
# 325 ohm: 130 mW at best, Enedis-NOI-CPT_54E's minimum), through the PTC and the BAT54S
# bridge, into the capacitor: average charging current against capacitor voltage, as
# ngspice computes it. tools/simmeter.csv holds the table (tools/simmeter.py writes it
# with ngspice; tests/host/test_sim.py regenerates and compares). Between rows: linear;
# above the clamp the TL431 sheds it. Used for both boards (the reference's BAT43W
# bridge is not modelled separately).
METER_TABLE = "simmeter.csv"

# -- integration ----------------------------------------------------------------------
DT_MAX_S = 0.25          # integration step while a state lasts (voltage changes slowly)

# -- the reference design's firmware (policy "paper") ----------------------------------
# The published ESP8266 code of the reference (bcouraud/Linky-TIC-Reader, the paper's
# ref. [11]: Code_ESP/2025_06_19_ChargeAngels_Linky_Wemos_1200b/...ino, setup()), read
# line by line; tools/sim.py PaperPolicy runs it.
# ESP.deepSleep(20e6): 20 s between wakes.
REF_SLEEP_MS = 20000
# while (!finished_recording && timeoutReadLinky < 5000): at most 5 s to get one value.
REF_READ_TIMEOUT_MS = 5000
# BatteryVoltage = analogRead(A0) compared with voltageThreshold2 = 158 (read) and
# voltageThreshold = 178 (send) ADC counts. Counts -> volts from the calibration the
# same repository publishes (Code_ESP/ADC_Voltage_Battery_...csv: seven measured
# (V1, counts) pairs, 3.54 V -> 123 ... 6.26 V -> 208); least-squares line
# counts = 30.97 * V + 16.2, so:
REF_V_READ = 4.58            # 158 counts
REF_V_SEND = 5.22            # 178 counts
# setup_wifi(): after the join, configTime() then `while (now < 16 h) delay(500)`:
# the first check fails before SNTP answers, so 0.5 s, or 1 s when the answer is slow;
# radio on, CPU busy-waits (the "active" current).
REF_NTP_S = (0.5, 1.0)
# Reading the TIC (Serial.read() loop): the paper (§III-E) reads "before going back to
# sleep mode to save energy", i.e. radio asleep; charged at the "listen" current like
# our firmware's reads, so both policies pay the same for listening.

# -- the meter line --------------------------------------------------------------------
# Default capture replayed in a loop at wire speed: historic TIC (1200 bd 7E1,
# Enedis-NOI-CPT_54E historic mode), a real Tempo frame stream from the corpus
# (275-byte frames: 2.29 s each on the wire).
CAPTURE = "tic/hist_tempo_mono_pyteleinfo.txt"
CAPTURE_BAUD = 1200


def table():
    # name -> value for reports
    g = globals()
    return dict((k, g[k]) for k in g if k.isupper())


def divider_ohms():
    # (R8, R9): the power board's switched ADC divider, from hardware/design/values.json
    import json
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "hardware", "design", "values.json")) as f:
        v = json.load(f)["power"]

    def ohms(ref):
        # "10k" -> 10000.0 (values.json's notation: E-series value + k/M)
        t = str(v[ref]["value"]).split()[0].rstrip("ohmR")
        mult = {"k": 1e3, "K": 1e3, "M": 1e6}.get(t[-1:], 1.0)
        return float(t[:-1] if mult != 1.0 else t) * mult
    return ohms("R8"), ohms("R9")


def adc_ratio(chip):
    # the power board's switched divider as the chip's ADC sees it: V_cap / V_adc
    r = CHIPS[chip]["ADC_RATIO"]
    if r is not None:
        return r
    top, bot = divider_ohms()
    load = CHIPS[chip]["ADC_LOAD_OHM"]
    if load:
        bot = bot * load / (bot + load)
    return (top + bot) / bot


def adc(board_name, chip):
    # -> (mV at C1 per count, noise mV rms at C1, highest mV at C1 the ADC can read)
    b = board(board_name)
    if "ADC_MV_PER_COUNT" in b:
        return b["ADC_MV_PER_COUNT"], b["ADC_NOISE_MV"], 1e9
    c = CHIPS[chip]
    ratio = adc_ratio(chip)
    step = c["ADC_FULL_MV"] / ((1 << c["ADC_BITS"]) - 1) * ratio
    return step, c["ADC_NOISE_COUNTS"] * step, c["ADC_RANGE_MV"] * ratio


def chip(name):
    if name not in CHIPS:
        raise ValueError("unknown chip %r (%s)" % (name, ", ".join(sorted(CHIPS))))
    return CHIPS[name]


def board(name):
    b = BOARDS.get(name)
    if b is not None and b.get("R_ADC_DIV_OHM") is None:
        b["R_ADC_DIV_OHM"] = sum(divider_ohms())
    if name not in BOARDS:
        raise ValueError("unknown board %r (%s)" % (name, ", ".join(sorted(BOARDS))))
    return BOARDS[name]
