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
    # board: hardware/power (hardware/README.md "Calculations"): C1 2.5 F 5.5 V
    # (DGH255Q5R5), TL431 clamp 5.24 V, TLV3012 supervisor on 4.50 V / off 4.15 V
    "cap_mf": 2000,         # 2.5 F nominal planned at -20 %: tolerance and ageing
    "v_on_mv": 4500,        # supervisor connects the regulator
    "v_off_mv": 4150,       # supervisor cuts the regulator
    "v_max_mv": 5240,       # the capacitor never charges above this (clamp, rating 5.5 V)
    "v_clamp_min_mv": 5050,  # ... nor, on some boards, above this (TL431 tolerance)
    # lowest voltage the plan may reach: cut-off + its tolerance (+-90 mV, 1 % parts) +
    # the ESR dip of a 0.4 A TX peak through ~0.2 ohm; nothing is started that could
    # take the capacitor below it
    "v_floor_mv": 4330,
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
    # wanted resolution: aim below 5 s (jitter, upload gaps); finer down to one
    # historic TIC frame (~2.3 s) when the power allows (read_params() from config)
    "read_target_ms": 4500,
    "read_min_ms": 2500,
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
    # wake up just before the meter's next frame (port.sleep_ms stops the UART on chips
    # that light-sleep: what arrives meanwhile is lost, so an unaligned wake-up waits for
    # the next STX, half a frame on average). Off on the ESP8266: its idle keeps the
    # UART receiving and back-to-back reads cost no wait.
    "align_frames": False,
    "frame_lead_ms": 120,   # wake this long before the expected STX (timing jitter)
}


# Other power supplies the firmware can run on (config "power_board"): the reference
# design's (Couraud et al. §III-D: microcontroller supervisor on 4.5 V / off 4.1 V; the
# paper gives no capacitance or clamp: a 1.5 F 5.5 V module assumed, as tools/simparams).
POWER_BOARDS = {
    "ltr": {},
    "reference": {"cap_mf": 1500, "v_off_mv": 4100, "v_max_mv": 5400, "v_clamp_min_mv": 5400,
                  "v_floor_mv": 4250},
}


# The chips the firmware runs on (port.chip): what differs from the ESP8266 figures
# above. ESP32-C3 (Espressif ESP32-C3 Series Datasheet §5.6 "Current consumption",
# 3.3 V): modem sleep at 160 MHz 23-28 mA CPU running, 16-21 mA CPU idle (a blocking
# UART read), RX 84 mA, TX up to 335 mA in bursts, light sleep 130 uA, deep sleep 5 uA.
# port.sleep_ms() light-sleeps there (firmware/port/device.py), so idling costs ~1 mA
# with the regulator and the flash in standby, not the 16 mA of the ESP8266's modem
# sleep: waiting between readings is nearly free and each reading pays its listening
# (~21 mA for a frame). Its mbedTLS handshake verifies ca_pem in 1.5-3.5 s (ECDHE in
# software at 160 MHz; tools/simparams.py gives the sources), so a TLS window costs
# join + handshake (~2 J at the capacitor): uploads are spaced by the latency target
# and carry every waiting record in as few requests as batch_max_bytes allows (each
# HTTPS request is another handshake).
CHIPS = {
    "esp8266": {},
    "esp32c3": {
        "i_active_ma": 28,
        "i_listen_ma": 22,
        "i_join_ma": 110,
        "i_tls_ma": 55,
        "i_tx_ma": 130,
        "i_light_ma": 1,     # 130 uA light sleep + flash standby + margin (integer mA)
        "i_deep_ua": 130,    # 5 uA + the regulator's 120 uA IQ
        "tls_ms": 4000,      # slowest handshake before the uplink gives up on it
        "tls_exp_ms": 2500,
        "join_exp_ms": 2300,
        "boot_ms": 600,
        # a frame-aligned reading listens from just before STX to the early-stop label
        # (~2.1 s of a 2.3 s historic frame) instead of half a frame more on average
        "listen_exp_ms": 2600,
        # a wake-up from deep sleep costs a boot and the meter line's state: light sleep
        # at ~1 mA is cheaper for any wait the plan makes (up to UP_MAX)
        "deep_sleep_min_ms": 600000,
        "deep_sleep_low_ms": 30000,
        "align_frames": True,
        # every HTTPS request is a new TLS connection (~0.7 J of handshake at the
        # capacitor): fewer, larger requests. 8 KB bodies (~120 historic TIC rows) fit
        # the C3's heap beside mbedTLS; the simulator's 45-minute outage drains in 50 s
        # instead of 337 s with the uplink's 2 KB default (tools/sim.py, README)
        "up_batch_records": 120,
        "up_batch_max_bytes": 8192,
    },
}


def read_params(interval_s):
    # config reading_interval_s -> the manager's resolution params. The default 5 s aims
    # at 4.5 s and reads finer when the power allows; a longer wanted interval is both
    # the target and the finest (the user asked for fewer readings)
    try:
        ms = int(interval_s) * 1000
    except (TypeError, ValueError):
        return {}
    if ms <= 0:
        return {}
    if ms <= 5000:
        return {"read_target_ms": max(2500, ms - ms // 10), "read_min_ms": 2500}
    t = ms - ms // 10
    return {"read_target_ms": t, "read_min_ms": t}


def uses_tls(cfg, chip=None):
    # -> (any sink opens a TLS connection, an HTTPS/Influx sink does so per request):
    # config.tls_sinks, none on the ESP8266, which leaves TLS sinks out
    # (firmware/uplink/uplink.py)
    if chip == "esp8266":
        return False, False
    from firmware.config import tls_sinks
    tls = tls_sinks(cfg)
    return bool(tls), "https" in tls or "influx" in tls


def params_for(cfg, chip=None):
    # the energy manager's params from the device configuration: the power supply, the
    # wanted resolution, and whether uploads pay TLS handshakes (a plain MQTT / http://
    # window does not: the worst case it plans for is then join + batch)
    p = dict(CHIPS.get(chip) or {})
    p.update(POWER_BOARDS.get(cfg.get("power_board") or "ltr") or {})
    p.update(read_params(cfg.get("reading_interval_s", 5)))
    tls, per_req = uses_tls(cfg, chip)
    if not tls:
        p["tls_ms"] = 0
        p["tls_exp_ms"] = 0
    if not per_req:
        p["batch_reconnects"] = False
    return p


def uplink_sizes(up, cfg, chip=None):
    # the batch sizes the chip's cost of a connection calls for, on the uplink object
    # (firmware/uplink/uplink.py: batch_records rows per peek, max_bytes per body);
    # what the user configured (batch_records / batch_max_bytes) wins
    c = CHIPS.get(chip) or {}
    if c.get("up_batch_records") and not cfg.get("batch_records"):
        up.batch_records = c["up_batch_records"]
    if c.get("up_batch_max_bytes") and not cfg.get("batch_max_bytes"):
        up.max_bytes = c["up_batch_max_bytes"]


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
