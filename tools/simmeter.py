"""The meter as a power source for the energy simulator (python -m tools.sim --source meter).

The TIC supply modelled as in hardware/sim/rectifier.cir: a Thevenin source (13 Vrms
open circuit behind 325 ohm, i.e. 130 mW at the maximum power point, the
Enedis-NOI-CPT_54E minimum) through the PTC and the BAT54S bridge into the
supercapacitor. ngspice gives the average charging current with the capacitor held at
each voltage of a grid; the simulator interpolates that table (simmeter.csv, committed
so the simulator runs without ngspice; tests/host/test_sim.py regenerates it with
ngspice and compares).

    python -m tools.simmeter            # print the table computed now with ngspice
    python -m tools.simmeter --write    # rewrite tools/simmeter.csv from ngspice
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "simmeter.csv")
RUN_PY = os.path.join(HERE, "..", "hardware", "sim", "run.py")
# capacitor voltages (V): from empty to past the highest clamp (5.43 V, ltr-high)
GRID = (0.0, 1.0, 2.0, 3.0, 3.5, 4.0, 4.2, 4.4, 4.6, 4.8, 5.0, 5.2, 5.4, 5.6, 6.0)


def _run_module():
    # hardware/sim/run.py (stdlib only): the same netlist and parameters the hardware
    # simulations use
    spec = importlib.util.spec_from_file_location("hw_sim_run", RUN_PY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def compute(grid=GRID):
    # -> [(vcap V, charging current A)] from ngspice, and the source's description
    run = _run_module()
    rows = [(v, run.rectifier_point(v)) for v in grid]
    src = {"voc_rms": run.TIC_VOC_RMS, "rs_ohm": run.TIC_RS, "r_ptc_ohm": run.R_PTC,
           "carrier_hz": run.TIC_CARRIER_HZ}
    return rows, src


def render(rows, src):
    out = ["# Charging current into the supercapacitor from the meter's TIC supply, against",
           "# the capacitor voltage. Produced by `python -m tools.simmeter --write`:",
           "# ngspice on hardware/sim/rectifier.cir (hardware/sim/run.py rectifier_point:",
           "# Thevenin %.1f Vrms behind %.0f ohm at %.0f Hz, PTC %.0f ohm, BAT54S bridge;" % (
               src["voc_rms"], src["rs_ohm"], src["carrier_hz"], src["r_ptc_ohm"]),
           "# average over cycles 10-30). tests/host/test_sim.py regenerates and compares.",
           "vcap_v,current_ma"]
    for v, i in rows:
        out.append("%.2f,%.4f" % (v, i * 1000.0))
    return "\n".join(out) + "\n"


def load(path=TABLE):
    # -> [(vcap V, current A)], voltages increasing
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("vcap"):
                continue
            a, b = line.split(",")
            rows.append((float(a), float(b) / 1000.0))
    if len(rows) < 2 or any(b[0] <= a[0] for a, b in zip(rows, rows[1:])):
        raise ValueError("%s: need >= 2 rows with increasing voltages" % path)
    return rows


class MeterSource:
    # charging current (A) at a capacitor voltage, interpolated in the ngspice table
    def __init__(self, rows=None):
        self.rows = rows or load()

    def current(self, v):
        r = self.rows
        if v <= r[0][0]:
            return r[0][1]
        for (v0, i0), (v1, i1) in zip(r, r[1:]):
            if v <= v1:
                return i0 + (i1 - i0) * (v - v0) / (v1 - v0)
        return max(0.0, r[-1][1])

    def power(self, v):
        # watts into the capacitor at voltage v (never less than what 0.5 V takes: from
        # empty the current is what charges it)
        return max(v, 0.5) * self.current(v)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    rows, src = compute()
    text = render(rows, src)
    if "--write" in argv:
        with open(TABLE, "w") as f:
            f.write(text)
        print("wrote", os.path.relpath(TABLE))
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
