"""Builds, routes and pours a .kicad_pcb with the pcbnew module (system python3)."""
import os

import pcbnew

from router import Grid, astar, simplify
from sch import uid
from symbols import LIB

MM = pcbnew.FromMM

CLEARANCE = 0.2
WIDTHS = (0.3, 0.5)       # signal, power
VIA_D, VIA_DRILL = 0.6, 0.3
EDGE_CLR = 0.5
PITCH = 0.25


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
        ds = self.board.GetDesignSettings()
        ds.m_TrackMinWidth = MM(0.2)
        ds.m_ViasMinSize = MM(0.5)
        ds.m_MinThroughDrill = MM(0.3)
        ds.m_CopperEdgeClearance = MM(EDGE_CLR)
        ds.m_HoleClearance = MM(0.25)
        ds.m_HoleToHoleMin = MM(0.25)
        ds.m_MinClearance = MM(0.15)
        ds.m_SilkClearance = MM(0.0)
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
        for (cx, cy, sx, sy) in [(r, r, 0, r), (w - r, r, w - r, 0), (w - r, h - r, w, h - r), (r, h - r, r, h)]:
            s = pcbnew.PCB_SHAPE(self.board)
            s.SetShape(pcbnew.SHAPE_T_ARC)
            s.SetCenter(V(cx, cy))
            s.SetStart(V(sx, sy))
            s.SetArcAngleAndEnd(pcbnew.EDA_ANGLE(-90, pcbnew.DEGREES_T), True)
            s.SetLayer(pcbnew.Edge_Cuts)
            s.SetWidth(MM(0.1))
            self.board.Add(s)

    def place(self, part, x, y, rot=0):
        fp = pcbnew.FootprintLoad(self.libdir, part.fp)
        if fp is None:
            raise RuntimeError("footprint %s not found" % part.fp)
        fp.SetFPID(pcbnew.LIB_ID(LIB, part.fp))
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
        self.fps[part.ref] = fp
        return fp

    def hole(self, ref, x, y):
        fp = pcbnew.FootprintLoad(self.libdir, "MountingHole_3.2mm_M3")
        fp.SetFPID(pcbnew.LIB_ID(LIB, "MountingHole_3.2mm_M3"))
        fp.SetReference(ref)
        fp.SetValue("MountingHole_3.2mm_M3")
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

    def fill(self):
        f = pcbnew.ZONE_FILLER(self.board)
        f.Fill(self.board.Zones())

    def save(self):
        pcbnew.SaveBoard(self.path, self.board)
