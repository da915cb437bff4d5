# Real services for the fleet tests: one PostgreSQL server (initdb/pg_ctl in a temporary
# folder, tools/pgserver.py) for the whole session, a fresh database per test, and the
# same tests on SQLite. A missing PostgreSQL fails loudly (RuntimeError), never skips.
import itertools
import os

import pytest

from tools.pgserver import PgServer

_n = itertools.count()


@pytest.fixture(scope="session")
def pg_server():
    # fsync off: nothing in a test has to survive a crash, and the 2 cores are shared
    with PgServer(durable=False) as pg:
        yield pg


def fresh_pg_url(pg_server):
    import psycopg
    name = "t%d_%d" % (os.getpid(), next(_n))
    base = "postgresql://postgres@127.0.0.1:%d/" % pg_server.port
    with psycopg.connect(base + "postgres", autocommit=True) as c:
        c.execute('CREATE DATABASE "%s"' % name)
    return base + name


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A new empty store on each engine."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "fleet.sqlite")
    return fresh_pg_url(request.getfixturevalue("pg_server"))


@pytest.fixture
def pg_url(pg_server):
    return fresh_pg_url(pg_server)
