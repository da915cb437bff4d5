"""Builds, routes and pours a .kicad_pcb with the pcbnew module (system python3)."""
import os

import pcbnew

from router import Grid, astar, simplify
from sch import uid
import kicadlib
from symbols import LIB, get

MM = pcbnew.FromMM

CLEARANCE = 0.2
WIDTHS = (0.3, 0.5)       # signal, power
VIA_D, VIA_DRILL = 0.6, 0.3
EDGE_CLR = 0.5
PITCH = 0.25
HOLE_FP = "MountingHole:MountingHole_3.2mm_M3"


def V(x, y):
    return pcbnew.VECTOR2I(MM(x), MM(y))


def mm(v):
    return pcbnew.ToMM(v)


class BoardBuilder:
    def __init__(self, path, project, libdir, w, h):
        self.path = path
        self.project = project
        self.libdir = libdir
        self.w, self.h = w, h
        self.board = pcbnew.NewBoard(path)
        self.nets = {}
        self.fps = {}
        self.slots = []
        ds = self.board.GetDesignSettings()
        ds.m_TrackMinWidth = MM(0.2)
        ds.m_ViasMinSize = MM(0.5)
        ds.m_MinThroughDrill = MM(0.3)
        ds.m_CopperEdgeClearance = MM(EDGE_CLR)
        ds.m_HoleClearance = MM(0.25)
        ds.m_HoleToHoleMin = MM(0.25)
        ds.m_MinClearance = MM(0.15)
        ds.m_SilkClearance = MM(0.0)
        # JLCPCB silkscreen: text at least 1 mm high (DRC text_height enforces it on every
        # board text and footprint field); stroke >= 0.12 mm, KiCad's library convention
        # (the relay footprint's S/R/+ marks), our own texts use 0.15 mm
        ds.m_MinSilkTextHeight = MM(1.0)
        ds.m_MinSilkTextThickness = MM(0.12)
        nc = ds.m_NetSettings.GetDefaultNetclass()
        nc.SetClearance(MM(CLEARANCE))
        nc.SetTrackWidth(MM(WIDTHS[0]))
        nc.SetViaDiameter(MM(VIA_D))
        nc.SetViaDrill(MM(VIA_DRILL))
        self.board.SetCopperLayerCount(2)
        tb = self.board.GetTitleBlock()
        tb.SetTitle(project)
        tb.SetRevision("1")
        tb.SetCompany("Open meter dongle - CERN-OHL-S-2.0")

    def net(self, name):
        if name not in self.nets:
            ni = pcbnew.NETINFO_ITEM(self.board, name)
            self.board.Add(ni)
            self.nets[name] = ni
        return self.nets[name]

    def outline(self, r=1.5):
        w, h = self.w, self.h
        segs = [((r, 0), (w - r, 0)), ((w, r), (w, h - r)), ((w - r, h), (r, h)), ((0, h - r), (0, r))]
        for a, b in segs:
            s = pcbnew.PCB_SHAPE(self.board)
            s.SetShape(pcbnew.SHAPE_T_SEGMENT)
            s.SetStart(V(*a))
            s.SetEnd(V(*b))
            s.SetLayer(pcbnew.Edge_Cuts)
            s.SetWidth(MM(0.1))
            self.board.Add(s)
        import math
        k = r * (1 - math.sqrt(0.5))
        for (sx, sy, mx, my, ex, ey) in [(0, r, k, k, r, 0), (w - r, 0, w - k, k, w, r),
                                         (w, h - r, w - k, h - k, w - r, h), (r, h, k, h - k, 0, h - r)]:
            s = pcbnew.PCB_SHAPE(self.board)
            s.SetShape(pcbnew.SHAPE_T_ARC)
            s.SetArcGeometry(V(sx, sy), V(mx, my), V(ex, ey))
            s.SetLayer(pcbnew.Edge_Cuts)
            s.SetWidth(MM(0.1))
            self.board.Add(s)

    def slot(self, cx, cy, ux, uy, length, width):
        """Milled slot (internal Edge.Cuts cut-out), rounded ends."""
        import math
        n = math.hypot(ux, uy)
        ux, uy = ux / n, uy / n
        vx, vy = -uy, ux
        hl, r = length / 2 - width / 2, width / 2
        pts = []
        for end, sgn in ((1, 1), (-1, -1)):
            ex, ey = cx + ux * hl * end, cy + uy * hl * end
            for i in range(9):
                a = math.atan2(vy, vx) * -1 if False else None
                t = math.pi * i / 8
                # half circle from +v to -v around the end, on the outer side
                dx = (vx * math.cos(t) + ux * math.sin(t)) * sgn
                dy = (vy * math.cos(t) + uy * math.sin(t)) * sgn
                pts.append((ex + r * dx, ey + r * dy))
        s = pcbnew.PCB_SHAPE(self.board)
        s.SetShape(pcbnew.SHAPE_T_POLY)
        s.SetPolyPoints([V(round(x, 4), round(y, 4)) for (x, y) in pts])
        s.SetLayer(pcbnew.Edge_Cuts)
        s.SetWidth(MM(0.1))
        s.SetFilled(False)
        self.board.Add(s)
        self.slots.append((cx, cy, length / 2, width / 2, math.degrees(math.atan2(uy, ux))))

    def place(self, part, x, y, rot=0):
        if ":" in part.fp:      # KiCad's official library
            lib, name = part.fp.split(":", 1)
            fp = pcbnew.FootprintLoad(os.path.dirname(kicadlib.footprint_path(part.fp)), name)
        else:
            lib, name = LIB, part.fp
            fp = pcbnew.FootprintLoad(self.libdir, part.fp)
        if fp is None:
            raise RuntimeError("footprint %s not found" % part.fp)
        fp.SetFPID(pcbnew.LIB_ID(lib, name))
        fp.SetReference(part.ref)
        fp.SetValue(part.value)
        fp.SetPath(pcbnew.KIID_PATH("/" + uid(self.project, "sym", part.ref)))
        fp.SetSheetname("/")
        fp.SetSheetfile(self.project + ".kicad_sch")
        for k, v in (("LCSC", part.lcsc), ("MPN", part.mpn), ("Manufacturer", part.mfr)):
            f = pcbnew.PCB_FIELD(fp, fp.GetNextFieldId(), k)
            f.SetText(v)
            f.SetVisible(False)
            f.SetLayer(pcbnew.F_Fab)
            fp.AddField(f)
        self.board.Add(fp)
        fp.SetPosition(V(x, y))
        fp.SetOrientationDegrees(rot)
        for pad in fp.Pads():
            num = pad.GetNumber()
            if not num:
                continue
            net = part.nets.get(num)
            if net is not None:
                pad.SetNet(self.net("/" + net))
            else:
                # KiCad names a lone pin's net after the symbol pin (schematic parity)
                pname = get(part.sym).pin(num)[1]
                if pname in ("~", ""):
                    nn = "unconnected-(%s-Pad%s)" % (part.ref, num)
                else:
                    nn = "unconnected-(%s-%s-Pad%s)" % (part.ref, pname, num)
                pad.SetNet(self.net(nn))
        self.fps[part.ref] = fp
        return fp

    def hole(self, ref, x, y):
        fp = pcbnew.FootprintLoad(os.path.dirname(kicadlib.footprint_path(HOLE_FP)), HOLE_FP.split(":")[1])
        fp.SetFPID(pcbnew.LIB_ID(*HOLE_FP.split(":")))
        fp.SetReference(ref)
        fp.SetValue(HOLE_FP.split(":")[1])
        fp.SetBoardOnly(True)      # no schematic symbol: a hole, not a part
        self.board.Add(fp)
        fp.SetPosition(V(x, y))
        self.fps[ref] = fp

    def text(self, s, x, y, size=1.0, layer=pcbnew.F_SilkS, rot=0, bold=False):
        t = pcbnew.PCB_TEXT(self.board)
        t.SetText(s)
        t.SetLayer(layer)
        t.SetTextSize(pcbnew.VECTOR2I(MM(size), MM(size)))
        t.SetTextThickness(MM(max(0.15, size * 0.15)))
        t.SetPosition(V(x, y))
        t.SetTextAngleDegrees(rot)
        if layer == pcbnew.B_SilkS:
            t.SetMirrored(True)
        self.board.Add(t)
        return t

    # ---------------------------------------------------------------- routing
    def _pad_shape(self, pad):
        p = pad.GetPosition()
        s = pad.GetSize()
        x, y = mm(p.x), mm(p.y)
        if pad.GetShape() == pcbnew.PAD_SHAPE_CIRCLE:
            return ("circ", x, y, mm(s.x) / 2.0)
        return ("rect", x, y, mm(s.x) / 2.0, mm(s.y) / 2.0, -pad.GetOrientationDegrees())

    def _pad_layers(self, pad):
        ls = []
        if pad.IsOnLayer(pcbnew.F_Cu):
            ls.append(0)
        if pad.IsOnLayer(pcbnew.B_Cu):
            ls.append(1)
        return ls

    def route(self, power_nets=(), order_hint=(), extra_clear=None, skip=(), max_iter=12):
        extra_clear = extra_clear or {}
        pads_by_net = {}
        for fp in self.board.GetFootprints():
            for pad in fp.Pads():
                n = pad.GetNetname()
                if n:
                    pads_by_net.setdefault(n, []).append(pad)
        nets = [n for n in sorted(pads_by_net) if len(pads_by_net[n]) > 1 and n not in skip]

        def span(n):
            xs = [mm(p.GetPosition().x) for p in pads_by_net[n]]
            ys = [mm(p.GetPosition().y) for p in pads_by_net[n]]
            return (max(xs) - min(xs)) + (max(ys) - min(ys))

        order = sorted(nets, key=lambda n: (n.endswith("/GND"), span(n), n))
        for h in reversed(order_hint):
            if h in order:
                order.remove(h)
                order.insert(0, h)
        best = None
        for it in range(max_iter):
            result, failed = self._route_once(order, pads_by_net, power_nets, extra_clear)
            if best is None or len(failed) < len(best[1]):
                best = (result, failed, list(order))
            if not failed:
                break
            for n in failed:
                order.remove(n)
                order.insert(0, n)
        result, failed, order = best
        for n, items in result:
            ni = self.nets[n]
            for it in items:
                if it[0] == "seg":
                    t = pcbnew.PCB_TRACK(self.board)
                    t.SetStart(V(*it[1]))
                    t.SetEnd(V(*it[2]))
                    t.SetWidth(MM(it[4]))
                    t.SetLayer(pcbnew.F_Cu if it[3] == 0 else pcbnew.B_Cu)
                    t.SetNet(ni)
                    self.board.Add(t)
                else:
                    v = pcbnew.PCB_VIA(self.board)
                    v.SetPosition(V(*it[1]))
                    v.SetDrill(MM(VIA_DRILL))
                    v.SetWidth(MM(VIA_D))
                    v.SetLayerPair(pcbnew.F_Cu, pcbnew.B_Cu)
                    v.SetNet(ni)
                    self.board.Add(v)
        return failed

    def _route_once(self, order, pads_by_net, power_nets, extra_clear):
        g = Grid(0, 0, self.w, self.h, PITCH, CLEARANCE, WIDTHS, VIA_D, EDGE_CLR)
        g.block_edges()
        for (cx, cy, hw, hh, ang) in self.slots:
            for l in (0, 1):
                g.mark(l, -2, ("rect", cx, cy, hw, hh, ang), extra=EDGE_CLR - CLEARANCE + 0.05)
        netid = {n: i for i, n in enumerate(sorted(pads_by_net))}
        # obstacles: every pad, every non-plated hole, pre-drawn tracks
        for fp in self.board.GetFootprints():
            for pad in fp.Pads():
                n = pad.GetNetname()
                nid = netid.get(n, -2) if n else -2
                shape = self._pad_shape(pad)
                for l in (0, 1):
                    if pad.GetAttribute() == pcbnew.PAD_ATTRIB_NPTH:
                        d = mm(pad.GetDrillSize().x)
                        g.mark(l, -2, ("circ", shape[1], shape[2], d / 2 + 0.1))
                    elif l in self._pad_layers(pad):
                        g.mark(l, nid, shape, extra_clear.get(n, 0.0))
                    elif pad.GetDrillSize().x > 0:
                        g.mark(l, nid, shape)
        for t in self.board.GetTracks():
            if t.GetClass() == "PCB_TRACK":
                l = 0 if t.GetLayer() == pcbnew.F_Cu else 1
                n = t.GetNetname()
                g.mark(l, netid.get(n, -2), ("seg", mm(t.GetStart().x), mm(t.GetStart().y),
                                            mm(t.GetEnd().x), mm(t.GetEnd().y), mm(t.GetWidth())),
                       extra_clear.get(n, 0.0))
        result = []
        failed = []
        for n in order:
            nid = netid[n]
            wk = 1 if n in power_nets else 0
            w = WIDTHS[wk]
            pads = pads_by_net[n]

            def pad_cells(pad, wk=wk):
                shape = self._pad_shape(pad)
                cells = set()
                for l in self._pad_layers(pad):
                    m = g.maps[(l, wk)]
                    if shape[0] == "circ":
                        _, cx, cy, r = shape
                        r = max(r - 0.05, 0.1)
                        hw = hh = r
                    else:
                        _, cx, cy, hw, hh, ang = shape
                        if abs(ang) % 180 == 90:
                            hw, hh = hh, hw
                        hw, hh = max(hw - 0.05, 0.1), max(hh - 0.05, 0.1)
                    ix0, iy0 = g.cell(cx - hw, cy - hh)
                    ix1, iy1 = g.cell(cx + hw, cy + hh)
                    for ix in range(ix0 - 1, ix1 + 2):
                        for iy in range(iy0 - 1, iy1 + 2):
                            if not (0 <= ix < g.nx and 0 <= iy < g.ny):
                                continue
                            px, py = g.xy(ix, iy)
                            if shape[0] == "circ":
                                if (px - cx) ** 2 + (py - cy) ** 2 > r * r:
                                    continue
                            elif abs(px - cx) > hw or abs(py - cy) > hh:
                                continue
                            v = m[iy * g.nx + ix]
                            if v == -1 or v == nid:
                                cells.add((ix, iy, l))
                return cells

            tree = pad_cells(pads[0])
            todo = list(pads[1:])
            items = []
            ok = True
            while todo:
                # nearest remaining pad to the tree's first pad
                p0 = pads[0].GetPosition()
                todo.sort(key=lambda p: abs(p.GetPosition().x - p0.x) + abs(p.GetPosition().y - p0.y))
                pad = todo.pop(0)
                tgt = pad_cells(pad)
                if not tgt or not tree:
                    ok = False
                    break
                if tgt & tree:
                    tree |= tgt
                    continue
                path = astar(g, nid, wk, tree, tgt)
                if path is None:
                    ok = False
                    break
                for it in simplify(path):
                    if it[0] == "seg":
                        a = g.xy(*it[1])
                        b = g.xy(*it[2])
                        items.append(("seg", a, b, it[3], w))
                        g.mark(it[3], nid, ("seg", a[0], a[1], b[0], b[1], w))
                    else:
                        c = g.xy(*it[1])
                        items.append(("via", c))
                        for l in (0, 1):
                            g.mark(l, nid, ("circ", c[0], c[1], VIA_D / 2))
                tree |= set(path)
                # vias join both layers
                for (ix, iy, l) in path:
                    pass
                tree |= tgt
            if not ok:
                failed.append(n)
            result.append((n, items))
        return result, failed

    # ---------------------------------------------------------------- silkscreen
    def _obstacles(self, skip_fp=None):
        obs = []
        for fp in self.board.GetFootprints():
            for pad in fp.Pads():
                bb = pad.GetBoundingBox()
                obs.append(self._box(bb, 0.2))
            for it in fp.GraphicalItems():
                if it.GetLayer() == pcbnew.F_SilkS:
                    if it.GetClass() == "PCB_SHAPE" and it.GetShape() == pcbnew.SHAPE_T_CIRCLE:
                        c, r = it.GetCenter(), mm(it.GetRadius())
                        cx, cy = mm(c.x), mm(c.y)
                        # the ring only: four thin boxes around the inscribed square
                        k = r * 0.70
                        obs += [(cx - r - 0.2, cy - r - 0.2, cx + r + 0.2, cy - k),
                                (cx - r - 0.2, cy + k, cx + r + 0.2, cy + r + 0.2),
                                (cx - r - 0.2, cy - r - 0.2, cx - k, cy + r + 0.2),
                                (cx + k, cy - r - 0.2, cx + r + 0.2, cy + r + 0.2)]
                        continue
                    obs.append(self._box(it.GetBoundingBox(), 0.12))
        for d in self.board.GetDrawings():
            if d.GetLayer() == pcbnew.F_SilkS:
                obs.append(self._box(d.GetBoundingBox(), 0.12))
        return obs

    @staticmethod
    def _box(bb, m):
        return (mm(bb.GetX()) - m, mm(bb.GetY()) - m, mm(bb.GetRight()) + m, mm(bb.GetBottom()) + m)

    @staticmethod
    def _hit(a, b):
        return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])

    def free(self, box, obs):
        if box[0] < 0.4 or box[1] < 0.4 or box[2] > self.w - 0.4 or box[3] > self.h - 0.4:
            return False
        return not any(self._hit(box, o) for o in obs)

    def label(self, s, x, y, size=1.0, layer=None):
        """Board silkscreen text at (x, y), nudged to the nearest free spot (never over pads)."""
        layer = pcbnew.F_SilkS if layer is None else layer
        obs = self._obstacles() if layer == pcbnew.F_SilkS else self._pad_obstacles()
        t = self.text(s, x, y, size=size, layer=layer)
        for r in [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0]:
            for (dx, dy) in [(0, 0), (0, -1), (0, 1), (-1, 0), (1, 0), (-1, -1), (1, -1), (-1, 1), (1, 1)]:
                if r == 0 and (dx or dy):
                    continue
                t.SetPosition(V(x + dx * r, y + dy * r))
                bb = self._box(t.GetBoundingBox(), 0.0)
                if self.free(bb, obs):
                    return t
        self.board.Remove(t)
        print("  label %r does not fit near (%g, %g)" % (s, x, y))
        return None

    def fixed_label(self, s, x, y, size=1.0, justify="center"):
        """Silkscreen text exactly at (x, y) (pin names): it must be free, or the build fails."""
        t = self.text(s, x, y, size=size)
        # narrower glyphs (height stays >= 1 mm, what the fab's rule is about)
        t.SetTextSize(pcbnew.VECTOR2I(MM(size * 0.85), MM(size)))
        if justify != "center":
            t.SetHorizJustify(pcbnew.GR_TEXT_H_ALIGN_LEFT if justify == "left" else pcbnew.GR_TEXT_H_ALIGN_RIGHT)
        bb = self._box(t.GetBoundingBox(), 0.0)
        obs = [o for o in self._obstacles() if not self._same(o, bb)]
        if not self.free(bb, obs):
            hits = [o for o in obs if self._hit(bb, o)]
            raise RuntimeError("pin label %r at (%g, %g), box %s, overlaps other silkscreen or a pad %s (or the edge)"
                               % (s, x, y, [round(v, 2) for v in bb], [[round(v, 2) for v in o] for o in hits]))
        return t

    @staticmethod
    def _same(a, b):
        return all(abs(p - q) < 0.2 for p, q in zip(a, b))

    def _pad_obstacles(self):
        obs = []
        for fp in self.board.GetFootprints():
            for pad in fp.Pads():
                if pad.IsOnLayer(pcbnew.B_Cu) or pad.IsOnLayer(pcbnew.B_Mask) or pad.GetAttribute() == pcbnew.PAD_ATTRIB_NPTH:
                    obs.append(self._box(pad.GetBoundingBox(), 0.25))
        return obs

    def place_refs(self, size=1.0):
        obs = self._obstacles()
        placed = []
        for fp in sorted(self.board.GetFootprints(), key=lambda f: f.GetReference()):
            ref = fp.Reference()
            if fp.GetReference().startswith("H"):
                continue
            if fp.GetReference() in ("M1", "M2"):   # named by the board labels
                ref.SetLayer(pcbnew.F_Fab)
                continue
            ref.SetTextSize(pcbnew.VECTOR2I(MM(size), MM(size)))
            ref.SetTextThickness(MM(0.15))
            ref.SetKeepUpright(True)
            ref.SetTextAngleDegrees(0)
            cb = None
            for it in fp.GraphicalItems():
                if it.GetLayer() == pcbnew.F_CrtYd:
                    b = self._box(it.GetBoundingBox(), 0)
                    cb = b if cb is None else (min(cb[0], b[0]), min(cb[1], b[1]), max(cb[2], b[2]), max(cb[3], b[3]))
            cx, cy = (cb[0] + cb[2]) / 2, (cb[1] + cb[3]) / 2
            cands = [(cx, cb[1] - 0.6), (cx, cb[3] + 0.6), (cb[0] - 0.4, cy, "r"), (cb[2] + 0.4, cy, "l"), (cx, cy)]
            for dy in (0.8, 1.6):
                cands += [(cx, cb[1] - 0.6 - dy), (cx, cb[3] + 0.6 + dy)]
            import math
            for k in range(1, 60):     # spiral search further out
                r = 0.5 + 0.1 * k
                a = k * 2.4
                cands.append((cx + (cb[2] - cb[0]) / 2 * math.cos(a) + r * math.cos(a),
                              cy + (cb[3] - cb[1]) / 2 * math.sin(a) + r * math.sin(a)))
            done = False
            for c in cands:
                ref.SetPosition(V(c[0], c[1]))
                bb = self._box(ref.GetBoundingBox(), 0.0)
                if len(c) == 3:   # left/right of the part: shift so the text clears the courtyard
                    wbox = bb[2] - bb[0]
                    x = c[0] - wbox / 2 if c[2] == "r" else c[0] + wbox / 2
                    ref.SetPosition(V(x, c[1]))
                    bb = self._box(ref.GetBoundingBox(), 0.0)
                if self.free(bb, obs + placed):
                    placed.append(self._box(ref.GetBoundingBox(), 0.1))
                    done = True
                    break
            if not done:
                ref.SetLayer(pcbnew.F_Fab)
                ref.SetPosition(V(cx, cy))

    # ---------------------------------------------------------------- pour
    def pour(self, netname, layers=(pcbnew.F_Cu, pcbnew.B_Cu), inset=0.0):
        ni = self.net(netname)
        for layer in layers:
            z = pcbnew.ZONE(self.board)
            z.SetLayer(layer)
            z.SetNet(ni)
            ol = z.Outline()
            ol.NewOutline()
            for (x, y) in [(inset, inset), (self.w - inset, inset), (self.w - inset, self.h - inset),
                           (inset, self.h - inset)]:
                ol.Append(MM(x), MM(y))
            z.SetPadConnection(pcbnew.ZONE_CONNECTION_FULL)
            z.SetLocalClearance(MM(0.3))
            z.SetMinThickness(MM(0.25))
            z.SetIslandRemovalMode(pcbnew.ISLAND_REMOVAL_MODE_ALWAYS)
            z.SetZoneName("GND_%s" % ("F" if layer == pcbnew.F_Cu else "B"))
            self.board.Add(z)

    def keepout(self, x, y, r):
        """No copper pour within r of (x, y) on both layers (mounting holes, plastic pegs)."""
        import math
        z = pcbnew.ZONE(self.board)
        z.SetIsRuleArea(True)
        z.SetDoNotAllowCopperPour(True)
        z.SetDoNotAllowTracks(False)
        z.SetDoNotAllowVias(False)
        z.SetDoNotAllowPads(False)
        z.SetDoNotAllowFootprints(False)
        ls = pcbnew.LSET()
        ls.AddLayer(pcbnew.F_Cu)
        ls.AddLayer(pcbnew.B_Cu)
        z.SetLayerSet(ls)
        ol = z.Outline()
        ol.NewOutline()
        for i in range(16):
            a = 2 * math.pi * i / 16
            ol.Append(MM(round(x + r * math.cos(a), 3)), MM(round(y + r * math.sin(a), 3)))
        self.board.Add(z)

    def track(self, netname, pts, width, layers=(pcbnew.F_Cu, pcbnew.B_Cu)):
        ni = self.net(netname)
        for layer in layers:
            for a, b in zip(pts, pts[1:]):
                t = pcbnew.PCB_TRACK(self.board)
                t.SetStart(V(*a))
                t.SetEnd(V(*b))
                t.SetWidth(MM(width))
                t.SetLayer(layer)
                t.SetNet(ni)
                self.board.Add(t)

    def keepout_poly(self, pts):
        z = pcbnew.ZONE(self.board)
        z.SetIsRuleArea(True)
        z.SetDoNotAllowCopperPour(True)
        z.SetDoNotAllowTracks(False)
        z.SetDoNotAllowVias(False)
        z.SetDoNotAllowPads(False)
        z.SetDoNotAllowFootprints(False)
        ls = pcbnew.LSET()
        ls.AddLayer(pcbnew.F_Cu)
        ls.AddLayer(pcbnew.B_Cu)
        z.SetLayerSet(ls)
        ol = z.Outline()
        ol.NewOutline()
        for (x, y) in pts:
            ol.Append(MM(round(x, 3)), MM(round(y, 3)))
        self.board.Add(z)

    def keepout_capsule(self, a, b, r):
        """No pour within r of segment a-b (mains copper)."""
        import math
        ang = math.atan2(b[1] - a[1], b[0] - a[0])
        pts = []
        for i in range(9):
            t = ang + math.pi / 2 + math.pi * i / 8
            pts.append((b[0] + r * math.cos(t) * -1 if False else a[0] + r * math.cos(t), a[1] + r * math.sin(t)))
        for i in range(9):
            t = ang - math.pi / 2 + math.pi * i / 8
            pts.append((b[0] + r * math.cos(t), b[1] + r * math.sin(t)))
        self.keepout_poly(pts)

    def fill(self):
        f = pcbnew.ZONE_FILLER(self.board)
        f.Fill(self.board.Zones())

    def save(self):
        pcbnew.SaveBoard(self.path, self.board)
