"""Durable storage of bank versions, sessions, answers and audit events.

One small interface over two databases, chosen by URL:

- ``sqlite:///path/to/sessions.db`` (the embedded default; ``sqlite:///:memory:`` for tests), in
  WAL mode with ``synchronous=FULL``, so a committed answer survives the process being killed;
- ``postgresql://user@host:port/dbname`` through psycopg 3 (the ``postgres`` extra).

Every write happens inside :meth:`Store.transaction`; the service acknowledges an answer only
after its transaction has committed. The answers table's primary key ``(session_id, seq)`` makes
a second scoring of the same step impossible even if two server processes raced.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from contextlib import contextmanager, suppress
from pathlib import Path

from ..exceptions import AdaptiveError

__all__ = ["Store", "StoreError", "open_store"]

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS bank_versions (
        id {serial},
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        bank_fingerprint TEXT NOT NULL,
        design_fingerprint TEXT NOT NULL,
        bank_json TEXT NOT NULL,
        design_json TEXT NOT NULL,
        source TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        active INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL,
        bank_version INTEGER NOT NULL REFERENCES bank_versions(id),
        seed BIGINT NOT NULL,
        candidate TEXT,
        status TEXT NOT NULL,
        n_answered INTEGER NOT NULL DEFAULT 0,
        pending_item TEXT,
        presented_at DOUBLE PRECISION,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        result_json TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS answers (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        seq INTEGER NOT NULL,
        item_id TEXT NOT NULL,
        choice INTEGER NOT NULL,
        response INTEGER NOT NULL,
        pretest INTEGER NOT NULL,
        seconds DOUBLE PRECISION NOT NULL,
        answered_at DOUBLE PRECISION NOT NULL,
        theta_before DOUBLE PRECISION,
        se_before DOUBLE PRECISION,
        theta_after DOUBLE PRECISION,
        se_after DOUBLE PRECISION,
        p_pass DOUBLE PRECISION,
        PRIMARY KEY (session_id, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS events (
        id {serial},
        session_id TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS eligibilities (
        id {serial},
        candidate_id TEXT NOT NULL,
        bank_version INTEGER NOT NULL REFERENCES bank_versions(id),
        window_start DOUBLE PRECISION NOT NULL,
        window_end DOUBLE PRECISION NOT NULL,
        attempts_allowed INTEGER NOT NULL,
        time_multiplier DOUBLE PRECISION NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        note TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS launch_codes (
        code_hash TEXT PRIMARY KEY,
        eligibility_id INTEGER NOT NULL REFERENCES eligibilities(id),
        attempt INTEGER NOT NULL,
        session_id TEXT,
        status TEXT NOT NULL,
        issued_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS heartbeats (
        name TEXT PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS events_by_session ON events (session_id, id)",
    "CREATE INDEX IF NOT EXISTS eligibilities_by_candidate ON eligibilities (candidate_id)",
    "CREATE INDEX IF NOT EXISTS codes_by_eligibility ON launch_codes (eligibility_id, attempt)",
    "CREATE INDEX IF NOT EXISTS sessions_by_version ON sessions (bank_version, status)",
]


#: columns added after the first release: (table, column, SQL type); a database made before gets them on opening
MIGRATIONS = [
    ("sessions", "eligibility_id", "INTEGER"),
    ("sessions", "attempt", "INTEGER"),
    ("sessions", "time_limit", "DOUBLE PRECISION"),
    ("sessions", "elapsed", "DOUBLE PRECISION NOT NULL DEFAULT 0"),
    ("sessions", "paused_at", "DOUBLE PRECISION"),
    ("sessions", "exclude_json", "TEXT"),
    ("sessions", "expired", "INTEGER NOT NULL DEFAULT 0"),
    ("sessions", "void_reason", "TEXT"),
    ("answers", "options_order", "TEXT"),
    ("sessions", "mac", "TEXT"),
    ("sessions", "tip", "TEXT"),
    ("answers", "mac", "TEXT"),
    ("eligibilities", "site", "TEXT"),
]


class StoreError(AdaptiveError):
    """The database URL is unusable or the database cannot be reached."""


class _Tx:
    """The cursor of one transaction, with ``?`` placeholders on both databases."""

    def __init__(self, cur, paramstyle: str, for_update: str):
        self._cur = cur
        self._pg = paramstyle == "pg"
        self.for_update = for_update

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    def run(self, sql: str, params=()) -> int:
        """Run a statement; returns the number of rows it changed."""
        self._cur.execute(self._sql(sql), tuple(params))
        return int(self._cur.rowcount or 0)

    def rows(self, sql: str, params=()) -> list[dict]:
        self._cur.execute(self._sql(sql), tuple(params))
        names = [d[0] for d in self._cur.description]
        return [dict(zip(names, r, strict=True)) for r in self._cur.fetchall()]

    def one(self, sql: str, params=()) -> dict | None:
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def insert_id(self, sql: str, params=()) -> int:
        """Run an INSERT into a table with a serial ``id`` and return the new id."""
        if self._pg:
            self._cur.execute(self._sql(sql + " RETURNING id"), tuple(params))
            return int(self._cur.fetchone()[0])
        self._cur.execute(sql, tuple(params))
        return int(self._cur.lastrowid)


class Store:
    """A database of the service; use :func:`open_store`."""

    url: str
    kind: str
    #: the SQL type of an auto-numbered primary key (set by each backend)
    _serial: str = ""

    @contextmanager
    def transaction(self):  # pragma: no cover - overridden
        raise NotImplementedError
        yield

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    def _create_schema(self) -> None:
        with self.transaction() as tx:
            for stmt in SCHEMA:
                tx.run(stmt.format(serial=self._serial))
        for table, column, sqltype in MIGRATIONS:
            with self.transaction() as tx:
                if column not in self._columns(tx, table):
                    tx.run(f"ALTER TABLE {table} ADD COLUMN {column} {sqltype}")

    def _columns(self, tx, table: str) -> set[str]:  # pragma: no cover - overridden
        raise NotImplementedError


class SQLiteStore(Store):
    kind = "sqlite"
    _serial = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, url: str, path: str):
        self.url = url
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"database {url!r}: folder {str(parent)!r} does not exist; create it first")
        try:
            self._con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=FULL")
            self._con.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as err:
            raise StoreError(f"cannot open database {url!r}: {err}") from None
        self._lock = threading.RLock()
        self._create_schema()

    def _columns(self, tx, table: str) -> set[str]:
        return {r["name"] for r in tx.rows(f"PRAGMA table_info({table})")}

    @contextmanager
    def transaction(self):
        with self._lock:
            cur = self._con.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield _Tx(cur, "qmark", "")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            else:
                self._con.execute("COMMIT")
            finally:
                cur.close()

    def close(self) -> None:
        with self._lock:
            self._con.close()


class PostgresStore(Store):
    kind = "postgresql"
    _serial = "BIGSERIAL PRIMARY KEY"

    def __init__(self, url: str, pool_size: int = 8):
        try:
            import psycopg
        except ImportError:  # pragma: no cover - depends on the environment
            raise StoreError("a postgresql:// database needs psycopg: pip install 'adaptive-cat[postgres]'") from None
        self.url = url
        self._psycopg = psycopg
        self._pool: queue.Queue = queue.Queue()
        self._all = []
        try:
            for _ in range(pool_size):
                con = psycopg.connect(url, autocommit=False)
                self._all.append(con)
                self._pool.put(con)
        except psycopg.Error as err:
            self.close()
            raise StoreError(f"cannot connect to {_redact(url)!r}: {str(err).strip()}") from None
        self._create_schema()

    def _columns(self, tx, table: str) -> set[str]:
        return {r["column_name"] for r in tx.rows("SELECT column_name FROM information_schema.columns WHERE "
                                                  "table_name = ? AND table_schema = current_schema()", (table,))}

    @contextmanager
    def transaction(self):
        con = self._pool.get()
        try:
            if con.closed or con.broken:
                con = self._reconnect(con)
            with con.cursor() as cur:
                try:
                    yield _Tx(cur, "pg", " FOR UPDATE")
                except BaseException:
                    con.rollback()
                    raise
                else:
                    con.commit()
        finally:
            self._pool.put(con)

    def _reconnect(self, old):
        self._all.remove(old)
        con = self._psycopg.connect(self.url, autocommit=False)
        self._all.append(con)
        return con

    def close(self) -> None:
        for con in self._all:
            with suppress(Exception):  # closing is best effort
                con.close()


def _redact(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}:***@{host}" if ":" in cred else url
    return url


def open_store(url: str) -> Store:
    """Open (and create the tables of) the database at ``url``: ``sqlite:///FILE`` or ``postgresql://...``."""
    if url.startswith("sqlite:///"):
        return SQLiteStore(url, url.removeprefix("sqlite:///") or ":memory:")
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    raise StoreError(f"database URL {url!r} is not supported; use sqlite:///FILE or postgresql://USER@HOST:PORT/DB")
