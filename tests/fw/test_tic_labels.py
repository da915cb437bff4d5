# The packed label table (firmware/reading/tic_labels.py) is exactly the readable one
# (firmware/reading/tic_table.py), and every label is found from its bytes.
from firmware.reading import tic_labels as L
from firmware.reading import tic_table


def test_packed_table_matches_readable_table():
    n, blob, off, attrs = tic_table.build()
    assert n == L.COUNT
    assert blob == L.BLOB and off == L.OFF and attrs == L.ATTRS


def test_every_label_found_and_nothing_else():
    names = tic_table.labels()
    assert len(set(names)) == len(names)
    for i in range(len(names)):
        assert L.lookup(names[i]) == i, names[i]
        assert L.name_bytes(i) == names[i].encode()
        # a label one character shorter or longer is not found
        assert L.lookup(names[i][:-1]) < 0 or names[i][:-1] in names
        assert L.lookup(names[i] + "X") < 0
    for junk in ("", "adco", "ADC0", "EAST ", "IINST4", "SMAXSN4-1"):
        assert L.lookup(junk) < 0, junk


def test_spec_attributes():
    def attr(label, k):
        return L.ATTRS[7 * L.lookup(label) + k]
    assert attr("SMAXSN-1", 1) == 1 and attr("DATE", 1) == 1 and attr("EAST", 1) == 0
    assert attr("EAST", 2) == L.T_DIG and attr("EAST", 3) == 9
    assert attr("PRM", 3) == 14 and attr("STGE", 2) == L.T_HEX
    assert attr("PAPP", 0) == L.M_HIST and attr("SINSTS", 0) == L.M_STD
    assert attr("IRMS3", 6) == 3 and attr("IINST", 6) == 0
