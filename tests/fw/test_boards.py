from firmware.port import boards


def test_every_board_has_the_roles_the_app_needs():
    for name, b in boards.BOARDS.items():
        for key in ("chip", "uart", "meter_rx", "relay_set", "relay_reset", "vcap_adc",
                    "vcap_en", "button", "safe_boot"):
            assert key in b, (name, key)
        # The two relay coils must never share a pin: one pulse would drive both.
        assert b["relay_set"] != b["relay_reset"], name
        pins = [b[k] for k in ("meter_rx", "p1_request", "relay_set", "relay_reset",
                               "vcap_en", "button", "safe_boot") if b.get(k) is not None]
        assert len(pins) == len(set(pins)), (name, pins)


def test_default_board_per_chip():
    for chip, name in boards.DEFAULT_BOARD.items():
        assert boards.BOARDS[name]["chip"] == chip
