"""Fleet store: readings of many dongles in SQLite (embedded default) or PostgreSQL.

    db = open_db("sqlite:///var/lib/linky/fleet.sqlite")   # or a plain path
    db = open_db("postgresql://user@127.0.0.1:5432/fleet")
    stored, duplicates = db.ingest(dev, "mqtt", ctr, header, rows)

One schema for both engines (SCHEMA below; only the time index differs): a reading's
identity is (dev, ep, seq) (docs/wire-format.md "Body"), enforced by the database's
PRIMARY KEY and inserted with ON CONFLICT DO NOTHING, so de-duplication stays exact when
several worker processes on several machines write at once. The time index is BRIN on
PostgreSQL (readings arrive roughly in time order, so block ranges of `t` are tight and
the index stays a few pages for millions of rows) and a B-tree on SQLite (which has no
BRIN).

A batch is stored whole with its counter in one transaction (wire-format "Seal" rule 5):
either every new row and the counter advance are committed, or nothing is.

Counters: a signed batch's `ctr` must be new for (dev, ch). Strictly "greater than the
last" (the default, window=0) is what the contract states for a single receiver. Workers
sharing one MQTT subscription receive a device's batches in any order (the broker deals
them out round robin), so they pass window=63: a counter below the last is accepted once
if it is within 63 of it and not yet seen, as IPsec's anti-replay window does (RFC 4303
§3.4.3); a counter seen before, or older than the window, is still refused. The seen
counters live in the database row (a 63-bit map), not in process memory.

Consent registry, groups and the audit log of every use are in the same schema
(tools/fleetagg.py computes aggregates and exports from them).
"""
import json
import os
import re
import sqlite3
import time

USES = ("individual_curve", "building_aggregate", "public_aggregate")
WINDOW_MAX = 63          # bits of the seen-counter map kept in a signed BIGINT

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
  dev TEXT NOT NULL, ep BIGINT NOT NULL, seq BIGINT NOT NULL,
  kind TEXT, t BIGINT, t_src TEXT, energy_wh BIGINT, data TEXT NOT NULL,
  ch TEXT, received DOUBLE PRECISION,
  PRIMARY KEY (dev, ep, seq));
CREATE TABLE IF NOT EXISTS counters (
  dev TEXT NOT NULL, ch TEXT NOT NULL, ctr BIGINT NOT NULL, seen BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (dev, ch));
