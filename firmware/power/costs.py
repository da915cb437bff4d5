# What the energy manager believes each action costs, and the board it runs on.
# These are the firmware's planning figures (conservative worst cases plus expected
# values); the simulator's "true" board lives separately in tools/simparams.py.
#
# Units: mV, mF, mA, mW, ms, uJ. mW x ms = uJ, mA x mV x ms / 1000 = uJ, so no float
# is needed (ESP8266 MicroPython floats have 30 bits).
#
# Energy is drawn from the capacitor through a linear regulator (MCP1825, datasheet
# §1 "Electrical characteristics": input current = load current + 120 uA IQ), so an
# action costs V_cap x I x t at the capacitor, not 3.3 V x I x t. Costs are computed at
# PLAN_MV, the top of the working range, so they hold at any lower voltage too.

PLAN_MV = 5000

# ESP8266EX datasheet v6 §5 "Power consumption" (Table 5-2) and the reference
# design's measurement (Couraud et al. §III: Wi-Fi 400-560 mW for a few seconds).
I_ACTIVE_MA = 75      # CPU on, radio on (not sleeping), datasheet RX 50-56 mA + CPU
I_LISTEN_MA = 16      # modem sleep (radio off, CPU on): 15 mA + regulator IQ
I_JOIN_MA = 110       # scan/auth/DHCP: RX 56 mA with TX bursts of 170 mA; 0.5 W at 4.5 V
I_TLS_MA = 80         # handshake crypto at 160 MHz with the radio associated
I_TX_MA = 170         # 802.11b +17 dBm transmit
# port.sleep_ms() on ESP8266 idles in modem sleep (firmware/port/device.py: its
# lightsleep stops the UART): 15 mA + IQ. ESP32 ports light-sleep at ~1 mA (pass
# {"i_light_ma": 1}).
I_SLEEP_MA = 16
I_DEEP_SLEEP_UA = 160  # 20 uA deep sleep + 120 uA regulator IQ + divider leakage

DEFAULTS = {
    # board: hardware/power (C1 1.5 F 5.5 V module, BZT52C5V6 clamp, 4.5/4.1 V supervisor)
    "cap_mf": 1500,
    "v_on_mv": 4500,        # supervisor connects the regulator (Couraud et al. §III-D)
    "v_off_mv": 4100,       # supervisor cuts the regulator
    "v_max_mv": 5400,       # the capacitor never charges above this (clamp, rating 5.5 V)
    # lowest voltage the plan may reach: cut-off + ESR dip at a 0.4 A TX peak through
    # ~0.2 ohm + ADC error; nothing is started that could take the capacitor below it
    "v_floor_mv": 4250,
    # worst-case durations (what a started action may take before it gives up)
    "listen_ms": 6000,      # two historic TIC frames (~2.3 s each at 1200 bd) + margin
    "join_ms": 5000,        # Wi-Fi association + DHCP, the app's join timeout
    "tls_ms": 6000,         # axTLS/mbedTLS handshake on ESP8266, RSA-2048 server
    "batch_ms": 500,        # one publish/POST of a batch and its acknowledgement
    "boot_ms": 600,         # reset -> MicroPython main loop (ROM boot + RF calibration)
    "relay_ms": 50,         # longest relay coil pulse (firmware/relay/driver.py)
    # expected durations (what an action usually takes; refined by measurement)
    "listen_exp_ms": 3500,  # wait for the next STX (half a frame) + one frame
    "join_exp_ms": 2800,
    "tls_exp_ms": 4000,
    "batch_exp_ms": 300,
    # relay coil (HF3F-L/5 two-coil latching, 5 V coil driven from VCAP)
    "relay_ma": 80,
    # currents
    "i_active_ma": I_ACTIVE_MA,
    "i_listen_ma": I_LISTEN_MA,
    "i_join_ma": I_JOIN_MA,
    "i_tls_ma": I_TLS_MA,
    "i_tx_ma": I_TX_MA,
    "i_light_ma": I_SLEEP_MA,
    "i_deep_ua": I_DEEP_SLEEP_UA,
    # planning
    "p_in_default_mw": 80,  # assumed incoming power until it is measured (cold start)
    "latency_target_ms": 80000,  # upload period when energy allows (mean latency ~ half + upload time)
    "batch_records": 120,   # records per upload (arg of "upload")
    # an HTTPS sink opens a new TLS connection per request: a further batch costs a
    # handshake too (MQTT keeps its session: False would be enough there)
    "batch_reconnects": True,
    # shorter waits use port.sleep_ms (a deep-sleep wake-up costs a boot, ~0.2 J, and
    # the UART's partial frame); in low-power mode deep sleep from this length on
    "deep_sleep_min_ms": 60000,
    "deep_sleep_low_ms": 1000,
    "soc_tau_ms": 60000,    # stored energy above the upload level is spent over this
                            # (x4 to rebuild a shortfall)
    "retry_ms": 30000,      # first back-off after a failed upload (doubles, capped)
    "retry_max_ms": 240000,  # (the uplink adds its own per-sink back-off in windows)
}


def cost_uj(ma, ms, mv=PLAN_MV):
    # energy drawn from the capacitor: V x I x t; mA x mV / 1000 = mW, mW x ms = uJ
    return (ma * mv // 1000) * ms


def table(p):
    # the cost table the manager plans with: worst case ("what") and expected ("_exp")
    c = {}
    c["read"] = cost_uj(p["i_listen_ma"], p["listen_ms"]) + cost_uj(p["i_active_ma"], 50)
    c["read_exp"] = cost_uj(p["i_listen_ma"], p["listen_exp_ms"]) + cost_uj(p["i_active_ma"], 50)
    c["wifi_join"] = cost_uj(p["i_join_ma"], p["join_ms"])
    c["tls"] = cost_uj(p["i_tls_ma"], p["tls_ms"])
    c["batch"] = cost_uj(p["i_tx_ma"], p["batch_ms"])
    c["upload_exp"] = (cost_uj(p["i_join_ma"], p["join_exp_ms"]) + cost_uj(p["i_tls_ma"], p["tls_exp_ms"])
                       + cost_uj(p["i_tx_ma"], p["batch_exp_ms"]))
    c["boot"] = cost_uj(p["i_active_ma"], p["boot_ms"])
    c["relay_pulse"] = cost_uj(p["relay_ma"] + p["i_active_ma"], p["relay_ms"])
    return c
