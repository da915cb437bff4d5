"""A throw-away PostgreSQL server in a folder, for tests, benchmarks and trying the fleet
store on one machine without touching the system's cluster.

    with PgServer() as pg:            # initdb + pg_ctl start, loopback + Unix socket
        db = fleetdb.open_db(pg.url)  # postgresql://postgres@127.0.0.1:PORT/fleet

    python -m tools.pgserver --dir /tmp/pg    # start, print the URL, stop on Ctrl-C

Uses Debian's `postgresql` package binaries (/usr/lib/postgresql/<major>/bin; make setup
installs it). PostgreSQL refuses to run as root, so as root the folder is handed to the
`postgres` user the package creates and the binaries run as that user (runuser).
Authentication is `trust` and the server listens on 127.0.0.1 only.
"""
import argparse
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

from tools.services import free_port


def pg_bindir():
    """Directory of initdb/pg_ctl: $PG_BINDIR, else the newest Debian major version,
    else whatever pg_ctl is on PATH. Raises RuntimeError naming the package."""
    env = os.environ.get("PG_BINDIR")
    if env and os.path.exists(os.path.join(env, "pg_ctl")):
        return env
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    p = shutil.which("pg_ctl")
    if p:
        return os.path.dirname(p)
    raise RuntimeError("PostgreSQL server binaries not found: install Debian's 'postgresql' "
                       "package (sh tools/setup_system.sh) or set PG_BINDIR")


class PgServer:
    """initdb + pg_ctl start in `base` (a new temporary folder when None).
    durable=False turns fsync off (tests: faster, nothing to survive); benchmarks keep
    the default durable commit."""

    def __init__(self, base=None, port=None, dbname="fleet", durable=True):
        self.own = base is None
        self.base = base or tempfile.mkdtemp(prefix="fleet-pg-")
        self.data = os.path.join(self.base, "data")
        self.sock = self.base
        self.port = port or free_port()
        self.dbname = dbname
        self.durable = durable
        self.bindir = pg_bindir()
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root needs the 'postgres' user (created by "
                                   "Debian's postgresql package)")
        self.url = "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, dbname)
        self.started = False

    def _run(self, *args, check=True, **kw):
        cmd = [os.path.join(self.bindir, args[0])] + list(args[1:])
        if self.user is not None:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           **kw)
        if check and r.returncode:
            raise RuntimeError("%s failed (%d): %s" % (args[0], r.returncode, r.stdout[-2000:]))
        return r

    def start(self):
        os.makedirs(self.base, exist_ok=True)
        if self.user is not None:
            # the postgres user must own the folder (data, socket, log)
            os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
            os.chmod(self.base, 0o700)
            # ... and reach it through its parents (a temp folder under /tmp is fine)
        if not os.path.exists(os.path.join(self.data, "PG_VERSION")):
            self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                      "-E", "UTF8", "--locale=C", "--no-sync")
        opts = ("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=100 "
                "-c shared_buffers=64MB" % (self.port, self.sock))
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.base, "server.log"),
                  "-o", opts, "-w", "-t", "60", "start")
        self.started = True
        self._createdb()
        return self

    def _createdb(self):
        import psycopg
        deadline = time.time() + 30
        while True:
            try:
                c = psycopg.connect("postgresql://postgres@127.0.0.1:%d/postgres" % self.port,
                                    autocommit=True)
                break
            except psycopg.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        try:
            if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                             (self.dbname,)).fetchone():
                c.execute('CREATE DATABASE "%s"' % self.dbname.replace('"', ""))
        finally:
            c.close()

    def stop(self, keep=False):
        """Stop the server; its folder is removed when it was a temporary one, unless
        keep (start() again then resumes on the same data and port)."""
        if self.started:
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", check=False)
            self.started = False
        if self.own and not keep:
            shutil.rmtree(self.base, ignore_errors=True)

    def log(self):
        try:
            with open(os.path.join(self.base, "server.log")) as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run a PostgreSQL server in a folder")
    ap.add_argument("--dir", default=None, help="folder (kept); default: a temporary one")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--db", default="fleet")
    a = ap.parse_args(argv)
    pg = PgServer(a.dir and os.path.abspath(a.dir), a.port, a.db)
    import signal
    import threading
    stop = threading.Event()
    # Ctrl-C or a service manager's SIGTERM: stop the server, never leave it behind
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    pg.start()
    print(pg.url, flush=True)
    try:
        stop.wait()
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