CREATE TABLE IF NOT EXISTS devices (
  dev TEXT PRIMARY KEY, first_seen DOUBLE PRECISION, last_seen DOUBLE PRECISION,
  batches BIGINT NOT NULL DEFAULT 0, readings BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS batches (
  dev TEXT, ch TEXT, ctr BIGINT, ep BIGINT, first BIGINT, last BIGINT, n BIGINT,
  stored BIGINT, dropped BIGINT, aggregated BIGINT, received DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS consents (
  id BIGINT PRIMARY KEY, dev TEXT NOT NULL, use TEXT NOT NULL,
  granted DOUBLE PRECISION NOT NULL, withdrawn DOUBLE PRECISION, note TEXT);
CREATE INDEX IF NOT EXISTS consents_dev ON consents (dev, use);
CREATE TABLE IF NOT EXISTS members (
  grp TEXT NOT NULL, kind TEXT NOT NULL, dev TEXT NOT NULL, PRIMARY KEY (grp, dev));
CREATE TABLE IF NOT EXISTS uses (
  id BIGINT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, what TEXT NOT NULL,
  grp TEXT, use TEXT, rule TEXT, size BIGINT, result TEXT, consents TEXT);
"""
TIME_INDEX = {
    "postgresql": "CREATE INDEX IF NOT EXISTS readings_t ON readings USING BRIN (t)",
    "sqlite": "CREATE INDEX IF NOT EXISTS readings_t ON readings (t)",
}

_INSERT_COLS = "(dev, ep, seq, kind, t, t_src, energy_wh, data, ch, received)"
_PG_STORE = """
WITH ins AS (
  INSERT INTO readings (dev, ep, seq, kind, t, t_src, energy_wh, data, ch, received)
  SELECT * FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::text[], ?::bigint[],
                       ?::text[], ?::bigint[], ?::text[], ?::text[], ?::float8[])
  ON CONFLICT (dev, ep, seq) DO NOTHING RETURNING 1),
n AS (SELECT COUNT(*) AS c FROM ins),
d AS (
  INSERT INTO devices (dev, first_seen, last_seen, batches, readings)
  SELECT ?, ?::float8, ?::float8, 1, c FROM n
  ON CONFLICT (dev) DO UPDATE SET last_seen = excluded.last_seen,
    batches = devices.batches + 1, readings = devices.readings + excluded.readings),
b AS (
  INSERT INTO batches (dev, ch, ctr, ep, first, last, n, stored, dropped, aggregated,
                       received)
  SELECT ?, ?, ?::bigint, ?::bigint, ?::bigint, ?::bigint, ?::bigint, c, ?::bigint,
         ?::bigint, ?::float8 FROM n)
SELECT c FROM n
"""
_CHUNK = 500             # rows per INSERT statement (SQLite's bound-variable limit)


class CounterReplay(Exception):
    """A signed batch whose counter was already seen (or is too old) for (dev, ch)."""

    def __init__(self, last_ctr):
        Exception.__init__(self, "replayed counter (last %s)" % last_ctr)
        self.last_ctr = last_ctr


def _int(v):
    # JSON integers only: a bool is an int in Python but not a counter or a seq
    return isinstance(v, int) and not isinstance(v, bool)


def _resolve_times(rows):
    """Rows whose only time is elapsed since another row of the same batch (t_src
    "elapsed", dt_s + ref_seq, reading-schema) get t = t(ref) + dt_s; others keep t."""
    by_seq = {r["seq"]: r.get("t") for r in rows}
    out = []
    for r in rows:
        t = r.get("t")
        if t is None and _int(r.get("dt_s")) and r.get("ref_seq") in by_seq:
            base = by_seq[r["ref_seq"]]
            if _int(base):
                t = base + r["dt_s"]
        out.append(t if _int(t) else None)
    return out


class Db:
    """One connection to the fleet store. Not shared between threads: each worker
    process (or thread) opens its own."""

    def __init__(self, engine, conn, url):
        self.engine = engine
        self.conn = conn
        self.url = url
        self._q = {}

    # -- plumbing --------------------------------------------------------------------
    def sql(self, q):
        """Statements are written with ? placeholders; psycopg wants %s."""
        if self.engine == "sqlite":
            return q
        s = self._q.get(q)
        if s is None:
            s = self._q[q] = q.replace("?", "%s")
        return s

    def execute(self, q, args=()):
        cur = self.conn.cursor()
        cur.execute(self.sql(q), args)
        return cur

    def query(self, q, args=()):
        cur = self.execute(q, args)
        rows = cur.fetchall()
        cur.close()
        return rows

    def begin(self):
        # SQLite: take the write lock now (BEGIN IMMEDIATE), so two processes never both
        # read a counter and then both try to advance it; PostgreSQL: rows are locked
        # with SELECT ... FOR UPDATE inside the transaction.
        self.conn.execute("BEGIN IMMEDIATE" if self.engine == "sqlite" else "BEGIN")

    def commit(self):
        self.conn.execute("COMMIT")

    def rollback(self):
        try:
            self.conn.execute("ROLLBACK")
        except Exception:   # no transaction open (BEGIN itself failed): nothing to undo
            pass

    def transaction(self):
        return _Tx(self)

    def _create(self):
        with self.transaction():
            if self.engine == "postgresql":
                # workers starting together: one creates, the others wait and find it
                self.execute("SELECT pg_advisory_xact_lock(2020)")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    self.execute(stmt)
            self.execute(TIME_INDEX[self.engine])

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass

    def _next_id(self, table):
        # ids for the small registry tables; called inside a write transaction (SQLite:
        # write lock held; PostgreSQL: the table is locked first, see _lock)
        return self.query("SELECT COALESCE(MAX(id), 0) + 1 FROM " + table)[0][0]

    def _lock(self, table):
        if self.engine == "postgresql":
            self.execute("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE" % table)

    # -- ingest ----------------------------------------------------------------------
    def ingest(self, dev, ch, ctr, header, rows, window=0, now=None):
        """Store one verified batch. dev, ch: strings; ctr: the signed counter or None
        (unsigned); header: the batch's header keys (ep, first, last, dropped, ...);
        rows: record dicts (each with an integer "seq").
        -> (stored, duplicates). Raises CounterReplay(last_ctr) with nothing stored when
        ctr was already seen for (dev, ch); ValueError for a malformed batch."""
        if not isinstance(dev, str) or not dev or not isinstance(ch, str):
            raise ValueError("dev and ch must be strings")
        if ctr is not None and (not _int(ctr) or ctr < 0):
            raise ValueError("ctr must be a non-negative integer")
        if not 0 <= window <= WINDOW_MAX:
            raise ValueError("window 0..%d" % WINDOW_MAX)
        ep = header.get("ep", 0)
        if not _int(ep) or ep < 0:
            raise ValueError("ep must be a non-negative integer")
        for r in rows:
            if not isinstance(r, dict) or not _int(r.get("seq")):
                raise ValueError("row without an integer seq")
        now = time.time() if now is None else now
        times = _resolve_times(rows)
        vals = []
        for r, t in zip(rows, times):
            e = r.get("energy_import_wh")
            vals.append((dev, ep, r["seq"], r.get("kind", "reading"), t, r.get("t_src"),
                         e if _int(e) else None, json.dumps(r, separators=(",", ":")),
                         ch, now))
        with self.transaction():
            if ctr is not None:
                self._advance(dev, ch, ctr, window)
            if self.engine == "postgresql":
                stored = self._store_pg(dev, ch, ctr, ep, header, vals, now)
            else:
                stored = self._store_sqlite(dev, ch, ctr, ep, header, vals, now)
        return stored, len(rows) - stored

    def _store_sqlite(self, dev, ch, ctr, ep, header, vals, now):
        stored = 0
        for i in range(0, len(vals), _CHUNK):
            part = vals[i:i + _CHUNK]
            q = ("INSERT INTO readings " + _INSERT_COLS + " VALUES "
                 + ",".join(["(?,?,?,?,?,?,?,?,?,?)"] * len(part))
                 + " ON CONFLICT (dev, ep, seq) DO NOTHING")
            cur = self.execute(q, [v for row in part for v in row])
            stored += max(cur.rowcount, 0)
            cur.close()
        self.execute(
            "INSERT INTO devices (dev, first_seen, last_seen, batches, readings) "
            "VALUES (?,?,?,1,?) ON CONFLICT (dev) DO UPDATE SET "
            "last_seen = excluded.last_seen, batches = devices.batches + 1, "
            "readings = devices.readings + excluded.readings", (dev, now, now, stored))
        self.execute(
            "INSERT INTO batches (dev, ch, ctr, ep, first, last, n, stored, dropped, "
            "aggregated, received) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (dev, ch, ctr, ep, _num(header.get("first")), _num(header.get("last")),
             len(vals), stored, _num(header.get("dropped")),
             _num(header.get("aggregated")), now))
        return stored

    def _store_pg(self, dev, ch, ctr, ep, header, vals, now):
        # The same three writes as _store_sqlite in one statement and one round trip:
        # the rows go as arrays (one prepared statement whatever the batch size), the
        # device and batch rows count what the insert really stored.
        cols = list(zip(*vals)) if vals else [()] * 10
        cur = self.execute(_PG_STORE, [list(c) for c in cols] + [
            dev, now, now, dev, ch, ctr, ep, _num(header.get("first")),
            _num(header.get("last")), len(vals), _num(header.get("dropped")),
            _num(header.get("aggregated")), now])
        stored = cur.fetchone()[0]
        cur.close()
        return stored

    def _advance(self, dev, ch, ctr, window):
        lock = " FOR UPDATE" if self.engine == "postgresql" else ""
        q = "SELECT ctr, seen FROM counters WHERE dev = ? AND ch = ?" + lock
        row = self.query(q, (dev, ch))
        if not row:
            # first batch of this (dev, ch): a concurrent first insert loses the race on
            # the primary key and then reads the winner's row
            cur = self.execute("INSERT INTO counters (dev, ch, ctr, seen) VALUES (?,?,?,0) "
                               "ON CONFLICT (dev, ch) DO NOTHING", (dev, ch, ctr))
            if cur.rowcount == 1:
                return
            row = self.query(q, (dev, ch))
        last, seen = row[0]
        if ctr > last:
            shift = ctr - last
            # bit i of seen = counter last-1-i accepted; the old last becomes bit shift-1
            seen = ((seen << shift) | (1 << (shift - 1))) if shift <= WINDOW_MAX else 0
            seen &= (1 << WINDOW_MAX) - 1
            self.execute("UPDATE counters SET ctr = ?, seen = ? WHERE dev = ? AND ch = ?",
                         (ctr, seen, dev, ch))
            return
        back = last - ctr
        if 0 < back <= window and not (seen >> (back - 1)) & 1:
            self.execute("UPDATE counters SET seen = ? WHERE dev = ? AND ch = ?",
                         (seen | (1 << (back - 1)), dev, ch))
            return
        raise CounterReplay(last)

    def last_ctr(self, dev, ch):
        row = self.query("SELECT ctr FROM counters WHERE dev = ? AND ch = ?", (dev, ch))
        return row[0][0] if row else None

    # -- queries ---------------------------------------------------------------------
    def readings(self, dev=None, since=None, until=None):
        """-> record dicts (as received, plus dev, ep and the resolved t) in (dev, ep,
        seq) order; since/until: unix seconds, since <= t < until (rows without a time
        are left out when either bound is given)."""
        where, args = [], []
        if dev is not None:
            where.append("dev = ?")
            args.append(dev)
        if since is not None:
            where.append("t >= ?")
            args.append(int(since))
        if until is not None:
            where.append("t < ?")
            args.append(int(until))
        q = "SELECT dev, ep, t, data FROM readings"
        if where:
            q += " WHERE " + " AND ".join(where)
        out = []
        for d, ep, t, data in self.query(q + " ORDER BY dev, ep, seq", args):
            r = json.loads(data)
            r["dev"] = d
            r["ep"] = ep
            if t is not None:
                r["t"] = t
            out.append(r)
        return out

    def count(self, dev=None):
        if dev is None:
            return self.query("SELECT COUNT(*) FROM readings")[0][0]
        return self.query("SELECT COUNT(*) FROM readings WHERE dev = ?", (dev,))[0][0]

    def devices(self):
        """-> [{dev, first_seen, last_seen, batches, readings}] sorted by dev."""
        rows = self.query("SELECT dev, first_seen, last_seen, batches, readings FROM devices "
                          "ORDER BY dev")
        return [dict(dev=d, first_seen=a, last_seen=b, batches=n, readings=r)
                for d, a, b, n, r in rows]

    # -- consent registry ------------------------------------------------------------
    def grant(self, dev, use, at=None, note=None):
        """Record that the household of `dev` agreed to `use` (one of USES) from `at`
        (unix seconds, default now). -> the consent id. A use already granted and not
        withdrawn keeps its record (same id)."""
        _check_use(use)
        at = time.time() if at is None else float(at)
        with self.transaction():
            self._lock("consents")
            row = self.query("SELECT id FROM consents WHERE dev = ? AND use = ? AND "
                             "withdrawn IS NULL", (dev, use))
            if row:
                return row[0][0]
            cid = self._next_id("consents")
            self.execute("INSERT INTO consents (id, dev, use, granted, withdrawn, note) "
                         "VALUES (?,?,?,?,NULL,?)", (cid, dev, use, at, note))
        return cid

    def withdraw(self, dev, use=None, at=None):
        """Withdraw the household's consent to `use` (all uses when None) from `at`
        (default now): every use computed afterwards leaves it out. -> ids withdrawn."""
        if use is not None:
            _check_use(use)
        at = time.time() if at is None else float(at)
        with self.transaction():
            q = "SELECT id FROM consents WHERE dev = ? AND withdrawn IS NULL"
            args = [dev]
            if use is not None:
                q += " AND use = ?"
                args.append(use)
            ids = [r[0] for r in self.query(q, args)]
            for cid in ids:
                self.execute("UPDATE consents SET withdrawn = ? WHERE id = ?", (at, cid))
        return ids

    def consents(self, dev=None, use=None, at=None):
        """Consents in force at `at` (default now) -> [{id, dev, use, granted}]."""
        at = time.time() if at is None else float(at)
        q = ("SELECT id, dev, use, granted FROM consents WHERE granted <= ? AND "
             "(withdrawn IS NULL OR withdrawn > ?)")
        args = [at, at]
        if dev is not None:
            q += " AND dev = ?"
            args.append(dev)
        if use is not None:
            _check_use(use)
            q += " AND use = ?"
            args.append(use)
        return [dict(id=i, dev=d, use=u, granted=g)
                for i, d, u, g in self.query(q + " ORDER BY id", args)]

    def consent_history(self, dev=None):
        q = "SELECT id, dev, use, granted, withdrawn, note FROM consents"
        args = ()
        if dev is not None:
            q += " WHERE dev = ?"
            args = (dev,)
        return [dict(id=i, dev=d, use=u, granted=g, withdrawn=w, note=n)
                for i, d, u, g, w, n in self.query(q + " ORDER BY id", args)]

    # -- groups ----------------------------------------------------------------------
    def add_members(self, grp, kind, devs):
        """Put devices in a group (kind: "building", "district", ...)."""
        with self.transaction():
            for d in devs:
                self.execute("INSERT INTO members (grp, kind, dev) VALUES (?,?,?) "
                             "ON CONFLICT (grp, dev) DO UPDATE SET kind = excluded.kind",
                             (grp, kind, d))

    def remove_member(self, grp, dev):
        with self.transaction():
            self.execute("DELETE FROM members WHERE grp = ? AND dev = ?", (grp, dev))

    def members(self, grp):
        return [r[0] for r in self.query("SELECT dev FROM members WHERE grp = ? ORDER BY dev",
                                         (grp,))]

    def groups(self):
        return [dict(grp=g, kind=k, size=n) for g, k, n in self.query(
            "SELECT grp, MIN(kind), COUNT(*) FROM members GROUP BY grp ORDER BY grp")]

    # -- audit log -------------------------------------------------------------------
    def record_use(self, what, grp, use, rule, size, result, consent_ids, at=None):
        """Every export and aggregate (and every refusal) is logged with the consents it
        relied on. -> the log id."""
        at = time.time() if at is None else float(at)
        with self.transaction():
            self._lock("uses")
            uid = self._next_id("uses")
            self.execute("INSERT INTO uses (id, at, what, grp, use, rule, size, result, "
                         "consents) VALUES (?,?,?,?,?,?,?,?,?)",
                         (uid, at, what, grp, use, rule, size, result,
                          json.dumps(sorted(consent_ids))))
        return uid

    def uses_log(self):
        return [dict(id=i, at=a, what=w, grp=g, use=u, rule=r, size=s, result=res,
                     consents=json.loads(c or "[]"))
                for i, a, w, g, u, r, s, res, c in self.query(
                    "SELECT id, at, what, grp, use, rule, size, result, consents FROM uses "
                    "ORDER BY id")]


class _Tx:
    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.begin()
        return self.db

    def __exit__(self, et, ev, tb):
        if et is None:
            self.db.commit()
        else:
            self.db.rollback()
        return False


def _num(v):
    return v if _int(v) else None


def _check_use(use):
    if use not in USES:
        raise ValueError("use must be one of %s" % ", ".join(USES))


def open_db(url):
    """"sqlite:///abs/path", "sqlite:rel/path", a plain path, or "postgresql://..."
    (also "postgres://") -> Db with the schema created."""
    if re.match(r"^postgres(ql)?://", url):
        import psycopg
        # autocommit: transactions are explicit (begin/commit), so a query outside one
        # never leaves the session idle in a transaction
        conn = psycopg.connect(url, autocommit=True)
        db = Db("postgresql", conn, url)
    else:
        path = url
        if url.startswith("sqlite://"):
            # sqlite:///abs/path (SQLAlchemy's sqlite:////abs/path works too)
            path = re.sub(r"^/+", "/", url[len("sqlite://"):])
            if not path.startswith("/"):
                raise ValueError("sqlite URL: sqlite:///absolute/path or sqlite:relative/path")
        elif url.startswith("sqlite:"):
            path = url[len("sqlite:"):]
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in begin())
        conn = sqlite3.connect(path, timeout=60, isolation_level=None,
                               check_same_thread=False)
        # several worker processes on one file: WAL lets readers run beside the writer
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=60000")
        db = Db("sqlite", conn, url)
    db._create()
    return db
