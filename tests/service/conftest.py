"""Fixtures of the delivery-service tests: databases (SQLite files and a real PostgreSQL server
started on loopback from Debian's packages), the CMCS pool, and HTTP clients.

When PostgreSQL or Chromium is not installed the tests that need them are skipped, unless
ADAPTIVE_REQUIRE_SERVICES=1 (set by .ci/run, which installs both), where they fail instead.
"""

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from adaptive import ItemBank  # noqa: E402
from adaptive.cli import pool_path  # noqa: E402
from adaptive.service.loadtest import free_port  # noqa: E402

ADMIN_KEY = "test-admin-key-0123456789"
REQUIRE = os.environ.get("ADAPTIVE_REQUIRE_SERVICES") == "1"


def missing(what: str):
    if REQUIRE:
        pytest.fail(f"{what} is required here (ADAPTIVE_REQUIRE_SERVICES=1) but not installed")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="session")
def cmcs_pool() -> Path:
    return pool_path("cmcs")


@pytest.fixture(scope="session")
def cmcs_bank(cmcs_pool) -> ItemBank:
    return ItemBank.load(cmcs_pool)


def _pg_bindir() -> str | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server of our own on 127.0.0.1 (a fresh cluster in a temporary folder)."""
    bindir = _pg_bindir()
    if bindir is None:
        missing("PostgreSQL (Debian package postgresql)")
    pytest.importorskip("psycopg")
    base = tempfile.mkdtemp(prefix="adaptive-pg-")
    run_as = []
    if os.geteuid() == 0:  # the server refuses to run as root
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(base, "data"), free_port()
    log = os.path.join(base, "server.log")

    def run(*cmd):
        subprocess.run([*run_as, *cmd], check=True, capture_output=True, timeout=120)

    run(f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    run(f"{bindir}/pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o",
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=200", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*run_as, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True,
                       timeout=60)
        shutil.rmtree(base, ignore_errors=True)


_db_numbers = itertools.count()


@pytest.fixture
def postgres_url(postgres_server):
    """A new, empty database on the test server."""
    import psycopg

    name = f"adaptive_{os.getpid()}_{next(_db_numbers)}"
    with psycopg.connect(postgres_server + "/postgres", autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test using it runs on an SQLite file and on a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def make_client(cmcs_pool):
    """``make_client(db_url, **create_app kwargs)``: an in-process HTTP client of a new application."""
    from fastapi.testclient import TestClient

    from adaptive.service.app import create_app

    made = []

    def make(db, **kw):
        kw.setdefault("bank", cmcs_pool)
        kw.setdefault("admin_key", ADMIN_KEY)
        app = create_app(db, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client = TestClient(app, raise_server_exceptions=False)
        made.append(app)
        return client

    yield make
    for app in made:
        app.state.delivery.store.close()
