"""Fixtures of the delivery-service tests: databases (SQLite files and a real PostgreSQL server
started on loopback from Debian's packages), the CMCS pool, and HTTP clients.

When PostgreSQL or Chromium is not installed the tests that need them are skipped, unless
ADAPTIVE_REQUIRE_SERVICES=1 (set by .ci/run, which installs both), where they fail instead.
"""

import itertools
import os
import warnings
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from adaptive import ItemBank  # noqa: E402
from adaptive.resources import pool_path  # noqa: E402
from tests.service.loadtest import (  # noqa: E402
    create_database,
    postgres_bindir,
    temporary_postgres,
)

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


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server of our own on 127.0.0.1 (a fresh cluster in a temporary folder)."""
    if postgres_bindir() is None:
        missing("PostgreSQL (Debian package postgresql)")
    pytest.importorskip("psycopg")
    with temporary_postgres() as url:
        yield url


_db_numbers = itertools.count()


@pytest.fixture
def postgres_url(postgres_server):
    """A new, empty database on the test server."""
    return create_database(postgres_server, f"adaptive_{os.getpid()}_{next(_db_numbers)}")


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
        from adaptive.service.ratelimit import RateLimits

        kw.setdefault("bank", cmcs_pool)
        kw.setdefault("admin_key", ADMIN_KEY)
        kw.setdefault("practice", True)  # most tests start open sessions; the exam-day tests use launch codes
        kw.setdefault("rate_limits", RateLimits.off())
        app = create_app(db, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client = TestClient(app, raise_server_exceptions=False)
        made.append(app)
        return client

    yield make
    for app in made:
        app.state.delivery.store.close()
