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
        # ADC: switched 10k/10k divider -> D1 mini A0 (its own 220k/100k, 3.2 V full
        # scale, 10 bit): 3.125 mV x 2.031 = 6.35 mV per count at C1; noise 1 count rms
        # (ESP8266 ADC, estimate)
        "ADC_MV_PER_COUNT": 6.35,
        "ADC_NOISE_MV": 6.0,
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
        # A0 calibration the reference publishes (Code_ESP/ADC_Voltage_Battery_...csv):
        # counts = 30.97 x V + 16.2 -> 32.3 mV per count at C1
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

# -- ESP8266 currents at 3.3 V -----------------------------------------------------------
# Espressif ESP8266EX datasheet §5 "Power consumption" (table): TX 802.11b +17 dBm
# 170 mA, RX 50-56 mA, modem sleep 15 mA, light sleep 0.9 mA, deep sleep 20 uA.
I_STATE_A = {
    "active": 0.075,      # CPU on, radio on and idle-listening (RX 56 mA + CPU); brief 70-80 mA
    "boot": 0.075,        # ROM boot + RF calibration + interpreter start, radio on
    "listen": 0.015,      # radio off (modem sleep): CPU reads the UART
    "modem_sleep": 0.015,
    "flash": 0.030,       # modem sleep + SPI flash program/erase (~15 mA, W25Q32 datasheet)
    "wifi_join": 0.110,   # scan/auth/DHCP: RX with TX bursts; paper: Wi-Fi 400-560 mW
    "tls": 0.080,         # handshake: CPU at 160 MHz + radio associated
    "tx": 0.170,          # 802.11b +17 dBm transmit (datasheet Table 5-2)
    "ap": 0.080,
    # port.sleep_ms(): firmware/port/device.py idles the ESP8266 in modem sleep
    # (time.sleep_ms, UART kept receiving) because its lightsleep stops the UART
    "sleep": 0.015,
    "light_sleep": 0.0009,  # light sleep (datasheet Table 5-2), ESP32 ports only
    "deep_sleep": 20e-6,  # deep sleep (datasheet Table 5-2)
    "off": 0.0,
}
# relay coil pulse (HF3F-L/5 two-coil latching, 5 V coil; coil power order 0.2-0.4 W
# per the HF3F-L datasheet coil table): modelled as 80 mA while the pulse lasts
RELAY_A = 0.080

# -- durations (seconds) ---------------------------------------------------------------
# Wi-Fi association + WPA2 handshake + DHCP on ESP8266: 1.5-4 s (Espressif forum and
# the paper's "a few seconds" at 400-560 mW).
T_WIFI_JOIN = (1.5, 4.0)
# TLS handshake on ESP8266 (axTLS / BearSSL, RSA-2048 server key, 80-160 MHz): 2-6 s.
T_TLS = (2.0, 6.0)
# One transmission (TCP connect / request+response on an open association): 0.15-0.5 s
# per request, radio in TX/RX (charged at the TX current).
T_TX = (0.15, 0.50)
# Plain HTTP (no TLS): TCP connect + request + response: charged as T_TX per request.
# Boot after power-on or deep sleep to the app loop: ROM + RF calibration ~0.3 s
# (Espressif ESP8266 low-power guide) + interpreter start: 0.4-0.8 s.
T_BOOT = (0.4, 0.8)
# SPI flash page program / sector erase share of a record write (W25Q32 datasheet AC
# characteristics: page program ~0.7 ms, sector erase ~45 ms typical): 5-60 ms.
T_FLASH = (0.005, 0.060)

# -- ADC (capacitor voltage) -------------------------------------------------------------
# the firmware averages ADC_SAMPLES readings (firmware/port/device.py); resolution and
# noise are per board (BOARDS)
ADC_SAMPLES = 8

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


def board(name):
    if name not in BOARDS:
        raise ValueError("unknown board %r (%s)" % (name, ", ".join(sorted(BOARDS))))
    return BOARDS[name]
