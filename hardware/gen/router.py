"""A small grid maze router (A*, two layers, vias) for the generated boards.

Good enough for boards of a few dozen parts: every net is routed as a tree, one pad at
a time, by A* from the copper already connected to the nearest unconnected pad. Copper
of other nets is kept out by per-width "keep-out" grids: a cell is usable by a track of
width w when no copper of another net lies within clearance + w/2 of its centre.
Nets that fail are moved to the front of the order and the whole board is routed again
(rip-up-and-retry at board level) - deterministic, no randomness.
"""
import heapq
import math


class Grid:
    def __init__(self, x0, y0, x1, y1, pitch, clearance, widths, via_d, edge_clr):
        self.x0, self.y0, self.pitch = x0, y0, pitch
        self.nx = int(round((x1 - x0) / pitch)) + 1
        self.ny = int(round((y1 - y0) / pitch)) + 1
        self.clr = clearance
        self.widths = list(widths)            # track width classes
        self.via_d = via_d
        self.edge_clr = edge_clr
        n = self.nx * self.ny
        # keep-out maps: key (layer, kind) kind = width index or "via"; value -1 free,
        # >= 0 net id near, -2 several nets / hard obstacle
        self.maps = {}
        for layer in (0, 1):
            for k in list(range(len(self.widths))) + ["via"]:
                self.maps[(layer, k)] = [-1] * n
        self.bounds = (x0, y0, x1, y1)

    def idx(self, ix, iy):
        return iy * self.nx + ix

    def xy(self, ix, iy):
        return (self.x0 + ix * self.pitch, self.y0 + iy * self.pitch)

    def cell(self, x, y):
        return (int(round((x - self.x0) / self.pitch)), int(round((y - self.y0) / self.pitch)))

    def _radius(self, k):
        if k == "via":
            return self.clr + self.via_d / 2.0
        return self.clr + self.widths[k] / 2.0

    def mark(self, layer, net, shape, extra=0.0):
        """shape: ("seg", x0, y0, x1, y1, w) | ("rect", cx, cy, hw, hh, angle_deg) | ("circ", cx, cy, r)
        extra: additional clearance (e.g. mains)."""
        for k in list(range(len(self.widths))) + ["via"]:
            rad = self._radius(k) + extra + 0.02
            m = self.maps[(layer, k)]
            self._mark_shape(m, net, shape, rad)

    def _mark_shape(self, m, net, shape, rad):
        kind = shape[0]
        if kind == "seg":
            _, ax, ay, bx, by, w = shape
            r = rad + w / 2.0
            xa, xb = min(ax, bx) - r, max(ax, bx) + r
            ya, yb = min(ay, by) - r, max(ay, by) + r
            dist = lambda px, py: _seg_dist(px, py, ax, ay, bx, by)
        elif kind == "circ":
            _, cx, cy, cr = shape
            r = rad + cr
            xa, xb, ya, yb = cx - r, cx + r, cy - r, cy + r
            dist = lambda px, py: math.hypot(px - cx, py - cy)
        else:
            _, cx, cy, hw, hh, ang = shape
            a = math.radians(ang)
            ca, sa = math.cos(a), math.sin(a)
            ext = abs(hw * ca) + abs(hh * sa), abs(hw * sa) + abs(hh * ca)
            r = rad
            xa, xb = cx - ext[0] - r, cx + ext[0] + r
            ya, yb = cy - ext[1] - r, cy + ext[1] + r

            def dist(px, py):
                dx, dy = px - cx, py - cy
                lx, ly = dx * ca + dy * sa, -dx * sa + dy * ca
                ox, oy = max(abs(lx) - hw, 0.0), max(abs(ly) - hh, 0.0)
                return math.hypot(ox, oy)
        ix0 = max(0, int(math.floor((xa - self.x0) / self.pitch)))
        ix1 = min(self.nx - 1, int(math.ceil((xb - self.x0) / self.pitch)))
        iy0 = max(0, int(math.floor((ya - self.y0) / self.pitch)))
        iy1 = min(self.ny - 1, int(math.ceil((yb - self.y0) / self.pitch)))
        for iy in range(iy0, iy1 + 1):
            py = self.y0 + iy * self.pitch
            base = iy * self.nx
            for ix in range(ix0, ix1 + 1):
                px = self.x0 + ix * self.pitch
                if dist(px, py) < r:
                    i = base + ix
                    v = m[i]
                    if v == -1:
                        m[i] = net
                    elif v != net:
                        m[i] = -2

    def block_edges(self):
        x0, y0, x1, y1 = self.bounds
        for (layer, k), m in self.maps.items():
            lim = self.edge_clr + (self.via_d / 2 if k == "via" else self.widths[k] / 2) + 0.02
            for iy in range(self.ny):
                py = self.y0 + iy * self.pitch
                for ix in range(self.nx):
                    px = self.x0 + ix * self.pitch
                    if px - x0 < lim or x1 - px < lim or py - y0 < lim or y1 - py < lim:
                        m[iy * self.nx + ix] = -2


def _seg_dist(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    L = dx * dx + dy * dy
    if L == 0:
        return math.hypot(px - ax, py - ay)
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / L))
    return math.hypot(px - ax - t * dx, py - ay - t * dy)


DIRS = [(1, 0, 1.0), (-1, 0, 1.0), (0, 1, 1.0), (0, -1, 1.0),
        (1, 1, 1.414), (1, -1, 1.414), (-1, 1, 1.414), (-1, -1, 1.414)]


def astar(grid, net, wk, sources, targets, via_cost=12.0, layer_cost=(1.0, 1.15), max_exp=400000):
    """sources/targets: sets of (ix, iy, layer). Returns list of (ix, iy, layer) or None."""
    nx, ny = grid.nx, grid.ny
    mt = (grid.maps[(0, wk)], grid.maps[(1, wk)])
    mv = (grid.maps[(0, "via")], grid.maps[(1, "via")])
    tx = [t[0] for t in targets]
    ty = [t[1] for t in targets]
    tminx, tmaxx, tminy, tmaxy = min(tx), max(tx), min(ty), max(ty)

    def h(ix, iy):
        dx = max(tminx - ix, 0, ix - tmaxx)
        dy = max(tminy - iy, 0, iy - tmaxy)
        return (max(dx, dy) - min(dx, dy)) + 1.414 * min(dx, dy)

    def ok(ix, iy, layer):
        v = mt[layer][iy * nx + ix]
        return v == -1 or v == net

    openh = []
    g = {}
    parent = {}
    for s in sources:
        g[s] = 0.0
        parent[s] = None
        heapq.heappush(openh, (h(s[0], s[1]), 0.0, s, None))
    exp = 0
    while openh:
        f, gc, s, d = heapq.heappop(openh)
        if gc > g.get(s, 1e18):
            continue
        if s in targets:
            path = [s]
            while parent[path[-1]] is not None:
                path.append(parent[path[-1]])
            return path[::-1]
        exp += 1
        if exp > max_exp:
            return None
        ix, iy, layer = s
        for (dx, dy, c) in DIRS:
            jx, jy = ix + dx, iy + dy
            if jx < 0 or jy < 0 or jx >= nx or jy >= ny:
                continue
            if not ok(jx, jy, layer):
                continue
            if dx and dy and not (ok(ix + dx, iy, layer) and ok(ix, iy + dy, layer)):
                continue
            cost = c * layer_cost[layer]
            if d is not None and d != (dx, dy):
                cost += 0.6
            t = (jx, jy, layer)
            ng = gc + cost
            if ng < g.get(t, 1e18):
                g[t] = ng
                parent[t] = s
                heapq.heappush(openh, (ng + h(jx, jy), ng, t, (dx, dy)))
        # via
        i = iy * nx + ix
        v0, v1 = mv[0][i], mv[1][i]
        if (v0 == -1 or v0 == net) and (v1 == -1 or v1 == net):
            t = (ix, iy, 1 - layer)
            ng = gc + via_cost
            if ng < g.get(t, 1e18):
                g[t] = ng
                parent[t] = s
                heapq.heappush(openh, (ng + h(ix, iy), ng, t, None))
    return None


def simplify(path):
    """Path of cells -> list of ("seg", (ix0, iy0), (ix1, iy1), layer) and ("via", (ix, iy))."""
    out = []
    if not path:
        return out
    start = path[0]
    prev = path[0]
    d = None
    for cur in path[1:]:
        if cur[2] != prev[2]:
            if (start[0], start[1]) != (prev[0], prev[1]):
                out.append(("seg", (start[0], start[1]), (prev[0], prev[1]), prev[2]))
            out.append(("via", (prev[0], prev[1])))
            start = cur
            d = None
            prev = cur
            continue
        nd = (cur[0] - prev[0], cur[1] - prev[1])
        if d is not None and nd != d:
            out.append(("seg", (start[0], start[1]), (prev[0], prev[1]), prev[2]))
            start = prev
        d = nd
        prev = cur
    if (start[0], start[1]) != (prev[0], prev[1]):
        out.append(("seg", (start[0], start[1]), (prev[0], prev[1]), prev[2]))
    return out
